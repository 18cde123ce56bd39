# The one clock of microp2p, for drivers and apps (protocol machines never read a clock: time is
# passed in). Same functions on CPython and MicroPython.
#
#   ticks_ms() ticks_us() ticks_diff(a, b) ticks_add(a, n)   MicroPython's wrapping ticks
#   now_ms()    milliseconds since start that never wrap: the time machines are given
#   wall_ms() wall_us() wall_ns()   the wall clock (Unix time): sequence numbers, record seqs
try:
    from time import ticks_ms, ticks_us, ticks_diff, ticks_add
except ImportError:
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_us():
        return int(_time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b


class Monotonic:
    """A never-wrapping millisecond counter built on ticks_ms (which wraps on MicroPython)."""

    def __init__(self):
        self._last = ticks_ms()
        self._elapsed = 0

    def now(self):
        t = ticks_ms()
        self._elapsed += ticks_diff(t, self._last)
        self._last = t
        return self._elapsed


_mono = Monotonic()


def now_ms():
    """Milliseconds since start that never wrap; for machines."""
    return _mono.now()


def wall_ns():
    import time
    try:
        return time.time_ns()
    except AttributeError:  # ports without time_ns (seconds resolution)
        return int(time.time()) * 1000000000


def wall_us():
    return wall_ns() // 1000


def wall_ms():
    return wall_ns() // 1000000
