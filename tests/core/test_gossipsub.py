# Gossipsub router tests on the in-memory network (both runtimes). Most use StrictNoSign to keep
# MicroPython fast; test_signed_* cover the StrictSign path end to end.
from microp2p.errors import LimitError, ProtocolError, UsageError
from microp2p.pubsub import rpc as R
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
from microp2p.pubsub.router import ACCEPT, REJECT, IGNORE, PENDING
from microp2p.pubsub.score import PeerScoreParams
from pubsub_net import Net, nosign_config, node_id, is_message_frame, body_of

T = "topic"


def ctl_rpc(**ctl):
    return bytes(R.encode_rpc({"control": ctl}))


def msg_rpc(data, topic=T):
    return bytes(R.encode_rpc({"publish": [{"data": data, "topic": topic}]}))


def pair(cfg_a=None, cfg_b=None, proto=R.MESHSUB_V12):
    """Router A with one remote peer B driven by hand (B's RPCs are injected)."""
    a = GossipSub(b"A", None, cfg_a or nosign_config(), 0)
    b = node_id(1)
    a.add_peer(b, proto, True)
    a.subscribe(T)
    a.receive_rpc(b, bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), 0)
    a.outgoing()
    return a, b


def test_mesh_forms_to_degree():
    net = Net(16, seed=3)
    net.connect_all()
    net.subscribe_all(T)
    net.advance(5000)
    c = net.routers[0].config
    for i, r in enumerate(net.routers):
        m = r.mesh_peers(T)
        assert c.Dlo <= len(m) <= c.Dhi, (i, len(m))
        for p in m:  # mesh links are symmetric once settled
            assert net.ids[i] in net.routers[net.index[p]].mesh_peers(T)


def test_messages_reach_all_exactly_once():
    net = Net(20, seed=5)
    net.connect_random(4)
    net.subscribe_all(T)
    net.advance(3000)
    mids = []
    for k in range(6):
        src = (k * 7) % 20
        mids.append((src, net.publish(src, T, b"msg-%02d-payload" % k)))
    for i in range(20):
        got = [e[2]["id"] for e in net.received(i)]
        want = [mid for src, mid in mids if src != i]
        assert sorted(got) == sorted(want), (i, len(got), len(want))
        for e in net.received(i):
            assert e[1] == T


def test_ihave_iwant_repairs_dropped_messages():
    def cfg(i):
        c = nosign_config()
        c.D, c.Dlo, c.Dhi, c.Dlazy, c.Dout, c.Dscore = 2, 1, 3, 6, 0, 0
        c.flood_publish = False
        return c
    net = Net(10, config_fn=cfg, seed=7)
    net.connect_all()
    net.subscribe_all(T)
    net.advance(3000)
    victim = 9
    net.drop = lambda s, d, f: d == victim and is_message_frame(f)
    net.publish(0, T, b"lost-on-push-000")
    assert net.received(victim) == []
    # From now on only pushes are lost: a message frame reaches the victim only from a peer it
    # asked with IWANT, so the copy must come back through IHAVE -> IWANT. (Routers forward on
    # their next tick too, so without this a late push could stand in for the repair.)
    sent_iwant = []

    def drop(s, d, f):
        if d == victim and is_message_frame(f):
            return s not in sent_iwant
        b = R.decode_rpc(body_of(f))
        if s == victim and "iwant" in b.get("control", {}):
            sent_iwant.append(d)
        return False
    net.drop = drop
    net.advance(2000)
    got = net.received(victim)
    assert len(got) == 1 and got[0][2]["data"] == b"lost-on-push-000"
    assert sent_iwant
    assert all(len(net.received(i)) == 1 for i in range(1, 10))


def test_backoff_honoured_after_unsubscribe():
    net = Net(2, seed=11)
    net.connect(0, 1)
    net.subscribe_all(T)
    net.advance(2000)
    a, b = net.routers
    assert net.ids[1] in a.mesh_peers(T)
    b.unsubscribe(T)
    net.pump()
    assert net.ids[1] not in a.mesh_peers(T)
    b.subscribe(T)
    net.pump()
    # Both sides back off (10 s unsubscribe backoff, plus slack): no re-graft for a while ...
    net.advance(9000)
    assert net.ids[1] not in a.mesh_peers(T) and net.ids[0] not in b.mesh_peers(T)
    # ... and then the mesh heals.
    net.advance(20000)
    assert net.ids[1] in a.mesh_peers(T) and net.ids[0] in b.mesh_peers(T)


