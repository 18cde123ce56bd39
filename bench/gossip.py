# Gossipsub over real connections, one hop, signed 100-byte messages: microp2p (CPython) ->
# microp2p, js-libp2p -> js-libp2p, py-libp2p -> py-libp2p, go-libp2p -> go-libp2p and
# rust-libp2p -> rust-libp2p, plus microp2p <-> go and microp2p <-> rust, measured in the same run
# with the same harness (tests/interop/peers.py: real peer processes on loopback, TCP + Noise +
# yamux). The targets compare microp2p with the fastest reference implementation in the run.
#
#   burst: the publisher publishes N messages as fast as it can (`publish-many`); the receiver
#          counts them silently (`bench-recv`) and reports N / (last receive - first send).
#   paced: one message every PACED_INTERVAL_MS; latency = receive wall clock - send wall clock
#          carried in the payload (same host, same clock); p50 / p99.
# Then the MicroPython device profile: ms per signed publish and heap bytes allocated per
# message (gc.mem_alloc with the collector paused), and a cProfile of the microp2p receiver and
# publisher during a burst.
#
#   .venv/bin/python bench/gossip.py [--quick] [--no-profile]
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from peers import MICROP2P_CLI, MICROPYTHON, FIRMWARE_DIR, Peer, launch_command, random_seed, start_peer  # noqa: E402

TOPIC = "bench-gossip"
SIZE = 100
QUICK = "--quick" in sys.argv
BURST_N = {"microp2p": 20000, "js": 10000, "py": 2000, "go": 20000, "rust": 20000}
REFERENCE = ("js", "py", "go", "rust")
PAIRS = [(k, k) for k in ("microp2p",) + REFERENCE] + [
    ("microp2p", "go"), ("go", "microp2p"), ("microp2p", "rust"), ("rust", "microp2p")]
PACED_N = 300 if QUICK else 1000
PACED_INTERVAL_MS = 5
WARMUP_N = 500
MESH_TIMEOUT = 30.0
RESULT_TIMEOUT = 30.0       # a receiver that lost messages reports what it got after this
MPY_PUBLISH_N = 20
# Room for the collector to stay paused over the whole measurement (pure-Python SHA-512 makes
# short-lived ints); the figure is bytes allocated, not the heap a device needs.
MPY_HEAP = "64M"
TARGET_RATE = 8000
TARGET_RATIO = 2.5
TARGET_P50_MS = 0.5
PROFILE_TOP = 14


def extra_args(kind):
    # py-libp2p drops > 10 msg/s/topic per peer by default ("spam protection"); a bench needs it off.
    return ["--no-spam-protection"] if kind == "py" else []


