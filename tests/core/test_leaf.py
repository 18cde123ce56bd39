# The leaf gossipsub client (pubsub/leaf.py) against the full GossipSub router, in memory, signed
# (StrictSign) both ways: subscribe/publish/receive, GRAFT/PRUNE handling with backoff, validation
# failures, the bounded seen cache, replay of own messages. Runs on every runtime.
from microp2p.identity import keys, peerid
from microp2p.pubsub import rpc as R
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
from microp2p.pubsub.leaf import LeafSub, LeafConfig, MAX_SEEN, HASH_LEN, PRUNE_BACKOFF_MS, id_hash

T = "sensors"


def ident(seed):
    sk = keys.Ed25519PrivateKey.from_seed(bytes([seed] * 32))
    return sk, peerid.PeerId.from_public_key(sk.public_key)


class Pair:
    """Routers wired together in memory: frames queued by one are fed to the other."""

    def __init__(self, n_full=1, proto=R.MESHSUB_V12):
        self.now = 0
        sk, pid = ident(1)
        cfg = LeafConfig()
        cfg.seqno_start = 0  # our messages are seqno 1, 2, ...
        self.leaf = LeafSub(pid, sk, cfg, 0)
        self.ids = [pid]
        self.routers = [self.leaf]
        for i in range(n_full):
            sk, pid = ident(10 + i)
            cfg = GossipSubConfig(scoring=False)
            self.routers.append(GossipSub(pid, sk, cfg, 0))
            self.ids.append(pid)
        self.events = [[] for _ in self.routers]
        self.proto = proto
        self.drop = None

    def connect(self, i, j):
        self.routers[i].add_peer(self.ids[j], self.proto, True)
        self.routers[j].add_peer(self.ids[i], self.proto, False)

    def pump(self):
        moved = True
        n = 0
        while moved:
            moved = False
            for i, r in enumerate(self.routers):
                for pid, f in r.outgoing():
                    moved = True
                    n += 1
                    assert n < 10000, "did not go quiet"
                    j = self.ids.index(pid)
                    if self.drop is not None and self.drop(i, j, f):
                        continue
                    self.events[j] += self.routers[j].feed(self.ids[i], f, self.now)

    def advance(self, ms, step=100):
        end = self.now + ms
        while self.now < end:
            self.now += step
            for i, r in enumerate(self.routers):
                self.events[i] += r.tick(self.now)
            self.pump()

    def got(self, i, kind="message"):
        return [e for e in self.events[i] if e[0] == kind]


def meshed_pair(n_full=1):
    p = Pair(n_full)
    for j in range(1, n_full + 1):
        p.connect(0, j)
    for r in p.routers:
        r.subscribe(T)
    p.pump()
    p.advance(2000)
    return p


def test_subscribe_publish_receive_signed_both_ways():
    p = meshed_pair()
    leaf, full = p.routers
    assert p.ids[1] in leaf.mesh_peers(T)
    assert p.ids[0] in full.mesh_peers(T)
    mid = leaf.publish(T, b"reading 1", p.now)
    p.pump()
    got = p.got(1)
    assert [e[2]["data"] for e in got] == [b"reading 1"]
    assert got[0][2]["id"] == mid and got[0][2]["from"] == p.ids[0].to_bytes()
    R.verify_message(got[0][2])  # signed under StrictSign, checkable by anyone
    full.publish(T, b"command", p.now)
    p.pump()
    assert [e[2]["data"] for e in p.got(0)] == [b"command"]
    assert p.got(0)[0][2]["peer"] == p.ids[1]


def test_own_message_echo_is_a_duplicate():
    p = meshed_pair()
    leaf = p.leaf
    leaf.publish(T, b"x", p.now)
    frames = [f for _, f in p.routers[0].outgoing()]
    p.events[0] += leaf.feed(p.ids[1], frames[0], p.now)  # the gateway echoes our frame back
    assert leaf.stats.get("duplicates") == 1
    assert not p.got(0, "rejected")


def test_forwarding_to_the_other_mesh_peer_exactly_once():
    p = meshed_pair(2)
    leaf, a, b = p.routers
    # both full routers grafted the leaf (their D is 6) and the leaf accepts up to two
    assert leaf.mesh_peers(T) == {p.ids[1], p.ids[2]}
    a.publish(T, b"from a", p.now)
    p.pump()
    assert [e[2]["data"] for e in p.got(0)] == [b"from a"]
    # the two full routers know each other only through the leaf, which forwarded it once
    assert [e[2]["data"] for e in p.got(2)] == [b"from a"]
    assert leaf.peers[p.ids[2]].msgs_sent == 1 and leaf.peers[p.ids[1]].msgs_sent == 0


def test_mesh_is_kept_between_one_and_two_peers():
    p = meshed_pair(4)
    leaf = p.leaf
    p.advance(5000)
    m = leaf.mesh_peers(T)
    assert len(m) == 2, m
    # every full router agrees: the ones outside our mesh were pruned and keep us out
    for j in range(1, 5):
        assert (p.ids[0] in p.routers[j].mesh_peers(T)) == (p.ids[j] in m)
    assert leaf.stats["graft_refused"] >= 2