def test_graft_during_backoff_is_penalised_and_pruned():
    a, b = pair()
    a.heartbeat(1000)
    a.outgoing()
    assert b in a.mesh_peers(T)
    a.receive_rpc(b, ctl_rpc(prune=[{"topicID": T, "backoff": 60}]), 1000)
    assert b not in a.mesh_peers(T)
    assert a.backoff[T][b] == 61000
    a.receive_rpc(b, ctl_rpc(graft=[{"topicID": T}]), 2000)
    assert b not in a.mesh_peers(T)
    out = [R.decode_rpc(body_of(f)) for p, f in a.outgoing()]
    prunes = [pr for o in out for pr in o.get("control", {}).get("prune", [])]
    assert prunes and prunes[0]["topicID"] == T and prunes[0]["backoff"] == 60
    assert a.stats["graft_during_backoff"] == 1
    # early GRAFT (inside the flood threshold): double P7 penalty, and the score goes negative
    assert a.score.stats[b].behaviour_penalty == 2
    assert a.peer_score(b) < 0
    # our own heartbeats never re-graft it while the backoff runs
    for t in range(3000, 60000, 1000):
        a.heartbeat(t)
    assert b not in a.mesh_peers(T)


def test_scoring_penalises_invalid_and_graylists():
    a, b = pair()
    a.add_validator(T, lambda topic, m, frm: REJECT if m["data"].startswith(b"bad") else ACCEPT)
    a.heartbeat(1000)
    assert b in a.mesh_peers(T)
    ev = a.receive_rpc(b, msg_rpc(b"good-0"), 1000)
    assert [e[0] for e in ev] == ["message"]
    s0 = a.peer_score(b)
    for k in range(3):  # P4 = -10 * n^2: three invalid messages pass the -80 graylist line
        ev = a.receive_rpc(b, msg_rpc(b"bad-%d" % k), 1100 + k)
        assert ev and ev[0][0] == "rejected"
    s1 = a.peer_score(b)
    assert s1 < s0 and s1 < a.graylist_threshold, (s0, s1)
    # graylisted: the whole RPC is ignored, valid messages included
    ev = a.receive_rpc(b, msg_rpc(b"good-1"), 1200)
    assert ev == [] and a.stats["graylisted_rpcs"] == 1
    # and the next heartbeat drops it from the mesh (negative score), without PX
    a.heartbeat(2000)
    assert b not in a.mesh_peers(T)


def test_invalid_signature_penalised_not_marked_seen():
    from microp2p.identity import keys, peerid
    sk = keys.Ed25519PrivateKey.from_seed(bytes([7] * 32))
    pid = peerid.PeerId.from_public_key(sk.public_key)
    cfg = GossipSubConfig()
    me = keys.Ed25519PrivateKey.from_seed(bytes([8] * 32))
    a = GossipSub(peerid.PeerId.from_public_key(me.public_key), me, cfg, 0)
    a.add_peer(pid, R.MESHSUB_V11, True)
    a.subscribe(T)
    m = {"from": pid.to_bytes(), "data": b"x", "seqno": bytes(8), "topic": T}
    R.sign_message(m, sk)
    good = dict(m)
    m["data"] = b"y"  # forged content, same id
    ev = a.receive_rpc(pid, bytes(R.encode_rpc({"publish": [m]})), 10)
    assert ev[0][0] == "rejected" and a.score.stats[pid].topics[T].invalid_deliveries == 1
    ev = a.receive_rpc(pid, bytes(R.encode_rpc({"publish": [good]})), 20)
    assert [e[0] for e in ev] == ["message"] and ev[0][2]["data"] == b"x"


