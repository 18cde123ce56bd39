# /microp2p/sensor/1.0.0 messages: request/response round trips, strictness and bounds, and the
# signed reading an outside peer checks (a StrictSign pubsub message by the device's key).
from microp2p.proto import sensor as sp
from microp2p.codec import cbor, pb, varint
from microp2p.pubsub import rpc
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.errors import AuthError, DecodeError, LimitError

KEY = keys.Ed25519PrivateKey.from_seed(b"\x05" * 32)
DEV = PeerId.from_public_key(KEY.public_key)


def _body(framed):
    n, pos = varint.decode(framed, 0)
    assert pos + n == len(framed)
    return framed[pos:]


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def _signed(reading):
    msg = {"from": DEV.to_bytes(), "data": cbor.encode(reading), "seqno": b"\x00" * 7 + b"\x01",
           "topic": "microp2p/readings"}
    rpc.sign_message(msg, KEY)
    return bytes(pb.encode(msg, rpc.MESSAGE))


def test_round_trip_and_verify():
    assert sp.decode_request(_body(sp.encode_request())) == "read"
    reading = {"dev": str(DEV), "seq": 7, "t": 1800000000000, "v": 21.5, "unit": "C"}
    status = {"uptime_ms": 1234, "heap_free": None, "link": "serial", "queue": 0, "drops": 2, "seq": 7}
    resp = sp.decode_response(_body(sp.encode_response(status, _signed(reading))))
    assert resp["status"] == status
    pid, got, topic = sp.verify_signed(resp["signed"])
    assert pid == DEV and got == reading and topic == "microp2p/readings"
    # no reading yet
    assert sp.decode_response(_body(sp.encode_response(status, None)))["signed"] is None


def test_tampered_reading_fails():
    s = bytearray(_signed({"v": 1}))
    s[-70] ^= 1   # inside data/seqno/topic, before the 64-byte signature
    assert _raises((AuthError, DecodeError), sp.verify_signed, bytes(s))


def test_strict_and_bounded():
    assert _raises(DecodeError, sp.decode_request, cbor.encode({"op": "write"}))
    assert _raises(DecodeError, sp.decode_request, cbor.encode(["read"]))
    assert _raises(DecodeError, sp.decode_request, b"\xff")
    assert _raises((DecodeError, LimitError), sp.decode_request, cbor.encode({"op": "read", "x": "y" * 300}))
    assert _raises(DecodeError, sp.decode_response, cbor.encode({"signed": b""}))
    assert _raises(DecodeError, sp.decode_response, cbor.encode({"status": {}, "signed": "text"}))
    assert _raises(LimitError, sp.encode_response, {"x": "y" * 5000}, None)
