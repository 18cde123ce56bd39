# The relay drivers in one process on CPython: A reserves a slot on R, B dials A through R and gets a
# full Noise + yamux connection with A itself (ping, identify, a 1 MiB echo, both directions);
# strangers' circuits carry the limit and are cut at it; a destination that stops reading is cut;
# unknown destinations and relayed RESERVEs are refused.
import asyncio
import hashlib
import os

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.io import node as nodemod, relay
from microp2p.cli import ECHO, handle_echo
from microp2p.proto.relay import codec, hop as hopmod, client as clientmod
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId


def run(coro, limit=60):
    return asyncio.run(asyncio.wait_for(coro, limit))


def _key(i):
    return Ed25519PrivateKey.from_seed(bytes([i]) * 32)


async def _until(pred, limit_s=10):
    for _ in range(int(limit_s * 100)):
        if pred():
            return True
        await asyncio.sleep(0.01)
    return pred()


async def setup(hop_config=None, unlimited_a=True):
    r = nodemod.Node(_key(1))
    raddr = await r.listen("/ip4/127.0.0.1/tcp/0")
    cfg = hop_config or hopmod.HopConfig()
    a = nodemod.Node(_key(2))
    b = nodemod.Node(_key(3))
    for n in (a, b):
        n.handle(ECHO, handle_echo)
    if unlimited_a:
        cfg.unlimited.add(a.peer_id)
    events = []
    rh = relay.RelayHop(r, cfg, on_event=lambda n, f: events.append((n, f)))
    ac = relay.RelayClient(a, on_event=lambda n, f: events.append((n, f)))
    bc = relay.RelayClient(b)
    rma = "%s/p2p/%s" % (raddr, r.peer_id)
    ac.reserve(rma + "/p2p-circuit")
    assert await _until(lambda: any(e[0] == "relay:reservation" for e in events))
    return r, a, b, rh, ac, bc, rma, events


async def _echo(node, conn, size):
    st = await node.new_stream(conn, [ECHO])
    payload = os.urandom(size)

    async def writer():
        for i in range(0, size, 16384):
            await st.write(payload[i:i + 16384])
        await st.close()

    t = asyncio.create_task(writer())
    got = await st.read_all(size + 1)
    await t
    return hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def test_reserve_dial_ping_echo():
    async def main():
        r, a, b, rh, ac, bc, rma, events = await setup()
        ev = [e for e in events if e[0] == "relay:reservation"][0][1]
        circuit = "%s/p2p-circuit/p2p/%s" % (rma, a.peer_id)
        assert ev["addrs"] == [circuit] and ev["relay"] == str(r.peer_id) and ev["limit"] is None
        assert circuit in [str(x) for x in a.advertised_addrs()]   # announced in identify
        conn = await bc.dial(circuit)
        assert conn.remote_peer == a.peer_id and relay.is_relayed(conn)
        assert await _until(lambda: any(relay.is_relayed(c) for c in a.connections))
        inbound = [c for c in a.connections if relay.is_relayed(c)][0]
        assert inbound.remote_peer == b.peer_id
        assert str(inbound.remote_addr).endswith("/p2p-circuit/p2p/%s" % b.peer_id)
        rtts = await b.ping(conn, 3)
        assert len(rtts) == 3
        assert await _until(lambda: conn.identified is not None)
        assert await _echo(b, conn, 1 << 20)
        assert await _echo(a, inbound, 1 << 20)
        assert len(rh.hop.circuits) == 1
        conn.close()
        assert await _until(lambda: not rh.hop.circuits)
        closes = [e[1] for e in events if e[0] == "relay:circuit:close"]
        assert closes and closes[0]["reason"] is None and closes[0]["bytes"][0] > (1 << 21)
        for n in (a, b, r):
            await n.stop()
    run(main())


