from microp2p.conn import yamux
from microp2p.conn.yamux import (Session, Config, encode_header, TYPE_DATA, TYPE_WINDOW_UPDATE,
                            TYPE_PING, TYPE_GO_AWAY, FLAG_SYN, FLAG_ACK, FLAG_FIN, FLAG_RST,
                            INITIAL_WINDOW)
from microp2p.errors import ProtocolError, DecodeError, LimitError, UsageError
from microp2p.errors import SCOPE_STREAM, SCOPE_CONNECTION
from pairs import YamuxPair, names, merge_data, raises


def pair(ca=None, cb=None, chunk=0, auto_consume=True):
    return YamuxPair(Session(True, ca), Session(False, cb), chunk, auto_consume)


def frames(buf):
    """Split wire bytes into (type, flags, sid, length, payload) tuples."""
    out = []
    pos = 0
    while pos < len(buf):
        h = buf[pos:pos + 12]
        assert len(h) == 12 and h[0] == 0
        typ = h[1]
        flags = int.from_bytes(h[2:4], "big")
        sid = int.from_bytes(h[4:8], "big")
        length = int.from_bytes(h[8:12], "big")
        pos += 12
        payload = b""
        if typ == TYPE_DATA:
            payload = bytes(buf[pos:pos + length])
            assert len(payload) == length
            pos += length
        out.append((typ, flags, sid, length, payload))
    return out


def server_with_stream(config=None):
    """A server Session that has accepted client stream 1."""
    s = Session(False, config)
    assert s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0)) == [("stream_opened", 1)]
    return s


def test_header_vector():
    assert encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0) == bytes.fromhex(
        "000100010000000100000000")
    assert encode_header(TYPE_PING, FLAG_ACK, 0, 0x01020304) == bytes.fromhex(
        "000200020000000001020304")


def test_open_is_window_update_syn_and_ids_by_role():
    c = Session(True)
    s = Session(False)
    assert c.open_stream() == 1 and c.open_stream() == 3
    assert s.open_stream() == 2 and s.open_stream() == 4
    assert frames(c.data_to_send()) == [(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, b""),
                                       (TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0, b"")]


def test_open_data_both_directions_and_ack_on_first_frame_back():
    p = pair()
    sid = p.a.open_stream()
    assert p.a.send(sid, b"hello") == 5
    ea, eb = p.pump()
    assert eb == [("stream_opened", 1), ("data", 1, b"hello")]
    assert ea == []
    assert p.a._outbound_unacked == 1  # not acked until the server writes
    p.b.send(1, b"world")
    out = p.b.data_to_send()
    f = frames(out)
    assert f[0][:3] == (TYPE_WINDOW_UPDATE, FLAG_ACK, 1)
    assert f[1] == (TYPE_DATA, 0, 1, 5, b"world")
    assert p.a.receive(out) == [("data", 1, b"world")]
    assert p.a._outbound_unacked == 0
    # server-opened stream
    sid2 = p.b.open_stream()
    p.b.send(sid2, b"x")
    ea, eb = p.pump()
    assert ea == [("stream_opened", 2), ("data", 2, b"x")]


def test_accept_acks_immediately():
    s = server_with_stream()
    s.accept(1)
    assert frames(s.data_to_send()) == [(TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0, b"")]
    s.send(1, b"a")
    assert frames(s.data_to_send()) == [(TYPE_DATA, 0, 1, 1, b"a")]


def test_data_with_syn_and_data_before_ack():
    s = Session(False)
    wire = encode_header(TYPE_DATA, FLAG_SYN, 1, 3) + b"abc" + encode_header(TYPE_DATA, 0, 1, 2) + b"de"
    assert s.receive(wire) == [("stream_opened", 1), ("data", 1, b"abc"), ("data", 1, b"de")]
    # and the client side takes data on its stream before any ACK arrived
    c = Session(True)
    sid = c.open_stream()
    c.data_to_send()
    assert c.receive(encode_header(TYPE_DATA, 0, sid, 2) + b"hi") == [("data", sid, b"hi")]


