# Drives a pubsub router (gossipsub, leaf or floodsub machine) over a Node's streams.
#
# libp2p pubsub uses one long-lived outbound stream per peer for everything we send, and reads
# the peer's own outbound stream (our inbound) for everything it sends. So per connected peer:
#   - we open /meshsub/1.2.0 (falling back to 1.1.0, 1.0.0, /floodsub/1.0.0) as soon as the
#     connection is up; a peer that answers `na` to all of them is not a pubsub peer;
#   - a writer task owns our outbound stream and writes what router.outgoing() hands out;
#   - an inbound handler feeds the peer's stream bytes into router.feed().
# Time goes in through tick() every TICK_MS; the router decides when a heartbeat is due.
from microp2p.aio import asyncio, join_head, print_exc
from microp2p.clock import now_ms, wall_ns
from microp2p.errors import ProtocolError

TICK_MS = 100
# Bytes queued for a peer whose outbound stream is not open yet (or is slow): beyond this the
# oldest frames are dropped and counted (the router has its own per-peer caps before this).
MAX_PENDING_BYTES = 4 << 20
MAX_PENDING_BYTES_DEVICE = 32 * 1024
# Queued frames are joined into one stream write up to this size: fewer writes on the gateway,
# no large temporary buffer on a device (a fragmented 100 KiB heap may not have 4 KiB in one piece).
WRITE_JOIN_MAX = 64 * 1024
WRITE_JOIN_MAX_DEVICE = 1024
# A failed outbound stream (reset by the peer, out of memory) is opened again at most this many
# times per connection; the frames not yet written wait for it.
MAX_REOPEN = 3


class _PeerOut:
    def __init__(self):
        self.stream = None
        self.frames = []
        self.nbytes = 0
        self.wake = asyncio.Event()
        self.task = None
        self.opening = False
        self.reopened = 0


