# The hop machine's policy: caps (total, per IP, allow-list), TTL, no RESERVE/CONNECT over relayed
# connections, limits for strangers and none for allow-listed peers, circuit accounting.
from microp2p.proto.relay import codec, hop
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId

RELAY_KEY = keys.Ed25519PrivateKey.from_seed(b"\x01" * 32)
NOW = 1800000000


def _pid(i):
    return PeerId(b"\x00\x24\x08\x01\x12\x20" + bytes([i]) * 32)


def _status(framed):
    r = codec.MessageReader()
    r.receive(framed)
    return codec.decode_hop(r.message())


def _cfg(**kw):
    c = hop.HopConfig()
    for k in kw:
        setattr(c, k, kw[k])
    return c


def test_caps_total_and_per_ip():
    h = hop.Hop(RELAY_KEY, _cfg(max_reservations=3, max_reservations_per_ip=2))
    assert h.reserve(_pid(1), "10.0.0.1", False, NOW, [])[1] == codec.OK
    assert h.reserve(_pid(2), "10.0.0.1", False, NOW, [])[1] == codec.OK
    assert h.reserve(_pid(3), "10.0.0.1", False, NOW, [])[1] == codec.RESERVATION_REFUSED  # per IP
    assert h.reserve(_pid(3), "10.0.0.2", False, NOW, [])[1] == codec.OK
    assert h.reserve(_pid(4), "10.0.0.3", False, NOW, [])[1] == codec.RESERVATION_REFUSED  # total
    # a refresh of a held slot is never refused by the caps
    ans, st = h.reserve(_pid(1), "10.0.0.1", False, NOW + 5, [])
    assert st == codec.OK and _status(ans)["reservation"]["expire"] == NOW + 5 + hop.RESERVATION_TTL_S
    assert len(h.reservations) == 3 and h.stats["refused"] == 2


def test_flood_is_bounded():
    h = hop.Hop(RELAY_KEY, _cfg(max_reservations=16))
    ok = 0
    for i in range(200):
        ok += h.reserve(_pid(i), "10.0.%d.%d" % (i // 250, i % 250), False, NOW, [])[1] == codec.OK
    assert ok == 16 and len(h.reservations) == 16


def test_ttl_and_disconnect():
    h = hop.Hop(RELAY_KEY, _cfg(reservation_ttl_s=10))
    h.reserve(_pid(1), None, False, NOW, [])
    h.reserve(_pid(2), None, False, NOW + 5, [])
    assert h.has_reservation(_pid(1), NOW + 9) and not h.has_reservation(_pid(1), NOW + 10)
    assert h.expire(NOW + 10) == [_pid(1)]
    h.remove(_pid(2))
    assert not h.reservations
    h.add_static(_pid(3))
    assert h.expire(NOW + 10 ** 6) == [] and h.has_reservation(_pid(3), NOW + 10 ** 6)


def test_relayed_and_allow_list_refused():
    h = hop.Hop(RELAY_KEY, _cfg(reserve_allow={_pid(1)}))
    assert h.reserve(_pid(1), None, True, NOW, [])[1] == codec.PERMISSION_DENIED   # over a circuit
    assert h.reserve(_pid(2), None, False, NOW, [])[1] == codec.PERMISSION_DENIED  # not allowed
    assert _status(h.reserve(_pid(2), None, False, NOW, [])[0]) == {"type": codec.STATUS, "status": codec.PERMISSION_DENIED}
    assert h.reserve(_pid(1), None, False, NOW, [])[1] == codec.OK
    assert h.admit(_pid(5), _pid(1), True, NOW) == (codec.PERMISSION_DENIED, None)


def test_admission_limits():
    h = hop.Hop(RELAY_KEY, _cfg(max_circuits=3, max_circuits_per_peer=2))
    assert h.admit(_pid(9), _pid(1), False, NOW)[0] == codec.NO_RESERVATION   # unknown peer
    ans, _ = h.reserve(_pid(1), None, False, NOW, [])
    assert _status(ans)["limit"] == {"duration": hop.LIMIT_DURATION_S, "data": hop.LIMIT_DATA}
    h.add_static(_pid(2))   # an allow-listed device: no limit field at all
    st, lim = h.admit(_pid(9), _pid(1), False, NOW)
    assert st == codec.OK and lim == {"duration": hop.LIMIT_DURATION_S, "data": hop.LIMIT_DATA}
    st, lim = h.admit(_pid(9), _pid(2), False, NOW)
    assert st == codec.OK and lim is None
    assert "limit" not in _status(h.connect_answer(codec.OK, lim))
    assert h.admit(_pid(9), h.peer_id, False, NOW)[0] == codec.PERMISSION_DENIED
    c1 = h.open_circuit(_pid(9), _pid(1), None, 0)
    h.open_circuit(_pid(9), _pid(2), None, 0)
    assert h.admit(_pid(9), _pid(2), False, NOW)[0] == codec.RESOURCE_LIMIT_EXCEEDED   # per peer
    h.open_circuit(_pid(8), _pid(2), None, 0)
    assert h.admit(_pid(7), _pid(1), False, NOW)[0] == codec.RESOURCE_LIMIT_EXCEEDED   # total
    h.close_circuit(c1)
    h.close_circuit(c1)   # twice is harmless
    assert h.admit(_pid(7), _pid(1), False, NOW)[0] == codec.OK
    assert h.circuits_of(_pid(9)) == 1 and h.stats["circuits"] == 3


def test_circuit_limit_accounting():
    c = hop.Circuit(1, _pid(1), _pid(2), {"duration": 2, "data": 100}, 1000)
    assert c.count(0, 60) is None and c.room(0) == 40 and c.room(1) == 100
    assert c.count(0, 40) is None
    assert "data limit" in c.count(0, 1)
    assert c.check(2999) is None and "duration" in c.check(3000)
    free = hop.Circuit(2, _pid(1), _pid(2), None, 0)
    assert free.count(1, 10 ** 9) is None and free.room(1) == -1 and free.check(10 ** 9) is None
