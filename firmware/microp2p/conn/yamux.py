# Yamux (`/yamux/1.0.0`, libp2p specs yamux/README.md) as a sans-IO session machine.
#
#   s = Session(client=True)              # the connection's dialer is the client: odd ids
#   sid = s.open_stream(); s.send(sid, b"hi"); sock.write(s.data_to_send())
#   for ev in s.receive(sock.read()): ...  # see EVENTS below
#   s.consumed(sid, n)                     # after the app took n bytes: returns window credit
#   for ev in s.tick(now_ms): ...          # keepalive pings, ping timeouts
#
# EVENTS (tuples, name first):
#   ('stream_opened', sid)        the peer opened a stream (not yet ACKed, see below)
#   ('data', sid, bytes)          payload; a frame's payload may come in several pieces
#   ('stream_eof', sid)           the peer half-closed (FIN)
#   ('stream_closed', sid)        FIN both ways: the session forgot the stream during this
#                                 receive() (after its 'stream_eof', or when our queued FIN left);
#                                 after close_stream(), check is_open(sid) instead
#   ('stream_reset', sid)         the peer reset (RST) or refused the stream
#   ('stream_error', sid, err)    the peer broke a stream rule; we already sent RST. err is a
#                                 ProtocolError with scope SCOPE_STREAM and .stream_id
#   ('writable', sid)             the send queue of a stream that refused bytes has room again
#   ('ping_ack', opaque, rtt_ms)  answer to ping()
#   ('ping_timeout', opaque)      no answer to ping() within config.ping_timeout_ms
#   ('goaway', code)              the peer will open no more streams
#   ('closed',)                   keepalive pong missed: the session is dead (GoAway queued)
#
# Connection-level violations raise ProtocolError subclasses with SCOPE_CONNECTION after
# queueing a GoAway(protocol error); flush data_to_send() and close. Stream-level violations
# do not raise (raising would lose the rest of the buffer for every other stream): they become
# 'stream_error' events.
#
# Choices:
# * ACK: an inbound stream is ACKed on our first frame back on it (data, FIN, or a window
#   update from consumed()), as the spec recommends and js does; accept(sid) ACKs at once.
# * Flow control (h2's WindowManager idea): the receive window starts at the spec's 256 KiB
#   and is only re-credited for bytes the application reports with consumed(); a
#   WindowUpdate goes out once the credit reaches half the window. config.max_window > 256 KiB
#   is granted with the SYN/ACK. A peer that sends beyond the window breaks the connection.
# * Sending: data is cut to the peer's window and config.max_frame; what does not fit waits
#   in a per-stream queue of at most config.max_send_queue bytes. send() returns how many
#   bytes it took (like socket.send); the rest is the driver's to retry after 'writable'.
# * Devices: config.recv_buffer_cap bounds the unconsumed bytes of all streams together;
#   the driver stops reading the socket while wants_read() is False (TCP backpressure),
#   because a device cannot hold even one 256 KiB window.
# * Replies owed to the peer (PING ACKs, RSTs refusing its streams) are capped while they sit
#   in our output: a driver takes data_to_send() only when its transport has room, so a peer
#   that floods PINGs (or SYNs) and never reads fills that backlog and the session ends with
#   LimitError after MAX_CONTROL_BACKLOG replies, instead of growing the driver's queue forever.
# * Ping ids (keepalive and ping() without an opaque) are random, so a peer that does not read
#   cannot answer our keepalive blindly and pass for alive.
import struct
from microp2p import crypto
from microp2p.errors import ProtocolError, DecodeError, LimitError, UsageError
from microp2p.errors import SCOPE_STREAM, SCOPE_CONNECTION

PROTOCOL_ID = "/yamux/1.0.0"

VERSION = 0
TYPE_DATA = 0
TYPE_WINDOW_UPDATE = 1
TYPE_PING = 2
TYPE_GO_AWAY = 3
FLAG_SYN = 1
FLAG_ACK = 2
FLAG_FIN = 4
FLAG_RST = 8
GOAWAY_NORMAL = 0
GOAWAY_PROTOCOL_ERROR = 1
GOAWAY_INTERNAL_ERROR = 2

