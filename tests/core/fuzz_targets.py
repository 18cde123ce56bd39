# Fuzz targets: one function per parser or machine, bytes in. Portable: atheris drives them on
# CPython (`make fuzz`, tests/fuzz/run.py) and tests/core/test_fuzz_corpus.py replays the saved
# corpus (seeds and every crash found) on CPython, the MicroPython unix port and the wasm port.
#
# A target may succeed or raise a ProtocolError subclass (the peer's fault, typed). Anything else
# (IndexError, KeyError, TypeError, UsageError, MemoryError, an assert) is a crash: a bug.
# Stateful machines take the input as a script: the first byte of each piece says how long the
# piece is, so one input exercises partial reads and many boundaries.
from microp2p.errors import ProtocolError
from microp2p.codec import varint, pb, cbor
from microp2p.codec.multiaddr import Multiaddr

_SCHEMA = ((1, "n", pb.U, False), (2, "b", pb.B, True), (3, "s", pb.S, False),
           (4, "m", ((1, "x", pb.Z, False), (2, "y", pb.B, True)), True))


def pieces(data, max_pieces=64):
    """Cut data into pieces whose lengths come from the data itself (1 + first byte % 64)."""
    out = []
    pos = 0
    n = len(data)
    while pos < n and len(out) < max_pieces:
        k = 1 + data[pos] % 64
        pos += 1
        out.append(data[pos:pos + k])
        pos += k
    if pos < n:
        out.append(data[pos:])
    return out


def fuzz_varint(data):
    for cap in (0x7F, 1 << 28, varint.MAX_VALUE):
        try:
            v, p = varint.decode(data, 0, cap)
        except ProtocolError:
            continue
        assert 0 <= v <= cap and 0 < p <= len(data)
        assert varint.decode(varint.encode(v), 0, cap)[0] == v
    r = varint.read(data, 0, varint.MAX_VALUE)
    assert r[0] is None or r[0] >= 0


def fuzz_protobuf(data):
    m = pb.decode(data, _SCHEMA, 8, 0, -1, [256])
    again = pb.decode(pb.encode(m, _SCHEMA), _SCHEMA, 8)
    assert again == m, (again, m)


def fuzz_multiaddr(data):
    try:
        m = Multiaddr.from_bytes(data)
    except ProtocolError:
        m = None
    if m is not None:
        s = str(m)
        assert Multiaddr.from_string(s).to_bytes() == m.to_bytes()
        m.components()
    try:
        text = bytes(data).decode()
    except Exception:  # UnicodeError on CPython; not every port checks
        return
    try:
        Multiaddr.from_string(text).to_bytes()
    except ProtocolError:
        pass


def fuzz_cbor(data):
    obj = cbor.decode(data)
    cbor.encode_own(obj) if _plain(obj) else None


def _plain(o, depth=0):
    if depth > 8:
        return False
    if isinstance(o, (bytes, str, int, bool)) or o is None:
        return True
    if isinstance(o, list):
        return all(_plain(x, depth + 1) for x in o)
    if isinstance(o, dict):
        return all(isinstance(k, (str, int)) and _plain(v, depth + 1) for k, v in o.items())
    return False


def fuzz_mss(data):
    from microp2p.conn import mss
    for m in (mss.Listener(("/noise", "/yamux/1.0.0", "/ipfs/id/1.0.0")),
              mss.Dialer(["/noise", "/tls/1.0.0"])):
        try:
            for piece in pieces(data):
                for ev in m.receive(piece):
                    assert ev[0] in ("agreed", "data")
                m.data_to_send()
        except ProtocolError:
            pass


_KEYS = {}


def _key(i):
    k = _KEYS.get(i)
    if k is None:
        from microp2p.identity.keys import Ed25519PrivateKey
        k = _KEYS[i] = Ed25519PrivateKey.from_seed(bytes([i]) * 32)
    return k


def fuzz_noise(data):
    from microp2p.conn import noise
    hs = noise.Handshake(False, _key(1), None, ("/yamux/1.0.0",))
    try:
        for piece in pieces(data, 8):
            hs.receive(piece)
            hs.data_to_send()
            if hs.complete:
                t = hs.transport()
                t.receive(piece)
                break
    except ProtocolError:
        pass
    # the initiator after its first message, fed the same bytes as the responder's answer
    hs = noise.Handshake(True, _key(2), None, ())
    hs.data_to_send()
    try:
        for piece in pieces(data, 8):
            hs.receive(piece)
    except ProtocolError:
        pass


