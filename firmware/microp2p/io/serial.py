# asyncio driver for a serial link (MicroPython and CPython): runs a seriallink.Link over a byte
# port and hands the layers above one reader/writer-like SerialConn per link session, so
# mss -> Noise -> yamux run over a UART exactly as over TCP.
#
#   r, w = open_tty("/dev/pts/3")        # unix port on a pty (or open_uart(machine.UART(...)))
#   port = SerialPort(r, w, {"baud": 115200})
#   port.start()
#   conn = await port.accept()           # once per session: after every link_up
#   conn.write(b"..."); await conn.drain(); data = await conn.read(512)
#
# A session ends when the link goes down (silence), the peer resets (reboot, replug after a long
# outage) or conn.close() (which restarts the link so the peer sees the reset). The conn then
# reads b"" and raises OSError on write; the next session comes from accept() again.
#
# Backpressure is "stop reading": when a conn holds RX_BUFFER_CAP unread bytes the port stops
# reading the port until the app reads; a UART then drops bytes and the link resends them.
# `reader` is anything with `async read(n)` returning what is available (b"" or an OSError =
# nothing now), `writer` anything with write(data) and `async drain()`: asyncio streams on
# MicroPython, the fd adapter in microp2p_host.serial_host on CPython.
import gc

from microp2p.aio import asyncio
from microp2p.clock import Monotonic
from microp2p.serial.link import Link

RX_BUFFER_CAP = 4096   # unread bytes a conn holds before the port stops reading the line
READ_CHUNK = 512       # bytes asked of the port per read
WRITE_PULL = 256       # bytes pulled from the link per write: about one frame (see Link.data_to_send)
IDLE_READ_MS = 20      # back-off after a read that found nothing (pty with no peer)
OOM_RETRY_MS = 20      # pause after a MemoryError in a pump loop before it runs again


def _sleep_ms(ms):
    return asyncio.sleep(ms / 1000)


def open_tty(path):
    """Opens a tty/pty device file (unix port) in raw mode; returns (reader, writer) streams."""
    f = open(path, "rb+")
    try:
        import termios
        fd = f.fileno()
        termios.setraw(fd)
        a = termios.tcgetattr(fd)
        # VMIN=0, VTIME=0: read(n) returns what is there. With the default VMIN=1 the stream's
        # read(n) keeps reading until it has all n bytes.
        a[6][getattr(termios, "VMIN", 6)] = 0
        a[6][getattr(termios, "VTIME", 5)] = 0
        termios.tcsetattr(fd, termios.TCSANOW, a)
    except ImportError:
        pass
    return asyncio.StreamReader(f), asyncio.StreamWriter(f, {})


def open_uart(uart):
    """A machine.UART (boards) as (reader, writer) streams."""
    return asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {})


class SerialConn:
    """One link session as a reader/writer pair (the subset of asyncio streams the stack uses).

    Both directions hold queues of the chunks as they came (the link's deliveries in, the
    writer's frames out) instead of one buffer grown by concatenation: on a device the heap
    fragments over days, and a buffer that must be reallocated in one piece as it grows fails
    with plenty of memory free. No allocation here is larger than a chunk itself."""

    def __init__(self, port):
        self._port = port
        self._rxq = []       # bytes chunks delivered by the link, oldest first
        self._rxoff = 0      # bytes of _rxq[0] already read
        self._rxn = 0        # unread bytes in _rxq
        self._txq = []       # bytes chunks written, oldest first
        self._txoff = 0      # bytes of _txq[0] the link already took
        self._txn = 0        # bytes in _txq the link has not taken
        self._ended = False
        self._closed = False
        self._rx_ev = asyncio.Event()
        self._tx_ev = asyncio.Event()

    def rx_buffered(self):
        return self._rxn

    def tx_buffered(self):
        return self._txn

    def at_eof(self):
        return (self._ended or self._closed) and self._rxn == 0

    async def read(self, n=-1):
        while self._rxn == 0:
            if self._ended or self._closed:
                return b""
            self._rx_ev.clear()
            await self._rx_ev.wait()
        head = self._rxq[0]
        o = self._rxoff
        left = len(head) - o
        if n < 0 or n >= left:
            out = head if o == 0 else head[o:]   # a whole chunk is handed over as it is
            self._rxq.pop(0)
            self._rxoff = 0
        else:
            out = head[o:o + n]
            self._rxoff = o + n
        self._rxn -= len(out)
        self._port._space.set()
        return out

    async def readexactly(self, n):
        out = b""
        while len(out) < n:
            d = await self.read(n - len(out))
            if not d:
                raise EOFError("serial link session ended")
            out += d
        return out

    def write(self, data):
        if self._ended or self._closed:
            raise OSError("serial link session ended")
        if data:
            if not isinstance(data, bytes):
                data = bytes(data)  # the caller may reuse its buffer: keep our own copy
            self._txq.append(data)
            self._txn += len(data)
            self._port._wake.set()

    async def drain(self):
        # returns once the link has taken everything written (not when the peer acked it)
        while self._txn:
            if self._ended or self._closed:
                raise OSError("serial link session ended")
            self._tx_ev.clear()
            await self._tx_ev.wait()

    def close(self):
        if not self._closed:
            self._closed = True
            self._rx_ev.set()
            self._tx_ev.set()
            self._port._conn_closed(self)

    async def wait_closed(self):
        pass

    def get_extra_info(self, name, default=None):
        return default

    def _feed(self, data):
        if not self._closed and data:
            self._rxq.append(data)
            self._rxn += len(data)
            self._rx_ev.set()

    def _to_link(self, link):
        """Hands queued bytes to the link while it takes them."""
        q = self._txq
        while q:
            head = q[0]
            o = self._txoff
            n = link.send(memoryview(head)[o:] if o else head)
            if not n:
                break
            self._txn -= n
            if o + n == len(head):
                q.pop(0)
                self._txoff = 0
            else:
                self._txoff = o + n
                break
        if not q:
            self._tx_ev.set()

    def _end(self):
        self._ended = True
        self._rx_ev.set()
        self._tx_ev.set()


