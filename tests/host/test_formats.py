# docs/formats.md is the contract for readings, commands and acks: its CDDL (RFC 8610) schemas,
# compiled with pycddl, validate what a real MicroPython sensor device sends and what the host's
# command tools publish — and reject what breaks them.
import asyncio
import os
import re

import cbor2
import pycddl

from microp2p_host.commands import parse_command
from sensor_harness import Gateway, Device, provision, run, tmpdir, READINGS, COMMANDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _schemas():
    text = open(os.path.join(ROOT, "docs", "formats.md")).read()
    blocks = re.findall(r"```cddl\n(.*?)```", text, re.S)
    out = {}
    for b in blocks:
        first = re.search(r"^([A-Za-z_-]+)\s*=", b, re.M).group(1)
        out[first] = pycddl.Schema(b)
    return out


def _valid(schema, obj):
    try:
        schema.validate_cbor(cbor2.dumps(obj))
        return True
    except pycddl.ValidationError:
        return False


def test_schemas_compile_and_reject_broken_values():
    s = _schemas()
    assert {"reading", "command", "ack", "mqtt-reading"} <= set(s)
    good = {"dev": "12D3KooWx", "seq": 1, "t": 5, "v": 20.5, "unit": "C"}
    assert _valid(s["reading"], good) and _valid(s["reading"], dict(good, dropped=2))
    assert not _valid(s["reading"], dict(good, seq=-1))
    assert not _valid(s["reading"], {k: v for k, v in good.items() if k != "unit"})
    assert not _valid(s["command"], {"cmd": "interval", "ms": 10})
    assert not _valid(s["command"], {"cmd": "reboot"})


def test_what_the_host_publishes_matches_the_command_schema():
    s = _schemas()
    for payload in (b'{"cmd": "interval", "ms": 1000}', b'{"cmd": "ping"}', b'{"cmd": "ping", "to": "*"}'):
        assert _valid(s["command"], parse_command(payload)), payload


def test_what_a_real_device_sends_matches_the_schemas():
    s = _schemas()
    d = tmpdir()

    async def main():
        gw = await Gateway().start()
        gw.pubsub.subscribe(COMMANDS)
        cfg, peer = provision(d, "%s/p2p/%s" % (gw.addr, gw.peer_id), interval_ms=200, stats_every=1)
        dev = await Device(cfg).start()
        try:
            await dev.wait_event("connected")
            await gw.wait_messages(3, pred=lambda m: m["topic"] == READINGS)
            gw.command({"cmd": "interval", "ms": 150})
            gw.command({"cmd": "nonsense"})
            acks = await gw.wait_messages(2, pred=lambda m: m["topic"] == COMMANDS and b"ack" in m["data"])
            return peer, [cbor2.loads(m["data"]) for m in gw.messages if m["topic"] == READINGS], \
                [cbor2.loads(m["data"]) for m in acks]
        finally:
            await dev.stop()
            await gw.stop()

    peer, readings, acks = run(main())
    assert len(readings) >= 3
    for r in readings:
        assert _valid(s["reading"], r), r
        assert r["dev"] == peer
    assert len(acks) == 2
    for a in acks:
        assert _valid(s["ack"], a), a
    assert [a["ok"] for a in acks] == [True, False] and "unknown command" in acks[1]["reason"]
