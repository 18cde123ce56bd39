# The few runtime differences between CPython and MicroPython that the drivers need, in one place.
import sys

MICROPYTHON = sys.implementation.name == "micropython"

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

try:
    import asyncio
except ImportError:  # very old ports
    import uasyncio as asyncio

TimeoutError = asyncio.TimeoutError


def print_exc(e, file=None):
    if MICROPYTHON:
        sys.print_exception(e, file or sys.stderr)
    else:
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__, file=file or sys.stderr)


class Queue:
    """A bounded FIFO for asyncio on both runtimes (MicroPython's asyncio has no Queue).

    put_nowait raises IndexError when full: callers decide what a full queue means (drop, close)."""

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self._items = []
        self._event = asyncio.Event()

    def __len__(self):
        return len(self._items)

    def put_nowait(self, item):
        if len(self._items) >= self.maxsize:
            raise IndexError("queue full")
        self._items.append(item)
        self._event.set()

    async def get(self):
        while not self._items:
            self._event.clear()
            await self._event.wait()
        return self._items.pop(0)


_last_ticks = ticks_ms()
_elapsed = 0


def now_ms():
    """Milliseconds since start that never wrap (ticks_ms wraps on MicroPython); for machines."""
    global _last_ticks, _elapsed
    t = ticks_ms()
    _elapsed += ticks_diff(t, _last_ticks)
    _last_ticks = t
    return _elapsed


def join_head(frames, limit):
    """(chunk, count, size): the first frames of the list joined while the total stays within
    limit (always at least one frame). Writers use it to send several small frames at once."""
    k = 1
    size = len(frames[0])
    while k < len(frames) and size + len(frames[k]) <= limit:
        size += len(frames[k])
        k += 1
    return (frames[0] if k == 1 else b"".join(frames[:k])), k, size
