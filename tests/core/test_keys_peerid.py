# Keys and peer IDs against libp2p/specs peer-ids/peer-ids.md test vectors and peer IDs published
# next to their private keys by other libp2p users (js-libp2p, go-libp2p).
from microp2p.identity import keys
from microp2p import crypto
from microp2p.codec import multihash
from microp2p.identity.peerid import PeerId
from microp2p.errors import DecodeError
import vectors_multiaddr as VM

# peer-ids.md "Test vectors"
SPEC_ED25519_PRIV = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
SPEC_ED25519_PUB = bytes.fromhex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
SPEC_ED25519_PEER = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
SPEC_SECP256K1_PUB = bytes.fromhex("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99")
SPEC_SECP256K1_PRIV = bytes.fromhex("0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB")
SPEC_ECDSA_PUB = bytes.fromhex(
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44"
    "abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62")

# (PrivateKey protobuf hex, peer ID) published together by js-libp2p users
KNOWN_KEYS = [
    ("08011240821cb6bc3d4547fcccb513e82e4d718089f8a166b23ffcd4a436754b6b0774cf07447d1693cd10ce11ef950d"
     "7517bad6e9472b41a927cd17fc3fb23f8c70cd99", "12D3KooWAJjbRkp8FPF5MKgMU53aUTxWkqvDrs4zc1VMbwRwfsbE"),
    ("08011240db4674dd3d2ffc226dd4f8bb5d58efd8469d8ba1d6d9a05ad2ff33194ff9c59f6f970cc42dfc61b622a42c14"
     "ca822c825c50c1beb1e99decc35d16eebc5011f4", "12D3KooWHKy1gQesCpXkhXwGCMktUeWRMLnhXFj3sdMURoWoufJb"),
]

# RFC 8032 section 7.1 TEST 1 and TEST 2
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_spec_ed25519_private_key_derives_public_key_and_peer_id():
    k = keys.private_key_from_protobuf(SPEC_ED25519_PRIV)
    assert k.public_key.to_protobuf() == SPEC_ED25519_PUB
    assert k.to_protobuf() == SPEC_ED25519_PRIV
    pid = PeerId.from_public_key(k.public_key)
    assert str(pid) == SPEC_ED25519_PEER
    assert pid.to_bytes() == b"\x00\x24" + SPEC_ED25519_PUB  # identity multihash, 36 bytes
    assert keys.public_key_from_protobuf(SPEC_ED25519_PUB) == k.public_key


def test_known_seed_peer_id():
    seed = SPEC_ED25519_PRIV[4:36]
    k = keys.Ed25519PrivateKey.from_seed(seed)
    assert k.seed == seed
    assert str(PeerId.from_public_key(k.public_key)) == SPEC_ED25519_PEER


def test_published_keys_and_peer_ids():
    for h, want in KNOWN_KEYS:
        k = keys.private_key_from_protobuf(bytes.fromhex(h))
        assert str(PeerId.from_public_key(k.public_key)) == want
        assert k.to_protobuf().hex() == h


def test_legacy_96_byte_private_key():
    data = SPEC_ED25519_PRIV[4:]
    legacy = b"\x08\x01\x12\x60" + data + data[32:]
    k = keys.private_key_from_protobuf(legacy)
    assert k.to_protobuf() == SPEC_ED25519_PRIV  # written back in the preferred 64-byte form
    bad = bytearray(legacy)
    bad[-1] ^= 1
    assert _raises(DecodeError, keys.private_key_from_protobuf, bytes(bad))


def test_private_key_with_wrong_public_half_is_rejected():
    bad = bytearray(SPEC_ED25519_PRIV)
    bad[-1] ^= 1
    assert _raises(DecodeError, keys.private_key_from_protobuf, bytes(bad))
    assert _raises(DecodeError, keys.private_key_from_protobuf, SPEC_ED25519_PRIV[:-1])


def test_other_key_types_are_unsupported_but_typed():
    for buf in (SPEC_SECP256K1_PUB, SPEC_ECDSA_PUB):
        assert _raises(keys.UnsupportedKey, keys.public_key_from_protobuf, buf)
    assert _raises(keys.UnsupportedKey, keys.private_key_from_protobuf, SPEC_SECP256K1_PRIV)
    assert issubclass(keys.UnsupportedKey, DecodeError)


def test_non_canonical_key_protobufs_are_rejected():
    raw = SPEC_ED25519_PUB[4:]
    variants = [
        b"\x12\x20" + raw + b"\x08\x01",  # fields out of order
        b"\x08\x81\x00\x12\x20" + raw,  # non-minimal varint
        SPEC_ED25519_PUB + b"\x18\x00",  # an extra field
        b"\x08\x01\x08\x01\x12\x20" + raw,  # duplicate field
        b"\x12\x20" + raw,  # missing type
        b"\x08\x01",  # missing data
        b"\x08\x01\x12\x1f" + raw[:31],  # short key
        b"\x08\x01\x12\x21" + raw + b"\x00",  # long key
        b"",
    ]
    for v in variants:
        assert _raises(DecodeError, keys.public_key_from_protobuf, v), v.hex()


