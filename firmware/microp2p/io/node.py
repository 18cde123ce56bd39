# The libp2p node: listeners, dials, connections, protocol handlers and the built-in services
# (identify, ping), driven with asyncio on CPython and MicroPython. The public API for apps is
# documented in docs/api.md:
#
#   node = Node(key, Profile.device(), on_event=fn(name, fields), log=fn(text))
#   node.handle("/my/proto/1.0.0", async handler(stream))
#   node.on_connection(fn(conn, opened))
#   await node.listen("/ip4/0.0.0.0/tcp/4001")      -> bound Multiaddr (advertised in identify)
#   conn = await node.dial("/ip4/…/tcp/…/p2p/12D3…")
#   st = await node.new_stream(peer_or_conn, ["/my/proto/1.0.0"])
#   rtts = await node.ping(peer, count)
#   await node.stop()
#
#   await node.dial_stream(duplex, remote_addr, expected_peer) / accept_stream(duplex, ...)
#       the same libp2p connection over ANY duplex byte stream (async read(n), write(b), close()):
#       a serial link, a relayed stream. io.tcp.StreamPair makes one of an asyncio reader/writer.
from microp2p import crypto
from microp2p import events as E
from microp2p.aio import asyncio, print_exc, TimeoutError, TaskGroup
from microp2p.clock import now_ms
from microp2p.conn import mss, noise
from microp2p.conn.upgrade import NOISE, YAMUX
from microp2p.errors import ProtocolError, LimitError, AuthError
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p.codec.multiaddr import Multiaddr
from microp2p.io import tcp
from microp2p.io.connection import Connection, Prefixed, StreamReset, negotiate, close_quietly
from microp2p.io.identify import IdentifyService
from microp2p.io.profile import Profile
from microp2p.io.resources import ResourceManager

STOP_TIMEOUT_MS = 1000        # how long stop() waits for connections to flush their GoAway
REFUSAL_REPORTS_PER_S = 10    # limit refusals reported (event + log) per second; the rest are counted
# Refusals that say why: a listener whose admit() answers with a reason opens this stream on the
# refused connection, writes the reason (UTF-8, at most REFUSAL_MAX bytes) and closes; the peer's
# node reports it as a "connection:refused-by-peer" event and keeps it on conn.refusal.
REFUSED = "/microp2p/refused/1.0.0"
PING = "/ipfs/ping/1.0.0"     # proto.ping.PROTOCOL_ID; the service (io/ping.py) loads on first use
REFUSAL_MAX = 256
REFUSE_TIMEOUT_MS = 1000      # how long a refused connection may stay open to carry its reason


