# Circuit relay v2 hop/stop messages: round trips, the bytes go/js write, strictness, bounds, and a
# reader that stops exactly at the end of its one message.
from microp2p.proto.relay import codec
from microp2p.codec import varint
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.errors import DecodeError, LimitError, UsageError, SCOPE_STREAM

PEER = PeerId.from_public_key(keys.Ed25519PrivateKey.from_seed(bytes(32)).public_key)


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    return None


def _body(framed):
    n, pos = varint.decode(framed, 0)
    assert pos + n == len(framed)
    return framed[pos:]


def test_reserve_always_writes_type_zero():
    framed = codec.encode_hop({"type": codec.RESERVE})
    # proto3 would omit type=0; the spec asks for it: tag 0x08, value 0, length 2
    assert framed == b"\x02\x08\x00"
    assert codec.decode_hop(_body(framed)) == {"type": codec.RESERVE}
    assert codec.encode_stop({"type": codec.STOP_CONNECT, "peer": codec.peer_msg(PEER)})[1:3] == b"\x08\x00"


def test_round_trips():
    msg = {"type": codec.STATUS, "status": codec.OK,
           "reservation": {"expire": 1800000000, "addrs": [b"\x04\x7f\x00\x00\x01\x06\x0f\xa1"], "voucher": b"v"},
           "limit": {"duration": 120, "data": 131072}}
    assert codec.decode_hop(_body(codec.encode_hop(msg))) == msg
    stop = {"type": codec.STOP_CONNECT, "peer": codec.peer_msg(PEER), "limit": {"duration": 5}}
    got = codec.decode_stop(_body(codec.encode_stop(stop)))
    assert got["peer"]["id"] == PEER.to_bytes() and got["limit"] == {"duration": 5}
    # a CONNECT as js writes it: peer id plus the destination address /p2p/ID
    dest = b"\xa5\x03\x22" + PEER.to_bytes()
    m = codec.decode_hop(_body(codec.encode_hop({"type": codec.CONNECT, "peer": {"id": PEER.to_bytes(), "addrs": [dest]}})))
    assert m["peer"]["addrs"] == [dest]


def test_strictness():
    # no type
    e = _raises(codec.RelayError, codec.decode_hop, b"\x28\x64")
    assert e is not None and e.scope == SCOPE_STREAM
    # unknown type, unknown status
    assert _raises(codec.RelayError, codec.decode_hop, b"\x08\x03")
    assert _raises(codec.RelayError, codec.decode_stop, b"\x08\x02")
    assert _raises(codec.RelayError, codec.decode_hop, b"\x08\x02\x28\x65")
    # a peer without id, a peer id that is not a multihash
    assert _raises(codec.RelayError, codec.decode_hop, b"\x08\x01\x12\x00")
    assert _raises(codec.RelayError, codec.decode_hop, b"\x08\x01\x12\x04\x0a\x02\xff\xff")
    # duration over uint32
    big = codec.encode_hop({"type": codec.STATUS, "status": codec.OK, "limit": {"duration": 1 << 32}})
    assert _raises(codec.RelayError, codec.decode_hop, _body(big))
    # truncated field, wrong wire type: typed, stream-scoped
    e = _raises(DecodeError, codec.decode_hop, b"\x08\x01\x12\x05\x0a")
    assert e is not None and e.scope == SCOPE_STREAM
    e = _raises(DecodeError, codec.decode_hop, b"\x0a\x00")
    assert e is not None and e.scope == SCOPE_STREAM
    # unknown fields are skipped (forward compatible)
    assert codec.decode_hop(b"\x08\x00\x50\x01") == {"type": 0}


def test_bounds():
    assert _raises(LimitError, codec.decode_hop, b"\x08\x00" + b"\x52\x00" * 2048)
    many = {"type": codec.CONNECT, "peer": {"id": PEER.to_bytes(), "addrs": [b"\x04\x7f\x00\x00\x01"] * (codec.MAX_ADDRS + 1)}}
    e = _raises(LimitError, codec.decode_hop, _body(codec.encode_hop(many)))
    assert e is not None and e.scope == SCOPE_STREAM
    assert _raises(UsageError, codec.encode_hop, {"type": codec.STATUS, "peer": {"id": b"x" * 5000}})
    assert _raises(UsageError, codec.encode_hop, {"status": codec.OK})


def test_reader_stops_at_message_end():
    framed = codec.encode_hop({"type": codec.STATUS, "status": codec.OK})
    after = b"/multistream/1.0.0\n"
    r = codec.MessageReader()
    taken = 0
    while not r.complete:
        w = r.wanted()
        assert w >= 1 and taken + w <= len(framed)   # never asks for a byte past the message
        r.receive(framed[taken:taken + w])
        taken += w
    assert taken == len(framed)
    assert codec.decode_hop(r.message())["status"] == codec.OK
    # handed more than the message, it gives the rest back untouched
    r = codec.MessageReader()
    assert r.receive(framed + after) == after and r.complete
    # byte by byte across a two-byte length prefix
    long = codec.encode_hop({"type": codec.STATUS, "status": codec.OK,
                             "reservation": {"expire": 1, "voucher": b"\x00" * 300}})
    r = codec.MessageReader()
    for i in range(len(long)):
        assert r.receive(long[i:i + 1]) == b""
    assert r.complete and codec.decode_hop(r.message())["reservation"]["voucher"] == b"\x00" * 300


def test_reader_refuses_oversized_prefix_before_buffering():
    r = codec.MessageReader()
    e = _raises(LimitError, r.receive, varint.encode(codec.MAX_MESSAGE + 1))
    assert e is not None and e.scope == SCOPE_STREAM
    r = codec.MessageReader()
    assert _raises(LimitError, r.receive, b"\xff\xff\xff\xff\xff")
    r = codec.MessageReader()
    r.receive(b"\x05\x08")
    assert not r.complete and r.wanted() == 4
    assert _raises(UsageError, r.message)
    assert _raises(codec.RelayError, r.eof)
