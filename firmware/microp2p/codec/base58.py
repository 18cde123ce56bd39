# base58btc, the text form of peer IDs ("12D3KooW..."): all the multibase a device needs to parse
# and print them. The other bases (codec/multibase.py: base32, base36, base16 and the prefixed
# forms) come with CIDs, which load on first use. The decoders here are shared with multibase.py.
#
# Strict: an unknown character raises DecodeError, so one byte string has one text form. Text
# longer than MAX_TEXT_LEN is refused before any big-int work (the radix bases are quadratic).
from microp2p.errors import DecodeError

MAX_TEXT_LEN = 1024  # longest text any decoder here or in multibase accepts (peer IDs are ~52, CIDs ~60)

# Alphabets are bytes: indexing or iterating a str makes a one-character string, which MicroPython
# interns for good (a qstr each), so the codecs work on bytes and ints only.
ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

_tables = {}  # alphabet -> its reverse lookup, built on first decode


def _table(alphabet):
    # 128-entry reverse lookup; 0xFF marks characters outside the alphabet.
    t = _tables.get(alphabet)
    if t is None:
        t = bytearray(b"\xff" * 128)
        for i, c in enumerate(alphabet):
            t[c] = i
        t = _tables[alphabet] = bytes(t)
    return t


def check_text(text):
    if not isinstance(text, str):
        raise DecodeError("multibase text must be str")
    if len(text) > MAX_TEXT_LEN:
        raise DecodeError("multibase text too long")


def digits(text, alphabet):
    """text -> bytearray of digit values in alphabet. Non-ASCII text encodes to bytes >= 128,
    which no alphabet has."""
    table = _table(alphabet)
    out = bytearray(text.encode())
    for i in range(len(out)):
        o = out[i]
        v = table[o] if o < 128 else 0xFF
        if v == 0xFF:
            raise DecodeError("invalid character for base")
        out[i] = v
    return out


def radix_encode(data, alphabet):
    # Leading zero bytes become leading zero digits; the rest is one big integer.
    base = len(alphabet)
    zeros = 0
    n = len(data)
    while zeros < n and data[zeros] == 0:
        zeros += 1
    num = int.from_bytes(bytes(data[zeros:]), "big") if zeros < n else 0
    out = bytearray()
    while num:
        num, r = divmod(num, base)
        out.append(alphabet[r])
    return (alphabet[:1] * zeros + bytes(reversed(out))).decode()


def radix_decode(text, alphabet):
    check_text(text)
    d = digits(text, alphabet)
    base = len(alphabet)
    zeros = 0
    while zeros < len(d) and d[zeros] == 0:
        zeros += 1
    num = 0
    for i in range(zeros, len(d)):
        num = num * base + d[i]
    body = b""
    if num:
        size = 0
        t = num
        while t:
            t >>= 8
            size += 1
        body = num.to_bytes(size, "big")
    return b"\x00" * zeros + body


def encode(data):
    return radix_encode(data, ALPHABET)


def decode(text):
    return radix_decode(text, ALPHABET)
