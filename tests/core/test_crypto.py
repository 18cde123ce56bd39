# RFC vectors for microp2p.crypto, run against every backend available on this runtime:
# MicroPython: pure (with viper ChaCha20-Poly1305 where the port compiles it, and without);
# CPython: pure, cryptography, pycryptodome.
import sys

from microp2p import crypto
from microp2p.crypto import pure
from microp2p.crypto import sha512_impl as pure_sha512
from microp2p.errors import AuthError, UsageError

import vectors_crypto as V

CPYTHON = sys.implementation.name == "cpython"


def h(s):
    return bytes.fromhex(s)


class _PureNoAccel:
    """The pure backend with the viper accelerator switched off for each call."""
    NAME = "pure-noaccel"

    def __getattr__(self, name):
        fn = getattr(pure, name)

        def call(*args):
            prev = pure.use_accel(False)
            try:
                return fn(*args)
            finally:
                pure.use_accel(prev)
        return call


def backends():
    out = []
    if pure.accel_available():
        out.append(("pure+viper", pure))
        out.append(("pure", _PureNoAccel()))
    else:
        out.append(("pure", pure))
    if CPYTHON:
        from microp2p_host import crypto_native
        for name in ("cryptography", "pycryptodome"):
            try:
                out.append((name, crypto_native.backend(name)))
            except ImportError:
                pass
    return out


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_backends_present():
    names = [n for n, _ in backends()]
    assert "pure" in names
    if CPYTHON:
        assert "cryptography" in names and "pycryptodome" in names


# ------------------------------------------------------------------------------- X25519

def test_x25519_rfc7748_5_2():
    for name, b in backends():
        for k, u, out in V.X25519_52:
            assert b.x25519(h(k), h(u)) == h(out), name


def test_x25519_rfc7748_iterated():
    for name, b in backends():
        # 1000 rounds take ~1 s in pure CPython and several seconds on MicroPython: natives only.
        rounds = 1000 if name in ("cryptography", "pycryptodome") else 1
        k = u = (9).to_bytes(32, "little")
        for i in range(rounds):
            k, u = b.x25519(k, u), k
            if i == 0:
                assert k == h(V.X25519_ITER_1), name
        if rounds == 1000:
            assert k == h(V.X25519_ITER_1000), name


def test_x25519_rfc7748_6_1():
    for name, b in backends():
        assert b.x25519_public(h(V.ALICE_PRIV)) == h(V.ALICE_PUB), name
        assert b.x25519_public(h(V.BOB_PRIV)) == h(V.BOB_PUB), name
        assert b.x25519(h(V.ALICE_PRIV), h(V.BOB_PUB)) == h(V.SHARED), name
        assert b.x25519(h(V.BOB_PRIV), h(V.ALICE_PUB)) == h(V.SHARED), name


def test_x25519_low_order_and_bad_length():
    priv = h(V.ALICE_PRIV)
    p = 2 ** 255 - 19
    low_order = (0, 1, p, p + 1)  # u = 0 and u = 1 (also written as p, p+1): all-zero result
    for name, b in backends():
        for u in low_order:
            assert raises(AuthError, b.x25519, priv, u.to_bytes(32, "little")), (name, u)
        assert raises(AuthError, b.x25519, priv, bytes(31)), name
        assert raises(UsageError, b.x25519, bytes(31), h(V.BOB_PUB)), name


def test_x25519_noncanonical_u_is_reduced():
    # RFC 7748 5: the top bit is masked and u >= p is taken mod p.
    p = 2 ** 255 - 19
    u = int.from_bytes(h(V.BOB_PUB), "little")
    high = (u | (1 << 255)).to_bytes(32, "little")
    for name, b in backends():
        assert b.x25519(h(V.ALICE_PRIV), high) == h(V.SHARED), name
        assert b.x25519(h(V.ALICE_PRIV), (p + 9).to_bytes(32, "little")) == \
            b.x25519(h(V.ALICE_PRIV), (9).to_bytes(32, "little")), name


# ------------------------------------------------------------------------------ Ed25519

def test_ed25519_rfc8032():
    for name, b in backends():
        for seed, pub, msg, sig in V.ED25519:
            assert b.ed25519_public(h(seed)) == h(pub), name
            assert b.ed25519_sign(h(seed), h(msg)) == h(sig), name
            assert b.ed25519_verify(h(pub), h(msg), h(sig)) is True, name


