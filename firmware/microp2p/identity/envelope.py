# Signed envelopes (libp2p RFC 0002, field numbers as go/rust/js implement them) and the peer
# record they carry in identify's signedPeerRecord (RFC 0003).
#
#   Envelope   { PublicKey public_key = 1; bytes payload_type = 2; bytes payload = 3;
#                bytes signature = 5; }
#   signature = sign(uvarint(len(domain)) || domain || uvarint(len(payload_type)) || payload_type
#                    || uvarint(len(payload)) || payload)
#   PeerRecord { bytes peer_id = 1; uint64 seq = 2; repeated AddressInfo addresses = 3; }
#   AddressInfo { bytes multiaddr = 1; }      payload type 0x0301, domain "libp2p-peer-record"
#
# The domain is never on the wire: a signature made for one purpose cannot be replayed as another.
from microp2p.codec import pb, varint
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.codec.multiaddr import Multiaddr
from microp2p.errors import AuthError, DecodeError

PEER_RECORD_DOMAIN = "libp2p-peer-record"
PEER_RECORD_PAYLOAD_TYPE = b"\x03\x01"  # multicodec libp2p-peer-record (0x0301) as uvarint

MAX_ENVELOPE_LEN = 4096  # an Ed25519 envelope with MAX_RECORD_ADDRS addresses fits easily
MAX_RECORD_ADDRS = 32  # addresses we accept in one peer record

ENVELOPE_SCHEMA = (
    (1, "public_key", pb.B, False),  # kept as bytes: the canonical key encoding is checked apart
    (2, "payload_type", pb.B, False),
    (3, "payload", pb.B, False),
    (5, "signature", pb.B, False),
)
_ADDRESS_INFO = ((1, "multiaddr", pb.B, False),)
PEER_RECORD_SCHEMA = (
    (1, "peer_id", pb.B, False),
    (2, "seq", pb.U, False),
    (3, "addresses", _ADDRESS_INFO, True),
)


def signing_buffer(domain, payload_type, payload):
    d = domain.encode()
    return (varint.encode(len(d)) + d + varint.encode(len(payload_type)) + bytes(payload_type)
            + varint.encode(len(payload)) + bytes(payload))


class Envelope:
    """An opened, verified envelope."""

    __slots__ = ("public_key", "payload_type", "payload", "signature")

    def __init__(self, public_key, payload_type, payload, signature):
        self.public_key = public_key
        self.payload_type = payload_type
        self.payload = payload
        self.signature = signature

    def peer_id(self):
        return PeerId.from_public_key(self.public_key)


def seal(private_key, domain, payload_type, payload):
    """Sign payload under domain; return the Envelope protobuf bytes."""
    sig = private_key.sign(signing_buffer(domain, payload_type, payload))
    msg = {
        "public_key": private_key.public_key.to_protobuf(),
        "payload_type": bytes(payload_type),
        "payload": bytes(payload),
        "signature": sig,
    }
    return bytes(pb.encode(msg, ENVELOPE_SCHEMA))


def open_envelope(buf, domain, max_len=MAX_ENVELOPE_LEN):
    """Decode and verify an envelope -> Envelope. DecodeError if malformed (UnsupportedKey for a
    non-Ed25519 signer), AuthError if the signature does not verify under domain."""
    if len(buf) > max_len:
        raise DecodeError("envelope too long")
    msg = pb.decode(buf, ENVELOPE_SCHEMA, 1)
    for name in ("public_key", "payload_type", "payload", "signature"):
        if name not in msg:
            raise DecodeError("envelope missing " + name)
    pub = keys.public_key_from_protobuf(msg["public_key"])
    if not pub.verify(signing_buffer(domain, msg["payload_type"], msg["payload"]), msg["signature"]):
        raise AuthError("envelope signature does not verify")
    return Envelope(pub, msg["payload_type"], msg["payload"], msg["signature"])


class PeerRecord:
    __slots__ = ("peer_id", "seq", "addrs", "skipped")

    def __init__(self, peer_id, seq, addrs, skipped=0):
        self.peer_id = peer_id  # PeerId
        self.seq = seq  # int, larger is newer
        self.addrs = addrs  # [Multiaddr]
        self.skipped = skipped  # addresses in the record we could not parse (other transports)

    def to_protobuf(self):
        msg = {
            "peer_id": self.peer_id.to_bytes(),
            "seq": self.seq,
            "addresses": [{"multiaddr": a.to_bytes()} for a in self.addrs],
        }
        return bytes(pb.encode(msg, PEER_RECORD_SCHEMA))

    @classmethod
    def from_protobuf(cls, buf):
        msg = pb.decode(buf, PEER_RECORD_SCHEMA, MAX_RECORD_ADDRS)
        if "peer_id" not in msg:
            raise DecodeError("peer record without peer_id")
        addrs = []
        skipped = 0
        for info in msg.get("addresses", ()):
            # A record lists every transport the peer has (quic, webtransport, webrtc...); one we
            # cannot parse is useless to us but does not make the others wrong.
            try:
                addrs.append(Multiaddr.from_bytes(info.get("multiaddr", b"")))
            except DecodeError:
                skipped += 1
        return cls(PeerId.from_bytes(msg["peer_id"]), msg.get("seq", 0), addrs, skipped)


def seal_peer_record(private_key, seq, addrs):
    """Envelope bytes carrying a PeerRecord for private_key's peer ID."""
    rec = PeerRecord(PeerId.from_public_key(private_key.public_key), seq,
                     [a if isinstance(a, Multiaddr) else Multiaddr(a) for a in addrs])
    return seal(private_key, PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE, rec.to_protobuf())


def open_peer_record(buf):
    """Verify an envelope carrying a peer record -> PeerRecord. AuthError if the signature fails
    or the record names a different peer than the key that signed it."""
    env = open_envelope(buf, PEER_RECORD_DOMAIN)
    if env.payload_type != PEER_RECORD_PAYLOAD_TYPE:
        raise DecodeError("envelope payload is not a peer record")
    rec = PeerRecord.from_protobuf(env.payload)
    if rec.peer_id != env.peer_id():
        raise AuthError("peer record signed by a different peer")
    return rec
