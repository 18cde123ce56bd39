# Floodsub router tests (both runtimes).
from microp2p.pubsub import rpc as R
from microp2p.pubsub.floodsub import FloodSub, PubSubConfig
from microp2p.pubsub.router import REJECT, ACCEPT
from pubsub_net import Net, nosign_config, is_message_frame, body_of

T = "topic"


def _net(n, seed=1):
    return Net(n, config_fn=lambda i: nosign_config(PubSubConfig), proto=R.FLOODSUB, seed=seed, cls=FloodSub)


def test_line_floods_to_all_exactly_once():
    net = _net(5)
    for i in range(4):
        net.connect(i, i + 1)
    net.connect(0, 4)  # a ring: two paths to every node
    net.subscribe_all(T)
    mid = net.publish(2, T, b"flood-message-00")
    for i in range(5):
        got = net.received(i)
        if i == 2:
            assert got == []  # no delivery to self
        else:
            assert len(got) == 1 and got[0][2]["id"] == mid and got[0][2]["data"] == b"flood-message-00"
    # in a ring of 5 every node forwards once to its other neighbour: 2 from the publisher + 4 more,
    # and two of those are duplicates on arrival
    assert net.msg_frames == 6


def test_no_control_messages_and_unsubscribed_peers_skipped():
    net = _net(3)
    net.connect(0, 1)
    net.connect(0, 2)
    net.routers[0].subscribe(T)
    net.routers[1].subscribe(T)
    net.pump()
    sent = []
    net.drop = lambda s, d, f: sent.append((s, d, R.decode_rpc(body_of(f)))) and False
    net.publish(1, T, b"only-subscribers")
    net.advance(3000)
    assert len(net.received(0)) == 1 and net.received(2) == []
    assert all("control" not in rpc for s, d, rpc in sent)
    assert not any(d == 2 for s, d, rpc in sent)


def test_subscription_events_and_unsubscribe():
    net = _net(2)
    net.connect(0, 1)
    net.routers[1].subscribe(T)
    net.pump()
    assert ("subscribed", net.ids[1], T) in net.events[0]
    assert net.routers[0].topic_peers(T) == {net.ids[1]}
    net.routers[1].unsubscribe(T)
    net.pump()
    assert ("unsubscribed", net.ids[1], T) in net.events[0]
    assert net.routers[0].topic_peers(T) == set()
    # a late joiner gets our subscriptions in the hello
    r = FloodSub(b"late", None, nosign_config(PubSubConfig), 0)
    r.subscribe("x")
    r.add_peer(b"peer", R.FLOODSUB)
    (pid, f), = r.outgoing()
    assert R.decode_rpc(body_of(f)) == {"subscriptions": [{"subscribe": True, "topicid": "x"}]}


def test_validator_reject_stops_forwarding():
    net = _net(3)
    net.connect(0, 1)
    net.connect(1, 2)
    net.subscribe_all(T)
    net.routers[1].add_validator(T, lambda t, m, p: REJECT if m["data"].startswith(b"bad") else ACCEPT)
    net.publish(0, T, b"bad-message-0000")
    assert net.received(1) == [] and net.received(2) == []
    assert [e[0] for e in net.events[1]].count("rejected") == 1
    net.publish(0, T, b"good-message-000")
    assert len(net.received(2)) == 1


def test_signed_floodsub():
    from microp2p.identity import keys, peerid
    sks = [keys.Ed25519PrivateKey.from_seed(bytes([i + 9] * 32)) for i in range(2)]
    ids = [peerid.PeerId.from_public_key(k.public_key) for k in sks]
    net = Net(2, config_fn=lambda i: PubSubConfig(), proto=R.FLOODSUB, cls=FloodSub, ids=ids, keys=sks)
    net.connect(0, 1)
    net.subscribe_all(T)
    net.publish(0, T, b"signed flood")
    (ev,) = net.received(1)
    assert ev[2]["from"] == ids[0].to_bytes() and ev[2]["peer"] == ids[0]
    # replaying the same message is a duplicate, not a second delivery
    f = R.message_frame(bytes(R.encode_message({k: ev[2][k] for k in ("from", "data", "seqno", "topic", "signature")})))
    assert net.routers[1].feed(ids[0], f, 5) == []
    assert net.routers[1].stats["duplicates"] == 1


def test_queue_cap_drops_and_counts():
    cfg = nosign_config(PubSubConfig)
    cfg.max_peer_queue = 4
    r = FloodSub(b"A", None, cfg, 0)
    r.add_peer(b"B", R.FLOODSUB)
    r.receive_rpc(b"B", bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]})), 0)
    for k in range(10):
        r.publish(T, b"queued-%09d" % k, k)
    q = r.peers[b"B"].queue
    assert len(q) == 4 and r.peers[b"B"].dropped == 6 and r.stats["dropped_frames"] == 6
    data = r.data_to_send(b"B")
    assert len(data) == sum(len(x) for x in q) and r.peers[b"B"].queue == []
    assert all(is_message_frame(x) for x in q)
