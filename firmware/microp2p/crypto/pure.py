# The pure crypto backend: runs on MicroPython and CPython alike (see crypto/__init__.py for the
# interface). SHA-256 comes from hashlib everywhere; SHA-512 from hashlib when the port has it.
# Where this MicroPython compiles viper code, and each module's self-test at import passes:
# ChaCha20-Poly1305 uses accel_viper, X25519/Ed25519 field arithmetic accel_ec, and SHA-512
# (when hashlib lacks it) accel_sha512; otherwise plain Python and big ints (chacha.py,
# curve25519.py, sha512_impl.py). CPython never tries: it has no `micropython` module.
import hashlib
import os
import struct

from microp2p.errors import AuthError, UsageError
from microp2p.crypto import curve25519 as _c
from microp2p.crypto import chacha as _ch

NAME = "pure"

try:
    _sha512_plain = hashlib.sha512
except AttributeError:
    from microp2p.crypto.sha512_impl import Sha512 as _sha512_plain
_sha512_viper = None
if not hasattr(hashlib, "sha512"):
    try:  # viper SHA-512 (accel_sha512) where hashlib lacks it, self-checked like accel_viper
        import micropython  # noqa: F401
        from microp2p.crypto import accel_sha512 as _s5
        if _s5.self_test():
            _sha512_viper = _s5.Sha512
    except Exception:
        pass
_sha512_new = _sha512_viper or _sha512_plain

try:
    import micropython  # noqa: F401  (only MicroPython has viper)
    from microp2p.crypto import accel_viper as _viper
    if not _viper.self_test():
        _viper = None
except Exception:  # ImportError on CPython; SyntaxError where the port has no viper emitter
    _viper = None

try:  # viper field arithmetic for X25519/Ed25519 (accel_ec), same rules as accel_viper
    import micropython  # noqa: F401,F811
    from microp2p.crypto import accel_ec as _ec_viper
    if not _ec_viper.self_test():
        _ec_viper = None
except Exception:
    _ec_viper = None

_accel = _viper
_ec = _ec_viper

TAG_SIZE = 16
HMAC_BLOCK = 64
_IPAD = int.from_bytes(b"\x36" * HMAC_BLOCK, "big")
_OPAD = int.from_bytes(b"\x5c" * HMAC_BLOCK, "big")


def accel_available():
    return _viper is not None or _ec_viper is not None or _sha512_viper is not None


def use_accel(flag):
    """Switch every viper accelerator on/off (tests); returns the previous setting."""
    global _accel, _ec, _sha512_new
    prev = _accel is not None or _ec is not None or _sha512_new is not _sha512_plain
    _accel = _viper if flag else None
    _ec = _ec_viper if flag else None
    _sha512_new = (_sha512_viper or _sha512_plain) if flag else _sha512_plain
    return prev


def accel_name():
    names = []
    if _accel is not None:
        names.append("viper-aead")
    if _ec is not None:
        names.append("viper-curve")
    if _sha512_new is _sha512_viper and _sha512_viper is not None:
        names.append("viper-sha512")
    return "+".join(names) if names else None


def set_curve_module(mod):
    """Use `mod` (an accel_ec-shaped module, or None for big ints) for X25519/Ed25519; returns
    the previous one. For tests (the CPython bound-checking harness installs its copy here)."""
    global _ec
    prev = _ec
    _ec = mod
    return prev


# ------------------------------------------------------------------------------- hashes

def sha256(data):
    return hashlib.sha256(data).digest()


def sha512(data):
    return _sha512_new(data).digest()


def hmac_sha256(key, data):
    if len(key) > HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    # Pad the key to the block and XOR with ipad/opad as one big int each (no per-byte loop).
    k = int.from_bytes(key, "big") << (8 * (HMAC_BLOCK - len(key)))
    h = hashlib.sha256((k ^ _IPAD).to_bytes(HMAC_BLOCK, "big"))
    h.update(data)
    inner = h.digest()
    h = hashlib.sha256((k ^ _OPAD).to_bytes(HMAC_BLOCK, "big"))
    h.update(inner)
    return h.digest()


