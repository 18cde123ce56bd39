# The project's small test runner for MicroPython (unix port and the WebAssembly port).
# It runs the same plain `test_*` functions that pytest collects on CPython.
#
#   micropython -X heapsize=4M tests/mp_runner.py [tests/core/test_x.py ...]
#
# Prints one line per failure with its traceback, a count per file, and a closing line
# "N passed, M failed" (the form CI reads). Exit status 1 when anything failed.
import sys
import os
import gc

try:
    from time import ticks_ms, ticks_diff
except ImportError:
    from time import monotonic

    def ticks_ms():
        return int(monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


def _dirname(p):
    i = p.rfind("/")
    return p[:i] if i > 0 else "."


def main(argv):
    here = _dirname(argv[0]) if argv else "tests"
    root = _dirname(here) if here != "." else ".."
    core = here + "/core"
    sys.path.insert(0, root + "/firmware")
    sys.path.insert(0, root + "/host")  # microp2p_sim (portable simulators); microp2p_host is CPython-only
    sys.path.insert(0, core)
    files = argv[1:]
    only = None
    if files and files[0].startswith("-k="):
        only = files[0][3:]
        files = files[1:]
    if not files:
        files = [core + "/" + f for f in sorted(os.listdir(core)) if f.startswith("test_") and f.endswith(".py")]
    passed = failed = 0
    t0 = ticks_ms()
    for path in files:
        name = path[path.rfind("/") + 1:-3]
        d = _dirname(path)
        if d not in sys.path:
            sys.path.insert(0, d)
        fp = ff = 0
        try:
            mod = __import__(name)
        except Exception as e:
            print("IMPORT FAIL", name)
            sys.print_exception(e)
            failed += 1
            print("%s: 0 passed, 1 failed (import)" % name)
            continue
        tests = sorted(n for n in dir(mod) if n.startswith("test_"))
        for tname in tests:
            if only and only not in tname:
                continue
            fn = getattr(mod, tname)
            if not callable(fn):
                continue
            gc.collect()
            try:
                fn()
                fp += 1
            except Exception as e:
                ff += 1
                print("FAIL %s.%s" % (name, tname))
                sys.print_exception(e)
        print("%s: %d passed, %d failed" % (name, fp, ff))
        passed += fp
        failed += ff
        del sys.modules[name]
        gc.collect()
    impl = sys.implementation
    print("micropython %s (%d-bit small ints), %d ms" % (
        ".".join(str(x) for x in impl.version[:3]), 64 if sys.maxsize > 2**40 else 32,
        ticks_diff(ticks_ms(), t0)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
