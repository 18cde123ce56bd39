# `microp2p node`: one peer driven by arguments and JSON commands on stdin, reporting JSON lines on
# stdout. Portable: the host CLI and `micropython -m microp2p.node` run this same code, so a test
# scenario runs unchanged on either runtime. Contract (docs/architecture.md, "Command line"):
#   node --listen MA [--seed HEX64 | --key FILE] [--dial MA]... [--sub TOPIC]... [--pub TOPIC:MSG]...
# stdout: JSON lines only ("started" first); logs go to stderr. Exits on stdin EOF, SIGTERM or
# {"cmd":"stop"}.
import sys
import json
from microp2p import events as E
from microp2p import crypto
from microp2p.aio import asyncio, print_exc, MICROPYTHON
from microp2p.clock import ticks_ms, ticks_diff, wall_us
from microp2p.identity.keys import Ed25519PrivateKey

USAGE = ("usage: node --listen MA [--seed HEX64|--key FILE] [--dial MA]... [--sub TOPIC]... [--pub TOPIC:MSG]... "
         "[--device] [--floodsub] [--gossip-protocols P1,P2,...] [--dht client|server] [--dht-protocol ID] "
         "[--relay-hop] [--relay-allow PEER_ID]... [--verbose] [--version]")
HELP = USAGE + """

A libp2p peer. stdout: JSON event lines only ("started" first, with the bound addresses); logs
go to stderr. It exits on {"cmd":"stop"}, stdin EOF or SIGTERM.

  --listen <relay addr>/p2p/RELAY_ID/p2p-circuit   reserve a slot on that relay (never bound here);
                     the circuit addresses arrive in relay:reservation {relay, addrs, expire}
  --relay-hop        serve circuit relay v2 (strangers' circuits carry the default limit)
  --relay-allow ID   with --relay-hop: circuits to this peer carry no limit

stdin: one JSON command per line (an "id" field is echoed in the answer):
  {"cmd":"dial","addr":MA}                   -> dial:ok {addr, peer} | dial:error {addr, error}
  {"cmd":"ping","addr":MA[,"count":N]}       -> ping {peer, rtt} per probe
  {"cmd":"publish","topic":T,"data":TEXT}    -> published {topic, id, recipients}
  {"cmd":"subscribe","topic":T} / {"cmd":"unsubscribe","topic":T}
  {"cmd":"topic-peers","topic":T}            -> topic-peers {topic, peers, mesh}
  {"cmd":"peers"}                            -> peers {peers}
  {"cmd":"stats"}                            -> stats {stats, peers, driverDropped}
  {"cmd":"echo","peer":ID,"streams":N,"size":B}  -> echo {ok, streams, bytes, ms}
  {"cmd":"find_peer","peer":ID}              -> dht:find_peer {peer, found, addrs}     (--dht)
  {"cmd":"get_closest_peers","key":ID|CID}   -> dht:closest_peers {key, peers}
  {"cmd":"provide","key":CID}                -> dht:provided {key, peers}
  {"cmd":"find_providers","key":CID}         -> dht:providers {key, providers}
  {"cmd":"relay"}                            -> relay {reservations, hop, relayedIn, relayedOut}
  (dial/ping/echo of <relay>/p2p/R/p2p-circuit/p2p/B reach B through R: the LAST /p2p/ID)
  {"cmd":"stop"}
A malformed command answers {"event":"error","cmd":..,"error":..}."""
ECHO = "/microp2p/echo/1.0.0"  # a test protocol: echo until EOF (interop tests and benches)
ECHO_MAX_STREAMS = 256
ECHO_MAX_SIZE = 64 * 1024 * 1024
ECHO_CHUNK = 16384
PUB_WAIT_MS = 10000  # --pub waits this long (at most) for a subscriber
# publish-many / bench-recv (benchmarks, soak tests). A bench payload is
#   BENCH_MAGIC + index (4 bytes BE) + wall-clock send time in us (8 bytes BE) + padding,
# the same layout js_peer.mjs and py_peer.py use, so latency is measured across runtimes.
BENCH_MAGIC = b"BNCH"
BENCH_HEADER = 16
BENCH_MAX_COUNT = 1000000       # messages in one publish-many / bench-recv
BENCH_MAX_WAIT_MS = 600000
BENCH_BURST_YIELD = 16          # burst: let the writers run after this many publishes
BENCH_MAX_BACKLOG = 256 * 1024  # burst: wait while a peer has more than this queued unwritten