def test_fin_half_close_both_directions():
    p = pair()
    sid = p.a.open_stream()
    p.a.send(sid, b"req")
    p.a.close_stream(sid)
    ea, eb = p.pump()
    assert eb == [("stream_opened", 1), ("data", 1, b"req"), ("stream_eof", 1)]
    raises(UsageError, p.a.send, sid, b"more")
    # the other direction still works
    p.b.send(1, b"resp")
    p.b.close_stream(1)
    ea, eb = p.pump()
    # FIN both ways: the side that received the last FIN is told the stream is gone
    assert ea == [("data", 1, b"resp"), ("stream_eof", 1), ("stream_closed", 1)]
    assert not p.a.is_open(1) and not p.b.is_open(1)
    assert p.a.stream_count() == 0 and p.b.stream_count() == 0
    p.b.close_stream(1)  # idempotent once gone
    assert p.b.data_to_send() == b""


def test_fin_waits_for_queued_data():
    p = pair(auto_consume=False)
    sid = p.a.open_stream()
    data = b"z" * (INITIAL_WINDOW + 1000)
    assert p.a.send(sid, data) == len(data)
    p.a.close_stream(sid)
    ea, eb = p.pump()
    assert "stream_eof" not in names(eb)
    assert len(p.data_b[1]) == INITIAL_WINDOW
    p.b.consumed(1, INITIAL_WINDOW)
    ea, eb = p.pump()
    assert names(eb)[-1] == "stream_eof"
    assert bytes(p.data_b[1]) == data
    # b closes too; a's FIN had left already, so b forgets at once (close_stream, no event)
    p.b.close_stream(1)
    assert not p.b.is_open(1)
    ea, eb = p.pump()
    assert names(ea)[-2:] == ["stream_eof", "stream_closed"] and not p.a.is_open(sid)


def test_queued_fin_leaving_on_window_update_reports_stream_closed():
    p = pair(auto_consume=False)
    sid = p.a.open_stream()
    p.pump()
    p.b.close_stream(1)          # b's FIN first
    p.pump()
    data = b"q" * (INITIAL_WINDOW + 10)
    p.a.send(sid, data)
    p.a.close_stream(sid)        # a's FIN waits behind 10 queued bytes
    p.pump()
    assert p.a.is_open(sid)
    p.b.consumed(1, INITIAL_WINDOW)
    ea, eb = p.pump()            # the window update lets the rest and the FIN leave
    assert ("stream_closed", sid) in ea and not p.a.is_open(sid)


def test_reset_both_directions_and_inflight_data_dropped():
    p = pair()
    sid = p.a.open_stream()
    p.a.send(sid, b"x")
    p.pump()
    p.b.send(1, b"in flight")      # written before the RST arrives
    p.a.reset_stream(sid)
    assert not p.a.is_open(sid)
    ea, eb = p.pump()
    assert eb == [("stream_reset", 1)]
    assert ea == []                # the in-flight data was dropped silently
    assert not p.b.is_open(1)
    raises(UsageError, p.b.send, 1, b"x")
    # the server resets a client stream
    sid = p.a.open_stream()
    p.pump()
    p.b.reset_stream(sid)
    ea, eb = p.pump()
    assert ea == [("stream_reset", sid)]


