# The sensor app over a serial link: MicroPython unix port on one end of a pseudo-terminal pair
# (microp2p.serial on the device), a CPython gateway node on the other (microp2p_host.serial_host),
# libp2p (mss -> Noise -> yamux -> gossipsub) on top exactly as over TCP. The host side going
# silent for longer than the link's dead time is an unplug: readings queue and come after.
import asyncio
import os
import tty

import cbor2

from microp2p_host.serial_host import open_fd
from microp2p.io.tcp import StreamPair
from sensor_harness import Gateway, Device, provision, verify_signature, run, tmpdir, rmtree, READINGS

BAUD = 115200


def _pty():
    m, s = os.openpty()
    tty.setraw(s)
    return m, s


class SerialGateway:
    """Accepts a libp2p connection on every link session of a SerialPort on the pty master."""

    def __init__(self, gw, master_fd):
        self.gw = gw
        self.fd = master_fd
        self.port = None
        self.task = None

    def plug(self):
        # raw mode only once: termios settings of a pty are shared by both ends, and setraw on
        # the master again would put VMIN back to 1 under the device (its reads would block)
        self.port = open_fd(self.fd, throttle_baud=BAUD, raw=self.port is None)
        self.port.start()
        self.task = asyncio.ensure_future(self._accept_loop(self.port))

    async def _accept_loop(self, port):
        while True:
            try:
                sconn = await port.accept()
            except OSError:
                return
            asyncio.ensure_future(self.gw.node.accept_stream(StreamPair(sconn, sconn)))

    def unplug(self):
        self.task.cancel()
        self.port.close()


def test_serial_link_readings_and_unplug():
    d = tmpdir()
    m, s = _pty()

    async def main():
        gw = await Gateway().start(listen=False)
        sg = SerialGateway(gw, m)
        sg.plug()
        cfg, peer = provision(d, "/p2p/" + gw.peer_id, link="serial", serial_port=os.ttyname(s),
                              interval_ms=400, queue_max=32, max_backoff_ms=1000)
        dev = await Device(cfg).start()
        try:
            ev = (await dev.wait_event("connected", timeout=30))[0]
            assert ev["link"] == "serial" and ev["peer"] == gw.peer_id
            msgs = await gw.wait_messages(2, timeout=20)
            assert all(verify_signature(x) for x in msgs)
            assert cbor2.loads(msgs[0]["data"])["dev"] == peer
            sg.unplug()
            await dev.wait_event("disconnected", timeout=15)     # the link's dead time passes
            await dev.wait_event("queued", n=2, timeout=10)
            sg.plug()
            await dev.wait_event("connected", n=2, timeout=30)
            last_taken = dev.named("reading")[-1]["seq"]
            await gw.wait_messages(1, timeout=20, pred=lambda x: cbor2.loads(x["data"])["seq"] >= last_taken + 2)
        finally:
            err = await dev.stop()
            sg.unplug()
            await gw.stop()
        assert "Traceback" not in err, err
        return dev, gw, peer

    try:
        dev, gw, peer = run(main(), timeout=180)
    finally:
        os.close(m)
        os.close(s)
        rmtree(d)
    seqs = [cbor2.loads(x["data"])["seq"] for x in gw.messages if x["topic"] == READINGS]
    assert len(seqs) == len(set(seqs)), seqs
    queued = [e["seq"] for e in dev.named("queued")]
    assert queued and set(queued) <= set(seqs)          # every reading queued while unplugged arrived
    assert not dev.named("dropped")
    # readings published while the link was already dead (before the device noticed) are lost:
    # there is no application ack. Everything the device queued or sent after the reconnect came.
    reconnect = [i for i, e in enumerate(dev.events) if e.get("event") == "connected"][1]
    later = [e["seq"] for e in dev.events[reconnect:] if e.get("event") == "published"]
    assert later and set(later) <= set(seqs)
