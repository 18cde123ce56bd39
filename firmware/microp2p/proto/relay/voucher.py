# Reservation vouchers (circuit-v2.md "Reservation Vouchers"): a signed envelope (RFC 0002) made by
# the relay, domain "libp2p-relay-rsvp", payload type the two raw bytes 0x03 0x02 (go's
# RecordCodec, js's codec; not a uvarint of 0x0302), payload in canonical field order:
#   Voucher { bytes relay = 1; bytes peer = 2; uint64 expiration = 3; }   (peer-ID bytes, unix s)
from microp2p.codec import pb
from microp2p.identity import envelope, peerid
from microp2p.identity.peerid import PeerId
from microp2p.errors import AuthError, DecodeError

DOMAIN = "libp2p-relay-rsvp"
PAYLOAD_TYPE = b"\x03\x02"
MAX_VOUCHER_LEN = 1024   # an Ed25519 voucher is ~180 bytes; it travels inside a 4 KiB hop message

VOUCHER_SCHEMA = (
    (1, "relay", pb.B, False),
    (2, "peer", pb.B, False),
    (3, "expiration", pb.U, False),
)


class Voucher:
    __slots__ = ("relay", "peer", "expiration")

    def __init__(self, relay, peer, expiration):
        self.relay = relay            # PeerId
        self.peer = peer              # PeerId
        self.expiration = expiration  # unix seconds

    def payload(self):
        return bytes(pb.encode({"relay": self.relay.to_bytes(), "peer": self.peer.to_bytes(),
                                "expiration": self.expiration}, VOUCHER_SCHEMA))


def seal(relay_key, peer, expiration):
    """The relay signs: envelope bytes vouching that `peer` (PeerId) holds a slot until expiration."""
    v = Voucher(PeerId.from_public_key(relay_key.public_key), peer, expiration)
    return envelope.seal(relay_key, DOMAIN, PAYLOAD_TYPE, v.payload())


def open_voucher(buf, relay=None, peer=None, now_s=None):
    """Verify a voucher -> Voucher. Checks the signature under DOMAIN, the payload type, that the
    signer is the relay the payload names, and when given: relay (PeerId expected as signer),
    peer (PeerId that must hold it) and now_s (the expiration must be in the future).
    DecodeError if malformed, AuthError if it does not check out."""
    if len(buf) > MAX_VOUCHER_LEN:
        raise DecodeError("voucher too long")
    env = envelope.open_envelope(buf, DOMAIN, MAX_VOUCHER_LEN)
    if env.payload_type != PAYLOAD_TYPE:
        raise DecodeError("envelope payload is not a reservation voucher")
    msg = pb.decode(env.payload, VOUCHER_SCHEMA, 1)
    for name in ("relay", "peer", "expiration"):
        if name not in msg:
            raise DecodeError("voucher missing " + name)
    v = Voucher(PeerId.from_bytes(msg["relay"]), PeerId.from_bytes(msg["peer"]), msg["expiration"])
    signer = env.peer_id()
    if signer != v.relay:
        raise AuthError("voucher signed by %s for relay %s" % (signer, v.relay))
    if relay is not None and v.relay != relay:
        raise AuthError("voucher from relay %s, expected %s" % (v.relay, relay))
    if peer is not None and v.peer != peer:
        raise AuthError("voucher for peer %s, not us" % v.peer)
    if now_s is not None and v.expiration <= now_s:
        raise AuthError("voucher expired")
    return v
