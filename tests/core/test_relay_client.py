# The relay client's reservation state with a passed-in clock, against our own hop machine and
# against hand-made answers: refusals, bad vouchers, refresh timing, CONNECT and STOP answers.
from microp2p.proto.relay import codec, client, hop, voucher
from microp2p.codec import varint
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.errors import AuthError, UsageError

RELAY_KEY = keys.Ed25519PrivateKey.from_seed(b"\x01" * 32)
ME_KEY = keys.Ed25519PrivateKey.from_seed(b"\x02" * 32)
OTHER_KEY = keys.Ed25519PrivateKey.from_seed(b"\x03" * 32)
RELAY = PeerId.from_public_key(RELAY_KEY.public_key)
ME = PeerId.from_public_key(ME_KEY.public_key)
OTHER = PeerId.from_public_key(OTHER_KEY.public_key)
RELAY_ADDR = Multiaddr("/ip4/127.0.0.1/tcp/4001")
NOW = 1800000000


def _msg(framed):
    r = codec.MessageReader()
    assert r.receive(framed) == b""
    return r.message()


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    return None


def _answer(expire, limit=None, vouch=None, addrs=None):
    m = {"type": codec.STATUS, "status": codec.OK,
         "reservation": {"expire": expire, "addrs": addrs if addrs is not None else [RELAY_ADDR.to_bytes()]}}
    if vouch is not None:
        m["reservation"]["voucher"] = vouch
    if limit is not None:
        m["limit"] = limit
    return codec.decode_hop(_msg(codec.encode_hop(m)))


def test_reserve_against_our_hop():
    h = hop.Hop(RELAY_KEY)
    r = client.Reservation(ME, RELAY)
    req = codec.decode_hop(_msg(r.request()))
    assert req == {"type": codec.RESERVE} and r.state == client.PENDING
    answer, status = h.reserve(ME, "127.0.0.1", False, NOW, [RELAY_ADDR.encapsulate("/p2p/" + str(RELAY))])
    assert status == codec.OK
    evs = r.receive(codec.decode_hop(_msg(answer)), NOW)
    assert evs == [("reserved", r)] and r.state == client.ACTIVE
    assert r.expire == NOW + hop.RESERVATION_TTL_S
    assert r.voucher.peer == ME and r.voucher.relay == RELAY
    assert [str(a) for a in r.addrs] == ["/ip4/127.0.0.1/tcp/4001/p2p/%s/p2p-circuit/p2p/%s" % (RELAY, ME)]
    assert r.limit == {"duration": hop.LIMIT_DURATION_S, "data": hop.LIMIT_DATA}
    # refresh 5 min before expiry, not sooner
    assert not r.refresh_due(r.expire - client.REFRESH_BEFORE_S - 1)
    assert r.refresh_due(r.expire - client.REFRESH_BEFORE_S)
    later = r.expire - client.REFRESH_BEFORE_S
    r.request()
    answer, _ = h.reserve(ME, "127.0.0.1", False, later, [RELAY_ADDR])
    assert r.receive(codec.decode_hop(_msg(answer)), later) == [("renewed", r)]
    assert r.expire == later + hop.RESERVATION_TTL_S and r.renewals == 1
    assert not r.expired(r.expire - 1) and r.expired(r.expire)


def test_short_ttl_refreshes_at_half():
    r = client.Reservation(ME, RELAY, RELAY_ADDR)
    r.request()
    r.receive(_answer(NOW + 60, addrs=[]), NOW)
    assert r.refresh_at == NOW + 30
    # no addrs from the relay: the address we reached it at, with its /p2p
    assert [str(a) for a in r.relay_addrs] == ["/ip4/127.0.0.1/tcp/4001/p2p/" + str(RELAY)]
    assert r.limit is None


