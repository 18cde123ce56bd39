# Pubsub RPC codec, framing and message signing (both runtimes).
from microp2p.identity import keys, peerid
from microp2p.codec import pb
from microp2p.errors import AuthError, LimitError, ProtocolError, SCOPE_STREAM
from microp2p.pubsub import rpc as R

# Recorded from js-libp2p @libp2p/gossipsub 17.1.1 buildRawMessage (StrictSign, Ed25519 key from
# seed 0x42 * 32, topic "microp2p/test", data "hello from js"): an RPC with one message; js sets
# `key` even for Ed25519.
JS_RPC_HEX = (
    "12b8010a260024080112202152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db1212"
    "0d68656c6c6f2066726f6d206a731a0818eb3e361c95a581220d6d6963726f7032702f746573742a40d57306"
    "28e67fe6fd700a6ddaba167bb67fdcbae89746dfd013219300f8e6f5fef646a8f2c49bd14aa4425b19c03730"
    "2b050b9a5ea781378270ae34eb10a17b0b3224080112202152f8d19b791d24453242e15f2eab6cb7cffa7b6a"
    "5ed30097960e069881db12")
JS_PEER = "12D3KooWC4T1AXU2s2YBgGJ2FeaYVtsKoHZWJeubnWe9SnuSE7Zb"


def _key(n):
    sk = keys.Ed25519PrivateKey.from_seed(bytes([n] * 32))
    return sk, peerid.PeerId.from_public_key(sk.public_key)


def _signed(n=1, data=b"payload", include_key=False):
    sk, pid = _key(n)
    m = {"from": pid.to_bytes(), "data": data, "seqno": b"\x00" * 7 + b"\x05", "topic": "t"}
    return R.sign_message(m, sk, include_key), sk, pid


FULL = {
    "subscriptions": [{"subscribe": True, "topicid": "a"}, {"subscribe": False, "topicid": "b"}],
    "publish": [{"from": b"\x00\x01", "data": b"d", "seqno": b"12345678", "topic": "a",
                 "signature": b"s" * 64, "key": b"k"}],
    "control": {
        "ihave": [{"topicID": "a", "messageIDs": [b"m1", b"m2"]}],
        "iwant": [{"messageIDs": [b"m3"]}],
        "graft": [{"topicID": "a"}],
        "prune": [{"topicID": "b", "peers": [{"peerID": b"p", "signedPeerRecord": b"r"}], "backoff": 60}],
        "idontwant": [{"messageIDs": [b"m4"]}],
    },
}


def test_rpc_round_trip():
    enc = bytes(R.encode_rpc(FULL))
    dec = R.decode_rpc(enc)
    assert dec == FULL
    assert bytes(R.encode_rpc(dec)) == enc


def test_unknown_fields_skipped():
    enc = bytes(R.encode_rpc(FULL))
    # field 9 varint, field 10 bytes, field 7 in control (v1.3 extensions-like) appended
    extra = b"\x48\x05" + b"\x52\x03abc"
    dec = R.decode_rpc(enc + extra)
    assert dec == FULL
    ctl = bytes(pb.encode({"graft": [{"topicID": "x"}]}, R.CONTROL)) + b"\x3a\x02\x08\x01"
    body = b"\x1a" + bytes([len(ctl)]) + ctl
    assert R.decode_rpc(body) == {"control": {"graft": [{"topicID": "x"}]}}


def test_decode_errors_are_typed_and_stream_scoped():
    for bad in (b"\x12", b"\x12\x05ab", b"\x0a\x02\x08\x02", b"\x18\x01", b"\xff" * 11, b"\x1b"):
        try:
            R.decode_rpc(bad)
            assert False, bad
        except ProtocolError as e:
            assert e.scope == SCOPE_STREAM
    try:
        R.decode_rpc(b"\x00" * 10, max_size=5)
        assert False
    except LimitError as e:
        assert e.scope == SCOPE_STREAM


def test_frame_reader_partial_and_capped():
    bodies = [b"", b"x" * 5, b"y" * 200]
    stream = b"".join(R.frame(b) for b in bodies)
    r = R.FrameReader(1000)
    got = []
    for i in range(len(stream)):
        got += r.feed(stream[i:i + 1])
    assert got == bodies and r.buffered() == 0
    r = R.FrameReader(1000)
    assert r.feed(stream[:3]) == [b""]
    assert r.feed(stream[3:]) == bodies[1:]
    r = R.FrameReader(100)
    try:
        r.feed(b"\xc8\x01")  # 200 > 100: refused from the prefix alone
        assert False
    except LimitError as e:
        assert e.scope == SCOPE_STREAM


def test_message_frame_matches_encode_rpc():
    m = {"data": b"abc", "topic": "t"}
    enc = bytes(R.encode_message(m))
    assert R.message_frame(enc) == R.frame(R.encode_rpc({"publish": [m]}))
    big = {"data": b"z" * 300, "topic": "t"}
    enc = bytes(R.encode_message(big))
    assert R.message_frame(enc) == R.frame(R.encode_rpc({"publish": [big]}))


