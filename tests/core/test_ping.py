from microp2p.proto import ping
from microp2p.errors import ProtocolError, DecodeError, UsageError, SCOPE_STREAM


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("expected %s" % exc.__name__)


def test_round_trip_rtt():
    a = ping.PingInitiator()
    b = ping.PingResponder()
    a.ping(1000)
    wire = a.data_to_send()
    assert len(wire) == 32
    assert a.waiting
    assert b.receive(wire) == []
    echo = b.data_to_send()
    assert echo == wire
    assert b.data_to_send() == b""
    assert a.receive(echo, 1042) == [("pong", 42)]
    assert not a.waiting


def test_repeated_pings_same_stream():
    a = ping.PingInitiator()
    b = ping.PingResponder()
    rtts = []
    for i in range(3):
        a.ping(i * 100, bytes([i]) * 32)
        b.receive(a.data_to_send())
        for ev in a.receive(b.data_to_send(), i * 100 + 5 + i):
            rtts.append(ev[1])
    assert rtts == [5, 6, 7]
    assert b.echoed == 3


def test_responder_partial_payloads_buffered():
    b = ping.PingResponder()
    payload = bytes(range(32))
    for i in range(0, 32, 5):
        b.receive(payload[i:i + 5])
        if i + 5 < 32:
            assert b.data_to_send() == b""
    assert b.data_to_send() == payload
    # two payloads and a half in one chunk: two echoes, the half waits
    two = bytes(range(64)) + b"x" * 10
    b.receive(two)
    assert b.data_to_send() == bytes(range(64))
    assert b._fill == 10
    e = _raises(DecodeError, b.receive_eof)
    assert e.scope == SCOPE_STREAM


def test_responder_eof_clean():
    b = ping.PingResponder()
    b.receive(b"\x07" * 32)
    assert b.receive_eof() == [("closed",)]


def test_initiator_split_echo():
    a = ping.PingInitiator()
    a.ping(0, b"\x01" * 32)
    echo = a.data_to_send()
    assert a.receive(echo[:31], 3) == []
    assert a.receive(echo[31:], 9) == [("pong", 9)]


def test_initiator_mismatch_is_stream_error():
    a = ping.PingInitiator()
    a.ping(0)
    sent = a.data_to_send()
    bad = bytes([sent[0] ^ 1]) + sent[1:]
    e = _raises(ProtocolError, a.receive, bad, 5)
    assert e.scope == SCOPE_STREAM


def test_initiator_unsolicited_bytes():
    a = ping.PingInitiator()
    e = _raises(ProtocolError, a.receive, b"\x00", 0)
    assert e.scope == SCOPE_STREAM
    a.ping(0, b"\x02" * 32)
    # the echo plus one extra byte: the pong, then the stray byte is a violation
    e = _raises(ProtocolError, a.receive, b"\x02" * 33, 1)
    assert e.scope == SCOPE_STREAM


def test_initiator_usage_and_timeout():
    a = ping.PingInitiator()
    a.ping(100)
    _raises(UsageError, a.ping, 101)
    _raises(UsageError, ping.PingInitiator().ping, 0, b"short")
    assert a.tick(100 + ping.PING_TIMEOUT_MS - 1) == []
    assert a.tick(100 + ping.PING_TIMEOUT_MS) == [("ping_timeout", ping.PING_TIMEOUT_MS)]
    assert not a.waiting
    a.ping(20000)
    _raises(ProtocolError, a.receive_eof)


def test_constants():
    assert ping.PROTOCOL_ID == "/ipfs/ping/1.0.0"
    from microp2p.io import node   # answers pings before it loads io/ping.py
    assert node.PING == ping.PROTOCOL_ID
    assert ping.PING_SIZE == 32
    assert ping.MAX_OUTBOUND_PING_STREAMS_PER_PEER == 1
    assert ping.MAX_PING_STREAMS_PER_PEER == 2


def test_random_payloads_differ():
    a = ping.PingInitiator()
    a.ping(0)
    p1 = a.data_to_send()
    a.receive(p1, 1)
    a.ping(2)
    p2 = a.data_to_send()
    assert len(p1) == len(p2) == 32 and p1 != p2