class PubSub:
    def __init__(self, node, router, on_message=None, on_event=None, device=None):
        if device is None:
            device = node.profile.device
        self.node = node
        self.router = router
        self.on_message = on_message
        self.on_event = on_event
        self.max_pending = MAX_PENDING_BYTES_DEVICE if device else MAX_PENDING_BYTES
        self.join_max = WRITE_JOIN_MAX_DEVICE if device else WRITE_JOIN_MAX
        self.out = {}           # peer id -> _PeerOut
        self.dropped = 0
        for proto in router.protocols:
            node.handle(proto, self._inbound)
        self._ticker = node.spawn(self._tick_loop())
        node.on_connection(self._on_connection)

    # ---- application API ---------------------------------------------------------------------
    def subscribe(self, topic):
        self.router.subscribe(topic)
        self._flush()

    def unsubscribe(self, topic):
        self.router.unsubscribe(topic)
        self._flush()

    def publish(self, topic, data):
        mid = self.router.publish(topic, data, now_ms())
        self._flush()
        return mid

    def topic_peers(self, topic):
        return self.router.topic_peers(topic)

    def mesh_peers(self, topic):
        """Peers in our gossipsub mesh for topic (empty for floodsub)."""
        r = self.router
        return r.mesh_peers(topic) if hasattr(r, "mesh_peers") else set()

    def set_direct(self, peer_id, on=True):
        """Forward every message of the topics peer_id subscribes to straight to it, whether or
        not it is in our mesh (a gateway does this for its leaf devices, which take no gossip).
        Routers without a mesh (floodsub, the leaf) already send to every subscriber: a no-op."""
        r = self.router
        if hasattr(r, "set_direct"):
            r.set_direct(peer_id, on)

    def stats(self):
        """Router counters (messages, duplicates, rejects, drops, ...) plus the driver's drops."""
        s = dict(self.router.stats)
        s["driver_dropped"] = self.dropped
        return s

    def peer_stats(self):
        """{peer id: {counter: n}}: per-peer wire counters (msgs_sent, dups_recv, dropped, ...)."""
        return self.router.peer_stats()

    def set_replay(self, count):
        """Keep our last `count` own messages for replay() (0: none)."""
        self.router.config.own_replay_max = count

    def replay(self, since_ms, skip=0, limit=0):
        """Send our own messages published since since_ms (clock.now_ms) again, the very same
        signed bytes (peers drop the copies they have: same id), oldest first; skip/limit pick a
        batch. Returns how many were queued. For a device after a reconnect."""
        n = self.router.replay_own(since_ms, now_ms(), skip, limit)
        self._flush()
        return n

    def backlog(self):
        """Bytes queued and not yet written to the busiest peer's open stream."""
        m = 0
        for po in self.out.values():
            if po.stream is not None and po.nbytes > m:
                m = po.nbytes
        return m

    def close(self):
        self._ticker.cancel()
        for po in self.out.values():
            if po.task is not None:
                po.task.cancel()

    # ---- connections -------------------------------------------------------------------------
    def _on_connection(self, conn, opened):
        peer = conn.remote_peer
        if opened:
            po = self.out.get(peer)
            if po is None:
                po = _PeerOut()
                self.out[peer] = po
            if po.stream is None and not po.opening:
                po.opening = True
                self.node.spawn(self._open_outbound(conn, po))
        elif self.node.connection_to(peer) is None:
            self.router.remove_peer(peer)
            po = self.out.pop(peer, None)
            if po is not None and po.task is not None:
                po.task.cancel()

    async def _open_outbound(self, conn, po):
        try:
            st = await conn.new_stream(list(self.router.protocols))
        except Exception as e:
            po.opening = False
            self.node.log("pubsub: %s speaks no pubsub protocol (%s)" % (conn.remote_peer, e))
            return
        po.opening = False
        po.stream = st
        self.router.add_peer(conn.remote_peer, st.protocol, True)
        po.task = asyncio.create_task(self._writer(conn, po))
        self._flush()
        if po.frames:
            po.wake.set()  # frames that waited for this stream (e.g. after a reopen)

    async def _writer(self, conn, po):
        st = po.stream
        join_max = self.join_max
        try:
            while True:
                while not po.frames:
                    po.wake.clear()
                    await po.wake.wait()
                frames = po.frames
                chunk, k, size = join_head(frames, join_max)
                await st.write(chunk)
                # taken off the queue only once written: a failed write leaves them for a reopen
                del frames[:k]
                po.nbytes -= size
        except asyncio.CancelledError:
            pass
        except Exception as e:
            self.node.log("pubsub: writing to %s failed: %r" % (conn.remote_peer, e))
            po.stream = None
            st.reset()
            if not conn.closed and po.reopened < MAX_REOPEN and self.out.get(conn.remote_peer) is po:
                po.reopened += 1
                po.opening = True
                self.node.spawn(self._open_outbound(conn, po))

    async def _inbound(self, st):
        peer = st.conn.remote_peer
        if peer not in self.router.peers:
            self.router.add_peer(peer, st.protocol, False)
            self._flush()
        while True:
            data = await st.read()
            if not data:
                break
            try:
                events = self.router.feed(peer, data, now_ms())
            except ProtocolError as e:
                # the messages accepted before the bad RPC still go to the app (then the stream ends)
                self._handle(getattr(e, "events", ()))
                raise
            finally:
                self._flush()
            self._handle(events)

    # ---- router I/O --------------------------------------------------------------------------
    def _handle(self, events):
        for ev in events:
            kind = ev[0]
            try:
                if kind == "message":
                    if self.on_message is not None:
                        self.on_message(ev[1], ev[2])
                elif self.on_event is not None:
                    self.on_event(ev)
            except Exception as e:
                print_exc(e)

    def _flush(self):
        for pid, frame in self.router.outgoing():
            po = self.out.get(pid)
            if po is None:
                po = _PeerOut()
                self.out[pid] = po
            if po.nbytes + len(frame) > self.max_pending:
                self.dropped += 1
                self.node.resources.count_drop("pubsub_frames_dropped", pid)
                continue
            po.frames.append(frame)
            po.nbytes += len(frame)
            if po.stream is not None:
                po.wake.set()

    async def _tick_loop(self):
        while True:
            await asyncio.sleep(TICK_MS / 1000)
            try:
                self._handle(self.router.tick(now_ms()))
            except ProtocolError as e:
                self.node.log("pubsub tick: %s" % e)
            except Exception as e:
                # A bug in one heartbeat must not stop the next ones (the mesh would freeze).
                print_exc(e)
            self._flush()


def attach(node, on_message=None, on_event=None, device=None, flood=False, protocols=None, kind=None):
    """Make a router for node and drive it. kind: "gossipsub" (the full router), "leaf" (the
    small gossipsub client, pubsub/leaf.py) or "floodsub"; default: flood=True picks floodsub,
    else the profile's `pubsub` field (Profile.device() says "leaf").

    protocols: the pubsub protocol ids to offer and accept, in preference order (default: all the
    router speaks), e.g. ("/meshsub/1.1.0",) to act as a peer without IDONTWANT."""
    if kind is None:
        kind = "floodsub" if flood else getattr(node.profile, "pubsub", "gossipsub")
    if kind == "leaf":
        from microp2p.pubsub.leaf import LeafSub as Cls, LeafConfig as Cfg
    elif kind == "floodsub":
        from microp2p.pubsub.floodsub import FloodSub as Cls, PubSubConfig as Cfg
    elif kind == "gossipsub":
        from microp2p.pubsub.gossipsub import GossipSub as Cls, GossipSubConfig as Cfg
    else:
        raise ValueError("unknown pubsub router %r" % kind)
    if device is None:
        device = node.profile.device
    cfg = Cfg.device() if device else Cfg()
    cfg.seqno_start = wall_ns()
    router = Cls(node.peer_id, node.key, cfg, now_ms())
    if protocols:
        unknown = [p for p in protocols if p not in Cls.protocols]
        if unknown:
            raise ValueError("pubsub protocols not spoken: %s" % ", ".join(unknown))
        router.protocols = tuple(protocols)
    return PubSub(node, router, on_message, on_event, device)
