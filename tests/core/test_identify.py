from microp2p.proto import identify
from microp2p.identity import keys, envelope
from microp2p.codec import pb, varint
from microp2p.identity.peerid import PeerId
from microp2p.codec.multiaddr import Multiaddr
from microp2p.errors import ProtocolError, DecodeError, LimitError, AuthError, SCOPE_STREAM
from pairs import raises

_KEYS = {}


def _identity(n):
    k = _KEYS.get(n)
    if k is None:
        k = keys.Ed25519PrivateKey.from_seed(bytes([n + 40]) * 32)
        _KEYS[n] = k
    return k


def _peer(n):
    return PeerId.from_public_key(_identity(n).public_key)


LISTEN = ["/ip4/192.0.2.7/tcp/4001", "/ip6/::1/tcp/4002"]
PROTOS = ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/meshsub/1.1.0"]


def _read(data, expected, push=False, step=0):
    r = identify.IdentifyReader(expected, push)
    if step:
        for i in range(0, len(data), step):
            assert r.receive(data[i:i + step]) == []
    else:
        assert r.receive(data) == []
    events = r.receive_eof()
    assert len(events) == 1
    return events[0]


def test_round_trip_with_signed_record():
    msg = identify.encode_identify(_identity(1), PROTOS, LISTEN, "/ip4/198.51.100.1/tcp/5555",
                                   "microp2p/0.1.0", seq=77)
    name, res = _read(identify.frame(msg), _peer(1), step=13)
    assert name == "identify"
    assert res["protocol_version"] == "ipfs/0.1.0"
    assert res["agent_version"] == "microp2p/0.1.0"
    assert res["public_key"] == _identity(1).public_key
    assert [str(a) for a in res["listen_addrs"]] == LISTEN
    assert str(res["observed_addr"]) == "/ip4/198.51.100.1/tcp/5555"
    assert res["protocols"] == PROTOS
    rec = res["signed_record"]
    assert rec.peer_id == _peer(1) and rec.seq == 77
    assert [str(a) for a in rec.addrs] == LISTEN
    # decode_identify takes the bare message
    res2 = identify.decode_identify(msg, _peer(1))
    assert res2["protocols"] == PROTOS


def test_unsigned_no_observed_and_wire_order():
    msg = identify.encode_identify(_identity(1), ["/a"], [], None, "x", signed_record=False)
    raw = pb.decode(msg, identify.IDENTIFY_SCHEMA)
    assert "signedPeerRecord" not in raw and "observedAddr" not in raw
    # fields in field-number order: publicKey (1) first, agentVersion (6) last
    assert msg[0] == 0x0A and raw["agentVersion"] == "x"
    res = identify.decode_identify(msg, _peer(1))
    assert res["signed_record"] is None and res["observed_addr"] is None
    assert res["listen_addrs"] == []


def test_messages_merged_until_eof():
    key_pb = _identity(1).public_key.to_protobuf()
    m1 = pb.encode({"publicKey": key_pb, "protocols": ["/a"], "agentVersion": "old"},
                   identify.IDENTIFY_SCHEMA)
    m2 = pb.encode({"protocols": ["/b"], "agentVersion": "new",
                    "listenAddrs": [Multiaddr("/ip4/10.0.0.1/tcp/1").to_bytes()]},
                   identify.IDENTIFY_SCHEMA)
    data = identify.frame(bytes(m1)) + identify.frame(bytes(m2))
    name, res = _read(data, _peer(1), step=5)
    assert res["protocols"] == ["/a", "/b"]
    assert res["agent_version"] == "new"
    assert [str(a) for a in res["listen_addrs"]] == ["/ip4/10.0.0.1/tcp/1"]


def test_public_key_required_and_must_match():
    m = bytes(pb.encode({"protocols": ["/a"]}, identify.IDENTIFY_SCHEMA))
    e = raises(AuthError, identify.decode_identify, m, _peer(1))
    assert e.scope == SCOPE_STREAM
    # a push may leave it out (partial update)
    name, res = _read(identify.frame(m), _peer(1), push=True)
    assert name == "identify_push" and res["protocols"] == ["/a"] and res["public_key"] is None
    other = identify.encode_identify(_identity(2), [], [], None, "x", signed_record=False)
    e = raises(AuthError, identify.decode_identify, other, _peer(1))
    assert e.scope == SCOPE_STREAM
    bad_key = bytes(pb.encode({"publicKey": b"\x08\x01\x12\x03abc"}, identify.IDENTIFY_SCHEMA))
    raises(AuthError, identify.decode_identify, bad_key, None)


def test_non_ed25519_key_matched_by_peer_id():
    # An RSA-typed key (type 0) we cannot parse still identifies its peer by hash.
    rsa_pb = bytes(pb.encode({"type": 0, "data": bytes(range(256)) + bytes(44)}, keys.KEY_SCHEMA))
    peer = PeerId.from_public_key_protobuf(rsa_pb)
    m = bytes(pb.encode({"publicKey": rsa_pb, "protocols": ["/x"]}, identify.IDENTIFY_SCHEMA))
    res = identify.decode_identify(m, peer)
    assert res["public_key"] is None and res["protocols"] == ["/x"]
    raises(AuthError, identify.decode_identify, m, _peer(1))


