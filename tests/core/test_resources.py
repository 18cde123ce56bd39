# The resource manager's accounting (all runtimes): pending upgrades per listener and per IP with
# slots reserved for device links, connection slots per peer and per IP with reserved capacity
# for allow-listed peers, stream and per-protocol limits, memory budgets, trimming, drop reports.
from microp2p.errors import LimitError, SCOPE_CONNECTION, SCOPE_STREAM
from microp2p.io.resources import ResourceManager, Limits
from pairs import raises


def small():
    p = Limits()
    p.max_conns = 10
    p.reserved_conns = 3
    p.max_pending = 6
    p.reserved_pending = 2
    p.max_pending_per_listener = 4
    p.max_pending_per_ip = 2
    p.max_conns_per_ip = 3
    p.max_conns_per_peer = 2
    return p


def test_pending_per_ip_per_listener_and_reserved_for_devices():
    p = small()
    p.max_pending_per_listener = 3
    rm = ResourceManager(p)
    pub = "/ip4/0.0.0.0/tcp/4001"
    a = [rm.open_pending(pub, "10.0.0.1"), rm.open_pending(pub, "10.0.0.1")]
    e = raises(LimitError, rm.open_pending, pub, "10.0.0.1")    # per IP (2)
    assert e.scope == SCOPE_CONNECTION and "max_pending_per_ip" in str(e)
    a.append(rm.open_pending(pub, "10.0.0.2"))
    e = raises(LimitError, rm.open_pending, pub, "10.0.0.3")    # per listener (3)
    assert "max_pending_per_listener" in str(e)
    # the public listener is full, yet the device listener still gets slots, up to the system cap
    dev = "/ip4/0.0.0.0/tcp/4002"
    d = [rm.open_pending(dev, "10.0.0.1", public=False, privileged=True) for _ in range(3)]
    assert rm.pending == 6
    raises(LimitError, rm.open_pending, dev, "10.0.0.1", False, True)  # system cap (6)
    # unprivileged listeners never take the reserved pending slots
    for x in a:
        x.release()
    other = "/ip4/0.0.0.0/tcp/4003"
    b = rm.open_pending(other, "10.0.0.5")
    e = raises(LimitError, rm.open_pending, other, "10.0.0.6")   # 4 used of 6 - 2 reserved
    assert "max_pending" in str(e)
    assert rm.stats["pending_ip"] == 1 and rm.stats["pending_listener"] == 1
    assert rm.stats["pending_system"] == 2
    assert rm.drops["10.0.0.1"]["pending_ip"] == 1
    for x in a + d + [b]:
        x.release()
        x.release()  # idempotent
    assert rm.pending == 0 and not rm.pending_by_listener and not rm.pending_by_ip


def test_full_pending_pool_evicts_the_oldest_stalled_upgrade():
    p = small()
    p.max_pending_per_listener = 3
    p.pending_evict_ms = 1000
    rm = ResourceManager(p)
    talking = set()
    pub = "/ip4/0.0.0.0/tcp/4001"
    ended = []
    a = []
    for i, t in enumerate((0, 100, 200)):
        pe = rm.open_pending(pub, "10.0.0.%d" % (i + 1), now_ms=t)
        pe.evict = (lambda i=i: ended.append(i))
        pe.stalled = (lambda i=i: i not in talking)
        a.append(pe)
    raises(LimitError, rm.open_pending, pub, "10.0.0.9", True, False, 900)
    assert not rm.evict_pending(pub, 900) and not ended       # none has stalled 1000 ms yet
    assert rm.evict_pending(pub, 1150) and ended == [0]      # the oldest goes first
    assert rm.pending == 2 and rm.drops["10.0.0.1"]["pending_evicted"] == 1
    b = rm.open_pending(pub, "10.0.0.9", now_ms=1150)         # its slot is the newcomer's
    talking.add(1)                                            # a peer that sent bytes is safe
    assert rm.evict_pending(pub, 1300) and ended == [0, 2]   # the oldest silent one goes next
    assert not rm.evict_pending("/other", 5000)              # only that listener's upgrades
    # device listeners and serial links (privileged) are never evicted; nor with evict_ms 0
    d = rm.open_pending("/dev", "10.0.0.7", False, True, 0)
    d.evict = lambda: ended.append("dev")
    assert not rm.evict_pending(None, 5000) and "dev" not in ended  # only talking a[1] is left
    p.pending_evict_ms = 0
    assert not rm.evict_pending(None, 99999)
    for x in a + [b, d]:
        x.release()
    assert rm.pending == 0 and not rm.evictable


def test_connection_slots_reserved_for_allow_listed_and_pending_counted():
    rm = ResourceManager(small(), allow={"dev1", "dev2", "dev3", "dev4"})
    pub = "pub"
    conns = []
    for i in range(7):  # 10 - 3 reserved
        conns.append(rm.open_pending(pub, "10.0.1.%d" % i).promote("peer%d" % i))
    assert rm.conns == 7
    # the 8th unprivileged socket is refused already at accept: pending upgrades count as slots
    raises(LimitError, rm.open_pending, pub, "10.0.2.1")
    # allow-listed devices still get in (on the device listener, and even via a public one)
    d1 = rm.open_pending("dev", "10.0.3.1", public=False, privileged=True).promote("dev1")
    d2 = rm.open_pending("dev", "10.0.3.2", public=False, privileged=True).promote("dev2")
    d3 = rm.open_pending("dev", "10.0.3.3", public=False, privileged=True).promote("dev3")
    assert rm.conns == 10 and rm.privileged_conns == 3
    raises(LimitError, rm.open_pending, "dev", "10.0.3.4", False, True)  # never more than max_conns
    d1.close()
    assert rm.conns == 9 and rm.privileged_conns == 2
    for c in conns + [d2, d3]:
        c.close()
    assert rm.conns == 0 and not rm.peers and not rm.conns_by_ip


