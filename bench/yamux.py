# Single-stream throughput (issue 4): one yamux stream over Noise over loopback TCP, the client
# writing MIB MiB of zeros to /microp2p/bench/sink/1.0.0, which counts the bytes until EOF and
# answers with the count. MB/s = bytes / (stream open -> count received). Every pair runs in the
# same invocation; the best of R repeats is kept. CPU columns are CPU seconds per 64 MiB
# (client: its own measurement; server: its /proc delta over the client's run).
#
#   .venv/bin/python bench/yamux.py [--mib 64] [--mib-py 16] [--repeat 3]
#                                   [--pairs microp2p:microp2p,js:js,microp2p:js,js:microp2p,py:py,go:go,...]
# Ratios compare with the fastest reference implementation's own pair (js, py, go or rust) in the run.
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peers  # noqa: E402
from _peers import fmt, say  # noqa: E402

DEFAULT_PAIRS = ("microp2p:microp2p,js:js,microp2p:js,js:microp2p,py:py,microp2p:py,py:microp2p,"
                 "go:go,microp2p:go,go:microp2p,rust:rust,microp2p:rust,rust:microp2p")
REFERENCE = ("js", "py", "go", "rust")
CLIENT_TIMEOUT_S = 600
MIB_REF = 64


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=64, help="MiB pushed per run")
    ap.add_argument("--mib-py", type=int, default=16, help="MiB for pairs with a py-libp2p end")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pairs", default=DEFAULT_PAIRS, help="client:server,...")
    o = ap.parse_args(argv[1:])
    pairs = [tuple(p.split(":")) for p in o.pairs.split(",") if p]
    pairs = [p for p in pairs if _peers.available(p[0]) and _peers.available(p[1])]
    results = {}
    for server_impl in sorted(set(s for _, s in pairs), key=_peers.IMPLS.index):
        with _peers.Server(server_impl) as srv:
            for c, s in pairs:
                if s != server_impl:
                    continue
                mib = o.mib_py if "py" in (c, s) else o.mib
                best = None
                for _ in range(o.repeat):
                    c0 = srv.cpu()
                    r = _peers.run_client(c, ["push", srv.addr, str(mib)], CLIENT_TIMEOUT_S)
                    c1 = srv.cpu()
                    if "error" in r or not r.get("ok"):
                        say("  %s -> %s: %s" % (c, s, r.get("error") or r))
                        best = best or r
                        continue
                    r["mib"] = mib
                    r["server_cpu"] = (c1 - c0) * MIB_REF / mib if c0 is not None else None
                    r["client_cpu"] = r["cpu_s"] * MIB_REF / mib if r.get("cpu_s") is not None else None
                    say("  %s -> %s: %.1f MB/s" % (c, s, r["MBps"]))
                    if best is None or "error" in best or r["MBps"] > best.get("MBps", 0):
                        best = r
                results[(c, s)] = best
    js = results.get(("js", "js"))
    js_rate = js.get("MBps") if js and "error" not in js else None
    refs = [(r["MBps"], i) for i in REFERENCE for r in [results.get((i, i))] if r and "error" not in r and r.get("ok")]
    best_rate, best_impl = max(refs) if refs else (None, None)
    print("## Single-stream yamux throughput (Noise + yamux over loopback TCP), best of %d runs" % o.repeat)
    print()
    print("| client -> server | MiB | MB/s | x %s->%s (fastest) | client CPU s / 64 MiB | server CPU s / 64 MiB |"
          % (best_impl, best_impl))
    print("|---|---:|---:|---:|---:|---:|")
    for c, s in pairs:
        r = results.get((c, s))
        if r is None:
            continue
        if "error" in r or not r.get("ok"):
            print("| %s -> %s | | error: %s | | | |" % (c, s, str(r.get("error") or r)[:80]))
            continue
        print("| %s -> %s | %d | %.1f | %s | %s | %s |" % (
            c, s, r["mib"], r["MBps"], fmt(r["MBps"] / best_rate if best_rate else None, "%.2f"),
            fmt(r.get("client_cpu"), "%.2f"), fmt(r.get("server_cpu"), "%.2f")))
    mm = results.get(("microp2p", "microp2p"))
    if mm and "error" not in mm and js_rate:
        print()
        print("target microp2p->microp2p >= js->js (%.1f MB/s): %.1f MB/s (%s)" % (
            js_rate, mm["MBps"], "met" if mm["MBps"] >= js_rate else "MISSED"))
        if best_rate:
            print("against the fastest reference, %s->%s (%.1f MB/s): %.2fx" % (
                best_impl, best_impl, best_rate, mm["MBps"] / best_rate))


if __name__ == "__main__":
    main(sys.argv)
