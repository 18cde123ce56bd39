# Property tests (CPython only) for the multistream-select and yamux machines: arbitrary peer
# input only ever raises microp2p ProtocolErrors, and how input is cut into receive() calls
# never changes what comes out.
import os
import sys

from hypothesis import given, settings, strategies as st, HealthCheck

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))
from pairs import YamuxPair, MachinePair, merge_data  # noqa: E402

from microp2p.conn import mss, yamux  # noqa: E402
from microp2p.errors import ProtocolError, SCOPE_STREAM, SCOPE_CONNECTION  # noqa: E402
from microp2p.conn.yamux import Session, Config, encode_header  # noqa: E402

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def cut(data, sizes):
    """Split data at the given (cycled) chunk sizes."""
    out = []
    pos = 0
    i = 0
    while pos < len(data):
        k = sizes[i % len(sizes)] if sizes else len(data)
        out.append(data[pos:pos + k])
        pos += k
        i += 1
    return out


# ---- multistream-select -------------------------------------------------------------------

def mss_message(body):
    return mss.encode_message(body)


mss_bodies = st.one_of(
    st.sampled_from([b"/multistream/1.0.0", b"na", b"ls", b"/a", b"/b/1.0.0", b""]),
    st.binary(max_size=40))
mss_input = st.one_of(
    st.binary(max_size=300),
    st.lists(mss_bodies, max_size=20).map(lambda bs: b"".join(mss_message(b) for b in bs)),
    st.tuples(st.lists(mss_bodies, max_size=5), st.binary(max_size=50)).map(
        lambda t: b"".join(mss_message(b) for b in t[0]) + t[1]))


@SETTINGS
@given(mss_input, st.lists(st.integers(1, 40), max_size=5))
def test_mss_random_input_only_protocol_errors(data, sizes):
    for machine in (mss.Listener({"/a", "/b/1.0.0"}), mss.Listener(lambda p: p == "/a"),
                    mss.Dialer(["/b/1.0.0", "/a"])):
        try:
            for piece in cut(data, sizes):
                for ev in machine.receive(piece):
                    assert ev[0] in ("agreed", "data")
        except ProtocolError as e:
            assert e.scope == SCOPE_STREAM


@SETTINGS
@given(st.lists(st.sampled_from(["/a", "/b", "/c", "/d"]), min_size=1, max_size=4, unique=True),
       st.sets(st.sampled_from(["/a", "/b", "/c", "/x"])),
       st.binary(max_size=30), st.integers(1, 25))
def test_mss_chunking_gives_identical_events(proposals, supported, early, chunk):
    outcomes = []
    for c in (0, chunk):
        d = mss.Dialer(proposals)
        l = mss.Listener(supported)
        p = MachinePair(d, l, chunk=c)
        try:
            p.pump()
        except mss.NegotiationFailed:
            outcomes.append("failed")
            continue
        # lazy data behind the agreement, cut the same way
        extra = l.receive(early) if early else []
        outcomes.append((merge_data(p.events_a), merge_data(p.events_b + extra)))
    assert outcomes[0] == outcomes[1]
    common = [x for x in proposals if x in supported]
    if common:
        assert outcomes[0][0] == [("agreed", common[0])]
    else:
        assert outcomes[0] == "failed"


# ---- yamux: arbitrary frames --------------------------------------------------------------

frame = st.tuples(
    st.sampled_from([0, 0, 0, 0, 1]),                  # version
    st.integers(0, 5),                                  # type (4, 5 unknown)
    st.integers(0, 15),                                 # flags
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 9, 0xFFFFFFFF]),
    st.one_of(st.integers(0, 64), st.sampled_from([yamux.INITIAL_WINDOW, 0xFFFFFFFF])),
    st.binary(max_size=64))


def encode_frame(f):
    ver, typ, flags, sid, length, payload = f
    h = bytes([ver]) + encode_header(typ, flags, sid, length)[1:]
    if typ == yamux.TYPE_DATA:
        return h + payload[:length]
    return h


@SETTINGS
@given(st.lists(frame, max_size=30), st.lists(st.integers(1, 30), max_size=4),
       st.booleans(), st.binary(max_size=20))
