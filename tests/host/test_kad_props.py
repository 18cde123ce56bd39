# Property tests (CPython only) for the Kademlia core: random bytes into the message decoder, the
# stream reader and the server's handler give only typed (stream-scope) errors; random messages
# round-trip; the routing table never exceeds k per bucket and closest() is the true order;
# a lookup against random answers always ends within its query budget.
from hypothesis import given, settings, strategies as st

from microp2p.codec.multiaddr import Multiaddr
from microp2p.errors import ProtocolError, SCOPE_STREAM
from microp2p.proto.kad import codec, lookup
from microp2p.proto.kad.lookup import Lookup
from microp2p.proto.kad.server import Server
from microp2p.proto.kad.store import ProviderStore, RecordStore
from microp2p.proto.kad.table import RoutingTable, key_of, xor, common_prefix_len

SETTINGS = settings(max_examples=300, deadline=None)
pids = st.binary(min_size=32, max_size=32).map(lambda b: b"\x12\x20" + b)
addrs = st.lists(st.tuples(st.integers(0, 255), st.integers(1, 65535)).map(
    lambda t: Multiaddr.from_string("/ip4/10.0.0.%d/tcp/%d" % t)), max_size=3)
peers = st.lists(st.tuples(pids, addrs), max_size=25, unique_by=lambda p: p[0])


@SETTINGS
@given(st.binary(max_size=2048))
def test_decode_random_bytes_only_typed_errors(b):
    try:
        codec.decode(b)
    except ProtocolError as e:
        assert e.scope == SCOPE_STREAM


@SETTINGS
@given(st.binary(max_size=4096), st.integers(1, 64))
def test_reader_and_server_random_stream(b, chunk):
    srv = Server(b"\x12\x20" + bytes(32), RoutingTable(b"\x12\x20" + bytes(32)), ProviderStore(), RecordStore())
    r = codec.Reader()
    try:
        for i in range(0, len(b), chunk):
            for body in r.receive(b[i:i + chunk]):
                srv.handle(b"\x12\x20" + bytes([1] * 32), codec.decode(body), 0)
    except ProtocolError as e:
        assert e.scope == SCOPE_STREAM


@SETTINGS
@given(st.integers(0, 4), st.binary(min_size=1, max_size=64), peers, peers,
       st.one_of(st.none(), st.tuples(st.binary(max_size=40), st.binary(max_size=200))))
def test_round_trip(t, key, closer, providers, record):
    m = codec.Message(t, key, record=record, closer=closer, providers=providers)
    d = codec.decode(codec.encode(m))
    assert (d.type, d.key, d.record) == (t, key, record)
    assert d.closer == closer and d.providers == providers


@SETTINGS
@given(pids, st.lists(pids, max_size=300, unique=True), st.integers(1, 8), pids)
def test_table_bounded_and_sorted(me, others, k, target):
    rt = RoutingTable(me, k)
    for p in others:
        rt.add(p, [], 0)
    by_bucket = {}
    for e in rt.peers():
        c = common_prefix_len(e[1], rt.local_pos)
        by_bucket[c] = by_bucket.get(c, 0) + 1
    assert all(n <= k for n in by_bucket.values()) and len(rt) == len(rt.peers())
    t = key_of(target)
    got = rt.closest(t, 10)
    assert got == sorted(rt.peers(), key=lambda e: xor(e[1], t))[:10]


@SETTINGS
@given(pids, st.lists(peers, min_size=1, max_size=80), st.integers(1, 5), st.integers(1, 40),
       st.lists(st.booleans(), min_size=1, max_size=80))
def test_lookup_ends_within_budget(target, answers, alpha, budget, fails):
    me = b"\x12\x20" + bytes(32)
    lk = Lookup(codec.FIND_NODE, target, me, answers[0], 0, alpha=alpha, max_queries=budget)
    i = 0
    now = 0
    while not lk.done:
        reqs = lk.next_requests(now)
        assert lk.in_flight <= alpha and lk.queried <= budget
        if not reqs and not lk.done:
            now += lookup.REQUEST_TIMEOUT_MS
            lk.tick(now)
            continue
        for pid, _, _ in reqs:
            if fails[i % len(fails)]:
                lk.on_failure(pid, now)
            else:
                lk.on_response(pid, codec.Message(codec.FIND_NODE, target, closer=answers[i % len(answers)]), now)
            i += 1
        now += 1
        assert now < 10 ** 7
    assert lk.queried <= budget and len(lk._cands) <= lookup.MAX_CANDIDATES
    assert me not in [p for p, _ in lk.closest()]
