# The sensor device app: a microp2p node (device profile) that connects to its gateway over TCP or
# a serial link, publishes a signed CBOR reading every interval on its topic, obeys CBOR commands
# on the command topic, and rides out link loss: readings taken while the link is down wait in a
# bounded queue (oldest dropped first, drops counted) and go out after the reconnect, which is
# retried with bounded exponential backoff.
#
#   micropython -m sensor_node CONFIG.json        (unix port; on a board main.py calls run())
#
# Reading payload (CBOR map): {"dev": peer id, "seq": n, "t": wall ms, "v": value, "unit": str,
# "dropped": total drops so far (only once there were any)}. The gossipsub message carrying it is
# signed by the device's own key (StrictSign), so any peer can check who measured it.
# Commands (CBOR map, from the gateway or a peer listed in "command_from"):
#   {"cmd": "interval", "ms": N}   new reading interval      {"cmd": "ping"}   a reading right now
#   "to": the device's peer id or "*" (absent = everyone)
# stdout: one JSON line per event (started, connected, reading, published, queued, dropped,
# command, command_rejected, disconnected, dial_failed, stats); logs go to stderr.
import gc
import json
import sys

from microp2p import events as E
from microp2p.codec import cbor
from microp2p.identity import keys
from microp2p.io import node as nodemod
from microp2p.io.profile import Profile
from microp2p.io import pubsub as pubsub_driver
from microp2p.aio import asyncio, print_exc, MICROPYTHON, TimeoutError
from microp2p.clock import ticks_ms, ticks_diff, ticks_add, now_ms, wall_ms
from microp2p.errors import ProtocolError, UsageError
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from sensor_node import sensors

DEFAULTS = {
    "link": "tcp",
    "baud": 115200,
    "topic": "sensors/readings",
    "command_topic": "sensors/commands",
    "interval_ms": 2000,
    "queue_max": 32,
    "max_backoff_ms": 8000,
    "sensor": {"kind": "simulated"},
    "heap_report": True,
    "stats_every": 10,
    "run_ms": 0,            # stop after this long (0: run forever); bounded test and bench runs
    "command_from": None,   # peer ids allowed to command us; None: the gateway only; ["*"]: anyone
    "verbose": False,
}
MIN_INTERVAL_MS = 50
MAX_INTERVAL_MS = 24 * 3600 * 1000
QUEUE_MAX_LIMIT = 1024          # a config asking for more is refused: each entry costs RAM
INITIAL_BACKOFF_MS = 250
MIN_BACKOFF_CAP_MS = 250
MAX_BACKOFF_CAP_MS = 600000
WIFI_CONNECT_TIMEOUT_MS = 20000
MAX_CONFIG_BYTES = 8192
# After a reconnect, our messages of the last REPLAY_WINDOW_MS are sent again (see _flush_loop).
# Must stay well inside the gossipsub seen TTL (2 min) so every copy is recognised as a duplicate.
REPLAY_WINDOW_MS = 30000
REPLAY_BATCH = 4          # messages handed to pubsub at once during a replay
REPLAY_PAUSE_MS = 50      # between batches, so the writer drains the device's small queues
REPLAY_COVER_MS = 12000   # keep enough own messages to cover this long an undetected link loss
REPLAY_MIN = 8            # ... at least this many
REPLAY_MAX = 32           # ... but never more than this many
HOP = "/libp2p/circuit/relay/0.2.0/hop"


def _sleep_ms(ms):
    return asyncio.sleep(ms / 1000)


def load_config(path):
    text = keys.read_bounded(path, MAX_CONFIG_BYTES + 1, "r")
    if len(text) > MAX_CONFIG_BYTES:
        raise UsageError("config file over %d bytes" % MAX_CONFIG_BYTES)
    return make_config(json.loads(text), path)