class Node:
    def __init__(self, key=None, profile=None, on_event=None, log=None):
        self.key = key or Ed25519PrivateKey.generate()
        self.peer_id = PeerId.from_public_key(self.key.public_key)
        self.profile = profile or Profile()
        self.on_event = on_event
        self.log_fn = log
        self.handlers = {}
        self.connections = []
        self.listen_addrs = []       # every address bound by listen()
        self._advertised = []        # the ones identify announces (listen(advertise=True) + added)
        self.servers = []
        self._listeners = []         # fn(conn, opened)
        # every connection, pending upgrade, stream and buffered byte is accounted here
        # (docs/resources.md); allow: the peer ids given reserved capacity (a gateway's devices)
        self.resources = ResourceManager(self.profile.limits)
        self._tasks = TaskGroup(self._task_error)
        self._ticker = None
        self._stopped = False
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        # One Noise static key per node, its identity signature computed once: saves an Ed25519
        # sign per handshake (seconds on a microcontroller).
        sp, sig = noise.make_static(self.key)
        self.noise_static = (sp, sig, crypto.x25519_public(sp))
        self.identify = IdentifyService(self)
        self.pinger = None            # io.ping.PingService, made by _ping_service()
        self.handle(PING, self._ping_stream)
        self.handle(REFUSED, self._on_refusal)

    # ---- plumbing ---------------------------------------------------------------------------
    def emit(self, name, fields):
        """Report an event (see microp2p.events) to on_event; its errors never reach the node."""
        if self.on_event is not None:
            try:
                self.on_event(name, fields)
            except Exception as e:
                print_exc(e)

    def log(self, msg):
        if self.log_fn is not None:
            self.log_fn(msg)

    @property
    def _pending_upgrades(self):
        return self.resources.pending

    def spawn(self, coro):
        """Run coro as a task the node owns: kept until it ends, cancelled by stop(); expected
        network errors are logged, anything else is printed, never raised into the loop."""
        return self._tasks.spawn(coro)

    def _task_error(self, e):
        if isinstance(e, (ProtocolError, OSError, EOFError, StreamReset, TimeoutError)):
            self.log("task ended: %s %s" % (type(e).__name__, e))
        else:
            print_exc(e)

    def handle(self, protocol, handler):
        """handler: async def handler(stream) — runs after the protocol is agreed on an inbound
        stream. A ProtocolError/OSError it raises resets that stream only."""
        self.handlers[protocol] = handler

    def unhandle(self, protocol):
        self.handlers.pop(protocol, None)

    def protocols(self):
        return sorted(self.handlers.keys())

    def on_connection(self, fn):
        """fn(conn, opened: bool) on every connection that opens (after the upgrade) or closes."""
        self._listeners.append(fn)
        for conn in self.connections:
            fn(conn, True)

    # ---- addresses ---------------------------------------------------------------------------
    def advertised_addrs(self):
        """The addresses identify announces (listen(advertise=True) ones and add_address())."""
        return list(self._advertised)

    def add_address(self, maddr):
        """Announce one more address of ours (e.g. a relay circuit address)."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)
        if maddr not in self._advertised:
            self._advertised.append(maddr)

    def remove_address(self, maddr):
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)
        if maddr in self._advertised:
            self._advertised.remove(maddr)

    # ---- listen / dial -----------------------------------------------------------------------
    async def listen(self, maddr, admit=None, advertise=True, reserved=None):
        """Listen on a TCP multiaddr; returns the bound address (the real port for /tcp/0).
        admit(peer_id) -> True | False | "reason", when given, is asked after the handshake (the
        earliest moment the remote's identity is proven); False closes it, a reason is told to
        the peer first (REFUSED) so it can say why and back off. advertise=False keeps the address
        out of identify (e.g. a gateway's device port). reserved (default: admit is given): a
        device listener, which may use the reserved pending/connection slots and has no per-IP
        limits; any other listener is public (per-IP limits, never the reserved slots)."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)
        if reserved is None:
            reserved = admit is not None
        key = [str(maddr)]

        async def on_conn(reader, writer):
            pair = tcp.StreamPair(reader, writer)
            await self.accept_stream(pair, pair.remote_multiaddr(), admit, privileged=reserved,
                                     listener=key[0], public=not reserved)

        server, bound = await tcp.listen(maddr, on_conn)
        key[0] = str(bound)
        self.servers.append(server)
        self.listen_addrs.append(bound)
        if advertise:
            self._advertised.append(bound)
        self.start()
        return bound

    def start(self):
        """Start the node's timers (keepalives); listen() and dials do it themselves."""
        if self._ticker is None and not self._stopped:
            self._ticker = self.spawn(self._tick_loop())

    async def accept_stream(self, duplex, remote_addr=None, admit=None, relayed=False,
                            privileged=False, listener=None, public=False):
        """Run the listener side of a libp2p connection over any duplex byte stream. Returns the
        Connection, or None when refused or failed (the duplex is closed then).
        privileged: a serial link or device listener (reserved slots); public: per-IP limits
        apply (remote_addr's IP); listener: the pending-upgrade pool it counts in."""
        ip = _ip_of(remote_addr) if public else None
        try:
            try:
                pending = self._open_pending(listener, ip, public, privileged)
            except LimitError as e:
                pending, duplex = await self._overflow(e, duplex, listener, ip, public, privileged)
        except LimitError as e:
            n = self._report_refusal()
            if n:
                self.log("inbound connection refused: %s" % e)
                ev = {"addr": str(remote_addr) if remote_addr else None, "reason": "limit", "limit": str(e)}
                if n > 1:
                    ev["suppressed"] = n - 1   # refusals not reported since the last one
                self.emit(E.CONNECTION_REFUSED, ev)
            await close_quietly(duplex)
            return None
        conn = Connection(self, duplex, False, remote_addr, relayed)
        pending.evict = conn.close     # ends the upgrade: its read fails, _upgrade cleans up
        pending.stalled = conn.upgrade_stalled
        await self._upgrade(conn, None, admit, pending)
        return None if conn.closed else conn

    _refusals = None   # [window start ms, reported in it, not reported since the last report]

    def _report_refusal(self):
        """Limit refusals are reported (event + log line) at most REFUSAL_REPORTS_PER_S times a
        second, so a flood of connections cannot flood stdout or the log (the resource stats
        count every one). Returns 0 (stay quiet) or 1 + the refusals left unreported before."""
        now = now_ms()
        r = self._refusals
        if r is None or now - r[0] >= 1000:
            r = self._refusals = [now, 0, r[2] if r is not None else 0]
        if r[1] >= REFUSAL_REPORTS_PER_S:
            r[2] += 1
            return 0
        r[1] += 1
        n = 1 + r[2]
        r[2] = 0
        return n

    def _open_pending(self, listener, ip, public, privileged):
        rm = self.resources
        now = now_ms()
        try:
            return rm.open_pending(listener, ip, public, privileged, now)
        except LimitError as e:
            limit = getattr(e, "limit", None)
            if limit == "max_conns":
                # full: an idle unprivileged connection may make room (trim), then one more try
                if not self._trim(privileged):
                    raise
            else:
                raise
        return rm.open_pending(listener, ip, public, privileged, now)

    async def _overflow(self, e, duplex, listener, ip, public, privileged):
        """The upgrade pool is full (e): hold the newcomer a moment; if it talks (an honest dialer
        sends its multistream header at once), the oldest silent upgrade gives it its slot. A
        slowloris refilling the pool with silent sockets then cannot keep talking peers out.
        Returns (pending, duplex with the bytes read put back) or raises e."""
        rm = self.resources
        limit = getattr(e, "limit", None)
        if limit not in ("max_pending", "max_pending_per_listener"):
            raise e
        tok = rm.take_overflow(lambda: self.spawn(close_quietly(duplex)), ip, now_ms())
        if tok is None:
            raise e
        try:
            first = await asyncio.wait_for(duplex.read(self.profile.read_size),
                                           rm.profile.overflow_wait_ms / 1000)
        except Exception:
            first = None
        finally:
            rm.give_overflow(tok)
        if not first or not rm.evict_pending(listener if limit == "max_pending_per_listener" else None, now_ms()):
            raise e
        return rm.open_pending(listener, ip, public, privileged, now_ms()), Prefixed(duplex, first)

    def _trim(self, privileged=False):
        rm = self.resources
        # called on a refusal at max_conns: that refusal is the signal (no high-water check)
        c = rm.trim_candidate(now_ms(), [x.scope for x in self.connections if x.scope is not None])
        if c is None or c.owner is None:
            return False
        self.log("trimming idle connection to %s" % c.peer)
        rm.count_drop("conns_trimmed", c.peer)
        c.owner.close()
        c.close()  # its slot is free now; the socket closes in the background
        return True

    async def dial_stream(self, duplex, remote_addr=None, expected_peer=None, admit=None, relayed=False,
                          _pending=None):
        """The dialer side over any duplex byte stream (a serial link, a relayed stream).
        Returns the Connection; raises on failure (the duplex is closed then)."""
        if _pending is None:
            try:
                _pending = self._open_pending(None, None, False, False)
            except LimitError:
                await close_quietly(duplex)
                raise
        conn = Connection(self, duplex, True, remote_addr, relayed)
        await self._upgrade(conn, expected_peer, admit, _pending)
        if conn.closed:
            raise OSError("upgrade failed")
        self.start()
        return conn

    async def dial(self, maddr):
        """Dial a TCP multiaddr (with /p2p/ID to check the remote's identity). Returns the
        Connection. Transports for other addresses (relay circuits) register with dialer()."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)
        expected = None
        pid = maddr.value_for("p2p")
        if pid is not None:
            expected = PeerId.from_string(pid)
        for match, dial_fn in self._dialers:
            if match(maddr):
                return await dial_fn(maddr, expected)
        # the slot is taken before the socket exists: a node never holds more than max_conns
        pending = self._open_pending(None, None, False, False)
        try:
            reader, writer = await tcp.dial(maddr)
        except BaseException:
            pending.release()
            raise
        return await self.dial_stream(tcp.StreamPair(reader, writer), maddr, expected, _pending=pending)

    _dialers = ()

    def dialer(self, match, dial_fn):
        """Route dials of addresses for which match(maddr) is true to dial_fn(maddr, expected_peer)
        (e.g. the relay client for /p2p-circuit addresses)."""
        self._dialers = tuple(self._dialers) + ((match, dial_fn),)

    async def _upgrade(self, conn, expected, admit=None, pending=None):
        try:
            await asyncio.wait_for(conn.upgrade(expected), self.profile.handshake_timeout_ms / 1000)
            verdict = True if admit is None else admit(conn.remote_peer)
            if verdict is not True:
                reason = verdict if isinstance(verdict, str) and verdict else "not admitted"
                self.emit(E.CONNECTION_REFUSED, {"peer": str(conn.remote_peer), "reason": reason,
                                                 "addr": str(conn.remote_addr) if conn.remote_addr else None})
                if isinstance(verdict, str) and verdict:
                    await self._tell_refusal(conn, verdict)
                raise AuthError("peer %s not admitted" % conn.remote_peer)
            if pending is not None:
                try:
                    conn.scope = pending.promote(conn.remote_peer, now_ms(), conn.outbound)
                except LimitError as e:
                    self.emit(E.CONNECTION_REFUSED, {"peer": str(conn.remote_peer), "reason": "limit",
                                                     "limit": str(e),
                                                     "addr": str(conn.remote_addr) if conn.remote_addr else None})
                    raise
                conn.scope.owner = conn
        except Exception as e:
            if pending is not None:
                pending.release()
            self.log("upgrade failed (%s): %s %s" % ("out" if conn.outbound else "in", type(e).__name__, e))
            await close_quietly(conn.duplex)
            conn.closed = True
            if conn.outbound:
                raise
            return
        self.connections.append(conn)
        self._no_connections.clear()
        conn.start()
        fields = {
            "peer": str(conn.remote_peer),
            "addr": str(conn.remote_addr) if conn.remote_addr else None,
            "direction": "outbound" if conn.outbound else "inbound",
            "muxer": YAMUX, "encryption": NOISE,
        }
        if conn.relayed:
            fields["relayed"] = True
        self.emit(E.CONNECTION_OPEN, fields)
        for fn in self._listeners:
            try:
                fn(conn, True)
            except Exception as e:
                print_exc(e)

    async def _tell_refusal(self, conn, reason):
        """Carry the reason to a refused peer on its own stream (bounded in time), then close."""
        conn.accept_streams = False
        conn.start()
        try:
            st = await asyncio.wait_for(conn.new_stream([REFUSED]), REFUSE_TIMEOUT_MS / 1000)
            await st.write(reason.encode()[:REFUSAL_MAX])
            await st.close()
            await asyncio.wait_for(st.read(1), REFUSE_TIMEOUT_MS / 1000)  # the peer's EOF: it has read it
        except (ProtocolError, OSError, EOFError, StreamReset, TimeoutError) as e:
            self.log("refusal to %s not delivered: %s %s" % (conn.remote_peer, type(e).__name__, e))
        conn.close()
        try:
            await asyncio.wait_for(conn.closed_event.wait(), REFUSE_TIMEOUT_MS / 1000)
        except TimeoutError:
            pass

    async def _on_refusal(self, st):
        data = await st.read_all(REFUSAL_MAX)
        await st.close()
        try:
            reason = data.decode()
        except UnicodeError:
            reason = repr(bytes(data))
        st.conn.refusal = reason
        self.emit(E.CONNECTION_REFUSED_BY_PEER, {"peer": str(st.conn.remote_peer), "reason": reason})

    def forget_connection(self, conn):
        """Called by a Connection once it has closed."""
        if conn in self.connections:
            self.connections.remove(conn)
            if not self.connections:
                self._no_connections.set()
            self.emit(E.CONNECTION_CLOSE, {"peer": str(conn.remote_peer)})
            for fn in self._listeners:
                try:
                    fn(conn, False)
                except Exception as e:
                    print_exc(e)

    def connection_to(self, peer):
        for c in self.connections:
            if c.remote_peer == peer and not c.closed:
                return c
        return None

    async def _tick_loop(self):
        while not self._stopped:
            await asyncio.sleep(self.profile.tick_ms / 1000)
            now = now_ms()
            for c in list(self.connections):
                try:
                    c.tick(now)
                except ProtocolError as e:
                    self.log("keepalive: %s" % e)
                    c.close()

    # ---- streams -----------------------------------------------------------------------------
    async def serve_stream(self, conn, st):
        """Called by a Connection for every inbound stream: negotiate, then run the handler."""
        try:
            proto = await asyncio.wait_for(
                negotiate(st, mss.Listener(lambda p: p in self.handlers)),
                self.profile.negotiate_timeout_ms / 1000)
        except BaseException as e:
            st.reset()
            if isinstance(e, asyncio.CancelledError):
                raise
            self.log("inbound stream negotiation failed: %s %s" % (type(e).__name__, e))
            return
        if st.scope is not None:
            try:
                st.scope.set_protocol(proto)   # e.g. at most 2 concurrent identify pushes a peer
            except LimitError as e:
                self.log("%s: %s" % (proto, e))
                st.reset()
                return
        try:
            await self.handlers[proto](st)
        except (ProtocolError, OSError, EOFError, StreamReset, TimeoutError) as e:
            self.log("%s: %s %s" % (proto, type(e).__name__, e))
            st.reset()

    async def new_stream(self, peer, protocols):
        """Open a stream to a connected peer (PeerId or Connection) and negotiate one of
        protocols (in preference order); stream.protocol says which."""
        conn = peer if isinstance(peer, Connection) else self.connection_to(peer)
        if conn is None:
            raise OSError("not connected to %s" % peer)
        return await conn.new_stream(protocols)

    async def ping(self, peer, count=1, on_rtt=None):
        """RTTs in ms (float) for count pings over one stream."""
        return await self._ping_service().ping(peer, count, on_rtt)

    def _ping_service(self):
        # Loaded on the first ping sent or answered: a device is seldom pinged (its gateway
        # watches the link with yamux keepalives), so the code stays out of its heap till then.
        if self.pinger is None:
            from microp2p.io.ping import PingService
            self.pinger = PingService(self)   # takes over the PING handler
        return self.pinger

    async def _ping_stream(self, st):
        await self._ping_service().serve(st)

    # ---- shutdown ----------------------------------------------------------------------------
    async def stop(self):
        """Close every connection (GoAway flushed, bounded) and listener; cancel the node's tasks."""
        self._stopped = True
        for s in self.servers:
            try:
                s.close()
            except Exception:
                pass
        for c in list(self.connections):
            c.close()
        if self.connections:
            try:
                await asyncio.wait_for(self._no_connections.wait(), STOP_TIMEOUT_MS / 1000)
            except TimeoutError:
                pass
        for s in self.servers:
            try:
                await asyncio.wait_for(s.wait_closed(), STOP_TIMEOUT_MS / 1000)
            except Exception:
                pass
        self._tasks.cancel()


def _ip_of(maddr):
    if maddr is None:
        return None
    try:
        return maddr.value_for("ip4") or maddr.value_for("ip6")
    except Exception:
        return None
