"""A real py-libp2p (0.8.1) peer for microp2p's interop tests, run from tests/interop/.venv-py.

It follows the `microp2p node` command-line contract (docs/architecture.md, "Command line"):

    python py_peer.py --listen MA [--seed HEX64] [--dial MA]... [--sub TOPIC]... [--pub TOPIC:MSG]...
                      [--pub-wait-ms N] [--gossip-protocols P1,P2] [--no-spam-protection]
                      [--dht client|server]   (Kademlia: find_peer, get_closest_peers, provide,
                                               find_providers commands, as `microp2p node --dht`)
                      [--relay-hop]           (serve circuit relay v2 hop)
    --listen <relay MA ending in /p2p/RELAY_ID>/p2p-circuit: never bound locally; reserves a slot
      on that relay (py-libp2p's CircuitV2Transport.reserve) and accepts relayed connections
      (CircuitV2Protocol's STOP handler); each reservation is reported as
      {"event":"relay:reservation","relay":ID,"addrs":[".../p2p-circuit/p2p/SELF"],"expire":UNIX_S}.
    dial / ping / echo with an address containing /p2p-circuit go through that relay
      (CircuitV2Transport.dial); connection:open carries "relayed": true for relayed connections.
    python py_peer.py --print-id --seed HEX64

stdout carries JSON lines only (events); stdin takes JSON lines (commands); logs go to stderr.
Exits on {"cmd":"stop"}, stdin EOF or SIGTERM. Same events and commands as js_peer.mjs.
"""
import argparse
import hashlib
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time

ECHO_PROTOCOL = "/microp2p/echo/1.0.0"
CIRCUIT = "/p2p-circuit"
# A reservation that failed is tried again after this long (the relay may be restarting).
RESERVE_RETRY_S = 2.0
RESERVATION_POLL_S = 1.0
# Bounds: every wait ends by itself so a test can never hang on this peer.
PUB_WAIT_MS_DEFAULT = 10000
PUB_RETRY_S = 0.1
DIAL_TIMEOUT_S = 10.0
ECHO_TIMEOUT_S = 60.0
ECHO_CHUNK = 16384
ECHO_READ_MAX = 65536
ECHO_MAX_STREAMS = 256
STOP_TIMEOUT_S = 3.0
STDIN_LINE_MAX = 1 << 20
DHT_QUERY_TIMEOUT_S = 30.0
DHT_IDENTIFY_WAIT_S = 5.0
GOSSIP_HEARTBEAT_S = 1
# Bench payloads (same layout as microp2p's cli_node.py and js_peer.mjs):
#   b"BNCH" + index (4 bytes BE) + wall-clock send time in us (8 bytes BE) + padding.
BENCH_MAGIC = b"BNCH"
BENCH_HEADER = 16
BENCH_MAX_COUNT = 1000000
BENCH_MAX_WAIT_MS = 600000


def wall_us():
    return time.time_ns() // 1000


