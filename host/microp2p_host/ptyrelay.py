# An emulated serial cable between two programs on one host: two pseudo-terminal pairs and a
# relay between their master ends. Each program opens its slave end by path, like a UART
# (`gateway_path` for the gateway, `device_path` for the MicroPython device). A pty has no baud
# rate, so the relay clocks bytes through microp2p_sim.serial_sim.FaultyWire at the simulated baud
# rate; the same wires inject byte faults (flip/drop/duplicate at `error_rate`) and unplugs.
#
#   line = PtyLine(115200, error_rate=1e-3, seed=7)
#   line.start()                      # inside a running asyncio loop
#   ... line.unplug(True) ... line.unplug(False) ...
#   line.close()
#
# Bytes clocked out while nobody reads the far end are dropped, as on a real line: the relay
# never blocks, so one dead side cannot stall the other direction.
import asyncio
import os
import time
import tty

from microp2p_sim.serial_sim import FaultyWire, XorShift32, WIRE_QUEUE_MAX

READ_CHUNK = 4096
CLOCK_MS = 2           # relay clock granularity


class PtyLine:
    def __init__(self, baud=115200, error_rate=0.0, seed=1):
        self.baud = baud
        rng = XorShift32(seed)
        self._gw_m, self._gw_s = os.openpty()
        self._dev_m, self._dev_s = os.openpty()
        for fd in (self._gw_m, self._gw_s, self._dev_m, self._dev_s):
            tty.setraw(fd)  # a cooked pty would echo and rewrite bytes
        # The relay keeps the slave ends open too: their raw mode then survives the programs
        # closing and reopening them (a device reboot), and the masters never read EIO.
        self.gateway_path = os.ttyname(self._gw_s)
        self.device_path = os.ttyname(self._dev_s)
        for fd in (self._gw_m, self._dev_m):
            os.set_blocking(fd, False)
        self.to_device = FaultyWire(rng, baud, error_rate)
        self.to_gateway = FaultyWire(rng, baud, error_rate)
        self.overflow = 0   # bytes refused because a wire queue was full (a sender far above baud)
        self.undelivered = 0  # bytes clocked out while the far side's pty buffer was full
        self._task = None
        self._closed = False

    def set_error_rate(self, rate):
        self.to_device.set_error_rate(rate)
        self.to_gateway.set_error_rate(rate)

    def unplug(self, unplugged=True):
        self.to_device.unplugged = self.to_gateway.unplugged = unplugged

    def stats(self):
        return {"toDevice": dict(self.to_device.stats), "toGateway": dict(self.to_gateway.stats),
                "overflow": self.overflow, "undelivered": self.undelivered}

    def start(self):
        loop = asyncio.get_running_loop()
        loop.add_reader(self._gw_m, self._pull, self._gw_m, self.to_device)
        loop.add_reader(self._dev_m, self._pull, self._dev_m, self.to_gateway)
        self._task = asyncio.ensure_future(self._clock())

    def _pull(self, fd, wire):
        try:
            data = os.read(fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        room = WIRE_QUEUE_MAX - wire.pending()
        if len(data) > room:
            self.overflow += len(data) - room
            data = data[:room]
        if data:
            wire.write(data)

    def _push(self, fd, data):
        try:
            n = os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            n = 0
        self.undelivered += len(data) - n

    async def _clock(self):
        last = time.monotonic()
        while not self._closed:
            await asyncio.sleep(CLOCK_MS / 1000)
            now = time.monotonic()
            ms = int((now - last) * 1000)
            if ms <= 0:
                continue
            last += ms / 1000
            out = self.to_device.step(ms)
            if out:
                self._push(self._dev_m, out)
            out = self.to_gateway.step(ms)
            if out:
                self._push(self._gw_m, out)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._gw_m)
            loop.remove_reader(self._dev_m)
        except RuntimeError:
            pass
        if self._task is not None:
            self._task.cancel()
        for fd in (self._gw_m, self._gw_s, self._dev_m, self._dev_s):
            try:
                os.close(fd)
            except OSError:
                pass