def test_signed_record_checks():
    key_pb = _identity(1).public_key.to_protobuf()
    good = envelope.seal_peer_record(_identity(1), 5, [Multiaddr("/ip4/10.0.0.2/tcp/7")])
    tampered = bytearray(good)
    tampered[-1] ^= 1
    m = bytes(pb.encode({"publicKey": key_pb, "signedPeerRecord": bytes(tampered)},
                        identify.IDENTIFY_SCHEMA))
    e = raises(AuthError, identify.decode_identify, m, _peer(1))
    assert e.scope == SCOPE_STREAM
    # a valid record, but of another peer
    foreign = envelope.seal_peer_record(_identity(2), 5, [])
    m = bytes(pb.encode({"publicKey": key_pb, "signedPeerRecord": foreign},
                        identify.IDENTIFY_SCHEMA))
    raises(AuthError, identify.decode_identify, m, _peer(1))
    # garbage in the field
    m = bytes(pb.encode({"publicKey": key_pb, "signedPeerRecord": b"\xff\x01"},
                        identify.IDENTIFY_SCHEMA))
    raises(AuthError, identify.decode_identify, m, _peer(1))
    m = bytes(pb.encode({"publicKey": key_pb, "signedPeerRecord": good}, identify.IDENTIFY_SCHEMA))
    assert identify.decode_identify(m, _peer(1))["signed_record"].seq == 5


def test_lenient_addrs_and_unknown_fields():
    key_pb = _identity(1).public_key.to_protobuf()
    good = Multiaddr("/ip4/10.0.0.3/tcp/9").to_bytes()
    m = bytearray(pb.encode({"publicKey": key_pb, "listenAddrs": [b"\xff\xff\x01", good],
                             "observedAddr": b"\x00"}, identify.IDENTIFY_SCHEMA))
    m += b"\x3a\x03abc"   # field 7 (unknown string) is skipped
    res = identify.decode_identify(bytes(m), _peer(1))
    assert [str(a) for a in res["listen_addrs"]] == ["/ip4/10.0.0.3/tcp/9"]
    assert res["skipped_addrs"] == 1
    assert res["observed_addr"] is None


def test_caps():
    # length prefix over 8 KiB: refused before buffering
    r = identify.IdentifyReader(_peer(1))
    e = raises(ProtocolError, r.receive, varint.encode(identify.MAX_MESSAGE_SIZE + 1))
    assert e.scope == SCOPE_STREAM
    # eleven messages
    empty = identify.frame(b"")
    r = identify.IdentifyReader(_peer(1))
    r.receive(empty * identify.MAX_MESSAGES)
    e = raises(LimitError, r.receive, empty)
    assert e.scope == SCOPE_STREAM
    # EOF inside a message, EOF with no message
    r = identify.IdentifyReader(_peer(1))
    r.receive(b"\x05ab")
    assert raises(DecodeError, r.receive_eof).scope == SCOPE_STREAM
    raises(DecodeError, identify.IdentifyReader(_peer(1)).receive_eof)
    # malformed protobuf inside a frame is a stream error too
    r = identify.IdentifyReader(_peer(1))
    e = raises(DecodeError, r.receive, b"\x02\x0a\x05")
    assert e.scope == SCOPE_STREAM
    raises(LimitError, identify.frame, bytes(identify.MAX_MESSAGE_SIZE + 1))
    raises(LimitError, identify.decode_identify, bytes(identify.MAX_MESSAGE_SIZE + 1), None)
    # too many protocols after merging
    key_pb = _identity(1).public_key.to_protobuf()
    r = identify.IdentifyReader(_peer(1))
    per = identify.MAX_PROTOCOLS // 4 + 1
    chunk = pb.encode({"publicKey": key_pb, "protocols": ["/p"] * per}, identify.IDENTIFY_SCHEMA)
    for _ in range(4):
        r.receive(identify.frame(bytes(chunk)))
    raises(LimitError, r.receive_eof)


def test_observed_addr_keeps_the_circuit_and_drops_only_the_peer():
    from microp2p.codec.multiaddr import Multiaddr
    from microp2p.io.identify import observed_addr
    r = "12D3KooWQC4vpAVdDiUruj5xgsEuWxUGqTeY1xxw4J9DUmDqp1rQ"
    p = "12D3KooWMr5zZAR5fMyTpvY5fM8jqp4Mae2EQBUJf4MW83uCcDv5"
    ma = Multiaddr.from_string
    assert str(observed_addr(ma("/ip4/10.0.0.1/tcp/4001/p2p/" + p))) == "/ip4/10.0.0.1/tcp/4001"
    assert str(observed_addr(ma("/ip4/10.0.0.1/tcp/4001"))) == "/ip4/10.0.0.1/tcp/4001"
    circ = "/ip4/10.0.0.1/tcp/4001/p2p/%s/p2p-circuit" % r
    assert str(observed_addr(ma(circ + "/p2p/" + p))) == circ
    # a relay reached over a serial link gives no transport address: nothing to tell
    assert observed_addr(ma("/p2p/%s/p2p-circuit/p2p/%s" % (r, p))) is None
