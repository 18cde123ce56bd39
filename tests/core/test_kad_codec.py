# /ipfs/kad/1.0.0 message codec: byte-exact vectors built by hand from the .proto field numbers
# (what go's and js's protobuf encoders emit: fields in number order, proto3 zero type omitted),
# strict decoding and the caps.
from microp2p.codec import varint
from microp2p.codec.multiaddr import Multiaddr
from microp2p.proto.kad import codec
from microp2p.errors import DecodeError, LimitError, ProtocolError, SCOPE_STREAM

# 12D3KooW... of seed 0x01*32 is not needed: any valid peer id multihash works on the wire
PID = b"\x00\x24\x08\x01\x12\x20" + bytes(range(32))          # identity multihash, Ed25519 key
PID2 = b"\x12\x20" + bytes(range(100, 132))                  # sha2-256 multihash ("Qm...")
ADDR = Multiaddr.from_string("/ip4/127.0.0.1/tcp/4001")


def _ld(field, data):
    return bytes([(field << 3) | 2]) + varint.encode(len(data)) + data


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("expected %s" % exc.__name__)


def test_find_node_request_vector():
    want = b"\x08\x04" + _ld(2, PID)
    got = codec.encode(codec.Message(codec.FIND_NODE, PID))
    assert got == want
    assert codec.frame(got) == bytes([len(want)]) + want
    m = codec.decode(want)
    assert m.type == codec.FIND_NODE and m.key == PID and m.closer == [] and m.record is None


def test_find_node_response_vector():
    peer = _ld(1, PID2) + _ld(2, ADDR.to_bytes())
    want = b"\x08\x04" + _ld(2, PID) + _ld(8, peer)
    got = codec.encode(codec.Message(codec.FIND_NODE, PID, closer=[(PID2, [ADDR])]))
    assert got == want
    m = codec.decode(want)
    assert m.closer == [(PID2, [ADDR])]


def test_put_value_omits_type_and_missing_type_is_put_value():
    rec = _ld(1, b"/pk/x") + _ld(2, b"val")
    want = _ld(2, b"/pk/x") + _ld(3, rec)
    got = codec.encode(codec.Message(codec.PUT_VALUE, b"/pk/x", record=(b"/pk/x", b"val")))
    assert got == want  # proto3: type 0 is not written
    m = codec.decode(want)
    assert m.type == codec.PUT_VALUE and m.record == (b"/pk/x", b"val")
    # an explicit zero type (some encoders write it) means the same
    m2 = codec.decode(b"\x08\x00" + want)
    assert m2.type == codec.PUT_VALUE


def test_add_provider_vector_and_connection_field():
    mh = b"\x12\x20" + b"\xab" * 32
    peer = _ld(1, PID) + _ld(2, ADDR.to_bytes()) + b"\x18\x01"
    want = b"\x08\x02" + _ld(2, mh) + _ld(9, peer)
    got = codec.encode(codec.Message(codec.ADD_PROVIDER, mh,
                                     providers=[(PID, [ADDR], codec.CONNECTED)]))
    assert got == want
    m = codec.decode(want)
    assert m.type == codec.ADD_PROVIDER and m.providers == [(PID, [ADDR])]


def test_record_time_received_and_removed_fields_skipped():
    # fields 3 and 4 of Record were removed; an old peer may still send them: skipped
    rec = _ld(1, b"/pk/a") + _ld(2, b"v") + _ld(3, b"old") + b"\x20\x05" + _ld(5, b"2026-01-01T00:00:00Z")
    m = codec.decode(b"\x08\x01" + _ld(2, b"/pk/a") + _ld(3, rec) + b"\x50\x00")  # clusterLevelRaw 0
    assert m.type == codec.GET_VALUE and m.record == (b"/pk/a", b"v")
    assert m.time_received == "2026-01-01T00:00:00Z"


def test_round_trip_all_types():
    for t in (codec.PUT_VALUE, codec.GET_VALUE, codec.ADD_PROVIDER, codec.GET_PROVIDERS, codec.FIND_NODE):
        m = codec.Message(t, b"\x12\x20" + bytes(32), closer=[(PID, [ADDR]), (PID2, [])],
                          providers=[(PID2, [ADDR])])
        d = codec.decode(codec.encode(m))
        assert d.type == t and d.key == m.key
        assert d.closer == [(PID, [ADDR]), (PID2, [])]
        assert d.providers == [(PID2, [ADDR])]


