#!/usr/bin/env python3
# Writes the seed corpus tests/fuzz/corpus/<target>/seed-* from real protocol exchanges made by
# the project's own machines (deterministic keys). Run once; the seeds are committed. Crashes
# found by `make fuzz` are saved next to them (crash-*) and replayed by `make test`.
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tests", "core")]

from microp2p.codec import varint, pb, cbor  # noqa: E402
from microp2p.codec.multiaddr import Multiaddr  # noqa: E402
from microp2p.conn import mss, noise, yamux  # noqa: E402
from microp2p.proto import identify  # noqa: E402
from microp2p.pubsub import rpc as R  # noqa: E402
from microp2p.serial import frame as sf, link as sl  # noqa: E402
import fuzz_targets as F  # noqa: E402


def script(b):
    """Inverse of fuzz_targets.pieces: the bytes cut into pieces of <= 64, each length-prefixed."""
    out = bytearray()
    pos = 0
    k = 1
    while pos < len(b):
        n = min(k, len(b) - pos)
        out.append(n - 1)
        out += b[pos:pos + n]
        pos += n
        k = k % 64 + 13  # varying boundaries
    return bytes(out)


def seeds():
    S = {}
    S["varint"] = [varint.encode(v) for v in (0, 1, 127, 128, 300, 1 << 28, (1 << 63) - 1)] + [b"\xff" * 10 + b"\x01"]
    S["protobuf"] = [bytes(pb.encode({"n": 5, "b": [b"x", b""], "s": "h\xe9", "m": [{"x": True, "y": [b"1"]}]}, F._SCHEMA))]
    addrs = ["/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/0", "/dns4/example.com/tcp/443/wss",
             "/ip4/1.2.3.4/udp/4001/quic-v1", "/serial/%2Fdev%2FttyUSB0",
             "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLxrGmrMsoQEHbZ4ddiFtVbDYBwDNqrGk5V3ZTqX4ZiFj"]
    S["multiaddr"] = []
    for a in addrs:
        try:
            m = Multiaddr.from_string(a)
        except Exception:
            continue
        S["multiaddr"] += [m.to_bytes(), a.encode()]
    S["cbor"] = [cbor.encode_own({"t": 21.5, "h": 40, "id": "greenhouse-1", "ok": True, "v": [1, -2, b"\x00"]}),
                 cbor.encode_own([None, 0, 1 << 40, "x" * 30])]
    d = mss.Dialer(["/noise"])
    lst = mss.Listener(("/noise",))
    first = d.data_to_send()
    lst.receive(first)
    S["mss"] = [script(first), script(lst.data_to_send()),
                script(mss.encode_message(b"/multistream/1.0.0") + mss.encode_message(b"ls") +
                       mss.encode_message(b"na") + mss.encode_message(b"/yamux/1.0.0") + b"early data")]
    ini = noise.Handshake(True, F._key(9), None, ("/yamux/1.0.0",))
    msg1 = ini.data_to_send()
    resp = noise.Handshake(False, F._key(1), None, ("/yamux/1.0.0",))
    resp.receive(msg1)
    msg2 = resp.data_to_send()
    ini.receive(msg2)
    msg3 = ini.data_to_send()
    S["noise"] = [script(msg1), script(msg1 + msg3), script(msg2)]
    h = yamux.encode_header
    y = (h(yamux.TYPE_WINDOW_UPDATE, yamux.FLAG_SYN, 1, 0) + h(yamux.TYPE_DATA, 0, 1, 5) + b"hello" +
         h(yamux.TYPE_PING, yamux.FLAG_SYN, 0, 7) + h(yamux.TYPE_WINDOW_UPDATE, 0, 1, 4096) +
         h(yamux.TYPE_DATA, yamux.FLAG_FIN, 1, 0) + h(yamux.TYPE_DATA, yamux.FLAG_SYN, 3, 2) + b"hi" +
         h(yamux.TYPE_WINDOW_UPDATE, yamux.FLAG_RST, 3, 0) + h(yamux.TYPE_GO_AWAY, 0, 0, 0))
    S["yamux"] = [script(y), script(h(yamux.TYPE_WINDOW_UPDATE, yamux.FLAG_SYN, 2, 0) + h(yamux.TYPE_WINDOW_UPDATE, yamux.FLAG_ACK, 1, 0))]
    key = F._key(3)
    idm = identify.frame(identify.encode_identify(
        key, ["/ipfs/id/1.0.0", "/meshsub/1.2.0"], [Multiaddr.from_string("/ip4/127.0.0.1/tcp/4001")],
        Multiaddr.from_string("/ip4/127.0.0.1/tcp/5555"), "microp2p/fuzz"))
    S["identify"] = [script(idm), script(idm + idm)]
    author = F._key(5)
    msg = {"from": __import__("microp2p.identity.peerid", fromlist=["x"]).PeerId.from_public_key(author.public_key).to_bytes(),
           "data": b"\xa1at\xf9\x4d\x00", "seqno": b"\x00" * 7 + b"\x01", "topic": "t"}
    R.sign_message(msg, author)
    rpcs = [
        {"subscriptions": [{"subscribe": True, "topicid": "t"}, {"subscribe": False, "topicid": "u"}]},
        {"publish": [msg]},
        {"control": {"ihave": [{"topicID": "t", "messageIDs": [b"a" * 40]}], "iwant": [{"messageIDs": [b"b" * 40]}],
                     "graft": [{"topicID": "t"}], "prune": [{"topicID": "t", "backoff": 60, "peers": [{"peerID": b"x"}]}],
                     "idontwant": [{"messageIDs": [b"c" * 40]}]}},
    ]
    framed = b"".join(R.frame(R.encode_rpc(r)) for r in rpcs)
    S["gossipsub_rpc"] = [script(framed)] + [bytes(R.encode_rpc(r)) for r in rpcs]
    out = bytearray()
    sf.encode_frame(out, sf.K_DATA, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", 3, 2, 0x81, b"payload\x00bytes")
    sf.encode_frame(out, sf.K_ACK, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", 0, 4, 0, None)
    S["serial_frame"] = [script(bytes(out)), script(b"\x00\x00garbage\x00" + bytes(out))]
    # a peer link's answers to the harness link (same deterministic sids as in the target)
    n = [0]

    def rnd(k):
        n[0] += 1
        return bytes(((n[0] * 131 + i * 7) & 0xFF) or 1 for i in range(k))

    a = sl.Link(0, {"random": rnd, "window": 4, "mtu": 64})
    b = sl.Link(0, {"window": 4, "mtu": 64})
    transcript = bytearray()
    now = 0
    for _ in range(12):
        now += 150
        a.tick(now)
        b.tick(now)
        b.receive(a.data_to_send())
        if b.is_up():
            b.send(b"from the peer " * 3)
        tb = b.data_to_send()
        transcript += tb
        a.receive(tb)
    S["serial_link"] = [script(bytes(transcript))]
    from microp2p.proto.kad import codec as K
    pid = __import__("microp2p.identity.peerid", fromlist=["x"]).PeerId.from_public_key(F._key(6).public_key).to_bytes()
    msgs = [K.Message(K.FIND_NODE, pid, closer=[(pid, [Multiaddr.from_string("/ip4/127.0.0.1/tcp/4001")])]),
            K.Message(K.GET_PROVIDERS, b"\x12\x20" + b"k" * 32, providers=[(pid, [])])]
    S["kad"] = [script(b"".join(bytes(K.frame(bytes(K.encode(m)))) for m in msgs))] + [bytes(K.encode(m)) for m in msgs]
    return S


def main():
    for name, items in seeds().items():
        assert name in F.TARGETS, name
        d = os.path.join(HERE, "corpus", name)
        os.makedirs(d, exist_ok=True)
        for i, b in enumerate(items):
            with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
                f.write(b)
            F.run(name, b)  # every seed passes its target
        print("%-14s %d seeds" % (name, len(items)))


if __name__ == "__main__":
    main()
