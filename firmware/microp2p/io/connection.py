# A libp2p connection and its streams: pumps bytes between a duplex byte stream and the sans-IO
# machines (conn.upgrade, Noise transport, yamux) with asyncio. One code base for CPython and
# MicroPython (only the asyncio subset MicroPython has).
#
# Per connection there is one reader task (stream -> Noise -> yamux -> streams) and one writer task
# (the only one that writes the duplex: MicroPython allows one waiter per socket and direction).
# Backpressure is "stop reading": the reader pauses while the streams hold more unconsumed bytes
# than the connection's memory budget (the resource manager's read_budget(), a fair share of the
# node's), and writers wait while the connection's output exceeds its cap. While the output is
# over its cap, what yamux wants to send stays in the session: a peer that does not read and
# floods requests for replies (PING) hits yamux's MAX_CONTROL_BACKLOG and is disconnected.
# Every stream is accounted in the connection's resource scope and forgotten once FIN went both
# ways (or it was reset).
from microp2p.conn import mss, noise, yamux
from microp2p.conn.upgrade import Upgrade, YAMUX
from microp2p.aio import asyncio, join_head, print_exc, TimeoutError
from microp2p.clock import ticks_ms, now_ms
from microp2p.errors import ProtocolError, LimitError, SCOPE_STREAM, MicroP2PError

CLOSE_FLUSH_TIMEOUT_MS = 200  # how long a closing connection waits for its GoAway to be written
WRITE_COALESCE_MAX = 16384    # queued encrypted frames joined into one write up to this size
FLUSH_MAX = noise.MAX_PLAINTEXT   # plaintext taken from the muxer and encrypted at once: one full frame


def leftover(events):
    """Bytes that arrived after the agreed multistream message (a lazy peer's early data)."""
    out = b""
    for ev in events:
        if ev[0] == "data":
            out += ev[1]
    return out


async def close_quietly(duplex):
    try:
        await duplex.close()
    except Exception:
        pass


class Prefixed:
    """A duplex byte stream with bytes already read from it put back in front."""

    def __init__(self, duplex, first):
        self.duplex = duplex
        self._first = first

    async def read(self, n):
        f = self._first
        if f is not None:
            self._first = None
            return f
        return await self.duplex.read(n)

    async def write(self, data):
        await self.duplex.write(data)

    async def close(self):
        await self.duplex.close()

    def __getattr__(self, name):   # get_extra_info, remote_multiaddr, ... of the stream below
        return getattr(self.duplex, name)


async def negotiate(st, m):
    """Run a multistream machine (mss.Dialer / mss.Listener) over a stream until a protocol is
    agreed; bytes that came after the agreement are put back into the stream. Returns it."""
    out = m.data_to_send()
    if out:
        await st.write(out)
    while True:
        data = await st.read()
        if not data:
            raise EOFError("stream closed during negotiation")
        events = m.receive(data)
        out = m.data_to_send()
        if out:
            await st.write(out)
        if m.protocol is not None:
            st.protocol = m.protocol
            st._unread(leftover(events))
            return m.protocol


class StreamReset(MicroP2PError):
    pass


