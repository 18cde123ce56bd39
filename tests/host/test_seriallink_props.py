# Property tests for the serial link: under any schedule of byte faults, unplugs, noise bursts,
# chunkings and step sizes, what arrives is always a prefix of what was sent (never corrupted,
# never reordered), and it is complete soon after the faults stop.
from hypothesis import given, settings, strategies as st, HealthCheck

from microp2p.serial import frame as sf
from microp2p.serial.link import Link
from microp2p_sim.serial_sim import XorShift32, FaultyWire, LinkPair, FLIP, DROP, DUP

BAUD = 115200
DEAD_MS = 20000  # longer than any outage below: the session must survive all of them

fault_kinds = st.lists(st.sampled_from([FLIP, DROP, DUP]), min_size=1, max_size=3, unique=True)
schedule_item = st.tuples(
    st.integers(0, 6000),                                   # when (ms after link up)
    st.sampled_from(["unplug", "noise", "rate"]),
    st.integers(1, 6000),                                   # unplug ms / noise bytes / rate idx
)
RATES = (0.0, 1e-4, 1e-3, 5e-3, 2e-2)


def _rand_fn(seed):
    return XorShift32(seed).randbytes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(1, 2**31), rate=st.sampled_from(RATES), kinds=fault_kinds,
       schedule=st.lists(schedule_item, max_size=6), chunk_max=st.integers(0, 300),
       step_ms=st.integers(1, 25), size_a=st.integers(0, 20000), size_b=st.integers(0, 6000),
       window=st.integers(1, 8), mtu=st.sampled_from([8, 16, 100, 256, 512]),
       send_piece=st.integers(1, 3000))
def test_prefix_always_and_complete_after_faults(seed, rate, kinds, schedule, chunk_max, step_ms,
                                                 size_a, size_b, window, mtu, send_piece):
    cfg = {"baud": BAUD, "dead_ms": DEAD_MS, "window": window, "mtu": mtu}
    ca = dict(cfg, random=_rand_fn(seed + 1))
    cb = dict(cfg, random=_rand_fn(seed + 2), window=max(1, 9 - window), mtu=512 - mtu // 2)
    rng = XorShift32(seed)
    w_ab = FaultyWire(rng, BAUD, rate, tuple(kinds))
    w_ba = FaultyWire(rng, BAUD, rate, tuple(kinds))
    p = LinkPair(Link(0, ca), Link(0, cb), w_ab, w_ba)
    if chunk_max:
        p.chunk_rng = XorShift32(seed + 3)
        p.chunk_max = chunk_max
    noise = XorShift32(seed + 4)
    # faults may even hit the handshake; it gets through once they stop
    assert p.run_until(lambda: p.a.is_up() and p.b.is_up(), 120000, ms=step_ms) >= 0

    src_a = XorShift32(seed + 5).randbytes(size_a)
    src_b = XorShift32(seed + 6).randbytes(size_b)
    off = [0, 0]
    t0 = p.now
    pending = sorted(schedule)
    replug_at = [-1]
    faults_end = t0 + (max(t + (d if k == "unplug" else 0) for t, k, d in pending) if pending else 0)

    def each():
        t = p.now - t0
        while pending and pending[0][0] <= t:
            _, kind, arg = pending.pop(0)
            if kind == "unplug":
                w_ab.unplugged = w_ba.unplugged = True
                replug_at[0] = max(replug_at[0], t + arg)
            elif kind == "noise":
                w_ab.write(noise.randbytes(min(arg, 2000)))
            else:
                w_ab.error_rate = w_ba.error_rate = RATES[arg % len(RATES)]
        if replug_at[0] >= 0 and t >= replug_at[0]:
            w_ab.unplugged = w_ba.unplugged = False
            replug_at[0] = -1
        if p.now >= faults_end:
            w_ab.error_rate = w_ba.error_rate = 0.0
            w_ab.gap = w_ba.gap = 1 << 62
        if off[0] < size_a:
            off[0] += p.a.send(src_a[off[0]:off[0] + send_piece])
        if off[1] < size_b:
            off[1] += p.b.send(src_b[off[1]:off[1] + send_piece])
        assert bytes(p.rx_b) == src_a[:len(p.rx_b)]
        assert bytes(p.rx_a) == src_b[:len(p.rx_a)]
        for link in (p.a, p.b):
            u = link.buffer_usage()
            assert u["rx_frame"] <= link.decoder.cap
            assert u["send"] <= link.send_cap and u["inflight"] <= link.window
            assert u["ooo"] <= link.window

    done = lambda: len(p.rx_b) == size_a and len(p.rx_a) == size_b
    # worst case: everything still to go after faults end, one tiny frame per two steps, and
    # the feeder offering only send_piece bytes per step
    budget = faults_end - p.now + 60000 + (size_a + size_b) * (3 * step_ms + 20) // min(mtu, 16) \
        + ((size_a + size_b) // send_piece + 1) * step_ms
    t = p.run_until(done, budget, ms=step_ms, each=each)
    assert t >= 0, (len(p.rx_b), size_a, len(p.rx_a), size_b, p.a.stats, p.b.stats)
    assert bytes(p.rx_b) == src_a and bytes(p.rx_a) == src_b
    assert p.events_a == [("link_up",)] and p.events_b == [("link_up",)]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), max_payload=st.integers(1, 1024))
def test_decoder_never_raises_and_stays_bounded(data, max_payload):
    dec = sf.FrameDecoder(max_payload)
    for i in range(0, len(data), 37):
        for f in dec.feed(data[i:i + 37]):
            assert len(f[6]) <= max_payload
        assert dec.buffered() <= dec.cap


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=1024), cut=st.integers(0, 2000),
       flip=st.tuples(st.integers(0, 2000), st.integers(1, 255)))
def test_frame_roundtrip_and_single_damage_detected(payload, cut, flip):
    wire = bytearray()
    sf.encode_frame(wire, sf.K_DATA, b"abcd", b"efgh", 3, 4, 5, payload)
    dec = sf.FrameDecoder(1024)
    got = dec.feed(wire[:cut % len(wire)]) + dec.feed(wire[cut % len(wire):])
    assert len(got) == 1 and bytes(got[0][6]) == payload and got[0][:6] == (1, b"abcd", b"efgh", 3, 4, 5)
    bad = bytearray(wire)
    i = flip[0] % (len(bad) - 1)
    bad[i] ^= flip[1]
    got = sf.FrameDecoder(1024).feed(b"\x00" + bytes(bad))
    # a damaged byte never yields a frame with different contents
    for f in got:
        assert f[:6] == (1, b"abcd", b"efgh", 3, 4, 5) and bytes(f[6]) == payload
