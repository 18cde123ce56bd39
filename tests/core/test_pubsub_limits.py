# Pubsub machines under a hostile peer (issue 11, D7-D10), all runtimes: a bad RPC behind a good
# message, a seen-cache flood, a topic-table flood, dense RPCs and a graylisted peer's RPCs.
from microp2p.errors import DecodeError, LimitError, ProtocolError
from microp2p.pubsub import rpc as R
from microp2p.pubsub.floodsub import FloodSub, PubSubConfig
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
from microp2p.pubsub.mcache import SeenCache
from pubsub_net import nosign_config, node_id

T = "sensors"


def msg_rpc(data, topic=T):
    return bytes(R.encode_rpc({"publish": [{"data": data, "topic": topic}]}))


def sub_rpc(topics, sub=True):
    return bytes(R.encode_rpc({"subscriptions": [{"subscribe": sub, "topicid": t} for t in topics]}))


def flood_router(cfg=None):
    r = FloodSub(b"me", None, cfg or nosign_config(PubSubConfig), 0)
    r.subscribe(T)
    return r


def messages(events):
    return [ev[2]["data"] for ev in events if ev[0] == "message"]


# ---- D7: a valid message, then a malformed RPC body, in one read ---------------------------------

def _good_then_bad(router, peer):
    good = R.frame(msg_rpc(b"reading-0000001"))
    bad = R.frame(b"\x12\x05\x0a\x09xx")  # a Message whose `from` runs past the body
    try:
        router.feed(peer, good + bad, 10)
    except DecodeError as e:
        return e
    raise AssertionError("the malformed RPC must raise")


def test_message_before_a_bad_rpc_reaches_the_app():
    for cls, cfg in ((FloodSub, nosign_config(PubSubConfig)), (GossipSub, nosign_config())):
        r = cls(b"me", None, cfg, 0)
        r.subscribe(T)
        a, b = node_id(1), node_id(2)
        r.add_peer(a, R.FLOODSUB if cls is FloodSub else R.MESHSUB_V12)
        r.add_peer(b, R.FLOODSUB if cls is FloodSub else R.MESHSUB_V12)
        r.receive_rpc(b, sub_rpc([T]), 0)
        r.outgoing()
        e = _good_then_bad(r, a)
        # accepted, marked seen and forwarded: so it is handed to the app too (on the exception)
        assert messages(e.events) == [b"reading-0000001"]
        assert e.scope == 1  # the stream ends, not the connection
        # the author's honest copy via b is then a duplicate, and the app already has it
        assert messages(r.receive_rpc(b, msg_rpc(b"reading-0000001"), 20)) == []
        # a bad RPC first: nothing accepted, nothing to deliver
        r2 = cls(b"me", None, cfg, 0)
        r2.subscribe(T)
        r2.add_peer(a, R.FLOODSUB)
        try:
            r2.feed(a, R.frame(b"\x12\x05\x0a\x09xx"), 0)
            assert False
        except ProtocolError as e2:
            assert messages(e2.events) == []


# ---- D8: seen cache accounting ---------------------------------------------------------------

def test_seen_cache_flood_evicts_only_the_flooders_ids():
    c = SeenCache(ttl_ms=120000, max_entries=100)
    for k in range(10):
        assert c.add(b"honest-%d" % k, 0, "H")
    for k in range(10000):
        c.add(b"junk-%d" % k, 1, "A")
    assert len(c) <= 100
    for k in range(10):
        assert b"honest-%d" % k in c      # never flushed inside the TTL
    assert c.owner_count("A") == 90 and c.evicted_others == 0
    # a newcomer under its fair share makes room from the biggest owner, not from H
    for k in range(30):
        assert c.add(b"new-%d" % k, 2, "N")
    assert c.owner_count("H") == 10 and c.owner_count("N") == 30 and c.owner_count("A") == 60
    assert len(c) == 100
    # TTL still works, accounts of owners whose ids all expired are dropped
    c.expire(120000)
    assert b"honest-0" not in c and len(c) == 60 + 30 - 0 and c.owner_count("H") == 0
    c.expire(120002)
    assert len(c) == 0 and not c._owners


