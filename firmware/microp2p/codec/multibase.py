# Multibase text encodings used by libp2p: base58btc ('z', and bare for legacy peer IDs),
# base32 lower without padding ('b', the CIDv1 default), base36 lower ('k', IPNS/peer-ID CIDs
# that go-multiaddr accepts) and base16 lower ('f').
#
# Decoders are strict: an unknown character, a wrong case, an impossible length or non-zero
# trailing bits raise DecodeError, so one byte string has exactly one text form per base.
# Every decoder refuses text longer than MAX_TEXT_LEN before doing any big-int work (base58 and
# base36 are quadratic in the input length). base58 itself is codec/base58.py: peer IDs need only
# that, so a device loads this module with CIDs only.
from microp2p.errors import DecodeError, UsageError
from microp2p.codec.base58 import (  # noqa: F401  (MAX_TEXT_LEN: part of this module's API)
    MAX_TEXT_LEN, check_text as _check_text, digits as _digits, radix_encode as _radix_encode,
    radix_decode as _radix_decode, encode as b58encode, decode as b58decode)

BASE58BTC = "z"
BASE32 = "b"
BASE36 = "k"
BASE16 = "f"

# Alphabets are bytes, as in base58.py (no one-character strs, each of which would be a qstr)
_B36 = b"0123456789abcdefghijklmnopqrstuvwxyz"
_B32 = b"abcdefghijklmnopqrstuvwxyz234567"
_B16 = b"0123456789abcdef"


def b36encode(data):
    return _radix_encode(data, _B36)


def b36decode(text):
    return _radix_decode(text, _B36)


def b32encode(data):
    """RFC 4648 base32, lower case, no padding."""
    out = bytearray()
    acc = 0
    bits = 0
    for b in data:
        acc = ((acc << 8) | b) & 0xFFFF
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(_B32[(acc >> bits) & 31])
    if bits:
        out.append(_B32[(acc << (5 - bits)) & 31])
    return out.decode()


def b32decode(text):
    _check_text(text)
    # 8 chars carry 5 bytes; a tail of 1, 3 or 6 chars cannot come from whole bytes.
    if len(text) % 8 in (1, 3, 6):
        raise DecodeError("impossible base32 length")
    d = _digits(text, _B32)
    out = bytearray()
    acc = 0
    bits = 0
    for v in d:
        acc = ((acc << 5) | v) & 0xFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if acc & ((1 << bits) - 1):
        raise DecodeError("non-zero trailing bits in base32")
    return bytes(out)


def b16encode(data):
    return bytes(data).hex()


def b16decode(text):
    _check_text(text)
    if len(text) & 1:
        raise DecodeError("odd base16 length")
    d = _digits(text, _B16)
    out = bytearray(len(d) // 2)
    for i in range(len(out)):
        out[i] = (d[2 * i] << 4) | d[2 * i + 1]
    return bytes(out)


_CODECS = {
    BASE58BTC: (b58encode, b58decode),
    BASE32: (b32encode, b32decode),
    BASE36: (b36encode, b36decode),
    BASE16: (b16encode, b16decode),
}


def encode(base, data):
    """Multibase text: the base's prefix character followed by the encoded data."""
    codec = _CODECS.get(base)
    if codec is None:
        raise UsageError("unsupported multibase %r" % base)
    return base + codec[0](data)


def decode(text):
    """Returns (base prefix, bytes). Unknown prefixes and bad text raise DecodeError."""
    _check_text(text)
    if not text:
        raise DecodeError("empty multibase text")
    codec = _CODECS.get(text[0])
    if codec is None:
        raise DecodeError("unsupported multibase prefix")
    return text[0], codec[1](text[1:])