def bench_summary(b):
    lat = sorted(b["lat"])

    def pct(q):
        return lat[int(q * (len(lat) - 1) + 0.5)] / 1000 if lat else None

    span = b["last_recv"] - b["first_sent"] if b["got"] else None
    return {"topic": b["topic"], "want": b["want"], "received": b["got"], "spanUs": span,
            "rate": b["got"] * 1e6 / span if span else None, "p50Ms": pct(0.5), "p99Ms": pct(0.99),
            "maxMs": lat[-1] / 1000 if lat else None}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def err_text(e):
    return "%s: %s" % (type(e).__name__, e)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="py_peer.py")
    p.add_argument("--listen", action="append", default=[])
    p.add_argument("--seed")
    p.add_argument("--dial", action="append", default=[])
    p.add_argument("--sub", action="append", default=[])
    p.add_argument("--pub", action="append", default=[])
    p.add_argument("--pub-wait-ms", type=int, default=PUB_WAIT_MS_DEFAULT)
    p.add_argument("--print-id", action="store_true")
    p.add_argument("--relay-hop", action="store_true",
                   help="serve circuit relay v2 hop (py-libp2p's CircuitV2Protocol, allow_hop=True)")
    p.add_argument("--gossip-protocols", default=None,
                   help="comma-separated pubsub protocol ids, e.g. /meshsub/1.1.0 (no IDONTWANT)")
    # py-libp2p drops more than 10 msg/s/topic per peer by default; benches need it off.
    p.add_argument("--no-spam-protection", action="store_true")
    p.add_argument("--dht", choices=("client", "server"), default=None)
    p.add_argument("--dht-protocol", default=None, help="py-libp2p serves /ipfs/kad/1.0.0 only")
    o = p.parse_args(argv)
    if o.seed is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", o.seed):
        p.error("--seed wants 64 hex digits")
    pubs = []
    for v in o.pub:
        topic, sep, data = v.partition(":")
        if not sep or not topic:
            p.error("--pub wants TOPIC:MSG")
        pubs.append((topic, data))
    o.pub = pubs
    for a in o.listen:
        if CIRCUIT in a and (not a.endswith(CIRCUIT) or "/p2p/" not in a[:-len(CIRCUIT)]):
            p.error("--listen %s: a relay listen address is <relay MA>/p2p/RELAY_ID/p2p-circuit" % a)
    if not o.listen:
        o.listen = ["/ip4/127.0.0.1/tcp/0"]
    if o.dht_protocol not in (None, "/ipfs/kad/1.0.0"):
        p.error("py-libp2p's KadDHT serves /ipfs/kad/1.0.0 only")
    return o


def key_pair_for(seed_hex):
    from libp2p.crypto.ed25519 import create_new_key_pair

    return create_new_key_pair(bytes.fromhex(seed_hex) if seed_hex else secrets.token_bytes(32))


def print_id(seed_hex):
    from libp2p.peer.id import ID

    print(ID.from_pubkey(key_pair_for(seed_hex).public_key).to_base58())


def main(argv):
    opts = parse_args(argv)
    if opts.print_id:
        if not opts.seed:
            sys.exit("--print-id needs --seed")
        print_id(opts.seed)
        return 0
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("PY_PEER_LOG", "WARNING"))
    # Until trio takes over the signal, SIGTERM during the imports still means a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    import trio

    try:
        trio.run(run_peer, opts)
    except KeyboardInterrupt:
        pass
    emit({"event": "stopped"})
    return 0