def wait_mesh(peer, want, timeout=MESH_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        peer.send({"cmd": "topic-peers", "topic": TOPIC})
        ev = peer.wait_for("topic-peers", timeout=15)
        if want in (ev.get("mesh") or ()):
            return
        if time.monotonic() > deadline:
            peer.fail("no mesh with %s" % want)
        time.sleep(0.2)


def measure(pub, sub, count, interval_ms):
    sub.send({"cmd": "bench-recv", "topic": TOPIC, "count": count, "timeout_ms": int(RESULT_TIMEOUT * 1000)})
    sub.wait_for("bench-armed", timeout=15)
    pub.send({"cmd": "publish-many", "topic": TOPIC, "count": count, "size": SIZE, "interval_ms": interval_ms})
    res = sub.wait_for("bench-result", timeout=RESULT_TIMEOUT + 30)
    pub.wait_for("published-many", timeout=RESULT_TIMEOUT)
    return res


def start_pair(kind, profile_dir=None, sub_kind=None):
    if profile_dir is None:
        sub_kind = sub_kind or kind
        pub = start_peer(kind, args=["--sub", TOPIC] + extra_args(kind))
        try:
            return pub, start_peer(sub_kind, args=["--sub", TOPIC] + extra_args(sub_kind))
        except BaseException:
            pub.stop()
            raise
    peers = []
    for role in ("pub", "sub"):
        seed = random_seed()
        argv, env = launch_command(kind, seed, args=["--sub", TOPIC])
        assert argv[0] == str(MICROP2P_CLI)
        argv = [sys.executable, "-m", "cProfile", "-o", str(Path(profile_dir) / (role + ".prof"))] + argv
        p = Peer(kind, argv, env, seed=seed)
        p.started = p.wait_for("started", timeout=30)
        peers.append(p)
    return peers


def run_pair(kind, sub_kind=None):
    sub_kind = sub_kind or kind
    label = "%s -> %s" % (kind, sub_kind)
    n = min(BURST_N[kind], BURST_N[sub_kind]) // (4 if QUICK else 1)
    try:
        pub, sub = start_pair(kind, sub_kind=sub_kind)
    except AssertionError as e:
        return {"kind": kind, "label": label, "error": str(e).splitlines()[0]}
    try:
        pub.send({"cmd": "dial", "addr": sub.addr})
        wait_mesh(pub, sub.peer_id)
        wait_mesh(sub, pub.peer_id)
        measure(pub, sub, WARMUP_N, 1)
        burst = measure(pub, sub, n, 0)
        time.sleep(0.5)
        paced = measure(pub, sub, PACED_N, PACED_INTERVAL_MS)
        return {"kind": kind, "label": label, "burst": burst, "sent": n, "paced": paced}
    except AssertionError as e:  # a pair that fails is a row saying so, not a lost table
        return {"kind": kind, "label": label, "error": str(e).splitlines()[0]}
    finally:
        pub.stop()
        sub.stop()


def profile_microp2p():
    """cProfile of a microp2p publisher and receiver during one burst: where the time goes."""
    d = tempfile.mkdtemp(prefix="bench-gossip-prof-")
    pub, sub = start_pair("microp2p", profile_dir=d)
    try:
        pub.send({"cmd": "dial", "addr": sub.addr})
        wait_mesh(pub, sub.peer_id)
        wait_mesh(sub, pub.peer_id)
        res = measure(pub, sub, BURST_N["microp2p"] // 4, 0)
    finally:
        pub.stop(grace=15)
        sub.stop(grace=15)
    out = []
    for role in ("sub", "pub"):
        path = Path(d) / (role + ".prof")
        if not path.exists():
            out.append("(no profile written for %s)" % role)
            continue
        st = pstats.Stats(str(path))
        total = st.total_tt
        rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:PROFILE_TOP]
        out.append("%s (%s, whole process %.2f s CPU-profiled; burst of %d at %.0f msg/s under the profiler)"
                   % ({"sub": "receiver", "pub": "publisher"}[role], path, total, res["received"], res["rate"] or 0))
        out.append("  %7s %6s %9s  %s" % ("tottime", "%", "calls", "function"))
        for (fn, line, name), (cc, nc, tt, ct, _) in rows:
            short = fn.replace(str(ROOT) + "/", "")
            out.append("  %7.3f %5.1f%% %9d  %s:%d(%s)" % (tt, 100 * tt / total if total else 0, nc, short, line, name))
    return out


MPY_SNIPPET = r"""
import gc, sys
from time import ticks_us, ticks_diff
from microp2p.identity import keys, peerid
from microp2p.pubsub import rpc as R
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
N = %d
ka = keys.Ed25519PrivateKey.from_seed(bytes([1] * 32))
kb = keys.Ed25519PrivateKey.from_seed(bytes([2] * 32))
ia = peerid.PeerId.from_public_key(ka.public_key)
ib = peerid.PeerId.from_public_key(kb.public_key)
a = GossipSub(ia, ka, GossipSubConfig.device(), 0)
a.add_peer(ib, R.MESHSUB_V12, True)
a.subscribe("bench")
a.receive_rpc(ib, R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": "bench"}]}), 0)
a.heartbeat(1000)
a.outgoing()
data = b"\x5a" * 100
for i in range(3):
    a.publish("bench", data, 1000)
    a.outgoing()
gc.collect()
gc.disable()
m0 = gc.mem_alloc()
t0 = ticks_us()
for i in range(N):
    a.publish("bench", data, 1000)
    a.data_to_send(ib)
dt = ticks_diff(ticks_us(), t0)
alloc = gc.mem_alloc() - m0
gc.collect()
msg = bytes(170)
m0 = gc.mem_alloc()
t0 = ticks_us()
for i in range(N):
    ka.sign(msg)
sdt = ticks_diff(ticks_us(), t0)
salloc = gc.mem_alloc() - m0
gc.enable()
from microp2p import crypto
print("RESULT", dt / N / 1000, alloc // N, crypto.backend_name, sdt / N / 1000, salloc // N)
"""


def micropython_publish_cost():
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_DIR), ".frozen"])
    r = subprocess.run([str(MICROPYTHON), "-X", "heapsize=" + MPY_HEAP, "-c", MPY_SNIPPET % MPY_PUBLISH_N],
                       capture_output=True, text=True, timeout=600, env=env, cwd=str(ROOT))
    for line in r.stdout.splitlines():
        if line.startswith("RESULT"):
            _, ms, alloc, backend, sms, salloc = line.split()
            return float(ms), int(alloc), backend, float(sms), int(salloc)
    raise RuntimeError("micropython bench failed:\n" + r.stdout + r.stderr)


