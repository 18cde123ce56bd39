#!/usr/bin/env python3
# Soak, churn and attack-under-load bench of the gateway (issue 11, item 4). Everything is real:
# the gateway is `microp2p gateway` (a subprocess), every device a MicroPython unix-port process
# running sensor_node (TCP, some on emulated serial lines), the subscriber a separate CPython
# microp2p node on the gateway's public port, the attackers a separate process. Only loopback.
#
#   .venv/bin/python bench/soak.py [--quick] [--devices 200] [--minutes 10] [--reboots-per-min 6]
#                                  [--drops-per-min 6] [--attack-devices 20] [--attack-s 60] ...
#
# Phase "soak": N devices x 1 reading / s x D minutes through one gateway while devices are
# rebooted (SIGKILL + restart: a power cut) and links dropped (TCP devices in a --link-share of
# the fleet dial through a relay here that is cut with a reset and refuses the device for
# --drop-down-s; serial devices get their emulated cable unplugged) at the given fleet-wide
# rates. At the end (the cutoff: later readings are not counted) the subscriber sends the fleet
# the "stop sampling" command (how many devices it reaches is reported), the bench waits for the
# readings in flight, then accounts every reading by (device, boot, seq):
#   taken      readings the devices took before the end (their `reading` events)
#   received   readings the subscriber got (its router checked each StrictSign signature; the
#              payload must also name the signer as "dev")
#   documented losses: the readings of a killed boot after its last delivered one (they were in
#              the device's RAM: queue, pubsub buffer, socket) and readings the device's bounded
#              queue dropped (counted by the device)
#   lost       everything else taken and never received: expected 0
#   duplicates the same (device, boot, seq) delivered to the subscriber's app twice
# plus gateway RSS at start/end and its slope (MiB/min, least squares over samples every
# --sample-s), gateway CPU %, fleet connect time, reconnect times after reboots and drops.
#
# Phase "attack": a fresh gateway with --attack-devices devices publishing; a baseline window,
# then the attack set of tests/host/test_attacks.py against the public port (its helpers are
# imported: silent sockets (slowloris), idle authenticated connections, a PING flood that never
# reads, dense IHAVE RPCs, stream churn; attackers come from 127.0.0.10+), then a recovery
# window. Per window: delivery rate of the readings taken in it, latency p50/p99 (device wall
# clock at the reading -> subscriber wall clock at delivery; one host, one clock; in the soak it
# includes the time readings waited in a device's queue while its link was down), gateway CPU %
# and RSS. Meanwhile a new honest peer dials the public port and pings every second (the probe).
#
# --quick: 10 devices (2 serial) x 1 min at 4 reboots and 4 drops a minute, then 10 devices
# through 10 s baseline + 20 s attack + 5 s recovery: about 2 minutes. Defaults: about 15.
#
# Output: progress on stderr, the figures as a table on stdout, then one JSON line (the last).
# Every wait is bounded and the bench stops by itself; on exit, an error or Ctrl-C every process
# it started is stopped (SIGTERM, then SIGKILL). Not part of `make test`: `make bench-soak`.
import argparse
import asyncio
import bisect
import json
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "host"))
sys.path.insert(0, os.path.join(ROOT, "firmware"))

READINGS = "sensors/readings"
COMMANDS = "sensors/commands"
QUIESCE_MS = 24 * 3600 * 1000
START_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 120.0      # one start batch of devices until all connected
RECONNECT_WAIT_S = 40.0        # after the injections stop, until every device is up again
QUIESCE_WAIT_S = 10.0          # until every device obeyed the stop-sampling command
SETTLE_S = 25.0                # until every reading taken before the end arrived
INJECT_STOP_S = 30.0           # injections in progress at the end of the soak
SERIAL_DOWN_MIN_S = 6.0        # a serial link notices a silent cable after dead_ms (4 s)
ATTACK_GRACE_S = 30.0          # the attacker process past its --seconds before it is killed
EVENTS_KEEP = 64               # events kept per process between samples (the bench's own RAM)
BATCH_S = 0.1                  # subscriber: delivered messages are reported in batches


