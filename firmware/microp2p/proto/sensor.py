# /microp2p/sensor/1.0.0: ask a device directly for its latest reading and its status.
#
#   request  = uvarint(len) CBOR {"op": "read"}                         (at most MAX_REQUEST bytes)
#   response = uvarint(len) CBOR {"status": {...}, "signed": bytes|null} (at most MAX_RESPONSE)
#     status: {"uptime_ms", "heap_free" (null where unknown), "link", "queue", "drops", "seq"}
#     signed: the latest reading exactly as the device published it on gossipsub: a pubsub
#             Message protobuf signed under StrictSign ("libp2p-pubsub:" + fields 1-4) by the
#             device's own key, so an outside peer verifies who measured it, not who relayed it.
# One request per stream; the responder answers and closes its write side. Portable (the device
# runs this) and sans-IO apart from serve()/read(), which pump one stream.
from microp2p.codec import cbor, varint
from microp2p.errors import DecodeError, LimitError, SCOPE_STREAM

PROTOCOL = "/microp2p/sensor/1.0.0"
MAX_REQUEST = 256
MAX_RESPONSE = 4096
OPS = ("read",)
TIMEOUT_MS = 10000


def _frame(obj, cap):
    body = cbor.encode(obj)
    if len(body) > cap:
        raise LimitError("sensor message over %d bytes" % cap, SCOPE_STREAM)
    return varint.encode(len(body)) + body


def encode_request(op="read"):
    return _frame({"op": op}, MAX_REQUEST)


def decode_request(body):
    try:
        req = cbor.decode(body, MAX_REQUEST)
    except DecodeError as e:
        raise DecodeError("sensor request: %s" % e, SCOPE_STREAM)
    if not isinstance(req, dict) or req.get("op") not in OPS:
        raise DecodeError("sensor request must be {\"op\": \"read\"}", SCOPE_STREAM)
    return req["op"]


def encode_response(status, signed):
    return _frame({"status": status, "signed": signed}, MAX_RESPONSE)


def decode_response(body):
    try:
        resp = cbor.decode(body, MAX_RESPONSE)
    except DecodeError as e:
        raise DecodeError("sensor response: %s" % e, SCOPE_STREAM)
    if not isinstance(resp, dict) or not isinstance(resp.get("status"), dict):
        raise DecodeError("sensor response without status", SCOPE_STREAM)
    s = resp.get("signed")
    if s is not None and not isinstance(s, (bytes, bytearray)):
        raise DecodeError("sensor response: signed must be bytes", SCOPE_STREAM)
    return resp


async def read_frame(st, cap):
    """One uvarint-delimited message from a stream, its length checked before it is buffered."""
    prefix = bytearray()
    n = None
    while n is None:
        b = await st.read(1)
        if not b:
            raise DecodeError("sensor stream ended", SCOPE_STREAM)
        prefix += b
        try:
            n, _ = varint.read(prefix, 0, cap)
        except DecodeError:
            raise LimitError("sensor message over %d bytes" % cap, SCOPE_STREAM)
    return await st.readexactly(n) if n else b""


async def serve(st, status_fn, signed_fn):
    """Answer one request on st: status_fn() -> dict, signed_fn() -> bytes or None."""
    decode_request(await read_frame(st, MAX_REQUEST))
    await st.write(encode_response(status_fn(), signed_fn()))
    await st.close()


async def request(st):
    """Client side over an open stream -> the decoded response."""
    await st.write(encode_request())
    resp = decode_response(await read_frame(st, MAX_RESPONSE))
    await st.close()
    return resp


def verify_signed(signed):
    """The signed reading -> (author PeerId, reading dict). AuthError if the signature fails."""
    from microp2p.codec import pb
    from microp2p.pubsub import rpc
    msg = pb.decode(signed, rpc.MESSAGE)
    pid = rpc.verify_message(msg)
    return pid, cbor.decode(msg.get("data", b""), MAX_RESPONSE), msg.get("topic")
