# The Kademlia DHT driver: runs the sans-IO machines of microp2p.proto.kad over a Node's streams.
#
#   dht = KadDHT(node, mode="client" | "server", protocol="/ipfs/kad/1.0.0")
#   await dht.find_peer(peer_id)          -> [Multiaddr] or None
#   await dht.get_closest_peers(key)      -> [peer id bytes]   (key: peer id or multihash bytes)
#   await dht.provide(multihash)          -> number of peers the ADD_PROVIDER was written to
#   await dht.find_providers(multihash)   -> [(peer id bytes, [Multiaddr])]
#   await dht.bootstrap(addrs)            -> dial, self lookup, refresh loop (every 10 min)
#   dht.set_mode("server")                -> handler + identify push
#
# Client mode (devices): the protocol is neither handled nor listed in identify. Server mode
# (gateways): answers requests from its routing table and stores; several requests per stream,
# a message must complete within READ_TIMEOUT_MS, an idle stream is dropped after
# IDLE_TIMEOUT_MS. The routing table takes only peers that list the protocol in identify (DHT
# servers) or answered one of our queries; a full bucket's oldest peer is pinged before it is
# replaced. Keys we provide are provided again every REPROVIDE_INTERVAL_MS (before the 48 h expiry).
from microp2p.aio import asyncio, TimeoutError
from microp2p.clock import now_ms
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.io.connection import StreamReset
from microp2p.errors import ProtocolError, DecodeError, LimitError, SCOPE_STREAM
from microp2p.proto.kad import codec
from microp2p.proto.kad.table import RoutingTable, key_of, K
from microp2p.proto.kad import lookup as lk_mod
from microp2p.proto.kad.lookup import Lookup

PROTOCOL_ID = codec.PROTOCOL_ID
READ_TIMEOUT_MS = 10000            # one message, once its first byte arrived (go, js)
IDLE_TIMEOUT_MS = 60000            # an inbound stream with no request is dropped (go)
REQUEST_TIMEOUT_MS = 10000         # dial + stream + request + response, per peer
REFRESH_INTERVAL_MS = 600000       # bootstrap / table refresh (spec: 10 min)
REFRESH_MAX_CPL = 10               # buckets refreshed with a random key (deeper: the self lookup)
REPROVIDE_INTERVAL_MS = 22 * 3600 * 1000   # spec: republish every 22 h (records expire at 48 h)
REPROVIDE_CHECK_MS = 60000
MAX_PROVIDED_KEYS = 1024           # keys this node re-provides (device: MAX_PROVIDED_KEYS_DEVICE)
MAX_PROVIDED_KEYS_DEVICE = 8
MAX_DIAL_ADDRS = 3                 # addresses tried per peer
NO_ANSWER_LINGER_MS = 2000         # after an ADD_PROVIDER: wait this long (at most) for the server's EOF
MAX_DIALED = 64                    # connections remembered for closing after a device's lookup
MAX_INBOUND_STREAMS = 64           # concurrent inbound kad streams (server)
PING_CHECK_TIMEOUT_MS = 5000       # liveness check of a full bucket's oldest peer
LOOKUP_WAKE_MS = 500               # how often a running lookup looks at its timers


class Unreachable(OSError):
    """No address of a peer could be dialled. by_limit: only our own connection cap stopped it."""

    def __init__(self, msg, by_limit=False):
        super().__init__(msg)
        self.by_limit = by_limit


def _pid_obj(pid):
    return pid if isinstance(pid, PeerId) else PeerId(bytes(pid))


def _dialable(addr, pid):
    """addr with /p2p/<pid> (added when missing), or None when it is not a TCP address we dial."""
    s = str(addr)
    if "/tcp/" not in s:
        return None
    tail = "/p2p/" + PeerId(pid).to_base58()
    if "/p2p/" in s and not s.endswith(tail):
        if "/p2p-circuit" not in s:
            return None
    if not s.endswith(tail):
        s += tail
    return s