def test_seen_cache_duplicate_moves_id_to_the_less_loaded_owner():
    c = SeenCache(ttl_ms=1000, max_entries=50)
    c.add(b"reading", 0, "A")        # the attacker raced to deliver the device's reading first
    c.note_duplicate(b"reading", "D")  # unknown owner D holds nothing yet: no account, no move
    c.add(b"d-1", 0, "D")
    for k in range(20):
        c.add(b"junk-%d" % k, 0, "A")
    c.note_duplicate(b"reading", "D")  # the honest copy from the device: now accounted to it
    for k in range(1000):
        c.add(b"more-%d" % k, 1, "A")  # the attacker flushes its own ids...
    assert b"reading" in c             # ...but no longer this one
    c.expire(1000)
    assert b"reading" not in c and b"d-1" not in c and c.owner_count("D") == 0
    assert len(c) == c.owner_count("A") <= 50


def test_replayed_reading_after_a_flood_is_not_delivered_twice():
    cfg = nosign_config(PubSubConfig)
    cfg.max_seen = 200
    cfg.max_peer_messages_per_heartbeat = 10 ** 6
    r = flood_router(cfg)
    dev, att = node_id(1), node_id(2)
    r.add_peer(dev, R.FLOODSUB)
    r.add_peer(att, R.FLOODSUB)
    reading = msg_rpc(b"device-reading-01")
    assert messages(r.receive_rpc(dev, reading, 0)) == [b"device-reading-01"]
    for k in range(0, 2010, 10):  # 2 010 junk messages, 10 x the cache, inside the TTL
        body = bytes(R.encode_rpc({"publish": [{"data": b"junk-%08d" % (k + i), "topic": T}
                                               for i in range(10)]}))
        r.receive_rpc(att, body, 1000)
    assert len(r.seen) <= cfg.max_seen
    assert messages(r.receive_rpc(att, reading, 2000)) == []  # the replay is a duplicate
    assert r.stats["duplicates"] == 1


# ---- D9: topic table ---------------------------------------------------------------------------

def test_topic_flood_by_many_identities_leaves_room_for_honest_subscribers():
    cfg = nosign_config(PubSubConfig)
    cfg.max_topics_per_peer = 16
    cfg.max_topics_total = 64
    r = FloodSub(b"gw", None, cfg, 0)
    r.subscribe(T)      # the gateway's readings topic
    dev = node_id(99)
    r.add_peer(dev, R.FLOODSUB)
    attackers = [node_id(i) for i in range(16)]
    for a in attackers:  # connect one by one, each filling what it may
        r.add_peer(a, R.FLOODSUB)
        r.receive_rpc(a, sub_rpc(["junk/%s/%d" % (a, k) for k in range(64)]), 0)
    assert len(r.topics) <= cfg.max_topics_total
    sub = node_id(50)
    r.add_peer(sub, R.FLOODSUB)
    # our own topic is never refused; a topic nobody else wants gets a slot from an over-share peer
    r.receive_rpc(sub, sub_rpc([T, "other"]), 10)
    assert r.topic_peers(T) == {sub} and r.topic_peers("other") == {sub}
    assert r.stats["topics_reclaimed"] >= 1
    assert len(r.topics) <= cfg.max_topics_total + 1
    r.outgoing()
    got = 0
    for k in range(5):
        r.receive_rpc(dev, msg_rpc(b"reading-%08d" % k), 20 + k)
        got += sum(1 for pid, f in r.outgoing() if pid == sub)
    assert got == 5     # the floodsub subscriber gets 5/5 readings
    # a peer over its share gets no new topic, and existing subscriptions are kept
    a0 = attackers[0]
    assert r.peers[a0].created > cfg.max_topics_total // len(r.peers)
    before = r.stats.get("subscriptions_over_cap", 0)
    r.receive_rpc(a0, sub_rpc(["junk/more/%d" % k for k in range(8)]), 30)
    assert r.stats["subscriptions_over_cap"] >= before + 8
    assert r.topic_peers(T) == {sub} and r.topic_peers("other") == {sub}
    for a in attackers:
        assert len(r.peer_topics(a)) <= cfg.max_topics_per_peer