async def run_peer(opts):
    import trio
    import multiaddr
    import libp2p.host.basic_host as basic_host
    from libp2p import new_host
    from libp2p.abc import INotifee
    from libp2p.host.ping import PingService
    from libp2p.network.stream.exceptions import StreamEOF
    from libp2p.peer.id import ID
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.rcmgr import Direction
    from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
    from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL_ID, CircuitV2Protocol
    from libp2p.relay.circuit_v2.transport import CircuitV2Transport
    from multiaddr.protocols import P_P2P_CIRCUIT
    from libp2p.tools.anyio_service import background_trio_service

    def maddr_text(b):
        try:
            return str(multiaddr.Multiaddr(b))
        except Exception:
            return None

    # Identify results are not exposed by py-libp2p: wrap the function its host calls with each
    # identify answer, and report it like js's "peer:identify".
    original_update = basic_host.update_peerstore_from_identify

    async def update_and_report(peerstore, peer_id, msg):
        await original_update(peerstore, peer_id, msg)
        emit({
            "event": "identify",
            "peer": peer_id.to_base58(),
            "protocols": list(msg.protocols),
            "agentVersion": msg.agent_version if msg.HasField("agent_version") else None,
            "protocolVersion": msg.protocol_version if msg.HasField("protocol_version") else None,
            "listenAddrs": [a for a in (maddr_text(x) for x in msg.listen_addrs) if a],
            "observedAddr": maddr_text(msg.observed_addr) if msg.HasField("observed_addr") else None,
        })

    basic_host.update_peerstore_from_identify = update_and_report
    # py-libp2p skips identify for peers it identified before (cached protocols); js identifies on
    # every new connection, and tests expect an "identify" event per connection.
    basic_host.BasicHost._has_cached_protocols = lambda self, peer_id: peer_id in self._identified_peers

    listen = [multiaddr.Multiaddr(a) for a in opts.listen if CIRCUIT not in a]
    circuit_listen = [multiaddr.Multiaddr(a) for a in opts.listen if CIRCUIT in a]
    host = new_host(key_pair=key_pair_for(opts.seed), listen_addrs=listen)
    my_id = host.get_id()

    # Circuit relay v2 client side: the transport (dial through a relay, reserve) is made on
    # first use; "circuits" holds our /p2p-circuit addresses per relay while reserved.
    relay = {"protocol": None, "transport": None, "circuits": {}}

    def relay_transport():
        if relay["transport"] is None:
            # roles=STOP only: with CLIENT, CircuitV2Transport.dial_peer_info first RESERVEs on
            # the relay it dials through (a slot per dialler); reservations are asked for here
            # explicitly, for --listen .../p2p-circuit only.
            proto = relay["protocol"] or CircuitV2Protocol(host, allow_hop=False)
            relay["transport"] = CircuitV2Transport(host, proto, RelayConfig(roles=RelayRole.STOP))
        return relay["transport"]

    # py-libp2p 0.8.1 cannot announce a circuit address itself: BasicHost.get_addrs()
    # (host/basic_host.py:534-538) strips "any existing /p2p/ component" with
    # value_for_protocol("p2p"), which is the RELAY's id in <relay>/p2p/R/p2p-circuit, and
    # decapsulate() then cuts the address at it: /ip4/../tcp/RELAY_PORT/p2p/SELF (the relay's
    # socket with our id) is what announce_addrs / addrs_factory would put in identify. So the
    # circuit addresses are appended after it, complete.
    transport_get_addrs = host.get_addrs

    def get_addrs_with_circuits():
        out = list(transport_get_addrs())
        for addrs in relay["circuits"].values():
            out.extend(addrs)
        return out

    host.get_addrs = get_addrs_with_circuits
    protocols = [PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID]
    if opts.gossip_protocols:
        protocols = [p for p in opts.gossip_protocols.split(",") if p]
    router = GossipSub(
        protocols=protocols,
        degree=6, degree_low=4, degree_high=12,
        heartbeat_interval=GOSSIP_HEARTBEAT_S,
        spam_protection_enabled=not opts.no_spam_protection,
    )
    pubsub = Pubsub(host, router)
    pinger = PingService(host)
    dht = None
    if opts.dht:
        from libp2p.kad_dht.kad_dht import KadDHT, DHTMode
        dht = KadDHT(host, DHTMode.SERVER if opts.dht == "server" else DHTMode.CLIENT)

    def circuit_addr_of(conn):
        # A relayed connection's raw connection carries /p2p/RELAY/p2p-circuit/p2p/REMOTE (the
        # muxer and the secure session delegate to it); the swarm connection learns it only
        # after its "connected" notification, so ask the muxed connection.
        try:
            for a in conn.muxed_conn.get_transport_addresses() or []:
                if CIRCUIT in str(a):
                    return str(a)
        except Exception:
            pass
        return None

    def conn_info(conn):
        peer = conn.muxed_conn.peer_id
        addr = circuit_addr_of(conn)
        relayed = addr is not None
        if addr is None:
            addrs = []
            try:
                addrs = conn.get_transport_addresses()
            except Exception:
                pass
            addr = str(addrs[0]) if addrs else None
        if addr and "/p2p/" not in addr:
            addr += "/p2p/" + peer.to_base58()
        d = getattr(conn, "direction", None)
        direction = {Direction.INBOUND: "inbound", Direction.OUTBOUND: "outbound"}.get(d, "unknown")
        return {"peer": peer.to_base58(), "addr": addr, "direction": direction, "relayed": relayed}

    class Reporter(INotifee):
        async def opened_stream(self, network, stream):
            pass

        async def closed_stream(self, network, stream):
            pass

        async def connected(self, network, conn):
            emit(dict(event="connection:open", **conn_info(conn)))

        async def disconnected(self, network, conn):
            emit(dict(event="connection:close", **conn_info(conn)))

        async def listen(self, network, maddr):
            pass

        async def listen_close(self, network, maddr):
            pass

    host.get_network().register_notifee(Reporter())

    async def echo_serve(stream):
        try:
            while True:
                try:
                    data = await stream.read(ECHO_READ_MAX)
                except StreamEOF:
                    break
                if not data:
                    break
                await stream.write(data)
            await stream.close_write()
        except Exception as e:
            logging.debug("echo stream failed: %s", e)
            try:
                await stream.reset()
            except Exception:
                pass

    host.set_stream_handler(ECHO_PROTOCOL, echo_serve)

    stop = trio.Event()
    subscriptions = {}
    bench = {"state": None}

    async def deliver(topic, sub):
        async for msg in sub:
            # The contract (and js) has emitSelf off; py-libp2p hands our own messages back.
            if msg.from_id == my_id.to_bytes():
                continue
            b = bench["state"]
            data = msg.data
            if b is not None and data[:4] == BENCH_MAGIC and len(data) >= BENCH_HEADER and \
                    (msg.topicIDs[0] if msg.topicIDs else topic) == b["topic"]:
                # Counted silently: a JSON line per message would be what the bench measures.
                now = wall_us()
                sent = int.from_bytes(data[8:16], "big")
                if b["first_sent"] is None or sent < b["first_sent"]:
                    b["first_sent"] = sent
                b["last_recv"] = now
                if len(b["lat"]) < BENCH_MAX_COUNT:
                    b["lat"].append(now - sent)
                b["got"] += 1
                if b["got"] >= b["want"]:
                    b["done"].set()
                continue
            emit({
                "event": "gossip:message",
                "topic": msg.topicIDs[0] if msg.topicIDs else topic,
                "from": ID(msg.from_id).to_base58() if msg.from_id else None,
                "data": msg.data.decode("utf-8", "replace"),
                "seqno": msg.seqno.hex() if msg.seqno else None,
                # The author's signature as py received it, so a test can re-check it.
                "signature": msg.signature.hex() if msg.signature else None,
            })

    async def subscribe(nursery, topic):
        if topic not in subscriptions:
            sub = await pubsub.subscribe(topic)
            subscriptions[topic] = sub
            nursery.start_soon(deliver, topic, sub)

    def topic_peers(topic):
        known = pubsub.peer_topics.get(topic, set())
        return sorted(p.to_base58() for p in known if p in pubsub.peers)

    async def publish_when_subscribed(topic, data, wait_ms):
        # Publish once some connected peer has announced the topic and has a pubsub stream,
        # within wait_ms; otherwise report an error (like js's NoPeersSubscribedToTopic).
        with trio.move_on_after(wait_ms / 1000.0):
            while not topic_peers(topic):
                await trio.sleep(PUB_RETRY_S)
        recipients = topic_peers(topic)
        if not recipients:
            emit({"event": "error", "where": "publish", "topic": topic,
                  "message": "no peer subscribed to %s within %d ms" % (topic, wait_ms)})
            return
        await pubsub.publish(topic, data.encode())
        emit({"event": "published", "topic": topic, "data": data, "recipients": recipients})

    publish_lock = trio.Lock()

    async def queued_publish(topic, data, wait_ms):
        # Publishes go out in the order they were asked for.
        async with publish_lock:
            try:
                await publish_when_subscribed(topic, data, wait_ms)
            except Exception as e:
                emit({"event": "error", "where": "publish", "topic": topic, "message": err_text(e)})

    async def connect(addr):
        if CIRCUIT in addr:
            return await connect_circuit(multiaddr.Multiaddr(addr))
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        with trio.fail_after(DIAL_TIMEOUT_S):
            await host.connect(info)
        return info.peer_id

    async def connect_circuit(ma):
        # The swarm never dials /p2p-circuit addresses itself (network/swarm.py skips them
        # "this node has no relay transport"): py-libp2p's relay transport does, and hands the
        # upgraded connection to the swarm (add_conn), where new_stream finds it.
        dest = ma.get_peer_id()   # the LAST /p2p/ID: the target, not the relay
        if not dest or ma.protocols()[-1].name != "p2p":
            raise ValueError("a circuit address ends in /p2p-circuit/p2p/TARGET_ID: %s" % ma)
        peer = ID.from_base58(dest)
        if host.get_network().get_connections(peer):
            return peer
        with trio.fail_after(DIAL_TIMEOUT_S):
            await relay_transport().dial(ma)
        return peer

    async def target_peer(cmd):
        if cmd.get("addr"):
            return await connect(cmd["addr"])
        if cmd.get("peer"):
            return ID.from_base58(cmd["peer"])
        raise ValueError('command needs "addr" or "peer"')

    async def echo_once(peer, size, results):
        payload = secrets.token_bytes(size)
        stream = await host.new_stream(peer, [ECHO_PROTOCOL])
        got = hashlib.sha256()
        received = 0

        async def writer():
            for off in range(0, size, ECHO_CHUNK):
                await stream.write(payload[off:off + ECHO_CHUNK])
            await stream.close_write()

        async with trio.open_nursery() as n:
            n.start_soon(writer)
            while True:
                try:
                    data = await stream.read(ECHO_READ_MAX)
                except StreamEOF:
                    break
                if not data:
                    break
                got.update(data)
                received += len(data)
        if received != size or got.digest() != hashlib.sha256(payload).digest():
            raise ValueError("echo mismatch: sent %d bytes, got %d" % (size, received))
        results.append(received)

    async def cmd_dial(cmd, nursery):
        peer = await connect(cmd["addr"])
        if dht is not None:
            await dht_add_when_identified(peer)  # "dialed" once the DHT knows it (bounded)
        emit({"event": "dialed", "peer": peer.to_base58(), "addr": cmd["addr"]})

    async def dht_add_when_identified(peer):
        # py-libp2p's table takes a dialed peer only once identify says it serves kad; identify
        # runs after connect(): wait for it (bounded), then offer the peer.
        with trio.move_on_after(DHT_IDENTIFY_WAIT_S):
            while True:
                try:
                    protos = host.get_peerstore().get_protocols(peer)
                except Exception:
                    protos = None
                if protos:
                    break
                await trio.sleep(0.05)
        try:
            await dht.add_peer(peer)
            # bootstrap as real nodes do: a self lookup, so the peers we reached learn us too
            # (py-libp2p servers take in a peer when it sends them a request)
            with trio.move_on_after(DHT_QUERY_TIMEOUT_S):
                await dht.peer_routing.find_closest_peers_network(my_id.to_bytes())
        except Exception as e:
            logging.warning("dht bootstrap via %s: %s", peer, e)

    def dht_key(text):
        # a peer id's bytes, or a CID's multihash (CIDv1 any codec, CIDv0)
        try:
            return ID.from_base58(text).to_bytes()
        except Exception:
            from libp2p.kad_dht.kad_dht import _encode_key
            return _encode_key(text)

    def id_of(cmd):
        return {"id": cmd["id"]} if "id" in cmd else {}

    def need_dht():
        if dht is None:
            raise ValueError("no DHT: start with --dht client|server")
        return dht

    async def cmd_find_peer(cmd, nursery):
        d = need_dht()
        info = None
        with trio.move_on_after(DHT_QUERY_TIMEOUT_S):
            try:
                info = await d.find_peer(ID.from_base58(cmd["peer"]))
            except Exception as e:
                logging.warning("find_peer: %s", err_text(e))
        addrs = [str(a) for a in info.addrs] if info is not None else []
        emit(dict(event="dht:find_peer", **id_of(cmd), peer=cmd["peer"],
                  found=info is not None and bool(addrs), addrs=addrs))

    async def cmd_get_closest_peers(cmd, nursery):
        d = need_dht()
        peers = []
        with trio.move_on_after(DHT_QUERY_TIMEOUT_S):
            try:
                peers = await d.peer_routing.find_closest_peers_network(dht_key(cmd["key"]))
            except Exception as e:
                logging.warning("get_closest_peers: %s", err_text(e))
        emit(dict(event="dht:closest_peers", **id_of(cmd), key=cmd["key"],
                  peers=[p.to_base58() for p in peers if p != my_id]))

    async def cmd_provide(cmd, nursery):
        d = need_dht()
        # py's provide() says only whether some peer took it; count the ADD_PROVIDERs that went out
        sent = []
        ps = d.provider_store
        orig = ps._send_add_provider

        async def counting(peer_id, key):
            ok = await orig(peer_id, key)
            if ok:
                sent.append(peer_id)
            return ok

        ps._send_add_provider = counting
        try:
            with trio.move_on_after(DHT_QUERY_TIMEOUT_S):
                await ps.provide(dht_key(cmd["key"]))
        except Exception as e:
            logging.warning("provide: %s", err_text(e))
        finally:
            ps._send_add_provider = orig
        emit(dict(event="dht:provided", **id_of(cmd), key=cmd["key"], peers=len(set(sent))))

    async def cmd_find_providers(cmd, nursery):
        d = need_dht()
        found = []
        with trio.move_on_after(DHT_QUERY_TIMEOUT_S):
            try:
                found = await d.provider_store.find_providers(dht_key(cmd["key"]), int(cmd.get("count", 20)))
            except Exception as e:
                logging.warning("find_providers: %s", err_text(e))
        emit(dict(event="dht:providers", **id_of(cmd), key=cmd["key"],
                  providers=[{"id": p.peer_id.to_base58(), "addrs": [str(a) for a in p.addrs]}
                             for p in found if p.peer_id != my_id]))

    async def cmd_ping(cmd, nursery):
        peer = await target_peer(cmd)
        with trio.fail_after(DIAL_TIMEOUT_S * max(1, int(cmd.get("count", 1)))):
            async for rtt in pinger.ping_iter(peer, ping_amt=int(cmd.get("count", 1))):
                emit({"event": "ping", "peer": peer.to_base58(), "rtt": rtt})

    async def cmd_publish(cmd, nursery):
        await queued_publish(cmd["topic"], cmd.get("data", ""), int(cmd.get("wait_ms", opts.pub_wait_ms)))

    async def cmd_subscribe(cmd, nursery):
        await subscribe(nursery, cmd["topic"])
        emit({"event": "subscribed", "topic": cmd["topic"]})

    async def cmd_publish_many(cmd, nursery):
        # `count` bench payloads of `size` bytes every `interval_ms` (0: a burst, each publish
        # awaited in turn).
        topic = cmd["topic"]
        n = min(int(cmd.get("count", 1)), BENCH_MAX_COUNT)
        size = max(int(cmd.get("size", 100)), BENCH_HEADER)
        interval = int(cmd.get("interval_ms", 0))
        pad = b"\x5a" * (size - BENCH_HEADER)
        t0 = time.monotonic()
        failed = 0
        for i in range(n):
            if interval:
                wait = i * interval / 1000 - (time.monotonic() - t0)
                if wait > 0:
                    await trio.sleep(wait)
            data = BENCH_MAGIC + i.to_bytes(4, "big") + wall_us().to_bytes(8, "big") + pad
            try:
                await pubsub.publish(topic, data)
            except Exception:
                failed += 1
        emit({"event": "published-many", "topic": topic, "count": n, "failed": failed,
              "ms": round((time.monotonic() - t0) * 1000), "recipients": len(topic_peers(topic))})

    async def cmd_bench_recv(cmd, nursery):
        want = min(int(cmd.get("count", 1)), BENCH_MAX_COUNT)
        wait_ms = min(int(cmd.get("timeout_ms", 60000)), BENCH_MAX_WAIT_MS)
        b = {"topic": cmd["topic"], "want": want, "got": 0, "lat": [], "first_sent": None,
             "last_recv": None, "done": trio.Event()}
        bench["state"] = b
        emit({"event": "bench-armed", "topic": b["topic"], "count": want})
        with trio.move_on_after(wait_ms / 1000):
            await b["done"].wait()
        bench["state"] = None
        emit(dict(event="bench-result", **bench_summary(b)))

    async def cmd_topic_peers(cmd, nursery):
        mesh = router.mesh.get(cmd["topic"], set()) if hasattr(router, "mesh") else set()
        emit({"event": "topic-peers", "topic": cmd["topic"], "peers": topic_peers(cmd["topic"]),
              "mesh": sorted(p.to_base58() for p in mesh)})

    async def cmd_peers(cmd, nursery):
        out = []
        for conns in host.get_network().get_connections_map().values():
            out.extend(conn_info(c) for c in conns)
        emit({"event": "peers", "peers": out})

    async def cmd_hangup(cmd, nursery):
        peer = await target_peer(cmd)
        with trio.fail_after(DIAL_TIMEOUT_S):
            await host.disconnect(peer)
        emit({"event": "hangup", "peer": peer.to_base58()})

    async def cmd_echo(cmd, nursery):
        peer = await target_peer(cmd)
        streams = max(1, min(ECHO_MAX_STREAMS, int(cmd.get("streams", 1))))
        size = int(cmd.get("size", 1024))
        results = []
        t0 = time.monotonic()
        try:
            with trio.fail_after(ECHO_TIMEOUT_S):
                async with trio.open_nursery() as n:
                    for _ in range(streams):
                        n.start_soon(echo_once, peer, size, results)
            emit({"event": "echo", "ok": True, "peer": peer.to_base58(), "streams": streams,
                  "bytes": sum(results), "ms": round((time.monotonic() - t0) * 1000)})
        except BaseException as e:
            if isinstance(e, trio.Cancelled):
                raise
            emit({"event": "echo", "ok": False, "peer": peer.to_base58(), "streams": streams,
                  "error": err_text(e), "ms": round((time.monotonic() - t0) * 1000)})

    async def reserve_once(relay_ma, relay_id, nursery):
        t = relay_transport()
        with trio.fail_after(DIAL_TIMEOUT_S):
            await host.connect(info_from_p2p_addr(relay_ma))
            stream = await host.new_stream(relay_id, [HOP_PROTOCOL_ID])
        try:
            # reserve() sends RESERVE, reads the STATUS (bounded by its own 15 s timeout),
            # records the expiry and starts py-libp2p's refresher (30 s before expiry).
            # It answers only True/False (the reason goes to its log, on stderr).
            ok = await t.reserve(stream, relay_id, nursery)
        finally:
            with trio.move_on_after(STOP_TIMEOUT_S):
                await stream.close()
        if not ok:
            raise ConnectionError("reservation on %s refused or failed (see the log)" % relay_id)

    async def keep_reservation(listen_ma, nursery):
        relay_ma = listen_ma.decapsulate_code(P_P2P_CIRCUIT)
        relay_id = ID.from_base58(relay_ma.get_peer_id())
        t = relay_transport()
        mine = relay_ma.encapsulate(multiaddr.Multiaddr(CIRCUIT + "/p2p/" + my_id.to_base58()))
        reported = None
        while True:
            expire = t._reservations.get(relay_id)
            if expire and not host.get_network().get_connections(relay_id):
                # the relay ends a reservation with the connection it came on (spec); py's
                # refresher would only renew it 30 s before expiry
                t._reservations.pop(relay_id, None)
                t._reservation_proofs.pop(relay_id, None)
                expire = None
            if not expire:
                # none yet, or py's refresher let it lapse / dropped it: reserve (again)
                relay["circuits"].pop(relay_id, None)
                try:
                    await reserve_once(relay_ma, relay_id, nursery)
                except Exception as e:
                    emit({"event": "error", "where": "reserve", "relay": relay_id.to_base58(),
                          "message": err_text(e)})
                    await trio.sleep(RESERVE_RETRY_S)
                    continue
                expire = t._reservations.get(relay_id)
            if expire != reported:
                # a new reservation or a renewal by py's refresher
                relay["circuits"][relay_id] = [mine]
                emit({"event": "relay:reservation", "relay": relay_id.to_base58(),
                      "addrs": [str(mine)], "expire": expire})
                reported = expire
            await trio.sleep(RESERVATION_POLL_S)

    async def cmd_stop(cmd, nursery):
        stop.set()

    commands = {
        "dial": cmd_dial, "ping": cmd_ping, "publish": cmd_publish, "subscribe": cmd_subscribe,
        "topic-peers": cmd_topic_peers, "peers": cmd_peers, "hangup": cmd_hangup, "echo": cmd_echo,
        "stop": cmd_stop, "publish-many": cmd_publish_many, "bench-recv": cmd_bench_recv,
        "find_peer": cmd_find_peer, "get_closest_peers": cmd_get_closest_peers,
        "provide": cmd_provide, "find_providers": cmd_find_providers,
    }

    async def run_command(line, nursery):
        try:
            cmd = json.loads(line)
            name = cmd["cmd"]
        except (ValueError, KeyError, TypeError) as e:
            emit({"event": "error", "where": "stdin", "message": "bad command: %s" % err_text(e)})
            return
        fn = commands.get(name)
        if fn is None:
            emit({"event": "error", "where": "stdin", "cmd": name, "message": "unknown command"})
            return
        try:
            await fn(cmd, nursery)
        except Exception as e:
            emit({"event": "error", "where": name, "cmd": name, "message": err_text(e)})

    async def read_stdin(nursery):
        # A thread does the blocking reads, so stdin keeps its blocking mode (not shared with trio).
        token = trio.lowlevel.current_trio_token()
        send, recv = trio.open_memory_channel(64)

        def reader():
            try:
                for raw in sys.stdin.buffer:
                    line = raw[:STDIN_LINE_MAX].decode("utf-8", "replace").strip()
                    if line:
                        trio.from_thread.run(send.send, line, trio_token=token)
            except Exception:
                pass
            finally:
                try:
                    trio.from_thread.run_sync(send.close, trio_token=token)
                except Exception:
                    pass

        threading.Thread(target=reader, name="stdin", daemon=True).start()
        async with recv:
            async for line in recv:
                nursery.start_soon(run_command, line, nursery)
        stop.set()  # stdin EOF

    async def watch_signals(signals):
        async for _ in signals:
            stop.set()
            return

    async def background_dht(d):
        async with background_trio_service(d):
            await trio.sleep_forever()

    def hard_exit_later():
        # py-libp2p's shutdown can wait on peers; the contract says we exit within seconds.
        t = threading.Timer(STOP_TIMEOUT_S, lambda: (emit({"event": "stopped", "forced": True}), os._exit(0)))
        t.daemon = True
        t.start()

    import contextlib
    relay_ctx = contextlib.nullcontext()
    if opts.relay_hop or circuit_listen:
        # allow_hop: serve HOP; the service always serves STOP (accepts relayed connections)
        relay["protocol"] = CircuitV2Protocol(host, allow_hop=opts.relay_hop)
        relay_ctx = background_trio_service(relay["protocol"])

    # Catch SIGTERM before "started" goes out: a test may send it right after.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with host.run(listen_addrs=listen), relay_ctx:
            async with background_trio_service(pubsub):
                async with background_trio_service(router):
                    await pubsub.wait_until_ready()
                    async with trio.open_nursery() as nursery:
                        if dht is not None:
                            nursery.start_soon(background_dht, dht)
                        for topic in opts.sub:
                            await subscribe(nursery, topic)
                        addrs = [str(a) for a in host.get_addrs()]
                        addrs = [a if "/p2p/" in a else a + "/p2p/" + my_id.to_base58() for a in addrs]
                        emit({"event": "started", "peerId": my_id.to_base58(), "addrs": addrs})
                        nursery.start_soon(read_stdin, nursery)
                        nursery.start_soon(watch_signals, signals)
                        for ma in circuit_listen:
                            nursery.start_soon(keep_reservation, ma, nursery)

                        async def startup_actions():
                            for addr in opts.dial:
                                await run_command(json.dumps({"cmd": "dial", "addr": addr}), nursery)
                            for topic, data in opts.pub:
                                nursery.start_soon(queued_publish, topic, data, opts.pub_wait_ms)

                        nursery.start_soon(startup_actions)
                        await stop.wait()
                        hard_exit_later()
                        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # The stdin reader thread may still sit in a blocking read (SIGTERM path); a normal
    # interpreter shutdown would then abort on the stdin buffer lock.
    os._exit(code)
