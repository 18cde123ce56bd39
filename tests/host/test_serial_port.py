# The serial port driver (microp2p.io.serial) end to end over an in-memory line: two SerialPorts,
# one link session, a stream of writes of every size through SerialConn's chunk queues and the
# link's fixed send ring (wrapping around its end many times), both ways at once.
import asyncio
import hashlib

from microp2p.io.serial import SerialPort, RX_BUFFER_CAP


class _Wire:
    """One direction of an in-memory line: write()/drain() on one side, read(n) on the other."""

    def __init__(self):
        self.buf = bytearray()
        self.ev = asyncio.Event()

    def write(self, data):
        self.buf += data
        self.ev.set()

    async def drain(self):
        await asyncio.sleep(0)

    async def read(self, n):
        while not self.buf:
            self.ev.clear()
            await self.ev.wait()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _stream(seed, n):
    out = bytearray()
    h = hashlib.sha256(seed).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


async def _pump(conn, data, sizes):
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        k += 1
        piece = data[i:i + n]
        # bytes, bytearray and memoryview writers alike; a bytearray is reused right after
        conn.write(bytearray(piece) if k % 3 == 0 else memoryview(piece) if k % 3 == 1 else piece)
        i += n
        if k % 7 == 0:
            await conn.drain()
    await conn.drain()


async def _collect(conn, n):
    got = bytearray()
    while len(got) < n:
        d = await conn.read(-1 if len(got) % 2 else 333)
        assert d, "session ended early"
        assert conn.rx_buffered() <= RX_BUFFER_CAP + 4096
        got += d
    return bytes(got)


def test_serial_port_streams_both_ways_through_fixed_buffers():
    async def main():
        ab, ba = _Wire(), _Wire()
        a = SerialPort(ba, ab)
        b = SerialPort(ab, ba)
        a.start()
        b.start()
        ca, cb = await asyncio.wait_for(asyncio.gather(a.accept(), b.accept()), 10)
        ring_a = a.link.buffer_usage()
        n = 100_000
        data_ab, data_ba = _stream(b"ab", n), _stream(b"ba", n)
        sizes = [1, 700, 4095, 4096, 4097, 9000, 17, 256, 255, 257]
        res = await asyncio.wait_for(asyncio.gather(
            _pump(ca, data_ab, sizes), _pump(cb, data_ba, sizes[::-1]),
            _collect(cb, n), _collect(ca, n)), 60)
        assert res[2] == data_ab and res[3] == data_ba
        # nothing held once everything arrived; the link's buffers stayed within their caps
        assert ca.tx_buffered() == 0 and cb.tx_buffered() == 0
        u = a.link.buffer_usage()
        assert u["send"] == 0 and ring_a["send"] == 0
        a.close()
        b.close()

    asyncio.run(main())


def test_link_send_allocates_nothing_in_proportion_to_what_it_holds():
    # Link.send copies into a ring allocated with the link: no call, whatever the buffer holds
    # and wherever the ring wraps, allocates more than a small constant. (A buffer grown by
    # concatenation needed one fresh block of its whole size, which a fragmented device heap
    # refused with 180 KB free.) The same for SerialConn.write: it queues the caller's chunk.
    import tracemalloc
    from microp2p.serial.link import Link
    from microp2p_sim.serial_sim import XorShift32, FaultyWire, LinkPair

    rng = XorShift32(5)
    p = LinkPair(Link(0, {"random": XorShift32(1).randbytes}), Link(0, {"random": XorShift32(2).randbytes}),
                 FaultyWire(rng, 115200, 0.0), FaultyWire(rng, 115200, 0.0))
    assert p.run_until(lambda: p.a.is_up() and p.b.is_up(), 5000) >= 0
    cap = p.a.send_cap
    chunk = bytes(range(256)) * 4   # 1 KiB
    peaks = []
    for round_ in range(40):
        while p.a.send_buffer_room() >= len(chunk):
            tracemalloc.start()
            assert p.a.send(chunk) == len(chunk)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        p.run_until(lambda: p.a.send_buffer_room() >= cap // 2, 5000)
    assert len(peaks) > 40
    assert max(peaks) < len(chunk), max(peaks)   # a memoryview or two, never the bytes themselves
