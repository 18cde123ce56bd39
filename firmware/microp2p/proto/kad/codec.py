# The Kademlia DHT wire format (libp2p/specs kad-dht/README.md, "RPC messages"): every message is
# a uvarint length prefix and a proto3 protobuf
#
#   Message { MessageType type = 1; bytes key = 2; Record record = 3;
#             repeated Peer closerPeers = 8; repeated Peer providerPeers = 9; int32 clusterLevelRaw = 10 }
#   Record  { bytes key = 1; bytes value = 2; string timeReceived = 5 }      (3, 4 removed)
#   Peer    { bytes id = 1; repeated bytes addrs = 2; ConnectionType connection = 3 }
#
# proto3: a missing type is 0 (PUT_VALUE) — go and js omit it on the wire. Decoding is strict and
# bounded: the length prefix is checked against MAX_MESSAGE_SIZE before anything is buffered, the
# peer lists and address lists have count caps (LimitError beyond), and a Peer whose id is not a
# valid peer id is dropped, as is an address we cannot parse (both are "ignored", never fatal).
from microp2p.codec import pb, varint
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity import peerid
from microp2p.errors import DecodeError, LimitError, SCOPE_STREAM

PROTOCOL_ID = "/ipfs/kad/1.0.0"

PUT_VALUE = 0
GET_VALUE = 1
ADD_PROVIDER = 2
GET_PROVIDERS = 3
FIND_NODE = 4
PING = 5  # deprecated: never sent by us
TYPE_NAMES = ("PUT_VALUE", "GET_VALUE", "ADD_PROVIDER", "GET_PROVIDERS", "FIND_NODE", "PING")

NOT_CONNECTED = 0
CONNECTED = 1
CAN_CONNECT = 2
CANNOT_CONNECT = 3

MAX_MESSAGE_SIZE = 16384      # rust's cap; every message we send or accept stays within it
MAX_PEERS_PER_FIELD = 100     # closerPeers / providerPeers entries in one message (k = 20 is normal)
MAX_ADDRS_PER_PEER = 32       # addrs in one Peer entry (LimitError beyond)
KEEP_ADDRS_PER_PEER = 8       # addresses kept per decoded peer (the first that parse)
MAX_KEY_LEN = 256             # Message.key / Record.key
MAX_VALUE_LEN = 10240         # Record.value

RECORD_SCHEMA = (
    (1, "key", pb.B, False),
    (2, "value", pb.B, False),
    (5, "timeReceived", pb.S, False),
)
PEER_SCHEMA = (
    (1, "id", pb.B, False),
    (2, "addrs", pb.B, True),
    (3, "connection", pb.U, False),
)
# Peers are kept as bytes at the message level so each one is decoded with its own caps.
MESSAGE_SCHEMA = (
    (1, "type", pb.U, False),
    (2, "key", pb.B, False),
    (3, "record", RECORD_SCHEMA, False),
    (8, "closerPeers", pb.B, True),
    (9, "providerPeers", pb.B, True),
)


class Message:
    """A decoded (or to-be-encoded) Kademlia message.

    closer / providers: lists of (peer id bytes, [Multiaddr, ...]); record: (key, value) or None."""
    __slots__ = ("type", "key", "record", "closer", "providers", "time_received")

    def __init__(self, type, key=None, record=None, closer=None, providers=None):
        self.type = type
        self.key = key
        self.record = record
        self.closer = closer or []
        self.providers = providers or []
        self.time_received = None

    def __repr__(self):
        name = TYPE_NAMES[self.type] if 0 <= self.type < len(TYPE_NAMES) else str(self.type)
        return "Message(%s, key=%r, closer=%d, providers=%d, record=%s)" % (
            name, self.key, len(self.closer), len(self.providers), self.record is not None)


def _addr_bytes(a):
    if isinstance(a, (bytes, bytearray)):
        return bytes(a)
    if isinstance(a, str):
        a = Multiaddr.from_string(a)
    return a.to_bytes()


def _peer_bytes(entry):
    pid = entry[0]
    if not isinstance(pid, (bytes, bytearray)):
        pid = pid.to_bytes()
    m = {"id": bytes(pid), "addrs": [_addr_bytes(a) for a in entry[1]]}
    if len(entry) > 2 and entry[2]:
        m["connection"] = entry[2]
    return bytes(pb.encode(m, PEER_SCHEMA))


