# A small strict CBOR (RFC 8949) codec for the subset microp2p apps exchange: maps, arrays, text,
# byte strings, integers in [-2**64, 2**64), floats, true/false/null. Portable (CPython and
# MicroPython), no tags, no indefinite lengths, no undefined/simple values.
#
#   encode(obj) -> bytes          deterministic: shortest heads, map keys sorted by their encoded
#                                 bytes (RFC 8949 §4.2.1), floats always float64 (no precision games)
#   decode(data) -> obj           strict: the whole input is one item, shortest heads only, no
#                                 duplicate map keys, valid UTF-8, every length and count checked
#                                 against a named cap *before* anything is allocated
#
# Decoding is the side that sees a remote's bytes (commands arrive over pubsub), so it raises only
# DecodeError (malformed) or LimitError (over a cap). Encoding our own values raises UsageError for
# what the subset cannot express.
#
# On a board where micropython-lib's `cbor2` was installed with mip, encode() uses it (it is frozen
# or precompiled there, so it costs no extra RAM to load ours for encoding too). decode() stays ours:
# micropython-lib's decoder has no depth or size bounds, and it is the side a remote controls.
import struct
import sys

from microp2p.errors import DecodeError, LimitError, UsageError

MAX_DEPTH = 16          # nesting of arrays/maps
MAX_ITEMS = 256         # elements of one array or pairs of one map
MAX_TOTAL_ITEMS = 2048  # items in one document (bounds the decoder's work)
MAX_STRING = 16384      # bytes of one text or byte string
MAX_INPUT = 65536       # bytes of one document

_INT_LIMIT = 1 << 64

_MAJOR_UINT = 0
_MAJOR_NINT = 1
_MAJOR_BYTES = 2
_MAJOR_TEXT = 3
_MAJOR_ARRAY = 4
_MAJOR_MAP = 5
_MAJOR_TAG = 6
_MAJOR_SIMPLE = 7

_FALSE = 0xF4
_TRUE = 0xF5
_NULL = 0xF6
_FLOAT64 = 0xFB


# ---- encoder ---------------------------------------------------------------------------------

