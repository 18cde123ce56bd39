# Provider store (TTL, re-provide, caps), record store (namespaces, /pk validation) and the
# server's request handler, including hostile requests.
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p.codec import pb
from microp2p.proto.kad import codec, store
from microp2p.proto.kad.store import ProviderStore, RecordStore
from microp2p.proto.kad.server import Server
from microp2p.proto.kad.table import RoutingTable, key_of
from microp2p.errors import DecodeError, LimitError, ProtocolError, SCOPE_STREAM
from kad_net import fake_id, fake_addr

H = 3600 * 1000
MH = b"\x12\x20" + bytes(range(32))
A = Multiaddr.from_string("/ip4/127.0.0.1/tcp/1")


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("expected %s" % exc.__name__)


def test_provider_expiry_and_reprovide():
    ps = ProviderStore()
    p = fake_id(1)
    assert ps.add(MH, p, [A.to_bytes()], 0)
    assert ps.get(MH, 23 * H) == [(p, [A.to_bytes()])]
    assert ps.get(MH, 47 * H) == [(p, [])]     # addresses kept 24 h, the record 48 h
    assert ps.get(MH, 48 * H) == []          # expired after 48 h
    assert len(ps) == 0
    # re-provided at 22 h: lives until 70 h
    ps.add(MH, p, [A.to_bytes()], 0)
    ps.add(MH, p, [A.to_bytes()], 22 * H)
    assert len(ps) == 1
    assert ps.get(MH, 69 * H) != []
    # addresses are served for 24 h after the last ADD_PROVIDER, the id until expiry
    assert ps.get(MH, 47 * H) == [(p, [])]
    assert ps.expire(70 * H) == 1 and len(ps) == 0 and ps.keys() == []


def test_provider_spam_from_one_peer_is_capped():
    ps = ProviderStore(max_records=1000, per_provider=10)
    spammer = fake_id(1)
    stored = 0
    for i in range(500):
        if ps.add(b"\x12\x20" + key_of(("k%d" % i).encode()), spammer, [A.to_bytes()], 0):
            stored += 1
    assert stored == 10 and len(ps) == 10 and ps.refused == 490
    # others still get in
    assert ps.add(MH, fake_id(2), [A.to_bytes()], 0)


def test_providers_per_key_and_total_caps():
    ps = ProviderStore(max_records=30, per_key=5)
    for i in range(8):
        ps.add(MH, fake_id(i), [], i)
    got = ps.get(MH, 10, limit=100)
    assert len(got) == 5 and set(p for p, _ in got) == set(fake_id(i) for i in range(3, 8))
    for i in range(100):
        ps.add(b"\x12\x20" + key_of(("x%d" % i).encode()), fake_id(100 + i), [], 0)
    assert len(ps) == 30
    # once records expire, room is made again
    assert ps.add(b"\x12\x20" + bytes(32), fake_id(999), [], 49 * H)


def test_provider_key_must_be_a_multihash():
    ps = ProviderStore()
    _raises(DecodeError, ps.add, b"not a multihash", fake_id(1), [], 0)


def _pk_record():
    k = Ed25519PrivateKey.from_seed(bytes(range(32)))
    pub = k.public_key.to_protobuf()
    pid = PeerId.from_public_key(k.public_key).to_bytes()
    return b"/pk/" + pid, pub


def test_record_store_pk_namespace():
    rs = RecordStore()
    key, value = _pk_record()
    rs.put(key, value, 0)
    assert rs.get(key, 1) == value
    assert rs.get(key, store.RECORD_TTL_MS) is None
    other = Ed25519PrivateKey.from_seed(bytes(32)).public_key.to_protobuf()
    e = _raises(DecodeError, rs.put, key, other, 0)          # key of another peer
    assert e.scope == SCOPE_STREAM
    _raises(DecodeError, rs.put, key, b"garbage", 0)
    _raises(DecodeError, rs.put, b"/pk/" + b"\x12\x20short", value, 0)


def test_record_store_rejects_unknown_namespaces():
    rs = RecordStore()
    for key in (b"/foo/bar", b"/ipns/x", b"nonamespace", b"/", b"/pk", b"//x", b"/pk/"):
        _raises(DecodeError, rs.put, key, b"v", 0)
    assert len(rs) == 0


