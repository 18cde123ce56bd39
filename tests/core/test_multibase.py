# multibase / multihash / cid: spec vectors (multiformats/multibase test vectors "yes mani !"),
# Bitcoin base58 vectors, and strictness.
from microp2p.codec import multibase, multihash, cid
from microp2p.errors import DecodeError, UsageError

YES = b"yes mani !"
YES_VECTORS = [
    ("z", "z7paNL19xttacUY"),
    ("b", "bpfsxgidnmfxgsibb"),
    ("k", "k2lcpzo5yikidynfl"),
    ("f", "f796573206d616e692021"),
]
LEADING_ZERO_VECTORS = [
    ("z", "z17paNL19xttacUY"),
    ("b", "bab4wk4zanvqw42jaee"),
    ("k", "k02lcpzo5yikidynfl"),
]


def _fails(fn, *args):
    try:
        fn(*args)
    except DecodeError:
        return True
    return False


def test_spec_vectors_encode_and_decode():
    for base, text in YES_VECTORS:
        assert multibase.encode(base, YES) == text
        assert multibase.decode(text) == (base, YES)
    for base, text in LEADING_ZERO_VECTORS:
        assert multibase.encode(base, b"\x00" + YES) == text
        assert multibase.decode(text) == (base, b"\x00" + YES)


def test_base58_bitcoin_vectors():
    assert multibase.b58encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert multibase.b58encode(bytes.fromhex("0000287fb4cd")) == "11233QC4"
    assert multibase.b58decode("11233QC4") == bytes.fromhex("0000287fb4cd")
    assert multibase.b58encode(b"") == ""
    assert multibase.b58decode("") == b""
    assert multibase.b58encode(b"\x00\x00\x00") == "111"
    assert multibase.b58decode("111") == b"\x00\x00\x00"
    assert multibase.b58encode(b"\xff" * 4) == "7YXq9G"


def test_base58_rejects_ambiguous_and_foreign_chars():
    for bad in ("0", "O", "I", "l", "+", "abc/", "é", " 1", "2NEpo7TZRRrLZSi2U\n"):
        assert _fails(multibase.b58decode, bad), bad


def test_base32_rfc4648_vectors_lowercase_no_padding():
    # RFC 4648 section 10, lowered and unpadded
    pairs = [(b"", ""), (b"f", "my"), (b"fo", "mzxq"), (b"foo", "mzxw6"), (b"foob", "mzxw6yq"),
             (b"fooba", "mzxw6ytb"), (b"foobar", "mzxw6ytboi")]
    for raw, text in pairs:
        assert multibase.b32encode(raw) == text
        assert multibase.b32decode(text) == raw


def test_base32_strictness():
    assert _fails(multibase.b32decode, "MZXW6")  # upper case is base 'B', not 'b'
    assert _fails(multibase.b32decode, "mzxw6===")  # no padding in multibase 'b'
    assert _fails(multibase.b32decode, "m")  # impossible length
    assert _fails(multibase.b32decode, "mzx")
    assert _fails(multibase.b32decode, "mzxw6y")
    assert _fails(multibase.b32decode, "mz")  # non-zero trailing bits ("f" is "my")
    assert _fails(multibase.b32decode, "m1")
    assert _fails(multibase.decode, "Bmzxw6")


def test_base16_strictness():
    assert multibase.decode("f00ff") == ("f", b"\x00\xff")
    assert _fails(multibase.decode, "f0")
    assert _fails(multibase.decode, "f00FF")
    assert _fails(multibase.decode, "f0g")


def test_multibase_prefixes():
    assert _fails(multibase.decode, "")
    assert _fails(multibase.decode, "mZm9v")  # base64: not supported
    assert _fails(multibase.decode, "?")
    assert _fails(multibase.decode, b"zabc")
    assert _fails(multibase.decode, "z" + "2" * (multibase.MAX_TEXT_LEN + 1))
    try:
        multibase.encode("m", b"x")
        assert False
    except UsageError:
        pass


def test_multihash_round_trip_and_strictness():
    d = bytes(range(32))
    mh = multihash.encode(multihash.SHA2_256, d)
    assert mh == b"\x12\x20" + d
    assert multihash.decode(mh) == (multihash.SHA2_256, d)
    ident = multihash.encode(multihash.IDENTITY, b"abc")
    assert ident == b"\x00\x03abc"
    assert multihash.decode(ident) == (0, b"abc")
    assert _fails(multihash.decode, b"")
    assert _fails(multihash.decode, b"\x12")
    assert _fails(multihash.decode, mh[:-1])  # truncated
    assert _fails(multihash.decode, mh + b"\x00")  # trailing
    assert _fails(multihash.decode, b"\x12\x21" + d + b"\x00")  # sha2-256 of 33 bytes
    assert _fails(multihash.decode, b"\x12\x1f" + d[:31])
    assert _fails(multihash.decode, b"\x13\x20" + d)  # sha2-512 code: unsupported here
    assert multihash.decode(b"\x13\x20" + d, 64, True) == (0x13, d)
    assert _fails(multihash.decode, b"\x00\x81\x01" + b"x" * 129)  # over the digest cap
    assert _fails(multihash.decode, b"\x80\x00\x00")  # non-minimal code varint
    for bad in ((0x13, d), (multihash.SHA2_256, d[:5])):
        try:
            multihash.encode(*bad)
            assert False
        except UsageError:
            pass


def test_cid_libp2p_key_and_generic():
    # spec example: the same sha2-256 peer as a CID
    codec, mh = cid.decode("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe")
    assert codec == cid.LIBP2P_KEY
    assert multibase.b58encode(mh) == "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    assert cid.encode(cid.LIBP2P_KEY, mh) == "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
    # a raw-codec CID with an identity hash of nothing (well known "bafkqaaa")
    assert cid.decode("bafkqaaa") == (cid.RAW, b"\x00\x00")
    # a dag-pb CID with a blake2b-256 multihash parses generically
    c = cid.to_bytes(cid.DAG_PB, b"\xa0\xe4\x02\x20" + b"\x11" * 32)
    assert cid.from_bytes(c) == (cid.DAG_PB, b"\xa0\xe4\x02\x20" + b"\x11" * 32)
    assert _fails(cid.from_bytes, b"\x00\x72" + mh)  # version 0 is not a binary CID
    assert _fails(cid.from_bytes, b"\x02\x72" + mh)
    assert _fails(cid.from_bytes, b"\x01\x72" + mh[:-1])
    assert _fails(cid.from_bytes, b"\x01")
    assert _fails(cid.decode, "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
