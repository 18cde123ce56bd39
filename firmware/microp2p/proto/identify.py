# identify (`/ipfs/id/1.0.0`) and identify push (`/ipfs/id/push/1.0.0`): libp2p/specs
# identify/README.md, plus field 8 signedPeerRecord (an RFC 0002 envelope carrying an RFC 0003
# peer record) that go, rust and js send. Messages are uvarint-length-prefixed protobufs; the
# answering side writes one and closes its write side.
#
# Reading follows js-libp2p's identify: accumulate length-prefixed messages until EOF (at most
# MAX_MESSAGES of at most MAX_MESSAGE_SIZE each) and merge them with protobuf merge semantics
# (later singular fields win, repeated fields concatenate). A bad identify is a stream-scope
# error: js, too, keeps the connection when identify fails.
from microp2p.codec import pb, varint
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.codec.multiaddr import Multiaddr
from microp2p.errors import ProtocolError, DecodeError, LimitError, AuthError, SCOPE_STREAM

PROTOCOL_ID = "/ipfs/id/1.0.0"
PUSH_PROTOCOL_ID = "/ipfs/id/push/1.0.0"
DEFAULT_PROTOCOL_VERSION = "ipfs/0.1.0"

MAX_MESSAGE_SIZE = 8192      # per message, as js (maxMessageSize); checked at the length prefix
MAX_MESSAGES = 10            # per stream, as js (maxMessages)
MAX_ITEMS_PER_MESSAGE = 256  # repeated items in one message (listenAddrs + protocols each)
MAX_LISTEN_ADDRS = 64        # after merging all messages of a stream
MAX_PROTOCOLS = 256          # after merging all messages of a stream

IDENTIFY_SCHEMA = (
    (1, "publicKey", pb.B, False),
    (2, "listenAddrs", pb.B, True),
    (3, "protocols", pb.S, True),
    (4, "observedAddr", pb.B, False),
    (5, "protocolVersion", pb.S, False),
    (6, "agentVersion", pb.S, False),
    (8, "signedPeerRecord", pb.B, False),
)
_REPEATED = ("listenAddrs", "protocols")

_record_seq = 0


def _as_multiaddr(a):
    return a if isinstance(a, Multiaddr) else Multiaddr(a)


def encode_identify(identity_key, protocols, listen_addrs, observed_addr, agent,
                    protocol_version=DEFAULT_PROTOCOL_VERSION, signed_record=True, seq=None):
    """The Identify protobuf (without its length prefix; see frame()).

    listen_addrs / observed_addr: Multiaddr, text or bytes (observed_addr may be None).
    signed_record: include a signed peer record of listen_addrs (or pass the sealed envelope
    bytes, e.g. a node's cached one, to skip signing); seq orders our records (larger
    is newer; pass e.g. unix time when the device has a clock, else a per-boot counter is used)."""
    global _record_seq
    addrs = [_as_multiaddr(a) for a in listen_addrs]
    msg = {
        "protocolVersion": protocol_version,
        "agentVersion": agent,
        "publicKey": identity_key.public_key.to_protobuf(),
        "listenAddrs": [a.to_bytes() for a in addrs],
        "protocols": list(protocols),
    }
    if observed_addr is not None:
        msg["observedAddr"] = _as_multiaddr(observed_addr).to_bytes()
    if isinstance(signed_record, (bytes, bytearray)):
        msg["signedPeerRecord"] = bytes(signed_record)  # sealed by the caller (cached)
    elif signed_record:
        if seq is None:
            _record_seq += 1
            seq = _record_seq
        from microp2p.identity import envelope  # signed records load when first needed
        msg["signedPeerRecord"] = envelope.seal_peer_record(identity_key, seq, addrs)
    return bytes(pb.encode(msg, IDENTIFY_SCHEMA))


def frame(msg):
    """msg with its uvarint length prefix, ready to write on the stream."""
    if len(msg) > MAX_MESSAGE_SIZE:
        # Peers reject it (js at 8 KiB): a node advertising this much must trim its lists.
        raise LimitError("identify message of %d bytes over %d" % (len(msg), MAX_MESSAGE_SIZE),
                         SCOPE_STREAM)
    return varint.encode(len(msg)) + msg


def _stream_scoped(e):
    e.scope = SCOPE_STREAM
    return e


def _decode_raw(data):
    try:
        return pb.decode(data, IDENTIFY_SCHEMA, MAX_ITEMS_PER_MESSAGE)
    except ProtocolError as e:
        raise _stream_scoped(e)


def _merge(into, raw):
    for name in raw:
        if name in _REPEATED:
            items = into.get(name)
            if items is None:
                into[name] = raw[name]
            else:
                items.extend(raw[name])
        else:
            into[name] = raw[name]


