# The two serial drivers together over pseudo-terminals: CPython host side
# (microp2p_host.serial_host) on one end, a real MicroPython unix-port process running
# microp2p.serial (tests/host/serial_echo_device.py) on the other. A pty has no baud rate, so
# 115200 baud is simulated: by both ends' write pacing, or by a relay in the middle that also
# injects byte faults and unplugs (microp2p_sim.serial_sim.FaultyWire in real time).
import asyncio
import os
import subprocess
import time
import tty

from microp2p_sim.serial_sim import XorShift32, FaultyWire
from microp2p_host.serial_host import FdStream, open_fd, open_serial

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPY = os.path.join(ROOT, ".venv", "bin", "micropython")
ECHO = os.path.join(ROOT, "tests", "host", "serial_echo_device.py")
FIRMWARE = os.path.join(ROOT, "firmware")
BAUD = 115200
SIZE = 32768
DEVICE_HEAP = "256K"  # the device side must fit a small heap


def _pty():
    m, s = os.openpty()
    tty.setraw(s)
    return m, s


def _start_device(path, baud):
    return subprocess.Popen([MPY, "-X", "heapsize=" + DEVICE_HEAP, ECHO, path, FIRMWARE, str(baud)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc):
    proc.kill()
    out = proc.communicate(timeout=10)[0].decode(errors="replace")
    return out


async def _echo(conn, data, piece=1000):
    """Writes data and reads the echo concurrently; returns (echo, seconds)."""
    t0 = time.monotonic()

    async def writer():
        for i in range(0, len(data), piece):
            conn.write(data[i:i + piece])
            await conn.drain()

    wt = asyncio.ensure_future(writer())
    got = await conn.readexactly(len(data))
    await wt
    return got, time.monotonic() - t0


class Relay:
    """Carries bytes between two fds through FaultyWires stepped on the real clock."""

    def __init__(self, fd_a, fd_b, rate, seed):
        rng = XorShift32(seed)
        self.a = FdStream(fd_a)
        self.b = FdStream(fd_b)
        # the ends pace themselves at BAUD; the relay only adds faults (and never a queue)
        self.ab = FaultyWire(rng, 4 * BAUD, rate)
        self.ba = FaultyWire(rng, 4 * BAUD, rate)
        self.tasks = []

    def start(self):
        self.tasks = [asyncio.ensure_future(self._pump(self.a, self.ab)),
                      asyncio.ensure_future(self._pump(self.b, self.ba)),
                      asyncio.ensure_future(self._clock())]

    def unplug(self, on):
        self.ab.unplugged = self.ba.unplugged = on

    async def _pump(self, src, wire):
        while True:
            d = await src.read(4096)
            if d:
                wire.write(d)
            else:
                await asyncio.sleep(0.01)

    async def _clock(self):
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.002)
            now = time.monotonic()
            ms = int((now - last) * 1000)
            if ms <= 0:
                continue
            last += ms / 1000
            for wire, dst in ((self.ab, self.b), (self.ba, self.a)):
                out = wire.step(ms)
                if out:
                    dst.write(out)
                    await dst.drain()

    def stop(self):
        for t in self.tasks:
            t.cancel()


def _run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_pty_echo_32k_at_115200():
    m, s = _pty()
    dev = _start_device(os.ttyname(s), BAUD)
    try:
        async def main():
            port = open_fd(m, throttle_baud=BAUD)
            port.start()
            conn = await asyncio.wait_for(port.accept(), 15)
            data = XorShift32(1).randbytes(SIZE)
            got, secs = await _echo(conn, data)
            stats = dict(port.link.stats)
            port.close()
            return data, got, secs, stats

        data, got, secs, stats = _run(main())
        assert got == data
        # full duplex: both directions carry 32 KiB at the same time; raw 11.5 KB/s
        print("clean pty echo: 32 KiB in %.2f s = %.0f B/s per direction; %s" % (secs, SIZE / secs, stats))
        assert SIZE / (BAUD / 10) * 0.9 < secs < 20
        assert stats["crc_errors"] == 0 and stats["retransmissions"] <= 2
    finally:
        out = _stop(dev)
        os.close(m)
        os.close(s)
    assert "ready" in out and "Traceback" not in out, out


