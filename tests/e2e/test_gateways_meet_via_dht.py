# Two gateways with disjoint device sets and no static link between them find each other through
# the DHT ([dht] mode = "server", a common js-libp2p DHT bootstrap peer, each gateway providing its
# topic's rendezvous key and dialling the other providers) and deliver each other's devices'
# readings to a js subscriber connected to one of them only.
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "interop"))
from peers import Peer, start_peer, peer_id_of, random_seed, ROOT, PeerError  # noqa: E402

TOPIC = "sensors/readings"
CLI = [sys.executable, "-m", "microp2p_host.cli"]


def _gateway(d, name, device_id, bootstrap):
    cfg = d / ("%s.toml" % name)
    cfg.write_text("""
[identity]
key_file = "%s.key"
[network]
listen = ["/ip4/127.0.0.1/tcp/0"]
[devices]
listen = ["/ip4/127.0.0.1/tcp/0"]
allow = ["%s"]
[pubsub]
topics = ["%s"]
[gateway]
stats_interval_s = 0
[dht]
mode = "server"
bootstrap = ["%s"]
rendezvous_interval_s = 1
""" % (name, device_id, TOPIC, bootstrap))
    p = Peer("gateway", CLI + ["gateway", "--config", str(cfg)], {"PYTHONUNBUFFERED": "1"})
    try:
        p.started = p.wait_for("started", timeout=30)
    except BaseException:
        p.stop()
        raise
    return p


def test_two_gateways_meet_through_the_dht():
    d1_seed, d2_seed = random_seed(), random_seed()
    d1_id, d2_id = peer_id_of("microp2p", d1_seed), peer_id_of("microp2p", d2_seed)
    with tempfile.TemporaryDirectory() as tmp, start_peer("js", args=["--dht", "server"]) as boot:
        d = Path(tmp)
        with _gateway(d, "gw1", d1_id, boot.addr) as gw1, _gateway(d, "gw2", d2_id, boot.addr) as gw2:
            # each finds the other as a provider of the topic's key, and connects
            ev = gw1.wait_for("dht:providers", lambda e: gw2.peer_id in e["providers"], timeout=60)
            assert ev["topic"] == TOPIC
            gw2.wait_for("dht:providers", lambda e: gw1.peer_id in e["providers"], timeout=60)
            with start_peer("js", args=["--sub", TOPIC]) as sub, \
                    start_peer("microp2p", seed=d2_seed, args=["--device"]) as dev2:
                sub.send({"cmd": "dial", "addr": gw1.addr})
                sub.wait_for("dialed", timeout=30, fail_on_error=True)
                dev2.send({"cmd": "dial", "addr": gw2.started["deviceAddrs"][0]})
                dev2.wait_for("dial:ok", timeout=30, fail_on_error=True)
                gw2.wait_for("device:connected", lambda e: e["peer"] == d2_id, timeout=30)
                # readings from gw2's device reach the subscriber on gw1 (meshes form within a few
                # heartbeats; a reading published before that may only arrive by gossip, so retry)
                got = None
                for i in range(15):
                    dev2.send({"cmd": "publish", "topic": TOPIC, "data": "reading-%d" % i})
                    try:
                        got = sub.wait_for("gossip:message", lambda e: e["from"] == d2_id, timeout=2)
                        break
                    except PeerError:
                        continue
                assert got is not None and got["topic"] == TOPIC and got["data"].startswith("reading-"), got
                # the subscriber only ever connected to gw1: the path was dev2 -> gw2 -> gw1 -> sub
                assert {e["peer"] for e in sub.events_named("connection:open")} == {gw1.peer_id}