def log(msg):
    sys.stderr.write("soak: %s\n" % msg)
    sys.stderr.flush()


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def slope_per_min(samples):
    """Least-squares slope of (t seconds, y) samples, per minute."""
    if len(samples) < 2:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    my = sum(y for _, y in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den == 0:
        return None
    return 60.0 * sum((t - mt) * (y - my) for t, y in samples) / den


def rnd(x, nd=1):
    return None if x is None else round(x, nd)


# ==== the subscriber process (python soak.py _subscriber GATEWAY_ADDR SEED_HEX) =================

async def subscriber_main(gw_addr, seed_hex):
    import microp2p_host  # noqa: F401  (native crypto: signature checks at fleet rate)
    from microp2p.codec import cbor
    from microp2p.codec.multiaddr import Multiaddr
    from microp2p.identity.keys import Ed25519PrivateKey
    from microp2p.identity.peerid import PeerId
    from microp2p.io import node as nodemod, pubsub as pubsub_driver

    def emit(d):
        sys.stdout.write(json.dumps(d, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    key = Ed25519PrivateKey.from_seed(bytes.fromhex(seed_hex))
    node = nodemod.Node(key)
    gw_peer = PeerId.from_string(Multiaddr.from_string(gw_addr).value_for("p2p"))
    names = {}
    batch = []

    def on_message(topic, msg):
        rx = time.time() * 1000.0
        if topic != READINGS:
            return
        fb = bytes(msg.get("from") or b"")
        p = names.get(fb)
        if p is None:
            p = str(PeerId.from_bytes(fb))
            if len(names) < 100000:
                names[fb] = p
        try:
            r = cbor.decode(bytes(msg["data"]))
        except Exception:
            r = None
        ok = isinstance(r, dict) and r.get("dev") == p
        batch.append([p, int.from_bytes(bytes(msg.get("seqno") or b"\0"), "big"),
                      r.get("seq") if ok else None, r.get("t") if ok else None, round(rx, 1), ok])

    ps = pubsub_driver.attach(node, on_message=on_message)
    ps.subscribe(READINGS)
    stop = asyncio.Event()
    emit({"event": "started", "peerId": str(node.peer_id)})

    async def link():
        meshed = False
        while not stop.is_set():
            if node.connection_to(gw_peer) is None:
                meshed = False
                try:
                    await asyncio.wait_for(node.dial(gw_addr), 10)
                    emit({"event": "connected"})
                except Exception as e:
                    emit({"event": "dial_failed", "error": "%s: %s" % (type(e).__name__, e)})
                    await asyncio.sleep(1.0)
                    continue
            if not meshed and gw_peer in ps.mesh_peers(READINGS):
                meshed = True
                emit({"event": "meshed"})
            await asyncio.sleep(0.2)

    async def flusher():
        while not stop.is_set():
            await asyncio.sleep(BATCH_S)
            if batch:
                emit({"event": "batch", "m": batch[:]})
                del batch[:]

    async def commands():
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                break   # the bench is gone: stop
            try:
                cmd = json.loads(line)
            except ValueError:
                continue
            if cmd.get("cmd") == "publish":
                try:
                    ps.publish(cmd["topic"], bytes.fromhex(cmd["dataHex"]))
                    emit({"event": "published", "topic": cmd["topic"]})
                except Exception as e:
                    emit({"event": "error", "error": "%s: %s" % (type(e).__name__, e)})
            elif cmd.get("cmd") == "stats":
                emit({"event": "stats", "router": ps.stats()})
            elif cmd.get("cmd") == "stop":
                break
        stop.set()

    tasks = [asyncio.ensure_future(f()) for f in (link, flusher)]
    try:
        await commands()
    finally:
        for t in tasks:
            t.cancel()
        if batch:
            emit({"event": "batch", "m": batch})
        emit({"event": "stats", "router": ps.stats()})
        ps.close()
        try:
            await asyncio.wait_for(node.stop(), 5)
        except Exception:
            pass
        emit({"event": "stopped"})


# ==== the attacker process (python soak.py _attacker PUBLIC_ADDR SECONDS ATTACKS) ==============
# Sources: 127.0.0.10+ (each attack its own hosts); the subscriber is 127.0.0.1.

SLOWLORIS_HOSTS, SLOWLORIS_PER_HOST = 16, 4       # 64 silent sockets
IDLE_HOSTS, IDLE_PER_HOST = 4, 16                 # 64 idle authenticated connections
FLOOD_CONNS = 2                                   # PING floods, never reading
DENSE_NODES = 4                                   # dense IHAVE RPCs (~1 MiB each)
CHURN_NODES = 2                                   # stream churn (open, ping, close; again)
PROBE_SRC, PROBE_EVERY_S, PROBE_LIMIT_S = "127.0.0.9", 1.0, 10.0   # a new good peer: dial + ping
ATTACK_OPEN_S = 5.0                               # every connect / handshake / RPC is bounded
RAMP_MAX_S = 10.0   # the authenticated attackers connect first (slowloris would refuse them)
ATTACKS = ("slowloris", "idle", "pingflood", "dense", "streams")


async def attacker_main(gw_addr, seconds, which):
    sys.path.insert(0, os.path.join(ROOT, "tests", "host"))
    import test_attacks as A   # its helpers (raw_connect, secured, _silent, closed_by_peer, ...)
    from microp2p.codec.multiaddr import Multiaddr
    from microp2p.conn import yamux
    from microp2p.identity.keys import Ed25519PrivateKey
    from microp2p.io import node as nodemod, tcp
    from microp2p.pubsub import rpc as R

    # Guard for the helpers: a read at EOF returns b"" at once, so secured()'s negotiation loops
    # would spin without yielding when the gateway hangs up mid-handshake (its refusals do) and
    # no wait_for could end them. Our readers raise EOFError there instead.
    class EofReader:
        def __init__(self, r):
            self._r = r

        async def read(self, n=-1):
            b = await self._r.read(n)
            if not b:
                raise EOFError("closed by the gateway")
            return b

        def __getattr__(self, name):
            return getattr(self._r, name)

    plain_connect = A.raw_connect

    async def raw_connect(host, port, src="127.0.0.2", rcvbuf=0):
        r, w = await plain_connect(host, port, src, rcvbuf)
        return EofReader(r), w
    A.raw_connect = raw_connect

    def emit(d):
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()

    host, port, gw_peer = A.tcp_parts(gw_addr)
    st = {}
    held = {}

    def count(k, n=1):
        st[k] = st.get(k, 0) + n

    deadline = [time.monotonic() + RAMP_MAX_S + seconds]   # set again once the ramp is over

    def left():
        return deadline[0] - time.monotonic()

    async def hold_until_closed(name, r, w):
        """Keep a connection until the gateway closes it (counted, with how long it was held)
        or the attack ends."""
        t0 = time.monotonic()
        try:
            closed = await A.closed_by_peer(r, max(0.05, left()))
        except EOFError:
            closed = True
        w.close()
        if closed:
            count(name + "ClosedByGateway")
            held.setdefault(name, []).append(time.monotonic() - t0)

    async def slot(name, open_fn):
        while left() > 0:
            try:
                r, w = await asyncio.wait_for(open_fn(), min(ATTACK_OPEN_S, max(0.05, left())))
            except (OSError, EOFError, asyncio.TimeoutError, Exception):
                count(name + "Refused")
                await asyncio.sleep(0.5)
                continue
            count(name + "Opened")
            await hold_until_closed(name, r, w)
            await asyncio.sleep(0.2)

    async def silent(src):
        socks = await A._silent(host, port, [src], 1)
        if not socks:
            raise OSError("refused")
        return socks[0]

    async def idle(src):
        r, w, t = await A.secured(gw_addr, src)
        return r, w

    async def ping_flood(src):
        pings = A.H(yamux.TYPE_PING, yamux.FLAG_SYN, 0, 7) * 32
        while left() > 0:
            try:
                r, w, t = await asyncio.wait_for(A.secured(gw_addr, src, rcvbuf=4096), ATTACK_OPEN_S)
            except (OSError, EOFError, asyncio.TimeoutError, Exception):
                count("pingfloodRefused")
                await asyncio.sleep(0.5)
                continue
            count("pingfloodOpened")
            t0 = time.monotonic()
            cut = False
            try:
                while left() > 0:
                    if w.transport.is_closing():
                        cut = True
                        break
                    if w.transport.get_write_buffer_size() < (1 << 20):
                        frames = b"".join(bytes(t.encrypt(pings)) for _ in range(100))
                        w.write(frames)
                        count("pingfloodBytes", len(frames))
                    try:
                        await asyncio.wait_for(w.drain(), min(2.0, max(0.05, left())))
                    except asyncio.TimeoutError:
                        pass   # the gateway stopped reading us
            except (ConnectionError, OSError):
                cut = True
            if not cut and left() > 0:
                cut = await A.closed_by_peer(r, 0.1)
            w.close()
            if cut:
                count("pingfloodCut")
                held.setdefault("pingflood", []).append(time.monotonic() - t0)
            await asyncio.sleep(0.2)

    async def node_from(src):
        """An honest microp2p Node connected to the gateway from source address src."""
        r, w = await plain_connect(host, port, src)
        n = nodemod.Node(Ed25519PrivateKey.generate())
        conn = await n.dial_stream(tcp.StreamPair(r, w), Multiaddr.from_string(gw_addr), gw_peer)
        return n, conn

    dense_rpc = R.frame(R.encode_rpc({"control": {"ihave": [
        {"topicID": READINGS, "messageIDs": [b""] * 4999} for _ in range(100)]}}))

    async def with_node(name, src, body):
        while left() > 0:
            n = None
            try:
                n, conn = await asyncio.wait_for(node_from(src), ATTACK_OPEN_S)
                count(name + "Conns")
                while left() > 0 and not conn.closed:
                    await body(n, conn)
            except (OSError, EOFError, asyncio.TimeoutError, Exception):
                count(name + "Errors")
                await asyncio.sleep(0.2)
            finally:
                if n is not None:
                    try:
                        await asyncio.wait_for(n.stop(), 5)
                    except Exception:
                        pass

    async def dense_body(n, conn):
        try:
            s = await asyncio.wait_for(n.new_stream(conn, ["/meshsub/1.1.0"]), ATTACK_OPEN_S)
            await asyncio.wait_for(s.write(dense_rpc), ATTACK_OPEN_S)
            count("denseRpcs")
            await asyncio.wait_for(s.write(dense_rpc), ATTACK_OPEN_S)
            count("denseRpcs")
        except (OSError, EOFError, asyncio.TimeoutError, Exception):
            count("denseStreamsEnded")   # the gateway resets a stream after a dense RPC
            await asyncio.sleep(0.01)

    async def churn_body(n, conn):
        try:
            await asyncio.wait_for(n.ping(conn, 1), ATTACK_OPEN_S)
            count("streamsOpenedClosed")
        except (OSError, EOFError, asyncio.TimeoutError, Exception):
            count("streamsFailed")
            await asyncio.sleep(0.05)

    async def probe():
        times = held.setdefault("probeDialPing", [])
        while left() > 0:
            t0 = time.monotonic()
            n = None
            try:
                n, conn = await asyncio.wait_for(node_from(PROBE_SRC), PROBE_LIMIT_S)
                await asyncio.wait_for(n.ping(conn, 1), PROBE_LIMIT_S)
                times.append(time.monotonic() - t0)
                count("probeOk")
            except (OSError, EOFError, asyncio.TimeoutError, Exception):
                count("probeFailed")
            finally:
                if n is not None:
                    try:
                        await asyncio.wait_for(n.stop(), 5)
                    except Exception:
                        pass
            await asyncio.sleep(PROBE_EVERY_S)

    tasks = []
    if "idle" in which:
        for i in range(IDLE_HOSTS):
            src = "127.0.0.%d" % (30 + i)
            tasks += [slot("idle", lambda s=src: idle(s)) for _ in range(IDLE_PER_HOST)]
    if "pingflood" in which:
        tasks += [ping_flood("127.0.0.%d" % (40 + i)) for i in range(FLOOD_CONNS)]
    if "dense" in which:
        tasks += [with_node("dense", "127.0.0.%d" % (50 + i), dense_body) for i in range(DENSE_NODES)]
    if "streams" in which:
        tasks += [with_node("streams", "127.0.0.%d" % (60 + i), churn_body) for i in range(CHURN_NODES)]
    futs = [asyncio.ensure_future(t) for t in tasks]
    want = (IDLE_HOSTS * IDLE_PER_HOST if "idle" in which else 0) + (DENSE_NODES if "dense" in which else 0) + \
        (CHURN_NODES if "streams" in which else 0)
    t_ramp = time.monotonic()
    while time.monotonic() - t_ramp < RAMP_MAX_S and \
            st.get("idleOpened", 0) + st.get("denseConns", 0) + st.get("streamsConns", 0) < want:
        await asyncio.sleep(0.1)
    st["rampSeconds"] = round(time.monotonic() - t_ramp, 2)
    deadline[0] = time.monotonic() + seconds
    if "slowloris" in which:
        for i in range(SLOWLORIS_HOSTS):
            src = "127.0.0.%d" % (10 + i)
            futs += [asyncio.ensure_future(slot("slowloris", lambda s=src: silent(s)))
                     for _ in range(SLOWLORIS_PER_HOST)]
    futs.append(asyncio.ensure_future(probe()))
    emit({"event": "attacking", "attacks": sorted(which), "seconds": seconds})
    await asyncio.sleep(max(0.0, left()))
    for f in futs:   # the attack ends now, whatever each attacker is in the middle of
        f.cancel()
    await asyncio.wait(futs, timeout=5)
    out = dict(st)
    for k, v in list(held.items()):
        if v:
            out[k + "HeldS"] = {"n": len(v), "p50": rnd(pct(v, 50), 2), "max": rnd(max(v), 2)}
    emit({"event": "summary", "stats": out})


# ==== the bench ====================================================================================

class LinkProxy:
    """A TCP relay between one device and the gateway's device port: cut() resets the link
    (both sides see it) and refuses the device for down_s, like a WLAN going away."""

    def __init__(self, host, port):
        self.host, self.port_to = host, port
        self.server = None
        self.port = None
        self.pairs = set()
        self.refuse_until = 0.0
        self.cuts = 0

    async def start(self):
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _on(self, r_dev, w_dev):
        if time.monotonic() < self.refuse_until:
            w_dev.transport.abort()
            return
        try:
            r_gw, w_gw = await asyncio.wait_for(asyncio.open_connection(self.host, self.port_to), 5)
        except (OSError, asyncio.TimeoutError):
            w_dev.transport.abort()
            return
        pair = (w_dev, w_gw)
        self.pairs.add(pair)
        pumps = [asyncio.ensure_future(self._pump(r_dev, w_gw)), asyncio.ensure_future(self._pump(r_gw, w_dev))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            self.pairs.discard(pair)
            for w in pair:
                w.transport.abort()

    @staticmethod
    async def _pump(r, w):
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    return
                w.write(b)
                await w.drain()
        except (OSError, ConnectionError):
            return

    def cut(self, down_s):
        self.refuse_until = time.monotonic() + down_s
        self.cuts += 1
        for w_dev, w_gw in list(self.pairs):
            w_dev.transport.abort()
            w_gw.transport.abort()

    def close(self):
        if self.server is not None:
            self.server.close()
        for w_dev, w_gw in list(self.pairs):
            w_dev.transport.abort()
            w_gw.transport.abort()


class Ledger:
    """Every reading by (device peer id, boot, seq): taken (bench time of the device's event),
    published, dropped by the device's queue, received at the subscriber."""

    def __init__(self):
        self.boot_ns = {}       # peer -> [wall ns just before each boot's process started]
        self.taken = {}         # (peer, boot) -> {seq: bench wall s}
        self.published = {}     # (peer, boot) -> set(seq)
        self.dropped = {}       # (peer, boot) -> set(seq)
        self.killed = set()     # (peer, boot) ended by SIGKILL
        self.received = {}      # (peer, boot, seq) -> (count, latency ms, rx wall s)
        self.unmatched = 0      # received from an unknown peer / before any boot
        self.bad = 0            # payload does not name its signer
        self.connected_at = {}  # (peer, boot) -> bench wall s of the first `connected`
        self.spawned_at = {}    # (peer, boot) -> bench wall s of the spawn
        self.connects = {}      # peer -> `connected` events so far (all boots)

    def track(self, dev):
        orig = dev.on_event
        ledger = self

        def on_event(ev):
            orig(ev)
            e = ev.get("event")
            k = (dev.peer_id, dev.boot)
            if e == "reading":
                ledger.taken.setdefault(k, {})[ev.get("seq")] = time.time()
            elif e == "published":
                ledger.published.setdefault(k, set()).add(ev.get("seq"))
            elif e == "dropped":
                ledger.dropped.setdefault(k, set()).add(ev.get("seq"))
            elif e == "connected":
                ledger.connects[dev.peer_id] = ledger.connects.get(dev.peer_id, 0) + 1
                ledger.connected_at.setdefault(k, time.time())
        dev.on_event = on_event

    def spawn(self, dev):
        self.boot_ns.setdefault(dev.peer_id, []).append(time.time_ns())
        self.spawned_at[(dev.peer_id, dev.boot)] = time.time()

    def on_batch(self, rows):
        for peer, seqno, seq, t, rx, ok in rows:
            if not ok:
                self.bad += 1
                continue
            starts = self.boot_ns.get(peer)
            boot = bisect.bisect_right(starts, seqno) - 1 if starts else -1
            if boot < 0:
                self.unmatched += 1
                continue
            k = (peer, boot, seq)
            old = self.received.get(k)
            if old is None:
                self.received[k] = [1, rx - t if t is not None else None, rx / 1000.0]
            else:
                old[0] += 1

    def account(self, cutoff=None, window=None):
        """Counts over readings taken before cutoff (bench wall s), or inside window (t0, t1)."""
        out = {"taken": 0, "published": 0, "received": 0, "lostInRamAtKill": 0, "droppedByQueue": 0,
               "lost": 0, "duplicates": 0}
        lat = []
        lost_where = []
        for (peer, boot), seqs in self.taken.items():
            pub = self.published.get((peer, boot), ())
            drop = self.dropped.get((peer, boot), ())
            got = [s for s in seqs if (peer, boot, s) in self.received]
            last = max(got) if got else 0
            killed = (peer, boot) in self.killed
            for s, tb in seqs.items():
                if window is not None:
                    if not window[0] <= tb < window[1]:
                        continue
                elif cutoff is not None and tb > cutoff:
                    continue
                out["taken"] += 1
                if s in pub:
                    out["published"] += 1
                r = self.received.get((peer, boot, s))
                if r is not None:
                    out["received"] += 1
                    out["duplicates"] += r[0] - 1
                    if r[1] is not None:
                        lat.append(r[1])
                elif killed and s > last:
                    out["lostInRamAtKill"] += 1
                elif s in drop:
                    out["droppedByQueue"] += 1
                else:
                    out["lost"] += 1
                    if len(lost_where) < 10:
                        lost_where.append([peer[-8:], boot, s])
        out["latencyMsP50"] = rnd(pct(lat, 50))
        out["latencyMsP99"] = rnd(pct(lat, 99))
        out["latencyMsMax"] = rnd(max(lat)) if lat else None
        if lost_where:
            out["lostExamples"] = lost_where
        return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.stop = asyncio.Event()
        self.procs = []         # every Proc started (for the final sweep)
        self.rng = random.Random(a.seed)

    async def pause(self, s):
        """Sleep s seconds unless the bench is being stopped; True when stopped."""
        if s > 0:
            try:
                await asyncio.wait_for(self.stop.wait(), s)
            except asyncio.TimeoutError:
                pass
        return self.stop.is_set()

    async def bounded(self, coro, limit):
        """coro's result within limit seconds; asyncio.TimeoutError when it takes longer or the
        bench is being stopped (coro is cancelled then)."""
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait([task, stopper], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        raise asyncio.TimeoutError("stopped" if self.stop.is_set() else "no result in %.0f s" % limit)

    async def until(self, pred, limit, step=0.25):
        deadline = time.monotonic() + limit
        while not pred():
            if time.monotonic() >= deadline or await self.pause(step):
                return False
        return True

    # ---- pieces --------------------------------------------------------------------------------
    def make_fleet(self, n_tcp, n_serial, sub_id, stats_s):
        from microp2p_host.emulate import Fleet
        fleet = Fleet(n_tcp=n_tcp, n_serial=n_serial, interval_ms=self.a.interval_ms,
                      device_heap=self.a.heap, stats_interval_s=stats_s, seed=self.a.seed,
                      log=lambda m: log(m))
        fleet.js_peer_id = sub_id   # the subscriber may command the devices (command_from)
        return fleet

    async def start_subscriber(self, fleet, seed_hex, ledger):
        from microp2p_host.emulate import Proc
        sub = Proc("subscriber", [sys.executable, os.path.abspath(__file__), "_subscriber", fleet.gateway_addr,
                                  seed_hex], {"PYTHONUNBUFFERED": "1"}, str(fleet.dir / "subscriber.stderr.log"),
                   cwd=str(fleet.dir))
        orig = sub.on_event

        def on_event(ev):
            orig(ev)
            if ev.get("event") == "batch":
                ledger.on_batch(ev.get("m") or ())
        sub.on_event = on_event
        self.procs.append(sub)
        await sub.start()
        await self.bounded(sub.wait_for("started", timeout=START_TIMEOUT_S), START_TIMEOUT_S)
        await self.bounded(sub.wait_for("meshed", timeout=START_TIMEOUT_S), START_TIMEOUT_S)
        return sub

    def rewrite_configs(self, fleet, proxies):
        """Each device's config: a self-stop after the bench's whole budget (an orphan ends by
        itself) and, for proxied devices, the relay's port instead of the gateway's."""
        for d in fleet.devices:
            cfg = json.loads(d.config_path.read_text())
            cfg["run_ms"] = int(self.budget_s * 1000)
            p = proxies.get(d.name)
            if p is not None:
                cfg["gateway"] = "/ip4/127.0.0.1/tcp/%d/p2p/%s" % (p.port, fleet.gateway_id)
            d.config_path.write_text(json.dumps(cfg, indent=1))

    async def start_devices(self, fleet, ledger):
        """Start in batches (a host compiling 200 MicroPython apps at once measures its
        scheduler); returns (seconds until all connected, devices that never connected)."""
        t0 = time.monotonic()
        missing = []
        for d in fleet.devices:
            ledger.track(d)
        for i in range(0, len(fleet.devices), self.a.start_batch):
            if self.stop.is_set():
                break
            batch = fleet.devices[i:i + self.a.start_batch]
            for d in batch:
                ledger.spawn(d)
                self.procs.append(d)
            await asyncio.gather(*[d.start() for d in batch])
            try:
                await self.bounded(fleet.wait_connected(batch, timeout=CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S)
            except (asyncio.TimeoutError, RuntimeError) as e:
                log("start: %s" % e)
                missing += [d.name for d in batch if not d.connected]
        return time.monotonic() - t0, missing

    def quiesce_cmd(self):
        from microp2p.codec import cbor
        return {"cmd": "publish", "topic": COMMANDS, "dataHex": cbor.encode({"cmd": "interval", "ms": QUIESCE_MS}).hex()}

    async def finish(self, fleet, sub, ledger, r):
        """The end: readings taken from now on are not counted; the subscriber sends the fleet
        the stop-sampling command (how many devices it reached is a figure too: a command from
        a network peer travels the gateway's gossipsub mesh); then wait for the readings in
        flight. Returns the cutoff."""
        cutoff = time.time()
        n0 = {d.name: len(d.commands) for d in fleet.devices}
        sub.send(self.quiesce_cmd())
        live = [d for d in fleet.devices if d.exit_code is None]
        await self.until(lambda: all(len(d.commands) > n0[d.name] for d in live), QUIESCE_WAIT_S)
        r["commandReached"] = sum(1 for d in live if len(d.commands) > n0[d.name])
        if r["commandReached"] < len(live):
            log("the stop command from the subscriber reached %d of %d devices in %.0f s" % (
                r["commandReached"], len(live), QUIESCE_WAIT_S))
        await self.until(lambda: ledger.account(cutoff)["lost"] == 0, SETTLE_S, step=0.5)
        await asyncio.sleep(BATCH_S * 3)   # the last batch
        return cutoff

    def gw_sample(self, fleet, samples, t0, sub=None):
        """A (t, gateway CPU s, RSS kB) sample; trims the events kept per process (the last
        `stats` of the gateway and of the subscriber survive)."""
        from microp2p_host.emulate import proc_cpu_rss
        cpu, rss = proc_cpu_rss(fleet.gateway.pid)
        if cpu is not None:
            samples.append((time.monotonic() - t0, cpu, rss))
        for p in [fleet.gateway, sub] + fleet.devices:
            if p is not None and len(p.events) > 4 * EVENTS_KEEP:
                keep = [e for e in p.events[:-EVENTS_KEEP] if e.get("event") == "stats"][-1:]
                p.events[:] = keep + p.events[-EVENTS_KEEP:]

    async def stop_all(self, fleet, sub, proxies=(), attacker=None):
        for p in proxies:
            p.close()
        if attacker is not None:
            await attacker.stop(signal.SIGTERM)
        if sub is not None:
            sub.send({"cmd": "stop"})
            await sub.stop(signal.SIGTERM)
        if fleet is not None:
            await fleet.stop()

    # ---- phase 1: soak and churn ---------------------------------------------------------------
    async def soak(self):
        a = self.a
        from microp2p.identity.keys import Ed25519PrivateKey
        from microp2p.identity.peerid import PeerId
        seed = os.urandom(32).hex()
        sub_id = str(PeerId.from_public_key(Ed25519PrivateKey.from_seed(bytes.fromhex(seed)).public_key))
        n_serial = min(a.serial, a.devices)
        fleet = self.make_fleet(a.devices - n_serial, n_serial, sub_id, stats_s=a.sample_s)
        ledger = Ledger()
        sub = None
        proxies = {}
        r = {"devices": a.devices, "serialDevices": n_serial, "minutes": a.minutes}
        try:
            await fleet.start(devices=False)
            self.procs.append(fleet.gateway)
            from microp2p_host.emulate import proc_cpu_rss
            _, r["gatewayRssKbIdle"] = proc_cpu_rss(fleet.gateway.pid)
            sub = await self.start_subscriber(fleet, seed, ledger)
            tcp = [d for d in fleet.devices if d.link == "tcp"]
            n_prox = int(round(a.link_share * len(tcp)))
            host, port = fleet.device_addr.split("/")[2], int(fleet.device_addr.split("/")[4])
            for d in self.rng.sample(tcp, n_prox):
                p = LinkProxy(host, port)
                await p.start()
                proxies[d.name] = p
            self.rewrite_configs(fleet, proxies)
            log("soak: gateway up, %d devices (%d serial, %d TCP through a cuttable relay) starting in "
                "batches of %d" % (a.devices, n_serial, n_prox, a.start_batch))
            r["connectSeconds"], missing = await self.start_devices(fleet, ledger)
            r["neverConnected"] = missing
            per = [ledger.connected_at[k] - ledger.spawned_at[k] for k in ledger.connected_at if k[1] == 0]
            r["deviceConnectSecondsP50"], r["deviceConnectSecondsMax"] = rnd(pct(per, 50), 2), rnd(max(per) if per else None, 2)
            log("soak: fleet connected in %.1f s; soaking %.1f min (reboots %.1f/min, link drops %.1f/min)" % (
                r["connectSeconds"], a.minutes, a.reboots_per_min, a.drops_per_min))
            await self.pause(2.0)
            samples = []
            t0 = time.monotonic()
            self.gw_sample(fleet, samples, t0, sub)
            end = t0 + a.minutes * 60
            inj = {"reboots": 0, "drops": 0, "rebootReconnectS": [], "dropReconnectS": []}
            busy = set()
            running = []
            next_reboot = t0 + (60.0 / a.reboots_per_min if a.reboots_per_min > 0 else 1e18)
            next_drop = t0 + (60.0 / a.drops_per_min if a.drops_per_min > 0 else 1e18)
            next_sample = t0 + a.sample_s
            next_log = t0 + a.progress_s
            droppable = set(proxies) | {d.name for d in fleet.devices if d.link == "serial"}
            lines = dict(fleet.lines)

            async def reboot(d):
                busy.add(d.name)
                try:
                    ledger.killed.add((d.peer_id, d.boot))
                    await d.stop(signal.SIGKILL)
                    await asyncio.sleep(a.reboot_down_s)
                    d.boot += 1
                    d.events = []
                    d.started = None
                    d.connected = False
                    ledger.spawn(d)
                    t = time.monotonic()
                    await d.start()
                    await self.bounded(d.wait_for("connected", timeout=CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S)
                    inj["rebootReconnectS"].append(time.monotonic() - t)
                except (asyncio.TimeoutError, RuntimeError) as e:
                    log("reboot %s: %s" % (d.name, e))
                finally:
                    busy.discard(d.name)

            async def drop(d):
                busy.add(d.name)
                try:
                    n0 = ledger.connects.get(d.peer_id, 0)
                    t = time.monotonic()
                    if d.link == "serial":
                        down = max(a.drop_down_s, SERIAL_DOWN_MIN_S)
                        lines[d.name].unplug(True)
                        await asyncio.sleep(down)
                        lines[d.name].unplug(False)
                    else:
                        proxies[d.name].cut(a.drop_down_s)
                    ok = await self.until(lambda: ledger.connects.get(d.peer_id, 0) > n0 and d.connected,
                                          CONNECT_TIMEOUT_S)
                    if ok:
                        inj["dropReconnectS"].append(time.monotonic() - t)
                    else:
                        log("drop %s: not reconnected in %.0f s" % (d.name, CONNECT_TIMEOUT_S))
                finally:
                    busy.discard(d.name)

            def pick(names=None):
                c = [d for d in fleet.devices if d.connected and d.exit_code is None and d.name not in busy
                     and (names is None or d.name in names)]
                return self.rng.choice(c) if c else None

            while not self.stop.is_set():
                now = time.monotonic()
                if now >= end:
                    break
                if now >= next_reboot:
                    next_reboot += 60.0 / a.reboots_per_min
                    d = pick()
                    if d is not None:
                        inj["reboots"] += 1
                        running.append(asyncio.ensure_future(reboot(d)))
                if now >= next_drop:
                    next_drop += 60.0 / a.drops_per_min
                    d = pick(droppable)
                    if d is not None:
                        inj["drops"] += 1
                        running.append(asyncio.ensure_future(drop(d)))
                if now >= next_sample:
                    next_sample += a.sample_s
                    self.gw_sample(fleet, samples, t0, sub)
                if now >= next_log:
                    next_log += a.progress_s
                    s = samples[-1]
                    log("soak %4.0fs: received %d readings, %d up, gateway RSS %.1f MiB CPU %.1f s, "
                        "reboots %d drops %d" % (now - t0, len(ledger.received),
                                                 sum(1 for d in fleet.devices if d.connected), s[2] / 1024, s[1],
                                                 inj["reboots"], inj["drops"]))
                await self.pause(min(0.25, max(0.01, min(end, next_reboot, next_drop, next_sample) - now)))
            self.gw_sample(fleet, samples, t0, sub)
            soak_s = time.monotonic() - t0
            if running:
                await self.until(lambda: all(f.done() for f in running), INJECT_STOP_S)
            for f in running:
                f.cancel()
            if not self.stop.is_set():
                up = await self.until(lambda: all(d.connected for d in fleet.devices), RECONNECT_WAIT_S)
                if not up:
                    log("not reconnected at the end: %s" % [d.name for d in fleet.devices if not d.connected][:20])
                cutoff = await self.finish(fleet, sub, ledger, r)
            else:
                cutoff = time.time()
            sub.send({"cmd": "stats"})
            await self.pause(0.3)
            acc = ledger.account(cutoff)
            r.update(acc)
            r["unmatched"], r["badPayload"] = ledger.unmatched, ledger.bad
            sst = sub.named("stats")
            r["subscriberRouterDuplicates"] = (sst[-1].get("router") or {}).get("duplicates", 0) if sst else None
            r["reboots"], r["linkDrops"] = inj["reboots"], inj["drops"]
            for k in ("rebootReconnectS", "dropReconnectS"):
                v = inj[k]
                r[k + "P50"], r[k + "Max"] = rnd(pct(v, 50), 2), rnd(max(v) if v else None, 2)
            r["soakSeconds"] = rnd(soak_s)
            r["gatewayRssKbStart"] = samples[0][2]
            r["gatewayRssKbEnd"] = samples[-1][2]
            r["gatewayRssKbMax"] = max(s[2] for s in samples)
            r["gatewayRssSlopeMiBPerMin"] = rnd(slope_per_min([(s[0], s[2] / 1024) for s in samples]), 3)
            half = [s for s in samples if s[0] >= soak_s / 2]
            r["gatewayRssSlopeMiBPerMinLastHalf"] = rnd(slope_per_min([(s[0], s[2] / 1024) for s in half]), 3)
            r["gatewayCpuPct"] = rnd(100 * (samples[-1][1] - samples[0][1]) / max(samples[-1][0] - samples[0][0], 1e-6))
            r["gatewayCpuSecondsTotal"] = samples[-1][1]
            gs = fleet.gateway_stats()
            r["gatewayMsgsIn"] = gs.get("msgsIn")
            r["readingsPerS"] = rnd(acc["received"] / soak_s)
            return r
        finally:
            await self.stop_all(fleet, sub, proxies.values())
            fleet.cleanup()

    # ---- phase 2: attack under load --------------------------------------------------------------
    async def attack(self):
        a = self.a
        from microp2p.identity.keys import Ed25519PrivateKey
        from microp2p.identity.peerid import PeerId
        from microp2p_host.emulate import Proc, proc_cpu_rss
        seed = os.urandom(32).hex()
        sub_id = str(PeerId.from_public_key(Ed25519PrivateKey.from_seed(bytes.fromhex(seed)).public_key))
        fleet = self.make_fleet(a.attack_devices, 0, sub_id, stats_s=2)
        ledger = Ledger()
        sub = attacker = None
        r = {"devices": a.attack_devices, "attacks": a.attacks}
        try:
            await fleet.start(devices=False)
            self.procs.append(fleet.gateway)
            sub = await self.start_subscriber(fleet, seed, ledger)
            self.rewrite_configs(fleet, {})
            r["connectSeconds"], r["neverConnected"] = await self.start_devices(fleet, ledger)
            rr = r["connectSeconds"]
            log("attack: %d devices connected in %.1f s; baseline %.0f s" % (a.attack_devices, rr, a.baseline_s))
            await self.pause(3.0)   # past the connection burst
            marks = {}

            def mark(name):
                cpu, rss = proc_cpu_rss(fleet.gateway.pid)
                marks[name] = (time.time(), cpu, rss)
                self.gw_sample(fleet, [], 0, sub)
            mark("baseline")
            await self.pause(a.baseline_s)
            if self.stop.is_set():
                return r
            attacker = Proc("attacker", [sys.executable, os.path.abspath(__file__), "_attacker", fleet.gateway_addr,
                                         str(a.attack_s), ",".join(a.attacks)],
                            {"PYTHONUNBUFFERED": "1"}, str(fleet.dir / "attacker.stderr.log"), cwd=str(fleet.dir))
            self.procs.append(attacker)
            await attacker.start()
            await self.bounded(attacker.wait_for("attacking", timeout=START_TIMEOUT_S), START_TIMEOUT_S)
            mark("attack")
            log("attack: attacking for %.0f s (%s)" % (a.attack_s, ", ".join(a.attacks)))
            rss_peak = marks["attack"][2]
            # the attacker ends the attack itself after attack_s and reports; RSS sampled each second
            t_end = time.monotonic() + a.attack_s + ATTACK_GRACE_S
            last = 0.0
            while not attacker.named("summary") and attacker.exit_code is None and time.monotonic() < t_end \
                    and not self.stop.is_set():
                await self.pause(0.1)
                if time.monotonic() - last >= 1.0:
                    last = time.monotonic()
                    _, rss = proc_cpu_rss(fleet.gateway.pid)
                    rss_peak = max(rss_peak, rss or 0)
                    self.gw_sample(fleet, [], 0, sub)
            acpu, arss = proc_cpu_rss(attacker.pid)
            mark("recovery")
            if not attacker.named("summary"):
                log("attacker: no summary (exit %s)%s" % (attacker.exit_code, attacker.stderr_tail()))
            att = attacker.named("summary")
            r["attacker"] = att[-1].get("stats") if att else None
            r["attackerCpuSeconds"] = acpu
            await attacker.stop(signal.SIGTERM)
            await self.pause(a.recover_s)
            mark("end")
            cutoff = await self.finish(fleet, sub, ledger, r) if not self.stop.is_set() else time.time()
            r["windows"] = {}
            for name, nxt in (("baseline", "attack"), ("attack", "recovery"), ("recovery", "end")):
                w0, w1 = marks[name], marks[nxt]
                acc = ledger.account(window=(w0[0], w1[0]))
                acc["seconds"] = rnd(w1[0] - w0[0])
                acc["deliveryPct"] = rnd(100.0 * acc["received"] / acc["taken"], 2) if acc["taken"] else None
                acc["gatewayCpuPct"] = rnd(100 * (w1[1] - w0[1]) / max(w1[0] - w0[0], 1e-6))
                acc["gatewayRssKbEnd"] = w1[2]
                r["windows"][name] = acc
            r["windows"]["attack"]["gatewayRssKbPeak"] = rss_peak
            total = ledger.account(cutoff)
            r["lost"], r["duplicates"] = total["lost"], total["duplicates"]
            gs = fleet.gateway_stats()
            res = gs.get("resources") or {}
            r["gatewayRefused"] = res.get("refused")
            r["gatewayDropsHosts"] = len(res.get("drops") or {})
            r["gatewayConnectionsAtEnd"] = gs.get("connections")
            r["gatewayStreamsAtEnd"] = res.get("streams")
            return r
        finally:
            await self.stop_all(fleet, sub, (), attacker)
            fleet.cleanup()

    async def run(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        out = {"event": "soak", "quick": self.a.quick, "cpus": os.cpu_count()}
        for name, phase, budget in (("soak", self.soak, self.soak_budget_s),
                                    ("attack", self.attack, self.attack_budget_s)):
            if name not in self.a.phases or self.stop.is_set():
                continue
            try:
                out[name] = await asyncio.wait_for(phase(), budget)
            except asyncio.TimeoutError as e:
                out[name] = {"error": "TimeoutError: %s" % (e or "over its %.0f s budget" % budget)}
            except Exception as e:   # a process that died says why; the other phase still runs
                out[name] = {"error": "%s: %s" % (type(e).__name__, e)}
            if "error" in out[name]:
                log("%s: %s" % (name, out[name]["error"]))
        out["interrupted"] = self.stop.is_set()
        return out

    def sweep(self):
        """Last resort after the loop: SIGKILL every process group still running."""
        for p in self.procs:
            if p.proc is not None and p.proc.returncode is None:
                try:
                    os.killpg(p.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


# ---- report ----------------------------------------------------------------------------------

def table(out):
    rows = []
    if out.get("interrupted"):
        rows.append("INTERRUPTED: partial figures; readings in flight at the interrupt count as lost")
    for name in ("soak", "attack"):
        if (out.get(name) or {}).get("error"):
            rows.append("%s FAILED: %s" % (name.upper(), out[name]["error"]))
    s = out.get("soak")
    if s and "error" not in s:
        rows.append("SOAK  %d devices (%d serial) x 1 reading / %d ms x %.1f min; %d reboots, %d link drops" % (
            s["devices"], s["serialDevices"], out["intervalMs"], s["soakSeconds"] / 60, s["reboots"], s["linkDrops"]))
        kv = [("fleet connect", "%.1f s (device p50 %s s, max %s s)" % (
                  s["connectSeconds"], s["deviceConnectSecondsP50"], s["deviceConnectSecondsMax"])),
              ("readings taken / published", "%d / %d" % (s["taken"], s["published"])),
              ("received (signature checked)", "%d  (%.1f /s)" % (s["received"], s["readingsPerS"])),
              ("lost: in RAM at a kill (documented)", s["lostInRamAtKill"]),
              ("lost: dropped by a full queue (documented)", s["droppedByQueue"]),
              ("lost: otherwise", s["lost"]),
              ("duplicates delivered", "%d  (router filtered %s copies)" % (
                  s["duplicates"], s["subscriberRouterDuplicates"])),
              ("latency p50 / p99 / max", "%s / %s / %s ms" % (
                  s["latencyMsP50"], s["latencyMsP99"], s["latencyMsMax"])),
              ("reconnect after reboot p50 / max", "%s / %s s" % (s["rebootReconnectSP50"], s["rebootReconnectSMax"])),
              ("reconnect after link drop p50 / max", "%s / %s s" % (s["dropReconnectSP50"], s["dropReconnectSMax"])),
              ("gateway RSS idle / start / end / max", "%.1f / %.1f / %.1f / %.1f MiB" % (
                  (s["gatewayRssKbIdle"] or 0) / 1024, s["gatewayRssKbStart"] / 1024, s["gatewayRssKbEnd"] / 1024,
                  s["gatewayRssKbMax"] / 1024)),
              ("gateway RSS slope (all / last half)", "%s / %s MiB/min" % (
                  s["gatewayRssSlopeMiBPerMin"], s["gatewayRssSlopeMiBPerMinLastHalf"])),
              ("gateway CPU", "%s %% of one core" % s["gatewayCpuPct"]),
              ("fleet command from the subscriber reached", "%s of %d devices in %.0f s" % (
                  s.get("commandReached"), s["devices"], QUIESCE_WAIT_S))]
        if s.get("neverConnected"):
            kv.append(("never connected", ", ".join(s["neverConnected"])))
        rows += ["  %-44s %s" % (k, v) for k, v in kv]
    t = out.get("attack")
    if t and "error" not in t and t.get("windows"):
        rows.append("ATTACK  %d devices publishing; attacks: %s" % (t["devices"], ", ".join(t["attacks"])))
        rows.append("  %-10s %7s %7s %8s %9s %9s %9s %8s %10s" % (
            "window", "secs", "taken", "deliv %", "p50 ms", "p99 ms", "max ms", "gw CPU%", "gw RSS MiB"))
        for name in ("baseline", "attack", "recovery"):
            w = t["windows"][name]
            rows.append("  %-10s %7.1f %7d %8s %9s %9s %9s %8s %10.1f" % (
                name, w["seconds"], w["taken"], w["deliveryPct"], w["latencyMsP50"], w["latencyMsP99"],
                w["latencyMsMax"], w["gatewayCpuPct"], (w["gatewayRssKbEnd"] or 0) / 1024))
        rows.append("  gateway RSS peak during the attack %.1f MiB; lost %d, duplicates %d; attacker CPU %s s; "
                    "fleet command reached %s of %d" % (
                        (t["windows"]["attack"].get("gatewayRssKbPeak") or 0) / 1024, t["lost"], t["duplicates"],
                        t.get("attackerCpuSeconds"), t.get("commandReached"), t["devices"]))
        rows += ["  " + line for line in attacker_lines(t.get("attacker") or {})]
        if t.get("gatewayRefused"):
            rows.append("  gateway refusals: " + ", ".join("%s=%s" % kv for kv in sorted(t["gatewayRefused"].items())))
    return "\n".join(rows)


def attacker_lines(x):
    """The attacker's counters, one line per attack."""
    def g(k):
        return x.get(k, 0)

    def held(k):
        h = x.get(k + "HeldS")
        return "held p50 %s s max %s s" % (h["p50"], h["max"]) if h else "none closed"
    out = []
    if "slowlorisOpened" in x or "slowlorisRefused" in x:
        out.append("slowloris: %d sockets opened, %d closed by the gateway (%s), %d connects failed" % (
            g("slowlorisOpened"), g("slowlorisClosedByGateway"), held("slowloris"), g("slowlorisRefused")))
    if "idleOpened" in x or "idleRefused" in x:
        out.append("idle authenticated: %d opened, %d closed by the gateway (%s), %d refused" % (
            g("idleOpened"), g("idleClosedByGateway"), held("idle"), g("idleRefused")))
    if "pingfloodOpened" in x or "pingfloodRefused" in x:
        out.append("PING flood: %d connections, %d cut by the gateway (%s), %.1f MB sent, %d refused" % (
            g("pingfloodOpened"), g("pingfloodCut"), held("pingflood"), g("pingfloodBytes") / 1e6,
            g("pingfloodRefused")))
    if "denseConns" in x or "denseErrors" in x:
        out.append("dense RPCs: %d connections, %d RPCs (~1 MiB) written, %d streams ended by the gateway" % (
            g("denseConns"), g("denseRpcs"), g("denseStreamsEnded")))
    if "streamsConns" in x or "streamsErrors" in x:
        out.append("stream churn: %d connections, %d streams opened+closed, %d failed" % (
            g("streamsConns"), g("streamsOpenedClosed"), g("streamsFailed")))
    h = x.get("probeDialPingHeldS")
    out.append("new good peer (dial + ping every %.0f s): %d ok, %d failed%s" % (
        PROBE_EVERY_S, g("probeOk"), g("probeFailed"),
        ", took p50 %s s max %s s" % (h["p50"], h["max"]) if h else ""))
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Soak/churn and attack-under-load bench of the gateway (issue 11).")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 devices, 1 min, short attack phase")
    ap.add_argument("--phases", default="soak,attack", help="soak, attack or both (default)")
    ap.add_argument("--devices", type=int, help="soak: devices (default 200; quick 10)")
    ap.add_argument("--serial", type=int, help="soak: of them on emulated serial lines (default 4; quick 2)")
    ap.add_argument("--minutes", type=float, help="soak: length (default 10; quick 1)")
    ap.add_argument("--interval-ms", type=int, default=1000, help="reading interval (default 1000)")
    ap.add_argument("--reboots-per-min", type=float, help="fleet-wide device reboots per minute (default 6; quick 4)")
    ap.add_argument("--drops-per-min", type=float, help="fleet-wide link drops per minute (default 6; quick 4)")
    ap.add_argument("--link-share", type=float, default=0.25,
                    help="share of TCP devices dialing through a cuttable relay (default 0.25)")
    ap.add_argument("--drop-down-s", type=float, default=3.0, help="a dropped link stays down this long (serial: >= 6)")
    ap.add_argument("--reboot-down-s", type=float, default=1.0, help="a rebooted device is off this long")
    ap.add_argument("--attack-devices", type=int, help="attack: devices publishing (default 20; quick 10)")
    ap.add_argument("--baseline-s", type=float, help="attack: baseline window (default 30; quick 10)")
    ap.add_argument("--attack-s", type=float, help="attack: attack window (default 60; quick 20)")
    ap.add_argument("--recover-s", type=float, help="attack: window after it (default 15; quick 5)")
    ap.add_argument("--attacks", default=",".join(ATTACKS), help="subset of %s" % ",".join(ATTACKS))
    ap.add_argument("--start-batch", type=int, default=20, help="devices started at once")
    ap.add_argument("--sample-s", type=float, default=5.0, help="gateway RSS/CPU sample period")
    ap.add_argument("--heap", default="512K", help="MicroPython heap per device")
    ap.add_argument("--seed", type=int, default=1, help="choice of proxied / rebooted / dropped devices")
    a = ap.parse_args(argv)
    q = a.quick
    for name, full, quick in (("devices", 200, 10), ("serial", 4, 2), ("minutes", 10.0, 1.0),
                              ("reboots_per_min", 6.0, 4.0), ("drops_per_min", 6.0, 4.0),
                              ("attack_devices", 20, 10), ("baseline_s", 30.0, 10.0), ("attack_s", 60.0, 20.0),
                              ("recover_s", 15.0, 5.0)):
        if getattr(a, name) is None:
            setattr(a, name, quick if q else full)
    a.phases = [p for p in a.phases.split(",") if p]
    a.attacks = [x for x in a.attacks.split(",") if x]
    bad = [p for p in a.phases if p not in ("soak", "attack")] + [x for x in a.attacks if x not in ATTACKS]
    if bad:
        ap.error("unknown phase/attack: %s" % ", ".join(bad))
    if a.devices < 1 or a.attack_devices < 1 or a.minutes <= 0:
        ap.error("need at least one device and a positive duration")
    a.progress_s = 15.0 if q else 30.0
    return a


def main(argv):
    if argv and argv[0] == "_subscriber":
        asyncio.run(subscriber_main(argv[1], argv[2]))
        return 0
    if argv and argv[0] == "_attacker":
        asyncio.run(attacker_main(argv[1], float(argv[2]), set(argv[3].split(","))))
        return 0
    a = parse_args(argv)
    b = Bench(a)
    starts = (a.devices + a.start_batch - 1) // a.start_batch * CONNECT_TIMEOUT_S
    b.soak_budget_s = START_TIMEOUT_S * 3 + starts + a.minutes * 60 + INJECT_STOP_S + RECONNECT_WAIT_S + \
        QUIESCE_WAIT_S + SETTLE_S + 60
    b.attack_budget_s = START_TIMEOUT_S * 3 + CONNECT_TIMEOUT_S * 2 + a.baseline_s + a.attack_s + \
        a.recover_s + ATTACK_GRACE_S + QUIESCE_WAIT_S + SETTLE_S + 60
    b.budget_s = b.soak_budget_s + b.attack_budget_s
    log("%s run: phases %s; %d CPUs; budget %.0f min" % ("quick" if a.quick else "full", ",".join(a.phases),
                                                        os.cpu_count(), b.budget_s / 60))
    out = None
    try:
        out = asyncio.run(b.run())
    except asyncio.TimeoutError:
        log("a phase overran its time budget; stopped")
    finally:
        b.sweep()
    if out is None:
        return 1
    out["intervalMs"] = a.interval_ms
    print(table(out), flush=True)
    print(json.dumps(out), flush=True)
    s = out.get("soak") or {}
    t = out.get("attack") or {}
    ok = not out["interrupted"] and not s.get("lost") and not t.get("lost") and "error" not in s and "error" not in t
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
