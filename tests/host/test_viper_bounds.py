# The viper crypto (accel_ec: field arithmetic mod 2**255-19, X25519, Ed25519 point ops;
# accel_sha512: SHA-512 over 32-bit halves; accel_viper: ChaCha20/Poly1305) run on CPython through tests/host/viper_harness.py, which checks
# every intermediate against the 32-bit viper word of ESP32/RP2040 (see the harness for the
# rules). Results are compared with RFC vectors and with `cryptography` on random inputs.
import os
import random
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "core"))

import vectors_crypto as V  # noqa: E402
from viper_harness import load_viper_module, INT_MAX, ViperBoundError  # noqa: E402
from microp2p.crypto import pure  # noqa: E402
from microp2p.errors import AuthError  # noqa: E402

CRYPTO = os.path.join(HERE, "..", "..", "firmware", "microp2p", "crypto")
EC, EC_STATS = load_viper_module(os.path.join(CRYPTO, "accel_ec.py"), "accel_ec_checked", True)
AEAD, AEAD_STATS = load_viper_module(os.path.join(CRYPTO, "accel_viper.py"),
                                     "accel_viper_checked", False)
SHA, SHA_STATS = load_viper_module(os.path.join(CRYPTO, "accel_sha512.py"),
                                   "accel_sha512_checked", False)
P = 2 ** 255 - 19
RNG = random.Random(20261201)


def h(s):
    return bytes.fromhex(s)


def with_checked_curve(fn):
    prev = pure.set_curve_module(EC)
    try:
        return fn()
    finally:
        pure.set_curve_module(prev)


# ------------------------------------------------------------------ field ops, one at a time

def _set_limbs(slot, limbs):
    for i, v in enumerate(limbs):
        EC._w[slot * 20 + i] = v


def _value(slot):
    return sum(EC._w[slot * 20 + i] << (13 * i) for i in range(20))


def _carried(slot):
    return all(0 <= EC._w[slot * 20 + i] <= EC.LIMB_MAX for i in range(20))


def _random_limbs(kind):
    if kind == "max":
        return [EC.LIMB_MAX] * 20
    if kind == "zero":
        return [0] * 20
    if kind == "p":
        return [(P >> (13 * i)) & 0x1FFF for i in range(20)]
    return [RNG.randint(0, EC.LIMB_MAX) for _ in range(20)]


KINDS = ("max", "zero", "p") + ("random",) * 97


def test_field_ops_bounds_and_values():
    # Every op on every mix of extreme and random carried inputs (100 x 100 pairs sampled):
    # the result is right mod p and carried again (all limbs <= LIMB_MAX), no bound violated.
    ops = ((EC.MUL, lambda a, b: a * b), (EC.SQR, lambda a, b: a * a),
           (EC.ADD, lambda a, b: a + b), (EC.SUB, lambda a, b: a - b),
           (EC.A24, lambda a, b: a + 121665 * b), (EC.COPY, lambda a, b: a),
           (EC.ADDSUB, lambda a, b: a + b))
    n = 0
    for ka in KINDS:
        for kb in RNG.sample(KINDS, 4) + ["max"]:
            la, lb = _random_limbs(ka), _random_limbs(kb)
            for op, ref in ops:
                _set_limbs(5, la)
                _set_limbs(6, lb)
                a, b = _value(5), _value(6)
                EC._run_p(EC._prog([(op, 7, 5, 6)]))
                assert _value(7) % P == ref(a, b) % P, (op, ka, kb)
                assert _carried(7), (op, ka, kb)
                if op == EC.ADDSUB:  # and slot 8 = a - b
                    assert _value(8) % P == (a - b) % P and _carried(8), (ka, kb)
                n += 1
    assert n >= 3000
    # in place (dst = a = b) and repeated squaring
    _set_limbs(5, _random_limbs("max"))
    a = _value(5)
    EC._run_p(EC._prog([(EC.MUL, 5, 5, 5), (EC.SQRN, 5, 5, 7)]))
    assert _value(5) % P == pow(a, 2 ** 8, P) and _carried(5)