def test_bogus_peer_ids_and_addrs_are_ignored():
    bad_id = _ld(8, _ld(1, b"\x12\x20short") + _ld(2, ADDR.to_bytes()))
    no_id = _ld(8, _ld(2, ADDR.to_bytes()))
    bad_addr = _ld(8, _ld(1, PID) + _ld(2, b"\xff\xff\xff\x7f") + _ld(2, ADDR.to_bytes()))
    dup = _ld(8, _ld(1, PID2)) + _ld(8, _ld(1, PID2))
    m = codec.decode(b"\x08\x04" + _ld(2, PID) + bad_id + no_id + bad_addr + dup)
    assert m.closer == [(PID, [ADDR]), (PID2, [])]


def test_unknown_type_and_wrong_wire_type_raise_stream_errors():
    e = _raises(DecodeError, codec.decode, b"\x08\x09")
    assert e.scope == SCOPE_STREAM
    e = _raises(DecodeError, codec.decode, b"\x0a\x00")  # type as bytes
    assert e.scope == SCOPE_STREAM
    e = _raises(DecodeError, codec.decode, b"\x08\x04\x12\x05ab")  # truncated key
    assert e.scope == SCOPE_STREAM


def test_caps():
    # too many closerPeers (each a tiny valid entry) in one message
    many = _ld(8, _ld(1, PID2)) * (codec.MAX_PEERS_PER_FIELD + 1)
    e = _raises(LimitError, codec.decode, b"\x08\x04" + many)
    assert e.scope == SCOPE_STREAM
    # too many addrs in one peer
    peer = _ld(1, PID) + _ld(2, ADDR.to_bytes()) * (codec.MAX_ADDRS_PER_PEER + 1)
    _raises(LimitError, codec.decode, b"\x08\x04" + _ld(8, peer))
    # addresses beyond KEEP_ADDRS_PER_PEER are dropped
    peer = _ld(1, PID) + _ld(2, ADDR.to_bytes()) * codec.MAX_ADDRS_PER_PEER
    m = codec.decode(b"\x08\x04" + _ld(8, peer))
    assert len(m.closer[0][1]) == codec.KEEP_ADDRS_PER_PEER
    # oversized key, body
    _raises(LimitError, codec.decode, b"\x08\x04" + _ld(2, b"x" * (codec.MAX_KEY_LEN + 1)))
    _raises(LimitError, codec.decode, b"\x08\x04" + _ld(2, b"x" * codec.MAX_MESSAGE_SIZE))


def test_ten_thousand_closer_peers():
    # 10 000 entries do not even fit the 16 KiB cap: refused at the length prefix, unbuffered
    body = b"\x08\x04" + _ld(8, _ld(1, PID2)) * 10000
    r = codec.Reader()
    e = _raises(LimitError, r.receive, varint.encode(len(body)) + body[:100])
    assert e.scope == SCOPE_STREAM
    # and a decoder given them anyway stops at the count cap
    big = codec.MAX_MESSAGE_SIZE
    try:
        codec.MAX_MESSAGE_SIZE = len(body) + 1
        _raises(LimitError, codec.decode, body)
    finally:
        codec.MAX_MESSAGE_SIZE = big


def test_reader_splits_and_waits():
    a = codec.frame(codec.encode(codec.Message(codec.FIND_NODE, PID)))
    b = codec.frame(codec.encode(codec.Message(codec.GET_PROVIDERS, PID2)))
    r = codec.Reader()
    wire = a + b
    got = []
    for i in range(len(wire)):
        got.extend(r.receive(wire[i:i + 1]))
    assert [codec.decode(x).type for x in got] == [codec.FIND_NODE, codec.GET_PROVIDERS]
    assert r.pending == 0
    _raises(DecodeError, r.receive, b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80")


def test_frame_refuses_our_own_oversized_message():
    m = codec.Message(codec.PUT_VALUE, b"/pk/x", record=(b"/pk/x", b"v" * codec.MAX_MESSAGE_SIZE))
    _raises(LimitError, codec.frame, codec.encode(m))


def test_bad_length_prefix_is_stream_scoped():
    # found by tests/host/test_kad_props.py: a non-minimal varint prefix
    e = _raises(DecodeError, codec.Reader().receive, b"\x80\x00")
    assert e.scope == SCOPE_STREAM