def test_stranger_limit_cuts_circuit():
    async def main():
        cfg = hopmod.HopConfig()
        cfg.limit_data = 200000
        r, a, b, rh, ac, bc, rma, events = await setup(cfg, unlimited_a=False)
        assert ac.reservations[r.peer_id].limit == {"duration": hopmod.LIMIT_DURATION_S, "data": 200000}
        conn = await bc.dial("%s/p2p-circuit/p2p/%s" % (rma, a.peer_id))
        assert conn.relay_limit == {"duration": hopmod.LIMIT_DURATION_S, "data": 200000}
        assert len(await b.ping(conn, 1)) == 1
        ok = None
        try:
            ok = await _echo(b, conn, 1 << 20)
        except Exception:
            ok = False
        assert not ok
        assert await _until(lambda: not rh.hop.circuits)
        closes = [e[1] for e in events if e[0] == "relay:circuit:close"]
        assert "data limit" in closes[0]["reason"] and rh.hop.stats["cut"] == 1
        # A keeps serving: a new circuit works
        conn2 = await bc.dial("%s/p2p-circuit/p2p/%s" % (rma, a.peer_id))
        assert len(await b.ping(conn2, 1)) == 1
        for n in (a, b, r):
            await n.stop()
    run(main())


def test_refusals():
    async def main():
        r, a, b, rh, ac, bc, rma, events = await setup()
        stranger = PeerId.from_public_key(_key(9).public_key)
        try:
            await bc.dial("%s/p2p-circuit/p2p/%s" % (rma, stranger))
            assert False, "dial to a peer without reservation succeeded"
        except clientmod.RelayRefused as e:
            assert e.status == codec.NO_RESERVATION
        # A RESERVE over a relayed connection is refused: B reserves at A through the circuit
        conn = await bc.dial("%s/p2p-circuit/p2p/%s" % (rma, a.peer_id))
        relay.RelayHop(a)
        st = await b.new_stream(conn, [codec.HOP])
        await st.write(codec.encode_hop({"type": codec.RESERVE}))
        msg = await relay.read_message(st, codec.decode_hop)
        assert msg["status"] == codec.PERMISSION_DENIED
        # an oversized message: MALFORMED answer, stream ends, the relay keeps serving
        st = await b.new_stream(b.connection_to(r.peer_id), [codec.HOP])
        from microp2p.codec import varint
        await st.write(varint.encode(5000) + b"\x00" * 100)
        msg = await relay.read_message(st, codec.decode_hop)
        assert msg["status"] == codec.MALFORMED_MESSAGE
        assert len(await b.ping(conn, 1)) == 1
        for n in (a, b, r):
            await n.stop()
    run(main())


def test_stalled_reader_is_cut():
    """A destination that accepts the circuit and then never reads the stop stream: the relay's
    writes stop at the yamux window, the circuit is cut after STALL_TIMEOUT_MS, A keeps serving."""
    async def main():
        relay_stall = relay.STALL_TIMEOUT_MS
        relay.STALL_TIMEOUT_MS = 1000
        try:
            r, a, b, rh, ac, bc, rma, events = await setup()
            release = asyncio.Event()

            async def hostile_stop(st):
                await relay.read_message(st, codec.decode_stop)
                await st.write(codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.OK}))
                await release.wait()   # never reads what the relay forwards

            a.handle(codec.STOP, hostile_stop)
            st = await b.new_stream(await b.dial(rma), [codec.HOP])
            await st.write(clientmod.connect_request(a.peer_id))
            assert clientmod.connect_response(await relay.read_message(st, codec.decode_hop)) is None

            async def flood():
                for _ in range(64):
                    await st.write(b"\x00" * 65536)
            t = asyncio.create_task(flood())
            assert await _until(lambda: any(e[0] == "relay:circuit:close" for e in events), 30)
            close = [e[1] for e in events if e[0] == "relay:circuit:close"][0]
            assert "stopped reading" in close["reason"], close
            # bounded: the relay forwarded about one window, not the flood
            assert close["bytes"][0] < 1 << 20, close
            try:
                await asyncio.wait_for(t, 10)
            except Exception:
                pass
            release.set()
            a.handle(codec.STOP, ac.handle_stop)
            conn2 = await bc.dial("%s/p2p-circuit/p2p/%s" % (rma, a.peer_id))
            assert len(await b.ping(conn2, 1)) == 1
            for n in (a, b, r):
                await n.stop()
        finally:
            relay.STALL_TIMEOUT_MS = relay_stall
    run(main(), 90)


