# A subscriber that prints decoded sensor readings, written against microp2p's public API only.
# Runs on CPython and on MicroPython:
#
#   python examples/subscriber.py /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... [--topic T] [--count N]
#   MICROPYPATH=firmware:.frozen micropython examples/subscriber.py ...
#
# It dials the peer (a gateway, or any peer that routes the topic), subscribes, and prints one JSON
# line per reading: the author's peer ID (the pubsub signature was checked: StrictSign) and the
# decoded CBOR map (docs/formats.md). It exits after --count readings (0 = run until stopped).
import sys
import json

from microp2p.aio import asyncio, MICROPYTHON
from microp2p.codec import cbor
from microp2p.errors import ProtocolError
from microp2p.identity.peerid import PeerId
from microp2p.io.node import Node
from microp2p.io import pubsub

if not MICROPYTHON:
    try:
        import microp2p_host  # noqa: F401  native crypto on CPython, when installed
    except ImportError:
        pass


def parse_args(argv):
    opts = {"addr": None, "topic": "sensors/readings", "count": 0}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--topic", "--count") and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1] if a == "--topic" else int(argv[i + 1])
            i += 2
        elif opts["addr"] is None and a.startswith("/"):
            opts["addr"] = a
            i += 1
        else:
            raise SystemExit("usage: subscriber.py MULTIADDR [--topic T] [--count N]")
    if opts["addr"] is None:
        raise SystemExit("usage: subscriber.py MULTIADDR [--topic T] [--count N]")
    return opts


async def main(opts):
    node = Node()
    done = asyncio.Event()
    seen = [0]

    def on_message(topic, msg):
        author = str(PeerId.from_bytes(msg["from"]))
        try:
            reading = cbor.decode(msg["data"])
        except ProtocolError as e:
            print(json.dumps({"from": author, "error": "not CBOR: %s" % e}))
            return
        print(json.dumps({"topic": topic, "from": author, "reading": reading}))
        seen[0] += 1
        if opts["count"] and seen[0] >= opts["count"]:
            done.set()

    ps = pubsub.attach(node, on_message=on_message)
    ps.subscribe(opts["topic"])
    await node.dial(opts["addr"])
    await done.wait()
    ps.close()
    await node.stop()


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