def test_rfc8032_sign_and_verify():
    for seed, pub, msg, sig in RFC8032:
        k = keys.Ed25519PrivateKey.from_seed(bytes.fromhex(seed))
        assert k.public_key.raw.hex() == pub
        m = bytes.fromhex(msg)
        s = k.sign(m)
        assert s.hex() == sig
        assert k.public_key.verify(m, s)
        assert not k.public_key.verify(m + b"x", s)
        bad = bytearray(s)
        bad[0] ^= 1
        assert not k.public_key.verify(m, bytes(bad))
        assert not k.public_key.verify(m, s[:63])
        assert not k.public_key.verify(m, b"")


def test_generate_makes_distinct_working_keys():
    a = keys.Ed25519PrivateKey.generate()
    b = keys.Ed25519PrivateKey.generate()
    assert a.seed != b.seed
    assert a.public_key.verify(b"hi", a.sign(b"hi"))
    assert not b.public_key.verify(b"hi", a.sign(b"hi"))
    assert keys.private_key_from_protobuf(a.to_protobuf()).seed == a.seed


def test_peer_id_text_forms():
    pid = PeerId.from_string(SPEC_ED25519_PEER)
    assert pid.to_base58() == SPEC_ED25519_PEER
    c = pid.to_cid()
    assert c.startswith("bafz")
    assert PeerId.from_string(c) == pid
    assert PeerId.from_string(pid.to_cid("k")) == pid
    assert PeerId.from_string(pid.to_cid("z")) == pid
    assert PeerId.from_bytes(pid.to_bytes()) == pid
    assert hash(PeerId.from_bytes(pid.to_bytes())) == hash(pid)
    assert pid.public_key() == keys.public_key_from_protobuf(SPEC_ED25519_PUB)
    assert pid.matches_public_key_protobuf(SPEC_ED25519_PUB)
    assert pid != PeerId.from_string(KNOWN_KEYS[0][1])


def test_spec_cid_and_base58_examples():
    a = PeerId.from_string("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe")
    b = PeerId.from_string("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    assert a == b
    assert a.public_key() is None  # hashed: the key is not inside
    assert a.inlined_key() is None
    c = PeerId.from_string("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
    assert c.public_key() is not None
    # go-multiaddr: the same peer as base58, base36 CID and base32 CID
    assert PeerId.from_string(VM.KOOW) == PeerId.from_string(
        "k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs")
    assert PeerId.from_string(VM.KOOW) == PeerId.from_string(
        "bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u")


def test_long_keys_hash_with_sha256_and_short_ones_inline():
    pid = PeerId.from_public_key_protobuf(SPEC_ECDSA_PUB)  # 95 bytes > 42
    assert pid.to_bytes() == multihash.encode(multihash.SHA2_256, crypto.sha256(SPEC_ECDSA_PUB))
    assert str(pid).startswith("Qm")
    assert pid.matches_public_key_protobuf(SPEC_ECDSA_PUB)
    sp = PeerId.from_public_key_protobuf(SPEC_SECP256K1_PUB)  # 37 bytes: inlined
    assert sp.to_bytes()[:2] == b"\x00\x25"
    assert sp.inlined_key() == SPEC_SECP256K1_PUB
    assert sp.public_key() is None  # not an Ed25519 key


def test_bad_peer_id_text_and_bytes():
    bad_texts = [
        "", "1", "Qm", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", "bafkqaaa",
        "zQmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY",
        "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S0", "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx",
        b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    ]
    for t in bad_texts:
        assert _raises(DecodeError, PeerId.from_string, t), t
    bad_bytes = [b"", b"\x00", b"\x00\x2b" + b"x" * 43, b"\x12\x20" + b"x" * 31, b"\x13\x20" + b"x" * 32,
                 b"\x12\x20" + b"x" * 33]
    for b in bad_bytes:
        assert _raises(DecodeError, PeerId.from_bytes, b), b
    # 42 bytes is the largest inlined key
    assert PeerId.from_bytes(b"\x00\x2a" + b"x" * 42).public_key() is None


def test_load_private_key_file():
    path = "/tmp/microp2p_test_key_%d.key" % len(SPEC_ED25519_PRIV)
    with open(path, "wb") as f:
        f.write(SPEC_ED25519_PRIV)
    k = keys.load_private_key(path)
    assert str(PeerId.from_public_key(k.public_key)) == SPEC_ED25519_PEER
