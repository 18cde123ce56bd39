# A minimal device for the e2e tests, run by the MicroPython unix port:
#   micropython tests/e2e/stub_sensor.py CONFIG.json
# It follows the sensor_node contract (config keys, stdout JSON events, CBOR readings and
# commands) so the tests can run the same scenario on it or on the real app, and it can
# misbehave on purpose: config "misbehave": "garbage" sends random bytes on its libp2p
# connection once it is up (the gateway must drop it, not the others).
import sys
import json
import asyncio

from microp2p.io import node as nodemod, pubsub as pubsub_driver
from microp2p.io.profile import Profile
from microp2p.codec import cbor
from microp2p import crypto
from microp2p.identity.keys import load_private_key
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.clock import ticks_ms, ticks_diff

QUEUE_MAX_DEFAULT = 64
RETRY_MS_MAX = 4000
STATS_EVERY_MS = 2000


def emit(name, **fields):
    fields["event"] = name
    sys.stdout.write(json.dumps(fields) + "\n")


class Device:
    def __init__(self, cfg):
        self.cfg = cfg
        self.key = load_private_key(cfg["key_file"])
        self.node = nodemod.Node(self.key, Profile.device(),
                                 log=lambda m: sys.stderr.write(str(m) + "\n"))
        self.topic = cfg.get("topic", "sensors/readings")
        self.cmd_topic = cfg.get("command_topic", "sensors/commands")
        self.interval = int(cfg.get("interval_ms", 1000))
        self.queue_max = int(cfg.get("queue_max", QUEUE_MAX_DEFAULT))
        self.queue = []
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.heap_peak = 0
        self.gw = Multiaddr.from_string(cfg["gateway"])
        self.gw_peer = PeerId.from_string(self.gw.value_for("p2p"))
        self.conn = None
        self.ps = pubsub_driver.attach(self.node, on_message=self.on_message, device=True)
        self.ps.subscribe(self.cmd_topic)

    def on_message(self, topic, msg):
        if topic != self.cmd_topic:
            return
        try:
            cmd = cbor.decode(bytes(msg.get("data", b"")))
        except Exception as e:
            emit("error", error="bad command: %r" % e)
            return
        if isinstance(cmd, dict) and cmd.get("cmd") == "interval":
            self.interval = int(cmd.get("ms", self.interval))
        emit("command", cmd=cmd.get("cmd") if isinstance(cmd, dict) else None, interval_ms=self.interval)

    def heap(self):
        try:
            import gc
            used = gc.mem_alloc()
            if used > self.heap_peak:
                self.heap_peak = used
        except Exception:
            pass

    async def sample_loop(self):
        t0 = ticks_ms()
        while True:
            self.seq += 1
            r = {"dev": str(self.node.peer_id), "seq": self.seq, "t": ticks_diff(ticks_ms(), t0),
                 "v": 20 + (self.seq % 10) / 10}
            if self.dropped:
                r["dropped"] = self.dropped
            if len(self.queue) >= self.queue_max:
                self.queue.pop(0)
                self.dropped += 1
            self.queue.append(r)
            emit("reading", seq=self.seq)
            self.flush()
            self.heap()
            await asyncio.sleep_ms(self.interval)

    def flush(self):
        if self.conn is None or self.conn.closed or not self.ps.topic_peers(self.topic):
            return
        while self.queue:
            r = self.queue.pop(0)
            self.ps.publish(self.topic, cbor.encode(r))
            self.sent += 1
            emit("published", seq=r["seq"])

    async def stats_loop(self):
        while True:
            await asyncio.sleep_ms(STATS_EVERY_MS)
            self.flush()
            emit("stats", sent=self.sent, dropped=self.dropped, queued=len(self.queue), heap_peak=self.heap_peak)

    async def misbehave(self, conn):
        await asyncio.sleep_ms(1500)
        emit("garbage")
        # a well-formed Noise transport frame (2-byte length) of random bytes: it fails
        # authentication at once (random bytes with a random length prefix could sit in the
        # gateway's reassembly buffer for a while before failing the same way)
        await conn.duplex.write(b"\x01\x00" + crypto.random_bytes(256))

    async def connect_loop(self):
        retry = 250
        serial_port = None
        if self.cfg.get("link") == "serial":
            from microp2p.io import serial
            r, w = serial.open_tty(self.cfg["serial_port"])
            baud = int(self.cfg.get("baud", 115200))
            serial_port = serial.SerialPort(r, w, {"baud": baud}, throttle_baud=baud)
            serial_port.start()
        while True:
            try:
                if serial_port is not None:
                    sc = await serial_port.accept()
                    conn = await self.node.dial_stream(sc, sc, self.gw, self.gw_peer)
                else:
                    conn = await self.node.dial(self.gw)
            except Exception as e:
                emit("dial:error", error="%s %s" % (type(e).__name__, e))
                await asyncio.sleep_ms(retry)
                retry = min(retry * 2, RETRY_MS_MAX)
                continue
            retry = 250
            self.conn = conn
            emit("connected", peer=str(conn.remote_peer))
            if self.cfg.get("misbehave") == "garbage":
                asyncio.create_task(self.misbehave(conn))
            while not conn.closed:
                await asyncio.sleep_ms(100)
                self.flush()
            self.conn = None
            emit("disconnected")

    async def main(self):
        emit("started", peerId=str(self.node.peer_id))
        asyncio.create_task(self.sample_loop())
        asyncio.create_task(self.stats_loop())
        await self.connect_loop()


with open(sys.argv[1]) as f:
    config = json.load(f)
if not config["key_file"].startswith("/") and "/" in sys.argv[1]:
    config["key_file"] = sys.argv[1].rsplit("/", 1)[0] + "/" + config["key_file"]
asyncio.run(Device(config).main())
