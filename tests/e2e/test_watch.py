# `microp2p watch` against a real gateway with real MicroPython sensor devices: every line is a
# decoded reading whose author is one of the devices, in order per device, signature checked.
import asyncio
import json
import os
import sys
import time

from microp2p_host.emulate import Fleet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_watch_prints_decoded_readings_from_real_devices():
    fleet = Fleet(n_tcp=2, n_serial=0, interval_ms=200)

    async def scenario():
        try:
            await fleet.start()
            await fleet.wait_connected(fleet.devices)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "microp2p_host.cli", "watch", "--count", "8", "--timeout", "60",
                fleet.gateway_addr, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode == 0, err.decode()
            return [json.loads(line) for line in out.decode().splitlines()]
        finally:
            await fleet.stop()

    recs = asyncio.run(scenario())
    ids = {d.peer_id for d in fleet.devices}
    assert len(recs) == 8
    last = {}
    for r in recs:
        assert r["topic"] == "sensors/readings" and r["verified"] is True
        assert r["from"] in ids and r["reading"]["dev"] == r["from"]
        assert isinstance(r["reading"]["v"], float) and r["reading"]["unit"]
        seq = r["reading"]["seq"]
        assert seq > last.get(r["from"], 0)
        last[r["from"]] = seq


def test_watch_refuses_bad_addresses_in_one_line():
    import subprocess
    for args, needle in ((["/ip4/1.2.3.4/tcp/1"], "/p2p/"), (["garbage"], "bad multiaddr"),
                         (["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDBwiYEx4nwKo9jzJmTttv9bsbz4QZxFx1nE4bRjga1WL"], "could not reach")):
        r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "watch"] + args, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