def test_ladder_ops_bounds_and_values():
    # LADDER_IN (the masked input swap and x2 +- z2, x3 +- z3 in one pass), CSWAP and LOOP on
    # extreme and random carried inputs, both swap masks.
    k = bytes(RNG.getrandbits(8) for _ in range(32))
    for kinds in [("max",) * 4, ("zero", "max", "p", "max")] + [("random",) * 4] * 20:
        for u, prev in ((9, 0), (9, 1), (10, 0), (10, 1), (0, 1)):
            limbs = [_random_limbs(kd) for kd in kinds]
            for i in range(4):
                _set_limbs(1 + i, limbs[i])
            x2, z2, x3, z3 = (_value(1 + i) for i in range(4))
            EC._ladder_state(EC._w, 16, k)
            EC._w[320] = u
            EC._w[321] = prev
            bit = (k[(u - 1) >> 3] >> ((u - 1) & 7)) & 1 if u else 0
            if bit ^ prev:
                x2, z2, x3, z3 = x3, z3, x2, z2
            EC._run_p(EC._prog([(EC.LADDER_IN, 5, 1, 16)]))
            want = (x2 + z2, x2 - z2, x3 + z3, x3 - z3)
            for i in range(4):
                assert _value(5 + i) % P == want[i] % P and _carried(5 + i), (kinds, u, i)
            assert EC._w[321] == bit
            EC._w[321] = prev
            EC._run_p(EC._prog([(EC.CSWAP, 1, 3, 16)]))
            assert [_value(1 + i) for i in range(4)] == [x2, z2, x3, z3]
    # LOOP: u counts down, jumping back while u > 0
    EC._w[320] = 3
    _set_limbs(5, [1] + [0] * 19)
    EC._run_p(EC._prog([(EC.ADD, 5, 5, 5), (EC.LOOP, 0, 0, 16)]))
    assert _value(5) == 8 and EC._w[320] == 0
    EC._run_p(EC._prog([(EC.LOOP, 0, 0, 16), (EC.LOOP, 1, 0, 16)]))  # u stays 0: no jump
    assert EC._w[320] == 0


def test_pack_unpack_canonical():
    out = bytearray(32)
    for kind in KINDS * 3:
        limbs = _random_limbs(kind)
        _set_limbs(9, limbs)
        v = _value(9)
        EC._pack(EC._w, 9, out)
        assert int.from_bytes(out, "little") == v % P, kind
    # values just below / at / above p and 2**255 - 1 unpack and pack canonically
    for x in (0, 1, P - 1, P, P + 1, 2 ** 255 - 1, RNG.getrandbits(256)):
        EC._unpack(EC._w, 9, (x % 2 ** 256).to_bytes(32, "little"))
        EC._pack(EC._w, 9, out)
        assert int.from_bytes(out, "little") == (x % 2 ** 255) % P


def test_field_max_intermediate_below_2_31():
    assert 0 < EC_STATS.max_int <= INT_MAX
    assert EC_STATS.min_int >= -(1 << 31)


# ----------------------------------------------------------------------------------- X25519

def _x25519_checked(k, u):
    return with_checked_curve(lambda: pure.x25519(k, u))


def test_x25519_rfc7748_vectors_checked():
    for k, u, out in V.X25519_52:
        assert _x25519_checked(h(k), h(u)) == h(out)
    nine = (9).to_bytes(32, "little")
    assert _x25519_checked(nine, nine) == h(V.X25519_ITER_1)
    assert with_checked_curve(lambda: pure.x25519_public(h(V.ALICE_PRIV))) == h(V.ALICE_PUB)
    assert _x25519_checked(h(V.BOB_PRIV), h(V.ALICE_PUB)) == h(V.SHARED)


def test_x25519_low_order_checked():
    for u in (0, 1, P, P + 1):
        try:
            _x25519_checked(h(V.ALICE_PRIV), u.to_bytes(32, "little"))
            assert False, u
        except AuthError:
            pass


def test_x25519_random_against_cryptography():
    from cryptography.hazmat.primitives import serialization
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    for _ in range(6):
        a = X25519PrivateKey.generate()
        b = X25519PrivateKey.generate()
        ka = a.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
        pb = b.public_key().public_bytes(*raw)
        assert _x25519_checked(ka, pb) == a.exchange(X25519PublicKey.from_public_bytes(pb))
    for _ in range(3):  # the fixed-base path of x25519_public against the ladder
        k = os.urandom(32)
        assert EC.x25519_base(k) == pure._c.x25519(k, b"\x09" + bytes(31))
    for _ in range(4):  # arbitrary (non-curve, high-bit, >= p) u values
        k, u = os.urandom(32), os.urandom(32)
        assert EC.x25519(k, u) == pure._c.x25519(k, u)


