# Circuit relay v2 wire messages (libp2p/specs relay/circuit-v2.md): HopMessage on
# /libp2p/circuit/relay/0.2.0/hop, StopMessage on /libp2p/circuit/relay/0.2.0/stop, each one
# uvarint-length-prefixed protobuf of at most MAX_MESSAGE bytes.
#
#   HopMessage  { type=1 (RESERVE 0, CONNECT 1, STATUS 2); peer=2 Peer; reservation=3; limit=4; status=5 }
#   StopMessage { type=1 (CONNECT 0, STATUS 1); peer=2 Peer; limit=3; status=4 }
#   Peer        { id=1 bytes; addrs=2 repeated bytes }
#   Reservation { expire=1 uint64 unix s; addrs=2 repeated bytes; voucher=3 bytes (signed envelope) }
#   Limit       { duration=1 uint32 s; data=2 uint64 bytes per direction }
#
# Strict: `type` must be present and known (we always write it, even 0, as the spec asks), a
# status must be a known code, a peer id a valid peer-ID multihash, duration fits uint32.
# After a successful CONNECT exchange the same stream carries the relayed connection, so the
# reader below never consumes a byte past the end of its one message.
from microp2p.codec import pb, varint
from microp2p.identity import peerid
from microp2p.errors import DecodeError, LimitError, UsageError, SCOPE_STREAM

HOP = "/libp2p/circuit/relay/0.2.0/hop"
STOP = "/libp2p/circuit/relay/0.2.0/stop"

MAX_MESSAGE = 4096   # spec / go / js: a hop or stop message larger than this is refused
MAX_ADDRS = 32       # addresses accepted in one Peer or Reservation
MAX_UINT32 = 0xFFFFFFFF

# HopMessage.Type
RESERVE = 0
CONNECT = 1
STATUS = 2
# StopMessage.Type
STOP_CONNECT = 0
STOP_STATUS = 1

# Status
UNUSED = 0
OK = 100
RESERVATION_REFUSED = 200
RESOURCE_LIMIT_EXCEEDED = 201
PERMISSION_DENIED = 202
CONNECTION_FAILED = 203
NO_RESERVATION = 204
MALFORMED_MESSAGE = 400
UNEXPECTED_MESSAGE = 401
STATUS_NAMES = {
    UNUSED: "UNUSED", OK: "OK", RESERVATION_REFUSED: "RESERVATION_REFUSED",
    RESOURCE_LIMIT_EXCEEDED: "RESOURCE_LIMIT_EXCEEDED", PERMISSION_DENIED: "PERMISSION_DENIED",
    CONNECTION_FAILED: "CONNECTION_FAILED", NO_RESERVATION: "NO_RESERVATION",
    MALFORMED_MESSAGE: "MALFORMED_MESSAGE", UNEXPECTED_MESSAGE: "UNEXPECTED_MESSAGE",
}

PEER_SCHEMA = (
    (1, "id", pb.B, False),
    (2, "addrs", pb.B, True),
)
RESERVATION_SCHEMA = (
    (1, "expire", pb.U, False),
    (2, "addrs", pb.B, True),
    (3, "voucher", pb.B, False),
)
LIMIT_SCHEMA = (
    (1, "duration", pb.U, False),
    (2, "data", pb.U, False),
)
HOP_SCHEMA = (
    (1, "type", pb.U, False),
    (2, "peer", PEER_SCHEMA, False),
    (3, "reservation", RESERVATION_SCHEMA, False),
    (4, "limit", LIMIT_SCHEMA, False),
    (5, "status", pb.U, False),
)
STOP_SCHEMA = (
    (1, "type", pb.U, False),
    (2, "peer", PEER_SCHEMA, False),
    (3, "limit", LIMIT_SCHEMA, False),
    (4, "status", pb.U, False),
)


class RelayError(DecodeError):
    """A malformed hop/stop message: the stream is answered MALFORMED_MESSAGE and reset."""
    scope = SCOPE_STREAM


def status_name(code):
    return STATUS_NAMES.get(code, str(code))


def _check(msg, kinds):
    t = msg.get("type")
    if t is None:
        raise RelayError("relay message without type")
    if t not in kinds:
        raise RelayError("unknown relay message type %d" % t)
    st = msg.get("status")
    if st is not None and st not in STATUS_NAMES:
        raise RelayError("unknown relay status %d" % st)
    p = msg.get("peer")
    if p is not None:
        if "id" not in p:
            raise RelayError("relay peer without id")
        try:
            peerid.check_bytes(p["id"])
        except DecodeError:
            raise RelayError("relay peer id is not a peer ID")
    lim = msg.get("limit")
    if lim is not None and lim.get("duration", 0) > MAX_UINT32:
        raise RelayError("limit duration over uint32")
    return msg


