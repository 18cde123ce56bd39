# Signed envelopes and peer records against envelopes made by go-libp2p (record.Seal) and
# rust-libp2p, plus our own seal/open round trips and tampering.
from microp2p.identity import envelope, keys
from microp2p.codec import pb
from microp2p.identity.envelope import PeerRecord
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.errors import AuthError, DecodeError

# go-libp2p-core record/envelope_test.go interop vector: domain "libp2p-testing"
GO_ENVELOPE = bytes.fromhex(
    "0a24080112206f1581709bb7b1ef030d210db18e3b0ba1c776fba65d8cdaad05415142d189f812102f6c69627032702f"
    "74657374646174611a0c68656c6c6f20776f726c64212a401178673b51dfa842aad17e465e25d646ad16628916b964c3"
    "fb10c711fee87872bdd4e4646f58c277cdff09704913d8be1aec6322de8d3d0bb852120374aece08")
# go-libp2p record.Seal of a PeerRecord: seq 0x1122334455667788, two quic-v1 addresses
GO_PEER_RECORD = bytes.fromhex(
    "0a240801122079b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664120203011a500a26002408"
    "01122079b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad0496641088ef99abc5e88c91111a0d0a0b"
    "047f00000191020fa1cd031a0d0a0b04c0a8000a91022328cd032a40d85c6ac219c546773786025106fb199fa63b456e80"
    "8af9cdbed155efd4dc1114cf7eb912a0b1cc2adfcb129f4fe54bdc47fb03987733be3107fed37c6495e30a")
# rust-libp2p signed peer record: seq 9, /ip4/111.2.3.4/tcp/4001
RUST_PEER_RECORD = bytes.fromhex(
    "0a240801122099a7a471e0ad5d0eb66af0e10ab93292b943eb805de97911637db4be0c072e42120203011a360a2600240801"
    "122099a7a471e0ad5d0eb66af0e10ab93292b943eb805de97911637db4be0c072e4210091a0a0a08046f020304060fa12a40"
    "34b5287dce85c393caf8669500437d0504ed26de32d415de64b60fffe0cf1254c6ed2d5fc117e17685cd9d90b50f9ce0798"
    "43ab4474b4c208cc5fd05025ba402")

SEED = bytes(range(32))


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_go_envelope_interop_vector():
    env = envelope.open_envelope(GO_ENVELOPE, "libp2p-testing")
    assert env.payload_type == b"/libp2p/testdata"
    assert env.payload == b"hello world!"
    assert env.public_key.to_protobuf() == GO_ENVELOPE[2:38]
    assert _raises(AuthError, envelope.open_envelope, GO_ENVELOPE, "libp2p-testinG")


def test_go_and_rust_peer_records():
    r = envelope.open_peer_record(GO_PEER_RECORD)
    assert r.seq == 0x1122334455667788
    assert [str(a) for a in r.addrs] == ["/ip4/127.0.0.1/udp/4001/quic-v1", "/ip4/192.168.0.10/udp/9000/quic-v1"]
    assert r.skipped == 0
    assert r.peer_id == PeerId.from_public_key_protobuf(GO_PEER_RECORD[2:38])
    r = envelope.open_peer_record(RUST_PEER_RECORD)
    assert r.seq == 9
    assert r.addrs == [Multiaddr("/ip4/111.2.3.4/tcp/4001")]


def test_seal_open_round_trip_and_deterministic():
    k = keys.Ed25519PrivateKey.from_seed(SEED)
    addrs = ["/ip4/10.0.0.2/tcp/4001", Multiaddr("/dns4/gw.local/tcp/4001/p2p-circuit")]
    a = envelope.seal_peer_record(k, 7, addrs)
    assert a == envelope.seal_peer_record(k, 7, addrs)  # Ed25519 signing is deterministic
    r = envelope.open_peer_record(a)
    assert r.seq == 7
    assert [str(x) for x in r.addrs] == ["/ip4/10.0.0.2/tcp/4001", "/dns4/gw.local/tcp/4001/p2p-circuit"]
    assert r.peer_id == PeerId.from_public_key(k.public_key)
    # generic envelope with our own domain
    e = envelope.seal(k, "microp2p-test", b"\x00\x01", b"payload")
    env = envelope.open_envelope(e, "microp2p-test")
    assert env.payload == b"payload" and env.payload_type == b"\x00\x01"
    assert env.peer_id() == r.peer_id
    assert _raises(AuthError, envelope.open_envelope, e, envelope.PEER_RECORD_DOMAIN)