def fmt(x, spec):
    return "-" if x is None else spec % x


def main():
    rows = [run_pair(p, s) for p, s in PAIRS]
    # The compass: the fastest reference implementation (same kind both ends) in this run.
    refs = [(r["burst"]["rate"], r["kind"]) for r in rows
            if "error" not in r and r["kind"] in REFERENCE and r["burst"]["rate"]]
    best, best_kind = max(refs) if refs else (None, None)
    print()
    print("bench/gossip: 1 hop, signed %d-byte messages, loopback TCP + Noise + yamux, one run" % SIZE)
    print("%-22s %12s %14s %10s %10s %11s" % ("pair", "burst msg/s", "received/sent", "paced p50", "paced p99",
                                           "x fastest"))
    for r in rows:
        if "error" in r:
            print("%-22s error: %s" % (r["label"], r["error"][:100]))
            continue
        b, p = r["burst"], r["paced"]
        ratio = (b["rate"] / best) if (b["rate"] and best) else None
        print("%-22s %12s %14s %9s %9s %10s" % (
            r["label"], fmt(b["rate"], "%.0f"), "%d/%d" % (b["received"], r["sent"]),
            fmt(p["p50Ms"], "%.2f ms"), fmt(p["p99Ms"], "%.2f ms"), fmt(ratio, "%.2fx")))
    print("(x fastest: burst rate / the fastest reference pair, %s -> %s; paced: %d messages, one every %d ms;"
          " p50/p99 over the received ones)" % (best_kind, best_kind, PACED_N, PACED_INTERVAL_MS))
    js = best
    ms, alloc, backend, sms, salloc = micropython_publish_cost()
    print("MicroPython (unix port, device profile, %s crypto): %.2f ms per signed publish, %d bytes allocated per message"
          % (backend, ms, alloc))
    print("  of which the Ed25519 signature alone: %.2f ms, %d bytes; the router and codec: %.2f ms, %d bytes"
          % (sms, salloc, ms - sms, alloc - salloc))
    ours = (rows[0].get("burst") or {}).get("rate") or 0
    p50 = (rows[0].get("paced") or {}).get("p50Ms")
    print("targets: burst >= %d msg/s: %s (%.0f); >= %.1fx the fastest reference (" % (
        TARGET_RATE, "met" if ours >= TARGET_RATE else "MISSED", ours, TARGET_RATIO) + str(best_kind) +
        "): %s (%.2fx); paced p50 <= %.1f ms: %s (%s)" % (
        "met" if js and ours >= TARGET_RATIO * js else "MISSED", ours / js if js else 0,
        TARGET_P50_MS, "met" if p50 is not None and p50 <= TARGET_P50_MS else "MISSED", fmt(p50, "%.2f ms")))
    if "--no-profile" not in sys.argv:
        print()
        print("profile: microp2p burst, top functions by own time")
        for line in profile_microp2p():
            print(line)


if __name__ == "__main__":
    main()
