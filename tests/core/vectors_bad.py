# A shared corpus of hostile inputs. Every parser that takes bytes or text from outside is fed
# all of it (tests/core/test_bad_inputs.py, both runtimes) and may only succeed or raise a
# microp2p.errors.ProtocolError subclass. Other modules' tests may import BAD_BYTES/BAD_TEXT too.
#
# Built from plain loops (no random module) so the corpus is the same on every runtime.


def _lcg_bytes(seed, n):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


BAD_BYTES = [
    b"",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\x80" * 10,
    b"\xff" * 10,
    b"\xff" * 64,
    b"\x00" * 64,
    bytes.fromhex("ffffffffffffffff7f"),  # largest varint
    bytes.fromhex("ffffffffffffffffff01"),  # 10-byte varint
    bytes.fromhex("8000"),  # non-minimal varint
    bytes.fromhex("0a"),  # protobuf key, no length
    bytes.fromhex("0affffffff0f"),  # 4 GiB length
    bytes.fromhex("0a8080808010"),
    bytes.fromhex("12ffffffffffffffff7f00"),
    bytes.fromhex("0b0c"),  # groups
    bytes.fromhex("0001"),  # field 0
    bytes.fromhex("0801"),
    bytes.fromhex("08011220"),  # key protobuf, data missing
    bytes.fromhex("0801122000"),
    bytes.fromhex("080112ff01") + b"\x00" * 10,
    bytes.fromhex("0a240801122000"),  # envelope with a cut key
    bytes.fromhex("0a0408011200120203011a002a00"),
    bytes.fromhex("0a00120203011a0a0a0012000a0012002a40") + b"\x00" * 64,
    bytes.fromhex("0026002408011220") + b"\x01" * 32,  # identity multihash, one byte short
    bytes.fromhex("1220") + b"\x02" * 31,
    bytes.fromhex("1221") + b"\x02" * 33,
    bytes.fromhex("00ff7f") + b"\x00" * 8,
    bytes.fromhex("01720024"),
    bytes.fromhex("0172"),
    bytes.fromhex("0255"),
    bytes.fromhex("04"),
    bytes.fromhex("047f000001"),
    bytes.fromhex("047f0000010601"),
    bytes.fromhex("a503"),
    bytes.fromhex("a503ff"),
    bytes.fromhex("a5032600"),
    bytes.fromhex("35"),
    bytes.fromhex("3501"),
    bytes.fromhex("35012f"),
    bytes.fromhex("3502c328"),  # invalid utf-8 name
    bytes.fromhex("8180c001"),
    bytes.fromhex("8180c00100"),
    bytes.fromhex("8180c001ff"),
    bytes.fromhex("ffffffff0f"),
    bytes.fromhex("c328"),
    bytes.fromhex("eda080"),  # utf-8 encoded surrogate
    bytes.fromhex("f4908080"),  # beyond U+10FFFF
    b"/ip4/1.2.3.4/tcp/1",  # text where bytes are expected
    b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
]
for _seed in range(1, 25):
    BAD_BYTES.append(_lcg_bytes(_seed, 1 + (_seed * 7) % 90))

BAD_TEXT = [
    "",
    "/",
    "//",
    "///",
    "z",
    "b",
    "k",
    "f",
    "1",
    "Qm",
    "12D3KooW",
    "\x00",
    "\u00e9",
    "\u2603/\u2603",
    "zz",
    "z0OIl",
    "b====",
    "bAAAA",
    "b1",
    "k-",
    "f0",
    "fzz",
    "/ip4/",
    "/ip4/1.2.3.4/tcp/",
    "/ip4/1.2.3.4/tcp/65536",
    "/ip4/1.2.3.4/tcp/-1",
    "/ip6/::::",
    "/ip6/" + ":" * 40,
    "/ip6/" + "1:" * 20,
    "/ip4/" + "9" * 1000,
    "/p2p/" + "z" * 500,
    "/p2p/" + "1" * 500,
    "/p2p/b" + "a" * 500,
    "/p2p/k" + "z" * 500,
    "/dns/" + "a" * 300,
    "/serial/%",
    "/serial/%%",
    "/serial/%0",
    "/serial/%\u00e9\u00e9",
    "/p2p-circuit" * 50,
    "/ip4/1.2.3.4" * 100,
    "z" + "2" * 2000,
    "b" + "a" * 2000,
    "k" + "z" * 2000,
    "Qm" + "z" * 2000,
    " /ip4/1.2.3.4",
    "/ip4/1.2.3.4 ",
    "/ip4/1.2.3.4\n",
    "/ip4/\u0661.2.3.4",  # a non-ASCII digit
    "/tcp/\u0661\u0662",
]
