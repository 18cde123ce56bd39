# libp2p identity keys (libp2p/specs peer-ids/peer-ids.md). Only Ed25519 is implemented; the
# protobuf wrapper is the same for every key type:
#
#   PublicKey / PrivateKey { KeyType Type = 1; bytes Data = 2; }    (Ed25519 = 1)
#
# Ed25519 public Data is the 32-byte key; private Data is seed || public (64 bytes), or the legacy
# seed || public || public (96 bytes). The spec requires a deterministic encoding (fields in order,
# minimal varints, both present, nothing else), and peer IDs are derived from these exact bytes,
# so the decoder accepts only the canonical encoding: re-encoding must give back the input.
from microp2p import crypto
from microp2p.codec import pb
from microp2p.errors import DecodeError, UsageError

RSA = 0
ED25519 = 1
SECP256K1 = 2
ECDSA = 3

ED25519_KEY_LEN = 32
ED25519_SIG_LEN = 64
MAX_KEY_PROTOBUF_LEN = 8192  # an RSA-4096 private key protobuf is ~2.4 KB; nothing larger

KEY_SCHEMA = ((1, "type", pb.U, False), (2, "data", pb.B, False))


class UnsupportedKey(DecodeError):
    """A well-formed key of a type microp2p does not implement (RSA, secp256k1, ECDSA)."""


def decode_key_protobuf(buf):
    """Canonical PublicKey/PrivateKey protobuf -> (key type, data bytes). Raises DecodeError."""
    if len(buf) > MAX_KEY_PROTOBUF_LEN:
        raise DecodeError("key protobuf too long")
    msg = pb.decode(buf, KEY_SCHEMA, 1)
    ktype = msg.get("type")
    data = msg.get("data")
    if ktype is None or data is None:
        raise DecodeError("key protobuf missing type or data")
    if bytes(pb.encode(msg, KEY_SCHEMA)) != bytes(buf):
        raise DecodeError("non-canonical key protobuf")
    return ktype, data


def _encode_key(ktype, data):
    return bytes(pb.encode({"type": ktype, "data": data}, KEY_SCHEMA))


class Ed25519PublicKey:
    __slots__ = ("raw",)

    def __init__(self, raw):
        raw = bytes(raw)
        if len(raw) != ED25519_KEY_LEN:
            raise DecodeError("Ed25519 public key must be 32 bytes")
        self.raw = raw

    key_type = ED25519

    def verify(self, msg, sig):
        """True only for a valid signature; never raises for a bad one."""
        if len(sig) != ED25519_SIG_LEN:
            return False
        return crypto.ed25519_verify(self.raw, msg, sig)

    def to_protobuf(self):
        return _encode_key(ED25519, self.raw)

    @classmethod
    def from_protobuf(cls, buf):
        return public_key_from_protobuf(buf)

    def __eq__(self, other):
        return isinstance(other, Ed25519PublicKey) and other.raw == self.raw

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.raw)

    def __repr__(self):
        return "Ed25519PublicKey(%s)" % self.raw.hex()


class Ed25519PrivateKey:
    __slots__ = ("seed", "public_key")

    key_type = ED25519

    def __init__(self, seed, public_key):
        # Use from_seed/generate/from_protobuf; this trusts that public_key matches seed.
        self.seed = seed
        self.public_key = public_key

    @classmethod
    def from_seed(cls, seed):
        seed = bytes(seed)
        if len(seed) != ED25519_KEY_LEN:
            raise UsageError("Ed25519 seed must be 32 bytes")
        return cls(seed, Ed25519PublicKey(crypto.ed25519_public(seed)))

    @classmethod
    def generate(cls):
        return cls.from_seed(crypto.random_bytes(ED25519_KEY_LEN))

    def sign(self, msg):
        return crypto.ed25519_sign(self.seed, msg)

    def to_protobuf(self):
        return _encode_key(ED25519, self.seed + self.public_key.raw)

    @classmethod
    def from_protobuf(cls, buf):
        return private_key_from_protobuf(buf)

    def __repr__(self):
        return "Ed25519PrivateKey(public=%s)" % self.public_key.raw.hex()


def public_key_from_protobuf(buf):
    """PublicKey protobuf -> Ed25519PublicKey. Other key types raise UnsupportedKey."""
    ktype, data = decode_key_protobuf(buf)
    if ktype != ED25519:
        raise UnsupportedKey("unsupported public key type %d" % ktype)
    return Ed25519PublicKey(data)


def private_key_from_protobuf(buf):
    """PrivateKey protobuf -> Ed25519PrivateKey, checking the stored public key against the seed."""
    ktype, data = decode_key_protobuf(buf)
    if ktype != ED25519:
        raise UnsupportedKey("unsupported private key type %d" % ktype)
    if len(data) == 96:
        # Legacy form: the public key was stored twice; both copies must agree.
        if data[32:64] != data[64:96]:
            raise DecodeError("legacy Ed25519 private key: public key copies differ")
        data = data[:64]
    if len(data) != 64:
        raise DecodeError("Ed25519 private key must be 64 bytes")
    key = Ed25519PrivateKey.from_seed(data[:32])
    if key.public_key.raw != data[32:]:
        raise DecodeError("Ed25519 private key: public key does not match seed")
    return key


def load_private_key(path):
    """Read a key file: the raw PrivateKey protobuf (what `microp2p keygen` writes)."""
    return private_key_from_protobuf(read_bounded(path, MAX_KEY_PROTOBUF_LEN + 1))


READ_CHUNK = 256  # bytes per read: f.read(n) reserves n bytes at once, too many for a small heap


def read_bounded(path, limit, mode="rb"):
    """At most `limit` bytes (or chars) of a file, read in READ_CHUNK pieces: a device heap may
    hold no free block of `limit` bytes, and key and config files are small."""
    parts = []
    n = 0
    with open(path, mode) as f:
        while n < limit:
            b = f.read(min(READ_CHUNK, limit - n))
            if not b:
                break
            parts.append(b)
            n += len(b)
    return parts[0][:0].join(parts) if parts else (b"" if "b" in mode else "")
