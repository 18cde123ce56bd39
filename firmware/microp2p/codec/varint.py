# Unsigned varint as multiformats defines it: LEB128, minimal encoding only, at most 9 bytes
# (63 bits). Every decoder takes the largest value the caller is willing to accept, so a length
# prefix is rejected *before* anything is buffered for it.
from microp2p.errors import DecodeError

MAX_LEN = 9
MAX_VALUE = (1 << 63) - 1


def encode(n):
    if n < 0 or n > MAX_VALUE:
        raise ValueError("uvarint out of range")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read(buf, pos=0, max_value=MAX_VALUE, end=-1):
    """Streaming read. Returns (value, new_pos), or (None, pos) when buf ends mid-varint.

    Raises DecodeError for a non-minimal encoding, more than 9 bytes, or a value > max_value."""
    if end < 0:
        end = len(buf)
    value = 0
    shift = 0
    i = pos
    while i < end:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0 and i - pos > 1:
                raise DecodeError("non-minimal varint")
            if value > max_value:
                raise DecodeError("varint over limit")
            return value, i
        shift += 7
        if i - pos >= MAX_LEN:
            raise DecodeError("varint too long")
        if value > max_value:
            # Already too large even if the remaining bytes were zero: fail before buffering.
            raise DecodeError("varint over limit")
    return None, pos


def decode(buf, pos=0, max_value=MAX_VALUE, end=-1):
    """Read a varint that must be complete. Returns (value, new_pos); truncation is an error."""
    value, npos = read(buf, pos, max_value, end)
    if value is None:
        raise DecodeError("truncated varint")
    return value, npos
