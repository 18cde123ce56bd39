# Native crypto backends for CPython, with results identical to microp2p.crypto.pure:
#   CRYPTOGRAPHY (default, OpenSSL via `cryptography`) and PYCRYPTODOME.
# install(name) picks one (argument, else env MICROP2P_CRYPTO: cryptography | pycryptodome | pure)
# and swaps it into microp2p.crypto.
#
# Shared rules enforced here so both libraries behave like the pure backend:
#   - x25519: the peer key's top bit is ignored and u >= p is reduced (RFC 7748); an all-zero
#     shared secret (low-order peer key) raises AuthError.
#   - ed25519_verify: strict S < L, returns False (never raises) for any bad key or signature.
#   - aead_decrypt: AuthError on a bad tag; UsageError for a wrong key/nonce size.
import hashlib
import hmac
import os

from microp2p import crypto
from microp2p.errors import AuthError, UsageError

ENV_VAR = "MICROP2P_CRYPTO"
DEFAULT = "cryptography"
NAMES = ("cryptography", "pycryptodome", "pure")

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_M255 = (1 << 255) - 1
_ED25519_GX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_ZERO32 = bytes(32)


def _canonical_u(public):
    if len(public) != 32:
        raise AuthError("x25519 public key must be 32 bytes")
    return ((int.from_bytes(public, "little") & _M255) % _P).to_bytes(32, "little")


def _check_private(private):
    if len(private) != 32:
        raise UsageError("x25519/ed25519 private key must be 32 bytes")
    return bytes(private)


def _check_key_nonce(key, nonce):
    if len(key) != 32:
        raise UsageError("aead key must be 32 bytes")
    if len(nonce) != 12:
        raise UsageError("aead nonce must be 12 bytes")


def _sig_shape_ok(pub, sig):
    """S < L and a canonical key encoding (y < p): OpenSSL alone would accept y >= p."""
    return (len(pub) == 32 and len(sig) == 64 and int.from_bytes(sig[32:64], "little") < _L
            and int.from_bytes(pub, "little") & _M255 < _P)


def _noise_hkdf(hmac_fn, chaining_key, ikm, n):
    if n != 2 and n != 3:
        raise UsageError("hkdf n must be 2 or 3")
    temp = hmac_fn(chaining_key, ikm)
    out1 = hmac_fn(temp, b"\x01")
    out2 = hmac_fn(temp, out1 + b"\x02")
    if n == 2:
        return (out1, out2)
    return (out1, out2, hmac_fn(temp, out2 + b"\x03"))


def random_bytes(n):
    return os.urandom(n)


# Key objects are costly to build per call (a signing key per gossip publish, a verifying key per
# received message, a ChaCha20Poly1305 object per Noise frame), so the backends keep the recent
# ones. Each cache is bounded: when full it starts over (cheap, and correct — it is only a cache).
SIGNING_KEYS_CACHED = 8
VERIFY_KEYS_CACHED = 1024
AEAD_KEYS_CACHED = 1024


class _Cache:
    def __init__(self, limit, make):
        self.limit = limit
        self.make = make
        self.items = {}

    def get(self, key):
        obj = self.items.get(key)
        if obj is None:
            if len(self.items) >= self.limit:
                self.items = {}
            obj = self.make(key)
            self.items[key] = obj
        return obj


class CryptographyBackend:
    NAME = "cryptography"

    def __init__(self):
        from cryptography.exceptions import InvalidSignature, InvalidTag
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self._x = x25519
        self._ed = ed25519
        self._aead = ChaCha20Poly1305
        self._bad_sig = InvalidSignature
        self._bad_tag = InvalidTag
        self._raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.random_bytes = random_bytes
        self._signers = _Cache(SIGNING_KEYS_CACHED, ed25519.Ed25519PrivateKey.from_private_bytes)
        self._verifiers = _Cache(VERIFY_KEYS_CACHED, ed25519.Ed25519PublicKey.from_public_bytes)
        self._aeads = _Cache(AEAD_KEYS_CACHED, ChaCha20Poly1305)

    @staticmethod
    def sha256(data):
        return hashlib.sha256(data).digest()

    @staticmethod
    def sha512(data):
        return hashlib.sha512(data).digest()

    @staticmethod
    def hmac_sha256(key, data):
        return hmac.digest(key, data, "sha256")

    def hkdf(self, chaining_key, ikm, n):
        return _noise_hkdf(self.hmac_sha256, chaining_key, ikm, n)

    def x25519(self, private, public):
        priv = self._x.X25519PrivateKey.from_private_bytes(_check_private(private))
        try:
            return priv.exchange(self._x.X25519PublicKey.from_public_bytes(_canonical_u(public)))
        except ValueError:  # OpenSSL refuses an all-zero result
            raise AuthError("x25519 low-order public key")

    def x25519_public(self, private):
        priv = self._x.X25519PrivateKey.from_private_bytes(_check_private(private))
        return priv.public_key().public_bytes(*self._raw)

    def ed25519_public(self, seed):
        sk = self._ed.Ed25519PrivateKey.from_private_bytes(_check_private(seed))
        return sk.public_key().public_bytes(*self._raw)

    def ed25519_sign(self, seed, msg):
        return self._signers.get(_check_private(seed)).sign(bytes(msg))

    def ed25519_verify(self, pub, msg, sig):
        if not _sig_shape_ok(pub, sig):
            return False
        try:
            self._verifiers.get(bytes(pub)).verify(bytes(sig), bytes(msg))
            return True
        except (self._bad_sig, ValueError):
            return False

    def aead_encrypt(self, key, nonce, ad, plaintext):
        _check_key_nonce(key, nonce)
        return self._aeads.get(bytes(key)).encrypt(bytes(nonce), bytes(plaintext), bytes(ad))

    def aead_decrypt(self, key, nonce, ad, ciphertext):
        _check_key_nonce(key, nonce)
        if len(ciphertext) < 16:
            raise AuthError("aead ciphertext shorter than the tag")
        try:
            return self._aeads.get(bytes(key)).decrypt(bytes(nonce), bytes(ciphertext), bytes(ad))
        except self._bad_tag:
            raise AuthError("aead tag mismatch")


