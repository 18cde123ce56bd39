# The gateway's DHT part: topic rendezvous keys (go-libp2p-pubsub's routing discovery key: the
# raw CIDv1 of sha2-256("floodsub:" + topic)), the [dht] config section, and FIND_NODE naming a
# connected device by its circuit address when the gateway serves relay hops.
import hashlib

import microp2p_host  # noqa: F401
from microp2p.codec import cid
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p.io import node as nodemod
from microp2p.codec.multiaddr import Multiaddr
from microp2p_host import gateway_dht
from microp2p_host.gateway import GatewayConfig, ConfigError


def test_topic_key_is_the_pubsub_discovery_cid():
    key = gateway_dht.topic_key("sensors/readings")
    assert key == b"\x12\x20" + hashlib.sha256(b"floodsub:sensors/readings").digest()
    codec, mh = cid.decode(gateway_dht.topic_cid("sensors/readings"))
    assert codec == cid.RAW and mh == key


def test_dht_config_section():
    base = {"network": {"listen": ["/ip4/127.0.0.1/tcp/0"]}}
    c = GatewayConfig.from_dict(dict(base))
    assert c.dht_mode is None
    pid = str(PeerId.from_public_key(Ed25519PrivateKey.from_seed(b"\x01" * 32).public_key))
    c = GatewayConfig.from_dict(dict(base, dht={"mode": "server", "bootstrap": ["/ip4/127.0.0.1/tcp/9/p2p/" + pid],
                                                "rendezvous_interval_s": 5}))
    assert c.dht_mode == "server" and c.dht_bootstrap and c.dht_rendezvous_s == 5
    for bad in ({"mode": "both"}, {"bootstrap": ["/ip4/127.0.0.1/tcp/9"]}, {"rendezvous_interval_s": 0}):
        try:
            GatewayConfig.from_dict(dict(base, dht=bad))
            raise AssertionError("accepted %r" % bad)
        except ConfigError:
            pass


class _Dev:
    def __init__(self, state):
        self.state = state


class _Cfg:
    relay_hop = True
    topics = []


class _Gw:
    def __init__(self, node, devices):
        self.node = node
        self.devices = devices
        self.config = _Cfg()

    def emit(self, *a):
        pass

    def _log(self, *a):
        pass


def test_find_node_names_connected_devices_by_circuit_address():
    node = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x02" * 32))
    node.add_address("/ip4/192.0.2.1/tcp/4001")
    dev = PeerId.from_public_key(Ed25519PrivateKey.from_seed(b"\x03" * 32).public_key)
    gw = _Gw(node, {str(dev): _Dev("connected")})
    g = gateway_dht.GatewayDHT(gw)
    want = Multiaddr.from_string("/ip4/192.0.2.1/tcp/4001/p2p/%s/p2p-circuit/p2p/%s" % (node.peer_id, dev))
    assert g.dht.peer_addrs(dev.to_bytes()) == [want]
    gw.devices[str(dev)].state = "disconnected"
    assert g.dht.peer_addrs(dev.to_bytes()) == []
    gw.devices[str(dev)].state = "connected"
    gw.config.relay_hop = False
    assert g.dht.peer_addrs(dev.to_bytes()) == []
