# The examples/ folder runs as users would run it, on CPython and on MicroPython, against real
# nodes: the custom-protocol example end to end, and the subscriber against a publisher of signed
# CBOR readings built with the same public API.
import asyncio
import json
import os
import subprocess
import sys

import cbor2

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.io.node import Node
from microp2p.io import pubsub

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPY = os.path.join(ROOT, ".venv", "bin", "micropython")
RUNTIMES = (
    ([sys.executable], {}),
    ([MPY], {"MICROPYPATH": os.path.join(ROOT, "firmware") + ":.frozen"}),
)


def _env(extra):
    env = dict(os.environ)
    env.update(extra)
    return env


def test_custom_protocol_example_on_both_runtimes():
    for argv, extra in RUNTIMES:
        r = subprocess.run(argv + [os.path.join(ROOT, "examples", "custom_protocol.py")], cwd=ROOT,
                           env=_env(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["protocol"] == "/example/status/1.0.0"
        assert out["answer"]["ok"] is True and out["answer"]["echo"] == "status?"
        assert out["device"].startswith("12D3KooW")


async def _publish_until_read(argv, extra, count):
    node = Node()
    subscribed = asyncio.Event()

    def on_event(ev):
        if ev[0] == "subscribed" and ev[2] == "sensors/readings":
            subscribed.set()

    ps = pubsub.attach(node, on_event=on_event)
    ps.subscribe("sensors/readings")
    addr = await node.listen("/ip4/127.0.0.1/tcp/0")
    proc = await asyncio.create_subprocess_exec(
        *argv, os.path.join(ROOT, "examples", "subscriber.py"), "%s/p2p/%s" % (addr, node.peer_id),
        "--count", str(count), cwd=ROOT, env=_env(extra),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        # publish once the subscriber's subscription has arrived (gossipsub sends to topic peers)
        await asyncio.wait_for(subscribed.wait(), 60)
        for seq in range(1, count + 1):
            ps.publish("sensors/readings", cbor2.dumps({"dev": str(node.peer_id), "seq": seq, "v": 20.5 + seq, "unit": "C"}))
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await node.stop()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return node, lines


def test_subscriber_example_prints_decoded_signed_readings_on_both_runtimes():
    for argv, extra in RUNTIMES:
        node, lines = asyncio.run(_publish_until_read(argv, extra, 3))
        assert [x["reading"]["seq"] for x in lines] == [1, 2, 3], lines
        for x in lines:
            assert x["from"] == str(node.peer_id) and x["topic"] == "sensors/readings"
            assert x["reading"]["unit"] == "C" and abs(x["reading"]["v"] - 20.5 - x["reading"]["seq"]) < 1e-9
