# microp2p.codec.cbor: RFC 8949 Appendix A vectors for the subset, determinism, and strictness at every
# edge a remote can push on (commands arrive as CBOR from the network).
from microp2p.codec import cbor
from microp2p.errors import DecodeError, LimitError, UsageError, ProtocolError


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


# (value, hex) pairs from RFC 8949 Appendix A that our encoder must produce exactly
VECTORS = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ("\"\\", "62225c"), ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (1.1, "fb3ff199999999999a"), (-4.1, "fbc010666666666666"), (1.0e300, "fb7e37e43c8800759c"),
]

# float encodings we must decode though we never emit them (half and single precision)
FLOAT_DECODE = [
    ("f90000", 0.0), ("f93c00", 1.0), ("f93e00", 1.5), ("f97bff", 65504.0), ("f90001", 5.960464477539063e-08),
    ("f90400", 6.103515625e-05), ("f9c400", -4.0), ("fa47c35000", 100000.0), ("fa7f7fffff", 3.4028234663852886e+38),
    ("f97c00", float("inf")), ("f9fc00", float("-inf")),
]


def test_rfc_vectors_encode_and_decode():
    for value, h in VECTORS:
        assert cbor.encode_own(value).hex() == h, (value, h)
        got = cbor.decode(bytes.fromhex(h))
        assert got == value and type(got) is type(value), (h, got)


def test_half_and_single_floats_decode():
    for h, value in FLOAT_DECODE:
        assert cbor.decode(bytes.fromhex(h)) == value, h
    nan = cbor.decode(bytes.fromhex("f97e00"))
    assert nan != nan
    assert cbor.decode(bytes.fromhex("fb7ff8000000000000")) != cbor.decode(bytes.fromhex("fb7ff8000000000000"))


def test_map_keys_sorted_whatever_the_insertion_order():
    a = {}
    for k in ("zeta", "a", "mm", "b", 10, -1):
        a[k] = 1
    b = {}
    for k in (-1, 10, "b", "mm", "a", "zeta"):
        b[k] = 1
    ea = cbor.encode_own(a)
    assert ea == cbor.encode_own(b)
    # bytewise order of encoded keys: 0a (10) < 20 (-1) < 6161 ("a") < 6162 < 626d6d < 647a...
    assert ea.hex() == "a60a012001616101616201626d6d01647a65746101"
    assert cbor.encode_own({b"k": 1, 2: 3}).hex() == "a20203416b01"
    assert cbor.decode(bytes.fromhex("a20203416b01")) == {b"k": 1, 2: 3}


def test_reading_shape_round_trips():
    r = {"dev": "12D3KooWabc", "seq": 7, "t": 123456789, "v": 21.5, "unit": "C", "dropped": 0}
    assert cbor.decode(cbor.encode_own(r)) == r
    cmd = {"cmd": "interval", "ms": 500, "to": "*"}
    assert cbor.decode(bytearray(cbor.encode_own(cmd))) == cmd
    assert cbor.decode(memoryview(cbor.encode_own(cmd))) == cmd


def test_tuple_encodes_as_array_and_bytes_types():
    assert cbor.encode_own((1, 2)) == cbor.encode_own([1, 2])
    assert cbor.encode_own(bytearray(b"ab")) == cbor.encode_own(b"ab")
    assert cbor.encode_own(memoryview(b"ab")) == cbor.encode_own(b"ab")


def test_encode_rejects_what_the_subset_cannot_express():
    assert _raises(UsageError, cbor.encode_own, 1 << 64)
    assert _raises(UsageError, cbor.encode_own, -(1 << 64) - 1)
    assert _raises(UsageError, cbor.encode_own, object())
    assert _raises(UsageError, cbor.encode_own, {1, 2})
    deep = []
    for _ in range(cbor.MAX_DEPTH + 1):
        deep = [deep]
    assert _raises(UsageError, cbor.encode_own, deep)


def test_truncated_inputs_raise_decode_error():
    for _, h in VECTORS:
        b = bytes.fromhex(h)
        for cut in range(len(b)):
            assert _raises(DecodeError, cbor.decode, b[:cut]), (h, cut)


def test_strictness():
    bad = [
        "1817",          # 23 in a 1-byte extension: not shortest
        "190017",        # non-shortest 2-byte
        "1a0000ffff",    # non-shortest 4-byte
        "1b00000000ffffffff",  # non-shortest 8-byte
        "3817",          # negative, non-shortest
        "5801ff",        # byte string length not shortest
        "1c", "1d", "1e",  # reserved additional info
        "5f41614162ff",  # indefinite byte string
        "9fff",          # indefinite array
        "bfff",          # indefinite map
        "c074323031332d30332d32315432303a30343a30305a",  # tag 0
        "c249010000000000000000",  # bignum tag
        "f7",            # undefined
        "f0", "f818",    # simple values
        "0000",          # trailing byte
        "62c328",        # invalid UTF-8
        "61ff",          # invalid UTF-8
        "a201020103",    # duplicate key 1
        "a1810102",      # array as map key
        "a1a00102",      # map as map key
        "ff",            # break outside indefinite item
    ]
    for h in bad:
        try:
            cbor.decode(bytes.fromhex(h))
            assert False, "accepted " + h
        except DecodeError:
            pass


def test_caps_apply_before_allocation():
    # a string claiming 4 GiB with nothing behind it: LimitError from the cap, nothing allocated
    assert _raises(LimitError, cbor.decode, bytes.fromhex("5affffffff"))
    assert _raises(LimitError, cbor.decode, bytes.fromhex("7a00010000") + b"x")
    # an array claiming more items than the cap
    assert _raises(LimitError, cbor.decode, bytes.fromhex("9a7fffffff"))
    # a count within the cap that the input cannot hold: truncated, not a huge list
    assert _raises(DecodeError, cbor.decode, bytes.fromhex("990100") + b"\x00" * 10)
    # nesting
    deep = b"\x81" * cbor.MAX_DEPTH + b"\x00"
    assert cbor.decode(deep) is not None
    assert _raises(LimitError, cbor.decode, b"\x81" * (cbor.MAX_DEPTH + 1) + b"\x00")
    # total items in a document
    n = cbor.MAX_ITEMS
    inner = bytes([0x99]) + n.to_bytes(2, "big") + b"\x00" * n
    outer = cbor.MAX_TOTAL_ITEMS // n + 1
    assert outer < 24
    doc = bytes([0x80 | outer]) + inner * outer
    assert _raises(LimitError, cbor.decode, doc)
    # whole input
    assert _raises(LimitError, cbor.decode, b"\x00" * 10, 5)
    assert _raises(LimitError, cbor.decode, b"\x40" * (cbor.MAX_INPUT + 1))


def test_only_protocol_errors_for_garbage():
    # every 1- and 2-byte input: a value or a ProtocolError, never anything else
    for a in range(256):
        for b in (b"", bytes([0]), bytes([0x18]), bytes([0xff])):
            data = bytes([a]) + b
            try:
                cbor.decode(data)
            except ProtocolError:
                pass
