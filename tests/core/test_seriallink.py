# Serial link: framing (COBS + CRC-32) and the reliable link machine, on a simulated faulty wire.
# Runs under pytest (CPython) and tests/mp_runner.py (MicroPython).
from microp2p.serial import frame as sf
from microp2p.serial.link import Link, SEND_BUFFER_MAX, WINDOW_MAX
from microp2p_sim.serial_sim import XorShift32, FaultyWire, LinkPair, FLIP, DROP, DUP

BAUD = 115200


def _rand_fn(seed):
    r = XorShift32(seed)
    return r.randbytes


def _pair(rate=0.0, seed=1, cfg_a=None, cfg_b=None, faults=(FLIP, DROP, DUP)):
    ca = {"random": _rand_fn(seed * 7 + 1), "baud": BAUD}
    cb = {"random": _rand_fn(seed * 7 + 2), "baud": BAUD}
    if cfg_a:
        ca.update(cfg_a)
    if cfg_b:
        cb.update(cfg_b)
    rng = XorShift32(seed * 7 + 3)
    return LinkPair(Link(0, ca), Link(0, cb), FaultyWire(rng, BAUD, rate, faults),
                    FaultyWire(rng, BAUD, rate, faults))


def _up(p, max_ms=5000):
    t = p.run_until(lambda: p.a.is_up() and p.b.is_up(), max_ms)
    assert t >= 0, "link did not come up"
    return t


def _check_bounds(link):
    u = link.buffer_usage()
    assert u["rx_frame"] <= link.decoder.cap, u
    assert u["send"] <= link.send_cap <= SEND_BUFFER_MAX, u
    assert u["inflight"] <= link.window <= WINDOW_MAX, u
    assert u["inflight_bytes"] <= link.window * link.mtu, u
    assert u["ooo"] <= link.window, u


def _transfer(p, src_ab, src_ba=b"", max_ms=120000, check=False, faults_off_at=None):
    """Feeds both streams through send() as room allows until both arrive in full."""
    off = [0, 0]
    seen = [0, 0]  # how much of each received stream has been checked already
    na, nb = len(src_ab), len(src_ba)

    def each():
        if off[0] < na:
            off[0] += p.a.send(src_ab[off[0]:off[0] + 700])
        if off[1] < nb:
            off[1] += p.b.send(src_ba[off[1]:off[1] + 700])
        # never corrupted, never reordered: what has arrived is always a prefix
        if check:
            n = len(p.rx_b)
            assert p.rx_b[seen[0]:n] == src_ab[seen[0]:n]
            seen[0] = n
            n = len(p.rx_a)
            assert p.rx_a[seen[1]:n] == src_ba[seen[1]:n]
            seen[1] = n
            _check_bounds(p.a)
            _check_bounds(p.b)

    t = p.run_until(lambda: len(p.rx_b) >= na and len(p.rx_a) >= nb, max_ms, each=each)
    assert t >= 0, "transfer stalled at %d/%d and %d/%d" % (len(p.rx_b), na, len(p.rx_a), nb)
    assert bytes(p.rx_b) == src_ab
    assert bytes(p.rx_a) == src_ba
    return t


# ---- framing -----------------------------------------------------------------------------

def _cobs(data):
    return bytes(sf.cobs_encode(data, bytearray()))