def make_config(user, path=None):
    cfg = {}
    for k in DEFAULTS:
        cfg[k] = DEFAULTS[k]
    for k in user:
        cfg[k] = user[k]
    if cfg["link"] not in ("tcp", "serial"):
        raise UsageError("link must be tcp or serial")
    if not cfg.get("key_file"):
        raise UsageError("config needs key_file")
    if not cfg.get("gateway"):
        raise UsageError("config needs gateway (a multiaddr ending in /p2p/GATEWAY_ID)")
    if cfg["link"] == "serial" and cfg.get("serial_port") is None:
        raise UsageError("a serial link needs serial_port")
    q = int(cfg["queue_max"])
    if not 1 <= q <= QUEUE_MAX_LIMIT:
        raise UsageError("queue_max must be 1..%d" % QUEUE_MAX_LIMIT)
    cfg["queue_max"] = q
    cfg["interval_ms"] = _clamp(int(cfg["interval_ms"]), MIN_INTERVAL_MS, MAX_INTERVAL_MS)
    cfg["max_backoff_ms"] = _clamp(int(cfg["max_backoff_ms"]), MIN_BACKOFF_CAP_MS, MAX_BACKOFF_CAP_MS)
    # a relative key path is relative to the config file (a board keeps both side by side)
    kf = cfg["key_file"]
    if path and not kf.startswith("/"):
        i = path.rfind("/")
        if i >= 0:
            cfg["key_file"] = path[:i + 1] + kf
    return cfg


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