def test_idontwant_reduces_duplicates():
    counts = {}
    for proto in (R.MESHSUB_V11, R.MESHSUB_V12):
        net = Net(14, proto=proto, seed=13)
        net.connect_random(5)
        net.subscribe_all(T)
        net.advance(3000)
        net.msg_frames = 0
        for k in range(4):
            net.publish((k * 5) % 14, T, (b"big-%02d-" % k) + bytes(1200))
        for i in range(14):
            assert len(net.received(i)) == (4 if i not in (0, 5, 10, 1) else 3), i
        counts[proto] = net.msg_frames
    assert counts[R.MESHSUB_V12] < counts[R.MESHSUB_V11], counts


def test_idontwant_honoured_and_bounded():
    a, b = pair()
    a.heartbeat(1000)
    a.outgoing()
    a.receive_rpc(b, ctl_rpc(idontwant=[{"messageIDs": [b"skip-me-00000000"]}]), 1000)
    c = node_id(2)
    a.add_peer(c, R.MESHSUB_V12, True)
    a.receive_rpc(c, msg_rpc(b"skip-me-00000000"), 1001)
    assert [p for p, f in a.outgoing() if is_message_frame(f)] == []  # b is the only other mesh peer
    ids = [b"id-%06d" % k for k in range(3000)]
    for k in range(0, 3000, 10):
        a.receive_rpc(b, ctl_rpc(idontwant=[{"messageIDs": ids[k:k + 10]}]), 1002)
    assert len(a.peers[b].dont_send) <= a.config.max_dont_send
    for t in range(2000, 6000, 1000):
        a.heartbeat(t)
    assert len(a.peers[b].dont_send) == 0  # TTL of 3 heartbeats


def test_subscription_flood_hits_caps():
    cfg = nosign_config()
    cfg.max_topics_per_peer = 50
    cfg.max_topics_total = 80
    a = GossipSub(b"A", None, cfg, 0)
    peers = [node_id(i) for i in range(3)]
    for p in peers:
        a.add_peer(p, R.MESHSUB_V11)
    for p in peers:
        subs = [{"subscribe": True, "topicid": "%s/%d" % (p, k)} for k in range(400)]
        a.receive_rpc(p, bytes(R.encode_rpc({"subscriptions": subs})), 0)
        assert len(a.peers[p].topics) <= 50
    assert len(a.topics) <= 80
    assert a.stats["subscriptions_over_cap"] >= 3 * 400 - 80
    # any repeated field past MAX_RPC_ITEMS fails the decode (empty ids keep this cheap)
    too_many = ctl_rpc(idontwant=[{"messageIDs": [b""] * (R.MAX_RPC_ITEMS + 1)}])
    try:
        a.receive_rpc(peers[0], too_many, 0)
        assert False
    except LimitError:
        pass
    # unsubscribe frees the slots
    a.receive_rpc(peers[0], bytes(R.encode_rpc({"subscriptions": [
        {"subscribe": False, "topicid": t} for t in list(a.peers[peers[0]].topics)]})), 0)
    assert len(a.peers[peers[0]].topics) == 0


def test_iwant_flood_hits_caps():
    a, b = pair()
    mid = a.publish(T, b"cached-message-0", 10)
    a.outgoing()
    served = 0
    for k in range(10):
        a.receive_rpc(b, ctl_rpc(iwant=[{"messageIDs": [mid]}]), 20 + k)
        served += sum(1 for p, f in a.outgoing() if is_message_frame(f))
    assert served == a.config.gossip_retransmission == 3
    # many ids in one heartbeat: bounded by max_iwant_served
    a.config.max_iwant_served = 5
    for k in range(20):
        a.publish(T, b"cached-%09d" % k, 30)
    a.outgoing()
    ids = a.mcache.gossip_ids(T)
    a.heartbeat(1000)
    a.outgoing()
    a.receive_rpc(b, ctl_rpc(iwant=[{"messageIDs": ids}]), 1001)
    assert sum(1 for p, f in a.outgoing() if is_message_frame(f)) == 5
    assert a.stats["iwant_over_cap"] == 1


