# The pubsub RPC codec (pubsub/README.md, gossipsub-v1.0/1.1/1.2 "Protobuf"), stream framing and
# message signing. Shared by floodsub and gossipsub.
#
# Wire: one long-lived stream per direction carries uvarint-length-prefixed RPC protobufs.
# Decoded RPCs are plain dicts keyed by the proto field names. Message ids are bytes.
#
# Signing (pubsub/README.md "Message Signing"): the signature covers
#   b"libp2p-pubsub:" + Message encoded canonically (field-number order, minimal varints)
#   with the `signature` and `key` fields left out.
# pb.encode is canonical, so re-encoding a decoded message reproduces what a go/js signer signed.
from microp2p.codec import pb, varint
from microp2p.identity import keys, peerid
from microp2p.errors import DecodeError, LimitError, AuthError, SCOPE_STREAM

SUBOPTS = ((1, "subscribe", pb.Z, False), (2, "topicid", pb.S, False))
MESSAGE = (
    (1, "from", pb.B, False),
    (2, "data", pb.B, False),
    (3, "seqno", pb.B, False),
    (4, "topic", pb.S, False),
    (5, "signature", pb.B, False),
    (6, "key", pb.B, False),
)
# The same fields minus signature/key: what a signature covers.
MESSAGE_UNSIGNED = MESSAGE[:4]
IHAVE = ((1, "topicID", pb.S, False), (2, "messageIDs", pb.B, True))
IWANT = ((1, "messageIDs", pb.B, True),)
GRAFT = ((1, "topicID", pb.S, False),)
PEERINFO = ((1, "peerID", pb.B, False), (2, "signedPeerRecord", pb.B, False))
PRUNE = ((1, "topicID", pb.S, False), (2, "peers", PEERINFO, True), (3, "backoff", pb.U, False))
IDONTWANT = ((1, "messageIDs", pb.B, True),)
CONTROL = (
    (1, "ihave", IHAVE, True),
    (2, "iwant", IWANT, True),
    (3, "graft", GRAFT, True),
    (4, "prune", PRUNE, True),
    (5, "idontwant", IDONTWANT, True),
)
RPC = ((1, "subscriptions", SUBOPTS, True), (2, "publish", MESSAGE, True), (3, "control", CONTROL, False))

SIGN_PREFIX = b"libp2p-pubsub:"
SEQNO_LEN = 8

# Caps. The RPC size cap bounds everything else; the per-field item cap stops one RPC from
# turning into a million tiny list entries (5000 = go's MaxIHaveLength, the largest legit list).
MAX_RPC_SIZE = 1 << 20          # gateway; pubsub/README.md suggests ~1 MiB
MAX_RPC_SIZE_DEVICE = 32 * 1024  # device: its own messages are small, IHAVE lists are short
MAX_RPC_ITEMS = 5000            # items of any one repeated field in one RPC
# Fields of one RPC, all levels and kinds together, counted while decoding: a 1 MiB RPC of
# 500 000 empty IHAVE ids stays under the per-field cap (100 IHAVEs x 5000) yet costs ~0.4 s of
# CPU to decode. The largest honest RPC (512 messages of 6 fields, or 5000 IHAVE + 5000 IWANT ids)
# stays well under.
MAX_RPC_FIELDS = 16384
MAX_RPC_FIELDS_DEVICE = 1024
MAX_TOPIC_LEN = 256             # bytes of a topic name we accept anywhere
MAX_MSG_ID_LEN = 128            # a msg id longer than this is not one we could have made

# Protocol ids and what each one can do.
FLOODSUB = "/floodsub/1.0.0"
MESHSUB_V10 = "/meshsub/1.0.0"
MESHSUB_V11 = "/meshsub/1.1.0"
MESHSUB_V12 = "/meshsub/1.2.0"
GOSSIPSUB_PROTOCOLS = (MESHSUB_V12, MESHSUB_V11, MESHSUB_V10, FLOODSUB)  # preference order


def supports_mesh(proto):
    return proto is not None and proto.startswith("/meshsub/")


def supports_px(proto):
    return proto == MESHSUB_V11 or proto == MESHSUB_V12


def supports_idontwant(proto):
    return proto == MESHSUB_V12


def decode_rpc(buf, max_size=MAX_RPC_SIZE, max_fields=MAX_RPC_FIELDS):
    """Decode one RPC body (no length prefix). Raises DecodeError/LimitError (stream scope)."""
    if len(buf) > max_size:
        raise LimitError("pubsub RPC over %d bytes" % max_size, SCOPE_STREAM)
    try:
        return pb.decode(buf, RPC, MAX_RPC_ITEMS, budget=[max_fields])
    except (DecodeError, LimitError) as e:
        # A garbled RPC spoils the stream, not the connection's other protocols.
        e.scope = SCOPE_STREAM
        raise


def encode_rpc(rpc):
    return pb.encode(rpc, RPC)


def frame(body):
    """uvarint length prefix + body, as one bytes object ready for the stream."""
    return varint.encode(len(body)) + bytes(body)


def encode_message(msg, out=None):
    return pb.encode(msg, MESSAGE, out)


def message_frame(enc_msg):
    """A framed RPC carrying one already-encoded Message: built once, queued to many peers."""
    n = len(enc_msg)
    inner = varint.encode(n)
    body_len = 1 + len(inner) + n
    out = bytearray(varint.encode(body_len))
    out.append(0x12)  # field 2 (publish), wire type 2
    out += inner
    out += enc_msg
    return bytes(out)


