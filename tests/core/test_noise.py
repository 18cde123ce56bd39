# noise-libp2p handshake + transport machines. Handshakes are costly on MicroPython's pure
# crypto, so this file runs about ten of them; transport-only tests build Transports directly.
from microp2p.conn import noise
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.errors import ProtocolError, DecodeError, LimitError, AuthError, UsageError
from pairs import raises

import noise_vector as vec

_KEYS = {}


def _identity(n):
    k = _KEYS.get(n)
    if k is None:
        k = keys.Ed25519PrivateKey.from_seed(bytes([n]) * 32)
        _KEYS[n] = k
    return k


def _peer(n):
    return PeerId.from_public_key(_identity(n).public_key)


class _Lcg:
    # A tiny deterministic generator: same chunking on both runtimes.
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x % n


def _feed_chunked(machine, data, rng, max_chunk):
    events = []
    pos = 0
    while pos < len(data):
        step = 1 + rng.below(max_chunk)
        events.extend(machine.receive(data[pos:pos + step]))
        pos += step
    return events


def _run(i, r, rng=None, max_chunk=7):
    """Pump two handshakes until quiet; returns (events of i, events of r)."""
    ev_i = []
    ev_r = []
    for _ in range(4):
        di = i.data_to_send()
        if di:
            ev_r.extend(_feed_chunked(r, di, rng, max_chunk) if rng else r.receive(di))
        dr = r.data_to_send()
        if dr:
            ev_i.extend(_feed_chunked(i, dr, rng, max_chunk) if rng else i.receive(dr))
        if not di and not dr:
            break
    return ev_i, ev_r


def _transport_pair():
    k1 = bytes(range(32))
    k2 = bytes(range(32, 64))
    return noise.Transport(k1, k2), noise.Transport(k2, k1)


# ------------------------------------------------------------------------------- handshakes

def test_handshake_muxers_and_transport():
    yamux = "/yamux/1.0.0"
    mplex = "/mplex/6.7.0"
    # initiator prefers yamux, responder prefers mplex: the initiator's order decides
    i = noise.Handshake(True, _identity(1), remote_peer=_peer(2), muxers=(yamux, mplex))
    r = noise.Handshake(False, _identity(2), muxers=(mplex, yamux))
    msg1 = i.data_to_send()
    assert len(msg1) == 2 + 32 and msg1[:2] == b"\x00\x20"
    assert i.data_to_send() == b""
    assert r.receive(msg1) == []
    msg2 = r.data_to_send()
    ev_i = i.receive(msg2)
    assert ev_i == [("handshake_complete", _peer(2), [mplex, yamux])]
    assert i.complete and not r.complete
    assert i.muxer == yamux
    ti = i.transport()
    # the initiator's first transport frame rides in the same write as msg 3
    wire = i.data_to_send() + ti.encrypt(b"hello")
    ev_r = r.receive(wire)
    assert ev_r == [("handshake_complete", _peer(1), [yamux, mplex]), ("data", b"hello")]
    assert r.muxer == yamux
    assert r.remote_peer == _peer(1) and i.remote_peer == _peer(2)
    assert i.handshake_hash == r.handshake_hash and len(i.handshake_hash) == 32
    tr = r.transport()
    assert ti.receive(tr.encrypt(b"world")) == [b"world"]
    # a message larger than one frame is split and each frame decrypts on its own
    big = bytes(range(256)) * 260  # 66560 bytes > 65519
    wire = tr.encrypt(big)
    assert len(wire) == len(big) + 2 * (2 + 16)
    assert (wire[0] << 8) | wire[1] == 65535
    got = ti.receive(wire)
    assert [len(c) for c in got] == [noise.MAX_PLAINTEXT, len(big) - noise.MAX_PLAINTEXT]
    assert b"".join(got) == big
    # a tampered transport frame fails authentication
    frame = bytearray(ti.encrypt(b"x" * 10))
    frame[5] ^= 0x40
    raises(AuthError, tr.receive, bytes(frame))
    raises(UsageError, noise.Handshake(False, _identity(2)).transport)


