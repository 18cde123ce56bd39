# What every in-memory bench script needs on both runtimes: a seconds clock and the firmware
# package on sys.path (the scripts run as `python bench/x.py` and `micropython bench/x.py`;
# the script's folder is on sys.path in both, so `import benchenv` finds this file).
import sys

try:
    from time import ticks_us, ticks_diff

    def now_s():
        return ticks_us() / 1e6

    def elapsed(t0):
        return ticks_diff(ticks_us(), int(t0 * 1e6)) / 1e6
except ImportError:
    from time import perf_counter as now_s

    def elapsed(t0):
        return now_s() - t0


def _dir(p):
    i = p.rfind("/")
    return p[:i] if i > 0 else "."


ROOT = _dir(_dir(sys.argv[0])) if "/" in sys.argv[0] else ".."
if ROOT + "/firmware" not in sys.path:
    sys.path.insert(0, ROOT + "/firmware")
MICROPYTHON = sys.implementation.name == "micropython"