def test_every_single_bit_flip_in_signed_fields_is_caught():
    k = keys.Ed25519PrivateKey.from_seed(SEED)
    e = envelope.seal(k, "d", b"t", b"hello")
    for i in range(len(e)):
        # one bit per byte keeps this fast on a device; alternate low and high bits
        bad = bytearray(e)
        bad[i] ^= 0x01 if i & 1 else 0x80
        try:
            envelope.open_envelope(bytes(bad), "d")
        except (AuthError, DecodeError):
            continue
        assert False, "flip at %d accepted" % i
    # regression: a length prefix one past the end used to be accepted (pb.decode off by one)
    bad = bytearray(e)
    bad[49] = 0x41  # signature length 65 with 64 bytes present
    assert _raises(DecodeError, envelope.open_envelope, bytes(bad), "d")


def test_record_from_another_key_is_rejected():
    k = keys.Ed25519PrivateKey.from_seed(SEED)
    other = keys.Ed25519PrivateKey.from_seed(b"\x01" * 32)
    rec = PeerRecord(PeerId.from_public_key(other.public_key), 1, [Multiaddr("/ip4/1.2.3.4/tcp/1")])
    e = envelope.seal(k, envelope.PEER_RECORD_DOMAIN, envelope.PEER_RECORD_PAYLOAD_TYPE, rec.to_protobuf())
    assert _raises(AuthError, envelope.open_peer_record, e)


def test_wrong_payload_type_and_missing_fields():
    k = keys.Ed25519PrivateKey.from_seed(SEED)
    rec = PeerRecord(PeerId.from_public_key(k.public_key), 1, [])
    e = envelope.seal(k, envelope.PEER_RECORD_DOMAIN, b"\x03\x02", rec.to_protobuf())
    assert _raises(DecodeError, envelope.open_peer_record, e)
    msg = pb.decode(envelope.seal(k, "d", b"t", b"p"), envelope.ENVELOPE_SCHEMA)
    for name in ("public_key", "payload_type", "payload", "signature"):
        m = dict(msg)
        del m[name]
        assert _raises(DecodeError, envelope.open_envelope, bytes(pb.encode(m, envelope.ENVELOPE_SCHEMA)), "d")
    assert _raises(DecodeError, envelope.open_envelope, b"\x0a" * (envelope.MAX_ENVELOPE_LEN + 1), "d")


def test_unparseable_addresses_are_skipped_not_fatal():
    k = keys.Ed25519PrivateKey.from_seed(SEED)
    msg = {
        "peer_id": PeerId.from_public_key(k.public_key).to_bytes(),
        "seq": 3,
        "addresses": [{"multiaddr": Multiaddr("/ip4/1.2.3.4/tcp/5").to_bytes()},
                      {"multiaddr": bytes.fromhex("0401020304910204d2cc03d103")},  # .../webtransport
                      {"multiaddr": b""}],
    }
    payload = bytes(pb.encode(msg, envelope.PEER_RECORD_SCHEMA))
    e = envelope.seal(k, envelope.PEER_RECORD_DOMAIN, envelope.PEER_RECORD_PAYLOAD_TYPE, payload)
    r = envelope.open_peer_record(e)
    assert r.addrs == [Multiaddr("/ip4/1.2.3.4/tcp/5")]
    assert r.skipped == 2


def test_too_many_addresses_is_a_limit_error():
    from microp2p.errors import LimitError
    k = keys.Ed25519PrivateKey.from_seed(SEED)
    addrs = ["/ip4/1.2.3.4/tcp/%d" % i for i in range(envelope.MAX_RECORD_ADDRS + 1)]
    e = envelope.seal_peer_record(k, 1, addrs)
    assert _raises(LimitError, envelope.open_peer_record, e)