def test_window_exhaustion_and_update_after_consumed():
    p = pair(auto_consume=False)
    sid = p.a.open_stream()
    data = bytes(range(256)) * 1200  # 300 KiB
    assert p.a.send(sid, data) == len(data)
    p.pump()
    assert len(p.data_b[sid]) == INITIAL_WINDOW
    assert p.a.send_window(sid) == 0
    assert p.a.queued(sid) == len(data) - INITIAL_WINDOW
    assert p.b.unconsumed_total() == INITIAL_WINDOW
    p.b.consumed(sid, INITIAL_WINDOW // 2 - 1)
    assert p.b.data_to_send() == b""  # below the threshold: no update yet
    p.b.consumed(sid, 1)
    f = frames(p.b.data_to_send())
    assert f == [(TYPE_WINDOW_UPDATE, FLAG_ACK, sid, INITIAL_WINDOW // 2, b"")]
    p.a.receive(encode_header(*f[0][:4]))
    assert p.a.queued(sid) == 0
    assert p.a.send_window(sid) == INITIAL_WINDOW // 2 - (len(data) - INITIAL_WINDOW)
    p.pump()
    p.b.consumed(sid, p.b._streams[sid].unconsumed)
    p.pump()
    assert bytes(p.data_b[sid]) == data
    raises(UsageError, p.b.consumed, sid, 1)


def test_one_mib_through_default_window():
    # The same 64 KiB block 16 times; the receiver checks every piece in place (a 2 MB
    # MicroPython heap cannot hold two copies of 1 MiB).
    p = pair(chunk=4096)
    block = bytes(range(256)) * 256
    got = [0]

    def sink(machine, sid, data):
        assert machine is p.b
        off = got[0] % len(block)
        i = 0
        while i < len(data):
            k = min(len(data) - i, len(block) - off)
            assert data[i:i + k] == block[off:off + k]
            i += k
            off = 0
        got[0] += len(data)
    p.sink = sink
    sid = p.a.open_stream()
    for _ in range(16):
        off = 0
        while off < len(block):
            off += p.a.send(sid, block[off:] if off else block)
            p.pump()
    p.a.close_stream(sid)
    p.pump()
    assert got[0] == 1024 * 1024
    assert names(p.events_b)[-1] == "stream_eof"
    assert p.b.unconsumed_total() == 0


def test_larger_window_granted_with_syn_and_ack():
    cfg = Config(max_window=1024 * 1024)
    c = Session(True, cfg)
    sid = c.open_stream()
    f = frames(c.data_to_send())
    assert f == [(TYPE_WINDOW_UPDATE, FLAG_SYN, sid, 1024 * 1024 - INITIAL_WINDOW, b"")]
    s = Session(False, cfg)
    s.receive(encode_header(*f[0][:4]))
    assert s.send_window(sid) == 1024 * 1024
    s.accept(sid)
    f = frames(s.data_to_send())
    assert f == [(TYPE_WINDOW_UPDATE, FLAG_ACK, sid, 1024 * 1024 - INITIAL_WINDOW, b"")]
    raises(UsageError, Config, INITIAL_WINDOW - 1)


def test_frames_cut_to_max_frame():
    c = Session(True, Config(max_frame=1000))
    sid = c.open_stream()
    c.data_to_send()
    c.send(sid, b"q" * 2500)
    assert [f[3] for f in frames(c.data_to_send())] == [1000, 1000, 500]



def test_output_taken_in_bounded_pieces_is_the_same_stream():
    # Many streams with data queued: data_to_send(max_bytes) hands it over in pieces of exactly
    # max_bytes (the last one less), which join to exactly what one call returns.
    def loaded():
        c = Session(True, Config(max_frame=3000))
        sids = [c.open_stream() for _ in range(5)]
        for i, sid in enumerate(sids):
            c.send(sid, bytes([65 + i]) * (7000 + 13 * i))
        c.close_stream(sids[2])
        return c

    whole = bytes(loaded().data_to_send())
    c = loaded()
    total = c.output_pending()
    assert total == len(whole)
    got = bytearray()
    pieces = 0
    while True:
        d = c.data_to_send(4096)
        if not d:
            break
        assert len(d) == min(4096, total - len(got)), len(d)
        got += d
        pieces += 1
        assert c.output_pending() == total - len(got)
    assert bytes(got) == whole and pieces > 5
    assert c.data_to_send(4096) == b""

def test_send_queue_cap_and_writable_event():
    p = pair(ca=Config(max_send_queue=1000), auto_consume=False)
    sid = p.a.open_stream()
    n = p.a.send(sid, b"w" * (INITIAL_WINDOW + 5000))
    assert n == INITIAL_WINDOW + 1000
    assert p.a.writable(sid) == 0
    assert p.a.send(sid, b"more") == 0
    p.pump()
    p.b.consumed(sid, INITIAL_WINDOW)
    ea, eb = p.pump()
    assert ("writable", sid) in ea
    assert p.a.writable(sid) > 0


def test_ping_and_rtt():
    p = pair()
    p.a.tick(100)
    opaque = p.a.ping()
    p.a.tick(130)
    out = p.a.data_to_send()
    assert frames(out) == [(TYPE_PING, FLAG_SYN, 0, opaque, b"")]
    assert p.b.receive(out) == []
    answer = p.b.data_to_send()
    assert frames(answer) == [(TYPE_PING, FLAG_ACK, 0, opaque, b"")]
    assert p.a.receive(answer) == [("ping_ack", opaque, 30)]
    # an answer nobody asked for is ignored
    assert p.a.receive(answer) == []
    raises(UsageError, p.a.ping, 1 << 32)


def test_user_ping_timeout():
    s = Session(True, Config(keepalive_ms=0, ping_timeout_ms=50))
    s.tick(0)
    o = s.ping(7)
    assert s.tick(49) == []
    assert s.tick(50) == [("ping_timeout", o)]
    for i in range(yamux.MAX_PINGS):
        s.ping()
    raises(UsageError, s.ping)


def test_keepalive_and_pong_timeout_closes():
    p = pair(ca=Config(keepalive_ms=1000, ping_timeout_ms=500))
    assert p.a.tick(0) == []
    assert p.a.tick(999) == [] and p.a.data_to_send() == b""
    assert p.a.tick(1000) == []
    out = p.a.data_to_send()
    f = frames(out)
    assert len(f) == 1 and f[0][:2] == (TYPE_PING, FLAG_SYN)
    p.b.receive(out)
    p.a.tick(1020)
    assert p.a.receive(p.b.data_to_send()) == []  # keepalive pongs raise no event
    assert p.a.rtt_ms == 20
    assert p.a.tick(1600) == []  # answered: no timeout
    assert p.a.tick(2000) == []
    assert frames(p.a.data_to_send())[0][:2] == (TYPE_PING, FLAG_SYN)  # the next keepalive
    assert p.a.tick(2499) == []
    assert p.a.tick(2500) == [("closed",)]
    assert p.a.closed
    assert frames(p.a.data_to_send()) == [(TYPE_GO_AWAY, 0, 0, yamux.GOAWAY_INTERNAL_ERROR, b"")]
    raises(yamux.GoneAway, p.a.open_stream)
    assert p.a.tick(5000) == []


def test_goaway_send_and_receive():
    p = pair()
    sid = p.a.open_stream()
    p.pump()
    p.b.go_away()
    ea, eb = p.pump()
    assert ea == [("goaway", 0)]
    assert p.a.remote_goaway == 0
    e = raises(yamux.GoneAway, p.a.open_stream)  # the peer's doing, not a UsageError (D11)
    assert isinstance(e, ProtocolError) and e.scope == SCOPE_CONNECTION
    assert not p.a.can_open()
    # existing streams carry on
    p.a.send(sid, b"still")
    ea, eb = p.pump()
    assert eb == [("data", sid, b"still")]
    # after our own GoAway, new inbound streams are refused with RST
    s = Session(False)
    s.go_away(yamux.GOAWAY_NORMAL)
    s.data_to_send()
    assert s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0)) == []
    assert frames(s.data_to_send()) == [(TYPE_WINDOW_UPDATE, FLAG_RST, 1, 0, b"")]


def test_max_streams_cap_refuses_with_rst():
    p = pair(cb=Config(max_streams=2))
    sids = [p.a.open_stream() for _ in range(3)]
    ea, eb = p.pump()
    assert eb == [("stream_opened", 1), ("stream_opened", 3)]
    assert ea == [("stream_reset", 5)]
    # closing one makes room
    p.b.reset_stream(1)
    p.pump()
    p.a.open_stream()
    ea, eb = p.pump()
    assert eb == [("stream_opened", 7)]


def test_ack_backlog_caps():
    s = Session(False, Config(max_ack_backlog=2))
    s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0))
    s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0))
    assert s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 5, 0)) == []
    assert frames(s.data_to_send()) == [(TYPE_WINDOW_UPDATE, FLAG_RST, 5, 0, b"")]
    s.accept(1)  # one acked: backlog has room again
    assert s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 7, 0)) == [("stream_opened", 7)]
    c = Session(True, Config(max_ack_backlog=2))
    c.open_stream()
    c.open_stream()
    assert not c.can_open()
    raises(LimitError, c.open_stream)
    c.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0))
    assert c.open_stream() == 5