def _percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    i = int(q * (len(sorted_vals) - 1) + 0.5)
    return sorted_vals[i]


def parse_args(argv):
    opts = {"listen": [], "dial": [], "sub": [], "pub": [], "seed": None, "key": None, "device": False,
            "log": False, "floodsub": False, "gossip-protocols": None, "dht": None, "dht-protocol": None,
            "relay-hop": False, "relay-allow": []}
    multi = ("listen", "dial", "sub", "pub", "relay-allow")
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            opts["help"] = True
            return opts
        if a == "--version":
            opts["version"] = True
            return opts
        if a == "--device":
            opts["device"] = True
            i += 1
            continue
        if a == "--floodsub":
            opts["floodsub"] = True
            i += 1
            continue
        if a == "--relay-hop":
            opts["relay-hop"] = True
            i += 1
            continue
        if a == "--verbose":
            opts["log"] = True
            i += 1
            continue
        if not a.startswith("--") or i + 1 >= len(argv):
            raise ValueError("bad argument %r\n%s" % (a, USAGE))
        name = a[2:]
        if name not in opts:
            raise ValueError("unknown option %r\n%s" % (a, USAGE))
        if name in multi:
            opts[name].append(argv[i + 1])
        else:
            opts[name] = argv[i + 1]
        i += 2
    if opts["dht"] not in (None, "client", "server"):
        raise ValueError("--dht wants client or server\n%s" % USAGE)
    if opts["dht-protocol"] is not None and not opts["dht"]:
        raise ValueError("--dht-protocol needs --dht\n%s" % USAGE)
    check_opts(opts)
    return opts


def check_opts(opts):
    """Refuse bad values before anything starts, with a one-line reason (ValueError)."""
    from microp2p.codec.multiaddr import Multiaddr
    from microp2p.errors import MicroP2PError
    if opts["seed"] is not None:
        try:
            seed = bytes.fromhex(opts["seed"])
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise ValueError("--seed needs 64 hex digits (32 bytes), got %r" % opts["seed"][:80])
    if opts["seed"] and opts["key"]:
        raise ValueError("give --seed or --key, not both")
    for name in ("listen", "dial"):
        for a in opts[name]:
            if a.endswith("/p2p-circuit") and name == "listen":
                continue
            try:
                Multiaddr.from_string(a)
            except MicroP2PError as e:
                raise ValueError("--%s %s: not a multiaddr (%s)" % (name, a[:200], e))
    for spec in opts["pub"]:
        if ":" not in spec:
            raise ValueError("--pub wants TOPIC:MESSAGE, got %r" % spec[:200])
    if opts["relay-allow"] and not opts["relay-hop"]:
        raise ValueError("--relay-allow needs --relay-hop")
    for pid in opts["relay-allow"]:
        from microp2p.identity.peerid import PeerId
        try:
            PeerId.from_string(pid)
        except MicroP2PError as e:
            raise ValueError("--relay-allow %s: not a peer ID (%s)" % (pid[:200], e))
    for a in opts["listen"]:
        if "/p2p-circuit" in a and Multiaddr.from_string(a).peer_id() is None:
            raise ValueError("--listen %s: a circuit listen needs the relay's /p2p/ID before /p2p-circuit" % a[:200])


def dht_key(text):
    """A command's key -> DHT key bytes: a peer ID's multihash, or a CID's multihash (CIDv1 any
    codec, or CIDv0 text). Raises DecodeError."""
    from microp2p.codec import cid, multibase, multihash
    from microp2p.identity import peerid
    from microp2p.errors import DecodeError
    if not isinstance(text, str) or not text:
        raise DecodeError("key must be a peer ID or CID string")
    try:
        return peerid.parse_text(text)
    except (DecodeError, ValueError):
        pass
    if text.startswith("Qm"):  # CIDv0: a bare base58 sha2-256 multihash
        mh = multibase.b58decode(text)
        multihash.decode(mh)
        return mh
    return cid.decode(text)[1]


