# Every parser of outside input, fed the shared hostile corpus plus mutations of valid inputs:
# it may succeed, or raise a ProtocolError subclass -- never IndexError, ValueError, KeyError,
# UnicodeError, TypeError or MemoryError.
from microp2p.codec import varint, pb, multibase, multihash, cid
from microp2p.identity import keys, envelope
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.errors import ProtocolError
import vectors_bad

_S = ((1, "n", pb.U, False), (2, "b", pb.B, True), (3, "s", pb.S, False),
      (4, "m", ((1, "x", pb.Z, False),), True))


def _use_multiaddr(m):
    str(m)
    m.components()
    return Multiaddr.from_bytes(m.to_bytes())


def _use_peer(p):
    str(p)
    p.to_cid()
    p.public_key()
    return PeerId.from_bytes(p.to_bytes())


BYTE_PARSERS = [
    ("varint.decode", lambda b: varint.decode(b)),
    ("varint.read", lambda b: varint.read(b, 0, 1 << 32)),
    ("pb.decode", lambda b: pb.decode(b, _S, 8)),
    ("multihash.decode", lambda b: multihash.decode(b)),
    ("multihash.decode any", lambda b: multihash.decode(b, 64, True)),
    ("cid.from_bytes", lambda b: cid.from_bytes(b)),
    ("Multiaddr.from_bytes", lambda b: _use_multiaddr(Multiaddr.from_bytes(b))),
    ("PeerId.from_bytes", lambda b: _use_peer(PeerId.from_bytes(b))),
    ("public_key_from_protobuf", lambda b: keys.public_key_from_protobuf(b)),
    ("private_key_from_protobuf", lambda b: keys.private_key_from_protobuf(b)),
    ("open_envelope", lambda b: envelope.open_envelope(b, "d")),
    ("open_peer_record", lambda b: envelope.open_peer_record(b)),
    ("PeerRecord.from_protobuf", lambda b: envelope.PeerRecord.from_protobuf(b)),
]

TEXT_PARSERS = [
    ("multibase.decode", lambda t: multibase.decode(t)),
    ("b58decode", lambda t: multibase.b58decode(t)),
    ("b32decode", lambda t: multibase.b32decode(t)),
    ("b36decode", lambda t: multibase.b36decode(t)),
    ("b16decode", lambda t: multibase.b16decode(t)),
    ("cid.decode", lambda t: cid.decode(t)),
    ("Multiaddr.from_string", lambda t: _use_multiaddr(Multiaddr.from_string(t))),
    ("PeerId.from_string", lambda t: _use_peer(PeerId.from_string(t))),
]


def _feed(parsers, inputs):
    bad = []
    for name, fn in parsers:
        for x in inputs:
            try:
                fn(x)
            except ProtocolError:
                pass
            except Exception as e:  # noqa: anything else is a bug in the parser
                bad.append((name, x, repr(e)))
    assert not bad, bad[:5]


def test_byte_parsers_on_corpus():
    _feed(BYTE_PARSERS, vectors_bad.BAD_BYTES)


def test_text_parsers_on_corpus():
    _feed(TEXT_PARSERS, vectors_bad.BAD_TEXT)


def test_text_parsers_on_wrong_python_types():
    # wrong Python types from a sloppy caller must still come out typed for the text parsers
    _feed(TEXT_PARSERS, [b"", b"z", b"/ip4/1.2.3.4", None, 5])


def _mutations(b):
    out = [b[:k] for k in range(len(b))]
    out.append(b + b"\x00")
    out.append(b + b"\xff")
    for i in range(len(b)):
        m = bytearray(b)
        m[i] ^= 0xFF
        out.append(bytes(m))
    return out


def test_mutated_valid_binaries():
    k = keys.Ed25519PrivateKey.from_seed(bytes(32))
    valid = [
        Multiaddr("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA").to_bytes(),
        Multiaddr("/dns4/a.b/tcp/1/ws/p2p-circuit/serial/%2Fdev%2Fx").to_bytes(),
        Multiaddr("/ip6/::1/udp/1/quic-v1").to_bytes(),
        k.to_protobuf(),
        k.public_key.to_protobuf(),
        PeerId.from_public_key(k.public_key).to_bytes(),
        cid.to_bytes(cid.LIBP2P_KEY, PeerId.from_public_key(k.public_key).to_bytes()),
    ]
    cheap = [p for p in BYTE_PARSERS if not p[0].startswith("open_") and p[0] != "private_key_from_protobuf"]
    for v in valid:
        _feed(cheap, _mutations(v))


def test_mutated_envelope():
    # every truncation and a few flips of a real record envelope: each costs a verify, so bounded
    k = keys.Ed25519PrivateKey.from_seed(bytes(32))
    e = envelope.seal_peer_record(k, 1, ["/ip4/1.2.3.4/tcp/1"])
    inputs = [e[:n] for n in range(0, len(e), 7)] + [e + b"\x00"]
    _feed([p for p in BYTE_PARSERS if p[0].startswith("open_")], inputs)


def test_mutated_valid_texts():
    valid = ["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
             "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", "/ip6/2001:db8::1/udp/1"]
    for v in valid:
        for i in range(len(v)):  # one small batch at a time: fits a device-sized heap
            _feed(TEXT_PARSERS, (v[:i], v[:i] + "\u00ff" + v[i + 1:], v[:i] + "/" + v[i + 1:]))