HEADER_LEN = 12
_HEADER_FMT = ">BBHII"
U32_MAX = 0xFFFFFFFF

INITIAL_WINDOW = 256 * 1024        # fixed by the spec; both sides assume it at stream open
MAX_WINDOW = 16 * 1024 * 1024      # largest receive window a Config may ask for (js's ceiling)
DEFAULT_MAX_FRAME = 64 * 1024      # largest Data payload we write (js and go use 64 KiB)
MAX_STREAMS = 256                  # open inbound streams; more SYNs are answered with RST
MAX_ACK_BACKLOG = 256              # unacknowledged streams each way (spec's SHOULD)
MAX_SEND_QUEUE = 256 * 1024        # per-stream bytes waiting for the peer's window
MAX_PINGS = 8                      # our unanswered ping() calls
MAX_CONTROL_BACKLOG = 64           # replies to the peer (PING ACK, refusing RST) not yet taken
KEEPALIVE_MS = 30000               # js pings every 30 s too
PING_TIMEOUT_MS = 10000
WINDOW_UPDATE_DIVISOR = 2          # re-credit once consumed bytes reach window / 2
MAX_SYN_GAPS = 64                  # ids the peer skipped that may still open late (racing writers)

try:  # CPython's join takes memoryviews, which saves a copy per data frame; MicroPython's not
    b"".join([memoryview(b"")])
    _view = memoryview
except TypeError:
    _view = None


class GoneAway(ProtocolError):
    """open_stream() on a session the peer ended (GoAway, keepalive timeout, violation): no new
    stream can go out. The peer may send GoAway at any moment, even right after the handshake,
    so this is a remote's doing (a ProtocolError), not our misuse."""
    scope = SCOPE_CONNECTION


class Config:
    def __init__(self, max_window=INITIAL_WINDOW, max_frame=DEFAULT_MAX_FRAME,
                 max_streams=MAX_STREAMS, max_ack_backlog=MAX_ACK_BACKLOG,
                 max_send_queue=MAX_SEND_QUEUE, keepalive_ms=KEEPALIVE_MS,
                 ping_timeout_ms=PING_TIMEOUT_MS, recv_buffer_cap=0,
                 max_control_backlog=MAX_CONTROL_BACKLOG):
        if not INITIAL_WINDOW <= max_window <= MAX_WINDOW:
            raise UsageError("max_window must be in [256 KiB, 16 MiB]")
        if not 1 <= max_frame <= U32_MAX:
            raise UsageError("bad max_frame")
        if max_streams < 0 or max_ack_backlog < 0 or max_send_queue < 0 or max_control_backlog < 1:
            raise UsageError("caps must not be negative")
        self.max_window = max_window
        self.max_frame = max_frame
        self.max_streams = max_streams
        self.max_ack_backlog = max_ack_backlog
        self.max_send_queue = max_send_queue
        self.keepalive_ms = keepalive_ms        # 0 disables keepalive pings
        self.ping_timeout_ms = ping_timeout_ms
        self.recv_buffer_cap = recv_buffer_cap  # 0: no cap (wants_read() always True)
        self.max_control_backlog = max_control_backlog


def device_config():
    """Small-RAM settings: small frames and queues, few streams, read-side cap of 16 KiB."""
    return Config(max_frame=4096, max_streams=16, max_ack_backlog=16, max_send_queue=8192,
                  recv_buffer_cap=16384, max_control_backlog=16)


def encode_header(typ, flags, sid, length):
    return struct.pack(_HEADER_FMT, VERSION, typ, flags, sid, length)