def test_per_peer_and_per_ip_connection_limits():
    rm = ResourceManager(small())
    a = rm.open_pending("pub", "10.0.0.1").promote("p")
    b = rm.open_pending("pub", "10.0.0.2").promote("p")
    p = rm.open_pending("pub", "10.0.0.3")
    e = raises(LimitError, p.promote, "p")
    assert "max_conns_per_peer" in str(e) and rm.pending == 0 and rm.conns == 2
    c = [rm.open_pending("pub", "10.0.0.7").promote("q%d" % i) for i in range(2)]
    c.append(rm.open_pending("pub", "10.0.0.7").promote("q2"))
    raises(LimitError, rm.open_pending("pub", "10.0.0.7").promote, "q3")  # 3 per IP
    assert rm.drops["10.0.0.7"]["conns_ip"] == 1 and rm.drops["p"]["conns_peer"] == 1
    # the device listener (not public) has no per-IP limit
    d = rm.open_pending("dev", "10.0.0.7", public=False).promote("q4")
    for x in [a, b, d] + c:
        x.close()
    assert rm.conns == 0


def test_streams_per_conn_and_per_protocol():
    p = small()
    p.max_streams_per_conn = 3
    rm = ResourceManager(p)
    c = rm.open_pending("pub", "10.0.0.1").promote("p")
    s = [c.open_stream() for _ in range(3)]
    e = raises(LimitError, c.open_stream)
    assert e.scope == SCOPE_STREAM
    s[0].set_protocol("/ipfs/id/push/1.0.0")
    s[1].set_protocol("/ipfs/id/push/1.0.0")
    raises(LimitError, s[2].set_protocol, "/ipfs/id/push/1.0.0")  # 2 concurrent pushes per peer
    s[2].set_protocol("/meshsub/1.2.0")
    s[0].close()
    s[0].close()
    s3 = c.open_stream()
    s3.set_protocol("/ipfs/id/push/1.0.0")
    assert rm.streams == 3
    c.close()
    for x in s[1:] + [s3]:
        x.close()
    assert rm.streams == 0 and not rm.peers


def test_memory_budgets_and_reservations():
    p = small()
    p.max_memory = 1000
    p.max_memory_per_peer = 600
    p.max_memory_per_conn = 500
    p.max_memory_per_stream = 300
    p.min_read_budget = 100
    rm = ResourceManager(p)
    a = rm.open_pending("pub", "10.0.0.1").promote("a")
    assert a.read_budget() == 500
    b = rm.open_pending("pub", "10.0.0.2").promote("b")
    c = rm.open_pending("pub", "10.0.0.3").promote("c")
    assert a.read_budget() == 333        # a fair share of the node's budget
    a.set_usage(400)
    assert a.over_budget() and rm.memory == 400
    s = b.open_stream()
    s.reserve(200)
    raises(LimitError, s.reserve, 101)   # per stream 300
    s.release(150)
    assert rm.memory == 450
    a.set_usage(0)
    a.close()
    s.close()
    assert rm.memory == 0
    for i in range(7):  # many connections: a fair share, never below the floor
        rm.open_pending("dev%d" % i, None, False, True).promote("d%d" % i)
    assert rm.conns == 9 and b.read_budget() == 111
    p.min_read_budget = 200
    assert b.read_budget() == 200


def test_trim_picks_the_longest_idle_unprivileged_connection():
    p = small()
    p.trim_idle_ms = 1000
    rm = ResourceManager(p, allow={"dev"})
    x = rm.open_pending("pub", "10.0.0.1").promote("x", 0)
    y = rm.open_pending("pub", "10.0.0.2").promote("y", 0)
    d = rm.open_pending("dev", None, False, True).promote("dev", 0)
    x.touch(500)
    assert rm.trim_candidate(900, [x, y, d]) is None     # nobody idle for 1 s yet
    assert rm.trim_candidate(1000, [x, y, d]) is y
    y.protected = True
    assert rm.trim_candidate(1600, [x, y, d]) is x
    assert rm.trim_candidate(1000, [d]) is None           # allow-listed devices are never trimmed
    assert rm.trim_candidate(600, [x, y, d], force=True) is x
    assert Limits.device().trim_idle_ms == 0 and rm.trim_candidate(10 ** 9, [x], False) is x


def test_drop_reports_are_bounded():
    rm = ResourceManager(small())
    for i in range(300):
        rm.count_drop("frames_dropped", "peer%d" % i, 2)
    assert len(rm.drops) <= 257 and rm.stats["frames_dropped"] == 600
    assert rm.drops["peer0"]["frames_dropped"] == 2 and rm.drops["other"]["frames_dropped"] == 88
    snap = rm.snapshot()
    assert snap["refused"]["frames_dropped"] == 600


def test_profiles_are_ordered():
    d, n, g = Limits.device(), Limits.node(), Limits.gateway()
    assert d.max_conns < n.max_conns < g.max_conns
    assert d.max_memory < n.max_memory < g.max_memory
    for p in (d, n, g):
        assert p.reserved_conns < p.max_conns and p.reserved_pending < p.max_pending
        assert p.max_pending_per_listener <= p.max_pending