def test_sign_verify_inlined_key():
    m, sk, pid = _signed()
    assert "key" not in m and len(m["signature"]) == 64
    assert R.verify_message(m) == pid
    # the signature covers prefix + canonical fields 1-4
    unsigned = {"from": m["from"], "data": m["data"], "seqno": m["seqno"], "topic": m["topic"]}
    assert sk.public_key.verify(R.SIGN_PREFIX + bytes(pb.encode(unsigned, R.MESSAGE)), m["signature"])


def test_sign_verify_with_key_field():
    m, sk, pid = _signed(include_key=True)
    assert m["key"] == sk.public_key.to_protobuf()
    assert R.verify_message(m) == pid


def test_canonical_reencoding_verifies():
    m, sk, pid = _signed(2)
    # Write the fields in reverse order: not canonical on the wire, same message.
    out = bytearray()
    for f in reversed(R.MESSAGE):
        if f[1] in m:
            out += pb.encode({f[1]: m[f[1]]}, (f,))
    dec = pb.decode(out, R.MESSAGE)
    assert bytes(R.encode_message(dec)) != bytes(out)
    assert R.verify_message(dec) == pid


def test_js_signed_message_verifies():
    rpc = R.decode_rpc(bytes.fromhex(JS_RPC_HEX))
    (m,) = rpc["publish"]
    pid = R.verify_message(m)
    assert str(pid) == JS_PEER and m["data"] == b"hello from js" and m["topic"] == "microp2p/test"
    assert R.default_msg_id(m) == m["from"] + m["seqno"]
    m["data"] = b"hello from jS"
    try:
        R.verify_message(m)
        assert False
    except AuthError:
        pass


def test_wrong_key_for_from_rejected():
    m, sk, pid = _signed(3, include_key=True)
    other_sk, other = _key(4)
    m["key"] = other_sk.public_key.to_protobuf()  # a key that does not hash to `from`
    try:
        R.verify_message(m)
        assert False
    except AuthError:
        pass
    m, sk, pid = _signed(3)
    m["from"] = other.to_bytes()  # a valid signature, by someone else
    try:
        R.verify_message(m)
        assert False
    except AuthError:
        pass


def test_tampered_and_malformed_rejected():
    cases = []
    m, _, _ = _signed(5)
    m["topic"] = "u"
    cases.append(m)
    m, _, _ = _signed(5)
    m["seqno"] = b"\x05"  # not 8 bytes
    cases.append(m)
    m, _, _ = _signed(5)
    del m["signature"]
    cases.append(m)
    m, _, _ = _signed(5)
    m["from"] = b"\x00\x05hello"  # not a peer id we can take a key from
    cases.append(m)
    m, _, _ = _signed(5)
    m["from"] = b"\x12\x20" + bytes(32)  # sha256 peer id, no key field: no key to check with
    cases.append(m)
    m, _, _ = _signed(5)
    m["key"] = b"\x08\x09\x12\x01\x00"  # unsupported key type
    cases.append(m)
    m, _, _ = _signed(5)
    m["signature"] = m["signature"][:-1] + bytes([m["signature"][-1] ^ 1])
    cases.append(m)
    for m in cases:
        try:
            R.verify_message(m)
            assert False, m
        except AuthError:
            pass


def test_strict_nosign_field_rules():
    R.check_strict_nosign_fields({"data": b"x", "topic": "t"})
    for extra in ("from", "seqno", "signature", "key"):
        try:
            R.check_strict_nosign_fields({"data": b"x", "topic": "t", extra: b""})
            assert False
        except AuthError:
            pass


def test_msg_id_functions():
    m = {"from": b"F", "seqno": b"12345678", "data": b"x"}
    assert R.default_msg_id(m) == b"F12345678"
    assert len(R.content_msg_id(m)) == 32
    assert R.content_msg_id(m) == R.content_msg_id({"data": b"x"})


def test_verify_from_canonical_encoding_matches_and_rejects_tampering():
    # The router verifies with the signed part cut from the message's canonical encoding.
    for include_key in (False, True):
        m, sk, pid = _signed(3, include_key=include_key)
        enc = bytes(R.encode_message(m))
        assert R.signed_part(m, enc) == bytes(R.signing_bytes(m))
        assert R.verify_message(m, enc) == pid
        bad = dict(m)
        bad["data"] = m["data"] + b"!"
        try:
            R.verify_message(bad, bytes(R.encode_message(bad)))
            raise AssertionError("tampered message verified")
        except AuthError:
            pass
    rpc = R.decode_rpc(bytes.fromhex(JS_RPC_HEX))
    (m,) = rpc["publish"]
    assert str(R.verify_message(m, bytes(R.encode_message(m)))) == JS_PEER
