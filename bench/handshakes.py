# Connection benchmark (issue 4): sequential connections per second and per-connection latency for
# every client x server pair of {microp2p (CPython), js-libp2p, py-libp2p, go-libp2p, rust-libp2p},
# all in one run, plus MicroPython (unix port) dialing a CPython microp2p server and a js server.
# Ratios compare with the fastest reference implementation's own pair (js, py, go or rust) in the run.
#
# One connection = TCP dial + multistream /noise + Noise XX + muxer (early negotiation or mss
# /yamux) + yamux + identify (the client waits until its identify of the server is done) + close.
# Each client is its own process doing N sequential connections after W warm-up ones (JIT, caches);
# the best of R repeats is kept (other processes on the machine perturb single runs). CPU columns are
# CPU ms per connection from /proc (load-independent): the client's own loop, and the server's
# delta over the client's whole run (warm-up included) divided by the connections it served.
#
#   .venv/bin/python bench/handshakes.py [--n 200] [--n-py 30] [--warmup 10] [--repeat 3]
#                                        [--mp-n 20] [--mp-heaps default,256K] [--no-micropython]
#                                        [--impls microp2p,js,py,go,rust] [--mp-source]
# The MicroPython client loads .mpy files built for the unix board (as a device does), unless
# --mp-source (the .py sources: compiling them at import needs ~300 KiB more heap).
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peers  # noqa: E402
from _peers import fmt, say  # noqa: E402

TARGET_RATE = 300       # connections/s, microp2p (CPython) <-> microp2p
TARGET_JS_RATIO = 4     # ... and at least this many times js <-> js in the same run
REFERENCE = ("js", "py", "go", "rust")
TARGET_MP_MS = 30       # MicroPython handshake (dial: mss + Noise + yamux)
MP_HEAP_CANDIDATES = ("160K", "192K", "224K", "256K", "320K", "384K", "512K", "768K", "1M")
CLIENT_TIMEOUT_S = 600


def client_runs(impl, addr, n, warmup, repeat, server, heap=None):
    best = None
    for _ in range(repeat):
        c0 = server.cpu()
        r = _peers.run_client(impl, ["conns", addr, str(n), str(warmup)], CLIENT_TIMEOUT_S, heap)
        c1 = server.cpu()
        if "error" in r:
            say("  %s: %s" % (impl, r["error"]))
            if best is None:
                best = r
            continue
        served = r["n"] + warmup
        r["server_cpu_ms"] = (c1 - c0) * 1000 / served if c0 is not None and c1 is not None else None
        r["client_cpu_ms"] = r["cpu_s"] * 1000 / r["n"] if r.get("cpu_s") is not None else None
        say("  %s -> %s: %.1f conn/s p50 %s ms (%d ok, %d failed)" % (
            impl, server.impl, r["conns_per_s"], fmt(r["p50_ms"]), r["ok"], r["fail"]))
        if best is None or "error" in best or r["conns_per_s"] > best["conns_per_s"]:
            best = r
    return best


def fastest_reference(results, key):
    """(rate, impl) of the fastest reference implementation talking to itself, or (None, None)."""
    best = [(r[key], i) for i in REFERENCE for r in [results.get((i, i))] if r and "error" not in r and r.get(key)]
    return max(best) if best else (None, None)


