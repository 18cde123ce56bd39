"""The interop harness proven with the real reference peers alone (js-libp2p 3.3.11, py-libp2p
0.8.1, go-libp2p 0.51 with go-libp2p-pubsub 0.19, rust-libp2p 0.56): every pair connects,
identifies, pings, echoes and gossips, and every peer kind derives the same peer ID from a seed as
`microp2p id`. Needs `make setup` (tests/interop/Makefile)."""
import hashlib
import os
import re
import signal
import time

import pytest

from peers import AGENTS, MICROP2P_CLI, REFERENCE_KINDS, peer_id_of, random_seed, require_installed, start_peer

pytestmark = pytest.mark.timeout(180)

TOPIC = "microp2p-interop"
ECHO_STREAMS = 4
ECHO_SIZE = 64 * 1024
PEER_ID_RE = re.compile(r"^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$")
# (dialer, listener): each reference implementation with itself and with every other, both ways.
PAIRS = [(d, l) for d in REFERENCE_KINDS for l in REFERENCE_KINDS]


def check_started(peer):
    assert PEER_ID_RE.match(peer.peer_id), peer.started
    assert peer.addrs, peer.started
    for a in peer.addrs:
        m = re.match(r"^/ip4/127\.0\.0\.1/tcp/(\d+)/p2p/(\S+)$", a)
        assert m, "started addr %r is not a bound loopback TCP address with /p2p" % a
        assert int(m.group(1)) != 0 and m.group(2) == peer.peer_id


@pytest.mark.parametrize("dialer_kind,listener_kind", PAIRS, ids=["%s->%s" % p for p in PAIRS])
def test_pair_connect_identify_ping_echo_gossip(dialer_kind, listener_kind):
    require_installed(dialer_kind)
    require_installed(listener_kind)
    with start_peer(listener_kind, args=["--sub", TOPIC]) as listener, start_peer(dialer_kind) as dialer:
        check_started(listener)
        check_started(dialer)
        assert listener.peer_id != dialer.peer_id

        dialer.send({"cmd": "dial", "addr": listener.addr})
        out = dialer.wait_for("connection:open", lambda e: e["peer"] == listener.peer_id, fail_on_error=True)
        inc = listener.wait_for("connection:open", lambda e: e["peer"] == dialer.peer_id)
        assert out["direction"] == "outbound" and inc["direction"] == "inbound"
        assert out["addr"].startswith(listener.addr.split("/p2p/")[0])

        for me, other in ((dialer, listener), (listener, dialer)):
            ident = me.wait_for("identify", lambda e, o=other: e["peer"] == o.peer_id)
            for proto in ("/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/meshsub/1.1.0", "/microp2p/echo/1.0.0"):
                assert proto in ident["protocols"], (proto, ident)
            assert ident["protocolVersion"] == "ipfs/0.1.0"
            assert ident["agentVersion"].startswith(AGENTS[other.kind]), ident
            assert any(a.startswith("/ip4/127.0.0.1/tcp/") for a in ident["listenAddrs"]), ident

        dialer.send({"cmd": "ping", "addr": listener.addr, "count": 3})
        for _ in range(3):
            p = dialer.wait_for("ping", lambda e: e["peer"] == listener.peer_id, fail_on_error=True)
            assert isinstance(p["rtt"], (int, float)) and 0 <= p["rtt"] < 5000
        listener.send({"cmd": "ping", "peer": dialer.peer_id, "count": 1})
        assert listener.wait_for("ping", fail_on_error=True)["peer"] == dialer.peer_id

        for me, other in ((dialer, listener), (listener, dialer)):
            me.send({"cmd": "echo", "peer": other.peer_id, "size": ECHO_SIZE, "streams": ECHO_STREAMS})
            echo = me.wait_for("echo", timeout=60, fail_on_error=True)
            assert echo["ok"] is True, echo
            assert echo["streams"] == ECHO_STREAMS and echo["bytes"] == ECHO_STREAMS * ECHO_SIZE

        text = "hello from %s to %s ✓" % (dialer.kind, listener.kind)
        dialer.send({"cmd": "publish", "topic": TOPIC, "data": text})
        pub = dialer.wait_for("published", timeout=20, fail_on_error=True)
        assert listener.peer_id in pub["recipients"]
        msg = listener.wait_for("gossip:message", timeout=20)
        assert msg["topic"] == TOPIC and msg["data"] == text and msg["from"] == dialer.peer_id
        assert re.match(r"^[0-9a-f]{16}$", msg["seqno"]), msg
        # emitSelf is off on every peer: the publisher never hears its own message.
        time.sleep(0.3)
        assert not dialer.events_named("gossip:message")

        assert dialer.stop() == "stop" and listener.stop() == "stop"
        assert dialer.returncode == 0 and listener.returncode == 0
        assert not dialer.bad_stdout and not listener.bad_stdout


