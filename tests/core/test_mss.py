from microp2p.conn import mss
from microp2p.errors import ProtocolError, DecodeError, LimitError, UsageError
from microp2p.errors import SCOPE_STREAM, SCOPE_CONNECTION
from pairs import MachinePair, raises

HEADER = bytes.fromhex("13") + b"/multistream/1.0.0\n"
NA = bytes.fromhex("036e610a")


def msg(s):
    return mss.encode_message(s if isinstance(s, bytes) else s.encode())


def test_wire_vectors():
    assert msg("/multistream/1.0.0") == HEADER
    assert msg("na") == NA
    assert msg("/noise") == bytes.fromhex("072f6e6f6973650a")
    assert msg("ls") == bytes.fromhex("036c730a")


def test_dialer_writes_header_and_first_proposal_at_once():
    d = mss.Dialer(["/yamux/1.0.0", "/mplex/6.7.0"])
    assert d.data_to_send() == HEADER + msg("/yamux/1.0.0")
    assert d.data_to_send() == b""


def test_agree_first_choice():
    d = mss.Dialer(["/noise"])
    l = mss.Listener({"/noise", "/tls/1.0.0"})
    p = MachinePair(d, l)
    ea, eb = p.pump()
    assert ea == [("agreed", "/noise")]
    assert eb == [("agreed", "/noise")]
    assert d.protocol == "/noise" and l.protocol == "/noise"


def test_na_fallback():
    d = mss.Dialer(["/meshsub/1.2.0", "/meshsub/1.1.0", "/floodsub/1.0.0"])
    l = mss.Listener(("/floodsub/1.0.0", "/meshsub/1.1.0"))
    wire = []
    d_out = d.data_to_send()
    assert l.receive(d_out) == []
    l_out = l.data_to_send()
    assert l_out == HEADER + NA
    wire.append(l_out)
    assert d.receive(l_out) == []
    d_out = d.data_to_send()
    assert d_out == msg("/meshsub/1.1.0")
    assert l.receive(d_out) == [("agreed", "/meshsub/1.1.0")]
    assert d.receive(l.data_to_send()) == [("agreed", "/meshsub/1.1.0")]


def test_all_refused_raises_negotiation_failed_stream_scope():
    d = mss.Dialer(["/a", "/b"])
    l = mss.Listener({"/c"})
    p = MachinePair(d, l)
    e = raises(mss.NegotiationFailed, p.pump)
    assert isinstance(e, ProtocolError)
    assert e.scope == SCOPE_STREAM


def test_connection_scope_when_asked():
    d = mss.Dialer(["/a"], scope=SCOPE_CONNECTION)
    e = raises(mss.NegotiationFailed, d.receive, HEADER + NA)
    assert e.scope == SCOPE_CONNECTION


def test_callable_supported():
    seen = []

    def accepts(p):
        seen.append(p)
        return p.startswith("/ipfs/")
    l = mss.Listener(accepts)
    ev = l.receive(HEADER + msg("/x/1") + msg("/ipfs/ping/1.0.0"))
    assert ev == [("agreed", "/ipfs/ping/1.0.0")]
    assert seen == ["/x/1", "/ipfs/ping/1.0.0"]
    assert l.data_to_send() == HEADER + NA + msg("/ipfs/ping/1.0.0")


def test_listener_waits_for_dialer_header():
    l = mss.Listener({"/a"})
    assert l.data_to_send() == b""
    assert l.receive(HEADER[:5]) == []
    assert l.data_to_send() == b""
    assert l.receive(HEADER[5:]) == []
    assert l.data_to_send() == HEADER


def test_ls_listing():
    l = mss.Listener({"/b/1", "/a/1"})
    assert l.receive(HEADER + msg("ls")) == []
    out = l.data_to_send()
    assert out.startswith(HEADER)
    body = out[len(HEADER):]
    inner = msg("/a/1") + msg("/b/1")
    assert body == msg(inner)
    assert body.endswith(b"\n\n")
    assert mss.decode_ls_response(inner) == ["/a/1", "/b/1"]
    # negotiation continues after ls
    assert l.receive(msg("/b/1")) == [("agreed", "/b/1")]


