# Reservation vouchers: js-libp2p's own sealing (tests/interop/js_voucher.mjs, with
# @libp2p/circuit-relay-v2's ReservationVoucherRecord) must open here and ours must be the same
# bytes (Ed25519 is deterministic); then every check a client makes.
from microp2p.proto.relay import voucher
from microp2p.identity import envelope, keys
from microp2p.identity.peerid import PeerId
from microp2p.errors import AuthError, DecodeError

RELAY_KEY = keys.Ed25519PrivateKey.from_seed(b"\x01" * 32)
PEER_KEY = keys.Ed25519PrivateKey.from_seed(b"\x02" * 32)
RELAY = PeerId.from_public_key(RELAY_KEY.public_key)
PEER = PeerId.from_public_key(PEER_KEY.public_key)
EXPIRATION = 1800000000
# node tests/interop/js_voucher.mjs seal 01*32 02*32 1800000000 (js-libp2p 3.3.11, circuit-relay-v2 4.2.13)
JS_VOUCHER = bytes.fromhex(
    "0a24080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c120203021a560a2600240801"
    "12208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c12260024080112208139770ea87d175f"
    "56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941880a4a7da062a40978dc7b198cb4940a80cfad34f9205d7a83e"
    "8d7cd49860eb4fe2021ac84e60bd7977bf2611824610d203f5b1097341c708f9acf16c61739f95804eb78594a807")
# cd tests/interop/go_voucher && go run . seal 01*32 02*32 1800000000 (go-libp2p v0.51.0 record.Seal
# of circuitv2/proto.ReservationVoucher): the very same bytes as js's
GO_VOUCHER = JS_VOUCHER


def _raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc:
        return True
    return False


def test_js_vector_opens():
    assert str(RELAY) == "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
    v = voucher.open_voucher(JS_VOUCHER, RELAY, PEER, EXPIRATION - 1)
    assert v.relay == RELAY and v.peer == PEER and v.expiration == EXPIRATION


def test_seal_matches_js_and_go_bytes():
    assert voucher.seal(RELAY_KEY, PEER, EXPIRATION) == JS_VOUCHER == GO_VOUCHER


def test_checks():
    good = voucher.seal(RELAY_KEY, PEER, EXPIRATION)
    assert _raises(AuthError, voucher.open_voucher, good, PEER, None, None)          # wrong relay
    assert _raises(AuthError, voucher.open_voucher, good, RELAY, RELAY, None)        # not for us
    assert _raises(AuthError, voucher.open_voucher, good, RELAY, PEER, EXPIRATION)   # expired
    # signed by someone else but naming RELAY as the relay
    forged = envelope.seal(PEER_KEY, voucher.DOMAIN, voucher.PAYLOAD_TYPE,
                           voucher.Voucher(RELAY, PEER, EXPIRATION).payload())
    assert _raises(AuthError, voucher.open_voucher, forged)
    # a peer record envelope is not a voucher (domain differs -> signature fails)
    rec = envelope.seal_peer_record(RELAY_KEY, 1, [])
    assert _raises(AuthError, voucher.open_voucher, rec)
    # right domain, wrong payload type
    wrong = envelope.seal(RELAY_KEY, voucher.DOMAIN, b"\x03\x01", voucher.Voucher(RELAY, PEER, 1).payload())
    assert _raises(DecodeError, voucher.open_voucher, wrong)
    # payload missing a field
    part = envelope.seal(RELAY_KEY, voucher.DOMAIN, voucher.PAYLOAD_TYPE, b"\x0a\x02\x00\x00")
    assert _raises(DecodeError, voucher.open_voucher, part)
    # tampered expiration
    bad = bytearray(good)
    i = bytes(good).find(b"\x18\x80\xa4")
    bad[i + 1] ^= 1
    assert _raises(AuthError, voucher.open_voucher, bytes(bad))
    assert _raises(DecodeError, voucher.open_voucher, b"\x0a" * (voucher.MAX_VOUCHER_LEN + 1))