def test_ed25519_rejects_tampering():
    seed, pub, msg, sig = V.ED25519[2]
    pub, msg, sig = h(pub), h(msg), h(sig)
    other_pub = h(V.ED25519[1][1])
    for name, b in backends():
        for i in (0, 31, 32, 63):  # flip a bit in R and in S
            bad = bytearray(sig)
            bad[i] ^= 0x01
            assert b.ed25519_verify(pub, msg, bytes(bad)) is False, (name, i)
        assert b.ed25519_verify(pub, msg + b"\x00", sig) is False, name
        assert b.ed25519_verify(pub, b"\xaf\x83", sig) is False, name
        assert b.ed25519_verify(other_pub, msg, sig) is False, name


def test_ed25519_rejects_s_not_below_l():
    seed, pub, msg, sig = V.ED25519[0]
    pub, msg, sig = h(pub), h(msg), h(sig)
    L = int.from_bytes(h(V.ED25519_L), "little")
    s = int.from_bytes(sig[32:], "little")
    for name, b in backends():
        # S + L satisfies the group equation: only the explicit S < L check rejects it.
        assert b.ed25519_verify(pub, msg, sig[:32] + (s + L).to_bytes(32, "little")) is False, name
        assert b.ed25519_verify(pub, msg, sig[:32] + h(V.ED25519_L)) is False, name
        assert b.ed25519_verify(pub, msg, sig[:32] + b"\xff" * 32) is False, name


def test_ed25519_bad_inputs_return_false():
    seed, pub, msg, sig = V.ED25519[1]
    pub, msg, sig = h(pub), h(msg), h(sig)
    p = 2 ** 255 - 19
    bad_keys = (
        (p + 1).to_bytes(32, "little"),  # non-canonical y
        (2).to_bytes(32, "little"),  # y = 2 is not on the curve
        (1 | (1 << 255)).to_bytes(32, "little"),  # x = 0 with the sign bit set
        b"\xff" * 32,
    )
    for name, b in backends():
        for k in bad_keys:
            assert b.ed25519_verify(k, msg, sig) is False, (name, k)
        assert b.ed25519_verify(pub[:31], msg, sig) is False, name
        assert b.ed25519_verify(pub, msg, sig[:63]) is False, name
        assert b.ed25519_verify(pub, msg, sig + b"\x00") is False, name
        assert b.ed25519_verify(pub, msg, b"") is False, name


def test_ed25519_small_order_key_is_cofactorless():
    # A = y 0 (order 4), R = A, S = 0: SB - kA = R only if k = -1 mod 4. A cofactored verifier
    # accepts it; every backend here uses the cofactorless equation and must say False.
    zero = bytes(32)
    one = (1).to_bytes(32, "little")  # identity
    for name, b in backends():
        assert b.ed25519_verify(zero, b"", zero + zero) is False, name
        # identity key, identity R, S = 0 satisfies both equations for any message
        assert b.ed25519_verify(one, b"any", one + zero) is True, name


def test_ed25519_roundtrip_bytearray_inputs():
    for name, b in backends():
        seed = bytearray(range(32))
        msg = bytearray(b"x" * 300)
        sig = b.ed25519_sign(seed, msg)
        pub = b.ed25519_public(seed)
        assert len(sig) == 64 and len(pub) == 32
        assert b.ed25519_verify(bytearray(pub), msg, bytearray(sig)) is True, name


# ------------------------------------------------------------------------------- hashes

def test_sha256_abc():
    for name, b in backends():
        assert b.sha256(b"abc") == h(V.SHA256_ABC), name


def test_sha512_vectors():
    for name, b in backends():
        for msg, digest in V.SHA512:
            assert b.sha512(msg) == h(digest), name