def test_yamux_random_frames_only_protocol_errors(frames, sizes, client, tail):
    s = Session(client, Config(max_streams=3, max_ack_backlog=2))
    if client:
        s.open_stream()
    wire = b"".join(encode_frame(f) for f in frames) + tail
    try:
        for piece in cut(wire, sizes):
            for ev in s.receive(piece):
                if ev[0] == "data":
                    s.consumed(ev[1], len(ev[2]))
                    if s.is_open(ev[1]) and s.writable(ev[1]):
                        s.send(ev[1], b"echo")
                elif ev[0] == "stream_error":
                    assert ev[2].scope == SCOPE_STREAM
            s.tick(len(piece))
    except ProtocolError as e:
        assert e.scope == SCOPE_CONNECTION
        assert s.closed
    out = s.data_to_send()
    assert isinstance(out, (bytes, bytearray))
    assert s.unconsumed_total() >= 0


# ---- yamux: valid transcripts, any chunking -------------------------------------------------

op = st.one_of(
    st.tuples(st.just("open")),
    st.tuples(st.just("send"), st.integers(0, 7), st.integers(0, 70000)),
    st.tuples(st.just("close"), st.integers(0, 7)),
    st.tuples(st.just("reset"), st.integers(0, 7)),
    st.tuples(st.just("ping")),
    st.tuples(st.just("pump")))


def run_scenario(ops, chunk):
    """Client a performs ops on a pair. Returns the pair and what send() took per stream."""
    p = YamuxPair(Session(True, Config(max_frame=5000)), Session(False), chunk=chunk)
    opened = []
    sent = {}
    blobs = 0
    for i, o in enumerate(ops):
        if o[0] == "open":
            if p.a.can_open():
                opened.append(p.a.open_stream())
        elif o[0] == "ping":
            if len(p.a._pings) < yamux.MAX_PINGS:
                p.a.ping(i + 1)  # ids are random by default; both runs must compare equal
        elif o[0] == "pump":
            p.pump()
        elif opened:
            sid = opened[o[1] % len(opened)]
            if not p.a.is_open(sid) or p.a.writable(sid) == 0:
                continue
            if o[0] == "send":
                blobs += 1
                data = bytes([blobs & 255]) * o[2]
                n = p.a.send(sid, data)
                sent[sid] = sent.get(sid, b"") + data[:n]
            elif o[0] == "close":
                p.a.close_stream(sid)
            else:
                p.a.reset_stream(sid)
                sent.pop(sid, None)
                opened.remove(sid)
    p.pump()
    return p, sent


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=25), st.integers(1, 3000))
def test_yamux_pair_delivers_everything_for_any_chunking(ops, chunk):
    p0, sent0 = run_scenario(ops, 0)
    p1, sent1 = run_scenario(ops, chunk)
    assert merge_data(p0.events_b) == merge_data(p1.events_b)
    assert merge_data(p0.events_a) == merge_data(p1.events_a)
    for sid, data in sent1.items():
        assert bytes(p1.data_b.get(sid, b"")) == data
    assert p1.b.unconsumed_total() == 0


@SETTINGS
@given(st.lists(op, max_size=20), st.lists(st.integers(1, 200), min_size=1, max_size=6))
def test_yamux_replayed_transcript_any_cut_same_events(ops, sizes):
    # Capture everything the client wrote, then feed it to fresh servers whole and cut.
    wire = []

    class Tap(Session):
        def data_to_send(self):
            out = Session.data_to_send(self)
            wire.append(bytes(out))
            return out
    p = YamuxPair(Tap(True, Config(max_frame=3000)), Session(False))
    p.a.tick(0)
    opened = []
    for o in ops:
        if o[0] == "open" and p.a.can_open():
            opened.append(p.a.open_stream())
        elif o[0] == "ping" and len(p.a._pings) < yamux.MAX_PINGS:
            p.a.ping()
        elif o[0] == "pump":
            p.pump()
        elif o[0] in ("send", "close", "reset") and opened:
            sid = opened[o[1] % len(opened)]
            if p.a.is_open(sid) and p.a.writable(sid):
                if o[0] == "send":
                    p.a.send(sid, b"s" * o[2])
                elif o[0] == "close":
                    p.a.close_stream(sid)
                else:
                    p.a.reset_stream(sid)
    p.pump()
    transcript = b"".join(wire)

    def replay(pieces):
        s = Session(False)
        events = []
        for piece in pieces:
            for ev in s.receive(piece):
                events.append(ev)
                if ev[0] == "data":
                    s.consumed(ev[1], len(ev[2]))
        return merge_data(events)
    whole = replay([transcript])
    assert whole == merge_data(p.events_b)
    assert replay(cut(transcript, sizes)) == whole
