# The sensor app's serial link ("link": "serial"): the framed serial port (microp2p.io.serial) on a
# tty/pty (unix port) or a UART (boards), and one libp2p connection to the gateway per link
# session. Loaded by SensorApp._link_loop only for a serial link: a TCP device never holds it.
from microp2p.io import serial
from microp2p.io.tcp import StreamPair

SERIAL_RX_BUF = 2048            # machine.UART receive buffer on boards


async def run(app, backoff):
    """The link loop of a serial device (app: the SensorApp): wait for a link session, dial the
    gateway over it, hold the connection; back off (from backoff ms) after a failed dial or a
    refusal."""
    r, w = _open(app.cfg)
    port = serial.SerialPort(r, w, {"baud": int(app.cfg["baud"])})
    port.start()
    try:
        while not app.stopped:
            sconn = await port.accept()      # waits for the next link session
            try:
                conn = await app.node.dial_stream(StreamPair(sconn, sconn), None, app.gateway_peer)
            except Exception as e:
                sconn.close()
                backoff = await app.dial_failed(backoff, "%s: %s" % (type(e).__name__, e))
                continue
            backoff = await app.hold_link(conn, backoff)
    finally:
        port.close()


def _open(cfg):
    p = cfg["serial_port"]
    if isinstance(p, str):
        return serial.open_tty(p)         # unix port: a tty or pty path
    import machine                         # a board: a UART id (+ optional pins)
    kw = {"baudrate": int(cfg["baud"]), "rxbuf": SERIAL_RX_BUF}
    pins = cfg.get("uart_pins") or {}
    if "tx" in pins:
        kw["tx"] = machine.Pin(pins["tx"])
    if "rx" in pins:
        kw["rx"] = machine.Pin(pins["rx"])
    return serial.open_uart(machine.UART(int(p), **kw))