def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(mt | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(mt | 27)
        out += n.to_bytes(8, "big")


def _enc(out, obj, depth):
    # bool before int: on CPython True is an int (and on MicroPython it is not)
    if obj is None:
        out.append(_NULL)
    elif obj is True:
        out.append(_TRUE)
    elif obj is False:
        out.append(_FALSE)
    elif isinstance(obj, int):
        if 0 <= obj < _INT_LIMIT:
            _head(out, _MAJOR_UINT, obj)
        elif -_INT_LIMIT <= obj < 0:
            _head(out, _MAJOR_NINT, -1 - obj)
        else:
            raise UsageError("cbor: integer outside [-2**64, 2**64)")
    elif isinstance(obj, float):
        out.append(_FLOAT64)
        out += struct.pack(">d", obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _head(out, _MAJOR_TEXT, len(b))
        out += b
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, _MAJOR_BYTES, len(obj))
        out += obj
    elif isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise UsageError("cbor: nesting deeper than MAX_DEPTH")
        _head(out, _MAJOR_ARRAY, len(obj))
        for x in obj:
            _enc(out, x, depth + 1)
    elif isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise UsageError("cbor: nesting deeper than MAX_DEPTH")
        pairs = []
        for k in obj:
            kb = bytearray()
            _enc(kb, k, depth + 1)
            pairs.append((bytes(kb), obj[k]))
        # deterministic whatever the runtime's dict order (MicroPython's is not insertion order)
        pairs.sort(key=lambda p: p[0])
        _head(out, _MAJOR_MAP, len(pairs))
        for kb, v in pairs:
            out += kb
            _enc(out, v, depth + 1)
    else:
        raise UsageError("cbor: cannot encode %s" % type(obj).__name__)


def encode_own(obj):
    """encode() with this module's encoder whatever the runtime (deterministic output)."""
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


encode = encode_own
BACKEND = "microp2p"
if sys.implementation.name == "micropython":
    try:
        from cbor2 import dumps as _lib_dumps  # micropython-lib, installed with mip

        def encode(obj):
            return bytes(_lib_dumps(obj))

        BACKEND = "cbor2"
    except ImportError:
        pass


# ---- decoder ---------------------------------------------------------------------------------

def _half_to_float(h):
    # IEEE 754 binary16 by hand: struct's 'e' is not on every port
    sign = -1.0 if h & 0x8000 else 1.0
    exp = (h >> 10) & 0x1F
    frac = h & 0x3FF
    if exp == 0:
        return sign * frac * 2.0 ** -24
    if exp == 31:
        return sign * float("inf") if frac == 0 else float("nan")
    return sign * (1024 + frac) * 2.0 ** (exp - 25)


class _Decoder:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0
        self.items = 0

    def _take(self, n):
        p = self.pos
        if n > len(self.buf) - p:
            raise DecodeError("cbor: truncated")
        self.pos = p + n
        return p

    def _arg(self, ai):
        """The head's argument for additional info ai; shortest form only."""
        if ai < 24:
            return ai
        if ai == 24:
            p = self._take(1)
            n = self.buf[p]
            if n < 24:
                raise DecodeError("cbor: non-shortest head")
            return n
        if ai == 25:
            size = 2
        elif ai == 26:
            size = 4
        elif ai == 27:
            size = 8
        elif ai == 31:
            raise DecodeError("cbor: indefinite length not supported")
        else:
            raise DecodeError("cbor: reserved additional info %d" % ai)
        p = self._take(size)
        n = int.from_bytes(self.buf[p:p + size], "big")
        if n < (1 << (4 * size)):  # would have fitted the next smaller head
            raise DecodeError("cbor: non-shortest head")
        return n

    def _string(self, ai):
        n = self._arg(ai)
        if n > MAX_STRING:
            raise LimitError("cbor: string longer than MAX_STRING")
        p = self._take(n)
        return bytes(self.buf[p:p + n])

    def _count(self, ai):
        n = self._arg(ai)
        if n > MAX_ITEMS:
            raise LimitError("cbor: container larger than MAX_ITEMS")
        # every item takes at least one byte: refuse counts the input cannot hold before allocating
        if n > len(self.buf) - self.pos:
            raise DecodeError("cbor: truncated")
        return n

    def item(self, depth):
        self.items += 1
        if self.items > MAX_TOTAL_ITEMS:
            raise LimitError("cbor: more than MAX_TOTAL_ITEMS items")
        p = self._take(1)
        ib = self.buf[p]
        major = ib >> 5
        ai = ib & 0x1F
        if major == _MAJOR_UINT:
            return self._arg(ai)
        if major == _MAJOR_NINT:
            return -1 - self._arg(ai)
        if major == _MAJOR_BYTES:
            return self._string(ai)
        if major == _MAJOR_TEXT:
            b = self._string(ai)
            try:
                return str(b, "utf-8")
            except (UnicodeError, ValueError):
                raise DecodeError("cbor: text is not UTF-8")
        if major == _MAJOR_ARRAY or major == _MAJOR_MAP:
            if depth >= MAX_DEPTH:
                raise LimitError("cbor: nesting deeper than MAX_DEPTH")
            n = self._count(ai)
            if major == _MAJOR_ARRAY:
                out = []
                for _ in range(n):
                    out.append(self.item(depth + 1))
                return out
            d = {}
            for _ in range(n):
                k = self.item(depth + 1)
                if isinstance(k, (list, dict)):
                    raise DecodeError("cbor: map key is not hashable")
                if k in d:
                    raise DecodeError("cbor: duplicate map key")
                d[k] = self.item(depth + 1)
            return d
        if major == _MAJOR_TAG:
            raise DecodeError("cbor: tags not supported")
        # major 7
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 25:
            p = self._take(2)
            return _half_to_float(int.from_bytes(self.buf[p:p + 2], "big"))
        if ai == 26:
            p = self._take(4)
            return struct.unpack(">f", self.buf[p:p + 4])[0]
        if ai == 27:
            p = self._take(8)
            return struct.unpack(">d", self.buf[p:p + 8])[0]
        raise DecodeError("cbor: simple value %d not supported" % ai)


def decode(data, max_len=MAX_INPUT):
    """The one CBOR item that is all of data. DecodeError / LimitError on anything else."""
    if len(data) > max_len:
        raise LimitError("cbor: input longer than %d bytes" % max_len)
    if not isinstance(data, bytes):
        data = bytes(data)
    dec = _Decoder(data)
    obj = dec.item(0)
    if dec.pos != len(data):
        raise DecodeError("cbor: trailing bytes")
    return obj
