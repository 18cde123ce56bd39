# The node under hostile input: each bad connection is closed on its own, the node keeps serving
# its good connections, and nothing it holds grows without bound.
import asyncio
import os

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.conn import mss, noise, yamux
from microp2p.io import node as nodemod
from microp2p.io import tcp
from microp2p.io.profile import Profile
from microp2p.io.connection import StreamReset
from microp2p.conn.upgrade import NOISE, YAMUX
from microp2p.io.ping import PING
from microp2p.codec import varint
from microp2p.identity.keys import Ed25519PrivateKey


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def start_pair():
    server = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x07" * 32))
    addr = await server.listen("/ip4/127.0.0.1/tcp/0")
    client = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x08" * 32))
    conn = await client.dial("%s/p2p/%s" % (addr, server.peer_id))
    for _ in range(100):  # the listener registers its side a moment after the dialer
        if server.connections:
            break
        await asyncio.sleep(0.01)
    assert len(server.connections) == 1
    return server, client, conn, addr


async def raw_connect(addr):
    host, port, _ = tcp.host_port(addr)
    return await asyncio.open_connection(host, port)


async def secured_attacker(addr, server_peer):
    """A client that completes mss + Noise honestly, then returns (reader, writer, transport)."""
    r, w = await raw_connect(addr)
    d = mss.Dialer([NOISE])
    w.write(d.data_to_send())
    while d.protocol is None:
        d.receive(await r.read(4096))
    hs = noise.Handshake(True, Ed25519PrivateKey.generate(), server_peer, ())
    w.write(hs.data_to_send())
    while not hs.complete:
        hs.receive(await r.read(4096))
    w.write(hs.data_to_send())
    t = hs.transport()
    m = mss.Dialer([YAMUX])
    w.write(bytes(t.encrypt(m.data_to_send())))
    while m.protocol is None:
        for chunk in t.receive(await r.read(4096)):
            m.receive(chunk)
    await w.drain()
    return r, w, t


async def read_until_closed(r, limit_s=10):
    try:
        while await asyncio.wait_for(r.read(65536), limit_s):
            pass
        return True
    except (ConnectionError, OSError):
        return True
    except asyncio.TimeoutError:
        return False


def test_garbage_connections_close_alone_and_node_keeps_serving():
    async def go():
        server, client, conn, addr = await start_pair()
        baseline = len(server.connections)
        # 1. random bytes instead of multistream
        r, w = await raw_connect(addr)
        w.write(os.urandom(3000))
        assert await read_until_closed(r)
        # 2. an oversized multistream length prefix
        r, w = await raw_connect(addr)
        w.write(varint.encode(1 << 40))
        assert await read_until_closed(r)
        # 3. right protocol, then a Noise frame of garbage
        r, w = await raw_connect(addr)
        d = mss.Dialer([NOISE])
        w.write(d.data_to_send())
        w.write(b"\x00\x20" + os.urandom(32))
        assert await read_until_closed(r)
        # 4. a secured connection that then sends a yamux frame of an unknown type
        r, w, t = await secured_attacker(addr, server.peer_id)
        w.write(bytes(t.encrypt(b"\x00\x09\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00")))
        assert await read_until_closed(r)
        # 5. a secured connection whose Noise frame fails to decrypt
        r, w, t = await secured_attacker(addr, server.peer_id)
        w.write(b"\x00\x30" + os.urandom(48))
        assert await read_until_closed(r)
        await asyncio.sleep(0.2)
        # the good connection is untouched and still serves
        assert not conn.closed
        rtts = await client.ping(conn, 2)
        assert len(rtts) == 2
        assert len(server.connections) == baseline
        assert server._pending_upgrades == 0
        await client.stop()
        await server.stop()
    run(go())


def test_stream_flood_is_capped_and_connection_survives():
    async def go():
        server, client, conn, addr = await start_pair()
        r, w, t = await secured_attacker(addr, server.peer_id)
        # open far more streams than the server allows, without ever negotiating on them
        frames = bytearray()
        for i in range(yamux.MAX_STREAMS + 50):
            frames += yamux.encode_header(yamux.TYPE_WINDOW_UPDATE, yamux.FLAG_SYN, 2 * i + 1, 0)
        w.write(bytes(t.encrypt(bytes(frames))))
        await w.drain()
        await asyncio.sleep(0.5)
        attacker = [c for c in server.connections if c is not None and c.remote_peer != client.peer_id]
        for c in attacker:
            inbound = [sid for sid in c.streams if sid % 2 == 1]  # the attacker is the client
            assert len(inbound) <= yamux.MAX_STREAMS
        # the honest connection is unaffected
        assert len(await client.ping(conn, 1)) == 1
        w.close()
        await client.stop()
        await server.stop()
    run(go())