class PycryptodomeBackend:
    NAME = "pycryptodome"

    def __init__(self):
        from Crypto.Cipher import ChaCha20_Poly1305
        from Crypto.Hash import HMAC, SHA256, SHA512
        from Crypto.Protocol import DH
        from Crypto.PublicKey import ECC
        from Crypto.Signature import eddsa

        self._chapoly = ChaCha20_Poly1305
        self._hmac = HMAC
        self._sha256 = SHA256
        self._sha512 = SHA512
        self._dh = DH
        self._ecc = ECC
        self._eddsa = eddsa
        gy = 4 * pow(5, _P - 2, _P) % _P
        self._g = ECC.EccPoint(_ED25519_GX, gy, curve="Ed25519")
        self.random_bytes = random_bytes

    def sha256(self, data):
        return self._sha256.new(data).digest()

    def sha512(self, data):
        return self._sha512.new(data).digest()

    def hmac_sha256(self, key, data):
        return self._hmac.new(bytes(key), bytes(data), self._sha256).digest()

    def hkdf(self, chaining_key, ikm, n):
        return _noise_hkdf(self.hmac_sha256, chaining_key, ikm, n)

    def x25519(self, private, public):
        priv = self._dh.import_x25519_private_key(_check_private(private))
        try:
            pub = self._dh.import_x25519_public_key(_canonical_u(public))
            out = self._dh.key_agreement(static_priv=priv, static_pub=pub, kdf=lambda z: z)
        except ValueError:  # pycryptodome rejects low-order points itself
            raise AuthError("x25519 low-order public key")
        if out == _ZERO32:
            raise AuthError("x25519 low-order public key")
        return out

    def x25519_public(self, private):
        priv = self._dh.import_x25519_private_key(_check_private(private))
        return priv.public_key().export_key(format="raw")

    def ed25519_public(self, seed):
        key = self._eddsa.import_private_key(_check_private(seed))
        return key.public_key().export_key(format="raw")

    def ed25519_sign(self, seed, msg):
        key = self._eddsa.import_private_key(_check_private(seed))
        return self._eddsa.new(key, "rfc8032").sign(bytes(msg))

    def ed25519_verify(self, pub, msg, sig):
        # pycryptodome's own verify is cofactored ([8]R == [8](SB - kA)); OpenSSL and the pure
        # backend are cofactorless, and the two disagree on keys/R with a torsion part. So the
        # equation is evaluated here with pycryptodome's point arithmetic: encode(SB - kA) == R.
        if not _sig_shape_ok(pub, sig):
            return False
        try:
            a = self._eddsa.import_public_key(bytes(pub)).pointQ
        except ValueError:
            return False
        r = bytes(sig[0:32])
        h = self._sha512.new(r)
        h.update(bytes(pub))
        h.update(bytes(msg))
        k = int.from_bytes(h.digest(), "little") % _L
        s = int.from_bytes(sig[32:64], "little")
        point = self._g * s + (-a) * k
        enc = self._ecc.EccKey(curve="Ed25519", point=point).export_key(format="raw")
        return enc == r

    def aead_encrypt(self, key, nonce, ad, plaintext):
        _check_key_nonce(key, nonce)
        c = self._chapoly.new(key=bytes(key), nonce=bytes(nonce))
        c.update(bytes(ad))
        ct, tag = c.encrypt_and_digest(bytes(plaintext))
        return ct + tag

    def aead_decrypt(self, key, nonce, ad, ciphertext):
        _check_key_nonce(key, nonce)
        n = len(ciphertext) - 16
        if n < 0:
            raise AuthError("aead ciphertext shorter than the tag")
        c = self._chapoly.new(key=bytes(key), nonce=bytes(nonce))
        c.update(bytes(ad))
        try:
            return c.decrypt_and_verify(bytes(ciphertext[:n]), bytes(ciphertext[n:]))
        except ValueError:
            raise AuthError("aead tag mismatch")


_cache = {}


def backend(name):
    """The backend object (or module, for "pure") called `name`."""
    if name == "pure":
        from microp2p.crypto import pure
        return pure
    if name not in _cache:
        if name == "cryptography":
            _cache[name] = CryptographyBackend()
        elif name == "pycryptodome":
            _cache[name] = PycryptodomeBackend()
        else:
            raise UsageError("unknown crypto backend %r (choose from %s)" % (name, ", ".join(NAMES)))
    return _cache[name]


def available():
    """Names of the backends that import on this machine."""
    out = []
    for name in NAMES:
        try:
            backend(name)
            out.append(name)
        except ImportError:
            pass
    return out


def install(name=None):
    """Make `name` (else $MICROP2P_CRYPTO, else cryptography) the backend of microp2p.crypto."""
    name = name or os.environ.get(ENV_VAR) or DEFAULT
    b = backend(name)
    crypto.use(b, name)
    return name