class Stream:
    """A yamux stream seen by protocol code: async read/write/close, like an asyncio stream."""

    def __init__(self, conn, sid):
        self.conn = conn
        self.sid = sid
        self.protocol = None
        self._chunks = []
        self._eof = False
        self._reset = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._write_closed = False
        self._precredited = 0    # bytes put back by _unread(): their window credit went already
        self.scope = None        # resources.StreamScope

    # called by the connection's reader task
    def _on_data(self, data):
        self._chunks.append(data)
        self._readable.set()

    def _on_eof(self):
        self._eof = True
        self._readable.set()

    def _on_reset(self):
        self._reset = True
        self._readable.set()
        self._writable.set()

    def _unread(self, data):
        # Bytes a reader took and gives back (a lazy dialer's data behind its protocol proposal):
        # they were credited to the peer when first read, so reading them again credits nothing.
        if data:
            self._chunks.insert(0, bytes(data))
            self._precredited += len(data)
            self._readable.set()

    async def read(self, n=-1):
        """Up to n bytes (all buffered if n < 0); b'' at EOF. Raises StreamReset."""
        while not self._chunks:
            if self._reset:
                raise StreamReset("stream reset")
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        chunk = self._chunks[0]
        if n < 0 or n >= len(chunk):
            self._chunks.pop(0)
        else:
            self._chunks[0] = chunk[n:]
            chunk = chunk[:n]
        k = len(chunk)
        pre = self._precredited
        if pre:
            if pre >= k:
                self._precredited = pre - k
                return chunk
            self._precredited = 0
            k -= pre
        self.conn._consumed(self.sid, k)
        return chunk

    async def readexactly(self, n):
        out = bytearray()
        while len(out) < n:
            b = await self.read(n - len(out))
            if not b:
                raise EOFError("stream ended after %d of %d bytes" % (len(out), n))
            out += b
        return bytes(out)

    async def read_all(self, limit):
        """Everything until EOF, at most limit bytes (LimitError beyond)."""
        out = bytearray()
        while True:
            b = await self.read()
            if not b:
                return bytes(out)
            out += b
            if len(out) > limit:
                raise LimitError("stream sent more than %d bytes" % limit, SCOPE_STREAM)

    async def write(self, data):
        if self._reset:
            raise StreamReset("stream reset")
        if self._write_closed:
            raise OSError("write after close")
        await self.conn._send(self, data)

    async def close(self):
        """Close our write side (yamux FIN). Reading may go on until the peer's EOF."""
        if not self._write_closed and not self._reset:
            self._write_closed = True
            self.conn._close_stream(self.sid)
            await self.conn._drain()

    def reset(self):
        if not self._reset:
            self._reset = True
            self.conn._reset_stream(self.sid)
            self._readable.set()
            self._writable.set()


