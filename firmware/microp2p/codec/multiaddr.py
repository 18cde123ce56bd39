# Multiaddr (multiformats/multiaddr): text "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW..." <-> bytes
# <varint code><value>... for the protocols this project uses. Anything else — an unknown or
# unsupported protocol, a bad value, a truncated or over-long value, trailing bytes — raises
# DecodeError, so a Multiaddr object always holds a canonical, fully understood address.
#
# Text forms follow go-multiaddr: ip6 prints RFC 5952 text (IPv4-mapped as ::ffff:a.b.c.d),
# /ipfs/ is read as /p2p/, and /p2p/ prints base58. Deliberately stricter than go: ip4 accepts only
# dotted quads, ip6 only IPv6 text (no zone, no bare IPv4), ports only canonical decimal.
#
# /serial/<device> (code SERIAL_CODE, from the multicodec private-use range) names a local serial
# link, e.g. /serial/%2Fdev%2FttyUSB0. The value is the device path, percent-escaped in text so it
# stays one component. It is LOCAL ONLY: the gateway uses it to name its own UARTs and never
# advertises it (devices are reached from the network through a relay address).
#
# The ip6 and serial-path value codecs live in codec/multiaddr_ext.py, imported on first use.
from microp2p.codec import varint
from microp2p.identity import peerid
from microp2p.errors import DecodeError, UsageError

SERIAL_CODE = 0x300001  # private use (0x300000-0x3fffff); never leaves this process

MAX_ADDR_LEN = 1024  # bytes of one binary multiaddr we accept
MAX_TEXT_LEN = 2048  # characters of one text multiaddr we accept
MAX_COMPONENTS = 32  # components in one multiaddr (a relayed address has about 6)
MAX_NAME_LEN = 255  # dns/dns4/dns6/dnsaddr/sni value, in bytes
# serial device paths: multiaddr_ext.MAX_PATH_LEN

_NONE = 0  # no value
_IP4 = 1
_IP6 = 2
_PORT = 3
_NAME = 4  # a DNS-style name: non-empty utf-8, no '/'
_P2P = 5
_PATH = 6  # percent-escaped in text, raw in bytes

_FIXED = {_NONE: 0, _IP4: 4, _IP6: 16, _PORT: 2}

# (code, name, kind). Order only matters for name lookup: the first entry wins for a code.
PROTOCOLS = (
    (4, "ip4", _IP4),
    (41, "ip6", _IP6),
    (6, "tcp", _PORT),
    (273, "udp", _PORT),
    (53, "dns", _NAME),
    (54, "dns4", _NAME),
    (55, "dns6", _NAME),
    (56, "dnsaddr", _NAME),
    (421, "p2p", _P2P),
    (290, "p2p-circuit", _NONE),
    (460, "quic", _NONE),
    (461, "quic-v1", _NONE),
    (448, "tls", _NONE),
    (449, "sni", _NAME),
    (454, "noise", _NONE),
    (477, "ws", _NONE),
    (478, "wss", _NONE),
    (480, "http", _NONE),
    (443, "https", _NONE),
    (SERIAL_CODE, "serial", _PATH),
)

_BY_CODE = {}
_BY_NAME = {"ipfs": (421, "p2p", _P2P)}  # legacy name, printed as /p2p
for _p in PROTOCOLS:
    _BY_CODE[_p[0]] = _p
    _BY_NAME[_p[1]] = _p
_MAX_CODE = SERIAL_CODE


def _ext():
    # ip6 and serial-path value codecs: a leaf device never parses them, so they load on first
    # use (codec/multiaddr_ext.py) instead of sitting in every device's heap.
    from microp2p.codec import multiaddr_ext
    return multiaddr_ext


# ---- value codecs -------------------------------------------------------------------------

def _ip4_to_bytes(s):
    parts = s.split(".")
    if len(parts) != 4:
        raise DecodeError("bad ip4 address")
    out = bytearray(4)
    for i in range(4):
        out[i] = _dec(parts[i], 255)
    return bytes(out)


