# Test tools for serial links, portable (MicroPython and CPython): a seeded PRNG, a faulty wire
# with a simulated baud rate, and a harness that drives two Links on a simulated clock.
# Nothing here reads a real clock: time only moves when the caller says so.
import math

FLIP = 0
DROP = 1
DUP = 2
ALL_FAULTS = (FLIP, DROP, DUP)
WIRE_QUEUE_MAX = 65536  # bytes a simulated UART TX side holds before write() refuses


class XorShift32:
    """Marsaglia xorshift32: tiny, seeded, identical on every runtime."""

    def __init__(self, seed):
        self.x = (seed & 0xFFFFFFFF) or 0x9E3779B9

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.next() % n

    def random(self):
        return self.next() / 4294967296.0

    def randbytes(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.next() & 0xFF
        return bytes(out)


class FaultyWire:
    """One direction of a serial line. write() queues bytes on the sender's side; step(ms)
    clocks out what the baud rate allows in that time and returns it as the receiver sees it,
    after byte faults (each byte is hit with probability error_rate; the fault is drawn from
    `faults`). While unplugged, everything clocked out is lost."""

    def __init__(self, rng, baud=115200, error_rate=0.0, faults=ALL_FAULTS):
        self.rng = rng
        self.bytes_per_s = baud // 10  # 8N1: 10 bit times per byte
        self.error_rate = error_rate
        self.faults = faults
        self.unplugged = False
        self.q = bytearray()
        self.qoff = 0
        self.credit = 0  # byte budget in 1/1000 bytes
        self.gap = self._draw_gap()
        self.stats = {"flips": 0, "drops": 0, "dups": 0, "lost": 0, "bytes": 0}

    def set_error_rate(self, rate):
        self.error_rate = rate
        self.gap = self._draw_gap()

    def _draw_gap(self):
        # geometric gap to the next faulty byte: one draw per fault, not per byte
        if self.error_rate <= 0:
            return 1 << 62
        u = self.rng.random()
        return int(math.log(1.0 - u) / math.log(1.0 - self.error_rate))

    def pending(self):
        return len(self.q) - self.qoff

    def write(self, data):
        if self.pending() + len(data) > WIRE_QUEUE_MAX:
            raise ValueError("wire queue full")
        if self.qoff and self.qoff == len(self.q):
            self.q = bytearray()
            self.qoff = 0
        self.q += data

    def step(self, ms):
        self.credit += ms * self.bytes_per_s
        n = min(self.credit // 1000, self.pending())
        if self.pending() == 0:
            self.credit = 0  # an idle line does not save up bandwidth
            return b""
        self.credit -= n * 1000
        chunk = bytes(self.q[self.qoff:self.qoff + n])
        self.qoff += n
        if self.qoff == len(self.q):
            self.q = bytearray()
            self.qoff = 0
        return self.corrupt(chunk)

    def corrupt(self, chunk):
        """Applies unplug and byte faults to bytes in transit (also usable on its own)."""
        n = len(chunk)
        if self.unplugged:
            self.stats["lost"] += n
            return b""
        self.stats["bytes"] += n
        if self.gap >= n:
            self.gap -= n
            return chunk
        out = bytearray()
        i = 0
        rng = self.rng
        st = self.stats
        while self.gap < n - i:
            j = i + self.gap
            out += chunk[i:j]
            b = chunk[j]
            f = self.faults[rng.below(len(self.faults))]
            if f == FLIP:
                out.append(b ^ (1 << rng.below(8)))
                st["flips"] += 1
            elif f == DROP:
                st["drops"] += 1
            else:
                out.append(b)
                out.append(b)
                st["dups"] += 1
            i = j + 1
            self.gap = self._draw_gap()
        self.gap -= n - i
        out += chunk[i:]
        return bytes(out)


class LinkPair:
    """Two Links joined by two FaultyWires on one simulated clock (1 ms steps). A link's output
    is pulled only when its wire has drained, like a driver feeding a UART with a small FIFO.
    Events go to events_a / events_b; ('data', ...) events are joined into rx_a / rx_b."""

    def __init__(self, a, b, wire_ab, wire_ba, now=0):
        self.a = a
        self.b = b
        self.wire_ab = wire_ab
        self.wire_ba = wire_ba
        self.now = now
        self.events_a = []
        self.events_b = []
        self.rx_a = bytearray()
        self.rx_b = bytearray()
        self.chunk_rng = None  # set an XorShift32 to hand bytes over in random 1..chunk_max pieces
        self.chunk_max = 16

    def _deliver(self, link, data, events, rx):
        if self.chunk_rng is None:
            self._take(events, rx, link.receive(data))
            return
        i = 0
        while i < len(data):
            j = i + 1 + self.chunk_rng.below(self.chunk_max)
            self._take(events, rx, link.receive(data[i:j]))
            i = j

    def _take(self, events, rx, evs):
        for e in evs:
            if e[0] == "data":
                rx += e[1]
            else:
                events.append(e)

    def step(self, ms=1):
        self.now += ms
        now = self.now
        a, b = self.a, self.b
        self._take(self.events_a, self.rx_a, a.tick(now))
        self._take(self.events_b, self.rx_b, b.tick(now))
        got = self.wire_ab.step(ms)
        if got:
            self._deliver(b, got, self.events_b, self.rx_b)
        got = self.wire_ba.step(ms)
        if got:
            self._deliver(a, got, self.events_a, self.rx_a)
        if self.wire_ab.pending() == 0:
            out = a.data_to_send()
            if out:
                self.wire_ab.write(out)
        if self.wire_ba.pending() == 0:
            out = b.data_to_send()
            if out:
                self.wire_ba.write(out)

    def idle(self):
        return self.wire_ab.pending() == 0 and self.wire_ba.pending() == 0

    def run_until(self, cond, max_ms, ms=1, each=None):
        """Steps until cond() is true; returns the simulated ms it took, or -1 on timeout."""
        t0 = self.now
        while self.now - t0 < max_ms:
            if cond():
                return self.now - t0
            self.step(ms)
            if each is not None:
                each()
        return self.now - t0 if cond() else -1
