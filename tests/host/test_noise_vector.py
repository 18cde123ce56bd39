# An independent Noise_XX_25519_ChaChaPoly_SHA256 + noise-libp2p payload computation written
# straight from the Noise spec (rev 34, sections 5 and 7.5) on CPython's `cryptography` and
# hmac/hashlib, sharing no code with microp2p. It recomputes the fixed-key vector stored in
# tests/core/noise_vector.py (which the core tests check on both runtimes) and checks the
# microp2p machine against it with every crypto backend available here.
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))
import noise_vector as vec  # noqa: E402

RAW = serialization.Encoding.Raw


def _x_pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        RAW, serialization.PublicFormat.Raw)


def _dh(priv, pub):
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))


def _hkdf2(ck, ikm):
    temp = hmac.new(ck, ikm, hashlib.sha256).digest()
    o1 = hmac.new(temp, b"\x01", hashlib.sha256).digest()
    o2 = hmac.new(temp, o1 + b"\x02", hashlib.sha256).digest()
    return o1, o2


class _Sym:
    def __init__(self):
        name = b"Noise_XX_25519_ChaChaPoly_SHA256"
        assert len(name) == 32
        self.h = name
        self.ck = name
        self.k = None
        self.n = 0
        self.mix_hash(b"")  # empty prologue

    def mix_hash(self, d):
        self.h = hashlib.sha256(self.h + d).digest()

    def mix_key(self, ikm):
        self.ck, self.k = _hkdf2(self.ck, ikm)
        self.n = 0

    def enc(self, pt):
        if self.k is None:
            ct = pt
        else:
            ct = ChaCha20Poly1305(self.k).encrypt(b"\0\0\0\0" + self.n.to_bytes(8, "little"), pt, self.h)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def dec(self, ct):
        if self.k is None:
            pt = ct
        else:
            pt = ChaCha20Poly1305(self.k).decrypt(b"\0\0\0\0" + self.n.to_bytes(8, "little"), ct, self.h)
            self.n += 1
        self.mix_hash(ct)
        return pt


def _pb_len(field, data):
    assert len(data) < 128
    return bytes([(field << 3) | 2, len(data)]) + data


def _payload(identity_seed, static_pub, muxers):
    sk = Ed25519PrivateKey.from_private_bytes(identity_seed)
    pub = sk.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
    key_pb = b"\x08\x01\x12\x20" + pub
    sig = sk.sign(b"noise-libp2p-static-key:" + static_pub)
    ext = b"".join(_pb_len(2, m.encode()) for m in muxers)
    out = _pb_len(1, key_pb) + _pb_len(2, sig)
    if muxers:
        out += _pb_len(4, ext)
    return out


def _frame(m):
    return len(m).to_bytes(2, "big") + m


def reference():
    """(msg1, msg2, msg3, handshake_hash, first initiator->responder transport frame)."""
    i = _Sym()
    r = _Sym()
    i_s_pub = _x_pub(vec.I_STATIC)
    r_s_pub = _x_pub(vec.R_STATIC)
    i_e_pub = _x_pub(vec.I_EPHEMERAL)
    r_e_pub = _x_pub(vec.R_EPHEMERAL)
    # -> e
    i.mix_hash(i_e_pub)
    msg1 = i_e_pub + i.enc(b"")
    r.mix_hash(msg1[:32])
    assert r.dec(msg1[32:]) == b""
    # <- e, ee, s, es
    out = r_e_pub
    r.mix_hash(r_e_pub)
    r.mix_key(_dh(vec.R_EPHEMERAL, i_e_pub))
    out += r.enc(r_s_pub)
    r.mix_key(_dh(vec.R_STATIC, i_e_pub))
    out += r.enc(_payload(vec.R_IDENTITY_SEED, r_s_pub, vec.R_MUXERS))
    msg2 = out
    i.mix_hash(msg2[:32])
    i.mix_key(_dh(vec.I_EPHEMERAL, msg2[:32]))
    rs = i.dec(msg2[32:80])
    assert rs == r_s_pub
    i.mix_key(_dh(vec.I_EPHEMERAL, rs))
    i.dec(msg2[80:])
    # -> s, se
    out = i.enc(i_s_pub)
    i.mix_key(_dh(vec.I_STATIC, r_e_pub))
    out += i.enc(_payload(vec.I_IDENTITY_SEED, i_s_pub, vec.I_MUXERS))
    msg3 = out
    assert r.dec(msg3[:48]) == i_s_pub
    r.mix_key(_dh(vec.R_EPHEMERAL, i_s_pub))
    r.dec(msg3[48:])
    assert i.h == r.h
    k1, k2 = _hkdf2(i.ck, b"")
    assert (k1, k2) == _hkdf2(r.ck, b"")
    ct = ChaCha20Poly1305(k1).encrypt(bytes(12), vec.TRANSPORT_PLAINTEXT, b"")
    return _frame(msg1), _frame(msg2), _frame(msg3), i.h, _frame(ct)


def test_reference_matches_stored_vector():
    m1, m2, m3, h, t = reference()
    assert m1.hex() == vec.MSG1_HEX
    assert m2.hex() == vec.MSG2_HEX
    assert m3.hex() == vec.MSG3_HEX
    assert h.hex() == vec.HANDSHAKE_HASH_HEX
    assert t.hex() == vec.TRANSPORT_I2R_HEX


def _machine_transcript():
    from microp2p.conn import noise
    from microp2p.identity import keys
    i = noise.Handshake(True, keys.Ed25519PrivateKey.from_seed(vec.I_IDENTITY_SEED),
                        muxers=vec.I_MUXERS, static_private=vec.I_STATIC,
                        ephemeral_private=vec.I_EPHEMERAL)
    r = noise.Handshake(False, keys.Ed25519PrivateKey.from_seed(vec.R_IDENTITY_SEED),
                        muxers=vec.R_MUXERS, static_private=vec.R_STATIC,
                        ephemeral_private=vec.R_EPHEMERAL)
    m1 = i.data_to_send()
    r.receive(m1)
    m2 = r.data_to_send()
    i.receive(m2)
    m3 = i.data_to_send()
    r.receive(m3)
    t = bytes(i.transport().encrypt(vec.TRANSPORT_PLAINTEXT))
    assert r.transport().receive(t) == [vec.TRANSPORT_PLAINTEXT]
    return m1, m2, m3, i.handshake_hash, t


def test_machine_matches_reference_on_every_backend():
    from microp2p import crypto
    from microp2p_host import crypto_native
    ref = reference()
    prev = crypto.backend_name
    try:
        names = crypto_native.available()
        assert "pure" in names and "cryptography" in names
        for name in names:
            crypto_native.install(name)
            assert _machine_transcript() == ref, name
    finally:
        crypto_native.install(prev)