class Connection:
    """One libp2p connection over a duplex byte stream (anything with async read(n), write(data)
    and close(): a TCP socket pair, a serial link, a relayed yamux stream)."""

    def __init__(self, node, duplex, outbound, remote_addr, relayed=False):
        self.node = node
        self.duplex = duplex
        self.outbound = outbound
        self.remote_addr = remote_addr
        self.relayed = relayed
        self.remote_peer = None
        self.muxer_negotiation = None  # "early" or "multistream"
        self.session = None
        self.transport = None
        self.streams = {}
        self.closed = False
        self.identified = None
        self.ping_streams = 0  # inbound ping streams open now (capped per the ping spec)
        self.refusal = None    # the reason the remote gave when it refused us (node.REFUSED)
        self.accept_streams = True
        self._out = []
        self._out_bytes = 0
        self._out_event = asyncio.Event()
        self._drained = asyncio.Event()
        self._resume_read = asyncio.Event()
        self._write_done = asyncio.Event()
        self.closed_event = asyncio.Event()   # set once the connection is fully closed
        self._tasks = []
        self.opened_ms = ticks_ms()
        self.scope = None        # resources.ConnScope, once the upgrade is done and admitted

    # ---- upgrade (the sans-IO machine conn.upgrade.Upgrade does the protocol) -----------------
    _upgrade_rx = False

    def upgrade_stalled(self):
        """True while the remote has sent nothing in the upgrade (a silent socket)."""
        return not self._upgrade_rx

    async def upgrade(self, expected_peer=None):
        node = self.node
        u = Upgrade(self.outbound, node.key, expected_peer, node.noise_static, (YAMUX,))
        read_size = node.profile.read_size
        idle = node.profile.limits.handshake_idle_ms / 1000
        while True:
            out = u.data_to_send()
            if out:
                await self.duplex.write(out)
            if u.done:
                break
            # a silent socket gives its pending-upgrade slot back after handshake_idle_ms
            data = await asyncio.wait_for(self.duplex.read(read_size), idle)
            if not data:
                raise OSError("connection closed during upgrade")
            self._upgrade_rx = True
            u.receive(data)
        self.remote_peer = u.remote_peer
        self.transport = u.transport
        self.muxer_negotiation = u.muxer_negotiation
        self.session = yamux.Session(self.outbound, node.profile.yamux)
        self._early = u.pending   # fed by start(), once the connection has its resource scope

    # ---- running --------------------------------------------------------------------------
    def start(self):
        early = getattr(self, "_early", None)
        self._early = None
        self._tasks.append(asyncio.create_task(self._read_loop()))
        self._tasks.append(asyncio.create_task(self._write_loop()))
        try:
            for chunk in early or ():
                self._feed_session(chunk)
        except ProtocolError as e:
            self.node.log("connection %s closed: %s %s" % (self.remote_peer, type(e).__name__, e))
            self.close()
            return
        self._flush()

    def _feed_session(self, plaintext):
        events = self.session.receive(plaintext)
        for ev in events:
            self._dispatch(ev)
        self._flush()

    def _dispatch(self, ev):
        kind = ev[0]
        if kind == "data":
            st = self.streams.get(ev[1])
            if st is not None:
                st._on_data(ev[2])
                if self.scope is not None:
                    self.scope.last_active = now_ms()
            else:
                self.session.consumed(ev[1], len(ev[2]))
        elif kind == "stream_opened":
            try:
                ss = self.scope.open_stream(True) if self.scope is not None else None
            except LimitError as e:
                self.node.log("stream %d refused: %s" % (ev[1], e))
                self.session.reset_stream(ev[1])
                return
            st = Stream(self, ev[1])
            st.scope = ss
            self.streams[ev[1]] = st
            if not self.accept_streams:   # a refused connection only carries its reason
                st.reset()
                return
            self.node.spawn(self.node.serve_stream(self, st))
        elif kind == "stream_eof":
            st = self.streams.get(ev[1])
            if st is not None:
                st._on_eof()
        elif kind == "stream_closed":
            self._forget_stream(ev[1])   # FIN both ways; the app may still read what it holds
        elif kind == "stream_reset":
            st = self._forget_stream(ev[1])
            if st is not None:
                st._on_reset()
        elif kind == "writable":
            st = self.streams.get(ev[1])
            if st is not None:
                st._writable.set()
        elif kind == "stream_error":
            # the session already answered with RST; only this stream ends
            st = self._forget_stream(ev[1])
            self.node.log("stream %d error: %s" % (ev[1], ev[2]))
            if st is not None:
                st._on_reset()
        elif kind == "ping_timeout":
            pass
        elif kind == "goaway" or kind == "closed":
            self.node.log("connection %s: %s" % (self.remote_peer, ev))
            if kind == "closed":
                self.close()

    def _forget_stream(self, sid):
        st = self.streams.pop(sid, None)
        if st is not None and st.scope is not None:
            st.scope.close()
        return st

    def _read_budget(self):
        cap = self.node.profile.unconsumed_cap
        sc = self.scope
        if sc is None:
            return cap
        sc.set_usage(self.session.unconsumed_total())
        b = sc.read_budget()
        return b if b < cap else cap

    async def _read_loop(self):
        try:
            while not self.closed:
                while self.session.unconsumed_total() > self._read_budget() and not self.closed:
                    self._resume_read.clear()
                    await self._resume_read.wait()
                data = await self.duplex.read(self.node.profile.read_size)
                if not data:
                    break
                for chunk in self.transport.receive(data):
                    self._feed_session(chunk)
        except ProtocolError as e:
            self.node.log("connection %s closed: %s %s" % (self.remote_peer, type(e).__name__, e))
        except (OSError, TimeoutError) as e:
            self.node.log("connection %s io: %r" % (self.remote_peer, e))
        except Exception as e:  # a bug of ours: close this connection, keep the node alive
            print_exc(e)
        self.close()

    async def _write_loop(self):
        try:
            await self._write_out()
        finally:
            # _finish_close waits on this rather than polling: a polled wait cost every close ~10 ms
            self._write_done.set()

    async def _write_out(self):
        try:
            while not self.closed or self._out:
                while not self._out:
                    if self.closed:
                        return
                    self._out_event.clear()
                    await self._out_event.wait()
                out = self._out
                if len(out[0]) < WRITE_COALESCE_MAX:
                    # Small frames: yield once so the frames other tasks produce in this same loop
                    # pass (an mss answer, the identify message and its FIN, ...) join them, then
                    # write them as one: one syscall and one wakeup of the peer instead of several.
                    await asyncio.sleep(0)
                    out = self._out
                    chunk, k, _ = join_head(out, WRITE_COALESCE_MAX)
                    self._out = out[k:]
                else:
                    chunk = out.pop(0)
                await self.duplex.write(chunk)
                self._out_bytes -= len(chunk)
                if self._out_bytes <= self.node.profile.write_buffer_cap:
                    self._drained.set()
                    self._flush()  # what the session kept while we were over the cap
        except Exception as e:
            self.node.log("write failed %s: %r" % (self.remote_peer, e))
            self.close()

    def _flush(self):
        """Encrypt whatever yamux wants to send and hand it to the writer task; while the output
        is over its cap it stays in the session (whose replies to the peer are capped)."""
        cap = self.node.profile.write_buffer_cap
        if self.session is None:
            return
        # in pieces of at most FLUSH_MAX plaintext bytes: one encrypt of everything the session
        # holds needed one block of that size (787 KB measured, 50 echo streams): MemoryError
        piece = cap if cap < FLUSH_MAX else FLUSH_MAX
        while self._out_bytes <= cap and self._encrypt_piece(piece):
            self._out_event.set()

    def _encrypt_piece(self, max_bytes):
        """Takes up to max_bytes from the session, encrypts them for the writer; False if none."""
        data = self.session.data_to_send(max_bytes)
        if not data:
            return False
        enc = self.transport.encrypt(data)
        self._out.append(enc)
        self._out_bytes += len(enc)
        return True

    def _backlog(self):
        # encrypted bytes queued for the writer + what the session holds while we are over the cap
        s = self.session
        return self._out_bytes + (s.output_pending() if s is not None else 0)

    async def _drain(self):
        while self._backlog() > self.node.profile.write_buffer_cap and not self.closed:
            self._drained.clear()
            await self._drained.wait()

    def _consumed(self, sid, n):
        if self.closed:
            return
        self.session.consumed(sid, n)
        self._flush()
        self._resume_read.set()
        if self.scope is not None:
            self.scope.set_usage(self.session.unconsumed_total())

    async def _send(self, st, data):
        pos = 0
        end = len(data)
        await self._drain()  # many writers must not each slip a chunk past a full output
        while pos < end:
            if self.closed:
                raise OSError("connection closed")
            if st._reset:
                raise StreamReset("stream reset")
            # yamux takes what fits its window plus a bounded per-stream queue (like socket.send)
            n = self.session.send(st.sid, data if pos == 0 and end == len(data) else data[pos:])
            if n:
                pos += n
                self._flush()
                await self._drain()
            else:
                st._writable.clear()
                await st._writable.wait()

    def _close_stream(self, sid):
        if not self.closed:
            self.session.close_stream(sid)
            if not self.session.is_open(sid):
                self._forget_stream(sid)   # the peer's FIN came first: done both ways
            self._flush()

    def _reset_stream(self, sid):
        self._forget_stream(sid)
        if not self.closed:
            self.session.reset_stream(sid)
            self._flush()

    async def new_stream(self, protocols):
        """Open a stream and negotiate one of protocols; returns the Stream (stream.protocol set)."""
        if self.closed:
            raise OSError("connection closed")
        ss = self.scope.open_stream(False) if self.scope is not None else None
        try:
            sid = self.session.open_stream()
        except BaseException:
            if ss is not None:
                ss.close()
            raise
        st = Stream(self, sid)
        st.scope = ss
        self.streams[sid] = st
        # No flush here: the SYN stays queued in the session and leaves in the same Noise frame as
        # the multistream proposal written next (as js does: SYN, then data without waiting).
        try:
            await asyncio.wait_for(negotiate(st, mss.Dialer(protocols)),
                                   self.node.profile.negotiate_timeout_ms / 1000)
        except BaseException:
            st.reset()
            raise
        return st

    def tick(self, now):
        if self.closed or self.session is None:
            return
        for ev in self.session.tick(now):
            self._dispatch(ev)
        self._flush()

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.session is not None:
            try:
                if not self.session.closed:
                    self.session.go_away(0)
                while self._encrypt_piece(FLUSH_MAX):  # the last frames and the GoAway
                    pass
            except Exception:
                pass
        for st in list(self.streams.values()):
            st._on_reset()
            if st.scope is not None:
                st.scope.close()
        self.streams = {}
        self._out_event.set()
        self._drained.set()
        self._resume_read.set()
        self.node.spawn(self._finish_close())

    async def _finish_close(self):
        # let the writer flush the GoAway (bounded), then close the socket
        if self._tasks and not self._write_done.is_set():
            try:
                await asyncio.wait_for(self._write_done.wait(), CLOSE_FLUSH_TIMEOUT_MS / 1000)
            except TimeoutError:
                pass
        await close_quietly(self.duplex)
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        if self.scope is not None:
            self.scope.close()
        self.node.forget_connection(self)
        self.closed_event.set()
