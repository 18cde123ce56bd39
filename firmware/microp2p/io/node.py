# The libp2p node driver: pumps bytes between sockets and the sans-IO machines with asyncio.
# One code base for CPython and MicroPython (only the asyncio subset MicroPython has: Event, Lock,
# wait_for, gather, streams; no Queue, no Semaphore, no wait).
#
#   raw TCP ── multistream(/noise) ── Noise XX ── [early muxer | multistream(/yamux/1.0.0)] ── yamux
#
# Per connection there is one reader task (socket → Noise → yamux → streams) and one writer task
# (the only one that drains the socket: MicroPython allows one waiter per socket and direction).
# Backpressure is "stop reading": the reader pauses while the streams hold more unconsumed bytes
# than the node's budget, and writers wait while the socket's output exceeds its cap.
from microp2p import crypto
from microp2p.conn import mss, noise, yamux
from microp2p.proto import identify, ping
from microp2p.identity import envelope
from microp2p.aio import asyncio, join_head, print_exc, TimeoutError, MICROPYTHON
from microp2p.clock import ticks_ms, ticks_us, ticks_diff, now_ms, wall_us
from microp2p.errors import ProtocolError, LimitError, AuthError, SCOPE_STREAM, MicroP2PError
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.io import tcp

NOISE = "/noise"
YAMUX = "/yamux/1.0.0"
IDENTIFY = "/ipfs/id/1.0.0"
IDENTIFY_PUSH = "/ipfs/id/push/1.0.0"
PING = "/ipfs/ping/1.0.0"
ECHO = "/microp2p/echo/1.0.0"  # a test protocol: echo until EOF (used by interop tests and benches)

AGENT = "microp2p/0.1.0"
CLOSE_FLUSH_TIMEOUT_MS = 200  # how long a closing connection waits for its GoAway to be written
WRITE_COALESCE_MAX = 16384    # queued encrypted frames joined into one socket write up to this size


def _leftover(events):
    """Bytes that arrived after the agreed multistream message (a lazy peer's early data)."""
    out = b""
    for ev in events:
        if ev[0] == "data":
            out += ev[1]
    return out