@pytest.mark.parametrize("kind", REFERENCE_KINDS)
def test_cli_dial_and_pub_options(kind):
    # --dial and --pub on the command line: the publisher waits (bounded) for a subscriber.
    require_installed(kind)
    require_installed("js")
    with start_peer("js", args=["--sub", "t-cli"]) as sub:
        with start_peer(kind, args=["--dial", sub.addr, "--pub", "t-cli:one:with:colons"]) as pub:
            msg = sub.wait_for("gossip:message", timeout=20)
            assert msg["data"] == "one:with:colons" and msg["from"] == pub.peer_id
            pub.wait_for("published", fail_on_error=True)


@pytest.mark.parametrize("kind", REFERENCE_KINDS)
def test_pub_without_subscriber_reports_error_within_bound(kind):
    require_installed(kind)
    with start_peer(kind, args=["--pub-wait-ms", "500"]) as p:
        t0 = time.monotonic()
        p.send({"cmd": "publish", "topic": "nobody-here", "data": "x"})
        err = p.wait_for("error", lambda e: e.get("where") == "publish", timeout=10)
        assert time.monotonic() - t0 < 8
        assert err["topic"] == "nobody-here"
        assert not p.events_named("published")


@pytest.mark.parametrize("kind", REFERENCE_KINDS)
@pytest.mark.parametrize("how", ["eof", "sigterm"])
def test_peer_exits_on_stdin_eof_and_sigterm(kind, how):
    require_installed(kind)
    p = start_peer(kind)
    try:
        t0 = time.monotonic()
        if how == "eof":
            p.proc.stdin.close()
        else:
            os.kill(p.proc.pid, signal.SIGTERM)
        p.proc.wait(timeout=10)
        assert time.monotonic() - t0 < 10
        assert p.returncode == 0
    finally:
        p.stop()


SEEDS = [
    "00" * 32,
    "01" * 32,
    hashlib.sha256(b"microp2p interop seed").hexdigest(),
]
# Computed once with js-libp2p and py-libp2p (they agree): Ed25519 key from the 32-byte seed,
# identity-multihash peer ID.
KNOWN_ID_01 = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"


def test_cli_id_matches_peers():
    for kind in REFERENCE_KINDS:
        require_installed(kind)
    assert MICROP2P_CLI.exists(), "%s missing: the microp2p CLI is not installed" % MICROP2P_CLI
    ids = set()
    for seed in SEEDS:
        ours = peer_id_of("microp2p", seed)
        theirs = {kind: peer_id_of(kind, seed) for kind in REFERENCE_KINDS}
        assert PEER_ID_RE.match(ours), ours
        assert set(theirs.values()) == {ours}, (seed, ours, theirs)
        ids.add(ours)
    assert len(ids) == len(SEEDS)
    assert peer_id_of("js", "01" * 32) == KNOWN_ID_01


