# The first interop milestone: microp2p (on CPython and on the MicroPython unix port) against real
# js-libp2p 3.3.11, py-libp2p 0.8.1, go-libp2p 0.51 and rust-libp2p 0.56 peers, both dial directions: Noise + yamux, identify seen
# correctly on both sides, ping both ways, 50 concurrent streams each echoing 1 MiB (checked by
# hash), keepalive / connection-monitor pings answered for > 35 s, clean close.
import os
import time

import pytest

from peers import AGENTS, REFERENCE_KINDS, require_installed, start_peer

OURS = ("microp2p", "microp2p-mpy")
THEIRS = REFERENCE_KINDS
ECHO_STREAMS = 50
ECHO_SIZE = 1 << 20

# The MicroPython unix port runs with a stated heap, large enough for 50 streams in flight.
os.environ.setdefault("MICROP2P_MPY_HEAP", "32M")


def _pair(ours, theirs, we_dial):
    require_installed(theirs)
    a = start_peer(ours)
    try:
        b = start_peer(theirs)
    except BaseException:
        a.stop()
        raise
    dialer, listener = (a, b) if we_dial else (b, a)
    dialer.send({"cmd": "dial", "addr": listener.addr})
    return a, b


def _check_connection(a, b, theirs):
    ev_a = a.wait_for("connection:open", lambda e: e["peer"] == b.peer_id, timeout=30)
    b.wait_for("connection:open", lambda e: e["peer"] == a.peer_id, timeout=30)
    if "encryption" in ev_a:
        assert ev_a["encryption"] == "/noise" and ev_a["muxer"] == "/yamux/1.0.0", ev_a
    # identify, as each side saw the other
    id_a = a.wait_for("identify", lambda e: e["peer"] == b.peer_id, timeout=30)
    assert AGENTS[theirs] in (id_a.get("agentVersion") or ""), id_a
    assert "/ipfs/ping/1.0.0" in id_a["protocols"], id_a
    assert "/ipfs/id/1.0.0" in id_a["protocols"], id_a
    assert any(x.split("/p2p/")[0] in b.addr for x in id_a["listenAddrs"]), (id_a, b.addr)
    id_b = b.wait_for("identify", lambda e: e["peer"] == a.peer_id, timeout=30)
    assert (id_b.get("agentVersion") or "").startswith("microp2p/"), id_b
    assert "/microp2p/echo/1.0.0" in id_b["protocols"], id_b
    assert "/ipfs/ping/1.0.0" in id_b["protocols"], id_b
    ours_listen = a.addr.split("/p2p/")[0]
    assert any(x.split("/p2p/")[0] == ours_listen for x in id_b["listenAddrs"]), (id_b, ours_listen)


@pytest.mark.parametrize("we_dial", [True, False], ids=["we-dial", "they-dial"])
@pytest.mark.parametrize("theirs", THEIRS)
@pytest.mark.parametrize("ours", OURS)
def test_connect_identify_ping_echo(ours, theirs, we_dial):
    a, b = _pair(ours, theirs, we_dial)
    with a, b:
        _check_connection(a, b, theirs)
        # ping both ways
        a.send({"cmd": "ping", "peer": b.peer_id, "count": 3})
        rtts = [a.wait_for("ping", lambda e: e["peer"] == b.peer_id, timeout=30)["rtt"] for _ in range(3)]
        assert all(r >= 0 for r in rtts), rtts
        b.send({"cmd": "ping", "peer": a.peer_id, "count": 2})
        b.wait_for("ping", lambda e: e["peer"] == a.peer_id, timeout=30)
        # 50 concurrent streams x 1 MiB, each way, bytes checked by SHA-256 at the sender
        a.send({"cmd": "echo", "peer": b.peer_id, "streams": ECHO_STREAMS, "size": ECHO_SIZE})
        ev = a.wait_for("echo", timeout=180)
        assert ev["ok"] and ev["streams"] == ECHO_STREAMS, ev
        b.send({"cmd": "echo", "peer": a.peer_id, "streams": ECHO_STREAMS, "size": ECHO_SIZE})
        ev = b.wait_for("echo", timeout=180)
        assert ev["ok"] and ev["streams"] == ECHO_STREAMS, ev
        # clean close: ours stops, the peer sees the connection close, ours exits 0
        a.send({"cmd": "stop"})
        b.wait_for("connection:close", lambda e: e["peer"] == a.peer_id, timeout=20)
        deadline = time.monotonic() + 10
        while a.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.returncode == 0, a.describe()
        assert not a.events_named("error"), a.events_named("error")


def test_keepalive_and_connection_monitor_for_35s():
    """Every pairing at once, idle for 36 s: js's 10 s connection-monitor pings and yamux
    keepalives (and py's, go's 15 s ping service and yamux keepalive, rust's 15 s ping behaviour
    and idle-connection timeout) must be answered, so no connection drops."""
    pairs = []
    try:
        for ours in OURS:
            for theirs in THEIRS:
                pairs.append(_pair(ours, theirs, we_dial=(theirs == "js")))
        for a, b in pairs:
            a.wait_for("connection:open", lambda e: e["peer"] == b.peer_id, timeout=30)
            b.wait_for("connection:open", lambda e: e["peer"] == a.peer_id, timeout=30)
        time.sleep(36)
        for a, b in pairs:
            assert not a.events_named("connection:close"), (a.kind, b.kind, a.events_named("connection:close"))
            assert not b.events_named("connection:close"), (a.kind, b.kind, b.events_named("connection:close"))
            a.send({"cmd": "ping", "peer": b.peer_id, "count": 1})
            a.wait_for("ping", lambda e: e["peer"] == b.peer_id, timeout=20)
    finally:
        for a, b in pairs:
            a.stop()
            b.stop()