def test_random_chunking_and_muxer_order_swapped():
    yamux = "/yamux/1.0.0"
    mplex = "/mplex/6.7.0"
    i = noise.Handshake(True, _identity(1), muxers=(mplex, yamux))
    r = noise.Handshake(False, _identity(2), muxers=(yamux, mplex))
    ev_i, ev_r = _run(i, r, _Lcg(7), 9)
    assert [e[0] for e in ev_i] == ["handshake_complete"]
    assert [e[0] for e in ev_r] == ["handshake_complete"]
    assert i.muxer == mplex and r.muxer == mplex
    ti = i.transport()
    tr = r.transport()
    rng = _Lcg(11)
    payload = bytes(range(200)) * 5
    wire = ti.encrypt(payload[:300]) + ti.encrypt(payload[300:])
    chunks = _feed_chunked(tr, wire, rng, 40)
    assert b"".join(chunks) == payload and len(chunks) == 2
    # a byte at a time, including the 2-byte header split
    wire = tr.encrypt(b"abc")
    got = []
    for k in range(len(wire)):
        got.extend(ti.receive(wire[k:k + 1]))
    assert got == [b"abc"]


def test_no_muxers_means_multistream_and_disjoint_fails():
    i = noise.Handshake(True, _identity(1), muxers=("/yamux/1.0.0",))
    r = noise.Handshake(False, _identity(2))
    ev_i, ev_r = _run(i, r)
    assert ev_i == [("handshake_complete", _peer(2), [])]
    assert ev_r == [("handshake_complete", _peer(1), ["/yamux/1.0.0"])]
    assert i.muxer is None and r.muxer is None
    i = noise.Handshake(True, _identity(1), muxers=("/yamux/1.0.0",))
    r = noise.Handshake(False, _identity(2), muxers=("/mplex/6.7.0",))
    r.receive(i.data_to_send())
    e = raises(ProtocolError, i.receive, r.data_to_send())
    assert not isinstance(e, AuthError)
    raises(UsageError, i.receive, b"\x00")   # a failed machine stays failed


def test_wrong_remote_peer():
    i = noise.Handshake(True, _identity(1), remote_peer=_peer(3))
    r = noise.Handshake(False, _identity(2))
    r.receive(i.data_to_send())
    raises(AuthError, i.receive, r.data_to_send())
    assert i.data_to_send() == b""   # no msg 3 after a failure


def test_forged_identity_sig_and_cached_static():
    static, sig = noise.make_static(_identity(2))
    # a signature made for another static key (or by another identity) does not verify
    other_static, other_sig = noise.make_static(_identity(2))
    i = noise.Handshake(True, _identity(1))
    r = noise.Handshake(False, _identity(2), static_private=static, identity_sig=other_sig)
    r.receive(i.data_to_send())
    raises(AuthError, i.receive, r.data_to_send())
    # the cached pair itself is good, and the responder's msg 3 check catches a forged initiator
    i = noise.Handshake(True, _identity(1), static_private=other_static,
                        identity_sig=_identity(3).sign(noise.SIG_PREFIX + bytes(32)))
    r = noise.Handshake(False, _identity(2), static_private=static, identity_sig=sig)
    r.receive(i.data_to_send())
    assert i.receive(r.data_to_send())[0][0] == "handshake_complete"
    raises(AuthError, r.receive, i.data_to_send())
    raises(UsageError, noise.Handshake, True, _identity(1), None, (), None, sig)


def test_tampered_msg2_and_msg3():
    i = noise.Handshake(True, _identity(1))
    r = noise.Handshake(False, _identity(2))
    r.receive(i.data_to_send())
    msg2 = bytearray(r.data_to_send())
    msg2[2 + 32 + 5] ^= 1          # inside the encrypted static key
    raises(AuthError, i.receive, bytes(msg2))
    i = noise.Handshake(True, _identity(1))
    r = noise.Handshake(False, _identity(2))
    r.receive(i.data_to_send())
    i.receive(r.data_to_send())
    msg3 = bytearray(i.data_to_send())
    msg3[-3] ^= 0x80               # inside the payload's tag
    raises(AuthError, r.receive, bytes(msg3))


def test_garbage_after_msg3_fails_to_decrypt():
    i = noise.Handshake(True, _identity(1))
    r = noise.Handshake(False, _identity(2))
    r.receive(i.data_to_send())
    i.receive(r.data_to_send())
    wire = i.data_to_send() + b"\x00\x11" + b"\x55" * 17
    raises(AuthError, r.receive, wire)