def test_sha512_pure_incremental_block_edges():
    # The plain-Python SHA-512 (used where hashlib lacks it) across padding edges and splits.
    data = bytes(range(256)) * 2
    for n in (0, 1, 111, 112, 113, 127, 128, 129, 255, 256, 257, 512):
        whole = pure_sha512.sha512(data[:n])
        assert whole == pure.sha512(data[:n]), n
        inc = pure_sha512.Sha512()
        inc.update(data[:n // 3])
        inc.update(b"")
        inc.update(data[n // 3:n // 2])
        inc.update(memoryview(data)[n // 2:n])
        assert inc.digest() == whole, n
    for msg, digest in V.SHA512:
        assert pure_sha512.sha512(msg) == h(digest)


def test_hmac_sha256_rfc4231():
    for name, b in backends():
        for key, data, mac in V.HMAC_SHA256:
            assert b.hmac_sha256(h(key), h(data)) == h(mac), (name, key[:8])
        # Exactly one block of key is used as is; one byte more is hashed first.
        assert b.hmac_sha256(b"k" * 64, b"d") != b.hmac_sha256(b"k" * 65, b"d"), name


def rfc5869_hkdf(hmac_sha256, salt, ikm, info, length):
    prk = hmac_sha256(salt, ikm)
    okm = b""
    t = b""
    i = 1
    while len(okm) < length:
        t = hmac_sha256(prk, t + info + bytes((i,)))
        okm += t
        i += 1
    return prk, okm[:length]


def test_hkdf_rfc5869_case1():
    for name, b in backends():
        prk, okm = rfc5869_hkdf(b.hmac_sha256, h(V.HKDF1_SALT), h(V.HKDF1_IKM),
                                h(V.HKDF1_INFO), 42)
        assert prk == h(V.HKDF1_PRK), name
        assert okm == h(V.HKDF1_OKM), name


def test_noise_hkdf_shape():
    ck = bytes(range(32))
    ikm = b"input key material"
    # Noise HKDF = RFC 5869 with salt = chaining key, empty info: out1 || out2 || out3 == OKM.
    _, okm = rfc5869_hkdf(pure.hmac_sha256, ck, ikm, b"", 96)
    for name, b in backends():
        two = b.hkdf(ck, ikm, 2)
        three = b.hkdf(ck, ikm, 3)
        assert isinstance(two, tuple) and len(two) == 2, name
        assert len(three) == 3 and all(len(x) == 32 for x in three), name
        assert two == three[:2], name
        assert three[0] + three[1] + three[2] == okm, name
        assert b.hkdf(ck, b"", 2) != two, name
        assert raises(UsageError, b.hkdf, ck, ikm, 4), name


# -------------------------------------------------------------------- ChaCha20-Poly1305

def test_chacha20_rfc8439():
    key = bytes(range(32))
    for name, b in backends():
        if not hasattr(pure, "chacha20") or name in ("cryptography", "pycryptodome"):
            continue  # raw ChaCha20/Poly1305 are pure-backend extras
        assert b.chacha20(key, 1, h(V.CHACHA_BLOCK_NONCE), bytes(64)) == h(V.CHACHA_BLOCK_OUT)
        ct = b.chacha20(key, 1, h(V.CHACHA_ENC_NONCE), V.SUNSCREEN)
        assert ct == h(V.CHACHA_ENC_OUT), name
        assert b.chacha20(key, 1, h(V.CHACHA_ENC_NONCE), ct) == V.SUNSCREEN, name


def test_poly1305_rfc8439():
    for name, b in backends():
        if name in ("cryptography", "pycryptodome"):
            continue
        assert b.poly1305(h(V.POLY_KEY), V.POLY_MSG) == h(V.POLY_TAG), name
        # 16-byte multiple and empty messages take the other paths through the block loop.
        assert b.poly1305(h(V.POLY_KEY), V.POLY_MSG[:32]) == pure.poly1305(h(V.POLY_KEY), V.POLY_MSG[:32])
        assert b.poly1305(h(V.POLY_KEY), b"") == h(V.POLY_KEY)[16:], name


def test_aead_rfc8439_2_8_2():
    key = bytes(range(0x80, 0xA0))
    nonce, ad = h(V.AEAD_NONCE), h(V.AEAD_AD)
    expect = h(V.AEAD_CT + V.AEAD_TAG)
    for name, b in backends():
        assert b.aead_encrypt(key, nonce, ad, V.SUNSCREEN) == expect, name
        assert b.aead_decrypt(key, nonce, ad, expect) == V.SUNSCREEN, name


def test_aead_tamper_raises_auth_error():
    key = bytes(range(0x80, 0xA0))
    nonce, ad = h(V.AEAD_NONCE), h(V.AEAD_AD)
    good = h(V.AEAD_CT + V.AEAD_TAG)
    for name, b in backends():
        for i in (0, 57, len(good) - 17, len(good) - 16, len(good) - 1):  # ciphertext and tag
            bad = bytearray(good)
            bad[i] ^= 0x80
            assert raises(AuthError, b.aead_decrypt, key, nonce, ad, bytes(bad)), (name, i)
        assert raises(AuthError, b.aead_decrypt, key, nonce, ad + b"\x00", good), name
        assert raises(AuthError, b.aead_decrypt, key, nonce, b"", good), name
        assert raises(AuthError, b.aead_decrypt, key, b"\x08" + nonce[1:], ad, good), name
        assert raises(AuthError, b.aead_decrypt, bytes(32), nonce, ad, good), name
        assert raises(AuthError, b.aead_decrypt, key, nonce, ad, good[:15]), name
        assert raises(AuthError, b.aead_decrypt, key, nonce, ad, good[:-1]), name
        assert raises(UsageError, b.aead_encrypt, key[:31], nonce, ad, b"x"), name
        assert raises(UsageError, b.aead_encrypt, key, nonce[:8], ad, b"x"), name


def test_aead_lengths_agree_across_backends():
    # Every partial-block shape of AD and plaintext; all backends must produce the same bytes.
    key = bytes(range(7, 39))
    nonce = bytes(range(12))
    data = bytes(range(256)) * 2
    all_b = backends()
    for n in (0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 300):
        for nad in (0, 5, 16, 33):
            ref = None
            for name, b in all_b:
                ct = b.aead_encrypt(key, nonce, data[100:100 + nad], data[:n])
                assert len(ct) == n + 16, name
                if ref is None:
                    ref = ct
                assert ct == ref, (name, n, nad)
                assert b.aead_decrypt(key, nonce, data[100:100 + nad], ct) == data[:n], name
                assert b.aead_decrypt(key, nonce, data[100:100 + nad], bytearray(ct)) == data[:n]


def test_random_bytes():
    for name, b in backends():
        a = b.random_bytes(32)
        assert len(a) == 32 and a != b.random_bytes(32), name
        assert b.random_bytes(0) == b"", name


# ------------------------------------------------------------------- module dispatch

def test_crypto_module_swaps_backend():
    prev_name = crypto.backend_name
    prev = {n: getattr(crypto, n) for n in crypto._NAMES}

    class Fake:
        NAME = "fake"

    fake = Fake()
    for n in crypto._NAMES:
        setattr(fake, n, lambda *a: "fake")
    try:
        crypto.use(fake)
        assert crypto.backend_name == "fake"
        assert crypto.sha256(b"abc") == "fake"
        crypto.use_pure()
        assert crypto.backend_name == "pure"
        assert crypto.sha256(b"abc") == h(V.SHA256_ABC)
        assert crypto.ed25519_verify(h(V.ED25519[0][1]), b"", h(V.ED25519[0][3])) is True
    finally:
        for n in crypto._NAMES:
            setattr(crypto, n, prev[n])
        crypto.backend_name = prev_name


# ------------------------------------------------- viper accelerators (MicroPython with viper)

def _viper_compiles():
    try:
        exec("import micropython\n@micropython.viper\ndef _f(x: int) -> int:\n    return x + 1\n",
             {})
        return True
    except Exception:  # CPython (no micropython module), or a port without the viper emitter
        return False


def test_viper_accelerators_in_use_where_viper_compiles():
    # A failing import self-check would silently fall back to big ints: make that visible.
    if _viper_compiles():
        assert pure._ec_viper is not None
        assert pure._viper is not None
        import hashlib
        if not hasattr(hashlib, "sha512"):
            assert pure._sha512_viper is not None
        assert "viper-curve" in pure.accel_name()
    else:
        assert pure._ec_viper is None and pure._sha512_viper is None


def test_viper_curve_agrees_with_bigint_on_random_inputs():
    if pure._ec_viper is None:
        return
    from microp2p.crypto import curve25519 as C
    ec = pure._ec_viper
    for i in range(12):
        k = crypto.random_bytes(32)
        u = crypto.random_bytes(32)
        assert ec.x25519(k, u) == C.x25519(k, u), i
        assert ec.x25519_base(k) == C.x25519(k, b"\x09" + bytes(31)), i
        s = bytearray(crypto.random_bytes(32))
        s[31] &= 0x7F  # scalars below 2**255 (callers pass them reduced mod L)
        s = bytes(s)
        assert ec.base_mult_encoded(s) == C.encode_point(C.base_mult(int.from_bytes(s, "little")))
    for i in range(6):
        seed = crypto.random_bytes(32)
        msg = crypto.random_bytes(i * 40)
        sig = pure.ed25519_sign(seed, msg)
        pub = pure.ed25519_public(seed)
        prev = pure.use_accel(False)
        try:
            assert pure.ed25519_sign(seed, msg) == sig
            assert pure.ed25519_verify(pub, msg, sig) is True
        finally:
            pure.use_accel(prev)
        assert pure.ed25519_verify(pub, msg, sig) is True
        bad = bytearray(sig)
        bad[i * 7] ^= 4
        assert pure.ed25519_verify(pub, msg, bytes(bad)) is False


def test_viper_sha512_agrees_with_plain():
    if pure._sha512_viper is None:
        return
    for n in (0, 1, 111, 112, 127, 128, 129, 255, 256, 300, 1000):
        d = crypto.random_bytes(n)
        assert pure._sha512_viper(d).digest() == pure_sha512.sha512(d), n
