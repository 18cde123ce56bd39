#!/usr/bin/env python3
# Runs every tests/core/test_*.py on the MicroPython unix port, one process per file (a fresh heap
# per file: a fragmented heap from an earlier file must not fail a later one), with a stated
# -X heapsize. Prints each file's result and the closing "N passed, M failed" line.
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main(argv):
    heap = os.environ.get("MP_HEAP", "2M")
    mp = os.environ.get("MICROPYTHON", os.path.join(ROOT, ".venv", "bin", "micropython"))
    files = argv[1:] or sorted(
        os.path.join("tests", "core", f) for f in os.listdir(os.path.join(HERE, "core"))
        if f.startswith("test_") and f.endswith(".py"))
    passed = failed = 0
    print("MicroPython unix port, -X heapsize=%s, one process per file" % heap)
    for f in files:
        r = subprocess.run([mp, "-X", "heapsize=" + heap, "tests/mp_runner.py", f], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        out = r.stdout
        m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
        if m is None:
            print(out)
            print("%s: crashed (exit %d)" % (f, r.returncode))
            failed += 1
            continue
        p, fl = int(m.group(1)), int(m.group(2))
        if fl or r.returncode:
            print(out)
        else:
            print("%s: %d passed" % (os.path.basename(f), p))
        passed += p
        failed += fl + (1 if r.returncode and not fl else 0)
    print("micropython: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
