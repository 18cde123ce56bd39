# /ipfs/ping/1.0.0 (libp2p/specs ping/ping.md): the dialer writes 32 random bytes, the listener
# echoes them; either may repeat on the same stream. Two small machines, one per stream.
from microp2p import crypto
from microp2p.errors import ProtocolError, DecodeError, UsageError, SCOPE_STREAM

try:
    from time import ticks_diff  # MicroPython: now_ms comes from ticks_ms(), which wraps
except ImportError:
    def ticks_diff(a, b):
        return a - b

PROTOCOL_ID = "/ipfs/ping/1.0.0"
PING_SIZE = 32
# ping.md: "The dialing peer MUST NOT keep more than one outbound stream for the ping protocol
# per peer. The listening peer SHOULD accept at most two streams per peer" (cross-stream close/
# open ordering is not linear). js-libp2p's ping service likewise opens one at a time.
MAX_OUTBOUND_PING_STREAMS_PER_PEER = 1
MAX_PING_STREAMS_PER_PEER = 2       # inbound, enforced by the driver that accepts streams
PING_TIMEOUT_MS = 10000             # js's connection monitor aborts after about this long


class PingResponder:
    """Listener side: echo every complete 32-byte payload. A partial payload waits (<= 32 bytes)."""

    def __init__(self):
        self._buf = bytearray(PING_SIZE)
        self._fill = 0
        self._out = bytearray()
        self.echoed = 0

    def receive(self, data):
        mv = memoryview(data)
        n = len(mv)
        pos = 0
        while pos < n:
            fill = self._fill
            take = PING_SIZE - fill
            if take > n - pos:
                take = n - pos
            self._buf[fill:fill + take] = mv[pos:pos + take]
            pos += take
            fill += take
            if fill == PING_SIZE:
                self._out += self._buf
                self.echoed += 1
                fill = 0
            self._fill = fill
        return []

    def receive_eof(self):
        """The dialer closed its write side: we finish (the driver closes ours after sending)."""
        if self._fill:
            raise DecodeError("ping stream ended inside a payload", SCOPE_STREAM)
        return [("closed",)]

    def data_to_send(self):
        out = self._out
        if not out:
            return b""
        self._out = bytearray()
        return bytes(out)


class PingInitiator:
    """Dialer side: ping(now_ms) sends one payload; receive(data, now_ms) yields ('pong', rtt_ms).
    One ping in flight at a time, as the spec's one-outbound-stream rule implies."""

    def __init__(self):
        self._sent = None
        self._sent_ms = 0
        self._buf = bytearray(PING_SIZE)
        self._fill = 0
        self._out = bytearray()

    @property
    def waiting(self):
        return self._sent is not None

    def ping(self, now_ms, payload=None):
        if self._sent is not None:
            raise UsageError("ping already in flight")
        if payload is None:
            payload = crypto.random_bytes(PING_SIZE)
        elif len(payload) != PING_SIZE:
            raise UsageError("ping payload must be 32 bytes")
        self._sent = bytes(payload)
        self._sent_ms = now_ms
        self._out += self._sent

    def receive(self, data, now_ms):
        events = []
        mv = memoryview(data)
        n = len(mv)
        pos = 0
        while pos < n:
            if self._sent is None:
                raise ProtocolError("unsolicited ping bytes", SCOPE_STREAM)
            fill = self._fill
            take = PING_SIZE - fill
            if take > n - pos:
                take = n - pos
            self._buf[fill:fill + take] = mv[pos:pos + take]
            pos += take
            fill += take
            self._fill = fill
            if fill == PING_SIZE:
                self._fill = 0
                if self._buf != self._sent:
                    raise ProtocolError("ping echo does not match", SCOPE_STREAM)
                self._sent = None
                events.append(("pong", ticks_diff(now_ms, self._sent_ms)))
        return events

    def tick(self, now_ms):
        """Returns [('ping_timeout', waited_ms)] once the echo is PING_TIMEOUT_MS late."""
        if self._sent is not None and ticks_diff(now_ms, self._sent_ms) >= PING_TIMEOUT_MS:
            waited = ticks_diff(now_ms, self._sent_ms)
            self._sent = None
            self._fill = 0
            return [("ping_timeout", waited)]
        return []

    def receive_eof(self):
        if self._sent is not None:
            raise ProtocolError("ping stream closed before the echo", SCOPE_STREAM)
        return [("closed",)]

    def data_to_send(self):
        out = self._out
        if not out:
            return b""
        self._out = bytearray()
        return bytes(out)
