# The Kademlia driver (microp2p.io.kad) over real in-process connections: client mode neither
# lists nor answers the protocol, server mode answers several requests per stream, drops idle and
# hostile streams without touching the connection, pushes identify on a mode change, answers
# FIND_NODE for peers it can name addresses for, and re-provides keys before they expire.
import asyncio

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.codec import varint
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p.io import kad as kadmod
from microp2p.io import node as nodemod
from microp2p.io.connection import StreamReset
from microp2p.proto.kad import codec
from microp2p.codec.multiaddr import Multiaddr

KAD = codec.PROTOCOL_ID
MH = b"\x12\x20" + bytes(range(32))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _node(seed, mode):
    n = nodemod.Node(Ed25519PrivateKey.from_seed(bytes([seed]) * 32))
    d = kadmod.KadDHT(n, mode)
    addr = await n.listen("/ip4/127.0.0.1/tcp/0")
    return n, d, "%s/p2p/%s" % (addr, n.peer_id)


async def _request(node, conn, msgs):
    """Send framed messages on one stream; read one answer per message that has one."""
    st = await node.new_stream(conn, [KAD])
    reader = codec.Reader()
    out = []
    for m in msgs:
        await st.write(codec.frame(codec.encode(m)))
        if m.type == codec.ADD_PROVIDER:
            continue
        got = []
        while not got:
            data = await asyncio.wait_for(st.read(), 10)
            assert data, "stream ended"
            got = reader.receive(data)
        out.append(codec.decode(got[0]))
    await st.close()
    return out


def test_client_mode_neither_lists_nor_answers():
    async def main():
        s, sd, saddr = await _node(1, "server")
        c, cd, caddr = await _node(2, "client")
        assert KAD not in c.protocols() and KAD in s.protocols()
        conn = await s.dial(caddr)
        try:
            await s.new_stream(conn, [KAD])
            raise AssertionError("a client-mode node answered the kad protocol")
        except (OSError, EOFError, StreamReset, Exception) as e:
            assert not isinstance(e, AssertionError)
        assert not conn.closed
        await c.stop()
        await s.stop()
    run(main())


def test_server_answers_several_requests_per_stream_and_finds_connected_peers():
    async def main():
        s, sd, saddr = await _node(3, "server")
        a, ad, aaddr = await _node(4, "client")
        b, bd, baddr = await _node(5, "client")
        await ad.dial_identified(saddr)
        conn_b = await bd.dial_identified(saddr)
        me = b.peer_id.to_bytes()
        answers = await _request(b, conn_b, [
            codec.Message(codec.FIND_NODE, a.peer_id.to_bytes()),
            codec.Message(codec.ADD_PROVIDER, MH, providers=[(me, [Multiaddr.from_string(baddr.split("/p2p/")[0])])]),
            codec.Message(codec.GET_PROVIDERS, MH),
        ])
        # a is a client (not in the routing table) but connected: the server names it
        assert answers[0].closer and answers[0].closer[0][0] == a.peer_id.to_bytes()
        assert str(answers[0].closer[0][1][0]) == aaddr.split("/p2p/")[0]
        assert answers[1].providers == [(me, [Multiaddr.from_string(baddr.split("/p2p/")[0])])]
        assert sd.stats["requests_in"] == 3
        # through the driver API: a finds b's record and b itself
        found = await ad.find_providers(MH)
        assert [p for p, _ in found] == [me]
        addrs = await ad.find_peer(b.peer_id)
        assert [str(x) for x in addrs] == [baddr.split("/p2p/")[0]]
        for n in (a, b, s):
            await n.stop()
    run(main())


def test_hostile_stream_is_reset_connection_kept():
    async def main():
        s, sd, saddr = await _node(6, "server")
        c, cd, caddr = await _node(7, "client")
        conn = await cd.dial_identified(saddr)
        for bad in (varint.encode(codec.MAX_MESSAGE_SIZE + 1) + b"x" * 100,     # oversized
                    codec.frame(codec.encode(codec.Message(codec.PUT_VALUE, b"/foo/x", record=(b"/foo/x", b"v")))),
                    b"\x03\x08\x09\x00"):                                        # unknown type
            st = await c.new_stream(conn, [KAD])
            await st.write(bad)
            try:
                data = await asyncio.wait_for(st.read(), 10)
                assert data == b"", data
            except StreamReset:
                pass
        assert not conn.closed and len(sd.server.records) == 0
        # the connection still serves good requests
        out = await _request(c, conn, [codec.Message(codec.FIND_NODE, MH)])
        assert out[0].type == codec.FIND_NODE
        await c.stop()
        await s.stop()
    run(main())


