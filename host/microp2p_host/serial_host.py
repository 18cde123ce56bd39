# Host (CPython) side of serial links: real ports through pyserial and pseudo-terminals, driven
# by the same microp2p.serial.SerialPort as the device, over a non-blocking fd watched by the
# asyncio loop (loop.add_reader / add_writer), so no thread is needed.
#
#   port = open_serial("/dev/ttyUSB0", 115200)                 # a real UART (pyserial)
#   port = open_serial("/dev/pts/5", 115200, throttle=True)    # a pty, paced at 115200 baud
#   port = open_fd(master_fd, throttle_baud=115200)            # one end of os.openpty()
#   port.start(); conn = await port.accept()                   # then as over TCP
import asyncio
import errno
import os
import tty

from microp2p.io.serial import SerialPort


class FdStream:
    """A non-blocking fd as the reader/writer pair SerialPort wants. A pty whose other side is
    closed reads as EIO: that is reported as "nothing now" (b""), like an unplugged cable."""

    def __init__(self, fd, closer=None):
        self.fd = fd
        self._closer = closer
        self._out = bytearray()
        os.set_blocking(fd, False)

    async def _ready(self, add, remove):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def fire():
            if not fut.done():
                fut.set_result(None)

        add(self.fd, fire)
        try:
            await fut
        finally:
            remove(self.fd)

    async def read(self, n):
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self.fd, n)
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno == errno.EIO:
                    return b""
                raise
            await self._ready(loop.add_reader, loop.remove_reader)

    def write(self, data):
        self._out += data

    async def drain(self):
        loop = asyncio.get_running_loop()
        while self._out:
            try:
                n = os.write(self.fd, self._out)
                del self._out[:n]
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno == errno.EIO:  # nobody on the other side: the bytes are lost
                    self._out.clear()
                    return
                raise
            await self._ready(loop.add_writer, loop.remove_writer)

    def close(self):
        if self._closer is not None:
            closer, self._closer = self._closer, None
            closer()


def open_fd(fd, config=None, throttle_baud=0, on_event=None, raw=True, close_fd=False):
    """A SerialPort on an already open fd (e.g. the master of os.openpty()). raw=True puts a
    tty fd into raw mode (mandatory on ptys: a cooked tty eats and rewrites bytes)."""
    if raw and os.isatty(fd):
        tty.setraw(fd)
    cfg = dict(config or {})
    if throttle_baud:
        cfg.setdefault("baud", throttle_baud)
    stream = FdStream(fd, (lambda: os.close(fd)) if close_fd else None)
    return SerialPort(stream, stream, cfg, throttle_baud, on_event)


def open_serial(path, baud=115200, config=None, throttle=False, on_event=None):
    """A SerialPort on a serial device opened with pyserial (8N1, no flow control).
    throttle=True paces writes at `baud` (for ptys, which ignore the baud rate)."""
    import serial  # pyserial: host only

    ser = serial.Serial(path, baud, timeout=0, exclusive=True)
    cfg = dict(config or {})
    cfg.setdefault("baud", baud)
    stream = FdStream(ser.fileno(), ser.close)
    return SerialPort(stream, stream, cfg, baud if throttle else 0, on_event)
