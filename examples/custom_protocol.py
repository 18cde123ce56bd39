# A custom device protocol, written against microp2p's public API only: a "device" node answers
# requests on /example/status/1.0.0 with a CBOR map, a "client" node dials it over TCP, opens a
# stream, sends a request and prints the answer. Both run in this one process, on CPython or on
# MicroPython (the same code runs on a microcontroller):
#
#   python examples/custom_protocol.py
#   MICROPYPATH=firmware:.frozen micropython examples/custom_protocol.py
#
# The stream is authenticated and encrypted end to end (Noise) and multiplexed (yamux); the
# handler sees only bytes. Bound what you read: a peer decides what it sends.
import gc
import json

from microp2p.aio import asyncio, MICROPYTHON
from microp2p.codec import cbor
from microp2p.io.node import Node
from microp2p.io.profile import Profile

STATUS = "/example/status/1.0.0"
MAX_REQUEST = 256     # bytes a request may have
MAX_ANSWER = 1024

if not MICROPYTHON:
    try:
        import microp2p_host  # noqa: F401  native crypto on CPython, when installed
    except ImportError:
        pass


def free_heap():
    return gc.mem_free() if hasattr(gc, "mem_free") else -1


async def handle_status(stream):
    request = cbor.decode(await stream.read_all(MAX_REQUEST))
    answer = {"ok": True, "echo": request.get("q"), "heap_free": free_heap()}
    await stream.write(cbor.encode(answer))
    await stream.close()


async def main():
    device = Node(profile=Profile.device())
    device.handle(STATUS, handle_status)
    addr = await device.listen("/ip4/127.0.0.1/tcp/0")

    client = Node()
    conn = await client.dial(str(addr) + "/p2p/" + str(device.peer_id))
    stream = await client.new_stream(conn, [STATUS])
    await stream.write(cbor.encode({"q": "status?"}))
    await stream.close()                     # our side is done: the device reads until EOF
    answer = cbor.decode(await stream.read_all(MAX_ANSWER))
    print(json.dumps({"device": str(device.peer_id), "protocol": stream.protocol, "answer": answer}))
    await client.stop()
    await device.stop()


asyncio.run(main())