class SerialPort:
    def __init__(self, reader, writer, config=None, throttle_baud=0, on_event=None):
        """config: seriallink.Link options. throttle_baud: write no faster than this many baud
        (for ptys, which have none). on_event(event) sees every non-data link event."""
        self._clock = Monotonic()
        self.link = Link(self._clock.now(), config)
        self._reader = reader
        self._writer = writer
        self._baud = throttle_baud
        self._free_at = 0.0
        self._on_event = on_event
        self._conn = None
        self._pending = None
        self._accept_ev = asyncio.Event()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._tasks = None
        self.closed = False
        self.out_of_memory = 0   # MemoryErrors the pump loops survived

    def now_ms(self):
        return self._clock.now()

    def start(self):
        if self._tasks is None:
            self._tasks = (asyncio.create_task(self._resilient(self._read_loop)),
                           asyncio.create_task(self._resilient(self._write_loop)))

    async def run(self):
        self.start()
        try:
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            pass

    async def accept(self):
        """Waits for the next link session and returns its SerialConn."""
        while self._pending is None:
            if self.closed:
                raise OSError("serial port closed")
            self._accept_ev.clear()
            await self._accept_ev.wait()
        c = self._pending
        self._pending = None
        return c

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self._conn is not None:
            self._conn._end()
            self._conn = None
        self._pending = None
        self._accept_ev.set()
        if self._tasks:
            for t in self._tasks:
                t.cancel()
        close = getattr(self._writer, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                pass

    # ---- internals ----------------------------------------------------------------------

    def _conn_closed(self, conn):
        if conn is self._conn:
            self._conn = None
            self.link.restart()  # the peer sees a new session: its conn ends too
            self._wake.set()
        if conn is self._pending:
            self._pending = None

    def _handle(self, events):
        for e in events:
            k = e[0]
            if k == "data":
                if self._conn is not None:
                    self._conn._feed(e[1])
                continue
            if self._conn is not None:
                self._conn._end()
                self._conn = None
            self._pending = None
            if k == "link_up":
                self._conn = self._pending = SerialConn(self)
                self._accept_ev.set()
            if self._on_event is not None:
                self._on_event(e)

    async def _resilient(self, loop):
        """Run a pump loop; a MemoryError (a fragmented device heap) must not kill the link for
        good: collect, wait a moment and run the loop again. A failed allocation leaves the link
        machine as it was, and anything a half-done receive lost is retransmitted by the peer."""
        while not self.closed:
            try:
                await loop()
                return
            except MemoryError:
                self.out_of_memory += 1
                gc.collect()
                await _sleep_ms(OOM_RETRY_MS)

    async def _read_loop(self):
        link = self.link
        while not self.closed:
            c = self._conn
            if c is not None and c.rx_buffered() >= RX_BUFFER_CAP:
                self._space.clear()
                await self._space.wait()
                continue
            try:
                data = await self._reader.read(READ_CHUNK)
            except OSError:
                data = None  # e.g. EIO from a pty whose other side is gone: like an unplug
            if not data:
                await _sleep_ms(IDLE_READ_MS)
                continue
            self._handle(link.tick(self._clock.now()))
            self._handle(link.receive(data))
            self._wake.set()

    async def _write_loop(self):
        link = self.link
        while not self.closed:
            if self._baud:
                busy = self._free_at - self._clock.now()
                if busy > 0:  # the simulated UART is still sending the previous frame
                    await _sleep_ms(busy)
            self._handle(link.tick(self._clock.now()))
            c = self._conn
            if c is not None and c.tx_buffered():
                c._to_link(link)
            out = link.data_to_send(WRITE_PULL)
            if out:
                await self._write(out)
                continue
            wait = link.next_timeout_ms() - self._clock.now()
            if wait > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait / 1000)
                except asyncio.TimeoutError:
                    pass

    async def _write(self, data):
        w = self._writer
        try:
            w.write(data)
            await w.drain()
            if self._baud:
                # a UART at this baud rate is busy for 10 bit times per byte
                self._free_at = max(self._free_at, self._clock.now()) + len(data) * 10000 / self._baud
        except OSError:
            pass  # nobody on the line (pty peer gone): the bytes are lost, the link resends
