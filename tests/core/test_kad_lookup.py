# The iterative lookup over an in-memory network of 200 nodes (tests/core/kad_net.py): it finds
# the true k closest within the expected number of hops, stays within its budgets against silent
# and hostile peers, drops its own id, and provide / find-providers meet.
from microp2p.proto.kad import codec, lookup
from microp2p.proto.kad.lookup import Lookup
from microp2p.proto.kad.table import key_of
from kad_net import Network, fake_id, fake_addr

def test_200_nodes():
    # one network for every 200-node check (it takes most of a 2 MiB MicroPython heap)
    net = Network(200)
    net.fill_tables()
    _converges_to_true_closest(net)
    _device_alpha_1_also_converges(net)
    _find_peer_stops_on_target_and_own_id_dropped(net)
    _provide_then_find_providers(net)


def _converges_to_true_closest(net):
    hops = []
    for i in range(10):
        origin = net.order[i * 17]
        target = fake_id(1000 + i, b"target")
        net.messages = 0
        lk = net.lookup(origin, codec.FIND_NODE, target, alpha=3)
        assert lk.done and not lk.timed_out
        got = [p for p, _ in lk.closest()]
        want = net.true_closest(target, 20, exclude=(origin,))
        assert got == want, i
        # 200 nodes, 20 per bucket: a table knows ~85 peers, all of those sharing >= 3 bits with
        # it; the seeds' answers already hold the target's neighbourhood: 1-2 hops, 3 at most
        assert lk.rounds <= 3, lk.rounds
        assert lk.queried <= 40 and net.messages == lk.queried
        hops.append(lk.rounds)
    assert max(hops) >= 1


def _device_alpha_1_also_converges(net):
    target = fake_id(7, b"dev")
    origin = net.order[3]
    lk = net.lookup(origin, codec.FIND_NODE, target, alpha=1,
                    max_queries=lookup.MAX_QUERIES_DEVICE * 3)
    assert [p for p, _ in lk.closest()] == net.true_closest(target, 20, exclude=(origin,))


def _find_peer_stops_on_target_and_own_id_dropped(net):
    origin = net.order[0]
    target = net.order[150]
    lk = net.lookup(origin, codec.FIND_NODE, target, stop_on_target=True)
    assert lk.found == [net.nodes[target].addr]
    # the origin asked for a key near itself: its own id comes back in answers and is dropped
    lk = net.lookup(origin, codec.FIND_NODE, origin)
    assert origin not in [p for p, _ in lk.closest()]
    assert lk.closest() and len(lk.closest()) == 20


def _provide_then_find_providers(net):
    key = b"\x12\x20" + key_of(b"some content")
    lk, n = net.provide(net.order[5], key)
    assert n == 20
    holders = [p for p, _ in lk.closest()]
    assert holders == net.true_closest(key, 20, exclude=(net.order[5],))
    fp = net.lookup(net.order[99], codec.GET_PROVIDERS, key, max_providers=1)
    assert fp.done and fp.providers == [(net.order[5], [net.nodes[net.order[5]].addr])]
    # nobody provides this one: the lookup ends with none, within budget
    fp = net.lookup(net.order[99], codec.GET_PROVIDERS, b"\x12\x20" + key_of(b"nothing"))
    assert fp.done and fp.providers == [] and fp.queried <= lookup.MAX_QUERIES


def test_silent_peers_fail_by_timeout_and_lookup_ends():
    net = Network(60, salt=b"silent")
    net.fill_tables()
    for pid in net.order[1:40]:
        net.nodes[pid].silent = True
    target = fake_id(1, b"x")
    lk = Lookup(codec.FIND_NODE, target, net.order[0],
                [(e[0], e[2]) for e in net.nodes[net.order[0]].table.closest(key_of(target))],
                0, alpha=3, request_timeout_ms=1000, timeout_ms=600000)
    net.run(lk, net.order[0], 0, wave_ms=500)
    assert lk.done and not lk.timed_out
    assert lk.failed >= 1
    assert set(p for p, _ in lk.closest()) <= set(net.order[40:])


def test_peer_that_never_answers_hits_time_budget():
    me = fake_id(0, b"me")
    lk = Lookup(codec.FIND_NODE, fake_id(1, b"t"), me, [(fake_id(2, b"s"), [])], 0,
                request_timeout_ms=10 ** 9, timeout_ms=5000)
    reqs = lk.next_requests(0)
    assert len(reqs) == 1
    lk.tick(4999)
    assert not lk.done
    lk.tick(5000)
    assert lk.done and lk.timed_out and lk.closest() == []


def test_ever_closer_fake_peers_stay_within_budget():
    # every hostile answer names 20 fresh ids each closer to the target than the last
    me = fake_id(0, b"me")
    target = fake_id(1, b"target")
    made = [0]

    def fakes():
        out = []
        for _ in range(20):
            made[0] += 1
            out.append((fake_id(made[0], b"fake"), [fake_addr(made[0])]))
        return out

    lk = Lookup(codec.FIND_NODE, target, me, fakes(), 0, alpha=3, max_queries=30)
    now = 0
    while not lk.done:
        reqs = lk.next_requests(now)
        assert len(lk.waiting()) <= 3
        for pid, _, _ in reqs:
            lk.on_response(pid, codec.Message(codec.FIND_NODE, target, closer=fakes()), now)
        now += 10
        assert now < 10 ** 6
    assert lk.queried == 30
    assert len(lk._cands) <= lookup.MAX_CANDIDATES
    assert made[0] == 20 * 31


def test_responses_from_unasked_peers_and_duplicates_are_ignored():
    me = fake_id(0, b"me")
    s = fake_id(1, b"s")
    lk = Lookup(codec.FIND_NODE, fake_id(9, b"t"), me, [(s, [])], 0)
    lk.on_response(fake_id(5, b"x"), codec.Message(codec.FIND_NODE, closer=[(fake_id(6, b"x"), [])]), 0)
    assert lk.answered == 0 and len(lk._cands) == 1
    lk.next_requests(0)
    lk.on_response(s, codec.Message(codec.FIND_NODE), 1)
    lk.on_response(s, codec.Message(codec.FIND_NODE), 2)
    assert lk.answered == 1 and lk.done
    assert lk.closest() == [(s, [])]


def test_no_seeds_is_done_at_once():
    lk = Lookup(codec.FIND_NODE, b"\x12\x20" + bytes(32), fake_id(0), [], 0)
    assert lk.done and lk.next_requests(0) == []


def test_get_value_takes_first_valid_record():
    me = fake_id(0, b"me")
    a, b = fake_id(1, b"a"), fake_id(2, b"b")
    key = b"/pk/whatever"
    bad = []

    def validate(k, v):
        if v != b"good":
            bad.append(v)
            raise ValueError("bad")

    lk = Lookup(codec.GET_VALUE, key, me, [(a, []), (b, [])], 0, validate=validate)
    lk.next_requests(0)
    lk.on_response(a, codec.Message(codec.GET_VALUE, key, record=(key, b"evil")), 1)
    assert not lk.done and bad == [b"evil"]
    lk.on_response(b, codec.Message(codec.GET_VALUE, key, record=(key, b"good")), 2)
    assert lk.done and lk.record == (key, b"good")