async def _close_writer(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass


def _strip_p2p(maddr):
    pid = maddr.value_for("p2p")
    if pid is None:
        return maddr
    return maddr.decapsulate("/p2p/" + pid)


class Config:
    """Bounds of a node. Defaults suit a gateway; device() is the small profile."""

    def __init__(self):
        self.max_connections = 128          # open connections per node (inbound refused beyond)
        self.max_pending_upgrades = 16      # inbound connections still in handshake
        self.read_size = 65536              # bytes per socket read
        self.write_buffer_cap = 262144      # encrypted bytes queued per connection before writers wait
        self.unconsumed_cap = 4 * 1024 * 1024   # unread stream bytes per connection before we stop reading
        self.handshake_timeout_ms = 10000   # mss + Noise + muxer negotiation
        self.negotiate_timeout_ms = 10000   # multistream on a new stream
        self.identify_timeout_ms = 5000
        self.identify_max_bytes = 65536
        self.tick_ms = 1000                 # keepalive / timers granularity
        self.yamux = None                   # yamux.Config or None for defaults
        self.agent = AGENT

    @classmethod
    def device(cls):
        c = cls()
        c.max_connections = 4
        c.max_pending_upgrades = 2
        c.read_size = 2048
        c.write_buffer_cap = 8192
        c.unconsumed_cap = 16384
        c.handshake_timeout_ms = 60000      # pure-Python X25519/Ed25519 take seconds on an MCU
        c.identify_max_bytes = 8192
        return c


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
        if data:
            self._chunks.insert(0, bytes(data))
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
        self.conn._consumed(self.sid, len(chunk))
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
    def __init__(self, node, reader, writer, outbound, remote_addr):
        self.node = node
        self.reader = reader
        self.writer = writer
        self.outbound = outbound
        self.remote_addr = remote_addr
        self.remote_peer = None
        self.muxer_negotiation = None  # "early" or "multistream"
        self.session = None
        self.transport = None
        self.streams = {}
        self.closed = False
        self.identified = None
        self.ping_streams = 0  # inbound ping streams open now (capped per the ping spec)
        self._out = []
        self._out_bytes = 0
        self._out_event = asyncio.Event()
        self._drained = asyncio.Event()
        self._resume_read = asyncio.Event()
        self._write_done = asyncio.Event()
        self._tasks = []
        self.opened_ms = ticks_ms()

    # ---- upgrade -------------------------------------------------------------------------
    async def _raw_read(self):
        data = await self.reader.read(self.node.config.read_size)
        if not data:
            raise OSError("connection closed during upgrade")
        return data

    async def _raw_write(self, data):
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _negotiate_raw(self, m, read, write):
        """Run a multistream machine over read/write coroutines until agreed; returns (proto, leftover)."""
        await write(m.data_to_send())
        while True:
            events = m.receive(await read())
            await write(m.data_to_send())
            if m.protocol is not None:
                return m.protocol, _leftover(events)

    async def upgrade(self, expected_peer=None):
        node = self.node
        if self.outbound:
            m = mss.Dialer([NOISE])
        else:
            m = mss.Listener((NOISE,))
        _, leftover = await self._negotiate_raw(m, self._raw_read, self._raw_write)
        hs = noise.Handshake(self.outbound, node.key, expected_peer, (YAMUX,),
                             static_private=node._noise_static, identity_sig=node._noise_sig,
                             static_public=node._noise_static_pub)
        pending = []
        data = leftover
        await self._raw_write(hs.data_to_send())  # msg 1 when we initiate
        while not hs.complete:
            if not data:
                data = await self._raw_read()
            for ev in hs.receive(data):
                if ev[0] == "data":
                    pending.append(bytes(ev[1]))
            data = b""
            await self._raw_write(hs.data_to_send())
        self.remote_peer = hs.remote_peer
        self.transport = hs.transport()
        if hs.muxer == YAMUX:
            self.muxer_negotiation = "early"
        else:
            self.muxer_negotiation = "multistream"
            pending_buf = pending

            async def sread():
                while not pending_buf:
                    for c in self.transport.receive(await self._raw_read()):
                        pending_buf.append(bytes(c))
                return pending_buf.pop(0)

            async def swrite(data):
                if data:
                    await self._raw_write(self.transport.encrypt(data))

            m = mss.Dialer([YAMUX]) if self.outbound else mss.Listener((YAMUX,))
            _, leftover = await self._negotiate_raw(m, sread, swrite)
            pending = ([leftover] if leftover else []) + pending_buf
        self.session = yamux.Session(self.outbound, node.config.yamux)
        for chunk in pending:
            self._feed_session(chunk)

    # ---- running --------------------------------------------------------------------------
    def start(self):
        self._tasks.append(asyncio.create_task(self._read_loop()))
        self._tasks.append(asyncio.create_task(self._write_loop()))
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
            else:
                self.session.consumed(ev[1], len(ev[2]))
        elif kind == "stream_opened":
            st = Stream(self, ev[1])
            self.streams[ev[1]] = st
            self.node._spawn(self.node._serve_stream(self, st))
        elif kind == "stream_eof":
            st = self.streams.get(ev[1])
            if st is not None:
                st._on_eof()
        elif kind == "stream_reset":
            st = self.streams.pop(ev[1], None)
            if st is not None:
                st._on_reset()
        elif kind == "writable":
            st = self.streams.get(ev[1])
            if st is not None:
                st._writable.set()
        elif kind == "stream_error":
            # the session already answered with RST; only this stream ends
            st = self.streams.pop(ev[1], None)
            self.node._log("stream %d error: %s" % (ev[1], ev[2]))
            if st is not None:
                st._on_reset()
        elif kind == "ping_timeout":
            pass
        elif kind == "goaway" or kind == "closed":
            self.node._log("connection %s: %s" % (self.remote_peer, ev))
            if kind == "closed":
                self.close()

    async def _read_loop(self):
        cap = self.node.config.unconsumed_cap
        try:
            while not self.closed:
                while self.session.unconsumed_total() > cap and not self.closed:
                    self._resume_read.clear()
                    await self._resume_read.wait()
                data = await self.reader.read(self.node.config.read_size)
                if not data:
                    break
                for chunk in self.transport.receive(data):
                    self._feed_session(chunk)
        except ProtocolError as e:
            self.node._log("connection %s closed: %s %s" % (self.remote_peer, type(e).__name__, e))
        except (OSError, TimeoutError) as e:
            self.node._log("connection %s io: %r" % (self.remote_peer, e))
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
                self.writer.write(chunk)
                await self.writer.drain()
                self._out_bytes -= len(chunk)
                if self._out_bytes <= self.node.config.write_buffer_cap:
                    self._drained.set()
        except Exception as e:
            self.node._log("write failed %s: %r" % (self.remote_peer, e))
            self.close()

    def _flush(self):
        """Encrypt whatever yamux wants to send and hand it to the writer task."""
        if self.session is None:
            return
        data = self.session.data_to_send()
        if data:
            enc = self.transport.encrypt(data)
            self._out.append(enc)
            self._out_bytes += len(enc)
            self._out_event.set()

    async def _drain(self):
        while self._out_bytes > self.node.config.write_buffer_cap and not self.closed:
            self._drained.clear()
            await self._drained.wait()

    def _consumed(self, sid, n):
        if self.closed:
            return
        self.session.consumed(sid, n)
        self._flush()
        self._resume_read.set()

    async def _send(self, st, data):
        pos = 0
        end = len(data)
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
            self._flush()

    def _reset_stream(self, sid):
        self.streams.pop(sid, None)
        if not self.closed:
            self.session.reset_stream(sid)
            self._flush()

    async def new_stream(self, protocols):
        """Open a stream and negotiate one of protocols; returns the Stream (stream.protocol set)."""
        if self.closed:
            raise OSError("connection closed")
        sid = self.session.open_stream()
        st = Stream(self, sid)
        self.streams[sid] = st
        # No flush here: the SYN stays queued in the session and leaves in the same Noise frame as
        # the multistream proposal written next (as js does: SYN, then data without waiting).
        try:
            await asyncio.wait_for(self.node._negotiate_stream(st, mss.Dialer(protocols)),
                                   self.node.config.negotiate_timeout_ms / 1000)
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
                data = self.session.data_to_send()
                if data:
                    self._out.append(self.transport.encrypt(data))
            except Exception:
                pass
        for st in list(self.streams.values()):
            st._on_reset()
        self.streams = {}
        self._out_event.set()
        self._drained.set()
        self._resume_read.set()
        self.node._spawn(self._finish_close())

    async def _finish_close(self):
        # let the writer flush the GoAway (bounded), then close the socket
        if self._tasks and not self._write_done.is_set():
            try:
                await asyncio.wait_for(self._write_done.wait(), CLOSE_FLUSH_TIMEOUT_MS / 1000)
            except TimeoutError:
                pass
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except Exception:
            pass
        for t in self._tasks:
            t.cancel()
        self.node._connection_closed(self)


class Node:
    def __init__(self, key=None, config=None, on_event=None, log=None):
        self.key = key or Ed25519PrivateKey.generate()
        self.peer_id = PeerId.from_public_key(self.key.public_key)
        self.config = config or Config()
        self.on_event = on_event
        self.log_fn = log
        self.handlers = {}
        self.connection_listeners = []   # fn(conn, opened: bool), e.g. the pubsub driver
        self.connections = []
        self.listen_addrs = []
        self.servers = []
        self._pending_upgrades = 0
        self._tasks = []
        self._ticker = None
        self._stopped = False
        # One Noise static key per node, its identity signature computed once: saves an Ed25519
        # sign per handshake (seconds on a microcontroller).
        self._noise_static, self._noise_sig = noise.make_static(self.key)
        self._noise_static_pub = crypto.x25519_public(self._noise_static)  # once, not per handshake
        # Peer-record sequence: peers ignore a record whose seq is not above the last one they
        # stored, so a restarted node must not start again at 1: use the wall clock (µs).
        self._record_seq = wall_us()
        self._record_cache = None   # ((seq, listen addrs), signed peer record envelope)
        self.handle(IDENTIFY, self._handle_identify)
        self.handle(IDENTIFY_PUSH, self._handle_identify_push)
        self.handle(PING, self._handle_ping)
        self.handle(ECHO, self._handle_echo)

    # ---- plumbing ---------------------------------------------------------------------------
    def _emit(self, name, fields):
        if self.on_event is not None:
            try:
                self.on_event(name, fields)
            except Exception as e:
                print_exc(e)

    def _log(self, msg):
        if self.log_fn is not None:
            self.log_fn(msg)

    def _spawn(self, coro):
        t = asyncio.create_task(self._guard(coro))
        return t

    async def _guard(self, coro):
        try:
            await coro
        except asyncio.CancelledError:
            pass
        except (ProtocolError, OSError, EOFError, StreamReset, TimeoutError) as e:
            self._log("task ended: %s %s" % (type(e).__name__, e))
        except Exception as e:
            print_exc(e)

    def handle(self, protocol, handler):
        """handler: async def handler(stream) — runs after the protocol is agreed."""
        self.handlers[protocol] = handler

    def protocols(self):
        return sorted(self.handlers.keys())

    # ---- listen / dial -----------------------------------------------------------------------
    async def listen(self, maddr, admit=None):
        """Listen on a TCP multiaddr. admit(peer_id) -> bool, when given, is asked after the
        handshake (the earliest moment the remote's identity is proven); False closes it."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)

        async def on_conn(reader, writer):
            await self._on_inbound(reader, writer, admit)

        server, bound = await tcp.listen(maddr, on_conn)
        self.servers.append(server)
        self.listen_addrs.append(bound)
        self._start_ticker()
        return bound

    async def _on_inbound(self, reader, writer, admit=None):
        addr = None
        try:
            pn = writer.get_extra_info("peername")
            if isinstance(pn, tuple):
                addr = Multiaddr.from_string("/ip4/%s/tcp/%d" % (pn[0], pn[1])) if ":" not in pn[0] else None
        except Exception:
            pass
        await self.accept_stream(reader, writer, addr, admit)

    async def accept_stream(self, reader, writer, remote_addr=None, admit=None):
        """Run the listener side of a libp2p connection over any reader/writer pair (a TCP
        socket, a serial link, ...). Returns the Connection, or None when refused or failed."""
        cfg = self.config
        if len(self.connections) >= cfg.max_connections or self._pending_upgrades >= cfg.max_pending_upgrades:
            self._log("inbound connection refused: limit")
            self._emit("connection:refused", {"addr": str(remote_addr) if remote_addr else None,
                                              "reason": "limit"})
            await _close_writer(writer)
            return None
        conn = Connection(self, reader, writer, False, remote_addr)
        await self._upgrade(conn, None, admit)
        return None if conn.closed else conn

    async def dial_stream(self, reader, writer, remote_addr=None, expected_peer=None, admit=None):
        """The dialer side over any reader/writer pair (e.g. a device on a serial link)."""
        conn = Connection(self, reader, writer, True, remote_addr)
        await self._upgrade(conn, expected_peer, admit)
        if conn.closed:
            raise OSError("upgrade failed")
        self._start_ticker()
        return conn

    async def dial(self, maddr):
        """Dial a multiaddr (with /p2p/ID to check the remote's identity). Returns the Connection."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)
        expected = None
        pid = maddr.value_for("p2p")
        if pid is not None:
            expected = PeerId.from_string(pid)
        if len(self.connections) >= self.config.max_connections:
            raise LimitError("connection limit")
        reader, writer = await tcp.dial(maddr)
        return await self.dial_stream(reader, writer, maddr, expected)

    async def _upgrade(self, conn, expected, admit=None):
        self._pending_upgrades += 1
        try:
            await asyncio.wait_for(conn.upgrade(expected), self.config.handshake_timeout_ms / 1000)
            if admit is not None and not admit(conn.remote_peer):
                self._emit("connection:refused", {"peer": str(conn.remote_peer), "reason": "not admitted",
                                                  "addr": str(conn.remote_addr) if conn.remote_addr else None})
                raise AuthError("peer %s not admitted" % conn.remote_peer)
        except Exception as e:
            self._pending_upgrades -= 1
            self._log("upgrade failed (%s): %s %s" % ("out" if conn.outbound else "in", type(e).__name__, e))
            await _close_writer(conn.writer)
            conn.closed = True
            if conn.outbound:
                raise
            return
        self._pending_upgrades -= 1
        self.connections.append(conn)
        conn.start()
        self._emit("connection:open", {
            "peer": str(conn.remote_peer),
            "addr": str(conn.remote_addr) if conn.remote_addr else None,
            "direction": "outbound" if conn.outbound else "inbound",
            "muxer": YAMUX, "encryption": NOISE,
        })
        self._spawn(self._identify(conn))
        for fn in self.connection_listeners:
            try:
                fn(conn, True)
            except Exception as e:
                print_exc(e)

    def _connection_closed(self, conn):
        if conn in self.connections:
            self.connections.remove(conn)
            self._emit("connection:close", {"peer": str(conn.remote_peer)})
            for fn in self.connection_listeners:
                try:
                    fn(conn, False)
                except Exception as e:
                    print_exc(e)

    def connection_to(self, peer):
        for c in self.connections:
            if c.remote_peer == peer and not c.closed:
                return c
        return None

    def _start_ticker(self):
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_loop())

    async def _tick_loop(self):
        while not self._stopped:
            await asyncio.sleep(self.config.tick_ms / 1000)
            now = now_ms()
            for c in list(self.connections):
                try:
                    c.tick(now)
                except ProtocolError as e:
                    self._log("keepalive: %s" % e)
                    c.close()

    # ---- streams -----------------------------------------------------------------------------
    async def _negotiate_stream(self, st, m):
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
                st._unread(_leftover(events))
                return m.protocol

    async def _serve_stream(self, conn, st):
        try:
            proto = await asyncio.wait_for(
                self._negotiate_stream(st, mss.Listener(lambda p: p in self.handlers)),
                self.config.negotiate_timeout_ms / 1000)
        except BaseException as e:
            st.reset()
            if isinstance(e, asyncio.CancelledError):
                raise
            self._log("inbound stream negotiation failed: %s %s" % (type(e).__name__, e))
            return
        try:
            await self.handlers[proto](st)
        except ProtocolError as e:
            self._log("%s: %s" % (proto, e))
            st.reset()
        except (OSError, EOFError, StreamReset, TimeoutError) as e:
            self._log("%s: %r" % (proto, e))
            st.reset()

    async def new_stream(self, peer, protocols):
        conn = peer if isinstance(peer, Connection) else self.connection_to(peer)
        if conn is None:
            raise OSError("not connected to %s" % peer)
        return await conn.new_stream(protocols)

    # ---- identify ----------------------------------------------------------------------------
    def _signed_record(self):
        """Our signed peer record (an envelope), sealed again only when its content changes: an
        Ed25519 signature per identify costs ~5 ms on MicroPython (x86), far more on an MCU."""
        key = (self._record_seq, tuple(a.to_bytes() for a in self.listen_addrs))
        cached = self._record_cache
        if cached is None or cached[0] != key:
            cached = (key, envelope.seal_peer_record(self.key, self._record_seq, self.listen_addrs))
            self._record_cache = cached
        return cached[1]

    def _identify_message(self, conn):
        observed = _strip_p2p(conn.remote_addr) if conn.remote_addr is not None else None
        return identify.frame(identify.encode_identify(
            self.key, self.protocols(), self.listen_addrs, observed, self.config.agent,
            signed_record=self._signed_record()))

    async def _handle_identify(self, st):
        await st.write(self._identify_message(st.conn))
        await st.close()

    async def _read_identify(self, st, push):
        reader = identify.IdentifyReader(st.conn.remote_peer, push)
        while True:
            data = await st.read()
            if not data:
                return reader.receive_eof()[0][1]
            reader.receive(data)

    async def _identify(self, conn):
        try:
            st = await conn.new_stream([IDENTIFY])
            info = await asyncio.wait_for(self._read_identify(st, False),
                                          self.config.identify_timeout_ms / 1000)
            await st.close()
        except (ProtocolError, OSError, EOFError, StreamReset, TimeoutError) as e:
            self._log("identify %s failed: %s %s" % (conn.remote_peer, type(e).__name__, e))
            return
        conn.identified = info
        self._emit("identify", self._identify_fields(conn.remote_peer, info))

    def _identify_fields(self, peer, info):
        obs = info.get("observed_addr")
        return {
            "peer": str(peer),
            "protocols": sorted(info.get("protocols") or []),
            "agentVersion": info.get("agent_version"),
            "protocolVersion": info.get("protocol_version"),
            "listenAddrs": [str(a) for a in info.get("listen_addrs") or []],
            "observedAddr": str(obs) if obs else None,
            "signedPeerRecord": info.get("signed_record") is not None,
        }

    async def _handle_identify_push(self, st):
        info = await self._read_identify(st, True)
        old = st.conn.identified or {}
        for k in info:
            if info[k] is not None:
                old[k] = info[k]
        st.conn.identified = old
        self._emit("identify:push", self._identify_fields(st.conn.remote_peer, old))

    # ---- ping / echo -------------------------------------------------------------------------
    async def _handle_ping(self, st):
        conn = st.conn
        if conn.ping_streams >= ping.MAX_PING_STREAMS_PER_PEER:
            # the spec lets a listener refuse more than this many concurrent ping streams
            st.reset()
            return
        conn.ping_streams += 1
        try:
            responder = ping.PingResponder()
            while True:
                data = await st.read()
                if not data:
                    break
                responder.receive(data)
                out = responder.data_to_send()
                if out:
                    await st.write(out)
            await st.close()
        finally:
            conn.ping_streams -= 1

    async def ping(self, peer, count=1, on_rtt=None):
        """RTTs in ms (float) for count pings over one stream."""
        st = await self.new_stream(peer, [PING])
        rtts = []
        try:
            pinger = ping.PingInitiator()
            for _ in range(count):
                t0 = ticks_us()
                pinger.ping(ticks_ms())
                await st.write(pinger.data_to_send())
                got = False
                while not got:
                    data = await asyncio.wait_for(st.read(), ping.PING_TIMEOUT_MS / 1000)
                    if not data:
                        raise EOFError("ping stream closed")
                    for ev in pinger.receive(data, ticks_ms()):
                        got = ev[0] == "pong"
                rtt = ticks_diff(ticks_us(), t0) / 1000
                rtts.append(rtt)
                if on_rtt is not None:
                    on_rtt(rtt)
        finally:
            await st.close()
        return rtts

    async def _handle_echo(self, st):
        while True:
            data = await st.read()
            if not data:
                break
            await st.write(data)
        await st.close()

    # ---- shutdown ----------------------------------------------------------------------------
    async def stop(self):
        self._stopped = True
        for c in list(self.connections):
            c.close()
        for s in self.servers:
            try:
                s.close()
                await s.wait_closed()
            except Exception:
                pass
        if self._ticker is not None:
            self._ticker.cancel()
        # give the closers a moment (bounded) to flush GoAway frames
        for _ in range(50):
            if not self.connections:
                break
            await asyncio.sleep(0.02)