def _parse_addr(b):
    try:
        return Multiaddr.from_bytes(b)
    except DecodeError:
        return None


def _check(raw, expected_peer, push):
    """Validate a (merged) raw Identify dict -> result dict."""
    key_pb = raw.get("publicKey")
    public_key = None
    if key_pb is None:
        if not push:
            raise AuthError("identify without publicKey", SCOPE_STREAM)
    else:
        # The peer ID comes from the key bytes, so any key type can be matched; only Ed25519
        # parses into a key object here.
        try:
            peer = PeerId.from_public_key_protobuf(key_pb)
        except ProtocolError:
            raise AuthError("identify publicKey unusable", SCOPE_STREAM)
        if expected_peer is not None and peer != expected_peer:
            raise AuthError("identify publicKey is %s, connection is %s" % (peer, expected_peer),
                            SCOPE_STREAM)
        try:
            public_key = keys.public_key_from_protobuf(key_pb)
        except keys.UnsupportedKey:
            public_key = None
        except ProtocolError:
            raise AuthError("identify publicKey malformed", SCOPE_STREAM)
    listen = raw.get("listenAddrs") or []
    protocols = raw.get("protocols") or []
    if len(listen) > MAX_LISTEN_ADDRS:
        raise LimitError("identify lists %d addresses" % len(listen), SCOPE_STREAM)
    if len(protocols) > MAX_PROTOCOLS:
        raise LimitError("identify lists %d protocols" % len(protocols), SCOPE_STREAM)
    addrs = []
    skipped = 0
    for b in listen:
        # Peers list transports we do not know (webrtc, certhash...): skip those, keep the rest.
        a = _parse_addr(b)
        if a is None:
            skipped += 1
        else:
            addrs.append(a)
    observed = raw.get("observedAddr")
    if observed is not None:
        observed = _parse_addr(observed)
    record = None
    spr = raw.get("signedPeerRecord")
    if spr is not None:
        from microp2p.identity import envelope  # signed records load when first needed
        try:
            record = envelope.open_peer_record(spr)
        except keys.UnsupportedKey:
            record = None  # signed with a key type we cannot verify: not proven bad, unused
        except ProtocolError as e:
            raise AuthError("identify signedPeerRecord invalid: %s" % e, SCOPE_STREAM)
        if record is not None and expected_peer is not None and record.peer_id != expected_peer:
            raise AuthError("identify signedPeerRecord is for another peer", SCOPE_STREAM)
    return {
        "protocol_version": raw.get("protocolVersion"),
        "agent_version": raw.get("agentVersion"),
        "public_key": public_key,
        "listen_addrs": addrs,
        "skipped_addrs": skipped,
        "observed_addr": observed,
        "protocols": protocols,
        "signed_record": record,
    }


def decode_identify(data, expected_peer, push=False):
    """One Identify protobuf (no length prefix) -> dict:
    protocol_version, agent_version (str or None), public_key (keys object, None if absent or
    of a type we do not implement), listen_addrs [Multiaddr] (unparseable ones skipped and
    counted in skipped_addrs), observed_addr (Multiaddr or None), protocols [str],
    signed_record (envelope.PeerRecord, verified, or None).
    publicKey is required (optional in a push) and must belong to expected_peer: AuthError."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise LimitError("identify message too large", SCOPE_STREAM)
    return _check(_decode_raw(data), expected_peer, push)


class IdentifyReader:
    """Reads an identify (or, push=True, identify push) stream until EOF.

    receive(data) -> [] (nothing is reported before EOF); receive_eof() ->
    [('identify', result)] or [('identify_push', result)] with result as decode_identify's."""

    def __init__(self, expected_peer, push=False):
        self.expected_peer = expected_peer
        self.push = push
        self._buf = bytearray()
        self._count = 0
        self._raw = {}

    def receive(self, data):
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        try:
            while pos < end:
                n, start = varint.read(buf, pos, MAX_MESSAGE_SIZE)
                if n is None or end - start < n:
                    break
                self._count += 1
                if self._count > MAX_MESSAGES:
                    raise LimitError("more than %d identify messages" % MAX_MESSAGES)
                _merge(self._raw, pb.decode(buf, IDENTIFY_SCHEMA, MAX_ITEMS_PER_MESSAGE,
                                            start, start + n))
                pos = start + n
        except ProtocolError as e:
            raise _stream_scoped(e)
        if pos:
            self._buf = buf[pos:]
        return []

    def receive_eof(self):
        if self._buf:
            raise DecodeError("identify stream ended inside a message", SCOPE_STREAM)
        if not self._count:
            raise DecodeError("identify stream ended without a message", SCOPE_STREAM)
        result = _check(self._raw, self.expected_peer, self.push)
        return [("identify_push" if self.push else "identify", result)]
