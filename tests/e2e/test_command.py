# `microp2p command` through a real gateway to real MicroPython devices: the device that allows
# the commander obeys and acks; the one that does not says why; exit status says whether any did.
import asyncio
import json
import sys

from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p_host.emulate import Fleet

SEED = "42" * 32
COMMANDER = str(PeerId.from_public_key(Ed25519PrivateKey.from_seed(bytes.fromhex(SEED)).public_key))


async def _command(fleet, *args):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "microp2p_host.cli", "command", "--seed", SEED, fleet.gateway_addr, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else None, err.decode()


def test_command_reaches_allowing_device_and_reports_refusals():
    fleet = Fleet(n_tcp=0, interval_ms=1000, extra_devices=[
        {"name": "allows", "link": "tcp", "config": {"command_from": [COMMANDER]}},
        {"name": "strict", "link": "tcp"},
    ])

    async def scenario():
        try:
            await fleet.start()
            allows, strict = fleet.device("allows"), fleet.device("strict")
            await fleet.wait_connected([allows, strict])
            for d in (allows, strict):
                await d.wait_for("published", timeout=30)
            rc1, r1, e1 = await _command(fleet, '{"cmd": "interval", "ms": 700}', "--wait", "8")
            ev = await allows.wait_for("command", lambda e: e.get("ms") == 700, timeout=10)
            assert ev["from"] == COMMANDER
            rc2, r2, e2 = await _command(fleet, '{"cmd": "ping"}', "--to", strict.peer_id, "--wait", "8")
            rc3, r3, e3 = await _command(fleet, '{"cmd": "reboot"}')
            return (allows, strict), (rc1, r1, e1), (rc2, r2, e2), (rc3, r3, e3)
        finally:
            await fleet.stop()

    (allows, strict), (rc1, r1, e1), (rc2, r2, e2), (rc3, r3, e3) = asyncio.run(scenario())
    assert rc1 == 0, e1
    assert r1["accepted"] == [allows.peer_id] and r1["command"] == {"cmd": "interval", "ms": 700}
    assert r1["refused"][strict.peer_id].startswith("sender not allowed: add %s" % COMMANDER)
    assert rc2 == 1 and r2["accepted"] == [] and "sender not allowed" in e2 and "Traceback" not in e2
    assert rc3 != 0 and "unknown command" in e3 and "Traceback" not in e3
    assert not [e for e in strict.named("command")]