def test_ihave_flood_hits_caps():
    cfg = nosign_config()
    cfg.max_ihave_length = 500  # go's 5000 works the same, but this runs on a 2 MB heap too
    a, b = pair(cfg)
    ids = [b"ihave-%06d" % k for k in range(700)]
    a.receive_rpc(b, ctl_rpc(ihave=[{"topicID": T, "messageIDs": ids[:350]},
                                    {"topicID": T, "messageIDs": ids[350:]}]), 10)
    asked = [mid for p, f in a.outgoing() for iw in R.decode_rpc(body_of(f)).get("control", {}).get("iwant", []) for mid in iw["messageIDs"]]
    assert len(asked) == 500 and len(set(asked)) == 500 and set(asked) <= set(ids)
    a.receive_rpc(b, ctl_rpc(ihave=[{"topicID": T, "messageIDs": [b"one-more-id"]}]), 11)
    assert a.outgoing() == []  # iasked budget spent for this heartbeat
    for k in range(12):
        a.receive_rpc(b, ctl_rpc(ihave=[{"topicID": "other", "messageIDs": [b"z"]}]), 12)
    assert a.peers[b].ihave_count == 14
    # broken promise: the peer never delivered what it advertised -> P7 after the follow-up time
    a.heartbeat(1000)
    a.heartbeat(5000)
    assert a.score.stats[b].behaviour_penalty > 0.9  # 1, decayed once


def test_oversized_messages_and_frames():
    cfg = nosign_config()
    cfg.max_message_size = 100
    cfg.max_rpc_size = 2000
    a, b = pair(cfg)
    ev = a.receive_rpc(b, msg_rpc(b"x" * 101), 10)
    assert ev[0][0] == "rejected" and ev[0][3] == "oversized"
    try:
        a.feed(b, R.varint.encode(2001), 11)  # rejected from the length prefix alone
        assert False
    except LimitError as e:
        assert e.scope == 1
    try:
        a.publish(T, b"y" * 101, 12)
        assert False
    except UsageError:
        pass


def test_memory_stays_bounded_under_message_flood():
    cfg = nosign_config(device=True)
    a = GossipSub(b"A", None, cfg, 0)
    peers = [node_id(i) for i in range(3)]
    for p in peers:
        a.add_peer(p, R.MESHSUB_V12, True)
        a.receive_rpc(p, bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), 0)
    a.subscribe(T)
    now = 0
    for hb in range(30):
        now += 1000
        for k in range(40):
            body = bytes(R.encode_rpc({"publish": [{"data": b"m%05d-%03d-......" % (hb, k), "topic": T}]}))
            try:
                a.receive_rpc(peers[k % 3], body, now)
            except ProtocolError:
                assert False
        a.tick(now)  # the driver never drains outgoing(): queues must still be capped
    assert len(a.seen) <= cfg.max_seen
    assert len(a.mcache) <= cfg.max_mcache_entries
    for p in peers:
        q = a.peers[p]
        assert len(q.queue) <= cfg.max_peer_queue + 4 and q.queue_bytes <= cfg.max_peer_queue_bytes
    assert a.stats["dropped_frames"] > 0
    assert a.stats["delivered"] <= 30 * 40


def test_rate_and_per_rpc_message_caps():
    cfg = nosign_config()
    cfg.max_messages_per_rpc = 5
    cfg.max_peer_messages_per_heartbeat = 8
    a, b = pair(cfg)
    msgs = [{"data": b"r%03d" % k, "topic": T} for k in range(7)]
    ev = a.receive_rpc(b, bytes(R.encode_rpc({"publish": msgs})), 10)
    assert len(ev) == 5 and a.stats["messages_over_rpc_cap"] == 2
    msgs = [{"data": b"s%03d" % k, "topic": T} for k in range(5)]
    ev = a.receive_rpc(b, bytes(R.encode_rpc({"publish": msgs})), 20)
    assert len(ev) == 3 and a.stats["messages_over_rate_cap"] == 2
    a.heartbeat(1000)
    ev = a.receive_rpc(b, msg_rpc(b"t-after-heartbeat"), 1001)
    assert len(ev) == 1