def test_reservation_refreshed_before_expiry_and_lost_with_connection():
    async def main():
        cfg = hopmod.HopConfig()
        cfg.reservation_ttl_s = 4      # the client refreshes at half of a short TTL
        r, a, b, rh, ac, bc, rma, events = await setup(cfg)
        res = [e[1] for e in events if e[0] == "relay:reservation"]
        first = res[0]["expire"]
        assert await _until(lambda: any(e[0] == "relay:reservation" and e[1]["renewed"] for e in events), 10)
        renewed = [e[1] for e in events if e[0] == "relay:reservation" and e[1]["renewed"]][0]
        assert renewed["expire"] > first and ac.reservations[r.peer_id].renewals >= 1
        # the relay goes away: the circuit address is withdrawn from identify, the reservation is lost
        circuit = renewed["addrs"][0]
        await r.stop()
        assert await _until(lambda: circuit not in [str(x) for x in a.advertised_addrs()], 10)
        assert ac.reservations[r.peer_id].state != clientmod.ACTIVE
        ac.stop()
        for n in (a, b):
            await n.stop()
    run(main())


def test_link_only_reservation_follows_the_link():
    # A device's way (sensor_node.reach): reserve over the link it already has to its gateway,
    # never dialling the relay itself; the circuit address goes into identify and the signed peer
    # record while the link lives, out when it drops, back after the device reconnects.
    async def main():
        from microp2p.identity import envelope
        r = nodemod.Node(_key(1))
        raddr = await r.listen("/ip4/127.0.0.1/tcp/0")
        rma = "%s/p2p/%s" % (raddr, r.peer_id)
        a = nodemod.Node(_key(2))
        b = nodemod.Node(_key(3))
        cfg = hopmod.HopConfig()
        cfg.reserve_allow = set([a.peer_id])
        rh = relay.RelayHop(r, cfg)
        rh.add_device(a.peer_id)        # a gateway's allow-listed device: a slot without limit
        events = []
        ac = relay.RelayClient(a, on_event=lambda n, f: events.append((n, f)))
        bc = relay.RelayClient(b)
        seq0 = envelope.open_peer_record(a.identify.signed_record()).seq
        circuit = "%s/p2p-circuit/p2p/%s" % (rma, a.peer_id)

        def reservations():
            return [f for n, f in events if n == "relay:reservation"]

        def advertised():
            return [str(x) for x in a.advertised_addrs()]

        ac.reserve("/p2p/%s" % r.peer_id, dial=False)
        await asyncio.sleep(0.3)
        assert not a.connections and not reservations()     # no link yet: waits, never dials
        link = await a.dial(rma)
        assert await _until(lambda: len(reservations()) == 1)
        ev = reservations()[0]
        assert ev["addrs"] == [circuit] and ev["limit"] is None and not ev["renewed"], ev
        assert circuit in advertised()
        conn = await bc.dial(circuit)
        assert await _until(lambda: conn.identified is not None)
        info = conn.identified
        assert circuit in [str(x) for x in info["listen_addrs"]], info["listen_addrs"]
        rec = info["signed_record"]
        assert circuit in [str(x) for x in rec.addrs] and rec.seq > seq0, rec.addrs
        # the link drops: the address is withdrawn and the client does not dial on its own
        link.close()
        assert await _until(lambda: circuit not in advertised())
        await asyncio.sleep(1.5)
        assert a.connection_to(r.peer_id) is None and len(reservations()) == 1
        # the device reconnects: reserved again on the new link
        await a.dial(rma)
        assert await _until(lambda: len(reservations()) == 2)
        assert circuit in advertised() and not reservations()[1]["renewed"]
        ac.release(r.peer_id)
        assert circuit not in advertised() and not ac.reservations
        ac.stop()
        bc.stop()
        for n in (a, b, r):
            await n.stop()
    run(main())
