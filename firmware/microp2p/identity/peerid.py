# Peer IDs (libp2p/specs peer-ids/peer-ids.md): the multihash of the protobuf-encoded public key,
# identity when that encoding is at most 42 bytes (every Ed25519 key: 36 bytes, "12D3KooW..."),
# sha2-256 otherwise ("Qm..."). Text is bare base58btc (legacy, what we print) or a CIDv1 with
# the libp2p-key codec in any multibase we decode ("bafz...", "k51...").
#
# This module does not import microp2p.crypto at load time: multiaddr parsing needs peer-ID text
# handling on a device long before (and even without) any hashing, and only a key longer than
# 42 bytes (RSA, ECDSA) ever needs sha2-256 here. CID text is rare on a device: codec/cid (and
# with it codec/multibase) loads on first use; base58 is codec/base58.
from microp2p.codec import base58, multihash
from microp2p.errors import DecodeError

MAX_INLINE_KEY_LEN = 42  # spec: keys whose protobuf is at most this long are inlined (identity)


def check_bytes(mh):
    """Validate a peer ID multihash; return it as bytes. Raises DecodeError."""
    mh = bytes(mh)
    code, digest = multihash.decode(mh, multihash.MAX_DIGEST_LEN)
    if code == multihash.IDENTITY and len(digest) > MAX_INLINE_KEY_LEN:
        raise DecodeError("inlined peer ID key too long")
    return mh


def parse_text(text):
    """Peer ID text (base58 multihash or libp2p-key CIDv1) -> validated multihash bytes."""
    if not isinstance(text, str):
        raise DecodeError("peer ID text must be str")
    if text.startswith("1") or text.startswith("Qm"):
        return check_bytes(base58.decode(text))
    from microp2p.codec import cid
    codec, mh = cid.decode(text)
    if codec != cid.LIBP2P_KEY:
        raise DecodeError("CID is not a libp2p-key")
    return check_bytes(mh)


class PeerId:
    __slots__ = ("_mh",)

    def __init__(self, mh):
        # Callers outside this module use the from_* constructors, which validate.
        self._mh = mh

    @classmethod
    def from_bytes(cls, mh):
        return cls(check_bytes(mh))

    @classmethod
    def from_string(cls, text):
        return cls(parse_text(text))

    @classmethod
    def from_public_key(cls, public_key):
        """From a key object with to_protobuf() (e.g. keys.Ed25519PublicKey)."""
        return cls.from_public_key_protobuf(public_key.to_protobuf())

    @classmethod
    def from_public_key_protobuf(cls, encoded):
        """From the canonical PublicKey protobuf of any key type (the bytes are not parsed)."""
        encoded = bytes(encoded)
        if len(encoded) <= MAX_INLINE_KEY_LEN:
            return cls(multihash.encode(multihash.IDENTITY, encoded))
        from microp2p import crypto

        return cls(multihash.encode(multihash.SHA2_256, crypto.sha256(encoded)))

    def to_bytes(self):
        return self._mh

    def to_base58(self):
        return base58.encode(self._mh)

    def to_cid(self, base=None):
        """CIDv1 text in the given multibase (default base32, "bafz...")."""
        from microp2p.codec import cid, multibase
        return cid.encode(cid.LIBP2P_KEY, self._mh, base or multibase.BASE32)

    def inlined_key(self):
        """The PublicKey protobuf inlined in an identity peer ID, or None for a hashed one."""
        if self._mh[0] != multihash.IDENTITY:
            return None
        return multihash.decode(self._mh)[1]

    def public_key(self):
        """The Ed25519PublicKey inlined in this peer ID, or None (hashed ID, other key type)."""
        encoded = self.inlined_key()
        if encoded is None:
            return None
        from microp2p.identity import keys

        try:
            return keys.public_key_from_protobuf(encoded)
        except DecodeError:
            return None

    def matches_public_key_protobuf(self, encoded):
        """True when this peer ID is the one derived from the given PublicKey protobuf."""
        return PeerId.from_public_key_protobuf(encoded)._mh == self._mh

    def __str__(self):
        return self.to_base58()

    def __repr__(self):
        return "PeerId(%s)" % self.to_base58()

    def __eq__(self, other):
        return isinstance(other, PeerId) and other._mh == self._mh

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._mh)