def test_async_validation_pending_then_reported():
    a, b = pair()
    a.heartbeat(1000)
    c = node_id(2)
    a.add_peer(c, R.MESHSUB_V12, True)
    a.receive_rpc(c, bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), 1000)
    a.heartbeat(2000)
    a.outgoing()
    assert a.mesh_peers(T) == {b, c}
    a.add_validator(T, lambda t, m, frm: PENDING)
    assert a.receive_rpc(b, msg_rpc(b"pending-0"), 2001) == []
    assert [f for p, f in a.outgoing() if is_message_frame(f)] == []
    mid = b"pending-0"
    ev = a.report_validation(mid, ACCEPT, 2002)
    assert [e[0] for e in ev] == ["message"]
    assert [p for p, f in a.outgoing() if is_message_frame(f)] == [c]  # forwarded, not back to b
    assert a.report_validation(mid, ACCEPT, 2003) == []  # already settled
    # the queue is bounded, and the overflow is dropped without a penalty
    a.config.max_pending_validations = 2
    for k in range(4):
        a.receive_rpc(b, msg_rpc(b"pending-%d" % (k + 1)), 2010)
    assert len(a.pending) == 2 and a.stats["validation_throttled"] == 2
    # reject and timeout
    a.report_validation(b"pending-1", REJECT, 2020)
    assert a.score.stats[b].topics[T].invalid_deliveries == 1
    a.tick(2020 + a.config.validation_timeout_ms + 1000)
    assert len(a.pending) == 0 and a.stats["validation_timeouts"] == 1
    a.add_validator(T, lambda t, m, frm: IGNORE)
    assert a.receive_rpc(b, msg_rpc(b"ignored-0"), 40000) == []


def test_fanout_publish_and_expiry():
    def cfg(i):
        c = nosign_config()
        c.flood_publish = False
        return c
    net = Net(10, config_fn=cfg, seed=17)
    net.connect_all()
    for r in net.routers[1:]:
        r.subscribe(T)
    net.pump()
    net.advance(2000)
    pub = net.routers[0]
    net.publish(0, T, b"fanout-message-0")
    fo = pub.fanout_peers(T)
    assert len(fo) == pub.config.D
    assert sum(len(net.received(i)) for i in range(1, 10)) == 9  # the mesh carries it on
    net.advance(pub.config.fanout_ttl_ms + 2000, step=1000)
    assert pub.fanout_peers(T) == set()
    # joining a topic with fanout peers reuses them for the mesh
    net.publish(0, T, b"fanout-message-1")
    fo = pub.fanout_peers(T)
    pub.subscribe(T)
    assert pub.mesh_peers(T) >= fo and pub.fanout_peers(T) == set()


def test_prune_px_events():
    px = [{"peerID": b"far-away-%d" % k, "signedPeerRecord": b"rec"} for k in range(20)]
    # with scoring on, PX is only taken from peers above accept_px_threshold (10 by default)
    a, b = pair(proto=R.MESHSUB_V11)
    a.heartbeat(1000)
    ev = a.receive_rpc(b, ctl_rpc(prune=[{"topicID": T, "peers": px, "backoff": 30}]), 1001)
    assert [e[0] for e in ev] == ["prune"] and a.stats["px_ignored"] == 1
    cfg = nosign_config()
    cfg.score_params = None
    a, b = pair(cfg, proto=R.MESHSUB_V11)
    a.heartbeat(1000)
    a.outgoing()
    px.append({"peerID": b"A"})  # ourselves: skipped
    ev = a.receive_rpc(b, ctl_rpc(prune=[{"topicID": T, "peers": px, "backoff": 30}]), 1001)
    kinds = [e[0] for e in ev]
    assert kinds == ["prune", "px"]
    found = ev[1][2]
    assert 0 < len(found) <= a.config.prune_peers and all(r == b"rec" for pid, r in found)
    assert a.backoff[T][b] == 31001


def test_device_profile_meshes_with_gateway():
    dev_cfg = nosign_config(device=True)
    assert dev_cfg.D == 1 and dev_cfg.score_params is None and dev_cfg.idontwant_min_data_size is None

    def cfg(i):
        return dev_cfg if i == 0 else nosign_config()
    net = Net(4, config_fn=cfg, seed=19)
    dev = net.routers[0]
    assert dev.score is None and dev.mcache.max_entries == dev_cfg.max_mcache_entries
    net.connect(0, 1)  # device -- gateway
    net.connect(1, 2)
    net.connect(1, 3)
    net.connect(2, 3)
    net.subscribe_all(T)
    net.advance(3000)
    assert dev.mesh_peers(T) == {net.ids[1]}
    net.publish(0, T, b"from-the-device-0")
    for i in (1, 2, 3):
        assert len(net.received(i)) == 1
    net.publish(3, T, b"to-the-device-000")
    assert len(net.received(0)) == 1


