# Helpers for tests/host/test_sensor_node*.py: a CPython "gateway" (a microp2p Node with pubsub,
# in-process so a test can see every message and publish commands), a TCP relay that can cut the
# link, and the sensor app as a real MicroPython unix-port process running the x64 .mpy build.
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile

import microp2p_host  # noqa: F401  (native crypto for the CPython side)
from microp2p import crypto
from microp2p.io import node as nodemod, pubsub as pubsub_driver
from microp2p.identity.peerid import PeerId
from microp2p.pubsub import rpc as R
from microp2p_host import tooling
from microp2p_host.keyfile import write_key_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPY = os.path.join(ROOT, ".venv", "bin", "micropython")
FIRMWARE = os.path.join(ROOT, "firmware")
READINGS = "sensors/readings"
COMMANDS = "sensors/commands"
# Smallest heaps measured for the full app (TCP, Noise, yamux, gossipsub) on the 64-bit unix port:
# 312 KiB with the .mpy build, 371 KiB from .py source. The tests run with some margin. The
# resource manager (io/resources.py, 10.5 KB retained as .mpy) made 360K fail on a serial
# reconnect (MemoryError, fragmentation); 400K passes with heap_peak ~325 KB.
DEVICE_HEAP_MPY = "400K"
# compiling the .py sources on the device needs room beyond the .mpy case; the resource manager
# (io/resources.py, 13 KB retained from source) took it past 480K; 512K passes alone, not under load
DEVICE_HEAP_PY = "560K"
EVENT_WAIT_S = 30

_build_dir = None


def unix_build():
    """The x64 .mpy build of firmware/ (built once per test process)."""
    global _build_dir
    if _build_dir is None:
        d = tempfile.mkdtemp(prefix="microp2p-build-")
        tooling.build(tooling.load_board("unix"), os.path.join(d, "unix"))
        _build_dir = os.path.join(d, "unix")
    return _build_dir


def provision(tmp, gateway, **extra):
    """A device dir with device.key and config.json; returns (config path, peer id)."""
    board = tooling.load_board("unix")
    peer, cfg = tooling.provision(board, tmp, write_key_file, gateway=gateway,
                                  link=extra.pop("link", "tcp"), serial_port=extra.pop("serial_port", None))
    cfg.update(extra)
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path, peer


def verify_signature(msg):
    """Check a pubsub message's StrictSign signature independently of the router: the author's
    Ed25519 key is inlined in its peer id."""
    pid = PeerId.from_bytes(msg["from"])
    unsigned = {"from": msg["from"], "data": msg["data"], "seqno": msg["seqno"], "topic": msg["topic"]}
    payload = R.SIGN_PREFIX + bytes(R.pb.encode(unsigned, R.MESSAGE_UNSIGNED))
    return crypto.ed25519_verify(pid.public_key().raw, payload, msg["signature"])


class Gateway:
    """A CPython peer subscribed to the readings topic, recording every message."""

    def __init__(self):
        self.node = nodemod.Node()
        self.messages = []
        self.arrived = asyncio.Event()
        self.pubsub = None
        self.addr = None

    async def start(self, listen=True):
        if listen:
            self.addr = await self.node.listen("/ip4/127.0.0.1/tcp/0")
        self.pubsub = pubsub_driver.attach(self.node, on_message=self._on_message)
        self.pubsub.subscribe(READINGS)
        return self

    @property
    def peer_id(self):
        return str(self.node.peer_id)

    def _on_message(self, topic, msg):
        m = dict(msg)
        m["topic"] = topic
        self.messages.append(m)
        self.arrived.set()

    async def wait_messages(self, n, timeout=EVENT_WAIT_S, pred=None):
        async def go():
            while True:
                got = [m for m in self.messages if pred is None or pred(m)]
                if len(got) >= n:
                    return got
                self.arrived.clear()
                await self.arrived.wait()
        return await asyncio.wait_for(go(), timeout)

    def command(self, cmd):
        import cbor2
        self.pubsub.publish(COMMANDS, cbor2.dumps(cmd))

    async def stop(self):
        self.pubsub.close()
        await self.node.stop()


class CuttableRelay:
    """A TCP relay between the device and the gateway that a test can cut (close every pair and
    refuse new connections) and restore."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.server = None
        self.port = None
        self.pairs = []
        self.refusing = False
        self.accepted = 0

    async def start(self):
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _on_conn(self, r, w):
        if self.refusing:
            w.close()
            return
        self.accepted += 1
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            w.close()
            return
        pair = (w, tw)
        self.pairs.append(pair)
        await asyncio.gather(self._pump(r, tw), self._pump(tr, w), return_exceptions=True)
        self._close_pair(pair)

    async def _pump(self, r, w):
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
        finally:
            w.close()

    def _close_pair(self, pair):
        for w in pair:
            w.close()
        if pair in self.pairs:
            self.pairs.remove(pair)

    def cut(self):
        self.refusing = True
        for pair in list(self.pairs):
            self._close_pair(pair)

    def restore(self):
        self.refusing = False

    async def stop(self):
        self.cut()
        self.server.close()
        await self.server.wait_closed()


class Device:
    """The sensor app in a MicroPython unix-port process; its JSON events are collected."""

    def __init__(self, config_path, heap=DEVICE_HEAP_MPY, source=False):
        self.config_path = config_path
        self.heap = heap
        self.path = FIRMWARE if source else unix_build()
        self.proc = None
        self.events = []
        self.stderr = b""
        self._new = asyncio.Event()
        self._task = None

    async def start(self):
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([self.path, ".frozen"])
        self.proc = await asyncio.create_subprocess_exec(
            MPY, "-X", "heapsize=" + self.heap, "-m", "sensor_node", self.config_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._task = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "garbage", "line": line.decode(errors="replace")})
            self._new.set()
        self._new.set()

    def named(self, name):
        return [e for e in self.events if e.get("event") == name]

    async def wait_event(self, name, pred=None, n=1, timeout=EVENT_WAIT_S):
        async def go():
            while True:
                got = [e for e in self.named(name) if pred is None or pred(e)]
                if len(got) >= n:
                    return got
                if self.proc.stdout.at_eof() and self._task.done():
                    raise AssertionError("device exited: %s\n%s" % (self.events[-5:], await self._err()))
                self._new.clear()
                await self._new.wait()
        return await asyncio.wait_for(go(), timeout)

    async def _err(self):
        try:
            return (await asyncio.wait_for(self.proc.stderr.read(), 5)).decode(errors="replace")
        except Exception:
            return ""

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 10)
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)
        self.stderr = (await self._err())
        return self.stderr


def run(coro, timeout=150):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def tmpdir():
    d = tempfile.mkdtemp(prefix="microp2p-dev-")
    return d


def rmtree(d):
    shutil.rmtree(d, ignore_errors=True)


def python():
    return sys.executable