def test_started_peer_id_matches_print_id():
    seed = random_seed()
    for kind in REFERENCE_KINDS:
        require_installed(kind)
        with start_peer(kind, seed=seed) as p:
            assert p.peer_id == peer_id_of(kind, seed)



# Circuit relay v2 and Kademlia between the go and rust peers alone: the parts of the peers the
# relay and DHT interop tests drive (relay, client behind it, dialer; DHT servers and a client).
REACH = [("go", "rust", "go"), ("rust", "go", "rust"), ("go", "go", "rust"), ("rust", "rust", "go")]
TEST_CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"  # raw, sha2-256


@pytest.mark.parametrize("relay_kind,client_kind,dialer_kind", REACH, ids=["%s-%s-%s" % r for r in REACH])
def test_reference_relay_reserve_and_ping_through(relay_kind, client_kind, dialer_kind):
    for k in (relay_kind, client_kind, dialer_kind):
        require_installed(k)
    with start_peer(relay_kind, args=["--relay-hop"]) as r:
        with start_peer(client_kind, args=["--listen", r.addr + "/p2p-circuit"]) as c, start_peer(dialer_kind) as d:
            res = c.wait_for("relay:reservation", timeout=20, fail_on_error=True)
            assert res["relay"] == r.peer_id, res
            circuit = res["addrs"][0]
            assert circuit.startswith(r.addr + "/p2p-circuit/p2p/") and circuit.endswith(c.peer_id), res
            # go and rust relays default to 2 min / 128 KiB per circuit, and say so
            assert res["limitDurationS"] == 120 and res["limitData"] == 131072, res
            d.send({"cmd": "ping", "addr": circuit, "count": 1})
            assert d.wait_for("ping", timeout=20, fail_on_error=True)["peer"] == c.peer_id
            opened = c.wait_for("connection:open", lambda e: e["peer"] == d.peer_id, timeout=10)
            assert opened.get("relayed") is True, opened


@pytest.mark.parametrize("a_kind,b_kind,c_kind", REACH, ids=["%s-%s-%s" % r for r in REACH])
def test_reference_dht_find_peer_and_providers(a_kind, b_kind, c_kind):
    # A and B are DHT servers, C a client that knows only A: it finds B, and B's provider record.
    for k in (a_kind, b_kind, c_kind):
        require_installed(k)
    with start_peer(a_kind, args=["--dht", "server"]) as a, start_peer(b_kind, args=["--dht", "server"]) as b, \
            start_peer(c_kind, args=["--dht", "client"]) as c:
        for x in (b, c):
            x.send({"cmd": "dial", "addr": a.addr})
            x.wait_for("dialed", timeout=15, fail_on_error=True)
            a.wait_for("identify", lambda e, x=x: e["peer"] == x.peer_id, timeout=15)
            x.wait_for("identify", lambda e: e["peer"] == a.peer_id, timeout=15)
        # a server lists the kad protocol in identify, a client does not
        kad = "/ipfs/kad/1.0.0"
        seen = {x: {p for e in a.events_named("identify") if e["peer"] == x.peer_id for p in e["protocols"]} for x in (b, c)}
        assert kad in seen[b] and kad not in seen[c], seen
        c.send({"cmd": "find_peer", "peer": b.peer_id, "id": 1})
        found = c.wait_for("dht:find_peer", timeout=40, fail_on_error=True)
        assert found["found"] is True and found["id"] == 1, found
        assert any(x.startswith("/ip4/127.0.0.1/tcp/") for x in found["addrs"]), found
        b.send({"cmd": "provide", "key": TEST_CID})
        prov = b.wait_for("dht:provided", timeout=40, fail_on_error=True)
        assert prov["peers"] >= 1, prov
        c.send({"cmd": "find_providers", "key": TEST_CID})
        provs = c.wait_for("dht:providers", timeout=40, fail_on_error=True)["providers"]
        assert b.peer_id in [p["id"] for p in provs], provs
