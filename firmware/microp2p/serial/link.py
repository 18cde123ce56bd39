# Reliable serial link: turns a UART that drops, flips and duplicates bytes into a lossless,
# ordered byte stream for the layers above (mss -> Noise -> yamux, exactly as over TCP).
# Sans-IO: bytes in via receive(), bytes out via data_to_send(), time in via tick(now_ms).
#
# Frames and their bytes are defined in microp2p.serial.frame. The protocol on top:
#
# Sessions. Each end picks a random 32-bit session id (sid) when it starts, and a new one after
# its link went down. An end that does not know its peer (SYNC) sends RESET(src=own sid) every
# reset interval (backing off to reset_interval_max_ms). Whoever receives a RESET from a sid it
# does not know drops all session state (telling the upper layer 'link_reset' if it was up),
# adopts that sid as its peer (HALF) and answers RESET_ACK(src=own, dst=peer) until the peer
# shows it knows us: a RESET_ACK addressed to our sid, or any DATA/ACK with dst=our sid, puts
# an end UP ('link_up'). A RESET repeating the current peer sid is a retransmission and is
# answered again without touching the session. DATA/ACK frames whose (src, dst) are not exactly
# (peer sid, own sid) belong to an older session and are dropped, so nothing from before a
# reboot or unplug can leak into a new session. RESET and RESET_ACK carry 4 parameter bytes:
# version(1) rx_window(1) rx_max_payload(2, big-endian); the sender then uses
# min(own window, peer rx_window) and min(own mtu, peer rx_max_payload).
#
# Data. Selective repeat over 8-bit sequence numbers. Every DATA frame is kept until the peer's
# cumulative ack passes it; a frame not acked within the RTO (srtt + 4 rttvar, Karn's rule,
# doubling on each timeout) is sent again; a frame left missing while later ones were
# selectively acked is sent again at once (once per transmission). The receiver holds up to
# `window` frames out of order and delivers in order; duplicates are dropped and re-acked.
#
# Liveness. With nothing else to send an UP end sends an ACK every keepalive_ms; hearing nothing
# valid from the peer for dead_ms gives 'link_down' and a new session attempt. A cumulative ack
# for a frame never sent (a peer bug; the CRC rules out line noise) is the one unrecoverable
# protocol violation: counted, 'link_reset', new session.
#
# Bad bytes never raise: they are counted in `stats`.
import os

from microp2p.serial import frame as sf
from microp2p.errors import UsageError

WINDOW_MAX = 8           # frames in flight / held out of order: the sack field has 8 bits
SEND_BUFFER_MAX = 16384  # hard cap on the `send_buffer` option (stream bytes not yet framed)
SEQ_MOD = 256

ST_SYNC = 0  # peer unknown: sending RESET
ST_HALF = 1  # peer known, it has not yet shown it knows us: sending RESET_ACK
ST_UP = 2

DEFAULTS = {
    "mtu": 256,                    # payload bytes per DATA frame we send
    "rx_max_payload": 512,         # largest payload we accept (advertised), <= FRAME_PAYLOAD_MAX
    # frames in flight and held out of order (<= WINDOW_MAX). 8 x 256 B keeps 2 KiB in flight;
    # at a 1e-3 byte error rate 8 gave 7.4 KB/s at 115200 baud where 4 gave 5.1 KB/s.
    "window": 8,
    "send_buffer": 4096,           # stream bytes send() queues before pushing back
    "keepalive_ms": 1000,
    "dead_ms": 4000,
    "reset_interval_ms": 200,
    "reset_interval_max_ms": 1000,
    "rto_ms": 1000,                # before the first RTT sample
    "rto_min_ms": 40,
    "rto_max_ms": 4000,
    "baud": 0,                     # if known: floors the RTO at a few frame times
}


class _Slot:
    __slots__ = ("seq", "payload", "sent_at", "tx_count", "order", "sacked", "need_tx")

    def __init__(self, seq, payload, now):
        self.seq = seq
        self.payload = payload
        self.sent_at = now
        self.tx_count = 0
        self.order = 0     # transmission number of the latest copy sent (for loss detection)
        self.sacked = False
        self.need_tx = True


