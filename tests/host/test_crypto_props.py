# Property tests: every crypto backend (pure, cryptography, pycryptodome) gives identical results
# on random inputs, including the same verdicts on tampered data.
from hypothesis import given, settings, strategies as st

from microp2p.errors import AuthError
from microp2p_host import crypto_native

BACKENDS = [(n, crypto_native.backend(n)) for n in crypto_native.NAMES]
# The pure backend costs ~1-3 ms per curve operation on CPython; keep example counts modest.
CURVE = settings(max_examples=40, deadline=None)
FAST = settings(max_examples=100, deadline=None)

b32 = st.binary(min_size=32, max_size=32)


def outcome(fn, *args):
    """The result, or the exception type: backends must agree on failures too."""
    try:
        return fn(*args)
    except AuthError:
        return AuthError


def all_same(values):
    first = values[0][1]
    for name, v in values[1:]:
        assert v == first, "%s disagrees with %s" % (name, values[0][0])
    return first


@CURVE
@given(priv=b32, pub=b32)
def test_x25519_agree(priv, pub):
    all_same([(n, outcome(b.x25519, priv, pub)) for n, b in BACKENDS])


@CURVE
@given(a=b32, b=b32)
def test_x25519_dh_commutes(a, b):
    for name, be in BACKENDS:
        pa, pb = be.x25519_public(a), be.x25519_public(b)
        assert be.x25519(a, pb) == be.x25519(b, pa), name
    all_same([(n, be.x25519_public(a)) for n, be in BACKENDS])


@CURVE
@given(seed=b32, msg=st.binary(max_size=300), flip=st.integers(min_value=0, max_value=511))
def test_ed25519_agree_and_tamper(seed, msg, flip):
    pub = all_same([(n, b.ed25519_public(seed)) for n, b in BACKENDS])
    sig = all_same([(n, b.ed25519_sign(seed, msg)) for n, b in BACKENDS])
    bad_sig = bytearray(sig)
    bad_sig[flip // 8] ^= 1 << (flip % 8)
    bad_sig = bytes(bad_sig)
    for name, b in BACKENDS:
        assert b.ed25519_verify(pub, msg, sig) is True, name
        assert b.ed25519_verify(pub, msg + b"!", sig) is False, name
        assert b.ed25519_verify(pub, msg, bad_sig) is False, name


@CURVE
@given(pub=b32, sig=st.binary(min_size=64, max_size=64), msg=st.binary(max_size=64))
def test_ed25519_random_signatures_agree(pub, sig, msg):
    # Random keys and signatures: verdicts (all False, virtually always) agree, nothing raises.
    all_same([(n, b.ed25519_verify(pub, msg, sig)) for n, b in BACKENDS])


@FAST
@given(key=b32, nonce=st.binary(min_size=12, max_size=12), ad=st.binary(max_size=80),
       pt=st.binary(max_size=600), flip=st.integers(min_value=0))
def test_aead_round_trip_and_tamper(key, nonce, ad, pt, flip):
    ct = all_same([(n, b.aead_encrypt(key, nonce, ad, pt)) for n, b in BACKENDS])
    assert len(ct) == len(pt) + 16
    bad = bytearray(ct)
    bit = flip % (8 * len(ct))
    bad[bit // 8] ^= 1 << (bit % 8)
    for name, b in BACKENDS:
        assert b.aead_decrypt(key, nonce, ad, ct) == pt, name
        assert outcome(b.aead_decrypt, key, nonce, ad, bytes(bad)) is AuthError, name
        assert outcome(b.aead_decrypt, key, nonce, ad + b"x", ct) is AuthError, name


@FAST
@given(data=st.binary(max_size=1000))
def test_sha_agree(data):
    all_same([(n, b.sha512(data)) for n, b in BACKENDS])
    all_same([(n, b.sha256(data)) for n, b in BACKENDS])


@FAST
@given(key=st.binary(max_size=200), data=st.binary(max_size=300))
def test_hmac_agree(key, data):
    all_same([(n, b.hmac_sha256(key, data)) for n, b in BACKENDS])


@FAST
@given(ck=b32, ikm=st.binary(max_size=64), n=st.sampled_from((2, 3)))
def test_hkdf_agree(ck, ikm, n):
    all_same([(name, b.hkdf(ck, ikm, n)) for name, b in BACKENDS])


def _torsion_point_of_order_8():
    from microp2p.crypto import curve25519 as c
    y = 2
    while True:
        p = c.decode_point(y.to_bytes(32, "little"))
        y += 1
        if p is None:
            continue
        t = c.double_mult(0, c.L, p)  # kill the prime-order part, keep the torsion part
        t4 = c._double(c._double(t))
        if c.encode_point(t4) != c.encode_point(c._IDENTITY):  # [4]t != 0: t has order 8
            return t


def test_ed25519_mixed_torsion_key_verdicts_agree():
    # A = a*B + T (T of order 8). SB - kA = R - kT, so a cofactorless verifier accepts only when
    # 8 | k while a cofactored one always accepts: the backends must all be cofactorless.
    from microp2p.crypto import curve25519 as c
    import hashlib
    t = _torsion_point_of_order_8()
    a, r = 1234567, 7654321
    pub = c.encode_point(c._add(c.base_mult(a), c._cached(t)))
    rb = c.encode_point(c.base_mult(r))
    verdicts = []
    for i in range(24):
        msg = b"m%d" % i
        k = int.from_bytes(hashlib.sha512(rb + pub + msg).digest(), "little") % c.L
        sig = rb + ((r + k * a) % c.L).to_bytes(32, "little")
        v = all_same([(n, b.ed25519_verify(pub, msg, sig)) for n, b in BACKENDS])
        assert v == (k % 8 == 0)
        verdicts.append(v)
    assert False in verdicts