def encode(msg):
    """Message -> protobuf bytes (no length prefix). type 0 is omitted, as proto3 does."""
    m = {}
    if msg.type:
        m["type"] = msg.type
    if msg.key is not None:
        m["key"] = bytes(msg.key)
    if msg.record is not None:
        r = {"key": bytes(msg.record[0]), "value": bytes(msg.record[1])}
        if msg.time_received:
            r["timeReceived"] = msg.time_received
        m["record"] = r
    if msg.closer:
        m["closerPeers"] = [_peer_bytes(p) for p in msg.closer]
    if msg.providers:
        m["providerPeers"] = [_peer_bytes(p) for p in msg.providers]
    return bytes(pb.encode(m, MESSAGE_SCHEMA))


def frame(body):
    """Length-prefix an encoded message; our own over-cap message is a LimitError too."""
    if len(body) > MAX_MESSAGE_SIZE:
        raise LimitError("kad message of %d bytes over %d" % (len(body), MAX_MESSAGE_SIZE),
                         SCOPE_STREAM)
    return varint.encode(len(body)) + body


def _decode_peer(raw):
    """-> (id bytes, [Multiaddr]) or None when the id is not a peer id."""
    p = pb.decode(raw, PEER_SCHEMA, MAX_ADDRS_PER_PEER)
    pid = p.get("id")
    if pid is None:
        return None
    try:
        pid = peerid.check_bytes(pid)
    except DecodeError:
        return None
    addrs = []
    for a in p.get("addrs") or ():
        if len(addrs) >= KEEP_ADDRS_PER_PEER:
            break
        try:
            addrs.append(Multiaddr.from_bytes(a))
        except DecodeError:
            pass  # an address kind we do not speak, or garbage: ignore it
    return pid, addrs


def _decode_peers(raws):
    out = []
    seen = set()
    for raw in raws or ():
        p = _decode_peer(raw)
        if p is not None and p[0] not in seen:
            seen.add(p[0])
            out.append(p)
    return out


def decode(body, max_peers=MAX_PEERS_PER_FIELD):
    """protobuf bytes -> Message. Raises DecodeError / LimitError (scope: stream)."""
    if len(body) > MAX_MESSAGE_SIZE:
        raise LimitError("kad message over %d bytes" % MAX_MESSAGE_SIZE, SCOPE_STREAM)
    try:
        m = pb.decode(body, MESSAGE_SCHEMA, max_peers)
        t = m.get("type", PUT_VALUE)
        if t > PING:
            raise DecodeError("unknown kad message type %d" % t)
        key = m.get("key")
        if key is not None and len(key) > MAX_KEY_LEN:
            raise LimitError("kad key over %d bytes" % MAX_KEY_LEN)
        msg = Message(t, key)
        r = m.get("record")
        if r is not None:
            rk = r.get("key", b"")
            rv = r.get("value", b"")
            if len(rk) > MAX_KEY_LEN or len(rv) > MAX_VALUE_LEN:
                raise LimitError("kad record over its caps")
            msg.record = (rk, rv)
            msg.time_received = r.get("timeReceived")
        msg.closer = _decode_peers(m.get("closerPeers"))
        msg.providers = _decode_peers(m.get("providerPeers"))
    except (DecodeError, LimitError) as e:  # bad input closes only this stream
        e.scope = SCOPE_STREAM
        raise
    return msg


class Reader:
    """Splits a stream's bytes into messages. The length prefix is checked before buffering."""

    def __init__(self, max_size=MAX_MESSAGE_SIZE):
        self.max_size = max_size
        self._buf = bytearray()

    def receive(self, data):
        """-> list of complete message bodies (bytes)."""
        self._buf += data
        out = []
        while True:
            try:
                n, pos = varint.read(self._buf, 0, 0xFFFFFFFF)
            except DecodeError as e:
                e.scope = SCOPE_STREAM
                raise
            if n is None:
                if len(self._buf) > varint.MAX_LEN:
                    raise DecodeError("bad kad length prefix", SCOPE_STREAM)
                break
            if n > self.max_size:
                raise LimitError("kad message of %d bytes over %d" % (n, self.max_size), SCOPE_STREAM)
            if len(self._buf) - pos < n:
                break
            out.append(bytes(self._buf[pos:pos + n]))
            self._buf = self._buf[pos + n:]
        return out

    @property
    def pending(self):
        return len(self._buf)