class Link:
    def __init__(self, now_ms, config=None):
        c = {}
        for k in DEFAULTS:
            c[k] = DEFAULTS[k]
        if config:
            for k in config:
                if k != "random" and k not in DEFAULTS:
                    raise UsageError("unknown serial link option " + str(k))
                c[k] = config[k]
        self.mtu = max(1, min(c["mtu"], sf.FRAME_PAYLOAD_MAX))
        self.rx_max_payload = max(1, min(c["rx_max_payload"], sf.FRAME_PAYLOAD_MAX))
        self.window = max(1, min(c["window"], WINDOW_MAX))
        self.send_cap = max(1, min(c["send_buffer"], SEND_BUFFER_MAX))
        # The send buffer is one ring allocated here, while the heap is fresh, and never grown or
        # copied: on a device a long-running, fragmented heap may no longer hold one free block
        # of a few KiB, and a buffer that reallocates as it fills then fails exactly when the
        # link is busiest (measured: MemoryError allocating 3.8 KB with 180 KB free).
        self._sring = bytearray(self.send_cap)
        self._smv = memoryview(self._sring)
        self.keepalive_ms = c["keepalive_ms"]
        self.dead_ms = c["dead_ms"]
        self.reset_min_ms = c["reset_interval_ms"]
        self.reset_max_ms = c["reset_interval_max_ms"]
        self.rto_init = c["rto_ms"]
        self.rto_min = c["rto_min_ms"]
        self.rto_max = c["rto_max_ms"]
        baud = c["baud"]
        if baud:
            # a frame takes ~10 bits per byte on the wire; an ack can wait behind a full window
            frame_ms = (sf.encoded_max(self.mtu) + 1) * 10000 // baud + 1
            self.rto_min = max(self.rto_min, 2 * frame_ms)
            self.rto_init = max(self.rto_init, (self.window + 2) * frame_ms)
        self._random = c.get("random") or os.urandom
        self.stats = {
            "frames_tx": 0, "frames_rx": 0, "bytes_tx": 0, "bytes_rx": 0, "retransmissions": 0,
            "fast_retransmissions": 0, "timeouts": 0, "duplicates": 0, "stale": 0,
            "out_of_window": 0, "protocol_errors": 0, "sessions": 0,
        }
        self.decoder = sf.FrameDecoder(self.rx_max_payload, self.stats)
        self.now = now_ms
        self.sid = sf.NO_SID
        self._events = []
        self._rx_data = None
        self._tx_order = 0
        self._go_sync()

    # ---- public API -------------------------------------------------------------------

    def is_up(self):
        return self.state == ST_UP

    def receive(self, data):
        """Bytes from the line. Returns events: ('data', bytes), ('link_up',), ('link_reset',),
        ('link_down',). Uses the time of the last tick()."""
        ev = self._events = []
        self._rx_data = None
        for f in self.decoder.feed(data):
            self._on_frame(f)
        self._flush_data()
        self._events = []
        return ev

    def send(self, data):
        """Queues stream bytes; returns how many were accepted (0 while the link is not up or
        the send buffer is full: retry after data_to_send()/receive() made room)."""
        if self.state != ST_UP:
            return 0
        cap = self.send_cap
        n = len(data)
        if n > cap - self._slen:
            n = cap - self._slen
        if n > 0:
            ring = self._smv
            tail = self._shead + self._slen
            if tail >= cap:
                tail -= cap
            first = cap - tail
            if first > n:
                first = n
            src = data if isinstance(data, memoryview) else memoryview(data)
            ring[tail:tail + first] = src[:first]
            if n > first:
                ring[0:n - first] = src[first:n]
            self._slen += n
        return n

    def send_buffer_room(self):
        if self.state != ST_UP:
            return 0
        return self.send_cap - self._slen

    def send_pending(self):
        """Stream bytes accepted by send() and not yet acknowledged by the peer."""
        n = self._slen
        for s in self._inflight:
            n += len(s.payload)
        return n

    def tick(self, now_ms):
        self.now = now = now_ms
        ev = self._events = []
        st = self.state
        if st == ST_SYNC:
            if now >= self._reset_at:
                self._want_reset = True
        elif now - self._last_rx >= self.dead_ms:
            was_up = st == ST_UP
            self._go_sync()
            if was_up:
                ev.append(("link_down",))
        elif st == ST_HALF:
            if now >= self._reset_at:
                self._want_reset_ack = True
        else:
            rto = self._rto_cur
            fired = False
            for s in self._inflight:
                if not s.sacked and not s.need_tx and now - s.sent_at >= rto:
                    s.need_tx = True
                    fired = True
            if fired:
                self.stats["timeouts"] += 1
                self._rto_cur = min(2 * rto, self.rto_max)
            if now - self._last_ack_tx >= self.keepalive_ms:
                self._ack_pending = True
        self._events = []
        return ev

    def next_timeout_ms(self):
        """Absolute time at which tick() has something to do."""
        st = self.state
        if st == ST_SYNC:
            return self._reset_at
        t = self._last_rx + self.dead_ms
        if st == ST_HALF:
            return min(t, self._reset_at)
        t = min(t, self._last_ack_tx + self.keepalive_ms)
        rto = self._rto_cur
        for s in self._inflight:
            if not s.sacked and not s.need_tx and s.sent_at + rto < t:
                t = s.sent_at + rto
        return t

    def data_to_send(self, max_bytes=0):
        """Frames to write to the line now (b'' when nothing is due). max_bytes > 0 stops after
        the frame that reaches it: a driver that pulls about one frame at a time as the UART
        frees up keeps the timers honest and the acks in every frame fresh."""
        out = bytearray(b"\x00")  # ends whatever noise the receiver may be holding
        now = self.now
        st = self.stats
        if self.state == ST_SYNC:
            if self._want_reset:
                self._want_reset = False
                sf.encode_frame(out, sf.K_RESET, self.sid, self.peer, 0, 0, 0, self._params())
                self._reset_tx_at = now
                self._reset_at = now + self._reset_iv
                self._reset_iv = min(2 * self._reset_iv, self.reset_max_ms)
        else:
            if self._want_reset_ack:
                self._want_reset_ack = False
                sf.encode_frame(out, sf.K_RESET_ACK, self.sid, self.peer, 0, 0, 0, self._params())
                if self.state == ST_HALF:
                    self._reset_at = now + self._reset_iv
                    self._reset_iv = min(2 * self._reset_iv, self.reset_max_ms)
            if self.state == ST_UP:
                sent = self._emit_data(out, now, max_bytes or 0x3FFFFFFF)
                if self._ack_pending and (not sent or now - self._last_ack_tx >= self.keepalive_ms):
                    # A short ACK at least every keepalive_ms even while data flows: on a very
                    # noisy line long DATA frames may all die while short frames still get
                    # through, and the peer must not declare the link dead meanwhile.
                    sf.encode_frame(out, sf.K_ACK, self.sid, self.peer, 0, self._rx_next,
                                    self._sack_bits())
                    st["frames_tx"] += 1
                    self._last_ack_tx = now
                self._ack_pending = False
        if len(out) == 1:
            return b""
        return bytes(out)

    def restart(self):
        """Local reset: drop the session (queued data is lost) and start a new one. The peer
        sees 'link_reset'. No event is produced here."""
        self._go_sync()

    def buffer_usage(self):
        """Bytes/entries held, for tests and monitoring: all bounded by named caps."""
        return {
            "rx_frame": self.decoder.buffered(),
            "send": self._slen,
            "inflight": len(self._inflight),
            "inflight_bytes": sum(len(s.payload) for s in self._inflight),
            "ooo": len(self._ooo),
        }

    # ---- internals ----------------------------------------------------------------------

    def _params(self):
        return bytes((sf.VERSION, self.window)) + self.rx_max_payload.to_bytes(2, "big")

    def _new_sid(self):
        while True:
            sid = bytes(self._random(4))
            if sid != sf.NO_SID and sid != self.sid:
                return sid

    def _clear_session(self):
        self._shead = 0      # ring index of the oldest stream byte not yet framed
        self._slen = 0       # stream bytes in the ring not yet framed
        self._inflight = []
        self._base = 0       # oldest unacked seq (the peer's cumulative ack)
        self._next_seq = 0
        self._rx_next = 0    # next seq we deliver
        self._ooo = {}       # seq -> payload held out of order
        self._ack_pending = False
        self._want_reset = False
        self._want_reset_ack = False
        self._srtt = -1
        self._rttvar = 0
        self._rto = self._rto_cur = self.rto_init
        self._last_rx = self._last_ack_tx = self.now
        self._reset_iv = self.reset_min_ms
        self._reset_at = self.now
        self._reset_tx_at = self.now
        self._peer_window = 1
        self._peer_mtu = 1

    def _go_sync(self):
        self._clear_session()
        self.sid = self._new_sid()
        self.peer = sf.NO_SID
        self.state = ST_SYNC
        self._want_reset = True

    def _emit(self, event):
        self._flush_data()
        self._events.append(event)

    def _flush_data(self):
        d = self._rx_data
        if d is not None:
            self._rx_data = None
            self._events.append(("data", bytes(d)))

    def _peer_params(self, payload):
        if len(payload) < 4 or payload[0] != sf.VERSION or payload[1] == 0:
            return False
        self._peer_window = min(payload[1], self.window)
        self._peer_mtu = min((payload[2] << 8) | payload[3], self.mtu)
        return self._peer_mtu > 0

    def _rtt_sample(self, r):
        if self._srtt < 0:
            self._srtt = r
            self._rttvar = r // 2
        else:
            d = self._srtt - r
            self._rttvar = (3 * self._rttvar + (d if d >= 0 else -d)) // 4
            self._srtt = (7 * self._srtt + r) // 8
        rto = self._srtt + max(4 * self._rttvar, 10)
        self._rto = max(self.rto_min, min(rto, self.rto_max))

    def _on_frame(self, f):
        kind, src, dst, seq, ack, sack, payload = f
        st = self.stats
        st["frames_rx"] += 1
        if kind == sf.K_RESET:
            if self.state != ST_SYNC and src == self.peer:
                self._want_reset_ack = True  # our RESET_ACK was lost: say it again
                return
            was_up = self.state == ST_UP
            if was_up:
                self._emit(("link_reset",))
            self._clear_session()
            if not self._peer_params(payload):
                self._go_sync()
                st["bad_header"] += 1
                return
            self.peer = src
            self.state = ST_HALF
            self._want_reset_ack = True
            st["sessions"] += 1
            return
        if dst != self.sid:
            st["stale"] += 1
            return
        if kind == sf.K_RESET_ACK:
            if self.state == ST_SYNC:
                self._clear_session()
                if not self._peer_params(payload):
                    st["bad_header"] += 1
                    self._want_reset = True
                    return
                self.peer = src
                st["sessions"] += 1
                self._rtt_sample(self.now - self._reset_tx_at)
                self._rto_cur = self._rto
            elif src != self.peer:
                st["stale"] += 1
                return
            self._last_rx = self.now
            self._ack_pending = True  # tells the peer we know its sid
            if self.state != ST_UP:
                self.state = ST_UP
                self._emit(("link_up",))
            return
        # DATA or ACK
        if self.state == ST_SYNC or src != self.peer:
            st["stale"] += 1
            if self.state == ST_SYNC and self.now - self._reset_tx_at >= self.reset_min_ms:
                self._want_reset = True  # the peer thinks a session is up: tell it otherwise soon
            return
        if self.now - self._last_rx > self._rto and self._rto_cur > self._rto:
            # the peer is heard again after a silence (a replug) while our timers were backed
            # off: resend what is outstanding now instead of after the backed-off RTO
            self._rto_cur = self._rto
            for s in self._inflight:
                if not s.sacked:
                    s.need_tx = True
        self._last_rx = self.now
        if self.state == ST_HALF:
            self.state = ST_UP
            self._emit(("link_up",))
        if not self._on_ack(ack, sack):
            return
        if kind == sf.K_DATA:
            self._on_data(seq, payload)

    def _on_ack(self, ack, sack):
        inflight = self._inflight
        n = len(inflight)
        d = (ack - self._base) % SEQ_MOD
        if d > n:
            if (self._base - ack) % SEQ_MOD <= WINDOW_MAX:
                return True  # an older ack: nothing new
            self.stats["protocol_errors"] += 1
            self._go_sync()
            self._emit(("link_reset",))
            return False
        if d:
            newest = inflight[d - 1]
            if newest.tx_count == 1:
                self._rtt_sample(self.now - newest.sent_at)
            self._inflight = inflight = inflight[d:]
            self._base = ack
            self._rto_cur = self._rto
            n -= d
        if sack and n > 1:
            # On a FIFO line a frame sent after s that got through means s was lost: resend s
            # now instead of waiting for its timer (each copy at most once this way).
            newest = -1
            for i in range(1, n):
                if sack & (1 << (i - 1)):
                    s = inflight[i]
                    s.sacked = True
                    if s.order > newest:
                        newest = s.order
            for s in inflight:
                if not s.sacked and not s.need_tx and s.order < newest:
                    s.need_tx = True
                    self.stats["fast_retransmissions"] += 1
        return True

    def _on_data(self, seq, payload):
        self._ack_pending = True
        d = (seq - self._rx_next) % SEQ_MOD
        if d == 0:
            self._deliver(payload)
            nxt = (seq + 1) % SEQ_MOD
            ooo = self._ooo
            while nxt in ooo:
                self._deliver(ooo.pop(nxt))
                nxt = (nxt + 1) % SEQ_MOD
            self._rx_next = nxt
        elif d < self.window:
            if seq in self._ooo:
                self.stats["duplicates"] += 1
            else:
                self._ooo[seq] = payload
        elif SEQ_MOD - d <= WINDOW_MAX:
            self.stats["duplicates"] += 1
        else:
            self.stats["out_of_window"] += 1

    def _deliver(self, payload):
        self.stats["bytes_rx"] += len(payload)
        if self._rx_data is None:
            self._rx_data = bytearray(payload)
        else:
            self._rx_data += payload

    def _sack_bits(self):
        bits = 0
        base = self._rx_next + 1
        for seq in self._ooo:
            i = (seq - base) % SEQ_MOD
            if i < 8:
                bits |= 1 << i
        return bits

    def _emit_data(self, out, now, max_bytes):
        # retransmissions first (oldest first), then new frames while the window allows
        sent = False
        ack = self._rx_next
        sack = self._sack_bits()
        st = self.stats
        for s in self._inflight:
            if s.need_tx and len(out) < max_bytes:
                s.need_tx = False
                s.sent_at = now
                s.tx_count += 1
                self._tx_order += 1
                s.order = self._tx_order
                if s.tx_count > 1:
                    st["retransmissions"] += 1
                sf.encode_frame(out, sf.K_DATA, self.sid, self.peer, s.seq, ack, sack, s.payload)
                st["frames_tx"] += 1
                sent = True
        win = self._peer_window
        ring = self._smv
        cap = self.send_cap
        while len(self._inflight) < win and self._slen and len(out) < max_bytes:
            k = self._slen if self._slen < self._peer_mtu else self._peer_mtu
            h = self._shead
            if h + k <= cap:
                payload = bytes(ring[h:h + k])
            else:  # the frame's bytes wrap around the ring's end
                payload = bytearray(k)
                payload[0:cap - h] = ring[h:cap]
                payload[cap - h:k] = ring[0:k - (cap - h)]
            h += k
            self._shead = h - cap if h >= cap else h
            self._slen -= k
            if not self._slen:
                self._shead = 0
            s = _Slot(self._next_seq, payload, now)
            self._next_seq = (self._next_seq + 1) % SEQ_MOD
            s.need_tx = False
            s.tx_count = 1
            self._tx_order += 1
            s.order = self._tx_order
            self._inflight.append(s)
            sf.encode_frame(out, sf.K_DATA, self.sid, self.peer, s.seq, ack, sack, payload)
            st["frames_tx"] += 1
            st["bytes_tx"] += len(payload)
            sent = True
        return sent