def _ip4_to_str(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def _dec(s, limit):
    # Canonical decimal: digits only, no sign, no leading zero, at most `limit`.
    # (bytes, not str characters: each one-character str would be interned for good)
    if not s or len(s) > 5 or (len(s) > 1 and s.startswith("0")):
        raise DecodeError("bad decimal number")
    n = 0
    for o in s.encode():
        if not 48 <= o <= 57:
            raise DecodeError("bad decimal number")
        n = n * 10 + o - 48
    if n > limit:
        raise DecodeError("number out of range")
    return n


def _check_name(raw):
    if not raw or len(raw) > MAX_NAME_LEN or b"/" in raw:
        raise DecodeError("bad name value")
    try:
        return str(raw, "utf-8")
    except UnicodeError:
        raise DecodeError("name is not utf-8")


def _value_from_text(kind, s):
    if kind == _IP4:
        return _ip4_to_bytes(s)
    if kind == _IP6:
        return _ext().ip6_to_bytes(s, _ip4_to_bytes)
    if kind == _PORT:
        n = _dec(s, 65535)
        return bytes((n >> 8, n & 0xFF))
    if kind == _NAME:
        raw = s.encode()
        _check_name(raw)
        return raw
    if kind == _P2P:
        return peerid.parse_text(s)
    if kind == _PATH:
        return _ext().path_from_text(s)
    raise UsageError("no value for this protocol")


def _value_to_text(kind, v):
    if kind == _IP4:
        return _ip4_to_str(v)
    if kind == _IP6:
        return _ext().ip6_to_str(v, _ip4_to_str)
    if kind == _PORT:
        return str((v[0] << 8) | v[1])
    if kind == _NAME:
        return str(v, "utf-8")
    if kind == _P2P:
        return peerid.PeerId(v).to_base58()
    if kind == _PATH:
        return _ext().path_escape(v)
    return ""


def _check_value(kind, v):
    # Binary values that are not fixed-size must still be meaningful.
    if kind == _NAME:
        _check_name(v)
    elif kind == _P2P:
        peerid.check_bytes(v)
    elif kind == _PATH:
        _ext().check_path(v)


# ---- parsing --------------------------------------------------------------------------------

def _parse_bytes(buf):
    """Validate binary multiaddr; return list of (proto tuple, value bytes)."""
    n = len(buf)
    if n == 0:
        raise DecodeError("empty multiaddr")
    if n > MAX_ADDR_LEN:
        raise DecodeError("multiaddr too long")
    comps = []
    pos = 0
    while pos < n:
        if len(comps) >= MAX_COMPONENTS:
            raise DecodeError("too many multiaddr components")
        code, pos = varint.decode(buf, pos, _MAX_CODE)
        p = _BY_CODE.get(code)
        if p is None:
            raise DecodeError("unsupported multiaddr protocol code 0x%x" % code)
        kind = p[2]
        size = _FIXED.get(kind)
        if size is None:
            size, pos = varint.decode(buf, pos, n - pos)
        if pos + size > n:
            raise DecodeError("truncated multiaddr value")
        v = bytes(buf[pos:pos + size])
        pos += size
        _check_value(kind, v)
        comps.append((p, v))
    return comps


def _parse_text(s):
    if not isinstance(s, str):
        raise DecodeError("multiaddr text must be str")
    if len(s) > MAX_TEXT_LEN:
        raise DecodeError("multiaddr text too long")
    # go-multiaddr ignores trailing slashes ("/ip4/1.2.3.4/tcp/1/" == "/ip4/1.2.3.4/tcp/1").
    end = len(s)
    while end > 0 and s[end - 1] == "/":
        end -= 1
    s = s[:end]
    if not s or s[0] != "/":
        raise DecodeError("multiaddr text must start with '/'")
    parts = s[1:].split("/")
    comps = []
    i = 0
    while i < len(parts):
        if len(comps) >= MAX_COMPONENTS:
            raise DecodeError("too many multiaddr components")
        p = _BY_NAME.get(parts[i])
        if p is None:
            raise DecodeError("unsupported multiaddr protocol %r" % parts[i][:32])
        i += 1
        if p[2] == _NONE:
            comps.append((p, b""))
            continue
        if i >= len(parts):
            raise DecodeError("missing value for /%s" % p[1])
        comps.append((p, _value_from_text(p[2], parts[i])))
        i += 1
    return comps


def _to_bytes(comps):
    out = bytearray()
    for p, v in comps:
        out += varint.encode(p[0])
        if _FIXED.get(p[2]) is None:
            out += varint.encode(len(v))
        out += v
    if len(out) > MAX_ADDR_LEN:
        raise DecodeError("multiaddr too long")
    return bytes(out)


class Multiaddr:
    __slots__ = ("_b",)

    def __init__(self, addr):
        """Multiaddr(text | bytes | Multiaddr). Raises DecodeError for anything invalid."""
        if isinstance(addr, Multiaddr):
            self._b = addr._b
        elif isinstance(addr, str):
            self._b = _to_bytes(_parse_text(addr))
        else:
            b = bytes(addr)
            _parse_bytes(b)
            self._b = b

    @classmethod
    def from_string(cls, s):
        if not isinstance(s, str):
            raise DecodeError("multiaddr text must be str")
        return cls(s)

    @classmethod
    def from_bytes(cls, b):
        if isinstance(b, str):
            raise DecodeError("multiaddr bytes must not be str")
        return cls(b)

    def to_bytes(self):
        return self._b

    def _comps(self):
        return _parse_bytes(self._b)

    def components(self):
        """[(name, value text)], value '' for protocols without a value."""
        return [(p[1], _value_to_text(p[2], v)) for p, v in self._comps()]

    def protocols(self):
        return [p[1] for p, v in self._comps()]

    def value_for(self, name):
        """Text value of the first component named `name`; '' if it has none; None if absent."""
        if name == "ipfs":
            name = "p2p"
        for p, v in self._comps():
            if p[1] == name:
                return _value_to_text(p[2], v)
        return None

    def raw_value_for(self, name):
        """Binary value of the first component named `name` (e.g. the unescaped serial device
        path, the peer ID multihash, the 4 address bytes), or None if absent."""
        if name == "ipfs":
            name = "p2p"
        for p, v in self._comps():
            if p[1] == name:
                return v
        return None

    def peer_id(self):
        """The PeerId of the last /p2p component, or None."""
        last = None
        for p, v in self._comps():
            if p[2] == _P2P:
                last = v
        return None if last is None else peerid.PeerId(last)

    def encapsulate(self, other):
        other = other if isinstance(other, Multiaddr) else Multiaddr(other)
        b = self._b + other._b
        if len(b) > MAX_ADDR_LEN:
            raise DecodeError("multiaddr too long")
        return Multiaddr(b)

    def decapsulate(self, other):
        """Everything before the last occurrence of `other`'s components (go semantics);
        self unchanged if they do not occur; None if nothing would be left."""
        other = other if isinstance(other, Multiaddr) else Multiaddr(other)
        mine = self._comps()
        theirs = other._comps()
        k = len(theirs)
        for i in range(len(mine) - k, -1, -1):
            if mine[i:i + k] == theirs:
                if i == 0:
                    return None
                return Multiaddr(_to_bytes(mine[:i]))
        return self

    def __str__(self):
        out = []
        for p, v in self._comps():
            out.append("/" + p[1])
            if p[2] != _NONE:
                out.append("/" + _value_to_text(p[2], v))
        return "".join(out)

    def __repr__(self):
        return "Multiaddr(%s)" % self.__str__()

    def __eq__(self, other):
        return isinstance(other, Multiaddr) and other._b == self._b

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._b)
