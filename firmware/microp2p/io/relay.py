# Circuit relay v2 drivers: pump hop/stop streams through the sans-IO machines in
# microp2p.proto.relay. Portable (CPython and MicroPython).
#
#   RelayClient(node): answers STOP (a relayed connection arrives: upgraded as the responder over
#     the stop stream), reserve(relay_maddr) holds and refreshes a slot (dialling the relay, or with
#     dial=False only over a connection made by someone else: a device's link to its gateway),
#     dial(circuit_maddr) opens a relayed connection (CONNECT, then the upgrade as the initiator
#     over the hop stream).
#   RelayHop(node): serves /libp2p/circuit/relay/0.2.0/hop: reservations with vouchers, circuits
#     admitted by the hop machine's policy, two streams spliced with backpressure (one chunk in
#     flight per direction), cut when a limit is exceeded or when the far end stops reading.
#
# A relayed connection is a full connection (Noise + yamux inside the relayed yamux stream); its
# remote_addr contains /p2p-circuit, which is how it is told apart (is_relayed).
from microp2p import events as E
from microp2p.proto.relay import codec, client   # hop: loaded by RelayHop (not on a device)
from microp2p.aio import asyncio, TimeoutError, TaskGroup, print_exc
from microp2p.clock import wall_ms, ticks_ms, ticks_diff, now_ms
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.errors import ProtocolError, MicroP2PError, UsageError

MESSAGE_TIMEOUT_MS = 30000    # a hop/stop message must arrive within this (js: 30 s)
STOP_OPEN_TIMEOUT_MS = 10000  # the relay opening STOP to the destination
SPLICE_CHUNK = 65536          # bytes read from one side and written to the other at a time
HOP_WINDOW = 2 * 1024 * 1024  # yamux receive window a hop grants (not on a device profile): one
                              # 256 KiB window per leg caps a circuit at window / RTT of two legs
STALL_TIMEOUT_MS = 30000      # a circuit whose far end takes no bytes for this long is cut
WATCHDOG_MS = 1000            # how often a circuit's stall and duration limits are checked
RETRY_MIN_MS = 1000           # reconnecting to a lost relay: first wait, doubled up to
RETRY_MAX_MS = 30000
MAX_RESERVATIONS = 4          # relays one client holds slots on


def wall_s():
    return wall_ms() // 1000


def is_relayed(conn):
    if getattr(conn, "relayed", False):
        return True
    a = conn.remote_addr
    return a is not None and "p2p-circuit" in a.protocols()


def _is_circuit(maddr):
    return "p2p-circuit" in maddr.protocols()


def split_circuit(maddr):
    """<relay addr>/p2p/R/p2p-circuit[/p2p/DEST] -> (relay addr with /p2p/R, R, DEST or None)."""
    if isinstance(maddr, str):
        maddr = Multiaddr.from_string(maddr)
    comps = maddr.components()
    k = -1
    for i in range(len(comps)):
        if comps[i][0] == "p2p-circuit":
            k = i
    if k < 0:
        raise UsageError("not a circuit address: %s" % maddr)
    relay_part = "".join("/%s/%s" % c if c[1] else "/" + c[0] for c in comps[:k])
    dest = None
    for name, value in comps[k + 1:]:
        if name == "p2p":
            dest = PeerId.from_string(value)
    if not relay_part:
        raise UsageError("circuit address without a relay: %s" % maddr)
    relay_addr = Multiaddr.from_string(relay_part)
    rid = relay_addr.peer_id()
    if rid is None:
        raise UsageError("circuit address must name the relay (/p2p/ID before /p2p-circuit)")
    return relay_addr, rid, dest


async def read_message(st, decode, timeout_ms=MESSAGE_TIMEOUT_MS):
    """One delimited hop/stop message from a stream, reading never past its end."""
    return await asyncio.wait_for(_read_message(st, decode), timeout_ms / 1000)


async def _read_message(st, decode):
    r = codec.MessageReader()
    while not r.complete:
        data = await st.read(r.wanted())
        if not data:
            r.eof()
        left = r.receive(data)
        if left:   # a stream read handed back more than asked for: keep it for the next reader
            raise UsageError("stream returned more than requested")
    return decode(r.message())