def test_graft_beyond_two_is_pruned_with_backoff_and_backoff_is_respected():
    p = Pair(3)
    for j in (1, 2, 3):
        p.connect(0, j)
    leaf = p.leaf
    leaf.subscribe(T)
    p.pump()
    sub = bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]}))
    graft = bytes(R.encode_rpc({"control": {"graft": [{"topicID": T}]}}))
    for j in (1, 2, 3):
        leaf.receive_rpc(p.ids[j], sub, 0)
    for r in p.routers[1:]:
        r.outgoing()
    leaf.outgoing()
    for j in (1, 2, 3):
        leaf.receive_rpc(p.ids[j], graft, 0)
    assert len(leaf.mesh_peers(T)) == 2
    out = leaf.outgoing()
    prunes = []
    for pid, f in out:
        n, q = R.varint.read(f, 0)
        rpc = R.decode_rpc(f[q:q + n])
        for pr in rpc.get("control", {}).get("prune", []):
            prunes.append((pid, pr))
    assert len(prunes) == 1, prunes
    pid, pr = prunes[0]
    assert pr["topicID"] == T and pr["backoff"] == PRUNE_BACKOFF_MS // 1000
    assert pid not in leaf.mesh_peers(T)
    # the refused peer grafts again during the backoff: pruned again, still out of the mesh
    leaf.receive_rpc(pid, graft, 1000)
    assert pid not in leaf.mesh_peers(T)
    assert leaf.stats["graft_refused"] == 2
    # a mesh peer prunes us with its backoff: we drop it and do not graft it back before then
    other = [q for q in leaf.mesh_peers(T)][0]
    prune = bytes(R.encode_rpc({"control": {"prune": [{"topicID": T, "backoff": 30}]}}))
    ev = leaf.receive_rpc(other, prune, 2000)
    assert ("prune", other, T) in ev
    assert other not in leaf.mesh_peers(T)
    leaf.heartbeat(3000)
    leaf.heartbeat(20000)
    assert other not in leaf.mesh_peers(T)
    # the mesh stays filled from peers not backing off
    assert 1 <= len(leaf.mesh_peers(T)) <= 2
    leaf.heartbeat(2000 + 30000 + 3000)
    leaf.outgoing()


def test_graft_for_a_topic_we_are_not_in_is_ignored():
    p = Pair(1)
    p.connect(0, 1)
    leaf = p.leaf
    graft = bytes(R.encode_rpc({"control": {"graft": [{"topicID": "other"}]}}))
    assert leaf.receive_rpc(p.ids[1], graft, 0) == []
    assert leaf.mesh_peers("other") == set()


def _signed_msg(sk, pid, data, seqno=1, topic=T):
    msg = {"from": pid.to_bytes(), "data": data, "seqno": seqno.to_bytes(8, "big"), "topic": topic}
    return R.sign_message(msg, sk)


def _rpc_with(msg):
    return bytes(R.encode_rpc({"publish": [msg]}))


def test_validation_failures_are_rejected_and_do_not_block_the_real_message():
    p = meshed_pair()
    leaf = p.leaf
    sk, pid = ident(10)
    good = _signed_msg(sk, pid, b"real")
    forged = dict(good)
    forged["data"] = b"forged"
    ev = leaf.receive_rpc(p.ids[1], _rpc_with(forged), p.now)
    assert [e[3] for e in ev if e[0] == "rejected"] == ["bad signature"]
    unsigned = {"data": b"x", "topic": T}
    ev = leaf.receive_rpc(p.ids[1], _rpc_with(unsigned), p.now)
    assert [e[0] for e in ev] == ["rejected"]
    short = dict(good)
    short["seqno"] = b"\x01"
    ev = leaf.receive_rpc(p.ids[1], _rpc_with(short), p.now)
    assert [e[0] for e in ev] == ["rejected"]
    big = _signed_msg(sk, pid, b"z" * 5000, 2)
    ev = leaf.receive_rpc(p.ids[1], bytes(R.encode_rpc({"publish": [big]})), p.now)
    assert [e[0] for e in ev] == ["rejected"]
    ev = leaf.receive_rpc(p.ids[1], _rpc_with(good), p.now)
    assert [e[0] for e in ev] == ["message"] and ev[0][2]["data"] == b"real"
    ev = leaf.receive_rpc(p.ids[1], _rpc_with(good), p.now)
    assert ev == [] and leaf.stats["duplicates"] == 1
    # a topic we are not subscribed to: dropped, not delivered
    ev = leaf.receive_rpc(p.ids[1], _rpc_with(_signed_msg(sk, pid, b"o", 3, "nope")), p.now)
    assert ev == []


def test_garbled_rpc_is_a_stream_error():
    from microp2p.errors import ProtocolError, SCOPE_STREAM
    p = Pair(1)
    p.connect(0, 1)
    try:
        p.leaf.feed(p.ids[1], b"\x05\xff\xff\xff\xff\xff", 0)
    except ProtocolError as e:
        assert e.scope == SCOPE_STREAM
    else:
        assert False, "garbled RPC accepted"