class FrameReader:
    """Splits a stream into RPC bodies. feed(data) -> list of bodies (bytes); partial input waits.

    The length prefix is checked against max_size before anything is buffered for it."""

    def __init__(self, max_size=MAX_RPC_SIZE):
        self.max_size = max_size
        self._buf = bytearray()
        self._pos = 0

    def buffered(self):
        return len(self._buf) - self._pos

    def feed(self, data):
        buf = self._buf
        buf += data
        out = []
        pos = self._pos
        end = len(buf)
        while pos < end:
            try:
                n, p = varint.read(buf, pos, varint.MAX_VALUE, end)
            except DecodeError as e:
                e.scope = SCOPE_STREAM
                raise
            if n is None:
                break
            if n > self.max_size:
                raise LimitError("pubsub RPC frame of %d bytes over %d" % (n, self.max_size), SCOPE_STREAM)
            if p + n > end:
                break
            out.append(bytes(buf[p:p + n]))
            pos = p + n
        if pos >= end:
            self._buf = bytearray()
            self._pos = 0
        else:
            if end - pos > varint.MAX_LEN + self.max_size:
                raise LimitError("pubsub frame buffer over cap", SCOPE_STREAM)
            if pos > 4096 or pos * 2 > end:
                self._buf = buf[pos:]
                pos = 0
            self._pos = pos
        return out


# --- message ids -----------------------------------------------------------------------------

def default_msg_id(msg):
    """go DefaultMsgIdFn: from bytes + seqno bytes (both raw)."""
    return msg.get("from", b"") + msg.get("seqno", b"")


def content_msg_id(msg):
    """A content-addressed id for StrictNoSign topics: sha256(data)."""
    from microp2p import crypto
    return crypto.sha256(msg.get("data", b""))


# --- signing ---------------------------------------------------------------------------------

def signing_bytes(msg):
    out = bytearray(SIGN_PREFIX)
    pb.encode(msg, MESSAGE_UNSIGNED, out)
    return out


def sign_message(msg, private_key, include_key=False):
    """Set msg['signature'] (and msg['key'] when asked) with private_key (.sign, .public_key).

    The key is left out by default: Ed25519 keys are inlined in the peer id."""
    msg.pop("signature", None)
    msg.pop("key", None)
    msg["signature"] = private_key.sign(bytes(signing_bytes(msg)))
    if include_key:
        msg["key"] = private_key.public_key.to_protobuf()
    return msg


def check_strict_sign_fields(msg):
    """StrictSign structural rules, checked before the (costly) signature check."""
    if "signature" not in msg:
        raise AuthError("message without signature", SCOPE_STREAM)
    f = msg.get("from")
    if not f:
        raise AuthError("signed message without from", SCOPE_STREAM)
    s = msg.get("seqno")
    if s is None or len(s) != SEQNO_LEN:
        raise AuthError("seqno must be 8 bytes", SCOPE_STREAM)


def check_strict_nosign_fields(msg):
    if "signature" in msg or "from" in msg or "seqno" in msg or "key" in msg:
        raise AuthError("StrictNoSign message carries author fields", SCOPE_STREAM)


# Keys inlined in `from` peer ids, decoded once per author (a router hears few authors, often).
MAX_AUTHOR_KEYS = 256
_author_keys = {}


def _author_key(from_bytes):
    """(PeerId, Ed25519PublicKey) of an author whose key is inlined in its peer id."""
    known = _author_keys.get(from_bytes)
    if known is None:
        pid = peerid.PeerId.from_bytes(from_bytes)
        pub = pid.public_key()
        if pub is None:
            raise AuthError("no key: from is not an inlined key and key is absent", SCOPE_STREAM)
        if len(_author_keys) >= MAX_AUTHOR_KEYS:
            _author_keys.clear()
        known = _author_keys[from_bytes] = (pid, pub)
    return known


def signed_part(msg, enc):
    """The bytes a message's signature covers, cut from its canonical encoding enc (fields 1-4
    come first, then signature and key): saves encoding the message a second time."""
    tail = 0
    for name in ("signature", "key"):
        v = msg.get(name)
        if v is not None:
            tail += 1 + len(varint.encode(len(v))) + len(v)
    return SIGN_PREFIX + bytes(memoryview(enc)[:len(enc) - tail])


def verify_message(msg, enc=None):
    """Verify a StrictSign message; raise AuthError (or DecodeError for garbled ids/keys).

    The signing key is msg['key'] when present (it must hash to `from`), else the key inlined in
    the `from` peer id. enc: the message's canonical encoding when the caller has it."""
    check_strict_sign_fields(msg)
    try:
        key_pb = msg.get("key")
        if key_pb is not None:
            pid = peerid.PeerId.from_bytes(msg["from"])
            pub = keys.public_key_from_protobuf(key_pb)
            if peerid.PeerId.from_public_key(pub) != pid:
                raise AuthError("message key does not match from", SCOPE_STREAM)
        else:
            pid, pub = _author_key(bytes(msg["from"]))
    except (DecodeError, LimitError) as e:
        e.scope = SCOPE_STREAM
        raise AuthError("bad from/key: %s" % e, SCOPE_STREAM)
    signed = signed_part(msg, enc) if enc is not None else bytes(signing_bytes(msg))
    if not pub.verify(signed, msg["signature"]):
        raise AuthError("bad message signature", SCOPE_STREAM)
    return pid