def test_refusals_and_bad_answers():
    r = client.Reservation(ME, RELAY)
    r.request()
    e = _raises(client.RelayRefused, r.receive,
                codec.decode_hop(_msg(codec.encode_hop({"type": codec.STATUS, "status": codec.RESERVATION_REFUSED}))), NOW)
    assert e is not None and e.status == codec.RESERVATION_REFUSED and r.state == client.FAILED
    cases = [
        ({"type": codec.RESERVE}, codec.RelayError),                              # not a status
        ({"type": codec.STATUS, "status": codec.OK}, codec.RelayError),           # no reservation
        (_answer(NOW), codec.RelayError),                                         # expires now
        (_answer(NOW + 10, vouch=voucher.seal(OTHER_KEY, ME, NOW + 10)), AuthError),   # not the relay
        (_answer(NOW + 10, vouch=voucher.seal(RELAY_KEY, OTHER, NOW + 10)), AuthError),  # not for us
        (_answer(NOW + 10, vouch=voucher.seal(RELAY_KEY, ME, NOW - 1)), AuthError),    # expired voucher
        (_answer(NOW + 10, vouch=b"\x0a\x01"), codec.RelayError),                 # garbage voucher
    ]
    for msg, exc in cases:
        r = client.Reservation(ME, RELAY)
        r.request()
        if isinstance(msg, dict) and "reservation" not in msg and msg.get("type") == codec.RESERVE:
            msg = codec.decode_hop(_msg(codec.encode_hop(msg)))
        assert _raises(exc, r.receive, msg, NOW) is not None, msg
        assert r.state == client.FAILED
    assert _raises(UsageError, client.Reservation(ME, RELAY).receive, _answer(NOW + 10), NOW)


def test_failed_refresh_keeps_valid_reservation():
    r = client.Reservation(ME, RELAY)
    r.request()
    r.receive(_answer(NOW + 1000, vouch=voucher.seal(RELAY_KEY, ME, NOW + 1000)), NOW)
    r.request()
    refused = codec.decode_hop(_msg(codec.encode_hop({"type": codec.STATUS, "status": codec.RESOURCE_LIMIT_EXCEEDED})))
    assert _raises(client.RelayRefused, r.receive, refused, NOW + 800)
    assert r.state == client.ACTIVE and r.refresh_at == NOW + 800 + client.RETRY_S
    r.lost()
    assert r.state == client.FAILED and r.addrs == []


def test_connect_and_stop():
    framed = client.connect_request(OTHER)
    m = codec.decode_hop(_msg(framed))
    assert m["type"] == codec.CONNECT and m["peer"]["id"] == OTHER.to_bytes()
    ok = codec.decode_hop(_msg(codec.encode_hop({"type": codec.STATUS, "status": codec.OK})))
    assert client.connect_response(ok) is None
    lim = codec.decode_hop(_msg(codec.encode_hop({"type": codec.STATUS, "status": codec.OK, "limit": {"duration": 3}})))
    assert client.connect_response(lim) == {"duration": 3}
    no = codec.decode_hop(_msg(codec.encode_hop({"type": codec.STATUS, "status": codec.NO_RESERVATION})))
    e = _raises(client.RelayRefused, client.connect_response, no)
    assert e is not None and e.status == codec.NO_RESERVATION
    # STOP: accept, refuse by policy, refuse a non-CONNECT
    h = hop.Hop(RELAY_KEY)
    stop = codec.decode_stop(_msg(h.stop_request(OTHER, {"data": 10})))
    answer, initiator, limit = client.stop_answer(stop)
    assert initiator == OTHER and limit == {"data": 10}
    assert h.stop_result(codec.decode_stop(_msg(answer))) == codec.OK
    answer, initiator, _ = client.stop_answer(stop, lambda p: p != OTHER)
    assert initiator is None and h.stop_result(codec.decode_stop(_msg(answer))) == codec.PERMISSION_DENIED
    answer, initiator, _ = client.stop_answer({"type": codec.STOP_STATUS, "status": codec.OK})
    assert initiator is None and h.stop_result(codec.decode_stop(_msg(answer))) == codec.UNEXPECTED_MESSAGE