def test_record_store_caps():
    ok = {"t": lambda k, v: None}
    rs = RecordStore(validators=ok, max_records=3, max_bytes=100)
    for i in range(3):
        rs.put(("/t/%d" % i).encode(), b"v", 0)
    _raises(LimitError, rs.put, b"/t/9", b"v", 0)
    rs.put(b"/t/0", b"w", 0)  # replacing is fine
    _raises(LimitError, rs.put, b"/t/1", b"x" * 200, 0)
    assert rs.get(b"/t/1", 0) == b"v"
    _raises(LimitError, rs.put, b"/t/2", b"x" * (store.MAX_RECORD_VALUE + 1), 0)


# ---- server ----------------------------------------------------------------------------------

def _server(n=50, peer_addrs=None):
    me = fake_id(0, b"srv")
    rt = RoutingTable(me)
    for i in range(n):
        rt.add(fake_id(i), [fake_addr(i)], 0)
    return Server(me, rt, ProviderStore(), RecordStore(), peer_addrs), rt


def _ask(srv, sender, msg, now=0):
    out = srv.handle(sender, codec.decode(codec.encode(msg)), now)
    if out is None:
        return None
    return codec.decode(codec.Reader().receive(out)[0])


def test_find_node_answers_k_closest_without_requester():
    srv, rt = _server()
    asker = fake_id(3)
    target = fake_id(77, b"t")
    r = _ask(srv, asker, codec.Message(codec.FIND_NODE, target))
    assert r.type == codec.FIND_NODE and r.key == target
    ids = [p for p, _ in r.closer]
    want = [e[0] for e in rt.closest(key_of(target), 21) if e[0] != asker][:20]
    assert ids == want and asker not in ids


def test_find_node_puts_a_known_target_first():
    dev = fake_id(5, b"device")
    dev_addr = Multiaddr.from_string("/ip4/127.0.0.1/tcp/9/p2p/" + PeerId.from_bytes(fake_id(0, b"srv")).to_base58()
                                     + "/p2p-circuit")
    srv, rt = _server(peer_addrs=lambda p: [dev_addr] if p == dev else [])
    r = _ask(srv, fake_id(3), codec.Message(codec.FIND_NODE, dev))
    assert r.closer[0] == (dev, [dev_addr]) and len(r.closer) == 20


def test_add_and_get_providers():
    srv, rt = _server()
    p = fake_id(1, b"prov")
    # a provider entry for someone else and one without addresses are ignored
    assert _ask(srv, p, codec.Message(codec.ADD_PROVIDER, MH, providers=[
        (fake_id(2, b"other"), [A]), (p, [])])) is None
    assert len(srv.providers) == 0
    assert _ask(srv, p, codec.Message(codec.ADD_PROVIDER, MH, providers=[(p, [A])])) is None
    r = _ask(srv, fake_id(9), codec.Message(codec.GET_PROVIDERS, MH), 5)
    assert r.providers == [(p, [A])] and len(r.closer) == 20


def test_put_and_get_value_echo():
    srv, rt = _server()
    key, value = _pk_record()
    req = codec.Message(codec.PUT_VALUE, key, record=(key, value))
    r = _ask(srv, fake_id(1), req)
    assert codec.encode(r) == codec.encode(req)   # go checks the echo
    r = _ask(srv, fake_id(1), codec.Message(codec.GET_VALUE, key))
    assert r.record == (key, value)
    r = _ask(srv, fake_id(1), codec.Message(codec.GET_VALUE, b"/pk/none"))
    assert r.record is None and len(r.closer) == 20


def test_hostile_requests_raise_stream_errors():
    srv, rt = _server()
    s = fake_id(1)
    cases = [
        codec.Message(codec.PUT_VALUE, b"/foo/bar", record=(b"/foo/bar", b"v")),   # unknown ns
        codec.Message(codec.PUT_VALUE, b"/pk/a", record=(b"/pk/b", b"v")),         # key mismatch
        codec.Message(codec.PUT_VALUE, b"/pk/a"),                                  # no record
        codec.Message(codec.FIND_NODE),                                            # no key
        codec.Message(codec.ADD_PROVIDER, b"junk", providers=[(s, [A])]),          # not a multihash
    ]
    for m in cases:
        e = _raises(ProtocolError, srv.handle, s, codec.decode(codec.encode(m)), 0)
        assert e.scope == SCOPE_STREAM, m
    assert len(srv.records) == 0 and len(srv.providers) == 0
