# CIDv1: <varint version=1><varint codec><multihash>, usually shown as multibase text. libp2p uses
# it for peer IDs (codec libp2p-key) and the DHT for provider records (any codec), so decoding is
# generic and the caller checks the codec it expects. CIDv0 (a bare base58 sha2-256 multihash,
# "Qm...") has no version byte; callers that accept it handle it before coming here.
from microp2p.codec import varint, multibase, multihash
from microp2p.errors import DecodeError

CIDV1 = 1
LIBP2P_KEY = 0x72
RAW = 0x55
DAG_PB = 0x70

MAX_CODEC = 0xFFFFFFFF
MAX_CID_LEN = 256  # a CID we accept from outside: version + codec + multihash with its cap


def to_bytes(codec, mh):
    return varint.encode(CIDV1) + varint.encode(codec) + bytes(mh)


def from_bytes(buf):
    """Binary CIDv1 -> (codec, multihash bytes). The multihash is checked, any hash code."""
    if len(buf) > MAX_CID_LEN:
        raise DecodeError("CID too long")
    version, pos = varint.decode(buf, 0, 0xFF)
    if version != CIDV1:
        raise DecodeError("unsupported CID version %d" % version)
    codec, pos = varint.decode(buf, pos, MAX_CODEC)
    mh = bytes(buf[pos:])
    multihash.decode(mh, multihash.MAX_DIGEST_LEN, True)
    return codec, mh


def encode(codec, mh, base=multibase.BASE32):
    return multibase.encode(base, to_bytes(codec, mh))


def decode(text):
    """Multibase CIDv1 text -> (codec, multihash bytes)."""
    return from_bytes(multibase.decode(text)[1])