class RelayedStream:
    """The duplex a relayed connection runs over: a hop/stop yamux stream whose reset reads as
    EOF and fails writes as OSError, so the connection inside ends as on a closed socket."""

    def __init__(self, st):
        self.st = st

    async def read(self, n):
        try:
            return await self.st.read(n)
        except MicroP2PError:
            return b""

    async def write(self, data):
        try:
            await self.st.write(data)
        except MicroP2PError as e:
            raise OSError("relayed stream: %s" % e)

    async def close(self):
        try:
            await self.st.close()
        except Exception:
            pass


async def _upgrade(node, st, remote_addr, outbound, expected=None):
    """The full libp2p upgrade (mss, Noise, yamux) over a relayed stream."""
    d = RelayedStream(st)
    if outbound:
        return await node.dial_stream(d, remote_addr, expected, relayed=True)
    return await node.accept_stream(d, remote_addr, relayed=True)


class RelayClient:
    def __init__(self, node, on_event=None, accept=None, stop_from=None):
        self.node = node
        self.on_event = on_event
        self.accept = accept            # accept(initiator PeerId) -> bool, for STOP
        self.stop_from = stop_from      # None: STOP from any relay; else the relay PeerIds we trust
        self.reservations = {}          # relay PeerId -> client.Reservation
        self._lost = {}                 # relay PeerId -> asyncio.Event (its connection closed)
        self._conns = {}                # relay PeerId -> the Connection the slot is held on
        self._link_up = {}              # relay PeerId -> asyncio.Event (dial=False: a connection came)
        self.tasks = TaskGroup(self._task_error)
        self.relayed_in = 0
        self.relayed_out = 0
        self._advertised = []
        node.handle(codec.STOP, self.handle_stop)
        node.on_connection(self._on_connection)
        node.dialer(_is_circuit, self._dial_for_node)

    def _emit(self, name, fields):
        if self.on_event is not None:
            self.on_event(name, fields)

    def _task_error(self, e):
        if isinstance(e, (MicroP2PError, OSError, EOFError, TimeoutError)):
            self.node.log("relay: %s %s" % (type(e).__name__, e))
        else:
            print_exc(e)

    def _on_connection(self, conn, opened):
        if opened:
            ev = self._link_up.get(conn.remote_peer)
            if ev is not None and not is_relayed(conn):
                ev.set()
            return
        for rid in self._conns:
            if self._conns[rid] is conn:
                ev = self._lost.get(rid)
                if ev is not None:
                    ev.set()

    # ---- STOP: a relayed connection to us ------------------------------------------------------
    async def handle_stop(self, st):
        msg = await read_message(st, codec.decode_stop)
        if self.stop_from is not None and st.conn.remote_peer not in self.stop_from:
            await st.write(codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.PERMISSION_DENIED}))
            await st.close()
            return
        answer, initiator, limit = client.stop_answer(msg, self.accept)
        await st.write(answer)
        if initiator is None:
            await st.close()
            return
        relay = st.conn.remote_peer
        base = st.conn.remote_addr
        ra = None
        if base is not None:
            if base.peer_id() is None:
                base = base.encapsulate("/p2p/" + str(relay))
            ra = base.encapsulate("/p2p-circuit/p2p/" + str(initiator))
        else:
            ra = Multiaddr.from_string("/p2p/%s/p2p-circuit/p2p/%s" % (relay, initiator))
        conn = await _upgrade(self.node, st, ra, False)
        if conn is not None:
            conn.relay_limit = limit
            self.relayed_in += 1

    # ---- dialling through a relay --------------------------------------------------------------
    async def _dial_for_node(self, maddr, expected):
        return await self.dial(maddr)

    async def _relay_conn(self, relay_addr, rid):
        conn = self.node.connection_to(rid)
        if conn is None or conn.closed:
            conn = await self.node.dial(relay_addr)
        return conn

    async def dial(self, maddr):
        """A relayed connection to the peer named by the circuit address's last /p2p/ID."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)
        relay_addr, rid, dest = split_circuit(maddr)
        if dest is None:
            raise UsageError("circuit address without a destination /p2p/ID")
        conn = await self._relay_conn(relay_addr, rid)
        st = await self.node.new_stream(conn, [codec.HOP])
        try:
            await st.write(client.connect_request(dest))
            limit = client.connect_response(await read_message(st, codec.decode_hop))
        except BaseException:
            st.reset()
            raise
        out = await _upgrade(self.node, st, maddr, True, dest)
        out.relay_limit = limit
        self.relayed_out += 1
        return out

    # ---- reservations ----------------------------------------------------------------------------
    def reserve(self, relay_maddr, dial=True):
        """Start holding a slot on the relay named by `relay_maddr` (with or without the trailing
        /p2p-circuit); emits relay:reservation on every reservation and renewal.

        dial=False: never dial the relay; the slot is held over a direct connection made by
        someone else (a device's TCP or serial link to its gateway) and taken again on the next
        one after a loss. `relay_maddr` may then be just /p2p/RELAY_ID."""
        if isinstance(relay_maddr, str):
            relay_maddr = Multiaddr.from_string(relay_maddr)
        if "p2p-circuit" in relay_maddr.protocols():
            relay_addr, rid, _ = split_circuit(relay_maddr)
        else:
            relay_addr, rid = relay_maddr, relay_maddr.peer_id()
            if rid is None:
                raise UsageError("relay address needs /p2p/ID")
        if rid in self.reservations:
            return self.reservations[rid]
        if len(self.reservations) >= MAX_RESERVATIONS:
            raise UsageError("already holding %d reservations" % MAX_RESERVATIONS)
        r = client.Reservation(self.node.peer_id, rid, relay_addr)
        self.reservations[rid] = r
        self.tasks.spawn(self._keep(r, relay_addr if dial else None))
        return r

    def release(self, relay_peer):
        """Stop holding the slot on that relay (PeerId); its circuit addresses leave identify."""
        r = self.reservations.pop(relay_peer, None)
        if r is None:
            return
        r.lost()
        for evs in (self._lost, self._link_up):
            ev = evs.get(relay_peer)
            if ev is not None:
                ev.set()
        self._advertise()

    async def _link(self, r):
        """The open direct connection to r's relay, waiting for one (never dialled here); None
        once r is no longer held."""
        rid = r.relay_peer
        while self.reservations.get(rid) is r:
            conn = self.node.connection_to(rid)
            if conn is not None and not is_relayed(conn):
                return conn
            ev = asyncio.Event()
            self._link_up[rid] = ev
            await ev.wait()
            if self._link_up.get(rid) is ev:
                del self._link_up[rid]
        return None

    async def _reserve_once(self, r, conn):
        st = await self.node.new_stream(conn, [codec.HOP])
        try:
            await st.write(r.request())
            msg = await read_message(st, codec.decode_hop)
        except BaseException:
            if r.state == client.PENDING:
                r.state = client.ACTIVE if r.expire > wall_s() else client.FAILED
            st.reset()
            raise
        try:
            evs = r.receive(msg, wall_s())
        finally:
            await st.close()
        return evs

    async def _keep(self, r, relay_addr):
        """Hold r: reserve, refresh before expiry, again after a loss. relay_addr None: only
        over a connection someone else made (no dial; after a loss, wait for the next one)."""
        rid = r.relay_peer
        backoff = RETRY_MIN_MS
        while self.reservations.get(rid) is r:
            lost = asyncio.Event()
            self._lost[rid] = lost
            try:
                if relay_addr is None:
                    conn = await self._link(r)
                    if conn is None:
                        break
                else:
                    conn = await self._relay_conn(relay_addr, rid)
                if is_relayed(conn):
                    raise UsageError("will not reserve over a relayed connection")
                self._conns[rid] = conn
                if conn.closed:
                    lost.set()
                while not lost.is_set() and self.reservations.get(rid) is r:
                    if r.state != client.ACTIVE or r.refresh_due(wall_s()):
                        evs = await self._reserve_once(r, conn)
                        backoff = RETRY_MIN_MS
                        self._advertise()
                        self._emit(E.RELAY_RESERVATION, {
                            "relay": str(rid), "addrs": [str(a) for a in r.addrs], "expire": r.expire,
                            "limit": r.limit, "renewed": evs[0][0] == "renewed"})
                    wait = r.refresh_at - wall_s()
                    if wait < 1:
                        wait = 1
                    try:
                        await asyncio.wait_for(lost.wait(), wait)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except client.RelayRefused as e:
                self._emit(E.RELAY_RESERVATION_ERROR, {"relay": str(rid), "error": str(e),
                                                       "status": codec.status_name(e.status)})
            except Exception as e:
                self._emit(E.RELAY_RESERVATION_ERROR, {"relay": str(rid), "error": "%s: %s" % (type(e).__name__, e)})
            if self.reservations.get(rid) is not r:
                break
            if lost.is_set():
                r.lost()
                self._advertise()
                if relay_addr is None:   # reserved again as soon as the next link is up
                    backoff = RETRY_MIN_MS
                    continue
            await asyncio.sleep(backoff / 1000)
            backoff = min(backoff * 2, RETRY_MAX_MS)

    def _advertise(self):
        """Our circuit addresses are announced in identify while their reservation holds."""
        addrs = self.circuit_addrs()
        for a in self._advertised:
            if a not in addrs:
                self.node.remove_address(a)
        for a in addrs:
            self.node.add_address(a)
        self._advertised = addrs

    def circuit_addrs(self):
        out = []
        for r in self.reservations.values():
            if r.state == client.ACTIVE:
                out.extend(r.addrs)
        return out

    def stop(self):
        self.reservations = {}
        for ev in self._lost.values():
            ev.set()
        self.tasks.cancel()


class RelayHop:
    def __init__(self, node, config=None, on_event=None):
        self.node = node
        ycfg = node.profile.yamux
        if not node.profile.device and ycfg.max_window < HOP_WINDOW:
            ycfg.max_window = HOP_WINDOW   # connections made from now on
        from microp2p.proto.relay import hop as hopmod
        self.hop = hopmod.Hop(node.key, config)
        self.on_event = on_event
        self.tasks = TaskGroup()
        self.connecting = 0       # CONNECTs between admission and splice (STOP in flight)
        node.handle(codec.HOP, self._handle_hop)
        node.on_connection(self._on_connection)

    def _emit(self, name, fields):
        if self.on_event is not None:
            self.on_event(name, fields)

    def _on_connection(self, conn, opened):
        if not opened and conn.remote_peer is not None:
            r = self.hop.reservations.get(conn.remote_peer)
            if r is not None and not r.static and self.node.connection_to(conn.remote_peer) is None:
                self.hop.remove(conn.remote_peer)

    def relay_addrs(self):
        pid = "/p2p/" + str(self.node.peer_id)
        return [a.encapsulate(pid) for a in self.node.advertised_addrs() if "p2p-circuit" not in a.protocols()]

    async def _handle_hop(self, st):
        try:
            msg = await read_message(st, codec.decode_hop)
        except ProtocolError as e:
            await st.write(self.hop.hop_error(codec.MALFORMED_MESSAGE))
            await st.close()
            raise e
        conn = st.conn
        peer = conn.remote_peer
        relayed = is_relayed(conn)
        t = msg["type"]
        if t == codec.RESERVE:
            ip = None
            if conn.remote_addr is not None:
                ip = conn.remote_addr.value_for("ip4") or conn.remote_addr.value_for("ip6")
            self.hop.expire(wall_s())
            answer, status = self.hop.reserve(peer, ip, relayed, wall_s(), self.relay_addrs())
            await st.write(answer)
            await st.close()
            self._emit(E.RELAY_RESERVE, {"peer": str(peer), "status": codec.status_name(status)})
        elif t == codec.CONNECT:
            await self._connect(st, peer, PeerId.from_bytes(msg["peer"]["id"]), relayed)
        else:
            await st.write(self.hop.hop_error(codec.UNEXPECTED_MESSAGE))
            await st.close()

    async def _connect(self, st, src, dst, relayed):
        self.connecting += 1
        try:
            await self._connect_counted(st, src, dst, relayed)
        finally:
            self.connecting -= 1

    async def _connect_counted(self, st, src, dst, relayed):
        h = self.hop
        status, limit = h.admit(src, dst, relayed, wall_s())
        if status == codec.OK and len(h.circuits) + self.connecting > h.config.max_circuits:
            status = codec.RESOURCE_LIMIT_EXCEEDED   # a CONNECT flood: STOPs in flight count too
        dconn = self.node.connection_to(dst) if status == codec.OK else None
        if status == codec.OK and dconn is None:
            status = codec.NO_RESERVATION
        dst_st = None
        if status == codec.OK:
            try:
                dst_st = await asyncio.wait_for(self.node.new_stream(dconn, [codec.STOP]),
                                                STOP_OPEN_TIMEOUT_MS / 1000)
                await dst_st.write(h.stop_request(src, limit))
                status = h.stop_result(await read_message(dst_st, codec.decode_stop))
                if status != codec.OK:
                    status = codec.CONNECTION_FAILED
            except Exception as e:
                self.node.log("relay: stop to %s failed (%s stream): %s %s" % (
                    dst, "open" if dst_st is None else "after open", type(e).__name__, e))
                status = codec.CONNECTION_FAILED
        if status != codec.OK:
            if dst_st is not None:
                dst_st.reset()
            await st.write(h.connect_answer(status))
            await st.close()
            self._emit(E.RELAY_CIRCUIT_REFUSED, {"src": str(src), "dst": str(dst), "status": codec.status_name(status)})
            return
        # Two streams between two peers: both admitted again right before opening (the await
        # above let other CONNECTs in; the caps must hold at this point).
        status, _ = h.admit(src, dst, relayed, wall_s())
        if status != codec.OK:
            dst_st.reset()
            await st.write(h.connect_answer(status))
            await st.close()
            return
        c = h.open_circuit(src, dst, limit, now_ms())
        await st.write(h.connect_answer(codec.OK, limit))
        self._emit(E.RELAY_CIRCUIT_OPEN, {"id": c.id, "src": str(src), "dst": str(dst),
                                          "limited": limit is not None, "circuits": len(h.circuits)})
        reason = await self.splice(st, dst_st, c)
        h.close_circuit(c, cut=reason is not None)
        self._emit(E.RELAY_CIRCUIT_CLOSE, {"id": c.id, "src": str(src), "dst": str(dst),
                                           "bytes": [c.sent[0], c.sent[1]], "reason": reason,
                                           "circuits": len(h.circuits)})

    async def splice(self, a, b, c):
        """Forward a<->b until both directions end. Returns None when they ended by themselves (EOF
        or a reset from an end), else why the relay cut the circuit (a limit, a stalled reader).

        One chunk in flight per direction (read, then written before the next read): a slow reader
        holds the other end back through the yamux windows instead of filling our memory. A
        watchdog (not a timer per write) cuts a write stalled for STALL_TIMEOUT_MS and enforces
        the duration limit."""
        state = {"cut": None, "ended": 0, "since": [None, None]}
        finished = asyncio.Event()

        def end(reason=None):
            if reason is not None and state["cut"] is None:
                state["cut"] = reason
            a.reset()
            b.reset()
            finished.set()

        async def pump(src, dst, direction):
            since = state["since"]
            try:
                while True:
                    n = SPLICE_CHUNK
                    room = c.room(direction)
                    if 0 <= room < n:
                        n = room + 1   # one byte past the limit is enough to know it was crossed
                    data = await src.read(n)
                    if not data:
                        await dst.close()   # half-close: the FIN travels on
                        break
                    why = c.count(direction, len(data))
                    if why is not None:
                        end(why)
                        return
                    since[direction] = ticks_ms()
                    await dst.write(data)
                    since[direction] = None
            except Exception:
                end()   # an end reset its stream or went away: the other end is reset too
                return
            state["ended"] += 1
            if state["ended"] == 2:
                finished.set()

        async def watchdog():
            while not finished.is_set():
                try:
                    await asyncio.wait_for(finished.wait(), WATCHDOG_MS / 1000)
                    return
                except TimeoutError:
                    pass
                now = ticks_ms()
                for t in state["since"]:
                    if t is not None and ticks_diff(now, t) >= STALL_TIMEOUT_MS:
                        end("peer stopped reading for %d ms" % STALL_TIMEOUT_MS)
                        return
                why = c.check(now_ms())
                if why is not None:
                    end(why)
                    return

        self.tasks.spawn(pump(a, b, 0))
        self.tasks.spawn(pump(b, a, 1))
        self.tasks.spawn(watchdog())
        await finished.wait()
        return state["cut"]

    # ---- a gateway's devices -------------------------------------------------------------------
    def add_device(self, peer):
        """An allow-listed peer whose link counts as a reservation without limits."""
        self.hop.add_static(peer)

    def remove_device(self, peer):
        self.hop.remove(peer)
        self.hop.config.unlimited.discard(peer)

    def table(self):
        return {"reservations": len(self.hop.reservations), "circuits": len(self.hop.circuits),
                "stats": dict(self.hop.stats)}
