# Crypto benchmark: ops/s per primitive for every backend on CPython (cryptography,
# pycryptodome, pure) plus the pure backend on MicroPython (bench/crypto_mp.py under
# .venv/bin/micropython), with each row's slowdown against the fastest backend.
#   .venv/bin/python bench/crypto.py [budget_ms per primitive, default 250]   (~20 s total)
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import crypto_mp  # noqa: E402  (the shared, MicroPython-compatible measuring loop)
from microp2p_host import crypto_native  # noqa: E402

MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
MP_TIMEOUT_S = 120


def cpython_rows(budget_ms):
    rows = []
    for name in crypto_native.available():
        rows += crypto_mp.run(crypto_native.backend(name), "cpython " + name, budget_ms)
    return rows


def micropython_rows(budget_ms):
    if not os.path.exists(MICROPYTHON):
        return []
    out = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=4M", os.path.join(HERE, "crypto_mp.py"), str(budget_ms)],
        capture_output=True, text=True, timeout=MP_TIMEOUT_S, check=True)
    return [tuple(json.loads(line)) for line in out.stdout.splitlines() if line.startswith("[")]


def fmt_rate(r):
    return "%.0f" % r if r >= 100 else "%.1f" % r


def table(rows):
    best = {}
    for _, prim, rate in rows:
        best[prim] = max(best.get(prim, 0.0), rate)
    lines = ["| primitive | backend | ops/s | time/op | x slower than fastest |",
             "|---|---|---:|---:|---:|"]
    for prim in crypto_mp.PRIMITIVES:
        for label, p, rate in sorted((r for r in rows if r[1] == prim), key=lambda r: -r[2]):
            us = 1e6 / rate
            t = "%.1f us" % us if us < 1000 else "%.2f ms" % (us / 1000)
            lines.append("| %s | %s | %s | %s | %.1f |" % (prim, label, fmt_rate(rate), t,
                                                          best[prim] / rate))
    return "\n".join(lines)


def main(argv):
    budget = int(argv[1]) if len(argv) > 1 else 250
    rows = cpython_rows(budget) + micropython_rows(budget)
    print(table(rows))


if __name__ == "__main__":
    main(sys.argv)
