# Multiaddr codec against go-multiaddr's vectors (see vectors_multiaddr.py) and our own.
from microp2p.codec.multiaddr import Multiaddr, SERIAL_CODE
from microp2p.identity.peerid import PeerId
from microp2p.errors import DecodeError
import vectors_multiaddr as V


def _fails(fn, arg):
    try:
        fn(arg)
    except DecodeError:
        return True
    return False


def test_go_succeed_vectors_parse_and_round_trip():
    for s in V.GO_SUCCEED:
        m = Multiaddr.from_string(s)
        again = Multiaddr.from_string(str(m))
        assert again == m, s
        assert Multiaddr.from_bytes(m.to_bytes()) == m, s


def test_go_fail_vectors_raise_decode_error():
    for s in V.GO_FAIL:
        assert _fails(Multiaddr.from_string, s), s


def test_unsupported_protocols_raise_decode_error():
    for s in V.UNSUPPORTED:
        assert _fails(Multiaddr.from_string, s), s


def test_our_strictness_vectors_raise_decode_error():
    for s in V.OUR_FAIL:
        assert _fails(Multiaddr.from_string, s), s


def test_string_to_bytes_vectors():
    for s, h in V.STRING_BYTES:
        m = Multiaddr.from_string(s)
        assert m.to_bytes().hex() == h, (s, m.to_bytes().hex())
        assert str(Multiaddr.from_bytes(bytes.fromhex(h))) == s


def test_canonical_text():
    for s, want in V.CANONICAL:
        assert str(Multiaddr(s)) == want, (s, str(Multiaddr(s)))


def test_round_trip_text_is_identical():
    for s in V.ROUND_TRIP:
        assert str(Multiaddr(s)) == s


def test_bytes_fail_vectors():
    for h in V.BYTES_FAIL:
        assert _fails(Multiaddr.from_bytes, bytes.fromhex(h)), h


def test_every_truncation_of_valid_bytes_fails():
    for s, h in V.STRING_BYTES:
        b = bytes.fromhex(h)
        # A cut at a component boundary is itself a valid (shorter) address.
        ok_cuts = set()
        pos = 0
        m = Multiaddr(b)
        for name, value in m.components():
            pos += len(Multiaddr("/" + name + ("/" + value if value else "")).to_bytes())
            ok_cuts.add(pos)
        for n in range(1, len(b)):
            if n in ok_cuts:
                Multiaddr.from_bytes(b[:n])
            else:
                assert _fails(Multiaddr.from_bytes, b[:n]), (s, n)


def test_trailing_garbage_fails():
    b = Multiaddr("/ip4/1.2.3.4/tcp/80").to_bytes()
    for extra in (b"\x00", b"\x06", b"\x06\x00", b"\x80"):
        assert _fails(Multiaddr.from_bytes, b + extra)


def test_go_dns6_bytes():
    m = Multiaddr.from_bytes(V.DNS6_BYTES)
    assert m.components() == [("dns6", "0" * 42)]
    assert Multiaddr(str(m)) == m


def test_equal_and_hash():
    m1 = Multiaddr("/ip4/127.0.0.1/udp/1234")
    m2 = Multiaddr("/ip4/127.0.0.1/tcp/1234")
    m3 = Multiaddr("/ip4/127.0.0.1/tcp/1234")
    m4 = Multiaddr("/ip4/127.0.0.1/tcp/1234/")
    assert m1 != m2 and not (m1 == m2)
    assert m2 == m3 and m3 == m4 and m4 == m2
    assert m1 == m1
    assert len({m2, m3, m4, m1}) == 2
    assert m1 != "/ip4/127.0.0.1/udp/1234"


def test_value_for_and_components():
    m = Multiaddr("/ip4/0.0.0.0/ip4/1.1.1.1/udp/12345/quic-v1/p2p/" + V.KOOW)
    assert m.value_for("ip4") == "0.0.0.0"
    assert m.value_for("udp") == "12345"
    assert m.value_for("quic-v1") == ""
    assert m.value_for("p2p") == V.KOOW
    assert m.value_for("ipfs") == V.KOOW
    assert m.value_for("ip6") is None
    assert m.value_for("tcp") is None
    assert m.protocols() == ["ip4", "ip4", "udp", "quic-v1", "p2p"]
    assert m.components()[1] == ("ip4", "1.1.1.1")
    assert m.peer_id() == PeerId.from_string(V.KOOW)
    assert Multiaddr("/ip4/1.2.3.4").peer_id() is None


def test_encapsulate_decapsulate():
    m = Multiaddr("/ip4/127.0.0.1/udp/1234")
    b = m.encapsulate(Multiaddr("/udp/5678"))
    assert str(b) == "/ip4/127.0.0.1/udp/1234/udp/5678"
    assert str(m.encapsulate("/p2p-circuit")) == "/ip4/127.0.0.1/udp/1234/p2p-circuit"
    c = b.decapsulate("/udp/5678")
    assert str(c) == "/ip4/127.0.0.1/udp/1234"
    assert c.decapsulate("/ip4/127.0.0.1") is None
    for left, right, want in V.DECAPSULATE:
        got = Multiaddr(left).decapsulate(Multiaddr(right))
        if want is None:
            assert got is None, (left, right)
        else:
            assert str(got) == want, (left, right, str(got))


def test_serial_is_local_private_code():
    m = Multiaddr("/serial/%2Fdev%2FttyUSB0")
    assert m.value_for("serial") == "%2Fdev%2FttyUSB0"
    assert SERIAL_CODE == 0x300001
    # the raw device path travels unescaped in bytes
    assert m.to_bytes().endswith(b"/dev/ttyUSB0")
    assert m.raw_value_for("serial") == b"/dev/ttyUSB0"
    assert m.raw_value_for("tcp") is None
    assert Multiaddr("/ip4/1.2.3.4/tcp/80").raw_value_for("tcp") == b"\x00\x50"
    # a path with spaces and a percent sign survives the round trip
    b = bytes.fromhex("8180c001") + bytes((9,)) + b"/a b%c/d!"
    t = str(Multiaddr.from_bytes(b))
    assert t == "/serial/%2Fa%20b%25c%2Fd!", t
    assert Multiaddr(t).to_bytes() == b


def test_ipfs_and_p2p_are_the_same_bytes():
    a = Multiaddr("/ipfs/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP")
    b = Multiaddr("/p2p/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP")
    assert a == b and a.to_bytes() == b.to_bytes()


def test_non_text_and_non_bytes_inputs():
    assert _fails(Multiaddr.from_string, b"/ip4/1.2.3.4")
    assert _fails(Multiaddr.from_bytes, "/ip4/1.2.3.4")
    assert _fails(Multiaddr.from_string, "/dns/" + "a" * 3000)
    assert _fails(Multiaddr.from_string, "/p2p-circuit" * 40)