def pair_table(results, impls):
    js = results.get(("js", "js"))
    js_rate = js["conns_per_s"] if js and "error" not in js else None
    best_rate, best_impl = fastest_reference(results, "conns_per_s")
    lines = ["| client -> server | conn/s | x %s<->%s (fastest) | p50 ms | p99 ms | dial p50 ms | failed | "
             % (best_impl, best_impl) +
             "client CPU ms/conn | server CPU ms/conn |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in impls:
        for s in impls:
            r = results.get((c, s))
            if r is None:
                continue
            if "error" in r:
                lines.append("| %s -> %s | error: %s | | | | | | | |" % (c, s, r["error"][:80]))
                continue
            ratio = r["conns_per_s"] / best_rate if best_rate else None
            lines.append("| %s -> %s | %.1f | %s | %s | %s | %s | %d/%d | %s | %s |" % (
                c, s, r["conns_per_s"], fmt(ratio, "%.2f"), fmt(r["p50_ms"]), fmt(r["p99_ms"]),
                fmt(r.get("dial_p50_ms")), r["fail"], r["n"], fmt(r.get("client_cpu_ms"), "%.2f"),
                fmt(r.get("server_cpu_ms"), "%.2f")))
    return "\n".join(lines), js_rate, best_rate, best_impl


def mp_smallest_heap(addr):
    """The smallest heap (from MP_HEAP_CANDIDATES) in which 5 connections all succeed."""
    for heap in MP_HEAP_CANDIDATES:
        r = _peers.run_client("micropython", ["conns", addr, "5", "1"], 120, heap)
        if "error" not in r and r["fail"] == 0:
            return heap
        say("  micropython heap %s: %s" % (heap, r.get("error") or r.get("errors")))
    return None


def micropython_section(servers, n, heaps, repeat):
    rows = []
    mp_server = servers.get("microp2p")
    resolved = []
    for h in heaps:
        if h == "smallest":
            if mp_server is None:
                continue
            h = mp_smallest_heap(mp_server.addr)
            if h is None:
                continue
            resolved.append((h, "smallest that works"))
        else:
            resolved.append((None if h == "default" else h, "default" if h == "default" else ""))
    for heap, note in resolved:
        for simpl in ("microp2p", "js"):
            srv = servers.get(simpl)
            if srv is None:
                continue
            r = client_runs("micropython", srv.addr, n, 2, repeat, srv, heap)
            rows.append((heap, note, simpl, r))
    lines = ["| MicroPython client -> server | heap | handshake p50 ms (dial: mss+Noise+yamux) | "
             "+ identify p50 ms | p99 ms | conn/s | failed | heap: code+node | one open conn "
             "(live) | peak mem_alloc sampled |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for heap, note, simpl, r in rows:
        label = (heap or "default") + (" (%s)" % note if note and note != "default" else "")
        if "error" in r:
            lines.append("| micropython -> %s | %s | error: %s | | | | | | | |" % (simpl, label, r["error"][:80]))
            continue
        hp = r.get("heap") or {}
        lines.append("| micropython -> %s | %s | %s | %s | %s | %.1f | %d/%d | %s | %s | %s |" % (
            simpl, label + " = %d B" % hp.get("total", 0), fmt(r.get("dial_p50_ms")), fmt(r["p50_ms"]),
            fmt(r["p99_ms"]), r["conns_per_s"], r["fail"], r["n"], hp.get("base"), hp.get("live_conn"),
            hp.get("peak_sampled")))
    return "\n".join(lines), rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="connections per pair (microp2p / js clients)")
    ap.add_argument("--n-py", type=int, default=30, help="connections per pair with a py-libp2p end")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="runs per pair; the best is kept")
    ap.add_argument("--mp-n", type=int, default=20, help="MicroPython connections per server")
    ap.add_argument("--mp-heaps", default="default,smallest",
                    help="comma list: default, smallest (searched) or sizes like 256K")
    ap.add_argument("--no-micropython", action="store_true")
    ap.add_argument("--mp-source", action="store_true", help="MicroPython loads the .py sources, not .mpy")
    ap.add_argument("--impls", default=",".join(_peers.IMPLS))
    o = ap.parse_args(argv[1:])
    impls = [i for i in o.impls.split(",") if i]
    missing = [i for i in impls if not _peers.available(i)]
    if missing:
        say("not installed, skipped: %s (run `make setup`)" % ", ".join(missing))
        impls = [i for i in impls if i not in missing]

    results = {}
    servers = {}
    try:
        for s in impls:
            say("server %s" % s)
            servers[s] = _peers.Server(s)
            for c in impls:
                slow = "py" in (c, s)  # py-libp2p takes ~200 ms per disconnect, either side
                n = o.n_py if slow else o.n
                warm = min(o.warmup, 2) if slow else o.warmup
                results[(c, s)] = client_runs(c, servers[s].addr, n, warm, o.repeat, servers[s])
        table, js_rate, best_rate, best_impl = pair_table(results, impls)
        mp_table = None
        if not o.no_micropython and _peers.available("micropython"):
            say("micropython")
            if not o.mp_source and not os.environ.get("MICROP2P_BENCH_MPY"):
                import tempfile
                sys.path.insert(0, os.path.join(_peers.ROOT, "host"))
                from microp2p_host import tooling
                build = os.path.join(tempfile.mkdtemp(prefix="microp2p-bench-"), "unix")
                tooling.build(tooling.load_board("unix"), build)
                os.environ["MICROP2P_BENCH_MPY"] = build
            say("  micropython code: %s" % (os.environ.get("MICROP2P_BENCH_MPY") or "sources"))
            mp_table, mp_rows = micropython_section(servers, o.mp_n, o.mp_heaps.split(","), 1)
    finally:
        for s in servers.values():
            s.stop()

    print("## Sequential connections (dial + Noise + yamux + identify + close), best of %d runs" % o.repeat)
    print()
    print(table)
    mm = results.get(("microp2p", "microp2p"))
    if mm and "error" not in mm:
        print()
        rate = mm["conns_per_s"]
        print("target microp2p<->microp2p >= %d conn/s: %.1f (%s)" % (
            TARGET_RATE, rate, "met" if rate >= TARGET_RATE else "MISSED"))
        if js_rate:
            print("target >= %dx js<->js (%.1f conn/s): %.2fx (%s)" % (
                TARGET_JS_RATIO, js_rate, rate / js_rate,
                "met" if rate >= TARGET_JS_RATIO * js_rate else "MISSED"))
        if best_rate:
            print("against the fastest reference, %s<->%s (%.1f conn/s): %.2fx" % (
                best_impl, best_impl, best_rate, rate / best_rate))
    if mp_table:
        print()
        print("## MicroPython (unix port) client, %d sequential connections" % o.mp_n)
        print()
        print(mp_table)
        print()
        for heap in sorted(set(h for h, _, _, _ in mp_rows), key=lambda h: h or ""):
            ok = [r for h, _, _, r in mp_rows
                  if h == heap and "error" not in r and r.get("dial_p50_ms") is not None]
            if ok:
                worst = max(r["dial_p50_ms"] for r in ok)
                print("target MicroPython handshake <= %d ms, heap %s: worst p50 %.1f ms (%s)" % (
                    TARGET_MP_MS, heap or "default", worst, "met" if worst <= TARGET_MP_MS else "MISSED"))


if __name__ == "__main__":
    main(sys.argv)