def load_key(opts):
    if opts["seed"]:
        return Ed25519PrivateKey.from_seed(bytes.fromhex(opts["seed"]))
    if opts["key"]:
        from microp2p.identity.keys import load_private_key
        from microp2p.errors import MicroP2PError
        try:
            return load_private_key(opts["key"])
        except OSError as e:
            raise ValueError("--key %s: cannot read it (%s)" % (opts["key"], getattr(e, "strerror", None) or e))
        except MicroP2PError as e:
            raise ValueError("--key %s: not a usable key file (%s)" % (opts["key"], e))
    return Ed25519PrivateKey.generate()


async def handle_echo(st):
    """The echo protocol: everything read is written back, until EOF."""
    while True:
        data = await st.read()
        if not data:
            break
        await st.write(data)
    await st.close()


class Runner:
    def __init__(self, opts, out=None):
        from microp2p.io import node as nodemod
        self.nodemod = nodemod
        self.opts = opts
        self.out = out or sys.stdout
        from microp2p.io.profile import Profile
        cfg = Profile.device() if opts["device"] else Profile()
        self.node = nodemod.Node(load_key(opts), cfg, on_event=self.emit,
                                 log=self.log if opts["log"] else None)
        self.node.handle(ECHO, handle_echo)
        self.dht = None
        if opts["dht"]:
            from microp2p.io.kad import KadDHT, PROTOCOL_ID
            self.dht = KadDHT(self.node, opts["dht"], opts["dht-protocol"] or PROTOCOL_ID)
        self.relay = None       # io.relay.RelayClient: STOP, circuit dials, reservations
        self.hop = None         # io.relay.RelayHop with --relay-hop
        self._setup_relay()
        self.done = asyncio.Event()
        self.pubsub = None
        self._bench = None      # armed bench-recv state

    def emit(self, name, fields):
        d = {"event": name}
        for k in fields:
            d[k] = fields[k]
        line = json.dumps(d)
        self.out.write(line + "\n")
        if not MICROPYTHON:
            self.out.flush()

    def log(self, msg):
        sys.stderr.write(str(msg) + "\n")

    def _setup_relay(self):
        from microp2p.io import relay
        from microp2p.identity.peerid import PeerId
        self.relay = relay.RelayClient(self.node, on_event=self.emit)
        if self.opts["relay-hop"]:
            from microp2p.proto.relay import hop
            cfg = hop.HopConfig()
            for pid in self.opts["relay-allow"]:
                cfg.unlimited.add(PeerId.from_string(pid))
            self.hop = relay.RelayHop(self.node, cfg, on_event=self.emit)

    async def run(self):
        node = self.node
        listens = self.opts["listen"] or ["/ip4/127.0.0.1/tcp/0"]
        circuits = [ma for ma in listens if "/p2p-circuit" in ma]
        for ma in listens:
            if ma not in circuits:
                await node.listen(ma)
        if circuits and len(circuits) == len(listens):
            node.start()
        self._setup_pubsub()
        self.emit(E.STARTED, {"peerId": str(node.peer_id),
                              "addrs": [str(a) + "/p2p/" + str(node.peer_id) for a in node.listen_addrs],
                              "runtime": sys.implementation.name})
        for ma in circuits:   # never bound: a slot on the relay; addrs arrive in relay:reservation
            self.relay.reserve(ma)
        for ma in self.opts["dial"]:
            await self.cmd_dial({"addr": ma})
        if self.dht is not None:
            # a self lookup through the peers dialled so far, then a refresh every 10 min
            self.node.spawn(self.dht.bootstrap())
        for spec in self.opts["pub"]:
            topic, _, msg = spec.partition(":")
            self.node.spawn(self._pub_when_ready(topic, msg))
        reader_task = asyncio.create_task(self._stdin_loop())
        await self.done.wait()
        reader_task.cancel()
        await node.stop()
        self.emit(E.STOPPED, {})

    def _setup_pubsub(self):
        try:
            from microp2p.io import pubsub as pubsub_driver
        except ImportError:
            return
        protos = self.opts["gossip-protocols"]
        self.pubsub = pubsub_driver.attach(self.node, on_message=self._on_message,
                                           on_event=self._on_pubsub_event,
                                           device=self.opts["device"], flood=self.opts["floodsub"],
                                           protocols=protos.split(",") if protos else None)
        for t in self.opts["sub"]:
            self.pubsub.subscribe(t)

    def _on_pubsub_event(self, ev):
        kind = ev[0]
        if kind in ("graft", "prune", "subscribed", "unsubscribed"):
            self.emit(E.GOSSIP_PREFIX + kind, {"peer": str(ev[1]), "topic": ev[2]})
        elif kind == "rejected":
            self.emit(E.GOSSIP_REJECTED, {"peer": str(ev[1]), "topic": ev[2], "reason": str(ev[3])})

    def _on_message(self, topic, msg):
        data = msg.get("data", b"")
        b = self._bench
        if b is not None and topic == b["topic"] and data[:4] == BENCH_MAGIC and len(data) >= BENCH_HEADER:
            # Counted silently: one JSON line per message would be the bottleneck being measured.
            now = wall_us()
            sent = int.from_bytes(data[8:16], "big")
            if b["first_sent"] is None or sent < b["first_sent"]:
                b["first_sent"] = sent
            if b["first_recv"] is None:
                b["first_recv"] = now
            b["last_recv"] = now
            if len(b["lat"]) < BENCH_MAX_COUNT:
                b["lat"].append(now - sent)
            b["got"] += 1
            if b["got"] >= b["want"]:
                b["done"].set()
            return
        try:
            text = str(data, "utf-8")
        except Exception:
            text = None
        fields = {"topic": topic, "data": text, "dataHex": bytes(data).hex(),
                  "seqno": bytes(msg.get("seqno", b"")).hex()}
        if text is None:
            # binary payloads that are CBOR (sensor readings, commands) arrive decoded too
            from microp2p.codec import cbor
            from microp2p.errors import MicroP2PError
            try:
                fields["cbor"] = _jsonable(cbor.decode(data))
            except MicroP2PError:
                pass
        frm = msg.get("from")
        if frm:
            from microp2p.identity.peerid import PeerId
            fields["from"] = str(PeerId.from_bytes(frm))
        sig = msg.get("signature")
        if sig:
            # Lets a test re-check the author's signature independently of our router.
            fields["signature"] = bytes(sig).hex()
        self.emit(E.GOSSIP_MESSAGE, fields)

    async def _pub_when_ready(self, topic, text):
        t0 = ticks_ms()
        while self.pubsub is not None and ticks_diff(ticks_ms(), t0) < PUB_WAIT_MS:
            if self.pubsub.topic_peers(topic):
                break
            await asyncio.sleep(0.1)
        await self.cmd_publish({"topic": topic, "data": text})

    async def _stdin_loop(self):
        if MICROPYTHON:
            reader = asyncio.StreamReader(sys.stdin)
            readline = reader.readline
        else:
            loop = asyncio.get_event_loop()
            reader = asyncio.StreamReader(limit=1 << 20)
            if _pollable(sys.stdin):
                await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
                readline = reader.readline
            else:
                # stdin is a file or /dev/null (nothing the event loop can poll): read it in a thread
                async def readline():
                    return await loop.run_in_executor(None, sys.stdin.buffer.readline)
        while True:
            line = await readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
                await self.command(cmd)
            except Exception as e:
                self.emit(E.ERROR, {"error": "%s: %s" % (type(e).__name__, e)})
        self.done.set()

    async def command(self, cmd):
        name = cmd.get("cmd")
        # "topic-peers" (the js/py peers' spelling) and "topic_peers" both name cmd_topic_peers.
        fn = getattr(self, "cmd_" + str(name).replace("-", "_"), None)
        if fn is None:
            raise ValueError("unknown command %r" % name)
        self.node.spawn(self._run_cmd(name, fn, cmd))

    async def _run_cmd(self, name, fn, cmd):
        try:
            await fn(cmd)
        except Exception as e:
            fields = {"cmd": name, "error": "%s: %s" % (type(e).__name__, e)}
            if "id" in cmd:
                fields["id"] = cmd["id"]   # the contract: a command's id is echoed in its answer
            self.emit(E.ERROR, fields)

    def _peer(self, cmd):
        from microp2p.identity.peerid import PeerId
        from microp2p.codec.multiaddr import Multiaddr
        if cmd.get("peer"):
            return PeerId.from_string(cmd["peer"])
        if cmd.get("addr"):
            # the LAST /p2p/ID: behind a relay (/p2p/R/p2p-circuit/p2p/B) that is B, not R
            pid = Multiaddr.from_string(cmd["addr"]).peer_id()
            if pid is None:
                raise ValueError("address without /p2p/ID: %s" % cmd["addr"])
            return pid
        if self.node.connections:
            return self.node.connections[0].remote_peer
        raise ValueError("no peer given and no connection")

    async def cmd_stop(self, cmd):
        self.done.set()

    async def cmd_dial(self, cmd):
        try:
            if self.dht is not None:
                # the DHT's routing table fills from identify: answer once it has been read
                conn = await self.dht.dial_identified(cmd["addr"])
            else:
                conn = await self.node.dial(cmd["addr"])
        except Exception as e:
            self.emit(E.DIAL_ERROR, {"addr": cmd["addr"], "error": "%s: %s" % (type(e).__name__, e)})
            return
        self.emit(E.DIAL_OK, {"addr": cmd["addr"], "peer": str(conn.remote_peer)})

    async def _reach(self, cmd):
        """The connection a command addressed by peer/addr runs on: through the relay for a
        /p2p-circuit address (a relayed connection to that peer, reused or dialled)."""
        peer = self._peer(cmd)
        addr = cmd.get("addr")
        if addr and "/p2p-circuit" in addr:
            for c in self.node.connections:
                if c.remote_peer == peer and c.relayed and not c.closed:
                    return c
            return await self.node.dial(addr)
        conn = self.node.connection_to(peer)
        if conn is None and addr:
            conn = await self.node.dial(addr)
        return conn if conn is not None else peer

    async def cmd_ping(self, cmd):
        try:
            target = await self._reach(cmd)
        except Exception as e:
            self.emit(E.DIAL_ERROR, {"addr": cmd.get("addr"), "error": "%s: %s" % (type(e).__name__, e)})
            return
        peer = self._peer(cmd)
        rtts = await self.node.ping(target, int(cmd.get("count", 1)))
        for r in rtts:
            self.emit(E.PING, {"peer": str(peer), "rtt": r})

    async def cmd_echo(self, cmd):
        target = await self._reach(cmd)
        peer = self._peer(cmd)
        n = min(int(cmd.get("streams", 1)), ECHO_MAX_STREAMS)
        size = min(int(cmd.get("size", 1024)), ECHO_MAX_SIZE)
        t0 = ticks_ms()
        results = await asyncio.gather(*[self._echo_one(target, size) for _ in range(n)],
                                       return_exceptions=True)
        errors = [repr(r) for r in results if r is not True]
        self.emit(E.ECHO, {"peer": str(peer), "ok": not errors, "streams": n, "bytes": size,
                           "ms": ticks_diff(ticks_ms(), t0), "errors": errors[:3]})

    async def _echo_one(self, peer, size):
        # Streamed: random chunks are hashed as they go out and as they come back, so a device
        # echoes megabytes without holding them.
        import hashlib
        st = await self.node.new_stream(peer, [ECHO])
        sent_hash = hashlib.sha256()

        async def writer():
            left = size
            while left:
                chunk = crypto.random_bytes(min(ECHO_CHUNK, left))
                sent_hash.update(chunk)
                await st.write(chunk)
                left -= len(chunk)
            await st.close()

        wt = asyncio.create_task(writer())
        got_hash = hashlib.sha256()
        got = 0
        while got <= size:
            b = await st.read()
            if not b:
                break
            got_hash.update(b)
            got += len(b)
        await wt
        if got != size or got_hash.digest() != sent_hash.digest():
            raise ValueError("echo mismatch: sent %d got %d" % (size, got))
        return True

    # ---- Kademlia ("Reach" in docs/architecture.md); a failed query answers found=false / empty --
    def _need_dht(self):
        if self.dht is None:
            raise ValueError("no DHT: start the node with --dht client|server")
        return self.dht

    def _answer(self, name, cmd, fields):
        if "id" in cmd:
            fields["id"] = cmd["id"]
        self.emit(name, fields)

    def _query_failed(self, what, e):
        self.log("dht %s failed: %s %s" % (what, type(e).__name__, e))

    async def cmd_find_peer(self, cmd):
        from microp2p.identity.peerid import PeerId
        dht = self._need_dht()
        pid = PeerId.from_string(cmd.get("peer"))
        addrs = None
        try:
            addrs = await dht.find_peer(pid)
        except Exception as e:
            self._query_failed("find_peer", e)
        self._answer(E.DHT_FIND_PEER, cmd, {"peer": cmd["peer"], "found": bool(addrs),
                                            "addrs": [str(a) for a in addrs or ()]})

    async def cmd_get_closest_peers(self, cmd):
        from microp2p.identity.peerid import PeerId
        dht = self._need_dht()
        key = dht_key(cmd.get("key"))
        peers = []
        try:
            peers = await dht.get_closest_peers(key)
        except Exception as e:
            self._query_failed("get_closest_peers", e)
        self._answer(E.DHT_CLOSEST_PEERS, cmd, {"key": cmd["key"],
                                                "peers": [str(PeerId(p)) for p in peers]})

    async def cmd_provide(self, cmd):
        dht = self._need_dht()
        key = dht_key(cmd.get("key"))
        n = 0
        try:
            n = await dht.provide(key)
        except Exception as e:
            self._query_failed("provide", e)
        self._answer(E.DHT_PROVIDED, cmd, {"key": cmd["key"], "peers": n})

    async def cmd_find_providers(self, cmd):
        from microp2p.identity.peerid import PeerId
        dht = self._need_dht()
        key = dht_key(cmd.get("key"))
        found = []
        try:
            found = await dht.find_providers(key, int(cmd.get("count", 20)))
        except Exception as e:
            self._query_failed("find_providers", e)
        self._answer(E.DHT_PROVIDERS, cmd, {"key": cmd["key"], "providers": [
            {"id": str(PeerId(p)), "addrs": [str(a) for a in addrs]} for p, addrs in found]})

    async def cmd_subscribe(self, cmd):
        if self.pubsub is None:
            raise ValueError("pubsub not available")
        self.pubsub.subscribe(cmd["topic"])

    async def cmd_unsubscribe(self, cmd):
        self.pubsub.unsubscribe(cmd["topic"])

    async def cmd_publish(self, cmd):
        if self.pubsub is None:
            raise ValueError("pubsub not available")
        data = cmd.get("data", "")
        if "dataHex" in cmd:
            data = bytes.fromhex(cmd["dataHex"])
        elif isinstance(data, str):
            data = data.encode()
        mid = self.pubsub.publish(cmd["topic"], data)
        self.emit(E.PUBLISHED, {"topic": cmd["topic"], "id": bytes(mid).hex() if mid else None,
                                "recipients": len(self.pubsub.topic_peers(cmd["topic"]))})

    async def cmd_topic_peers(self, cmd):
        topic = cmd["topic"]
        ps = self.pubsub
        self.emit(E.TOPIC_PEERS, {"topic": topic, "peers": sorted(str(p) for p in ps.topic_peers(topic)),
                                  "mesh": sorted(str(p) for p in ps.mesh_peers(topic))})

    async def cmd_stats(self, cmd):
        peers = {}
        ps = self.pubsub.peer_stats()
        for pid in ps:
            peers[str(pid)] = ps[pid]
        stats = self.pubsub.stats()
        dropped = stats.pop("driver_dropped")
        self.emit(E.STATS, {"stats": stats, "peers": peers, "driverDropped": dropped})

    async def cmd_publish_many(self, cmd):
        """Publish `count` bench payloads of `size` bytes, every `interval_ms` (0: a burst)."""
        topic = cmd["topic"]
        n = min(int(cmd.get("count", 1)), BENCH_MAX_COUNT)
        size = max(int(cmd.get("size", 100)), BENCH_HEADER)
        interval = int(cmd.get("interval_ms", 0))
        pad = b"\x5a" * (size - BENCH_HEADER)
        ps = self.pubsub
        t0 = ticks_ms()
        for i in range(n):
            if interval:
                # On a schedule (not sleep-after-send), so the rate holds whatever publish costs.
                wait = i * interval - ticks_diff(ticks_ms(), t0)
                if wait > 0:
                    await asyncio.sleep_ms(wait) if MICROPYTHON else await asyncio.sleep(wait / 1000)
            ps.publish(topic, BENCH_MAGIC + i.to_bytes(4, "big") + wall_us().to_bytes(8, "big") + pad)
            if not interval and i % BENCH_BURST_YIELD == BENCH_BURST_YIELD - 1:
                await asyncio.sleep(0)
                while self._backlog() > BENCH_MAX_BACKLOG:
                    await asyncio.sleep(0.001)
        self.emit(E.PUBLISHED_MANY, {"topic": topic, "count": n, "ms": ticks_diff(ticks_ms(), t0),
                                     "recipients": len(ps.topic_peers(topic))})

    def _backlog(self):
        return self.pubsub.backlog()

    async def cmd_bench_recv(self, cmd):
        """Count `count` bench payloads on `topic` (no per-message events), then report
        throughput and latency (receive wall clock minus the send time in the payload)."""
        want = min(int(cmd.get("count", 1)), BENCH_MAX_COUNT)
        wait_ms = min(int(cmd.get("timeout_ms", 60000)), BENCH_MAX_WAIT_MS)
        b = {"topic": cmd["topic"], "want": want, "got": 0, "lat": [], "first_sent": None,
             "first_recv": None, "last_recv": None, "done": asyncio.Event()}
        self._bench = b
        self.emit(E.BENCH_ARMED, {"topic": b["topic"], "count": want})
        try:
            await asyncio.wait_for(b["done"].wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass
        self._bench = None
        self.emit(E.BENCH_RESULT, bench_summary(b))

    async def cmd_relay(self, cmd):
        """{"cmd":"relay"} -> {"event":"relay", reservations held (client), hop table (--relay-hop)}"""
        held = []
        for rid in self.relay.reservations:
            r = self.relay.reservations[rid]
            held.append({"relay": str(rid), "state": r.state, "expire": r.expire,
                         "addrs": [str(a) for a in r.addrs]})
        self.emit(E.RELAY_TABLE, {"reservations": held, "hop": self.hop.table() if self.hop else None,
                            "relayedIn": self.relay.relayed_in, "relayedOut": self.relay.relayed_out})

    async def cmd_peers(self, cmd):
        self.emit(E.PEERS, {"peers": [str(c.remote_peer) for c in self.node.connections]})


def bench_summary(b):
    lat = sorted(b["lat"])
    span = None
    rate = None
    if b["got"] and b["last_recv"] is not None:
        span = b["last_recv"] - b["first_sent"]
        if span > 0:
            rate = b["got"] * 1000000 / span
    return {"topic": b["topic"], "want": b["want"], "received": b["got"], "spanUs": span, "rate": rate,
            "p50Ms": _ms(_percentile(lat, 0.5)), "p99Ms": _ms(_percentile(lat, 0.99)),
            "maxMs": _ms(lat[-1] if lat else None)}


def _ms(us):
    return None if us is None else us / 1000


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    try:
        opts = parse_args(argv)
    except ValueError as e:
        sys.stderr.write(str(e) + "\n")
        return 2
    if opts.get("help"):
        print(HELP)
        return 0
    if opts.get("version"):
        import microp2p
        print("microp2p %s (%s)" % (microp2p.__version__, sys.implementation.name))
        return 0
    try:
        runner = Runner(opts)
        if not MICROPYTHON:
            import signal
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.add_signal_handler(signal.SIGTERM, runner.done.set)
            except Exception:
                pass
            try:
                loop.run_until_complete(runner.run())
            finally:
                loop.close()
        else:
            asyncio.run(runner.run())
    except ValueError as e:
        sys.stderr.write("node: %s\n" % e)
        return 2
    except OSError as e:
        # e.g. the --listen port is in use or the address is not ours
        sys.stderr.write("node: %s\n" % (_os_error_text(e),))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _jsonable(v, depth=0):
    """Decoded CBOR as JSON-able data (bytes -> hex text); bounded depth."""
    if depth > 16:
        return None
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else str(k)): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, depth + 1) for x in v]
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    return v


def _pollable(f):
    """True when f is a pipe, socket or terminal (what asyncio's pipe transport can poll)."""
    import os
    import stat
    try:
        mode = os.fstat(f.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or f.isatty()


def _os_error_text(e):
    msg = getattr(e, "strerror", None) or str(e)
    errno = e.args[0] if e.args and isinstance(e.args[0], int) else None
    if errno in (98, 48):  # EADDRINUSE (Linux, BSD)
        return "cannot listen: address already in use"
    if errno in (99, 49):  # EADDRNOTAVAIL
        return "cannot listen: address not available on this host"
    return "cannot start: %s" % msg
