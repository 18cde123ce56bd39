# The gateway's DHT part ([dht] in its config): a Kademlia node (server mode by default) that
# bootstraps from the [dht] bootstrap list, provides one key per routed topic and connects to the
# other providers of it, so several gateways on one topic join one gossipsub mesh without listing
# each other ("a fleet outgrows one Pi").
#
# A topic's key is the CID (raw, sha2-256) of "floodsub:<topic>" — the rendezvous go-libp2p-pubsub's
# routing discovery uses — so go/js peers that advertise topics the same way meet the gateways too.
import asyncio

from microp2p import crypto
from microp2p.codec import cid, multihash
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p_host import events as E
from microp2p.io.kad import KadDHT, PROTOCOL_ID

RENDEZVOUS_INTERVAL_S = 60.0     # provide + find providers per topic this often
MAX_RENDEZVOUS_DIALS = 16        # other gateways dialled per topic per round
RENDEZVOUS_DIAL_TIMEOUT_S = 10.0


def topic_key(topic):
    """The DHT key (a sha2-256 multihash) of a topic's rendezvous."""
    return multihash.encode(multihash.SHA2_256, crypto.sha256(("floodsub:" + topic).encode()))


def topic_cid(topic):
    return cid.encode(cid.RAW, topic_key(topic))


class GatewayDHT:
    def __init__(self, gateway, mode="server", protocol=None, bootstrap=(), interval_s=RENDEZVOUS_INTERVAL_S):
        self.gw = gateway
        self.dht = KadDHT(gateway.node, mode, protocol or PROTOCOL_ID)
        self.bootstrap_addrs = list(bootstrap)
        self.interval_s = interval_s
        self._provided_to = {}   # topic -> peers the last provide reached
        self.dht.addr_hooks.append(self.device_addrs)

    def device_addrs(self, pid):
        """FIND_NODE for a connected allow-listed device: its circuit address through us
        (docs/architecture.md: <gateway addr>/p2p/GW/p2p-circuit/p2p/DEV), when we serve relay
        hops."""
        gw = self.gw
        if not getattr(gw.config, "relay_hop", False):
            return []
        text = str(PeerId(pid))
        dev = gw.devices.get(text)
        if dev is None or dev.state != "connected":
            return []
        me = str(gw.node.peer_id)
        return [Multiaddr.from_string("%s/p2p/%s/p2p-circuit/p2p/%s" % (a, me, text))
                for a in gw.node.advertised_addrs()[:2]]

    async def run(self, stop):
        n = await self.dht.bootstrap(self.bootstrap_addrs)
        self.gw.emit(E.DHT_BOOTSTRAP, {"reached": n, "of": len(self.bootstrap_addrs),
                                       "table": len(self.dht.table)})
        while not stop.is_set():
            for topic in self.gw.config.topics:
                try:
                    await self._rendezvous(topic)
                except Exception as e:
                    self.gw.log("dht rendezvous %s: %s %s" % (topic, type(e).__name__, e))
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass

    async def _rendezvous(self, topic):
        key = topic_key(topic)
        # provide until some peer holds the record; after that the DHT's re-provide keeps it
        if not self._provided_to.get(topic):
            n = await self.dht.provide(key)
            self._provided_to[topic] = n
            self.gw.emit(E.DHT_PROVIDED, {"topic": topic, "key": topic_cid(topic), "peers": n})
        found = await self.dht.find_providers(key)
        node = self.gw.node
        me = node.peer_id.to_bytes()
        dialled = 0
        others = []
        for pid, addrs in found:
            if pid == me:
                continue
            others.append(str(PeerId(pid)))
            if node.connection_to(PeerId(pid)) is not None or dialled >= MAX_RENDEZVOUS_DIALS:
                continue
            dialled += 1
            try:
                await asyncio.wait_for(self.dht.connect(pid, addrs), RENDEZVOUS_DIAL_TIMEOUT_S)
            except Exception as e:
                self.gw.log("dht: cannot reach provider %s: %s" % (PeerId(pid), e))
        self.gw.emit(E.DHT_PROVIDERS, {"topic": topic, "key": topic_cid(topic), "providers": others})