def fuzz_yamux(data):
    from microp2p.conn import yamux
    for client in (False, True):
        s = yamux.Session(client, yamux.device_config() if client else None)
        now = 0
        try:
            for piece in pieces(data):
                for ev in s.receive(piece):
                    if ev[0] == "data":
                        s.consumed(ev[1], len(ev[2]))
                    elif ev[0] == "stream_opened" and ev[1] % 3 == 0 and s.is_open(ev[1]):
                        s.send(ev[1], b"answer")
                        s.close_stream(ev[1])
                now += 700
                s.tick(now)
                s.data_to_send()
            if s.can_open():
                s.open_stream()
        except ProtocolError:
            pass
        assert s.unconsumed_total() >= 0


def fuzz_identify(data):
    from microp2p.proto import identify
    from microp2p.identity.peerid import PeerId
    peer = PeerId.from_public_key(_key(3).public_key)
    for push in (False, True):
        r = identify.IdentifyReader(peer, push)
        try:
            for piece in pieces(data):
                r.receive(piece)
            r.receive_eof()
        except ProtocolError:
            pass
    try:
        identify.decode_identify(data, None, True)
    except ProtocolError:
        pass


def fuzz_gossipsub_rpc(data):
    from microp2p.pubsub import rpc as R
    from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
    try:
        R.decode_rpc(data)
    except ProtocolError:
        pass
    for device in (False, True):
        cfg = GossipSubConfig.device() if device else GossipSubConfig()
        g = GossipSub(b"local-peer", _key(4), cfg, 0)
        g.subscribe("t")
        g.add_peer(b"remote-peer", R.MESHSUB_V12)
        now = 0
        try:
            for piece in pieces(data):
                g.feed(b"remote-peer", piece, now)
                now += 400
                g.tick(now)
                g.outgoing()
        except ProtocolError:
            pass
        # the whole input as one RPC body, too
        try:
            g.receive_rpc(b"remote-peer", data, now)
        except ProtocolError:
            pass


def fuzz_serial_frame(data):
    from microp2p.serial import frame as sf
    d = sf.FrameDecoder(64)
    for piece in pieces(data):
        for f in d.feed(piece):
            assert len(f) == 7 and len(f[6]) <= 64
        assert d.buffered() <= d.cap


def fuzz_serial_link(data):
    from microp2p.serial import link as sl
    n = [0]

    def rnd(k):
        n[0] += 1
        return bytes(((n[0] * 131 + i * 7) & 0xFF) or 1 for i in range(k))

    ln = sl.Link(0, {"random": rnd, "window": 4, "mtu": 64})
    now = 0
    for piece in pieces(data):
        for ev in ln.receive(piece):
            assert ev[0] in ("data", "link_up", "link_down", "link_reset")
        now += 150
        ln.tick(now)
        ln.data_to_send()
        if ln.is_up():
            ln.send(b"x" * 10)


def fuzz_kad(data):
    from microp2p.proto.kad import codec as K
    r = K.Reader()
    try:
        for piece in pieces(data):
            for body in r.receive(piece):
                m = K.decode(body)
                again = K.decode(bytes(K.encode(m)))
                assert again.type == m.type and again.key == m.key
    except ProtocolError:
        pass
    m = K.decode(data)
    K.encode(m)


TARGETS = {
    "varint": fuzz_varint,
    "protobuf": fuzz_protobuf,
    "multiaddr": fuzz_multiaddr,
    "cbor": fuzz_cbor,
    "mss": fuzz_mss,
    "noise": fuzz_noise,
    "yamux": fuzz_yamux,
    "identify": fuzz_identify,
    "gossipsub_rpc": fuzz_gossipsub_rpc,
    "serial_frame": fuzz_serial_frame,
    "serial_link": fuzz_serial_link,
    "kad": fuzz_kad,
}


def run(name, data):
    """Run target `name` on data; ProtocolError is a pass, anything else propagates."""
    try:
        TARGETS[name](data)
    except ProtocolError:
        pass