def test_seen_cache_is_bounded():
    p = meshed_pair()
    leaf = p.leaf
    for i in range(MAX_SEEN + 40):
        leaf.publish(T, b"m%d" % i, p.now)
        leaf.outgoing()
    assert len(leaf.seen) == MAX_SEEN * HASH_LEN  # a fixed ring: it never grows
    assert len(leaf._own_recent) == leaf.config.own_replay_max
    # the oldest ids were forgotten, the newest are remembered
    assert not leaf.seen_has(id_hash(leaf.local_bytes + (2).to_bytes(8, "big")))
    assert leaf.seen_has(id_hash(leaf.local_bytes + (41).to_bytes(8, "big")))
    last = leaf.local_bytes + bytes(leaf._seqno)
    assert bytes(leaf._seqno) == (MAX_SEEN + 40).to_bytes(8, "big")
    assert leaf.seen_has(id_hash(last))
    assert not leaf._seen_add(last)


def test_seen_ring_ignores_matches_across_slots():
    p = Pair(1)
    leaf = p.leaf
    a = id_hash(b"a")
    b = id_hash(b"b")
    leaf.seen[0:4] = a
    leaf.seen[4:8] = b
    assert leaf.seen_has(a) and leaf.seen_has(b)
    assert not leaf.seen_has(a[2:] + b[:2])  # present in the bytes, but across two slots
    assert id_hash(b"x") != bytes(4)


def test_replay_own_sends_the_same_bytes_and_peers_drop_copies():
    p = meshed_pair()
    leaf, full = p.routers
    leaf.publish(T, b"r1", p.now)
    p.pump()
    p.drop = lambda i, j, f: True
    leaf.publish(T, b"r2", p.now)
    p.pump()
    p.drop = None
    assert leaf.replay_own(0, p.now) == 2
    p.pump()
    assert sorted(e[2]["data"] for e in p.got(1)) == [b"r1", b"r2"]
    assert leaf.replay_own(p.now + 1, p.now) == 0


def test_floodsub_peer_gets_our_messages_and_theirs_reach_us():
    p = Pair(1, proto=R.FLOODSUB)
    from microp2p.pubsub.floodsub import FloodSub
    sk, pid = ident(20)
    p.routers[1] = FloodSub(pid, sk, None, 0)
    p.ids[1] = pid
    p.connect(0, 1)
    for r in p.routers:
        r.subscribe(T)
    p.pump()
    assert p.leaf.mesh_peers(T) == set()  # floodsub peers are never grafted
    p.leaf.publish(T, b"to flood", 0)
    p.pump()
    assert [e[2]["data"] for e in p.got(1)] == [b"to flood"]
    p.routers[1].publish(T, b"from flood", 0)
    p.pump()
    assert [e[2]["data"] for e in p.got(0)] == [b"from flood"]


def test_unsubscribe_prunes_mesh_peers():
    p = meshed_pair()
    leaf, full = p.routers
    leaf.unsubscribe(T)
    p.pump()
    assert p.ids[0] not in full.mesh_peers(T)
    assert p.ids[0] not in full.topic_peers(T)


class Hub(Pair):
    """A full router (index 0, a gateway) with n leaves and one outside full router (last)."""

    def __init__(self, n_leaves, direct):
        self.now = 0
        self.drop = None
        self.proto = R.MESHSUB_V12
        sk, pid = ident(90)
        self.routers = [GossipSub(pid, sk, GossipSubConfig(scoring=False), 0)]
        self.ids = [pid]
        for i in range(n_leaves):
            sk, pid = ident(100 + i)
            self.routers.append(LeafSub(pid, sk, LeafConfig(), 0))
            self.ids.append(pid)
            if direct:
                self.routers[0].set_direct(pid)
        sk, pid = ident(91)
        self.routers.append(GossipSub(pid, sk, GossipSubConfig(scoring=False), 0))
        self.ids.append(pid)
        self.events = [[] for _ in self.routers]
        for j in range(1, len(self.routers)):
            self.connect(0, j)
        for r in self.routers:
            r.subscribe(T)
        self.pump()
        self.advance(3000)


def _hub_delivery(direct):
    h = Hub(16, direct)
    out = len(h.routers) - 1
    h.routers[out].publish(T, b"command to every device", h.now)
    h.pump()
    h.advance(2000)
    got = [len(h.got(i)) for i in range(1, out)]
    sent = sum(1 for i in range(1, out) if h.routers[0].peers[h.ids[i]].msgs_sent)
    return got, len(h.routers[0].mesh_peers(T)), sent


def test_hub_pushes_every_message_to_its_direct_leaves():
    # 16 leaves > Dhi: the hub's mesh cannot hold them all, and leaves take no gossip, so without
    # direct forwarding some leaves never see a message that reached the hub
    got, mesh, _ = _hub_delivery(False)
    assert mesh <= GossipSubConfig().Dhi and got.count(0) >= 1, (mesh, got)
    got, mesh, sent = _hub_delivery(True)
    assert got == [1] * 16, got          # each leaf exactly once
    assert sent == 16