def test_js_header_and_proposal_in_one_buffer_and_lazy_data():
    l = mss.Listener({"/noise"})
    ev = l.receive(HEADER + msg("/noise") + b"\x00\x20early")
    assert ev == [("agreed", "/noise"), ("data", b"\x00\x20early")]
    assert l.data_to_send() == HEADER + msg("/noise")
    assert l.receive(b"more") == [("data", b"more")]
    assert l.receive(b"") == []


def test_dialer_header_and_ack_in_one_buffer_with_leftover():
    d = mss.Dialer(["/yamux/1.0.0"])
    d.data_to_send()
    ev = d.receive(HEADER + msg("/yamux/1.0.0") + b"\x00\x01rest")
    assert ev == [("agreed", "/yamux/1.0.0"), ("data", b"\x00\x01rest")]
    assert d.receive(b"x") == [("data", b"x")]


def test_byte_by_byte_same_events():
    d = mss.Dialer(["/x", "/y"])
    l = mss.Listener({"/y"})
    p = MachinePair(d, l, chunk=1)
    ea, eb = p.pump()
    assert ea == [("agreed", "/y")] and eb == [("agreed", "/y")]
    assert d.leftover() == b""


def test_oversized_length_rejected_before_buffering():
    l = mss.Listener({"/a"})
    l.receive(HEADER)
    big = mss.varint.encode(mss.MAX_MESSAGE_LEN + 1)
    e = raises(DecodeError, l.receive, big)  # only the prefix: nothing was buffered for it
    assert e.scope == SCOPE_STREAM
    # exactly at the cap is fine (prefix accepted, body awaited)
    l2 = mss.Listener({"/a"})
    assert l2.receive(HEADER + mss.varint.encode(mss.MAX_MESSAGE_LEN)) == []


def test_max_length_protocol_id_agrees():
    pid = "/" + "p" * (mss.MAX_PROTOCOL_LEN - 1)
    d = mss.Dialer([pid])
    l = mss.Listener({pid})
    ea, eb = MachinePair(d, l).pump()
    assert ea == [("agreed", pid)] and eb == ea
    raises(UsageError, mss.Dialer, [pid + "x"])
    raises(UsageError, mss.Dialer, [])


def test_missing_newline_is_decode_error():
    l = mss.Listener({"/a"})
    e = raises(DecodeError, l.receive, HEADER + b"\x02/a")
    assert e.scope == SCOPE_STREAM
    raises(DecodeError, mss.Listener({"/a"}).receive, b"\x00")


def test_wrong_header():
    l = mss.Listener({"/a"})
    raises(mss.NegotiationFailed, l.receive, msg("/multistream/2.0.0"))
    d = mss.Dialer(["/a"])
    raises(mss.NegotiationFailed, d.receive, msg("/a"))


def test_unexpected_answer():
    d = mss.Dialer(["/a"])
    raises(mss.NegotiationFailed, d.receive, HEADER + msg("/b"))


def test_bounded_attempts():
    l = mss.Listener({"/a"})
    l.receive(HEADER)
    for i in range(mss.MAX_ATTEMPTS):
        assert l.receive(msg("/nope/%d" % i)) == []
    e = raises(LimitError, l.receive, msg("/nope/x"))
    assert e.scope == SCOPE_STREAM
    raises(UsageError, mss.Dialer, ["/p%d" % i for i in range(mss.MAX_ATTEMPTS + 1)])


def test_na_is_never_agreed():
    l = mss.Listener(lambda p: True)
    assert l.receive(HEADER + msg("na")) == []
    assert l.data_to_send() == HEADER + NA


def test_bad_varint_is_stream_scoped():
    l = mss.Listener({"/a"})
    e = raises(DecodeError, l.receive, b"\x80\x00")  # non-minimal
    assert e.scope == SCOPE_STREAM
