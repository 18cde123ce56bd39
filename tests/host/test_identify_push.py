# Identify push over real TCP nodes: the push code (io/identify_push.py) loads on first use and a
# pushed change (a new protocol) reaches the other side's conn.identified and an event.
import asyncio
import sys

import microp2p_host  # noqa: F401  (native crypto)
from microp2p import events as E
from microp2p.io import node as nodemod
from microp2p.identity.keys import Ed25519PrivateKey


def test_push_reaches_the_peer_and_loads_lazily():
    async def main():
        events = []
        got = asyncio.Event()

        def on_event(name, fields):
            events.append((name, fields))
            if name == E.IDENTIFY_PUSH:
                got.set()

        server = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x11" * 32), on_event=on_event)
        addr = await server.listen("/ip4/127.0.0.1/tcp/0")
        client = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x12" * 32))
        try:
            await client.dial("%s/p2p/%s" % (addr, server.peer_id))

            async def echo(st):
                await st.close()
            client.handle("/test/new/1.0.0", echo)
            client.identify.push()
            await asyncio.wait_for(got.wait(), 20)
            fields = [f for n, f in events if n == E.IDENTIFY_PUSH][-1]
            assert "/test/new/1.0.0" in fields["protocols"]
            conn = server.connection_to(client.peer_id)
            assert "/test/new/1.0.0" in conn.identified["protocols"]
            assert "microp2p.io.identify_push" in sys.modules
        finally:
            await client.stop()
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
