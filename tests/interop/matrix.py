"""The interop matrix: a transport-interop-shaped ping test (libp2p/test-plans) over every dialer x
listener pair of microp2p (CPython), microp2p-mpy (MicroPython unix port), js-libp2p, py-libp2p,
go-libp2p and rust-libp2p, all over TCP + Noise + yamux on loopback.

For each cell the dialer, which has no connection to the listener yet, is told
{"cmd": "ping", "addr": <listener>, "count": 2}: it dials (TCP, multistream, Noise, yamux), pings
once and once more. As in test-plans, a cell reports

    handshakePlusOneRTTMillis  from the command to the first ping's answer (measured here, so it
                               also holds the JSON-line round trip to the dialer, well under 1 ms)
    pingRTTMilllis             the second ping's round trip as the dialer measured it (three l's,
                               as libp2p's test-plans spell it)

One listener and one dialer process per implementation serve every cell (each cell is a fresh
connection between a dialer and a listener that never met). Exits non-zero if any cell failed.

    python tests/interop/matrix.py [--kinds microp2p,js,...] [--json FILE] [--timeout S]
"""
import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PeerError, require_installed, start_peer  # noqa: E402

KINDS = ("microp2p", "microp2p-mpy", "js", "py", "go", "rust")
CELL_TIMEOUT_S = 30.0   # test-plans' default test_timeout_seconds is 180; one ping needs far less
PING_COUNT = 2

os.environ.setdefault("MICROP2P_MPY_HEAP", "16M")


def run_cell(dialer, listener, timeout):
    """One cell: returns {"handshakePlusOneRTTMillis": F, "pingRTTMilllis": F} or {"error": str}."""
    pred = lambda e: e.get("peer") == listener.peer_id  # noqa: E731
    t0 = time.perf_counter()
    dialer.send({"cmd": "ping", "addr": listener.addr, "count": PING_COUNT})
    try:
        first = dialer.wait_for("ping", pred, timeout=timeout, fail_on_error=True)
        t1 = time.perf_counter()
        second = dialer.wait_for("ping", pred, timeout=timeout, fail_on_error=True)
    except PeerError as e:
        return {"error": str(e).splitlines()[0][:200]}
    _ = first
    return {"handshakePlusOneRTTMillis": round((t1 - t0) * 1000, 3), "pingRTTMilllis": round(float(second["rtt"]), 3)}


def fmt_cell(c):
    if "error" in c:
        return "FAIL"
    return "%.1f / %.2f" % (c["handshakePlusOneRTTMillis"], c["pingRTTMilllis"])


def print_matrix(kinds, cells, out=sys.stdout):
    w = max(16, max(len(k) for k in kinds) + 2)
    out.write("interop matrix: TCP + Noise + yamux, loopback; cell = handshakePlusOneRTTMillis / pingRTTMilllis\n")
    out.write("dialer \\ listener".ljust(w) + "".join(k.rjust(w) for k in kinds) + "\n")
    for d in kinds:
        out.write(d.ljust(w) + "".join(fmt_cell(cells[(d, l)]).rjust(w) for l in kinds) + "\n")
    failed = [(d, l, c["error"]) for (d, l), c in sorted(cells.items()) if "error" in c]
    for d, l, e in failed:
        out.write("FAILED %s -> %s: %s\n" % (d, l, e))
    out.write("%d of %d cells passed\n" % (len(cells) - len(failed), len(cells)))
    return not failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated implementations (default: all)")
    ap.add_argument("--json", metavar="FILE", help="also write the cells as JSON (test-plans shape)")
    ap.add_argument("--timeout", type=float, default=CELL_TIMEOUT_S, help="seconds per cell")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            ap.error("unknown implementation %r (one of %s)" % (k, ", ".join(KINDS)))
        try:
            require_installed(k)
        except AssertionError as e:
            print("interop-matrix: %s" % e, file=sys.stderr)
            return 2
    peers = []
    try:
        with ThreadPoolExecutor(len(kinds) * 2) as ex:
            futs = {(role, k): ex.submit(start_peer, k) for role in ("listener", "dialer") for k in kinds}
            started = {key: f.result() for key, f in futs.items()}
        peers = list(started.values())
        cells = {}
        for d in kinds:
            for l in kinds:
                cells[(d, l)] = run_cell(started[("dialer", d)], started[("listener", l)], args.timeout)
    except PeerError as e:
        print("interop-matrix: a peer did not start: %s" % str(e).splitlines()[0], file=sys.stderr)
        return 2
    finally:
        with ThreadPoolExecutor(max(1, len(peers))) as ex:
            list(ex.map(lambda p: p.stop(), peers))
    ok = print_matrix(kinds, cells)
    if args.json:
        rows = [dict(dialer=d, listener=l, transport="tcp", security="noise", muxer="yamux", **c)
                for (d, l), c in sorted(cells.items())]
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
