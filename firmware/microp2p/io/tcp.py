# TCP transport driver: the only code that opens TCP sockets. Works on CPython and MicroPython.
import os
from microp2p.aio import asyncio, MICROPYTHON
from microp2p.codec.multiaddr import Multiaddr

# MicroPython's asyncio server cannot report the port it bound (no getsockname), so a /tcp/0
# listen there picks a random port itself and retries this many times on EADDRINUSE.
MP_PORT_TRIES = 20
MP_PORT_BASE = 20000
MP_PORT_SPAN = 40000


def host_port(maddr):
    """(host, port, family_name) of a /ip4|ip6|dns*/…/tcp/N multiaddr."""
    host = None
    fam = None
    port = None
    for name, value in maddr.components():
        if host is None and name in ("ip4", "ip6", "dns", "dns4", "dns6"):
            host, fam = value, name
        elif name == "tcp" and port is None:
            port = int(value)
    if host is None or port is None:
        raise ValueError("not a TCP multiaddr: %s" % maddr)
    return host, port, fam


async def dial(maddr):
    host, port, _ = host_port(maddr)
    return await asyncio.open_connection(host, port)


async def listen(maddr, on_connection):
    """Start a server; returns (server, bound_multiaddr) with the real port."""
    host, port, fam = host_port(maddr)
    if port != 0:
        server = await asyncio.start_server(on_connection, host, port)
        return server, maddr
    if not MICROPYTHON:
        server = await asyncio.start_server(on_connection, host, 0)
        port = server.sockets[0].getsockname()[1]
        return server, Multiaddr.from_string("/%s/%s/tcp/%d" % (fam, host, port))
    last = None
    for _ in range(MP_PORT_TRIES):
        r = os.urandom(2)
        port = MP_PORT_BASE + ((r[0] << 8) | r[1]) % MP_PORT_SPAN
        try:
            server = await asyncio.start_server(on_connection, host, port)
        except OSError as e:
            last = e
            continue
        return server, Multiaddr.from_string("/%s/%s/tcp/%d" % (fam, host, port))
    raise last


IPPROTO_TCP = 6   # MicroPython's socket module has neither constant; these are the BSD/lwIP values
TCP_NODELAY = 1


def nodelay(writer):
    """Turn off Nagle's algorithm on a MicroPython stream's socket (CPython's asyncio already does
    for TCP). Small writes such as a ping or a yamux window update then go out at once instead of
    waiting for the ACK of the previous one (~40 ms per round trip with delayed ACKs). Streams
    that are not sockets (a pty, a UART) are left alone."""
    s = getattr(writer, "s", None)
    try:
        s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    except Exception:
        pass


class StreamPair:
    """An asyncio (reader, writer) pair as the duplex byte stream a Connection runs over:
    async read(n), write(data) (written and drained), close()."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        if MICROPYTHON:
            nodelay(writer)

    async def read(self, n):
        return await self.reader.read(n)

    async def write(self, data):
        self.writer.write(data)
        await self.writer.drain()

    async def close(self):
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except Exception:
            pass

    def get_extra_info(self, name, default=None):
        try:
            return self.writer.get_extra_info(name)
        except Exception:
            return default

    def remote_multiaddr(self):
        """/ip4/A/tcp/P of the remote end (None when unknown, e.g. a pty)."""
        pn = self.get_extra_info("peername")
        if isinstance(pn, tuple) and ":" not in str(pn[0]):
            return Multiaddr.from_string("/ip4/%s/tcp/%d" % (pn[0], pn[1]))
        if isinstance(pn, tuple):
            return Multiaddr.from_string("/ip6/%s/tcp/%d" % (pn[0], pn[1]))
        return None
