# End to end through the gateway's relay: MicroPython sensor devices (one on TCP, one on an
# emulated serial line) behind `microp2p gateway` with [relay] hop = true; an outside js-libp2p
# peer that knows only the gateway dials each device at <gw>/p2p/GW/p2p-circuit/p2p/DEV and pings
# it (the device's RTT), then `microp2p sensor read` fetches its latest reading over
# /microp2p/sensor/1.0.0 through the relay and checks the device's signature.
# Each device learns its circuit address from its gateway (the hop is in the gateway's identify,
# so the device RESERVEs over its TCP or serial link; the gateway answers with its public TCP
# address, never the serial one) and lists it in identify: the js peer sees it there.
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from microp2p_host.emulate import Fleet

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from peers import start_peer  # noqa: E402

CLI = [sys.executable, "-m", "microp2p_host.cli"]
TEST_TIMEOUT_S = 150


def _log(msg):
    print("[%.1f] %s" % (time.monotonic() % 1000, msg), flush=True)


def _js_and_cli_through_relay(fleet, circuits):
    """Blocking part (js peer, CLI subprocess): run in a thread so the event loop keeps reading
    the fleet's stdout pipes (a device blocked on a full pipe would stall its serial link)."""
    with start_peer("js", args=["--relay-client"]) as js:
        for d in fleet.devices:
            addr = circuits[d.name]
            t0 = time.monotonic()
            js.send({"cmd": "ping", "addr": addr, "count": 2})
            for _ in range(2):
                ev = js.wait_for("ping", timeout=60, fail_on_error=True)
                assert ev["peer"] == d.peer_id, ev
            _log("%s: js pinged it through the relay (circuit + 2 pings in %.1f s, last rtt %s ms)" % (
                d.name, time.monotonic() - t0, ev["rtt"]))
            op = js.wait_for("connection:open", lambda e, d=d: e["peer"] == d.peer_id, timeout=10)
            assert op["relayed"] and not op["limited"], op    # allow-listed: no limit
            idf = js.wait_for("identify", lambda e, d=d: e["peer"] == d.peer_id, timeout=30)
            assert idf["listenAddrs"] == [addr], idf          # its circuit address, nothing private
            _log("%s: js identified it through the relay: listenAddrs %s" % (d.name, idf["listenAddrs"]))
            t0 = time.monotonic()
            r = subprocess.run(CLI + ["sensor", "read", addr, "--timeout", "60"], capture_output=True,
                               text=True, timeout=90, cwd=str(ROOT))
            assert r.returncode == 0, (r.returncode, r.stderr)
            out = json.loads(r.stdout)
            _log("%s: sensor read through the relay in %.1f s: %s" % (d.name, time.monotonic() - t0, out))
            assert out["peer"] == d.peer_id and out["verified"] is True, out
            assert out["reading"]["dev"] == d.peer_id and out["reading"]["seq"] >= 1, out
            assert out["status"]["link"] == d.link and out["status"]["seq"] >= out["reading"]["seq"], out


def _stranger_reserve(gateway_addr):
    """A peer not on the allow-list asks the gateway for a slot: PERMISSION_DENIED."""
    import microp2p_host  # noqa: F401
    from microp2p.io import node as nodemod, relay
    from microp2p.proto.relay import codec

    async def go():
        n = nodemod.Node()
        try:
            st = await n.new_stream(await n.dial(gateway_addr), [codec.HOP])
            await st.write(codec.encode_hop({"type": codec.RESERVE}))
            return (await relay.read_message(st, codec.decode_hop))["status"]
        finally:
            await n.stop()
    return asyncio.run(asyncio.wait_for(go(), 30)), codec.PERMISSION_DENIED


def test_js_reaches_tcp_and_serial_devices_through_gateway_relay():
    import socket
    sk = socket.socket()
    sk.bind(("127.0.0.1", 0))
    metrics_port = sk.getsockname()[1]
    sk.close()
    fleet = Fleet(n_tcp=1, n_serial=1, js=False, interval_ms=500, log=_log, relay_hop=True,
                  device_heap="2M", stats_interval_s=1.0,
                  gateway_toml=['metrics = "127.0.0.1:%d"' % metrics_port])

    async def scenario():
        try:
            await body()
        finally:
            await fleet.stop()

    async def body():
        await fleet.start()
        await fleet.wait_connected()
        gw = fleet.gateway
        circuits = {}
        for d in fleet.devices:
            ev = await gw.wait_for("device:connected", lambda e, d=d: e.get("peer") == d.peer_id, timeout=30)
            assert ev["circuitAddrs"] == ["%s/p2p-circuit/p2p/%s" % (fleet.gateway_addr, d.peer_id)], ev
            circuits[d.name] = ev["circuitAddrs"][0]
            # the device reserved over its link and took the gateway's public address
            res = await d.wait_for("relay:reservation", timeout=60)
            assert res["relay"] == fleet.gateway_id and res["addrs"] == [circuits[d.name]] and res["limit"] is None, res
            ok = await gw.wait_for("relay:reserve", lambda e, d=d: e["peer"] == d.peer_id, timeout=10)
            assert ok["status"] == "OK", ok
            await d.wait_for("published", timeout=30)   # it has a signed reading to give
        await asyncio.get_event_loop().run_in_executor(None, _js_and_cli_through_relay, fleet, circuits)
        status, denied = await asyncio.get_event_loop().run_in_executor(None, _stranger_reserve, fleet.gateway_addr)
        assert status == denied, status
        await gw.wait_for("relay:reserve", lambda e: e["status"] == "PERMISSION_DENIED", timeout=10)
        # the gateway counted the circuits (2 per device: js, then the CLI) and holds 2 slots
        stats = await gw.wait_for("stats", lambda e: (e.get("relay") or {}).get("stats", {}).get("circuits", 0) >= 4,
                                  timeout=30)
        assert stats["relay"]["reservations"] == 2, stats
        # the same figures on the Prometheus endpoint
        import urllib.request
        text = await asyncio.get_event_loop().run_in_executor(None, lambda: urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % metrics_port, timeout=10).read().decode())
        got = dict((line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                   if line.startswith("microp2p_relay_"))
        assert got.get("microp2p_relay_reservations") == 2, got
        assert got.get('microp2p_relay_events_total{kind="circuits"}', 0) >= 4, got
        assert "microp2p_relay_circuits" in got, got
        for d in fleet.devices:
            assert not d.named("disconnected"), d.name   # the devices kept their links throughout

    try:
        asyncio.run(asyncio.wait_for(scenario(), TEST_TIMEOUT_S))
    finally:
        fleet.cleanup()