class KadDHT:
    def __init__(self, node, mode="client", protocol=PROTOCOL_ID, alpha=None, k=K, max_queries=None,
                 stores=None):
        self.node = node
        self.protocol = protocol
        self.device = bool(getattr(node.profile, "device", False))
        self.alpha = alpha or (lk_mod.ALPHA_DEVICE if self.device else lk_mod.ALPHA_GATEWAY)
        self.max_queries = max_queries or (lk_mod.MAX_QUERIES_DEVICE if self.device else lk_mod.MAX_QUERIES)
        self.k = k
        self.local_id = node.peer_id.to_bytes()
        self.table = RoutingTable(self.local_id, k)
        self.mode = None
        self.server = None
        self._stores = stores          # (ProviderStore, RecordStore) to use in server mode
        self.addr_hooks = []           # fn(pid bytes) -> [Multiaddr]: peers we can name addresses for
        self.provided = {}             # multihash -> last provided (ms)
        self.inbound_streams = 0
        self.stats = {"requests_out": 0, "requests_failed": 0, "requests_in": 0, "lookups": 0}
        self._refresh_task = None
        self._reprovide_task = None
        self._checking = set()
        self.close_dialed = self.device  # close what lookups dialled when they are done
        self._dialed = []                # connections our lookups dialled (devices: closed after)
        self._ops = 0
        self._identify_waiters = {}    # peer id bytes -> Event (bootstrap waits for identify)
        node.on_connection(self._on_connection)
        node.identify.on_identify(self._on_identified)
        self.set_mode(mode, push=False)

    # ---- modes -------------------------------------------------------------------------------
    def set_mode(self, mode, push=True):
        if mode not in ("client", "server"):
            raise ValueError("dht mode must be client or server")
        if mode == self.mode:
            return
        self.mode = mode
        if mode == "server":
            if self.server is None:
                from microp2p.proto.kad.server import Server
                from microp2p.proto.kad.store import ProviderStore, RecordStore
                provs, recs = self._stores or (ProviderStore(), RecordStore())
                self.server = Server(self.local_id, self.table, provs, recs, self.peer_addrs, self.k)
            self.node.handle(self.protocol, self._serve)
        else:
            self.node.unhandle(self.protocol)
        if push and getattr(self.node, "identify", None) is not None:
            self.node.identify.push()   # peers learn the mode change

    # ---- routing table upkeep ----------------------------------------------------------------
    def _on_connection(self, conn, opened):
        if opened and conn.identified:
            self._on_identified(conn, conn.identified)

    def _on_identified(self, conn, info):
        if conn.closed or conn.remote_peer is None:
            return
        protos = info.get("protocols") or ()
        pid = conn.remote_peer.to_bytes()
        ev = self._identify_waiters.pop(pid, None)
        if ev is not None:
            ev.set()
        if self.protocol in protos:
            self._offer(pid, list(info.get("listen_addrs") or ())[:8])
        elif self.table.get(pid) is not None:
            self.table.remove(pid)   # it switched to client mode

    def _offer(self, pid, addrs):
        r = self.table.add(pid, addrs, now_ms())
        if r[0] == "check" and r[1] not in self._checking:
            self._checking.add(r[1])
            self.node.spawn(self._check(r[1]))

    async def _check(self, pid):
        alive = False
        try:
            conn = self.node.connection_to(_pid_obj(pid))
            if conn is None:
                e = self.table.get(pid)
                if e is not None:
                    conn = await asyncio.wait_for(self.connect(pid, e[2]), PING_CHECK_TIMEOUT_MS / 1000)
            if conn is not None:
                await asyncio.wait_for(self.node.ping(conn, 1), PING_CHECK_TIMEOUT_MS / 1000)
                alive = True
        except Exception as e:
            self.node.log("kad: liveness check of %s failed: %s" % (PeerId(pid), e))
        finally:
            self._checking.discard(pid)
        self.table.check_result(pid, alive, now_ms())

    def peer_addrs(self, pid):
        """Addresses we know for pid: a connection's identify listen addresses, the routing
        table, then the addr hooks (e.g. a gateway's devices behind a relay)."""
        if pid == self.local_id:
            return list(self.node.advertised_addrs())
        conn = self.node.connection_to(_pid_obj(pid))
        if conn is not None and conn.identified:
            addrs = list(conn.identified.get("listen_addrs") or ())
            if addrs:
                return addrs[:8]
        e = self.table.get(pid)
        if e is not None and e[2]:
            return e[2]
        for hook in self.addr_hooks:
            addrs = hook(pid)
            if addrs:
                return addrs
        return []

    # ---- server side -------------------------------------------------------------------------
    async def _serve(self, st):
        if self.inbound_streams >= MAX_INBOUND_STREAMS:
            st.reset()
            return
        self.inbound_streams += 1
        try:
            sender = st.conn.remote_peer.to_bytes()
            reader = codec.Reader()
            while True:
                wait = READ_TIMEOUT_MS if reader.pending else IDLE_TIMEOUT_MS
                try:
                    data = await asyncio.wait_for(st.read(), wait / 1000)
                except TimeoutError:
                    st.reset()
                    return
                if not data:
                    if reader.pending:
                        raise DecodeError("kad stream ended inside a message", SCOPE_STREAM)
                    await st.close()
                    return
                for body in reader.receive(data):
                    msg = codec.decode(body)
                    self.stats["requests_in"] += 1
                    out = self.server.handle(sender, msg, now_ms())
                    if out is not None:
                        await st.write(out)
        finally:
            self.inbound_streams -= 1

    # ---- client side: one request ------------------------------------------------------------
    async def connect(self, pid, addrs):
        conn = self.node.connection_to(_pid_obj(pid))
        if conn is not None:
            return conn
        err = None
        tried = 0
        for a in addrs:
            s = _dialable(a, pid)
            if s is None:
                continue
            tried += 1
            try:
                conn = await asyncio.wait_for(self.node.dial(s), REQUEST_TIMEOUT_MS / 1000)
                if self.close_dialed and len(self._dialed) < MAX_DIALED:
                    self._dialed.append(conn)
                return conn
            except Exception as e:
                err = e
            if tried >= MAX_DIAL_ADDRS:
                break
        raise Unreachable("cannot reach %s: %s" % (PeerId(pid), err or "no dialable address"),
                          isinstance(err, LimitError))

    async def _request(self, pid, addrs, framed, want_answer=True):
        """One request on a new stream. Bounded without an outer wait_for (whose inner task can
        end with an exception nobody retrieves once the lookup has moved on): the dial and the
        stream negotiation have the node's own timeouts, the answer REQUEST_TIMEOUT_MS."""
        self.stats["requests_out"] += 1
        had = self.node.connection_to(_pid_obj(pid)) is not None
        conn = await self.connect(pid, addrs)
        try:
            return await self._exchange(conn, framed, want_answer)
        finally:
            if self.close_dialed and not had and not conn.closed:
                # a device hangs up at once: it may hold only a few connections (lookups hop on)
                conn.close()

    async def _exchange(self, conn, framed, want_answer):
        st = await self.node.new_stream(conn, [self.protocol])
        try:
            await st.write(framed)
            if not want_answer:
                # no answer comes; the server's end of the stream (after it read ours) says the
                # request arrived, before a device hangs up the connection
                await st.close()
                try:
                    while await asyncio.wait_for(st.read(), NO_ANSWER_LINGER_MS / 1000):
                        pass
                except (TimeoutError, StreamReset, OSError):
                    pass
                return None
            reader = codec.Reader()
            deadline = now_ms() + REQUEST_TIMEOUT_MS
            while True:
                left = deadline - now_ms()
                if left <= 0:
                    raise TimeoutError()
                data = await asyncio.wait_for(st.read(), left / 1000)
                if not data:
                    raise DecodeError("kad stream closed before the answer", SCOPE_STREAM)
                got = reader.receive(data)
                if got:
                    await st.close()
                    return codec.decode(got[0])
        except BaseException:
            st.reset()
            raise

    async def _query(self, lk, pid, addrs, framed, wake):
        try:
            msg = await self._request(pid, addrs, framed)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats["requests_failed"] += 1
            self.node.log("kad: query to %s failed: %s %s" % (PeerId(pid), type(e).__name__, e))
            if isinstance(e, Unreachable) and not e.by_limit:
                self.table.remove(pid)   # gone (or never reachable): stop handing it out
            lk.on_failure(pid, now_ms())
            wake.set()
            return
        lk.on_response(pid, msg, now_ms())
        e = self.table.get(pid)
        self._offer(pid, addrs if addrs else (e[2] if e else []))  # it answered: a DHT server
        wake.set()

    # ---- lookups -----------------------------------------------------------------------------
    def _seeds(self, key):
        return [(e[0], e[2]) for e in self.table.closest(key_of(key), self.k)]

    async def _run(self, kind, key, **kw):
        self.stats["lookups"] += 1
        kw.setdefault("alpha", self.alpha)
        kw.setdefault("max_queries", self.max_queries)
        lk = Lookup(kind, key, self.local_id, self._seeds(key), now_ms(), k=self.k, **kw)
        wake = asyncio.Event()
        tasks = []
        try:
            while not lk.done:
                for pid, addrs, framed in lk.next_requests(now_ms()):
                    tasks.append(self.node.spawn(self._query(lk, pid, addrs, framed, wake)))
                if lk.done:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), LOOKUP_WAKE_MS / 1000)
                except TimeoutError:
                    pass
                lk.tick(now_ms())
        finally:
            for t in tasks:
                t.cancel()
        return lk

    async def _get_closest_peers(self, key):
        lk = await self._run(codec.FIND_NODE, bytes(key))
        return [p for p, _ in lk.closest()]

    async def _find_peer(self, pid, local=True):
        """Addresses of pid, or None. local: answer from what we know when we can (a connection's
        identify, our routing table: as js's findPeerLocal), else a FIND_NODE lookup that stops
        as soon as some peer names the target's addresses."""
        pid = _pid_obj(pid).to_bytes()
        if local:
            conn = self.node.connection_to(_pid_obj(pid))
            addrs = self.peer_addrs(pid)
            if addrs:
                return addrs
            if conn is not None and conn.remote_addr is not None:
                return [conn.remote_addr]
        lk = await self._run(codec.FIND_NODE, pid, stop_on_target=True)
        return lk.found or None

    def _self_provider(self):
        return (self.local_id, list(self.node.advertised_addrs())[:8])

    async def _provide(self, key):
        """Announce that we provide key (a multihash) to the k closest peers; remembered for
        re-providing. Returns how many peers the ADD_PROVIDER was written to."""
        key = bytes(key)
        cap = MAX_PROVIDED_KEYS_DEVICE if self.device else MAX_PROVIDED_KEYS
        if key not in self.provided and len(self.provided) >= cap:
            raise LimitError("already providing %d keys" % cap)
        self.provided[key] = now_ms()
        me = self._self_provider()
        if self.server is not None and me[1]:
            self.server.providers.add(key, me[0], [a.to_bytes() for a in me[1]], now_ms())
        lk = await self._run(codec.FIND_NODE, key)
        if not me[1]:
            self.node.log("kad: provide without a listen address: peers ignore it")
        framed = codec.frame(codec.encode(codec.Message(codec.ADD_PROVIDER, key, providers=[me])))
        n = 0
        jobs = []
        for pid, addrs in lk.closest():
            jobs.append(self._add_provider(pid, addrs, framed))
        for ok in await asyncio.gather(*jobs):
            if ok:
                n += 1
        self._start_reprovide()
        return n

    async def _add_provider(self, pid, addrs, framed):
        try:
            await self._request(pid, addrs, framed, False)
            return True
        except Exception as e:
            self.node.log("kad: ADD_PROVIDER to %s failed: %s" % (PeerId(pid), e))
            return False

    async def _find_providers(self, key, count=lk_mod.MAX_PROVIDERS):
        key = bytes(key)
        found = []
        if self.server is not None:
            for pid, addrs in self.server.providers.get(key, now_ms(), count):
                found.append((pid, [Multiaddr.from_bytes(a) for a in addrs]))
        if len(found) >= count:
            return found[:count]
        lk = await self._run(codec.GET_PROVIDERS, key, max_providers=count)
        seen = set(p for p, _ in found)
        for p in lk.providers:
            if p[0] not in seen:
                found.append(p)
        return found[:count]

    # ---- records (validated namespaces: /pk by default) ---------------------------------------
    async def _put_value(self, key, value):
        """Validate, then PUT_VALUE to the k closest peers; returns how many echoed it back."""
        from microp2p.proto.kad.store import RecordStore
        key = bytes(key)
        value = bytes(value)
        (self.server.records if self.server is not None else RecordStore()).validate(key, value)
        if self.server is not None:
            self.server.records.put(key, value, now_ms())
        lk = await self._run(codec.FIND_NODE, key)
        framed = codec.frame(codec.encode(codec.Message(codec.PUT_VALUE, key, record=(key, value))))

        async def one(pid, addrs):
            try:
                r = await self._request(pid, addrs, framed)
                return r.record == (key, value)   # the server echoes what it stored (go checks this)
            except Exception as e:
                self.node.log("kad: PUT_VALUE to %s failed: %s" % (PeerId(pid), e))
                return False

        oks = await asyncio.gather(*[one(p, a) for p, a in lk.closest()])
        return sum(1 for ok in oks if ok)

    async def _get_value(self, key):
        """The first valid record for key found (our store first), or None."""
        from microp2p.proto.kad.store import RecordStore
        key = bytes(key)
        if self.server is not None:
            v = self.server.records.get(key, now_ms())
            if v is not None:
                return v
        rs = self.server.records if self.server is not None else RecordStore()
        lk = await self._run(codec.GET_VALUE, key, validate=rs.validate)
        return lk.record[1] if lk.record is not None else None

    # ---- the public operations --------------------------------------------------------------
    # On a device (few connections allowed) the connections a lookup dialled are closed once no
    # operation runs any more; a gateway keeps them (the next lookup reuses them).
    async def _op(self, coro):
        self._ops += 1
        try:
            return await coro
        finally:
            self._ops -= 1
            if self._ops == 0 and self.close_dialed:
                for conn in self._dialed:
                    if not conn.closed:
                        conn.close()
                self._dialed = []

    async def get_closest_peers(self, key):
        """The k closest peers to key (peer id or multihash bytes) that answered: [id bytes]."""
        return await self._op(self._get_closest_peers(key))

    async def find_peer(self, pid, local=True):
        """Addresses of pid ([Multiaddr]) or None."""
        return await self._op(self._find_peer(pid, local))

    async def provide(self, key):
        """Provide key (a multihash); returns how many peers the ADD_PROVIDER was written to."""
        return await self._op(self._provide(key))

    async def find_providers(self, key, count=lk_mod.MAX_PROVIDERS):
        """Up to count providers of key: [(id bytes, [Multiaddr])]."""
        return await self._op(self._find_providers(key, count))

    async def put_value(self, key, value):
        return await self._op(self._put_value(key, value))

    async def get_value(self, key):
        return await self._op(self._get_value(key))

    # ---- bootstrap, refresh, re-provide ------------------------------------------------------
    async def bootstrap(self, addrs=()):
        """Dial the bootstrap peers, look ourselves up, and keep the table fresh every
        REFRESH_INTERVAL_MS. Returns how many bootstrap peers were reached."""
        ok = 0
        for a in addrs:
            try:
                await self.dial_identified(a)
                ok += 1
            except Exception as e:
                self.node.log("kad: bootstrap %s failed: %s" % (a, e))
        await self.refresh()
        if self._refresh_task is None:
            self._refresh_task = self.node.spawn(self._refresh_loop())
        return ok

    async def dial_identified(self, addr):
        """Dial addr and wait (bounded) for its identify: the routing table fills from it."""
        if isinstance(addr, str):
            addr = Multiaddr.from_string(addr)
        pid = addr.value_for("p2p")
        ev = None
        if pid is not None:
            key = PeerId.from_string(pid).to_bytes()
            ev = self._identify_waiters.get(key)
            if ev is None:
                ev = asyncio.Event()
                self._identify_waiters[key] = ev
        try:
            conn = await self.node.dial(addr)
            if ev is not None and conn.identified is None:
                await asyncio.wait_for(ev.wait(), self.node.profile.identify_timeout_ms / 1000)
        except TimeoutError:
            self.node.log("kad: no identify from %s" % addr)
        finally:
            if pid is not None:
                self._identify_waiters.pop(PeerId.from_string(pid).to_bytes(), None)
        return conn

    async def refresh(self):
        """A self lookup, then (servers) a random-key lookup per bucket up to REFRESH_MAX_CPL."""
        await self._op(self._refresh())

    async def _refresh(self):
        await self._run(codec.FIND_NODE, self.local_id)
        if self.mode == "server" and not self.device:
            for cpl in self.table.bucket_cpls():
                if cpl > REFRESH_MAX_CPL:
                    break
                key = self.table.random_id_in_bucket(cpl)
                if key is not None:
                    await self._run(codec.FIND_NODE, key)

    async def _refresh_loop(self):
        while True:
            await asyncio.sleep(REFRESH_INTERVAL_MS / 1000)
            try:
                await self.refresh()
            except Exception as e:
                self.node.log("kad: refresh failed: %s" % e)

    def _start_reprovide(self):
        if self._reprovide_task is None:
            self._reprovide_task = self.node.spawn(self._reprovide_loop())

    def due_reprovides(self, now):
        return [k for k in self.provided if now - self.provided[k] >= REPROVIDE_INTERVAL_MS]

    async def _reprovide_loop(self):
        while True:
            await asyncio.sleep(REPROVIDE_CHECK_MS / 1000)
            for key in self.due_reprovides(now_ms()):
                try:
                    await self.provide(key)
                except Exception as e:
                    self.node.log("kad: re-provide failed: %s" % e)
