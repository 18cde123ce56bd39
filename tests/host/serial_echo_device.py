# Echo device for tests/host/test_serial_pty.py, run by the MicroPython unix port:
#   micropython serial_echo_device.py <tty path> <firmware dir> <throttle baud or 0>
# Echoes every byte of every link session; prints one line per session event to stdout.
import sys
import asyncio

sys.path.insert(0, sys.argv[2])
from microp2p.io import serial  # noqa: E402


def on_event(e):
    print("event", e[0])


async def main():
    path = sys.argv[1]
    baud = int(sys.argv[3])
    r, w = serial.open_tty(path)
    cfg = {"baud": baud} if baud else {}
    port = serial.SerialPort(r, w, cfg, throttle_baud=baud, on_event=on_event)
    port.start()
    print("ready")
    while True:
        conn = await port.accept()
        n = 0
        while True:
            d = await conn.read(512)
            if not d:
                break
            n += len(d)
            try:
                conn.write(d)
                await conn.drain()
            except OSError:
                break
        print("session end", n, port.link.stats["retransmissions"])


asyncio.run(main())
