# The multiaddr value codecs a leaf device never needs (ip6 text, serial device paths), imported
# by codec/multiaddr.py the first time such a value is parsed or printed. See multiaddr.py for the
# rules (RFC 5952 ip6 text, percent-escaped paths).
from microp2p.errors import DecodeError

MAX_PATH_LEN = 255  # serial device path, in bytes

_HEX = "0123456789abcdef"


def _hex_group(s):
    if not s or len(s) > 4:
        raise DecodeError("bad ip6 group")
    n = 0
    for c in s.lower():
        i = _HEX.find(c)
        if i < 0:
            raise DecodeError("bad ip6 group")
        n = n * 16 + i
    return n


def ip6_to_bytes(s, ip4_to_bytes):
    # ip4_to_bytes: multiaddr's own parser, for an embedded IPv4 tail (no import back)
    if len(s) > 45:
        raise DecodeError("bad ip6 address")
    tail = b""
    head_s = s
    # An embedded IPv4 tail takes the last two groups.
    if "." in s:
        i = s.rfind(":")
        if i < 0:
            raise DecodeError("bad ip6 address")
        tail = ip4_to_bytes(s[i + 1:])
        head_s = s[:i + 1]
        if not head_s.endswith("::"):
            head_s = head_s[:-1]
    want = 8 - len(tail) // 2
    if "::" in head_s:
        left, _, right = head_s.partition("::")
        if "::" in right:
            raise DecodeError("bad ip6 address")
        lg = left.split(":") if left else []
        rg = right.split(":") if right else []
        if len(lg) + len(rg) > want - 1:
            raise DecodeError("bad ip6 address")
        groups = [_hex_group(g) for g in lg] + [0] * (want - len(lg) - len(rg)) + [_hex_group(g) for g in rg]
    else:
        gs = head_s.split(":") if head_s else []
        if len(gs) != want:
            raise DecodeError("bad ip6 address")
        groups = [_hex_group(g) for g in gs]
    out = bytearray()
    for g in groups:
        out.append(g >> 8)
        out.append(g & 0xFF)
    return bytes(out) + tail


def ip6_to_str(b, ip4_to_str):
    if b[:10] == b"\x00" * 10 and b[10] == 0xFF and b[11] == 0xFF:
        return "::ffff:" + ip4_to_str(b[12:])
    groups = [(b[2 * i] << 8) | b[2 * i + 1] for i in range(8)]
    # RFC 5952: compress the first longest run of two or more zero groups.
    best = -1
    best_len = 1
    i = 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:
                best = i
                best_len = j - i
            i = j
        else:
            i += 1
    if best < 0:
        return ":".join("%x" % g for g in groups)
    left = ":".join("%x" % g for g in groups[:best])
    right = ":".join("%x" % g for g in groups[best + best_len:])
    return left + "::" + right


def path_escape(raw):
    out = []
    for b in raw:
        c = chr(b)
        if b < 0x21 or b > 0x7E or c == "%" or c == "/":
            out.append("%%%02X" % b)
        else:
            out.append(c)
    return "".join(out)


def _path_unescape(s):
    out = bytearray()
    b = s.encode()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c == 0x25:  # '%'
            if i + 2 >= n:
                raise DecodeError("truncated percent escape")
            out.append(_hex_byte(b[i + 1], b[i + 2]))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _hex_byte(a, b):
    hi = _HEX.find(chr(a).lower())
    lo = _HEX.find(chr(b).lower())
    if hi < 0 or lo < 0:
        raise DecodeError("bad percent escape")
    return (hi << 4) | lo


def check_path(raw):
    if not raw or len(raw) > MAX_PATH_LEN:
        raise DecodeError("bad path value")
    return raw


def path_from_text(s):
    return check_path(_path_unescape(s))
