# conn.upgrade: the whole connection upgrade (multistream → Noise XX → muxer) as one sans-IO
# machine, two of them wired back to back, on every runtime.
from microp2p.conn import yamux
from microp2p.conn.upgrade import Upgrade, YAMUX
from microp2p.errors import AuthError, ProtocolError
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from pairs import MachinePair


def _keys():
    a = Ed25519PrivateKey.from_seed(b"\x01" * 32)
    b = Ed25519PrivateKey.from_seed(b"\x02" * 32)
    return a, b


def _pair(chunk=0, early_a=True, early_b=True, expected=None):
    ka, kb = _keys()
    exp = PeerId.from_public_key(kb.public_key) if expected is None else expected
    a = Upgrade(True, ka, exp, early=early_a)
    b = Upgrade(False, kb, early=early_b)
    return ka, kb, a, b, MachinePair(a, b, chunk)


def test_early_muxer_both_sides():
    ka, kb, a, b, p = _pair()
    ea, eb = p.pump()
    assert a.done and b.done
    assert ea == [("upgraded",)] and eb == [("upgraded",)]
    assert a.muxer == YAMUX and b.muxer == YAMUX
    assert a.muxer_negotiation == "early" and b.muxer_negotiation == "early"
    assert a.remote_peer == PeerId.from_public_key(kb.public_key)
    assert b.remote_peer == PeerId.from_public_key(ka.public_key)
    # the transports are paired: what one encrypts the other opens
    assert b.transport.receive(a.transport.encrypt(b"hello")) == [b"hello"]
    assert a.transport.receive(b.transport.encrypt(b"back")) == [b"back"]


def test_multistream_muxer_when_one_side_offers_none_early():
    for early_a, early_b in ((False, True), (True, False), (False, False)):
        ka, kb, a, b, p = _pair(early_a=early_a, early_b=early_b)
        p.pump()
        assert a.done and b.done, (early_a, early_b)
        assert a.muxer == YAMUX and b.muxer == YAMUX
        assert a.muxer_negotiation == "multistream" and b.muxer_negotiation == "multistream"
        assert b.transport.receive(a.transport.encrypt(b"x")) == [b"x"]


def test_one_byte_at_a_time():
    for early in (True, False):
        ka, kb, a, b, p = _pair(chunk=1, early_a=early, early_b=early)
        p.pump()
        assert a.done and b.done and a.muxer == YAMUX and b.muxer == YAMUX


def test_muxer_bytes_sent_right_after_the_upgrade_reach_pending():
    # a lazy dialer: its first yamux frame travels in the same write as its muxer proposal
    ka, kb, a, b, p = _pair(early_a=False, early_b=False)
    session = yamux.Session(True)
    session.open_stream()
    lazy = False
    for _ in range(20):
        da = a.data_to_send()
        if a.transport is not None and not lazy:
            da += a.transport.encrypt(session.data_to_send())
            lazy = True
        if da and not b.done:
            b.receive(da)
        db = b.data_to_send()
        if db and not a.done:
            a.receive(db)
        if a.done and b.done:
            break
    assert lazy and a.done and b.done
    server = yamux.Session(False)
    events = []
    for chunk in b.pending:
        events.extend(server.receive(chunk))
    assert [e[0] for e in events] == ["stream_opened"]


def test_wrong_expected_peer_fails_with_auth_error():
    other = PeerId.from_public_key(Ed25519PrivateKey.from_seed(b"\x03" * 32).public_key)
    ka, kb, a, b, p = _pair(expected=other)
    try:
        p.pump()
    except AuthError:
        pass
    else:
        raise AssertionError("the dialer accepted the wrong peer")
    assert not a.done


def test_garbage_instead_of_multistream_is_a_protocol_error():
    ka, kb = _keys()
    b = Upgrade(False, kb)
    try:
        b.receive(b"\x13/multistream/2.0.0\n" + b"\x00" * 64)
    except ProtocolError:
        pass
    else:
        raise AssertionError("garbage accepted")


def test_feeding_after_done_is_our_misuse():
    from microp2p.errors import UsageError
    ka, kb, a, b, p = _pair()
    p.pump()
    try:
        a.receive(b"more")
    except UsageError:
        pass
    else:
        raise AssertionError("receive after done must be refused")