def test_wants_read_with_device_cap():
    cfg = yamux.device_config()
    p = pair(cb=cfg, auto_consume=False)
    sid = p.a.open_stream()
    p.a.send(sid, b"d" * 20000)
    p.pump()
    assert p.b.unconsumed_total() == 20000
    assert not p.b.wants_read()
    p.b.consumed(sid, 10000)
    assert p.b.wants_read()
    assert Session(True).wants_read()


def test_chunked_delivery_same_events():
    results = []
    for chunk in (0, 1, 5, 13):
        p = pair(chunk=chunk)
        sid = p.a.open_stream()
        p.a.send(sid, b"0123456789" * 50)
        p.a.close_stream(sid)
        p.a.ping(3)
        s2 = p.a.open_stream()
        p.a.reset_stream(s2)
        p.pump()
        p.b.send(sid, b"back")
        p.b.close_stream(sid)
        p.pump()
        results.append((merge_data(p.events_a), merge_data(p.events_b)))
    for r in results[1:]:
        assert r == results[0]
    assert results[0][1] == [("stream_opened", 1), ("data", 1, b"0123456789" * 50),
                             ("stream_eof", 1), ("stream_opened", 3), ("stream_reset", 3)]


def test_truncated_input_waits():
    s = Session(False)
    wire = encode_header(TYPE_DATA, FLAG_SYN, 1, 6) + b"abcdef"
    assert s.receive(wire[:7]) == []
    assert s.receive(wire[7:14]) == [("stream_opened", 1), ("data", 1, b"ab")]
    assert s.receive(wire[14:]) == [("data", 1, b"cdef")]
    assert s.receive(b"") == []


