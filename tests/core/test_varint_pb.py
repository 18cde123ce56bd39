# varint (multiformats unsigned-varint) and the schema-driven protobuf codec: strictness at every
# edge a remote can push on.
from microp2p.codec import varint, pb
from microp2p.errors import DecodeError, LimitError


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_varint_known_encodings():
    pairs = [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (255, "ff01"), (300, "ac02"),
             (16384, "808001"), ((1 << 63) - 1, "ffffffffffffffff7f")]
    for n, h in pairs:
        assert varint.encode(n).hex() == h
        assert varint.decode(bytes.fromhex(h)) == (n, len(h) // 2)


def test_varint_round_trip_boundaries():
    for shift in range(0, 63, 7):
        for n in ((1 << shift) - 1, 1 << shift, (1 << shift) + 1):
            if 0 <= n <= varint.MAX_VALUE:
                b = varint.encode(n)
                assert varint.decode(b) == (n, len(b))
                assert len(b) <= varint.MAX_LEN


def test_varint_non_minimal_rejected():
    for h in ("8000", "ff00", "808000", "8180808000"):
        assert _raises(DecodeError, varint.decode, bytes.fromhex(h)), h


def test_varint_nine_byte_max_and_overlong():
    assert varint.decode(bytes.fromhex("ffffffffffffffff7f"))[0] == varint.MAX_VALUE
    assert _raises(DecodeError, varint.decode, bytes.fromhex("ffffffffffffffffff01"))  # 10 bytes
    assert _raises(DecodeError, varint.decode, bytes.fromhex("80808080808080808001"))
    assert _raises(DecodeError, varint.decode, b"\xff" * 9)  # 9 bytes, still continuing
    try:
        varint.encode(1 << 63)
        assert False
    except ValueError:
        pass


def test_varint_truncation_is_need_data_for_read_and_error_for_decode():
    assert varint.read(b"") == (None, 0)
    assert varint.read(b"\x80") == (None, 0)
    assert varint.read(b"\x05\x80\x80", 1) == (None, 1)
    assert _raises(DecodeError, varint.decode, b"\x80\x80")
    assert _raises(DecodeError, varint.decode, b"")
    # end bounds the read even when the buffer goes on
    assert varint.read(b"\xac\x02", 0, varint.MAX_VALUE, 1) == (None, 0)


def test_varint_over_cap_fails_before_the_bytes_end():
    assert _raises(DecodeError, varint.decode, b"\xac\x02", 0, 299)
    assert varint.decode(b"\xac\x02", 0, 300) == (300, 2)
    # a streaming read already knows it is too big after the first byte of a large length
    assert _raises(DecodeError, varint.read, b"\xff", 0, 100)


S_INNER = ((1, "x", pb.U, False), (2, "tag", pb.S, False))
S = (
    (1, "n", pb.U, False),
    (2, "flag", pb.Z, False),
    (3, "data", pb.B, False),
    (4, "name", pb.S, False),
    (5, "items", pb.B, True),
    (6, "inner", S_INNER, False),
    (7, "inners", S_INNER, True),
)


def test_pb_round_trip_is_canonical():
    msg = {"n": 300, "flag": True, "data": b"\x00\x01", "name": "h\u00e9", "items": [b"a", b"", b"c"],
           "inner": {"x": 1, "tag": "t"}, "inners": [{"x": 2}, {}]}
    b = bytes(pb.encode(msg, S))
    assert b.hex() == ("08ac021001" "1a020001" "220368c3a9" "2a01612a002a0163" "320508011201" "74"
                       "3a0208023a00")
    d = pb.decode(b, S)
    assert d["n"] == 300 and d["flag"] is True and d["data"] == b"\x00\x01" and d["name"] == "h\u00e9"
    assert d["items"] == [b"a", b"", b"c"]
    assert d["inner"] == {"x": 1, "tag": "t"}
    assert d["inners"] == [{"x": 2}, {}]
    assert bytes(pb.encode(d, S)) == b


def test_pb_field_order_is_by_number_not_dict_order():
    a = bytes(pb.encode({"name": "z", "n": 1, "data": b"q"}, S))
    b = bytes(pb.encode({"data": b"q", "n": 1, "name": "z"}, S))
    assert a == b and a[0] == 0x08


def test_pb_unknown_fields_of_every_wire_type_are_skipped():
    extra = (bytes.fromhex("4801")  # field 9 varint
             + bytes.fromhex("510102030405060708")  # field 10 fixed64
             + bytes.fromhex("5a03616263")  # field 11 bytes
             + bytes.fromhex("6501020304"))  # field 12 fixed32
    assert pb.decode(extra + b"\x08\x05", S) == {"n": 5}


def test_pb_wrong_wire_types_rejected():
    # uint sent as bytes, bytes as varint, uint as fixed64/fixed32, message as varint, str as varint
    bad = ["0a0100", "1801", "090102030405060708", "0d01020304", "3008", "2001"]
    for h in bad:
        assert _raises(DecodeError, pb.decode, bytes.fromhex(h), S), h


def test_pb_groups_and_field_zero_rejected():
    for h in ("0b", "0c", "0008", "4b"):
        assert _raises(DecodeError, pb.decode, bytes.fromhex(h), S), h


def test_pb_truncation_anywhere_is_an_error():
    b = bytes(pb.encode({"n": 300, "data": b"abc", "inner": {"x": 1}}, S))
    good_cuts = (3, 8)  # ends of the first and second field
    for k in range(1, len(b)):
        if k in good_cuts:
            pb.decode(b[:k], S)
        else:
            assert _raises(DecodeError, pb.decode, b[:k], S), k
    # a length one past the end (regression: used to be accepted)
    assert _raises(DecodeError, pb.decode, bytes.fromhex("1a0461626364")[:5], S)
    assert _raises(DecodeError, pb.decode, bytes.fromhex("1a04616263"), S)
    assert _raises(DecodeError, pb.decode, bytes.fromhex("0901020304050607"), S)


def test_pb_bool_and_utf8_strict():
    assert _raises(DecodeError, pb.decode, bytes.fromhex("1002"), S)
    assert pb.decode(bytes.fromhex("1000"), S) == {"flag": False}
    assert _raises(DecodeError, pb.decode, bytes.fromhex("2202c328"), S)  # invalid utf-8
    assert _raises(DecodeError, pb.decode, bytes.fromhex("2201ff"), S)


def test_pb_repeated_cap():
    b = bytes(pb.encode({"items": [b"x"] * 5}, S))
    assert len(pb.decode(b, S, 5)["items"]) == 5
    assert _raises(LimitError, pb.decode, b, S, 4)
    nested = bytes(pb.encode({"inner": {"x": 1}, "inners": [{}] * 3}, S))
    assert _raises(LimitError, pb.decode, nested, S, 2)


def test_pb_last_scalar_wins_and_nested_bounds():
    assert pb.decode(bytes.fromhex("08010802"), S) == {"n": 2}
    # nested message whose inner length runs past its own end
    assert _raises(DecodeError, pb.decode, bytes.fromhex("32031203616263"), S)
    # decode a slice of a larger buffer
    buf = b"\xff\xff" + bytes(pb.encode({"n": 7}, S)) + b"\xff"
    assert pb.decode(buf, S, pb.MAX_REPEATED, 2, 4) == {"n": 7}


def test_pb_key_varint_over_32_bits_rejected():
    assert _raises(DecodeError, pb.decode, bytes.fromhex("8080808010"), S)