def hkdf(chaining_key, ikm, n):
    """Noise HKDF: n (2 or 3) outputs of 32 bytes."""
    if n != 2 and n != 3:
        raise UsageError("hkdf n must be 2 or 3")
    temp = hmac_sha256(chaining_key, ikm)
    out1 = hmac_sha256(temp, b"\x01")
    out2 = hmac_sha256(temp, out1 + b"\x02")
    if n == 2:
        return (out1, out2)
    return (out1, out2, hmac_sha256(temp, out2 + b"\x03"))


try:
    _urandom = os.urandom
except AttributeError:  # the WebAssembly port has no os.urandom; ask the JS host's CSPRNG
    _urandom = None
    try:
        import js

        def _urandom(n):
            out = b""
            while len(out) < n:  # getRandomValues fills at most 65536 bytes per call
                a = js.Uint8Array.new(min(n - len(out), 65536))
                js.crypto.getRandomValues(a)
                out += bytes(a)
            return out
    except ImportError:
        pass


def random_bytes(n):
    if _urandom is None:
        raise UsageError("no CSPRNG on this port")
    return _urandom(n)


# ------------------------------------------------------------------------------- X25519

def x25519(private, public):
    """Shared secret; AuthError if the peer's key is a low-order point (all-zero result)."""
    if len(private) != 32:
        raise UsageError("x25519 private key must be 32 bytes")
    if len(public) != 32:
        raise AuthError("x25519 public key must be 32 bytes")
    out = _ec.x25519(private, public) if _ec is not None else _c.x25519(private, public)
    if out == bytes(32):
        raise AuthError("x25519 low-order public key")
    return out


def x25519_public(private):
    if len(private) != 32:
        raise UsageError("x25519 private key must be 32 bytes")
    if _ec is not None:
        return _ec.x25519_base(private)
    return _c.x25519(private, b"\x09" + bytes(31))


# ------------------------------------------------------------------------------ Ed25519

# One-entry cache of the expanded signing key: a node signs with one identity key, and
# deriving its public key costs a full base-point multiplication.
_expanded_seed = None
_expanded = None


def _expand(seed):
    global _expanded_seed, _expanded
    if len(seed) != 32:
        raise UsageError("ed25519 seed must be 32 bytes")
    seed = bytes(seed)
    if seed != _expanded_seed:
        h = sha512(seed)
        a = _c.clamp_scalar(h[0:32]) % _c.L
        _expanded = (a, h[32:64], _base_mult_encoded(a))
        _expanded_seed = seed
    return _expanded


def _base_mult_encoded(s):
    if _ec is not None:
        return _ec.base_mult_encoded(s.to_bytes(32, "little"))
    return _c.encode_point(_c.base_mult(s))


def ed25519_public(seed):
    return _expand(seed)[2]


def ed25519_sign(seed, msg):
    a, prefix, pub = _expand(seed)
    h = _sha512_new(prefix)
    h.update(msg)
    r = int.from_bytes(h.digest(), "little") % _c.L
    R = _base_mult_encoded(r)
    h = _sha512_new(R)
    h.update(pub)
    h.update(msg)
    k = int.from_bytes(h.digest(), "little") % _c.L
    return R + ((r + k * a) % _c.L).to_bytes(32, "little")