def test_pty_echo_through_faulty_relay_with_unplug():
    m1, s1 = _pty()  # host (pyserial on s1) <-> relay (m1)
    m2, s2 = _pty()  # relay (m2) <-> device (s2)
    dev = _start_device(os.ttyname(s2), BAUD)
    events = []
    try:
        async def main():
            relay = Relay(m1, m2, 1e-3, seed=5)
            relay.start()
            port = open_serial(os.ttyname(s1), BAUD, throttle=True, on_event=events.append)
            port.start()
            conn = await asyncio.wait_for(port.accept(), 15)
            data = XorShift32(2).randbytes(SIZE)
            got, secs = await _echo(conn, data)
            assert got == data
            # an unplug shorter than dead_ms in the middle of a stream is invisible above
            data2 = XorShift32(3).randbytes(SIZE // 2)
            rt = asyncio.ensure_future(_echo(conn, data2))
            await asyncio.sleep(0.8)
            relay.unplug(True)
            await asyncio.sleep(2.0)
            n0 = port.link.stats["bytes_rx"]
            relay.unplug(False)
            t_replug = time.monotonic()
            while port.link.stats["bytes_rx"] == n0 and time.monotonic() - t_replug < 10:
                await asyncio.sleep(0.002)
            recovered = time.monotonic() - t_replug  # until the echo flows again
            got2, secs2 = await rt
            stats = dict(port.link.stats)
            wires = (dict(relay.ab.stats), dict(relay.ba.stats))
            port.close()
            relay.stop()
            return data2, got, secs, got2, secs2, recovered, stats, wires

        data2, got, secs, got2, secs2, recovered, stats, wires = _run(main())
        assert got2 == data2
        print("faulty relay echo: 32 KiB in %.2f s = %.0f B/s per direction" % (secs, SIZE / secs))
        print("16 KiB with a 2 s unplug: %.2f s; echo flowing again %.3f s after replug" % (secs2, recovered))
        print("host link stats", stats)
        print("wires", wires)
        assert wires[0]["flips"] + wires[0]["drops"] + wires[0]["dups"] > 5
        assert stats["retransmissions"] > 0 and stats["resyncs"] > 0
        assert events == [("link_up",)]  # the faults and the unplug never broke the session
        assert recovered < 1.5
    finally:
        out = _stop(dev)
        for fd in (m1, s1, m2, s2):
            os.close(fd)
    assert "Traceback" not in out, out


def test_device_reboot_gives_new_session():
    m, s = _pty()
    path = os.ttyname(s)
    dev = _start_device(path, BAUD)
    events = []
    try:
        async def main():
            port = open_fd(m, throttle_baud=BAUD, on_event=events.append)
            port.start()
            conn = await asyncio.wait_for(port.accept(), 15)
            got, _ = await _echo(conn, b"before reboot" * 100)
            assert got == b"before reboot" * 100
            nonlocal dev
            _stop(dev)  # the device dies mid-session...
            t0 = time.monotonic()
            dev = _start_device(path, BAUD)  # ...and boots again
            conn2 = await asyncio.wait_for(port.accept(), 15)
            t_new = time.monotonic() - t0
            assert await conn.read(100) == b""  # the old session has ended
            got, _ = await _echo(conn2, b"after reboot" * 100)
            port.close()
            return got, t_new

        got, t_new = _run(main())
        assert got == b"after reboot" * 100
        print("device reboot: new session %.2f s after the restart (incl. MicroPython start)" % t_new)
        assert events[0] == ("link_up",) and events[-1] == ("link_up",)
        assert ("link_reset",) in events or ("link_down",) in events
        assert t_new < 5
    finally:
        _stop(dev)
        os.close(m)
        os.close(s)