def test_gossipsub_serves_floodsub_peers():
    a, b = pair()
    f = node_id(9)
    a.add_peer(f, R.FLOODSUB, False)
    a.receive_rpc(f, bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), 0)
    a.heartbeat(1000)
    assert f not in a.mesh_peers(T)
    a.outgoing()
    a.receive_rpc(b, msg_rpc(b"to-flood-peer-00"), 1001)
    assert [p for p, x in a.outgoing() if is_message_frame(x)] == [f]


def test_self_origin_and_policy_violations_rejected():
    from microp2p.identity import keys, peerid
    sk = keys.Ed25519PrivateKey.from_seed(bytes([3] * 32))
    me = peerid.PeerId.from_public_key(sk.public_key)
    a = GossipSub(me, sk, GossipSubConfig(), 0)
    b = node_id(1)
    a.add_peer(b, R.MESHSUB_V11)
    a.subscribe(T)
    m = {"from": me.to_bytes(), "data": b"x", "seqno": bytes(8), "topic": T}
    R.sign_message(m, sk)
    ev = a.receive_rpc(b, bytes(R.encode_rpc({"publish": [m]})), 1)
    assert ev[0][0] == "rejected" and ev[0][3] == "self origin"
    ev = a.receive_rpc(b, msg_rpc(b"unsigned"), 2)
    assert ev[0][3] == "signing policy"
    try:
        GossipSub(me, None, GossipSubConfig(), 0)
        assert False
    except UsageError:
        pass


def test_signed_messages_across_network():
    from microp2p.identity import keys, peerid
    sks = [keys.Ed25519PrivateKey.from_seed(bytes([i + 1] * 32)) for i in range(3)]
    ids = [peerid.PeerId.from_public_key(k.public_key) for k in sks]
    net = Net(3, config_fn=lambda i: GossipSubConfig(), ids=ids, keys=sks, seed=23)
    net.connect(0, 1)
    net.connect(1, 2)
    net.subscribe_all(T)
    net.advance(2000)
    mid = net.publish(0, T, b"signed hello")
    assert mid == ids[0].to_bytes() + net.received(2)[0][2]["seqno"]
    for i in (1, 2):
        (ev,) = net.received(i)
        m = ev[2]
        assert m["from"] == ids[0].to_bytes() and len(m["seqno"]) == 8 and "key" not in m
        assert m["data"] == b"signed hello"
    mid2 = net.publish(0, T, b"second")
    assert mid2 != mid and mid2[:-8] == mid[:-8]


def test_unsubscribe_sends_prune_with_unsubscribe_backoff():
    a, b = pair()
    a.heartbeat(1000)
    a.outgoing()
    a.unsubscribe(T)
    out = [R.decode_rpc(body_of(f)) for p, f in a.outgoing()]
    prunes = [pr for o in out for pr in o.get("control", {}).get("prune", [])]
    subs = [s for o in out for s in o.get("subscriptions", [])]
    assert prunes == [{"topicID": T, "backoff": 10}]
    assert subs == [{"subscribe": False, "topicid": T}]
    # a v1.0 peer gets a bare PRUNE (it could not parse backoff)
    a2, b2 = pair(proto=R.MESHSUB_V10)
    a2.heartbeat(1000)
    a2.outgoing()
    a2.unsubscribe(T)
    out = [R.decode_rpc(body_of(f)) for p, f in a2.outgoing()]
    prunes = [pr for o in out for pr in o.get("control", {}).get("prune", [])]
    assert prunes == [{"topicID": T}]


