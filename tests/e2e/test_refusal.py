# A device that is not on the gateway's allow-list is told why (a real MicroPython device logs
# the reason) and backs off exponentially instead of hammering the gateway with handshakes.
import asyncio
import time

from microp2p_host.emulate import Fleet

WATCH_S = 6.0   # 250+500+1000+2000 ms of backoff, plus handshakes


def test_refused_device_logs_the_reason_and_backs_off():
    fleet = Fleet(n_tcp=1, interval_ms=500, extra_devices=[{"name": "intruder", "link": "tcp", "admitted": False}])

    async def scenario():
        try:
            await fleet.start()
            intruder = fleet.device("intruder")
            ev = await intruder.wait_for("refused", timeout=30)
            t0 = time.monotonic()
            refusals_before = len([e for e in fleet.gateway.named("device:refused") if e.get("peer") == intruder.peer_id])
            # the well-behaved device is served meanwhile
            await fleet.wait_connected([fleet.device("tcp-1")])
            await intruder.wait_for("refused", lambda e: e["retry_ms"] >= 4000, timeout=WATCH_S + 10)
            refusals = [e for e in fleet.gateway.named("device:refused") if e.get("peer") == intruder.peer_id]
            return intruder, ev, refusals_before, refusals, time.monotonic() - t0
        finally:
            await fleet.stop()

    intruder, ev, before, refusals, span = asyncio.run(scenario())
    assert ev["reason"] == "not admitted: add %s to [devices] allow in the gateway config" % intruder.peer_id
    retries = [e["retry_ms"] for e in intruder.named("refused")]
    # exponential: each wait doubles (250, 500, 1000, ...) up to the device's cap
    assert retries[:4] == [250, 500, 1000, 2000], retries
    # a handful of handshakes, not hundreds (the old behaviour: 283 in 7.8 s)
    assert len(refusals) <= len(retries) + 1, (len(refusals), retries)
    assert all(r["reason"].startswith("not admitted") for r in refusals)
