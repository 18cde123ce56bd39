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
from microp2p.io.connection import Connection, StreamReset, negotiate, close_quietly
from microp2p.io.identify import IdentifyService
from microp2p.io.ping import PingService
from microp2p.io.profile import Profile

STOP_TIMEOUT_MS = 1000        # how long stop() waits for connections to flush their GoAway
# Refusals that say why: a listener whose admit() answers with a reason opens this stream on the
# refused connection, writes the reason (UTF-8, at most REFUSAL_MAX bytes) and closes; the peer's
# node reports it as a "connection:refused-by-peer" event and keeps it on conn.refusal.
REFUSED = "/microp2p/refused/1.0.0"
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
        self._pending_upgrades = 0
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
        self.pinger = PingService(self)
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
    async def listen(self, maddr, admit=None, advertise=True):
        """Listen on a TCP multiaddr; returns the bound address (the real port for /tcp/0).
        admit(peer_id) -> True | False | "reason", when given, is asked after the handshake (the
        earliest moment the remote's identity is proven); False closes it, a reason is told to
        the peer first (REFUSED) so it can say why and back off. advertise=False keeps the address
        out of identify (e.g. a gateway's device port)."""
        if isinstance(maddr, str):
            maddr = Multiaddr.from_string(maddr)

        async def on_conn(reader, writer):
            pair = tcp.StreamPair(reader, writer)
            await self.accept_stream(pair, pair.remote_multiaddr(), admit)

        server, bound = await tcp.listen(maddr, on_conn)
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

    async def accept_stream(self, duplex, remote_addr=None, admit=None, relayed=False):
        """Run the listener side of a libp2p connection over any duplex byte stream. Returns the
        Connection, or None when refused or failed (the duplex is closed then)."""
        p = self.profile
        if len(self.connections) >= p.max_connections or self._pending_upgrades >= p.max_pending_upgrades:
            self.log("inbound connection refused: limit")
            self.emit(E.CONNECTION_REFUSED, {"addr": str(remote_addr) if remote_addr else None,
                                             "reason": "limit"})
            await close_quietly(duplex)
            return None
        conn = Connection(self, duplex, False, remote_addr, relayed)
        await self._upgrade(conn, None, admit)
        return None if conn.closed else conn

    async def dial_stream(self, duplex, remote_addr=None, expected_peer=None, admit=None, relayed=False):
        """The dialer side over any duplex byte stream (a serial link, a relayed stream).
        Returns the Connection; raises on failure (the duplex is closed then)."""
        conn = Connection(self, duplex, True, remote_addr, relayed)
        await self._upgrade(conn, expected_peer, admit)
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
        if len(self.connections) >= self.profile.max_connections:
            raise LimitError("connection limit")
        reader, writer = await tcp.dial(maddr)
        return await self.dial_stream(tcp.StreamPair(reader, writer), maddr, expected)

    _dialers = ()

    def dialer(self, match, dial_fn):
        """Route dials of addresses for which match(maddr) is true to dial_fn(maddr, expected_peer)
        (e.g. the relay client for /p2p-circuit addresses)."""
        self._dialers = tuple(self._dialers) + ((match, dial_fn),)

    async def _upgrade(self, conn, expected, admit=None):
        self._pending_upgrades += 1
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
        except Exception as e:
            self._pending_upgrades -= 1
            self.log("upgrade failed (%s): %s %s" % ("out" if conn.outbound else "in", type(e).__name__, e))
            await close_quietly(conn.duplex)
            conn.closed = True
            if conn.outbound:
                raise
            return
        self._pending_upgrades -= 1
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
        return await self.pinger.ping(peer, count, on_rtt)

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