def test_cobs_known_vectors():
    assert _cobs(b"\x00") == b"\x01\x01"
    assert _cobs(b"\x00\x00") == b"\x01\x01\x01"
    assert _cobs(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert _cobs(b"\x11\x22\x33\x44") == b"\x05\x11\x22\x33\x44"
    assert _cobs(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    run = bytes(range(1, 255))  # 254 non-zero bytes: one full block, nothing after
    assert _cobs(run) == b"\xff" + run
    assert _cobs(b"\x00" + run) == b"\x01\xff" + run
    assert _cobs(bytes(range(1, 256))) == b"\xff" + run + b"\x02\xff"
    assert _cobs(bytes(range(2, 256)) + b"\x00") == b"\xff" + bytes(range(2, 256)) + b"\x01\x01"
    assert _cobs(bytes(range(3, 256)) + b"\x00\x01") == b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"
    assert _cobs(b"") == b"\x01"


def test_cobs_roundtrip_random():
    r = XorShift32(5)
    for n in (0, 1, 2, 253, 254, 255, 256, 508, 509, 1000):
        for zeros in (0, 1, 3):
            d = bytearray(r.randbytes(n))
            for i in range(n):
                if zeros and r.below(zeros + 1) == 0:
                    d[i] = 0
                elif not zeros and d[i] == 0:
                    d[i] = 1
            enc = _cobs(d)
            assert b"\x00" not in enc
            assert len(enc) <= n + n // 254 + 1
            assert sf.cobs_decode(enc, 0, len(enc)) == d
    assert sf.cobs_decode(b"\x05\x11\x22", 0, 3) is None  # block runs past the end
    assert sf.cobs_decode(b"\x01\x00", 0, 2) is None  # a zero where a code byte belongs


def test_crc32_matches_reference():
    assert sf.crc32(b"123456789") & 0xFFFFFFFF == 0xCBF43926
    assert sf.crc32_py(b"123456789") == 0xCBF43926
    r = XorShift32(9)
    for n in (0, 1, 17, 300):
        d = r.randbytes(n)
        assert sf.crc32(d) & 0xFFFFFFFF == sf.crc32_py(d)


def _frames(n, seed, max_payload=256):
    r = XorShift32(seed)
    wire = bytearray()
    sent = []
    for i in range(n):
        p = r.randbytes(r.below(max_payload + 1))
        f = (sf.K_DATA, b"\x01\x02\x03\x04", b"\x00\x00\x00\x09", i & 255, (i * 7) & 255, i & 15, p)
        sf.encode_frame(wire, *f)
        sent.append(f)
    return bytes(wire), sent


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:6] == w[:6]
        assert bytes(g[6]) == w[6]


def test_frames_roundtrip_any_chunking():
    wire, sent = _frames(40, 3)
    for chunk in (1, 2, 7, 64, 255, 100000):
        dec = sf.FrameDecoder(256)
        got = []
        for i in range(0, len(wire), chunk):
            got += dec.feed(wire[i:i + chunk])
            assert dec.buffered() <= dec.cap
        _same(got, sent)
        assert dec.stats["resyncs"] == 0


def test_garbage_resyncs_and_never_raises():
    r = XorShift32(11)
    dec = sf.FrameDecoder(256)
    got = []
    want = []
    for i in range(40):
        one = bytearray()
        f = (sf.K_DATA, b"\x01\x02\x03\x04", b"\x00\x00\x00\x09", i, 0, 0, r.randbytes(r.below(257)))
        sf.encode_frame(one, *f)
        noise = r.randbytes(r.below(300))
        if i % 4 == 3:
            # noise glued onto the frame (no delimiter after it): this one frame is lost
            noise = noise.replace(b"\x00", b"\x01") + b"\x07"
        else:
            noise += b"\x00"  # the leading delimiter a sender puts before a burst
            want.append(f)
        wire = bytes(noise) + bytes(one)
        for j in range(0, len(wire), 61):
            got += dec.feed(wire[j:j + 61])
    _same(got, want)
    assert dec.stats["resyncs"] >= 10
    # pure noise: no exception, nothing decodes (CRC-32), memory stays bounded
    dec = sf.FrameDecoder(64)
    n = 0
    for i in range(200):
        n += len(dec.feed(r.randbytes(1 + r.below(200))))
        assert dec.buffered() <= dec.cap
    assert n == 0


def test_oversize_frames_dropped_without_buffering():
    dec = sf.FrameDecoder(64)
    big = bytearray()
    sf.encode_frame(big, sf.K_DATA, b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", 0, 0, 0, b"\x55" * 65)
    small = bytearray()
    sf.encode_frame(small, sf.K_DATA, b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", 1, 0, 0, b"\x55" * 64)
    assert dec.feed(big) == []
    assert dec.stats["oversize"] == 1 or dec.stats["bad_header"] == 1
    # a long run with no delimiter at all: never held past the cap
    for i in range(100):
        dec.feed(b"\x41" * 97)
        assert dec.buffered() <= dec.cap
    assert dec.stats["oversize"] >= 2
    got = dec.feed(b"\x00" + bytes(small))
    assert len(got) == 1 and got[0][3] == 1 and bytes(got[0][6]) == b"\x55" * 64


# ---- link machine ------------------------------------------------------------------------

def test_handshake_and_events():
    p = _pair()
    t = _up(p)
    assert t < 50
    assert p.events_a == [("link_up",)] and p.events_b == [("link_up",)]
    assert p.a.sid != p.b.sid
    assert p.a.peer == p.b.sid and p.b.peer == p.a.sid
    # not up yet: send() accepts nothing
    c = Link(0, {"random": _rand_fn(99)})
    assert c.send(b"abc") == 0
    # idle link stays up on keepalives
    p.run_until(lambda: False, 20000, ms=5)
    assert p.events_a == [("link_up",)] and p.events_b == [("link_up",)]


def test_clean_transfer_64k():
    p = _pair()
    _up(p)
    src = XorShift32(21).randbytes(65536)
    t = _transfer(p, src)
    # 115200 baud is 11.5 KB/s raw; framing and acks cost ~7 %
    assert t < 6500, t
    assert p.a.stats["retransmissions"] == 0
    assert p.b.stats["crc_errors"] == 0


def test_faulty_wire_64k_both_ways_bounded_memory():
    p = _pair(rate=1e-3, seed=2)
    _up(p)
    r = XorShift32(22)
    src1 = r.randbytes(65536)
    src2 = r.randbytes(65536)
    t = _transfer(p, src1, src2, check=True)
    w = p.wire_ab.stats
    assert w["flips"] > 10 and w["drops"] > 10 and w["dups"] > 10
    assert p.a.stats["retransmissions"] > 10 and p.b.stats["crc_errors"] + p.b.stats["cobs_errors"] > 10
    assert p.events_a == [("link_up",)] and p.events_b == [("link_up",)]
    assert t < 40000, t


def test_short_unplug_is_transparent():
    p = _pair(seed=3)
    _up(p)
    src = XorShift32(23).randbytes(32768)
    state = {"n": 0}

    def each():
        state["n"] += 1
        if state["n"] == 800:
            p.wire_ab.unplugged = p.wire_ba.unplugged = True
        if state["n"] == 800 + 2500:  # shorter than dead_ms
            p.wire_ab.unplugged = p.wire_ba.unplugged = False
        if state["n"] < 800 + 2500:
            return
        if state.get("back") is None:
            state["back"] = len(p.rx_b)

    off = [0]

    def feed():
        if off[0] < len(src):
            off[0] += p.a.send(src[off[0]:off[0] + 512])
        each()

    t = p.run_until(lambda: len(p.rx_b) >= len(src), 60000, each=feed)
    assert t > 0 and bytes(p.rx_b) == src
    assert p.events_a == [("link_up",)] and p.events_b == [("link_up",)]  # no reset
    assert p.a.stats["timeouts"] >= 1


def test_long_unplug_goes_down_and_recovers():
    p = _pair(seed=4)
    _up(p)
    src = XorShift32(24).randbytes(8192)
    off = [0]

    def feed():
        if off[0] < len(src):
            off[0] += p.a.send(src[off[0]:off[0] + 512])

    p.run_until(lambda: len(p.rx_b) > 2000, 10000, each=feed)
    p.wire_ab.unplugged = p.wire_ba.unplugged = True
    t_down = p.run_until(lambda: ("link_down",) in p.events_a and ("link_down",) in p.events_b, 10000)
    assert 0 <= t_down <= p.a.dead_ms + 10
    p.wire_ab.unplugged = p.wire_ba.unplugged = False
    t_up = p.run_until(lambda: p.a.is_up() and p.b.is_up(), 5000)
    assert 0 <= t_up <= 1100  # one RESET interval at most (backs off to 1 s)
    assert p.events_a[-2:] == [("link_down",), ("link_up",)]
    assert p.events_b[-2:] == [("link_down",), ("link_up",)]
    # the new session starts from an empty stream
    p.rx_a = bytearray()
    p.rx_b = bytearray()
    src2 = XorShift32(25).randbytes(10000)
    _transfer(p, src2, src2[:3000])


def test_reboot_of_one_end_resets_both():
    p = _pair(seed=5)
    _up(p)
    src = XorShift32(26).randbytes(20000)
    off = [0]

    def feed():
        if off[0] < len(src):
            off[0] += p.a.send(src[off[0]:off[0] + 512])

    p.run_until(lambda: len(p.rx_b) > 5000, 10000, each=feed)
    old_sid = p.b.sid
    # b "reboots": a new machine, its wire output starts again, a half-sent frame is lost
    p.b = Link(p.now, {"random": _rand_fn(77), "baud": BAUD})
    p.wire_ba.q = bytearray(b"\x13\x37")
    p.wire_ba.qoff = 0
    p.events_b = []
    t = p.run_until(lambda: p.a.is_up() and p.b.is_up() and ("link_reset",) in p.events_a, 5000)
    assert 0 <= t < 100, t
    assert p.b.sid != old_sid
    assert p.events_a[-2:] == [("link_reset",), ("link_up",)]
    assert p.events_b == [("link_up",)]
    assert p.a.send_pending() == 0  # the old stream is gone
    p.rx_a = bytearray()
    p.rx_b = bytearray()
    src2 = XorShift32(27).randbytes(16384)
    _transfer(p, src2, src2[:5000])


def test_stale_frames_from_old_session_ignored():
    p = _pair(seed=6)
    _up(p)
    # capture a valid DATA frame of the current session
    assert p.a.send(b"old session data") == 16
    old = p.a.data_to_send()
    assert p.b.receive(old) == [("data", b"old session data")]
    p.a.restart()  # a local reset: new sid, new session
    p.run_until(lambda: p.a.is_up() and p.b.is_up() and ("link_reset",) in p.events_b, 5000)
    assert p.b.is_up()
    before = p.b.stats["stale"]
    assert p.b.receive(old) == []  # same bytes, wrong session ids: dropped
    assert p.b.stats["stale"] == before + 1


def test_garbage_flood_midstream():
    p = _pair(seed=7)
    _up(p)
    r = XorShift32(28)
    src = r.randbytes(32768)
    state = {"n": 0}
    off = [0]

    def feed():
        if off[0] < len(src):
            off[0] += p.a.send(src[off[0]:off[0] + 512])
        state["n"] += 1
        if state["n"] % 500 == 0 and state["n"] < 3000:
            # a burst of noise lands in b's receiver between two reads
            p.b.receive(r.randbytes(2000))
            p.b.receive(r.randbytes(100) + b"\x00" + r.randbytes(50))

    t = p.run_until(lambda: len(p.rx_b) >= len(src), 30000, each=feed)
    assert t > 0 and bytes(p.rx_b) == src
    assert p.b.stats["resyncs"] >= 5
    assert p.events_b == [("link_up",)]


def test_frame_over_cap_dropped_by_link():
    p = _pair(seed=8, cfg_b={"rx_max_payload": 128})
    _up(p)
    assert p.a._peer_mtu == 128  # negotiated down
    big = bytearray()
    sf.encode_frame(big, sf.K_DATA, p.a.sid, p.b.sid, 0, 0, 0, b"x" * 200)
    assert p.b.receive(big) == []
    assert p.b.stats["oversize"] + p.b.stats["bad_header"] == 1
    src = XorShift32(29).randbytes(5000)
    _transfer(p, src)
    assert p.a.stats["frames_tx"] >= 5000 // 128


def test_send_backpressure():
    p = _pair(seed=9, cfg_a={"send_buffer": 1000})
    _up(p)
    assert p.a.send(b"x" * 3000) == 1000
    assert p.a.send(b"y") == 0
    assert p.a.send_buffer_room() == 0
    assert p.a.data_to_send()  # frames leave the buffer into the window
    room = p.a.send_buffer_room()
    assert room > 0
    assert p.a.send(b"z" * 5000) == room
    _check_bounds(p.a)


def test_ack_for_unsent_frame_resets_link():
    p = _pair(seed=10)
    _up(p)
    bogus = bytearray()
    sf.encode_frame(bogus, sf.K_ACK, p.b.sid, p.a.sid, 0, 50, 0)  # acks 50 frames never sent
    ev = p.a.receive(bogus)
    assert ev == [("link_reset",)]
    assert p.a.stats["protocol_errors"] == 1 and not p.a.is_up()
    t = p.run_until(lambda: p.a.is_up() and p.b.is_up(), 5000)
    assert t >= 0
    assert ("link_reset",) in p.events_b


def test_next_timeout_drives_retransmission():
    a = Link(0, {"random": _rand_fn(31)})
    b = Link(0, {"random": _rand_fn(32)})
    now = 0
    # hand-carried handshake
    for i in range(3):
        b.receive(a.data_to_send())
        a.receive(b.data_to_send())
    assert a.is_up() and b.is_up()
    a.send(b"hello")
    lost = a.data_to_send()
    assert lost
    t = a.next_timeout_ms()
    assert now < t <= a.rto_max
    assert a.tick(t - 1) == [] and a.data_to_send() == b""  # not due yet
    a.tick(t)
    again = a.data_to_send()
    assert again and a.stats["retransmissions"] == 1
    assert b.receive(again) == [("data", b"hello")]
    assert b.receive(lost) == []  # the late original is a duplicate
    assert b.stats["duplicates"] == 1