def test_heartbeat_runs_on_tick_schedule():
    a, b = pair()
    assert a.ticks == 0
    a.tick(50)
    assert a.ticks == 0
    a.tick(100)  # initial delay
    assert a.ticks == 1
    a.tick(1099)
    assert a.ticks == 1
    a.tick(1100)
    assert a.ticks == 2
    a.tick(60000)  # far behind: one heartbeat, not a burst
    assert a.ticks == 3


def _subscribed_peer(a, p, proto=R.MESHSUB_V11, outbound=False, now=0):
    a.add_peer(p, proto, outbound)
    a.receive_rpc(p, bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), now)


def test_score_components():
    from microp2p.pubsub.score import PeerScore, TopicScoreParams
    tp = TopicScoreParams(time_in_mesh_weight=1.0, time_in_mesh_quantum_ms=1000, time_in_mesh_cap=10,
                          first_message_deliveries_weight=2.0, first_message_deliveries_decay=0.5,
                          first_message_deliveries_cap=3,
                          mesh_message_deliveries_weight=-1.0, mesh_message_deliveries_threshold=4,
                          mesh_message_deliveries_activation_ms=2000, mesh_message_deliveries_decay=1.0,
                          mesh_failure_penalty_weight=-1.0, mesh_failure_penalty_decay=1.0,
                          invalid_message_deliveries_weight=-3.0, invalid_message_deliveries_decay=1.0)
    apps = {}
    prm = PeerScoreParams(topics={T: tp}, default_topic=False, app_specific_score=lambda p: apps.get(p, 0),
                          app_specific_weight=1.0, ip_colocation_factor_weight=-1.0,
                          ip_colocation_factor_threshold=1, behaviour_penalty_weight=-1.0,
                          behaviour_penalty_threshold=0.0, behaviour_penalty_decay=1.0)
    s = PeerScore(prm, 0)
    s.add_peer("p", 0)
    s.graft("p", T, 0)
    s.refresh(5000)  # P1: 5 quanta; P3 active (deficit 4 -> -16)
    assert s.score("p") == 5 - 16
    s.validate_message(b"m1", 5000)
    s.deliver_message(b"m1", "p", T, 5000)  # P2 +1 (x2), P3 mesh deliveries 1 -> deficit 3
    assert s.score("p") == 5 + 2 - 9
    for k in range(5):
        s.validate_message(b"n%d" % k, 5001)
        s.deliver_message(b"n%d" % k, "p", T, 5001)
    assert s.stats["p"].topics[T].first_deliveries == 3  # capped
    s.prune("p", T)  # P3 deficit 0 -> no sticky penalty, P1 gone
    assert s.score("p") == 6
    s.reject_message(None, "p", T, 5002)
    s.reject_message(None, "p", T, 5002)
    assert s.score("p") == 6 - 3 * 4
    s.refresh(6000)  # P2 decays by half
    assert s.score("p") == 3 - 12
    apps["p"] = 2.5
    s.add_penalty("p", 2)
    assert s.score("p") == 3 - 12 + 2.5 - 4
    s.add_peer("q", 0)
    s.set_ip("p", "10.0.0.1")
    s.set_ip("q", "10.0.0.1")
    assert s.score("q") == -1  # two peers on one IP, threshold 1: surplus 1 squared
    # unscored topics are ignored
    s.reject_message(None, "q", "other", 6000)
    assert s.score("q") == -1
    # retention: a negative score survives a reconnect, a positive one does not
    s.remove_peer("p", 7000)
    assert "p" in s.stats and s.score("p") < 0
    s.add_peer("p", 7001)
    assert s.score("p") < 0
    s.set_ip("q", None)
    apps["q"] = 5
    s.remove_peer("q", 7002)
    assert "q" not in s.stats


def test_opportunistic_graft_improves_poor_mesh():
    cfg = nosign_config()
    cfg.D, cfg.Dlo, cfg.Dhi, cfg.Dscore, cfg.Dout = 2, 2, 3, 1, 0
    cfg.opportunistic_graft_ticks = 3
    good = node_id(9)
    cfg.score_params = PeerScoreParams(app_specific_score=lambda p: 5.0 if p == good else 0.0)
    a = GossipSub(b"A", None, cfg, 0)
    a.subscribe(T)
    for k in range(2):
        _subscribed_peer(a, node_id(k))
    a.heartbeat(1000)
    assert a.mesh_peers(T) == {node_id(0), node_id(1)}
    _subscribed_peer(a, good, now=1000)
    a.heartbeat(2000)
    assert good not in a.mesh_peers(T)  # mesh is full enough; no graft yet
    a.heartbeat(3000)  # third tick: median score 0 < 1, and `good` scores above the median
    assert good in a.mesh_peers(T)
    out = [R.decode_rpc(body_of(f)) for p, f in a.outgoing() if p == good]
    assert any(o.get("control", {}).get("graft") for o in out)


