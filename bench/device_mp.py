# Allocation and time per operation of the device's hot paths, on MicroPython (run by
# bench/device.py under the unix port; also runs on CPython, where it measures time only):
#   micropython bench/device_mp.py [publishes] [handshakes]   -> one JSON line
# - bytes allocated per signed publish (leaf router: encode, sign, frame, queue) and per Noise XX
#   handshake side (with the node's cached static key, as io/node.py does), as gc.mem_alloc()
#   deltas with the GC disabled, so every byte allocated is counted;
# - then the time of the same operations with the GC enabled (best of BATCHES batches).
import gc
import json
import sys

try:
    from time import ticks_us, ticks_diff
    MP = True
except ImportError:  # CPython
    from time import perf_counter
    MP = False

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

from microp2p import crypto
from microp2p.conn import noise
from microp2p.identity import keys, peerid
from microp2p.pubsub.leaf import LeafSub, LeafConfig
from microp2p.pubsub import rpc as R

T = "sensors/readings"
PAYLOAD = bytes(range(48))  # about a CBOR reading's size
BATCHES = 3


# The reference workload for projecting to chips: an RFC 7748 X25519 ladder on big ints, each
# product reduced with % P (the "X25519 % P" workload of /work/shared/notes/micropython-feasibility.md
# section 3, whose ESP32 time that note estimates from instruction counts). Timed here on this host
# so the projection's ratio is measured in the same run, not assumed.
_P = 2 ** 255 - 19
_A24 = 121665


def ref_x25519(k, u):
    k = int.from_bytes(k, "little")
    k &= ~7
    k &= (1 << 254) - 1
    k |= 1 << 254
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in range(254, -1, -1):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a = (x2 + z2) % _P
        aa = a * a % _P
        b = (x2 - z2) % _P
        bb = b * b % _P
        e = (aa - bb) % _P
        c = (x3 + z3) % _P
        d = (x3 - z3) % _P
        da = d * a % _P
        cb = c * b % _P
        x3 = (da + cb) % _P
        x3 = x3 * x3 % _P
        z3 = (da - cb) % _P
        z3 = x1 * (z3 * z3 % _P) % _P
        x2 = aa * bb % _P
        z2 = e * ((aa + _A24 * e) % _P) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def ref_ms(runs=5):
    """Best time of the reference workload, checked against RFC 7748 section 5.2 (first vector)."""
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    want = bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    best = None
    for _ in range(runs):
        gc.collect()
        t = ticks_us()
        got = ref_x25519(k, u)
        dt = ticks_diff(ticks_us(), t) / 1000
        assert got == want, "reference workload gave a wrong result"
        best = dt if best is None or dt < best else best
    return best


def _alloc():
    return gc.mem_alloc() if MP else 0


def _ident(seed):
    sk = keys.Ed25519PrivateKey.from_seed(bytes([seed] * 32))
    return sk, peerid.PeerId.from_public_key(sk.public_key)


def leaf_pair():
    sk, me = _ident(1)
    _, gw = _ident(2)
    cfg = LeafConfig()
    cfg.seqno_start = 1
    r = LeafSub(me, sk, cfg, 0)
    r.add_peer(gw, R.MESHSUB_V12, True)
    r.subscribe(T)
    r.receive_rpc(gw, bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), 0)
    r.outgoing()
    return r


class _NoSignKey:
    """Stands in for the identity key: a fixed signature, so what the router itself allocates per
    publish (encode, frame, queue, seen, replay) shows apart from Ed25519."""

    def __init__(self, real):
        self.public_key = real.public_key

    def sign(self, msg):
        return _SIG


_SIG = bytes(64)


def handshake(a_key, b_key, b_peer, a_static, b_static, side_alloc):
    """One XX handshake between two in-process machines; side_alloc[0|1] += bytes each side
    allocated (its constructor and its receive/data_to_send calls)."""
    t = _alloc()
    i = noise.Handshake(True, a_key, b_peer, ("/yamux/1.0.0",), a_static[0], a_static[1], None, a_static[2])
    m1 = i.data_to_send()
    side_alloc[0] += _alloc() - t
    t = _alloc()
    r = noise.Handshake(False, b_key, None, ("/yamux/1.0.0",), b_static[0], b_static[1], None, b_static[2])
    r.receive(m1)
    m2 = r.data_to_send()
    side_alloc[1] += _alloc() - t
    t = _alloc()
    i.receive(m2)
    m3 = i.data_to_send()
    side_alloc[0] += _alloc() - t
    t = _alloc()
    r.receive(m3)
    side_alloc[1] += _alloc() - t
    assert i.complete and r.complete


def main(argv):
    n_pub = int(argv[1]) if len(argv) > 1 else 10
    n_hs = int(argv[2]) if len(argv) > 2 else 2
    out = {"runtime": sys.implementation.name, "crypto": crypto.backend_name,
           "word": 64 if sys.maxsize > 2 ** 32 else 32, "publishes": n_pub, "handshakes": n_hs}
    r = leaf_pair()
    r.publish(T, PAYLOAD, 0)  # warm: first-use caches (expanded key, buffers)
    r.outgoing()
    a_key, _ = _ident(3)
    b_key, b_peer = _ident(4)
    sa = noise.make_static(a_key)
    sb = noise.make_static(b_key)
    a_static = (sa[0], sa[1], crypto.x25519_public(sa[0]))
    b_static = (sb[0], sb[1], crypto.x25519_public(sb[0]))
    handshake(a_key, b_key, b_peer, a_static, b_static, [0, 0])  # warm
    gc.collect()
    if MP:
        gc.disable()
        total = 0
        for k in range(n_pub):
            t = _alloc()
            r.publish(T, PAYLOAD, k)
            r.outgoing()
            total += _alloc() - t
            if k % 4 == 3:
                gc.enable()
                gc.collect()
                gc.disable()
        out["alloc_per_publish"] = total // n_pub
        real = r.key
        r.key = _NoSignKey(real)
        total = 0
        for k in range(n_pub):
            t = _alloc()
            r.publish(T, PAYLOAD, k)
            r.outgoing()
            total += _alloc() - t
        r.key = real
        out["alloc_per_publish_without_sign"] = total // n_pub
        gc.enable()
        gc.collect()
        gc.disable()
        side = [0, 0]
        for _ in range(n_hs):
            handshake(a_key, b_key, b_peer, a_static, b_static, side)
            gc.enable()
            gc.collect()
            gc.disable()
        out["alloc_per_handshake_initiator"] = side[0] // n_hs
        out["alloc_per_handshake_responder"] = side[1] // n_hs
        gc.enable()
    # time: the best of BATCHES batches (the host may be shared; the best is the most stable)
    best_pub = best_hs = None
    for _ in range(BATCHES):
        gc.collect()
        t = ticks_us()
        for k in range(n_pub):
            r.publish(T, PAYLOAD, k)
            r.outgoing()
        dt = ticks_diff(ticks_us(), t) / 1000 / n_pub
        best_pub = dt if best_pub is None or dt < best_pub else best_pub
        gc.collect()
        t = ticks_us()
        for _ in range(n_hs):
            handshake(a_key, b_key, b_peer, a_static, b_static, [0, 0])
        dt = ticks_diff(ticks_us(), t) / 1000 / n_hs
        best_hs = dt if best_hs is None or dt < best_hs else best_hs
    out["ms_per_publish"] = best_pub
    out["ms_reference_x25519_bigint"] = ref_ms()
    out["ms_per_handshake_both_sides"] = best_hs
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