def test_deterministic_vector():
    # Both sides' identity, static and ephemeral keys fixed: every byte is determined. The
    # expected values come from an independent Noise implementation on CPython's
    # `cryptography` (tests/host/test_noise_vector.py recomputes them).
    i = noise.Handshake(True, keys.Ed25519PrivateKey.from_seed(vec.I_IDENTITY_SEED),
                        muxers=vec.I_MUXERS, static_private=vec.I_STATIC,
                        ephemeral_private=vec.I_EPHEMERAL)
    r = noise.Handshake(False, keys.Ed25519PrivateKey.from_seed(vec.R_IDENTITY_SEED),
                        muxers=vec.R_MUXERS, static_private=vec.R_STATIC,
                        ephemeral_private=vec.R_EPHEMERAL)
    msg1 = i.data_to_send()
    r.receive(msg1)
    msg2 = r.data_to_send()
    i.receive(msg2)
    msg3 = i.data_to_send()
    r.receive(msg3)
    assert msg1.hex() == vec.MSG1_HEX
    assert msg2.hex() == vec.MSG2_HEX
    assert msg3.hex() == vec.MSG3_HEX
    assert i.handshake_hash.hex() == vec.HANDSHAKE_HASH_HEX
    assert r.handshake_hash.hex() == vec.HANDSHAKE_HASH_HEX
    assert bytes(i.transport().encrypt(vec.TRANSPORT_PLAINTEXT)).hex() == vec.TRANSPORT_I2R_HEX


# ------------------------------------------------------------------------------- no crypto

def test_oversized_handshake_frame():
    r = noise.Handshake(False, _identity(2))
    n = noise.MAX_HANDSHAKE_FRAME + 1
    e = raises(LimitError, r.receive, bytes((n >> 8, n & 0xFF)))
    assert e.scope == 2
    # split header: rejected as soon as both length bytes are in
    r = noise.Handshake(False, _identity(2))
    assert r.receive(b"\xff") == []
    raises(LimitError, r.receive, b"\xff")


def test_short_handshake_messages():
    r = noise.Handshake(False, _identity(2))
    raises(DecodeError, r.receive, b"\x00\x05abcde")
    i = noise.Handshake(True, _identity(1))
    raises(DecodeError, i.receive, b"\x00\x20" + bytes(32))


def test_low_order_ephemeral_rejected():
    r = noise.Handshake(False, _identity(2))
    # the all-zero point is of low order: its DH output is zero
    raises(AuthError, r.receive, b"\x00\x20" + bytes(32))


def test_transport_partial_frames_and_many():
    a, b = _transport_pair()
    wire = bytearray()
    for k in range(20):
        wire += a.encrypt(bytes([k]) * (k + 1))
    out = []
    pos = 0
    step = 1
    while pos < len(wire):
        out.extend(b.receive(bytes(wire[pos:pos + step])))
        pos += step
        step = step % 23 + 1
    assert out == [bytes([k]) * (k + 1) for k in range(20)]
    assert b._fill == 0


def test_transport_empty_and_tamper_and_short():
    a, b = _transport_pair()
    assert a.encrypt(b"") == b""
    raises(AuthError, b.receive, b"\x00\x0f" + bytes(15))
    a, b = _transport_pair()
    raises(AuthError, b.receive, b"\x00\x10" + bytes(16))
    # reordering frames fails too (nonces are implicit)
    a, b = _transport_pair()
    f1 = a.encrypt(b"one")
    f2 = a.encrypt(b"two")
    raises(AuthError, b.receive, f2 + f1)


def test_nonce_exhaustion():
    a, b = _transport_pair()
    a._set_nonces(noise.MAX_NONCE - 1, 0)
    b._set_nonces(0, noise.MAX_NONCE - 1)
    assert b.receive(a.encrypt(b"last")) == [b"last"]
    raises(LimitError, a.encrypt, b"one too many")
    a2, b2 = _transport_pair()
    b2._set_nonces(0, noise.MAX_NONCE)
    raises(LimitError, b2.receive, a2.encrypt(b"x"))


def test_nonce_carry():
    a, b = _transport_pair()
    a._set_nonces(255, 0)
    b._set_nonces(0, 255)
    assert b.receive(a.encrypt(b"p") + a.encrypt(b"q")) == [b"p", b"q"]
    assert bytes(a._send_nonce) == b"\x00" * 4 + (257).to_bytes(8, "little")
