# The asyncio shim: the one place that knows which runtime runs the drivers. Drivers use only the
# asyncio subset MicroPython has (Event, Lock, wait_for, gather, streams; no Queue, no Semaphore,
# no wait), plus the small helpers here.
import sys

MICROPYTHON = sys.implementation.name == "micropython"

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


class TaskGroup:
    """Tasks owned by one object: kept referenced (CPython may otherwise collect a running task),
    forgotten when they end, and cancelled together by cancel(). guard(exc) decides what an
    ending exception means (log it); it is called for everything but cancellation."""

    def __init__(self, on_error=None):
        self.tasks = set()
        self.on_error = on_error

    def spawn(self, coro):
        t = asyncio.create_task(self._run(coro))
        self.tasks.add(t)
        return t

    async def _run(self, coro):
        try:
            await coro
        except asyncio.CancelledError:
            pass
        except Exception as e:
            if self.on_error is not None:
                self.on_error(e)
            else:
                print_exc(e)
        finally:
            # the task object is the current one; drop it from the set
            cur = asyncio.current_task() if hasattr(asyncio, "current_task") else None
            if cur is not None:
                self.tasks.discard(cur)

    def __len__(self):
        return len(self.tasks)

    def cancel(self):
        for t in list(self.tasks):
            t.cancel()
        self.tasks = set()


def join_head(frames, limit):
    """(chunk, count, size): the first frames of the list joined while the total stays within
    limit (always at least one frame). Writers use it to send several small frames at once."""
    k = 1
    size = len(frames[0])
    while k < len(frames) and size + len(frames[k]) <= limit:
        size += len(frames[k])
        k += 1
    return (frames[0] if k == 1 else b"".join(frames[:k])), k, size
