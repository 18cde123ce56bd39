# A device's own messages replayed after a reconnect: what the dying link swallowed arrives, what
# already arrived is dropped as a duplicate (same bytes, same id), so the subscriber sees every
# message exactly once.
from pubsub_net import Net, nosign_config
from microp2p.pubsub.gossipsub import GossipSubConfig

T = "sensors/readings"


def _net():
    # node 0: a device (device profile keeps its recent own messages); node 1: the gateway
    return Net(2, config_fn=lambda i: nosign_config(GossipSubConfig, device=(i == 0)))


def test_replay_recovers_messages_lost_on_a_dying_link_exactly_once():
    net = _net()
    net.connect(0, 1)
    net.subscribe_all(T)
    net.advance(3000)
    net.publish(0, T, b"reading-1")
    net.pump()
    # the link dies silently: the next two messages are lost on the wire
    net.drop = lambda src, dst, frame: True
    net.publish(0, T, b"reading-2")
    net.publish(0, T, b"reading-3")
    net.pump()
    net.drop = None
    net.disconnect(0, 1)
    net.connect(0, 1)
    net.subscribe_all(T)
    net.advance(1000)
    router = net.routers[0]
    assert router.replay_own(net.now - 60000, net.now) == 3
    net.pump()
    got = [m[2]["data"] for m in net.received(1)]
    assert sorted(got) == [b"reading-1", b"reading-2", b"reading-3"], got


def test_replay_keeps_a_bounded_window_and_respects_since():
    net = _net()
    router = net.routers[0]
    keep = router.config.own_replay_max
    assert 0 < keep <= 64
    net.connect(0, 1)
    net.subscribe_all(T)
    net.advance(2000)
    for i in range(keep + 5):
        net.publish(0, T, b"m-%03d" % i)
    assert len(router._own_recent) == keep
    # nothing published after `since`: nothing replayed
    assert router.replay_own(net.now + 1, net.now) == 0


def test_gateway_profile_keeps_nothing():
    net = Net(2)
    assert net.routers[0].config.own_replay_max == 0
    net.connect(0, 1)
    net.subscribe_all(T)
    net.advance(2000)
    net.publish(0, T, b"x")
    assert net.routers[0].replay_own(0, net.now) == 0