# ---------------------------------------------------------------------------------- Ed25519

def test_ed25519_rfc8032_checked():
    def run():
        for seed, pub, msg, sig in V.ED25519[:3]:
            pure._expanded_seed = None  # force the public key through the checked code
            assert pure.ed25519_public(h(seed)) == h(pub)
            assert pure.ed25519_sign(h(seed), h(msg)) == h(sig)
            assert pure.ed25519_verify(h(pub), h(msg), h(sig)) is True
            bad = bytearray(h(sig))
            bad[5] ^= 0x10
            assert pure.ed25519_verify(h(pub), h(msg), bytes(bad)) is False
            bad = bytearray(h(sig))
            bad[40] ^= 0x01  # S
            assert pure.ed25519_verify(h(pub), h(msg), bytes(bad)) is False
            assert pure.ed25519_verify(h(pub), h(msg) + b"x", h(sig)) is False
            badpub = bytearray(h(pub))
            badpub[0] ^= 2
            assert pure.ed25519_verify(bytes(badpub), h(msg), h(sig)) is False
    with_checked_curve(run)
    pure._expanded_seed = None


def test_base_mult_extreme_scalars_checked():
    # signed-digit recoding at its edges: 0, 1, 7, 8, L - 1, 2**252 + 8..., 2**255 - 1
    from microp2p.crypto import curve25519 as C
    L = C.L
    for s in (0, 1, 7, 8, 9, 15, 16, 0x88888888, L - 1, L, 2 ** 252 - 1, 2 ** 255 - 1,
              int("78" * 31 + "7f", 16), int("7" + "8" * 63, 16), 2 ** 255 - 2 ** 251):
        sb = s.to_bytes(32, "little")
        assert EC.base_mult_encoded(sb) == C.encode_point(C.base_mult(s)), hex(s)
    try:
        EC.base_mult_encoded((2 ** 255).to_bytes(32, "little"))
        assert False
    except ValueError:
        pass


def test_wnaf_digits_and_extreme_verify_scalars_checked():
    # width-5 wNAF: sum d_i 2**i == s, digits 0 or odd with |d| <= 15, four zeros after each
    # nonzero one, the top position returned; both bytes of the packed words
    from microp2p.crypto import curve25519 as C
    L = C.L
    edge = [0, 1, 15, 16, 17, 31, 32, L - 1, L, 2 ** 252, 2 ** 253 - 1, 2 ** 255 - 1,
            int("1f" * 32, 16) >> 1, int("f0" * 32, 16) >> 1, int("10" * 32, 16)]
    scalars = edge + [RNG.getrandbits(255) for _ in range(20)]
    for a, b in zip(scalars, scalars[1:] + scalars[:1]):
        top_a = EC._wnaf(EC._w, 0, a.to_bytes(32, "little"), 0)
        top_b = EC._wnaf(EC._w, 0, b.to_bytes(32, "little"), 8)
        for x, sh, top in ((a, 0, top_a), (b, 8, top_b)):
            d = [((EC._w[1 + i] >> sh) & 0xFF) - 16 for i in range(256)]
            assert sum(v << i for i, v in enumerate(d)) == x, hex(x)
            nz = [i for i, v in enumerate(d) if v]
            assert all(d[i] & 1 and abs(d[i]) <= 15 for i in nz)
            assert all(j - i >= 5 for i, j in zip(nz, nz[1:]))
            assert top == (nz[-1] + 1 if nz else 0)
    # verify's Straus loop with extreme public scalars against the big-int reference
    pub = h(V.ED25519[0][1])
    A = C.decode_point(pub)
    for sv, kv in ((0, 0), (1, 0), (0, 1), (L - 1, L - 1), (2 ** 253 - 1, 1),
                   (int("1f" * 32, 16) >> 3, int("f0" * 32, 16) >> 3)):
        want = C.encode_point(C.double_mult(sv, kv, C.negate(A)))
        sb, kb = sv.to_bytes(32, "little"), kv.to_bytes(32, "little")
        assert EC.double_mult_encoded_eq(sb, kb, pub, want), (hex(sv), hex(kv))
        assert not EC.double_mult_encoded_eq(sb, kb, pub, bytes(32))