class _Stream:
    __slots__ = ("sid", "inbound", "send_window", "recv_window", "recv_max", "credit",
                 "unconsumed", "pending", "pend_off", "queued", "need_ack", "acked",
                 "fin_sent", "fin_pending", "fin_recv", "blocked")

    def __init__(self, sid, inbound, recv_max):
        self.sid = sid
        self.inbound = inbound
        self.send_window = INITIAL_WINDOW    # what the peer still lets us send
        self.recv_window = INITIAL_WINDOW    # what we still let the peer send
        self.recv_max = recv_max
        self.credit = recv_max - INITIAL_WINDOW  # window we owe the peer but have not granted
        self.unconsumed = 0                  # delivered to the app, not yet consumed()
        self.pending = []                    # bytes objects beyond the send window, in order
        self.pend_off = 0                    # bytes of pending[0] already written
        self.queued = 0                      # bytes in pending
        self.need_ack = inbound              # our first frame back carries ACK
        self.acked = inbound                 # (outbound) the peer ACKed our SYN
        self.fin_sent = False
        self.fin_pending = False             # close_stream() while data still queued
        self.fin_recv = False
        self.blocked = False                 # send() refused bytes; report 'writable'


class Session:
    def __init__(self, client, config=None):
        self.client = bool(client)
        self.config = config if config is not None else Config()
        self._next_id = 1 if client else 2
        self._peer_parity = 0 if client else 1  # stream id & 1 for streams the peer opens
        self._peer_last = 0                     # highest id the peer opened (ids only grow)
        self._peer_gaps = set()                 # ids below it not opened yet (<= MAX_SYN_GAPS)
        self._streams = {}
        self._out = []
        self._out_n = 0           # bytes in _out
        self._replies = 0         # PING ACKs / refusing RSTs in _out (MAX_CONTROL_BACKLOG)
        self._inbound = 0
        self._inbound_unacked = 0
        self._outbound_unacked = 0
        self._unconsumed = 0
        # Frame parser state: a header cut by a receive() boundary, then the payload left.
        self._part = b""
        self._pay_left = 0
        self._pay_stream = None   # None while discarding (stream gone or refused)
        self._pay_flags = 0
        # Time and pings.
        self._now = 0
        self._pings = {}          # opaque -> sent at (user pings)
        self._ka_opaque = None    # opaque of the keepalive ping in flight
        self._ka_sent = 0
        self._ka_last = None
        self.rtt_ms = None        # last measured round trip (keepalive or ping())
        self.local_goaway = None
        self.remote_goaway = None
        self.closed = False
        self.close_reason = None

    # ---- output -------------------------------------------------------------------------

    def data_to_send(self, max_bytes=0):
        """Bytes to write, oldest first: all of them, or max_bytes > 0 at most (a frame may be
        cut anywhere between two calls: the byte stream is the same). A driver then never needs
        one block of everything queued (hundreds of KiB over many streams with full windows), and
        can fill its transport's frames exactly."""
        out = self._out
        if not out:
            return b""
        self._replies = 0
        if max_bytes <= 0 or self._out_n <= max_bytes:
            self._out = []
            self._out_n = 0
        else:
            k = n = 0
            while n + len(out[k]) <= max_bytes:
                n += len(out[k])
                k += 1
            rest = out[k:]
            cut = max_bytes - n
            if cut:
                piece = rest[0]
                if _view is not None and type(piece) is not memoryview:
                    piece = _view(piece)   # CPython: cut without copying the tail
                rest[0] = piece[cut:]
                out = out[:k]
                out.append(piece[:cut])
            else:
                out = out[:k]
            self._out = rest
            self._out_n -= max_bytes
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _frame(self, typ, flags, sid, length):
        self._out.append(struct.pack(_HEADER_FMT, VERSION, typ, flags, sid, length))
        self._out_n += HEADER_LEN

    def _reply(self, typ, flags, sid, length):
        # A frame the peer's input asks of us. The driver leaves our output alone while its
        # transport is backed up, so these pile up only when the peer does not read.
        if self._replies >= self.config.max_control_backlog:
            raise self._fatal(LimitError, "peer floods control frames and does not read "
                              "(MAX_CONTROL_BACKLOG=%d)" % self.config.max_control_backlog)
        self._replies += 1
        self._frame(typ, flags, sid, length)

    def output_pending(self):
        """Bytes waiting in data_to_send() (the driver counts them against its output cap)."""
        return self._out_n

    # ---- input --------------------------------------------------------------------------

    def receive(self, data):
        if self.closed:
            return []
        events = []
        n = len(data)
        pos = 0
        while True:
            left = self._pay_left
            if left:
                k = n - pos
                if k <= 0:
                    break
                if k > left:
                    k = left
                st = self._pay_stream
                if st is not None:
                    if k == n and type(data) is bytes:
                        chunk = data
                    else:
                        chunk = bytes(data[pos:pos + k])
                    st.unconsumed += k
                    self._unconsumed += k
                    events.append(("data", st.sid, chunk))
                pos += k
                left -= k
                self._pay_left = left
                if left:
                    break
                self._end_data(events)
                continue
            if self._part:
                need = HEADER_LEN - len(self._part)
                if n - pos < need:
                    if pos < n:
                        self._part += bytes(data[pos:n])
                    break
                buf = self._part + bytes(data[pos:pos + need])
                p = 0
                pos += need
                self._part = b""
            else:
                if n - pos < HEADER_LEN:
                    if pos < n:
                        self._part = bytes(data[pos:n])
                    break
                buf = data
                p = pos
                pos += HEADER_LEN
            self._on_header(buf, p, events)
        return events

    def _fatal(self, cls, msg):
        # Queue a GoAway so the driver can flush it before closing the connection.
        if not self.closed:
            self.closed = True
            self.close_reason = msg
            if self.local_goaway is None:
                self.local_goaway = GOAWAY_PROTOCOL_ERROR
                self._frame(TYPE_GO_AWAY, 0, 0, GOAWAY_PROTOCOL_ERROR)
        return cls(msg, SCOPE_CONNECTION)

    def _on_header(self, b, p, events):
        # Offsets into the caller's buffer: no per-frame tuple or slice.
        if b[p] != VERSION:
            raise self._fatal(DecodeError, "unknown yamux version %d" % b[p])
        typ = b[p + 1]
        flags = (b[p + 2] << 8) | b[p + 3]
        sid = (b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]
        length = (b[p + 8] << 24) | (b[p + 9] << 16) | (b[p + 10] << 8) | b[p + 11]
        if typ <= TYPE_WINDOW_UPDATE:
            self._on_stream_frame(typ, flags, sid, length, events)
        elif typ == TYPE_PING:
            if sid:
                raise self._fatal(ProtocolError, "ping on a stream id")
            if flags & FLAG_SYN:
                self._reply(TYPE_PING, FLAG_ACK, 0, length)
            elif flags & FLAG_ACK:
                self._on_pong(length, events)
        elif typ == TYPE_GO_AWAY:
            if sid:
                raise self._fatal(ProtocolError, "go away on a stream id")
            self.remote_goaway = length
            events.append(("goaway", length))
        else:
            raise self._fatal(DecodeError, "unknown yamux frame type %d" % typ)

    def _on_stream_frame(self, typ, flags, sid, length, events):
        if not sid:
            raise self._fatal(ProtocolError, "stream frame on the session id")
        st = self._streams.get(sid)
        if flags & FLAG_SYN:
            if (sid & 1) != self._peer_parity:
                raise self._fatal(ProtocolError, "SYN with our stream id parity")
            # go-libp2p's yamux allocates ids in order but its writers race, so SYNs may arrive
            # out of order (101 after 103): an id below the highest is fine while it is one the
            # peer skipped (a bounded set of gaps); an id it opened before is never opened again
            # (the old stream's late reads would credit the new one).
            if st is not None:
                raise self._fatal(ProtocolError, "SYN for a stream id already open")
            last = self._peer_last
            if sid > last:
                gaps = self._peer_gaps
                k = sid - 2
                low = last + 2 if last else (1 if self._peer_parity else 2)
                while k >= low and k > sid - 2 * (MAX_SYN_GAPS + 1):
                    gaps.add(k)
                    k -= 2
                while len(gaps) > MAX_SYN_GAPS:
                    gaps.discard(min(gaps))
                self._peer_last = sid
            elif sid in self._peer_gaps:
                self._peer_gaps.discard(sid)
            else:
                raise self._fatal(ProtocolError, "SYN for a stream id used before")
            st = self._accept_inbound(sid, events)
        elif st is None:
            if self._never_opened(sid):
                raise self._fatal(ProtocolError, "frame for a stream never opened")
            # A stream we already closed or reset: frames in flight are normal; drop them.
        elif flags & FLAG_ACK and not st.acked:
            st.acked = True
            self._outbound_unacked -= 1
        if typ == TYPE_DATA:
            if st is not None:
                if st.fin_recv and length:
                    self._stream_error(st, "data after FIN", events)
                    st = None
                elif length > st.recv_window:
                    raise self._fatal(LimitError, "data beyond the stream window")
                else:
                    st.recv_window -= length
            self._pay_stream = st
            self._pay_flags = flags
            self._pay_left = length
            if not length:
                self._end_data(events)
            return
        if st is None:
            return
        if length:
            window = st.send_window + length
            if window > U32_MAX:
                raise self._fatal(ProtocolError, "send window overflow")
            st.send_window = window
            if st.queued:
                self._flush(st, events)
        self._end_flags(st, flags, events)

    def _never_opened(self, sid):
        if (sid & 1) == self._peer_parity:
            return sid > self._peer_last
        return sid >= self._next_id

    def _accept_inbound(self, sid, events):
        cfg = self.config
        if (self.local_goaway is not None or self._inbound >= cfg.max_streams
                or self._inbound_unacked >= cfg.max_ack_backlog):
            self._reply(TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0)
            return None
        st = _Stream(sid, True, cfg.max_window)
        self._streams[sid] = st
        self._inbound += 1
        self._inbound_unacked += 1
        events.append(("stream_opened", sid))
        return st

    def _end_data(self, events):
        st = self._pay_stream
        self._pay_stream = None
        if st is not None:
            self._end_flags(st, self._pay_flags, events)

    def _end_flags(self, st, flags, events):
        if flags & FLAG_RST:
            self._remove(st)
            events.append(("stream_reset", st.sid))
        elif flags & FLAG_FIN and not st.fin_recv:
            st.fin_recv = True
            events.append(("stream_eof", st.sid))
            self._maybe_remove(st, events)

    def _stream_error(self, st, msg, events):
        err = ProtocolError(msg, SCOPE_STREAM)
        err.stream_id = st.sid
        self._reply(TYPE_WINDOW_UPDATE, FLAG_RST, st.sid, 0)
        self._remove(st)
        events.append(("stream_error", st.sid, err))

    def _on_pong(self, opaque, events):
        if opaque == self._ka_opaque:
            self._ka_opaque = None
            self.rtt_ms = self._now - self._ka_sent
        sent = self._pings.pop(opaque, None)
        if sent is not None:
            self.rtt_ms = self._now - sent
            events.append(("ping_ack", opaque, self.rtt_ms))
        # An answer we never asked for is ignored (js would tear down; harmless here).

    # ---- stream table -------------------------------------------------------------------

    def _remove(self, st):
        if self._streams.pop(st.sid, None) is None:
            return
        self._unconsumed -= st.unconsumed
        if st.need_ack:
            self._inbound_unacked -= 1
        if not st.acked:
            self._outbound_unacked -= 1
        if st.inbound:
            self._inbound -= 1
        if self._pay_stream is st:
            self._pay_stream = None  # the rest of a half-received frame is discarded

    def _maybe_remove(self, st, events=None):
        if st.fin_sent and st.fin_recv:
            self._remove(st)
            if events is not None:
                events.append(("stream_closed", st.sid))

    def _get(self, sid):
        st = self._streams.get(sid)
        if st is None:
            raise UsageError("no open stream %d" % sid)
        return st

    # ---- local actions ------------------------------------------------------------------

    def open_stream(self):
        if self.closed or self.remote_goaway is not None:
            raise GoneAway("session ended by the peer (%s)" % (
                self.close_reason or "GoAway %s" % self.remote_goaway))
        if self.local_goaway is not None:
            raise UsageError("session is going away")
        if self._outbound_unacked >= self.config.max_ack_backlog:
            # the peer does not ACK our streams: its doing, a named limit
            raise LimitError("too many unacknowledged streams (max_ack_backlog=%d)"
                             % self.config.max_ack_backlog, SCOPE_STREAM)
        sid = self._next_id
        if sid > U32_MAX:
            raise UsageError("stream ids exhausted")
        self._next_id = sid + 2
        st = _Stream(sid, False, self.config.max_window)
        self._streams[sid] = st
        self._outbound_unacked += 1
        self._grant(st, FLAG_SYN)
        return sid

    def can_open(self):
        return (not self.closed and self.local_goaway is None and self.remote_goaway is None
                and self._outbound_unacked < self.config.max_ack_backlog)

    def accept(self, sid):
        """ACK an inbound stream now rather than with our first frame on it."""
        st = self._get(sid)
        if st.need_ack:
            self._grant(st, 0)

    def _grant(self, st, flags):
        # One WindowUpdate carrying SYN/ACK/FIN as asked plus any window credit owed.
        if st.need_ack:
            flags |= FLAG_ACK
            st.need_ack = False
            self._inbound_unacked -= 1
        delta = 0 if st.fin_recv else st.credit
        st.credit -= delta
        st.recv_window += delta
        self._frame(TYPE_WINDOW_UPDATE, flags, st.sid, delta)

    def send(self, sid, data):
        """Queue `data` on a stream. Returns how many bytes were taken (maybe fewer than
        len(data) when the stream's queue is full; retry after a 'writable' event)."""
        if self.closed:
            raise UsageError("session closed")
        st = self._get(sid)
        if st.fin_sent or st.fin_pending:
            raise UsageError("stream %d is closed for writing" % sid)
        n = len(data)
        if not n:
            return 0
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse its buffer; we keep references
        if st.need_ack:
            self._grant(st, 0)
        sent = 0
        if not st.queued and st.send_window:
            sent = self._write_data(st, data, 0, n)
            if sent == n:
                return n
        rest = n - sent
        room = self.config.max_send_queue - st.queued
        take = rest if rest <= room else room
        if take > 0:
            st.pending.append(data if take == n else data[sent:sent + take])
            st.queued += take
        if take < rest:
            st.blocked = True
        return sent + take

    def _write_data(self, st, data, start, end):
        window = st.send_window
        max_frame = self.config.max_frame
        out = self._out
        pos = start
        view = _view(data) if _view is not None and end - start > max_frame else None
        while pos < end and window > 0:
            k = end - pos
            if k > window:
                k = window
            if k > max_frame:
                k = max_frame
            out.append(struct.pack(_HEADER_FMT, VERSION, TYPE_DATA, 0, st.sid, k))
            if k == len(data):
                out.append(data)
            elif view is not None:
                out.append(view[pos:pos + k])
            else:
                out.append(data[pos:pos + k])
            pos += k
            window -= k
            self._out_n += HEADER_LEN + k
        st.send_window = window
        return pos - start

    def _flush(self, st, events):
        pending = st.pending
        while pending and st.send_window > 0:
            chunk = pending[0]
            off = st.pend_off
            k = self._write_data(st, chunk, off, len(chunk))
            st.queued -= k
            off += k
            if off >= len(chunk):
                pending.pop(0)
                st.pend_off = 0
            else:
                st.pend_off = off
        if not st.queued and st.fin_pending:
            st.fin_pending = False
            self._send_fin(st, events)
            if st.sid not in self._streams:
                return
        if st.blocked and st.queued <= self.config.max_send_queue // 2:
            st.blocked = False
            events.append(("writable", st.sid))

    def _send_fin(self, st, events=None):
        st.fin_sent = True
        self._grant(st, FLAG_FIN)
        self._maybe_remove(st, events)

    def close_stream(self, sid):
        """Half-close (FIN) after whatever is still queued. No-op for a stream already gone."""
        st = self._streams.get(sid)
        if st is None or st.fin_sent or st.fin_pending or self.closed:
            return
        if st.queued:
            st.fin_pending = True
        else:
            self._send_fin(st)

    def reset_stream(self, sid):
        st = self._streams.get(sid)
        if st is None or self.closed:
            return
        self._frame(TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0)
        self._remove(st)

    def consumed(self, sid, n):
        """The application took n bytes of a stream's data: credit them back to the peer."""
        st = self._streams.get(sid)
        if st is None:
            return  # the stream ended meanwhile; its bytes were already written off
        if n < 0 or n > st.unconsumed:
            raise UsageError("consumed more than was delivered")
        st.unconsumed -= n
        self._unconsumed -= n
        if st.fin_recv or self.closed:
            return
        st.credit += n
        if st.credit >= st.recv_max // WINDOW_UPDATE_DIVISOR:
            self._grant(st, 0)

    def ping(self, opaque=None):
        if self.closed:
            raise UsageError("session closed")
        if len(self._pings) >= MAX_PINGS:
            raise UsageError("too many pings in flight")
        if opaque is None:
            opaque = self._alloc_opaque()
        elif not 0 <= opaque <= U32_MAX:
            raise UsageError("ping opaque must fit 32 bits")
        self._pings[opaque] = self._now
        self._frame(TYPE_PING, FLAG_SYN, 0, opaque)
        return opaque

    def _alloc_opaque(self):
        # 30 random bits: a small int on every port, and not guessable by a peer that does not
        # read what we send (sequential ids let it answer keepalives blind).
        while True:
            b = crypto.random_bytes(4)
            opaque = ((b[0] & 0x3F) << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
            if opaque and opaque not in self._pings and opaque != self._ka_opaque:
                return opaque

    def go_away(self, code=GOAWAY_NORMAL):
        """Tell the peer we accept no new streams (existing ones carry on)."""
        if self.local_goaway is None and not self.closed:
            self.local_goaway = code
            self._frame(TYPE_GO_AWAY, 0, 0, code)

    def tick(self, now_ms):
        """Pass time in (monotonic ms, not wrapping). Returns events."""
        self._now = now_ms
        events = []
        if self.closed:
            return events
        cfg = self.config
        if self._pings:
            for opaque in list(self._pings):
                if now_ms - self._pings[opaque] >= cfg.ping_timeout_ms:
                    del self._pings[opaque]
                    events.append(("ping_timeout", opaque))
        if cfg.keepalive_ms:
            if self._ka_opaque is not None:
                if now_ms - self._ka_sent >= cfg.ping_timeout_ms:
                    self.closed = True
                    self.close_reason = "keepalive timeout"
                    if self.local_goaway is None:
                        self.local_goaway = GOAWAY_INTERNAL_ERROR
                        self._frame(TYPE_GO_AWAY, 0, 0, GOAWAY_INTERNAL_ERROR)
                    events.append(("closed",))
            elif self._ka_last is None:
                self._ka_last = now_ms
            elif now_ms - self._ka_last >= cfg.keepalive_ms:
                self._ka_opaque = self._alloc_opaque()
                self._ka_sent = self._ka_last = now_ms
                self._frame(TYPE_PING, FLAG_SYN, 0, self._ka_opaque)
        return events

    # ---- queries for the driver ---------------------------------------------------------

    def unconsumed_total(self):
        return self._unconsumed

    def wants_read(self):
        cap = self.config.recv_buffer_cap
        return not cap or self._unconsumed < cap

    def is_open(self, sid):
        return sid in self._streams

    def send_window(self, sid):
        return self._get(sid).send_window

    def queued(self, sid):
        return self._get(sid).queued

    def writable(self, sid):
        """How many bytes send() would take right now."""
        st = self._get(sid)
        if st.fin_sent or st.fin_pending:
            return 0
        room = self.config.max_send_queue - st.queued
        if room < 0:
            room = 0
        return room + (0 if st.queued else st.send_window)

    def stream_count(self):
        return len(self._streams)