def test_oversubscribed_mesh_pruned_keeping_outbound():
    cfg = nosign_config()
    cfg.score_params = None
    a = GossipSub(b"A", None, cfg, 0)
    a.subscribe(T)
    peers = [node_id(k) for k in range(20)]
    for k, p in enumerate(peers):
        _subscribed_peer(a, p, outbound=(k < 2))
    # everyone GRAFTs us; inbound peers are refused once the mesh reaches Dhi
    for p in peers:
        a.receive_rpc(p, ctl_rpc(graft=[{"topicID": T}]), 10)
    m = a.mesh_peers(T)
    assert len(m) == a.config.Dhi and a.stats.get("graft_during_backoff", 0) == 0
    a.heartbeat(1000)
    m = a.mesh_peers(T)
    assert len(m) <= a.config.Dhi
    # push it over Dhi with outbound GRAFTs, then the heartbeat trims to D keeping >= Dout outbound
    extra = [node_id(k) for k in range(30, 40)]
    for p in extra:
        _subscribed_peer(a, p, outbound=True)
        a.receive_rpc(p, ctl_rpc(graft=[{"topicID": T}]), 1100)
    assert len(a.mesh_peers(T)) > a.config.Dhi
    a.heartbeat(2000)
    m = a.mesh_peers(T)
    assert len(m) == a.config.D
    assert sum(1 for p in m if a.peers[p].outbound) >= a.config.Dout
    pruned = [p for p, f in a.outgoing() if R.decode_rpc(body_of(f)).get("control", {}).get("prune")]
    assert len(pruned) >= 10


def test_new_subscriber_joins_mesh_before_first_heartbeat():
    # The e2e loss: a gateway (1) is subscribed with an empty mesh, a subscriber (2) connects and
    # subscribes, a device (0) connects and publishes before the gateway's next heartbeat. The
    # gateway forwards to its mesh only, and the heartbeat that then grafts the subscriber sends
    # IHAVE to non-mesh peers only: without the graft at subscription time, the message never
    # reaches the subscriber, however long we wait.
    net = Net(3, seed=29)
    dev, gw, sub = net.routers
    gw.subscribe(T)
    sub.subscribe(T)
    net.pump()
    net.connect(2, 1)
    net.pump()  # subscriptions exchanged, no time passed: no heartbeat yet
    net.connect(0, 1)
    net.pump()
    assert net.ids[1] in dev.topic_peers(T)
    mid = net.publish(0, T, b"first-reading-01")
    assert [e[2]["id"] for e in net.received(1)] == [mid]
    assert [e[2]["id"] for e in net.received(2)] == [mid], "forwarded to an empty mesh"
    net.advance(5000)
    assert [e[2]["id"] for e in net.received(2)] == [mid]  # exactly once
    assert gw.stats.get("subscribe_grafts") == 1
    assert net.ids[2] in gw.mesh_peers(T) and net.ids[1] in sub.mesh_peers(T)


def test_subscriber_backing_off_is_not_grafted_at_subscription():
    net = Net(2, seed=31)
    gw, sub = net.routers
    gw.subscribe(T)
    sub.subscribe(T)
    net.connect(1, 0)
    net.pump()
    assert net.ids[1] in gw.mesh_peers(T)
    sub.unsubscribe(T)   # PRUNE with the unsubscribe backoff
    net.pump()
    assert net.ids[1] not in gw.mesh_peers(T)
    sub.subscribe(T)
    net.pump()
    assert net.ids[1] not in gw.mesh_peers(T) and gw.stats.get("subscribe_grafts") == 1
    assert sub.stats.get("graft_during_backoff", 0) == 0