def test_ed25519_decode_edge_cases_checked():
    def run():
        sig = h(V.ED25519[0][3])
        msg = b""
        # non-canonical y (>= p), and a y with no x on the curve, are rejected
        for y in (P, P + 1, 2 ** 255 - 1, 2):
            assert pure.ed25519_verify(y.to_bytes(32, "little"), msg, sig) is False
        # x = 0 with the sign bit set (y = 1 encodes the identity; -0 is invalid)
        assert pure.ed25519_verify((1 | (1 << 255)).to_bytes(32, "little"), msg, sig) is False
    with_checked_curve(run)


def test_ed25519_random_against_cryptography():
    from cryptography.hazmat.primitives import serialization
    for i in range(3):
        sk = Ed25519PrivateKey.generate()
        seed = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        msg = os.urandom(RNG.randint(0, 200))
        want_pub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)

        def run():
            pure._expanded_seed = None
            assert pure.ed25519_public(seed) == want_pub
            sig = pure.ed25519_sign(seed, msg)
            assert sig == sk.sign(msg)
            assert pure.ed25519_verify(want_pub, msg, sig) is True
            bad = bytearray(sig)
            bad[RNG.randrange(64)] ^= 1 << RNG.randrange(8)
            assert pure.ed25519_verify(want_pub, msg, bytes(bad)) is False
        with_checked_curve(run)
    pure._expanded_seed = None


# ------------------------------------------------------------------------ ChaCha20-Poly1305

def test_aead_viper_checked_against_cryptography():
    for n in (0, 1, 15, 16, 17, 63, 64, 65, 200, 1000):
        key, nonce = os.urandom(32), os.urandom(12)
        ad = os.urandom(RNG.randint(0, 40))
        pt = os.urandom(n)
        out = bytearray(n + 16)
        AEAD.aead_seal(key, nonce, ad, pt, out, n)
        assert bytes(out) == ChaCha20Poly1305(key).encrypt(nonce, pt, ad)
        back = bytearray(n)
        assert AEAD.aead_open(key, nonce, ad, bytes(out), back, n) and bytes(back) == pt
    assert AEAD.self_test()
    # block counter wrap region and raw poly1305 with a short tail
    AEAD.chacha20_xor(bytes(32), 0xFFFFFFFF, bytes(12), bytes(130), bytearray(130), 130)
    assert AEAD.poly1305(h(V.POLY_KEY), V.POLY_MSG if isinstance(V.POLY_MSG, bytes)
                         else h(V.POLY_MSG)) == h(V.POLY_TAG)


# ---------------------------------------------------------------------------------- SHA-512

def test_sha512_viper_checked_vectors_and_random():
    import hashlib
    for msg, want in V.SHA512:
        assert SHA.sha512(msg) == h(want)
    assert SHA.self_test()
    for n in list(range(0, 260, 1)) + [1000, 4096]:
        d = os.urandom(n)
        assert SHA.sha512(d) == hashlib.sha512(d).digest(), n
    x = SHA.Sha512()
    for part in (b"a" * 5, b"b" * 123, b"", b"c" * 300):
        x.update(part)
    assert x.digest() == hashlib.sha512(b"a" * 5 + b"b" * 123 + b"c" * 300).digest()
    assert x.digest() == x.digest()  # digest() does not finalize


def test_sha512_in_ed25519_sign_checked():
    # Ed25519 with both the checked SHA-512 and the checked field code (RFC 8032 test 2).
    seed, pub, msg, sig = V.ED25519[1]
    prev_sha = pure._sha512_new
    pure._sha512_new = SHA.Sha512
    try:
        def run():
            pure._expanded_seed = None
            assert pure.ed25519_sign(h(seed), h(msg)) == h(sig)
            assert pure.ed25519_verify(h(pub), h(msg), h(sig)) is True
        with_checked_curve(run)
    finally:
        pure._sha512_new = prev_sha
        pure._expanded_seed = None


# ----------------------------------------------------------------------------- the harness

def test_harness_catches_overflow():
    # A 13-bit-limb product column with limbs far above LIMB_MAX must trip the bound.
    _set_limbs(5, [60000] * 20)
    try:
        EC._run_p(EC._prog([(EC.MUL, 7, 5, 5)]))
        assert False, "no bound error"
    except ViperBoundError:
        pass
    _set_limbs(5, [0] * 20)


def test_every_viper_function_exercised():
    # Last in this file: the tests above called every viper function of both modules.
    for mod in (EC, AEAD, SHA):
        missing = [n for n, c in mod.VIPER_CALLS.items() if c == 0]
        assert not missing, missing
        assert len(mod.VIPER_CALLS) >= 1