def test_local_reset_during_partial_frame_discards_rest():
    s = server_with_stream()
    wire = encode_header(TYPE_DATA, FLAG_FIN, 1, 10) + b"0123456789"
    assert s.receive(wire[:15]) == [("data", 1, b"012")]
    s.reset_stream(1)
    assert s.receive(wire[15:] + encode_header(TYPE_DATA, 0, 1, 2) + b"zz") == []
    assert s.unconsumed_total() == 0


def _connection_error(s, wire, cls):
    e = raises(cls, s.receive, wire)
    assert e.scope == SCOPE_CONNECTION
    assert s.closed
    out = s.data_to_send()
    assert frames(out)[-1] == (TYPE_GO_AWAY, 0, 0, yamux.GOAWAY_PROTOCOL_ERROR, b"")
    assert s.receive(b"\xff" * 30) == []  # dead session takes no more input
    return e


def test_unknown_version_and_type():
    _connection_error(Session(False), b"\x01" + encode_header(0, 0, 0, 0)[1:], DecodeError)
    _connection_error(Session(False), encode_header(4, 0, 0, 0), DecodeError)


def test_data_beyond_window_is_connection_error():
    s = server_with_stream()
    _connection_error(s, encode_header(TYPE_DATA, 0, 1, INITIAL_WINDOW + 1), LimitError)
    s = server_with_stream()
    s.receive(encode_header(TYPE_DATA, 0, 1, INITIAL_WINDOW) + b"x" * INITIAL_WINDOW)
    _connection_error(s, encode_header(TYPE_DATA, 0, 1, 1) + b"x", LimitError)


