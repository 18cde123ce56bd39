# Multihash: <varint code><varint digest length><digest>. libp2p peer IDs use only two codes:
# identity (the key protobuf inlined) and sha2-256. Decoding is strict: the whole buffer must be
# exactly one multihash, the declared length must match what is present and stay under a cap,
# and a known code must carry its digest size.
from microp2p.codec import varint
from microp2p.errors import DecodeError, UsageError

IDENTITY = 0x00
SHA2_256 = 0x12

SHA2_256_LEN = 32
MAX_DIGEST_LEN = 128  # default cap on a digest we accept from outside
MAX_CODE = 0xFFFFFFFF  # multicodec codes fit in 32 bits in practice; bound the varint read

_FIXED_LEN = {SHA2_256: SHA2_256_LEN}


def encode(code, digest):
    if code != IDENTITY and code != SHA2_256:
        raise UsageError("unsupported multihash code 0x%x" % code)
    n = _FIXED_LEN.get(code)
    if n is not None and len(digest) != n:
        raise UsageError("wrong digest length for code 0x%x" % code)
    return varint.encode(code) + varint.encode(len(digest)) + bytes(digest)


def decode(buf, max_digest=MAX_DIGEST_LEN, any_code=False):
    """Decode one complete multihash -> (code, digest bytes).

    Only identity and sha2-256 are accepted unless any_code is true (generic CIDs)."""
    code, pos = varint.decode(buf, 0, MAX_CODE)
    if not any_code and code != IDENTITY and code != SHA2_256:
        raise DecodeError("unsupported multihash code 0x%x" % code)
    n, pos = varint.decode(buf, pos, max_digest)
    if pos + n != len(buf):
        raise DecodeError("multihash length does not match its digest")
    want = _FIXED_LEN.get(code)
    if want is not None and n != want:
        raise DecodeError("wrong digest length for code 0x%x" % code)
    return code, bytes(buf[pos:])