def test_idle_inbound_stream_dropped():
    async def main():
        old = kadmod.IDLE_TIMEOUT_MS
        kadmod.IDLE_TIMEOUT_MS = 300
        try:
            s, sd, saddr = await _node(8, "server")
            c, cd, caddr = await _node(9, "client")
            conn = await cd.dial_identified(saddr)
            st = await c.new_stream(conn, [KAD])
            try:
                data = await asyncio.wait_for(st.read(), 10)
                assert data == b""
            except StreamReset:
                pass
            assert sd.inbound_streams == 0 and not conn.closed
            await c.stop()
            await s.stop()
        finally:
            kadmod.IDLE_TIMEOUT_MS = old
    run(main())


def test_mode_change_pushes_identify_and_table_follows():
    async def main():
        s, sd, saddr = await _node(10, "server")
        c, cd, caddr = await _node(11, "client")
        await sd.dial_identified(caddr)
        await cd.dial_identified(saddr)
        assert sd.table.get(c.peer_id.to_bytes()) is None    # a client never enters tables
        assert cd.table.get(s.peer_id.to_bytes()) is not None
        listed = asyncio.Event()
        unlisted = asyncio.Event()

        def seen(conn, info):
            (listed if KAD in (info.get("protocols") or ()) else unlisted).set()

        s.identify.on_identify(seen)   # registered after the DHT's own listener: runs after it
        cd.set_mode("server")
        await asyncio.wait_for(listed.wait(), 10)
        assert sd.table.get(c.peer_id.to_bytes()) is not None
        cd.set_mode("client")
        await asyncio.wait_for(unlisted.wait(), 10)
        assert sd.table.get(c.peer_id.to_bytes()) is None
        await c.stop()
        await s.stop()
    run(main())


def test_reprovide_before_expiry():
    async def main():
        s, sd, saddr = await _node(12, "server")
        c, cd, caddr = await _node(13, "client")
        await cd.dial_identified(saddr)
        assert await cd.provide(MH) == 1
        t = cd.provided[MH]
        assert cd.due_reprovides(t + kadmod.REPROVIDE_INTERVAL_MS - 1) == []
        assert cd.due_reprovides(t + kadmod.REPROVIDE_INTERVAL_MS) == [MH]
        assert kadmod.REPROVIDE_INTERVAL_MS < 48 * 3600 * 1000
        await c.stop()
        await s.stop()
    run(main())


def test_put_and_get_value_validated():
    async def main():
        from microp2p.errors import DecodeError
        s, sd, saddr = await _node(14, "server")
        a, ad, aaddr = await _node(15, "client")
        b, bd, baddr = await _node(16, "client")
        await ad.dial_identified(saddr)
        await bd.dial_identified(saddr)
        key = b"/pk/" + a.peer_id.to_bytes()
        value = a.key.public_key.to_protobuf()
        assert await ad.put_value(key, value) == 1
        assert await bd.get_value(key) == value
        assert await bd.get_value(b"/pk/" + b.peer_id.to_bytes()) is None
        try:
            await ad.put_value(b"/foo/bar", b"x")   # unknown namespace: refused before sending
            raise AssertionError("put_value accepted an unknown namespace")
        except DecodeError:
            pass
        for n in (a, b, s):
            await n.stop()
    run(main())


def test_device_profile_lookups_stay_within_its_connection_cap():
    async def main():
        from microp2p.io.profile import Profile
        servers = []
        for i in range(8):
            servers.append(await _node(40 + i, "server"))
        for i in range(1, 8):   # a chain: each server knows the one before it
            await servers[i][1].dial_identified(servers[i - 1][2])
        dev = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x33" * 32), Profile.device())
        dd = kadmod.KadDHT(dev, "client")
        assert dd.alpha == 1 and dd.close_dialed
        await dd.dial_identified(servers[0][2])
        for i in range(7, 0, -1):
            target = servers[i][0].peer_id
            addrs = await dd.find_peer(target, local=False)
            assert addrs and str(addrs[0]) == servers[i][2].split("/p2p/")[0], i
            # what the lookup dialled is closed again: only the first server stays connected
            assert [c.remote_peer for c in dev.connections if not c.closed] == [servers[0][0].peer_id]
        assert len(dev.connections) <= dev.profile.max_connections
        await dev.stop()
        for n, _, _ in servers:
            await n.stop()
    run(main())


def test_unreachable_peer_leaves_the_table():
    async def main():
        a, ad, aaddr = await _node(60, "server")
        b, bd, baddr = await _node(61, "server")
        await ad.dial_identified(baddr)
        bid = b.peer_id.to_bytes()
        assert ad.table.get(bid) is not None
        await b.stop()          # gone: its listener closed, the connection with it
        for c in list(a.connections):
            c.close()
        assert await ad.get_closest_peers(MH) == []
        assert ad.table.get(bid) is None and ad.stats["requests_failed"] >= 1
        await a.stop()
    run(main())