def test_stream_id_misuse():
    # the client's peer (server) must use even ids; a server's peer odd ids
    _connection_error(Session(False), encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0), ProtocolError)
    _connection_error(Session(True), encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0), ProtocolError)
    s = server_with_stream()
    _connection_error(s, encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0), ProtocolError)  # dup
    s = Session(False)
    s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 5, 0))
    # out of order (go's writers race: 3's SYN may follow 5's) is a new stream, not a reuse
    ev = s.receive(encode_header(TYPE_DATA, FLAG_SYN, 3, 0))
    assert ("stream_opened", 3) in ev, ev
    _connection_error(s, encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 5, 0), ProtocolError)  # 5 is open
    # an id the peer opened before is never opened again, even once that stream has ended (the
    # old stream's late reads would credit the new one: found by fuzzing)
    s = Session(False)
    ev = s.receive(encode_header(TYPE_DATA, FLAG_SYN, 1, 2) + b"hi" + encode_header(TYPE_WINDOW_UPDATE, FLAG_RST, 1, 0))
    assert ("stream_reset", 1) in ev, ev
    _connection_error(s, encode_header(TYPE_DATA, FLAG_SYN, 1, 1) + b"x", ProtocolError)
    # skipped ids stay openable late, each once; the gaps are bounded
    s = Session(False)
    s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 7, 0))
    for sid in (3, 1, 5):
        assert ("stream_opened", sid) in s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, sid, 0))
    _connection_error(s, encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0), ProtocolError)
    s = Session(False)
    s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1001, 0))
    assert len(s._peer_gaps) == yamux.MAX_SYN_GAPS
    assert ("stream_opened", 999) in s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 999, 0))
    _connection_error(s, encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0), ProtocolError)  # forgotten gap
    _connection_error(Session(False), encode_header(TYPE_DATA, 0, 9, 1) + b"x", ProtocolError)
    _connection_error(Session(True), encode_header(TYPE_DATA, 0, 1, 0), ProtocolError)  # ours, unopened
    _connection_error(Session(False), encode_header(TYPE_DATA, FLAG_SYN, 0, 0), ProtocolError)
    _connection_error(Session(False), encode_header(TYPE_PING, FLAG_SYN, 1, 0), ProtocolError)
    _connection_error(Session(False), encode_header(TYPE_GO_AWAY, 0, 1, 0), ProtocolError)


def test_window_overflow():
    s = server_with_stream()
    s.receive(encode_header(TYPE_WINDOW_UPDATE, 0, 1, 0xFFFFFFFF - INITIAL_WINDOW))
    assert s.send_window(1) == 0xFFFFFFFF
    _connection_error(s, encode_header(TYPE_WINDOW_UPDATE, 0, 1, 1), ProtocolError)


def test_data_after_fin_is_stream_error():
    s = server_with_stream()
    s.accept(1)
    s.data_to_send()
    ev = s.receive(encode_header(TYPE_DATA, FLAG_FIN, 1, 1) + b"a" +
                   encode_header(TYPE_DATA, 0, 1, 3) + b"bad" +
                   encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0))
    assert names(ev) == ["data", "stream_eof", "stream_error", "stream_opened"]
    err = ev[2][2]
    assert isinstance(err, ProtocolError) and err.scope == SCOPE_STREAM and err.stream_id == 1
    assert frames(s.data_to_send()) == [(TYPE_WINDOW_UPDATE, FLAG_RST, 1, 0, b"")]
    assert not s.is_open(1) and s.is_open(3)
    assert not s.closed