class SensorApp:
    def __init__(self, cfg, out=None, err=None):
        self.cfg = cfg
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        key = keys.load_private_key(cfg["key_file"])
        self.node = nodemod.Node(key, Profile.device(), on_event=self._on_node_event,
                                 log=self._log if cfg["verbose"] else None)
        self.peer_id = str(self.node.peer_id)
        self.gateway = Multiaddr.from_string(cfg["gateway"])
        gw = self.gateway.value_for("p2p")
        self.gateway_peer = PeerId.from_string(gw) if gw else None
        allowed = cfg["command_from"]
        if allowed is None:
            allowed = [gw] if gw else []
        self.command_from = allowed
        self.started_ms = ticks_ms()
        self.sensor = sensors.make(cfg["sensor"])
        self.topic = cfg["topic"]
        self.interval_ms = cfg["interval_ms"]
        self.queue = []             # (seq, t, value, unit) waiting for the link
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.readings = 0
        self.heap_peak = 0
        self.conn = None
        self.pubsub = None
        self.relay = None           # io.relay.RelayClient, made by sensor_node.reach on first use
        self._closed_ev = asyncio.Event()
        self._wake = asyncio.Event()       # the sampler: the interval changed / a ping came
        self._ready_ev = asyncio.Event()   # the flusher: a subscription arrived / link came up
        self._ping_pending = False
        self._next_at = 0
        self.stopped = False
        self._replay_due = False

    # ---- output ---------------------------------------------------------------------------
    def emit(self, name, fields=None):
        d = {"event": name}
        if fields:
            for k in fields:
                d[k] = fields[k]
        self.out.write(json.dumps(d) + "\n")
        if not MICROPYTHON:
            self.out.flush()

    def _log(self, msg):
        self.err.write(str(msg) + "\n")

    def _on_node_event(self, name, fields):
        if self.cfg["verbose"]:
            self._log("node %s %s" % (name, fields))

    # ---- lifecycle ------------------------------------------------------------------------
    async def run(self):
        self.pubsub = pubsub_driver.attach(self.node, on_message=self._on_message,
                                           on_event=self._on_pubsub_event, device=True)
        # enough own messages to re-send everything an undetected link loss could swallow
        self.pubsub.set_replay(_clamp(
            REPLAY_COVER_MS // max(self.interval_ms, 1) + 2, REPLAY_MIN, REPLAY_MAX))
        self.pubsub.subscribe(self.cfg["command_topic"])
        # Reach (sensor_node/reach.py, loaded on first use): relayed connections from the gateway
        # (STOP) and /microp2p/sensor/1.0.0 (the latest signed reading and the status). Registered
        # after pubsub: growing the handler table earlier fragments the heap the compile needs.
        self.node.handle("/libp2p/circuit/relay/0.2.0/stop", self._reach)
        self.node.handle("/microp2p/sensor/1.0.0", self._reach)
        self.node.on_connection(self._on_connection)
        self.node.identify.on_identify(self._on_identify)
        self.emit(E.STARTED, {"peerId": self.peer_id, "link": self.cfg["link"], "topic": self.topic,
                              "runtime": sys.implementation.name, "interval_ms": self.interval_ms})
        tasks = [asyncio.create_task(self._link_loop()), asyncio.create_task(self._sample_loop()),
                 asyncio.create_task(self._flush_loop())]
        try:
            if self.cfg["run_ms"]:
                await _sleep_ms(self.cfg["run_ms"])
            else:
                await asyncio.gather(*tasks)
        finally:
            self.stopped = True
            for t in tasks:
                t.cancel()
            self.emit_stats()
            if self.relay is not None:
                self.relay.stop()
            self.pubsub.close()
            await self.node.stop()
            self.emit(E.STOPPED, {})

    def _on_connection(self, conn, opened):
        if not opened and conn is self.conn:
            self._closed_ev.set()

    # ---- link: connect, wait for loss, back off, again -------------------------------------
    async def _link_loop(self):
        if self.cfg["link"] == "serial":
            from sensor_node import serial_link   # loaded by serial devices only
            await serial_link.run(self, INITIAL_BACKOFF_MS)
        else:
            await self._tcp_loop()

    async def dial_failed(self, backoff, error):
        """A dial of the gateway failed: report it, wait backoff ms; the next backoff."""
        self.emit(E.DIAL_FAILED, {"error": error, "retry_ms": backoff})
        await _sleep_ms(backoff)
        return min(backoff * 2, self.cfg["max_backoff_ms"])

    async def _tcp_loop(self):
        self._wifi_up()
        backoff = INITIAL_BACKOFF_MS
        while not self.stopped:
            try:
                conn = await self.node.dial(self.gateway)
            except Exception as e:  # refused, unreachable, handshake timeout, wrong peer...
                backoff = await self.dial_failed(backoff, "%s: %s" % (type(e).__name__, e))
                continue
            backoff = await self.hold_link(conn, backoff)

    async def hold_link(self, conn, backoff):
        """Hold a connection; after it ends, the backoff for the next dial: reset when the link
        served us, grown (and waited) when the gateway refused us and said why."""
        await self._hold(conn)
        if conn.refusal is None:
            return INITIAL_BACKOFF_MS
        self.emit(E.REFUSED, {"reason": conn.refusal, "retry_ms": backoff})
        await _sleep_ms(backoff)
        return min(backoff * 2, self.cfg["max_backoff_ms"])

    def _wifi_up(self):
        wifi = self.cfg.get("wifi")
        if not wifi:
            return
        try:
            import network
        except ImportError:
            return
        import time
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        if not wlan.isconnected():
            wlan.connect(wifi["ssid"], wifi.get("password", ""))
            t0 = ticks_ms()
            while not wlan.isconnected() and ticks_diff(ticks_ms(), t0) < WIFI_CONNECT_TIMEOUT_MS:
                time.sleep_ms(100)
        self.emit(E.WIFI, {"connected": wlan.isconnected()})

    async def _hold(self, conn):
        """The link is up: report it, wait until it goes down."""
        self._closed_ev.clear()
        self.conn = conn
        self.emit(E.CONNECTED, {"link": self.cfg["link"], "peer": str(conn.remote_peer)})
        self._ready_ev.set()
        if not conn.closed:
            await self._closed_ev.wait()
        self.conn = None
        self._replay_due = True
        self.emit(E.DISCONNECTED, {"reason": "connection closed", "queued": len(self.queue)})

    # ---- readings ---------------------------------------------------------------------------
    async def _sample_loop(self):
        self._next_at = ticks_ms()
        while not self.stopped:
            wait = ticks_diff(self._next_at, ticks_ms())
            if wait > 0 and not self._ping_pending:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait / 1000)
                except TimeoutError:
                    pass
                continue
            if self._ping_pending:
                self._ping_pending = False
            else:
                self._next_at = ticks_add(self._next_at, self.interval_ms)
                if ticks_diff(self._next_at, ticks_ms()) < 0:   # far behind: no burst
                    self._next_at = ticks_add(ticks_ms(), self.interval_ms)
            try:
                self.take_reading()
            except Exception as e:  # a sensor fault must not stop the device
                print_exc(e)

    def take_reading(self):
        value, unit = self.sensor.read()
        self.seq += 1
        self.readings += 1
        self.emit(E.READING, {"seq": self.seq, "v": value})
        if len(self.queue) >= self.cfg["queue_max"]:
            old = self.queue.pop(0)
            self.dropped += 1
            self.emit(E.DROPPED, {"seq": old[0], "dropped": self.dropped})
        self.queue.append((self.seq, wall_ms(), value, unit))
        if self._ready():
            self._ready_ev.set()
        else:
            self.emit(E.QUEUED, {"seq": self.seq, "queued": len(self.queue)})
        if self.cfg["heap_report"]:
            self._sample_heap()
        n = self.cfg["stats_every"]
        if n and self.readings % n == 0:
            self.emit_stats()

    def _ready(self):
        # Published only when the gateway is connected and its subscription to our topic is known:
        # gossipsub sends a message to the topic's peers at publish time, so before that it would
        # be signed and lost.
        c = self.conn
        return c is not None and not c.closed and bool(self.pubsub.topic_peers(self.topic))

    async def _flush_loop(self):
        while not self.stopped:
            self._ready_ev.clear()
            await self._ready_ev.wait()
            if self._replay_due and self._ready():
                await self._replay()
            while self.queue and self._ready():
                seq, t, value, unit = self.queue.pop(0)
                self._publish(seq, t, value, unit)
                # let the pubsub writer run between queued readings (its buffers are small)
                await asyncio.sleep(0)

    async def _replay(self):
        # Readings published while the old link was dying (before we noticed) were lost with
        # it: send our recent signed messages again, the very same bytes, in small batches that
        # fit the pubsub queue. The gateway and subscribers drop the ones they already had as
        # duplicates (same message id), so each reading still arrives exactly once.
        self._replay_due = False
        since = now_ms() - REPLAY_WINDOW_MS
        total = 0
        while self._ready():
            n = self.pubsub.replay(since, total, REPLAY_BATCH)
            total += n
            if n < REPLAY_BATCH:
                break
            await _sleep_ms(REPLAY_PAUSE_MS)
        if total:
            self.emit(E.REPLAYED, {"count": total})

    def _publish(self, seq, t, value, unit):
        reading = {"dev": self.peer_id, "seq": seq, "t": t, "v": value, "unit": unit}
        if self.dropped:
            reading["dropped"] = self.dropped
        self.pubsub.publish(self.topic, cbor.encode(reading))
        self.sent += 1
        self.emit(E.PUBLISHED, {"seq": seq})

    async def _reach(self, st):
        from sensor_node import reach
        await reach.serve(self, st)

    def _on_identify(self, conn, info):
        # A gateway serving circuit relay v2 (hop listed in its identify): hold a reservation over
        # our link to it, so our circuit address is in our identify and peer record.
        if self.gateway_peer is None or conn.remote_peer != self.gateway_peer:
            return
        hop = HOP in (info.get("protocols") or ())
        if hop or self.relay is not None:
            from sensor_node import reach
            reach.gateway_relay(self, hop)

    def _sample_heap(self):
        try:
            gc.collect()
            a = gc.mem_alloc()
        except AttributeError:  # CPython
            return
        if a > self.heap_peak:
            self.heap_peak = a

    def emit_stats(self):
        fields = {"sent": self.sent, "dropped": self.dropped, "queued": len(self.queue),
                  "readings": self.readings, "interval_ms": self.interval_ms,
                  "heap_peak": self.heap_peak if self.cfg["heap_report"] else None}
        if self.cfg["heap_report"]:
            try:
                fields["heap_free"] = gc.mem_free()
            except AttributeError:
                pass
        self.emit(E.STATS, fields)

    # ---- pubsub: commands and subscriptions ---------------------------------------------------
    def _on_pubsub_event(self, ev):
        if ev[0] == "subscribed" and ev[2] == self.topic:
            self._ready_ev.set()

    def _on_message(self, topic, msg):
        if topic != self.cfg["command_topic"]:
            return
        frm = msg.get("from")
        sender = str(PeerId.from_bytes(frm)) if frm else None
        try:
            cmd = cbor.decode(msg.get("data", b""))
        except ProtocolError as e:
            cmd = "bad cbor: %s" % e
        if isinstance(cmd, dict):
            if "ack" in cmd:
                return  # another device's answer to a command
            to = cmd.get("to", "*")
            if to != "*" and to != self.peer_id:
                return  # for another device
        if "*" not in self.command_from and sender not in self.command_from:
            self.reject(cmd, sender, "sender not allowed: add %s to the device's command_from" % sender)
        elif not isinstance(cmd, dict):
            self.reject(None, sender, cmd if isinstance(cmd, str) else "not a map")
        else:
            self.command(cmd, sender)

    def reject(self, cmd, sender, reason):
        self.emit(E.COMMAND_REJECTED, {"from": sender, "reason": reason})
        self._ack(cmd, sender, reason)

    def _ack(self, cmd, sender, reason=None):
        """Answer a command on the command topic, signed by us: {"ack": name, "dev": our id,
        "to": the commander, "ok": bool[, "reason": why not]} (docs/formats.md)."""
        if self.pubsub is None or not self._ready():
            return
        a = {"ack": cmd.get("cmd") if isinstance(cmd, dict) else None, "dev": self.peer_id, "to": sender,
             "ok": reason is None}
        if reason is not None:
            a["reason"] = reason
        try:
            self.pubsub.publish(self.cfg["command_topic"], cbor.encode(a))
        except ProtocolError:
            pass

    def command(self, cmd, sender=None):
        name = cmd.get("cmd")
        if name == "interval":
            ms = cmd.get("ms")
            if not isinstance(ms, int) or ms is True or ms is False or not MIN_INTERVAL_MS <= ms <= MAX_INTERVAL_MS:
                self.reject(cmd, sender, "interval ms out of range")
                return
            self.interval_ms = ms
            # the next reading comes one new interval after the latest one
            self._next_at = ticks_add(ticks_ms(), ms)
            self._wake.set()
            self.emit(E.COMMAND, {"cmd": "interval", "ms": ms, "from": sender})
            self._ack(cmd, sender)
        elif name == "ping":
            self._ping_pending = True
            self._wake.set()
            self.emit(E.COMMAND, {"cmd": "ping", "from": sender})
            self._ack(cmd, sender)
        else:
            self.reject(cmd, sender, "unknown command %r" % (name,))


def run(config_path):
    """Load the config, run the app until run_ms passes (or forever)."""
    cfg = load_config(config_path)
    if not MICROPYTHON:
        try:
            import microp2p_host  # noqa: F401  (native crypto on CPython, when installed)
        except ImportError:
            pass
    app = SensorApp(cfg)
    asyncio.run(app.run())
    return app


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        sys.stderr.write("usage: sensor_node CONFIG.json\n")
        return 2
    try:
        run(argv[0])
    except (UsageError, ValueError, OSError) as e:
        sys.stderr.write("sensor_node: %s: %s\n" % (type(e).__name__, e))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