def ed25519_verify(pub, msg, sig):
    """Strict RFC 8032 verify: S < L, canonical A; cofactorless equation. Never raises."""
    if len(pub) != 32 or len(sig) != 64:
        return False
    s = int.from_bytes(sig[32:64], "little")
    if s >= _c.L:
        return False
    if _ec is not None:
        R = bytes(sig[0:32])
        h = _sha512_new(R)
        h.update(pub)
        h.update(msg)
        k = int.from_bytes(h.digest(), "little") % _c.L
        return _ec.double_mult_encoded_eq(bytes(sig[32:64]), k.to_bytes(32, "little"),
                                          bytes(pub), R)
    A = _c.decode_point(pub)
    if A is None:
        return False
    R = bytes(sig[0:32])
    h = _sha512_new(R)
    h.update(pub)
    h.update(msg)
    k = int.from_bytes(h.digest(), "little") % _c.L
    return _c.encode_point(_c.double_mult(s, k, _c.negate(A))) == R


# --------------------------------------------------------------------- ChaCha20-Poly1305

def _check_key_nonce(key, nonce):
    if len(key) != 32:
        raise UsageError("aead key must be 32 bytes")
    if len(nonce) != 12:
        raise UsageError("aead nonce must be 12 bytes")


def _lengths_block(nad, nct):
    return struct.pack("<QQ", nad, nct)


def _tag_pure(st, ad, ct, nct):
    # st's counter is 0 here: the first keystream block's first 32 bytes are the Poly1305 key.
    r, s = _ch.poly_key(_ch.block(st))
    acc = _ch.poly_blocks(0, r, ad, len(ad))
    acc = _ch.poly_blocks(acc, r, ct, nct)
    acc = _ch.poly_blocks(acc, r, _lengths_block(len(ad), nct), 16)
    return _ch.poly_finish(acc, s)


def aead_encrypt(key, nonce, ad, plaintext):
    _check_key_nonce(key, nonce)
    n = len(plaintext)
    out = bytearray(n + TAG_SIZE)
    mv = memoryview(out)
    if _accel is not None:
        _accel.aead_seal(key, nonce, ad, plaintext, out, n)
        return bytes(out)
    st = _ch.state(key, 1, nonce)
    _ch.xor(st, memoryview(plaintext), mv, n)
    st[12] = 0
    mv[n:] = _tag_pure(st, ad, mv[:n], n)
    return bytes(out)


def aead_decrypt(key, nonce, ad, ciphertext):
    _check_key_nonce(key, nonce)
    n = len(ciphertext) - TAG_SIZE
    if n < 0:
        raise AuthError("aead ciphertext shorter than the tag")
    ct = memoryview(ciphertext)
    out = bytearray(n)
    if _accel is not None:
        if not _accel.aead_open(key, nonce, ad, ct, out, n):
            raise AuthError("aead tag mismatch")
        return bytes(out)
    st = _ch.state(key, 0, nonce)
    if not _equal(_tag_pure(st, ad, ct[:n], n), ct[n:]):
        raise AuthError("aead tag mismatch")
    st[12] = 1
    _ch.xor(st, ct, out, n)
    return bytes(out)


def _equal(a, b):
    # Compare without an early exit on the first differing byte.
    return len(a) == len(b) and int.from_bytes(a, "big") ^ int.from_bytes(b, "big") == 0


# ------------------------------------------------- extras (raw primitives for RFC vectors)

def chacha20(key, counter, nonce, data):
    n = len(data)
    out = bytearray(n)
    if _accel is not None:
        _accel.chacha20_xor(key, counter, nonce, data, out, n)
    else:
        _ch.xor(_ch.state(key, counter, nonce), memoryview(data), out, n)
    return bytes(out)


def poly1305(key, msg):
    """Raw Poly1305 (a short last block is NOT zero-padded, unlike the AEAD's use)."""
    if _accel is not None:
        return _accel.poly1305(key, msg)
    r, s = _ch.poly_key(key)
    n = len(msg)
    full = n - n % 16
    acc = _ch.poly_blocks(0, r, memoryview(msg), full)
    if full < n:
        acc = (acc + int.from_bytes(msg[full:], "little") + (1 << (8 * (n - full)))) * r
        acc %= _ch.POLY_P
    return _ch.poly_finish(acc, s)