def test_data_after_rst_ignored():
    s = server_with_stream()
    assert s.receive(encode_header(TYPE_WINDOW_UPDATE, FLAG_RST, 1, 0)) == [("stream_reset", 1)]
    assert s.receive(encode_header(TYPE_DATA, 0, 1, 4) + b"late") == []
    assert s.data_to_send() == b""
    assert not s.closed


def test_usage_errors():
    s = Session(True)
    raises(UsageError, s.send, 1, b"x")
    sid = s.open_stream()
    raises(UsageError, s.consumed, sid, 1)
    s.consumed(99, 5)  # a stream that is gone: ignored
    assert s.send(sid, b"") == 0
    raises(UsageError, s.send_window, 77)


def test_goaway_right_after_handshake_is_a_protocol_error_not_misuse():
    # D11: the peer's first frame is a GoAway; our first open_stream (identify) must get a typed
    # ProtocolError the drivers already log, never UsageError (which printed a traceback)
    c = Session(True)
    assert c.receive(encode_header(TYPE_GO_AWAY, 0, 0, yamux.GOAWAY_NORMAL)) == [("goaway", 0)]
    e = raises(ProtocolError, c.open_stream)
    assert isinstance(e, yamux.GoneAway) and not isinstance(e, UsageError)
    # our own GoAway then open_stream stays our misuse
    s = Session(True)
    s.go_away()
    raises(UsageError, s.open_stream)


def test_ping_flood_without_reading_hits_control_backlog_and_closes():
    # D1: a peer sends PINGs and never reads. A driver whose transport is backed up leaves our
    # output in the session; the ACKs owed are capped and the session ends with LimitError.
    s = Session(False, Config(max_control_backlog=8))
    ping = encode_header(TYPE_PING, FLAG_SYN, 0, 5)
    for _ in range(8):
        assert s.receive(ping) == []
    e = raises(LimitError, s.receive, ping)
    assert e.scope == SCOPE_CONNECTION and s.closed
    out = frames(s.data_to_send())
    assert len(out) == 9 and out[-1][0] == TYPE_GO_AWAY  # 8 ACKs, then GoAway(protocol error)
    assert out[-1][3] == yamux.GOAWAY_PROTOCOL_ERROR
    # a reading peer is never cut off: each data_to_send() taken empties the backlog
    s = Session(False, Config(max_control_backlog=8))
    for _ in range(100):
        s.receive(ping * 8)
        assert len(frames(s.data_to_send())) == 8
    assert not s.closed
    # refused SYNs (RST replies) count too
    s = Session(False, Config(max_streams=0, max_control_backlog=4))
    syns = b"".join(encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 2 * i + 1, 0) for i in range(4))
    assert s.receive(syns) == []
    raises(LimitError, s.receive, encode_header(TYPE_WINDOW_UPDATE, FLAG_SYN, 99, 0))
    # the default cap is named and the device profile's is smaller
    assert Config().max_control_backlog == yamux.MAX_CONTROL_BACKLOG
    assert yamux.device_config().max_control_backlog < yamux.MAX_CONTROL_BACKLOG


def test_keepalive_ping_ids_are_unpredictable():
    seen = set()
    for _ in range(8):
        s = Session(True, Config(keepalive_ms=10))
        s.tick(0)
        s.tick(10)
        f = frames(s.data_to_send())
        assert f[0][:2] == (TYPE_PING, FLAG_SYN)
        assert 0 < f[0][3] < (1 << 30)
        seen.add(f[0][3])
    assert len(seen) >= 7  # 30 random bits: a repeat in 8 draws is ~3e-8
    s = Session(True)
    ids = [s.ping() for _ in range(yamux.MAX_PINGS)]
    assert len(set(ids)) == len(ids) and ids != list(range(1, len(ids) + 1))