def test_topic_slots_follow_members_and_are_freed():
    cfg = nosign_config(PubSubConfig)
    cfg.max_topics_total = 4
    r = FloodSub(b"gw", None, cfg, 0)
    a, b = node_id(1), node_id(2)
    r.add_peer(a, R.FLOODSUB)
    r.add_peer(b, R.FLOODSUB)
    r.receive_rpc(a, sub_rpc(["x", "y"]), 0)
    r.receive_rpc(b, sub_rpc(["x"]), 0)
    assert r.peers[a].created == 2 and r.peers[b].created == 0
    r.remove_peer(a)              # b still wants x: its slot passes to b
    assert r.peers[b].created == 1 and r.topic_peers("x") == {b} and "y" not in r.topics
    r.subscribe("x")              # ours now: no peer is accounted for it
    assert r.peers[b].created == 0
    r.unsubscribe("x")
    assert r.peers[b].created == 1
    r.receive_rpc(b, sub_rpc(["x"], False), 0)
    assert r.peers[b].created == 0 and not r.topics


# ---- D10: dense RPCs, graylist before decoding ----------------------------------------------------

def test_dense_rpc_hits_the_total_field_cap_while_decoding():
    # 20 IHAVEs of 100 empty ids: each field far under MAX_RPC_ITEMS, together over the device's
    # MAX_RPC_FIELDS_DEVICE (the gateway's cap works the same at 16 384; 1 MiB of empty ids is
    # ~500 000 fields)
    dense = bytes(R.encode_rpc({"control": {"ihave": [
        {"topicID": T, "messageIDs": [b""] * 100} for _ in range(20)]}}))
    assert len(dense) < R.MAX_RPC_SIZE_DEVICE
    try:
        R.decode_rpc(dense, R.MAX_RPC_SIZE_DEVICE, R.MAX_RPC_FIELDS_DEVICE)
        assert False
    except LimitError as e:
        assert e.scope == 1
    assert R.MAX_RPC_FIELDS < (R.MAX_RPC_SIZE // 2) // 8 and R.MAX_RPC_FIELDS > 2 * R.MAX_RPC_ITEMS
    honest = bytes(R.encode_rpc({"control": {"ihave": [{"topicID": T, "messageIDs": [b"id%06d" % k for k in range(900)]}]}}))
    assert len(R.decode_rpc(honest, R.MAX_RPC_SIZE_DEVICE, R.MAX_RPC_FIELDS_DEVICE)["control"]["ihave"][0]["messageIDs"]) == 900
    g = GossipSub(b"me", None, nosign_config(device=True), 0)
    assert g.config.max_rpc_fields == R.MAX_RPC_FIELDS_DEVICE
    g.add_peer(node_id(1), R.MESHSUB_V12)
    try:
        g.receive_rpc(node_id(1), dense, 0)
        assert False
    except LimitError:
        pass


def test_graylisted_peer_rpcs_are_not_decoded():
    cfg = nosign_config()
    g = GossipSub(b"me", None, cfg, 0)
    g.subscribe(T)
    p = node_id(1)
    g.add_peer(p, R.MESHSUB_V12)
    g.score.add_penalty(p, 100)   # behaviour penalty squared x weight: far below graylist
    assert g.peer_score(p) < g.graylist_threshold
    # garbage that would raise DecodeError if it were decoded: ignored and counted instead
    assert g.receive_rpc(p, b"\xff\xff\xff", 0) == []
    assert g.receive_rpc(p, msg_rpc(b"from-graylisted"), 0) == []
    assert g.stats["graylisted_rpcs"] == 2
