# Throughput of the gossipsub machine alone: 100-byte messages published on router A and
# delivered by router B over one in-memory hop (no sockets, no transport crypto), in msg/s.
# Signed rows include A's Ed25519 signature and B's verification (StrictSign); unsigned rows
# (StrictNoSign) show the router's own cost. Also: publish cost alone and heap bytes allocated
# per publish (MicroPython: gc.mem_alloc with the collector paused).
#
#   .venv/bin/python bench/gossip_machine.py            # CPython (native + pure crypto), then MicroPython
#   .venv/bin/micropython -X heapsize=8M bench/gossip_machine.py --here
import sys
import gc

from benchenv import now_s, elapsed, ROOT, MICROPYTHON  # noqa: E402,F401
if not MICROPYTHON:
    import microp2p_host  # noqa: F401  (native crypto backend)

from microp2p import crypto  # noqa: E402
from microp2p.identity import keys, peerid
from microp2p.pubsub import rpc as R  # noqa: E402
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig  # noqa: E402

TOPIC = "bench"
SIZE = 100


def pair(signed, device=False):
    cfg_a = GossipSubConfig.device() if device else GossipSubConfig()
    cfg_b = GossipSubConfig()
    if signed:
        ka = keys.Ed25519PrivateKey.from_seed(bytes([1] * 32))
        kb = keys.Ed25519PrivateKey.from_seed(bytes([2] * 32))
        ia = peerid.PeerId.from_public_key(ka.public_key)
        ib = peerid.PeerId.from_public_key(kb.public_key)
    else:
        for c in (cfg_a, cfg_b):
            c.sign_policy = "strict-no-sign"
            c.msg_id_fn = lambda m: m["data"][:8]
        ka = kb = None
        ia, ib = b"A", b"B"
    a = GossipSub(ia, ka, cfg_a, 0)
    b = GossipSub(ib, kb, cfg_b, 0)
    a.add_peer(ib, R.MESHSUB_V12, True)
    b.add_peer(ia, R.MESHSUB_V12, False)
    a.subscribe(TOPIC)
    b.subscribe(TOPIC)
    for p, f in a.outgoing():
        b.feed(ia, f, 0)
    for p, f in b.outgoing():
        a.feed(ib, f, 0)
    a.heartbeat(1000)
    b.heartbeat(1000)
    for p, f in a.outgoing():
        b.feed(ia, f, 1000)
    for p, f in b.outgoing():
        a.feed(ib, f, 1000)
    return a, b, ia


def payload(i):
    return i.to_bytes(8, "big") + b"\x5a" * (SIZE - 8)


def one_hop(signed, n, device=False):
    a, b, ia = pair(signed, device)
    got = 0
    now = 1000
    t0 = now_s()
    for i in range(n):
        if i % 100 == 0:
            now += 100  # 1000 msg per simulated second: under the per-peer rate cap
            a.tick(now)
            b.tick(now)
        a.publish(TOPIC, payload(i), now)
        for p, f in a.outgoing():
            for ev in b.feed(ia, f, now):
                if ev[0] == "message":
                    got += 1
        b.outgoing()
    dt = elapsed(t0)
    assert got == n, (got, n)
    return n / dt


def publish_only(signed, n, device=False):
    """(ms per publish, heap bytes allocated per publish or None)."""
    a, b, ia = pair(signed, device)
    for i in range(3):  # warm up
        a.publish(TOPIC, payload(10 ** 6 + i), 1000)
        a.outgoing()
    gc.collect()
    per_alloc = None
    if MICROPYTHON:
        gc.disable()
        m0 = gc.mem_alloc()
    t0 = now_s()
    for i in range(n):
        a.publish(TOPIC, payload(i), 1000)
        a.outgoing()
    dt = elapsed(t0)
    if MICROPYTHON:
        per_alloc = (gc.mem_alloc() - m0) // n
        gc.enable()
        gc.collect()
    return dt * 1000 / n, per_alloc


def run_here(label):
    rows = []
    ns = 30 if MICROPYTHON else 2000
    big = 2000 if MICROPYTHON else 20000
    rows.append((label, "1 hop signed (sign+verify)", "%.0f msg/s" % one_hop(True, ns)))
    rows.append((label, "1 hop unsigned (router only)", "%.0f msg/s" % one_hop(False, big)))
    for signed, device, n in ((True, False, 5 if MICROPYTHON else ns), (False, False, big // 4),
                              (False, True, big // 4)):
        ms, per = publish_only(signed, n, device)
        what = "publish %s%s" % ("signed" if signed else "unsigned", ", device config" if device else "")
        rows.append((label, what, "%.3f ms/msg%s" % (ms, "" if per is None else ", %d B allocated/msg" % per)))
    return rows


def show(rows):
    for r in rows:
        print("%-34s %-36s %s" % r)


def main():
    if "--here" in sys.argv:
        label = "micropython" if MICROPYTHON else "cpython " + str(crypto.backend_name)
        show(run_here(label))
        return
    rows = run_here("cpython " + str(crypto.backend_name))
    crypto.use_pure()
    rows += run_here("cpython pure")
    show(rows)
    import os
    import subprocess
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    if os.path.exists(mp):
        out = subprocess.run([mp, "-X", "heapsize=64M", os.path.join(ROOT, "bench", "gossip_machine.py"), "--here"],
                             capture_output=True, text=True, timeout=600)
        sys.stdout.write(out.stdout)
        if out.returncode:
            sys.stdout.write(out.stderr)


if __name__ == "__main__":
    main()