def test_pending_upgrade_limit_refuses_excess_and_recovers():
    async def go():
        server, client, conn, addr = await start_pair()
        server.profile.handshake_timeout_ms = 1000
        idle = []
        for _ in range(server.profile.max_pending_upgrades + 5):
            idle.append(await raw_connect(addr))  # connect and say nothing
        await asyncio.sleep(0.2)
        assert server._pending_upgrades <= server.profile.max_pending_upgrades
        await asyncio.sleep(1.5)  # handshake timeout frees them all
        assert server._pending_upgrades == 0
        # a new honest client can connect again
        other = nodemod.Node(Ed25519PrivateKey.generate())
        c2 = await other.dial("%s/p2p/%s" % (addr, server.peer_id))
        assert len(await other.ping(c2, 1)) == 1
        for r, w in idle:
            w.close()
        await other.stop()
        await client.stop()
        await server.stop()
    run(go())


def test_wrong_peer_id_is_refused_by_the_dialer():
    async def go():
        server, client, conn, addr = await start_pair()
        impostor = Ed25519PrivateKey.from_seed(b"\x09" * 32)
        from microp2p.identity.peerid import PeerId
        wrong = PeerId.from_public_key(impostor.public_key)
        other = nodemod.Node(Ed25519PrivateKey.generate())
        try:
            await other.dial("%s/p2p/%s" % (addr, wrong))
            raise AssertionError("dial to the wrong peer id succeeded")
        except Exception as e:
            assert "AuthError" in type(e).__name__ or "peer" in str(e).lower(), e
        assert not other.connections
        assert len(await client.ping(conn, 1)) == 1
        await other.stop()
        await client.stop()
        await server.stop()
    run(go())


def test_receiver_stops_reading_at_its_buffer_cap_and_loses_nothing():
    async def go():
        cfg = Profile()
        cfg.unconsumed_cap = 64 * 1024
        cfg.read_size = 4096
        server = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x0a" * 32), cfg)
        release = asyncio.Event()
        got = bytearray()
        done = asyncio.Event()

        async def slow_sink(st):
            await release.wait()
            while True:
                b = await st.read()
                if not b:
                    break
                got.extend(b)
            done.set()

        server.handle("/test/sink/1.0.0", slow_sink)
        addr = await server.listen("/ip4/127.0.0.1/tcp/0")
        client = nodemod.Node(Ed25519PrivateKey.generate())
        conn = await client.dial("%s/p2p/%s" % (addr, server.peer_id))
        payload = os.urandom(2 * 1024 * 1024)
        peak = 0

        async def writer():
            st = await client.new_stream(conn, ["/test/sink/1.0.0"])
            await st.write(payload)
            await st.close()

        wt = asyncio.create_task(writer())
        for _ in range(40):
            await asyncio.sleep(0.025)
            for c in server.connections:
                peak = max(peak, c.session.unconsumed_total())
        # The server stops reading once its streams hold more than the cap; the overshoot is at
        # most the one Noise frame being completed (its size is the sender's choice, <= 64 KiB).
        # The rest of the 2 MiB waited in TCP, not in our memory.
        assert 0 < peak <= cfg.unconsumed_cap + noise.MAX_PLAINTEXT, peak
        release.set()
        await asyncio.wait_for(done.wait(), 30)
        await wt
        assert bytes(got) == payload
        await client.stop()
        await server.stop()
    run(go())


def test_third_concurrent_ping_stream_is_refused():
    async def go():
        server, client, conn, addr = await start_pair()
        streams = [await client.new_stream(conn, [PING]) for _ in range(3)]
        answers = []
        for st in streams:
            try:
                await st.write(os.urandom(32))
                answers.append(len(await asyncio.wait_for(st.readexactly(32), 5)))
            except (StreamReset, EOFError):
                answers.append("reset")
        assert answers == [32, 32, "reset"], answers
        # closing one frees a slot
        await streams[0].close()
        await asyncio.sleep(0.1)
        assert len(await client.ping(conn, 1)) == 1
        await client.stop()
        await server.stop()
    run(go())