def _decode(body, schema):
    # The codec's errors close a connection by default; a bad relay message ends only its stream.
    try:
        return pb.decode(body, schema, MAX_ADDRS)
    except LimitError as e:
        raise LimitError(str(e), SCOPE_STREAM)
    except DecodeError as e:
        raise RelayError(str(e))


def decode_hop(body):
    """HopMessage protobuf body (no length prefix) -> dict. Raises RelayError / LimitError."""
    if len(body) > MAX_MESSAGE:
        raise LimitError("hop message over %d bytes" % MAX_MESSAGE, SCOPE_STREAM)
    return _check(_decode(body, HOP_SCHEMA), (RESERVE, CONNECT, STATUS))


def decode_stop(body):
    if len(body) > MAX_MESSAGE:
        raise LimitError("stop message over %d bytes" % MAX_MESSAGE, SCOPE_STREAM)
    return _check(_decode(body, STOP_SCHEMA), (STOP_CONNECT, STOP_STATUS))


def _frame(msg, schema):
    if msg.get("type") is None:
        raise UsageError("relay message needs a type")
    body = pb.encode(msg, schema)
    if len(body) > MAX_MESSAGE:
        raise UsageError("relay message over %d bytes" % MAX_MESSAGE)
    return varint.encode(len(body)) + bytes(body)


def encode_hop(msg):
    """dict -> uvarint-prefixed HopMessage bytes (type always written, even RESERVE = 0)."""
    return _frame(msg, HOP_SCHEMA)


def encode_stop(msg):
    return _frame(msg, STOP_SCHEMA)


def peer_msg(peer_id, addrs=()):
    """A Peer dict from a PeerId (or its bytes) and multiaddrs (objects or bytes)."""
    pid = peer_id if isinstance(peer_id, (bytes, bytearray)) else peer_id.to_bytes()
    return {"id": bytes(pid), "addrs": [a if isinstance(a, (bytes, bytearray)) else a.to_bytes() for a in addrs]}


def limit_msg(duration_s, data_bytes):
    """A Limit dict, or None when neither bound applies (the spec: no field means no limit)."""
    if not duration_s and not data_bytes:
        return None
    m = {}
    if duration_s:
        m["duration"] = duration_s
    if data_bytes:
        m["data"] = data_bytes
    return m


class MessageReader:
    """Collects one uvarint-delimited message and never takes a byte beyond it.

    wanted() is how many bytes the reader can take now without overrunning the message (1 while
    in the length prefix, then the rest of the body): a driver reading exactly that many from a
    stream leaves the relayed connection that follows untouched. receive(data) also accepts more
    and returns the bytes past the message unconsumed. message() -> body bytes once complete."""

    def __init__(self, max_len=MAX_MESSAGE):
        self.max_len = max_len
        self._prefix = bytearray()
        self._need = -1        # body length once the prefix is known
        self._body = bytearray()

    @property
    def complete(self):
        return self._need >= 0 and len(self._body) == self._need

    def wanted(self):
        if self._need < 0:
            return 1
        return self._need - len(self._body)

    def receive(self, data):
        """Feed bytes; returns the leftover past the message (b'' if all were taken)."""
        mv = memoryview(data)
        pos = 0
        n = len(mv)
        while pos < n and self._need < 0:
            self._prefix.append(mv[pos])
            pos += 1
            try:
                v, _ = varint.read(self._prefix, 0, self.max_len)  # fails before buffering a body
            except DecodeError:
                raise LimitError("relay message over %d bytes" % self.max_len, SCOPE_STREAM)
            if v is not None:
                self._need = v
        if self._need >= 0 and pos < n:
            take = self._need - len(self._body)
            if take > n - pos:
                take = n - pos
            self._body += mv[pos:pos + take]
            pos += take
        return bytes(mv[pos:])

    def message(self):
        if not self.complete:
            raise UsageError("relay message not complete")
        return bytes(self._body)

    def eof(self):
        """The stream ended: a typed error (nothing or half a message arrived)."""
        raise RelayError("relay stream ended before a complete message")

