# A gossipsub client for leaf devices (sans-IO, the router API io/pubsub.py drives): subscribe,
# publish signed (StrictSign), receive and validate, answer GRAFT/PRUNE, keep one or two mesh
# peers. Speaks /meshsub/1.2.0, 1.1.0, 1.0.0 and /floodsub/1.0.0 like the full router, but:
#   - no gossip: never sends IHAVE, so no peer has a reason to send us IWANT (ignored);
#     IHAVE and IDONTWANT from peers are ignored too (both are advisory in the specs);
#   - no scoring, no fanout, no peer exchange (PX in a PRUNE is ignored);
#   - the seen cache holds 32-bit hashes of message ids in one fixed bytearray ring (4 bytes per
#     id on every port, no per-id object);
#   - our own messages go to every peer subscribed to the topic (flood publish, as the full
#     router does by default); received messages are forwarded to our other mesh peers and to
#     subscribed floodsub peers, so a leaf is a correct (if small) mesh member.
# The full gossipsub (gossipsub.GossipSub) stays for gateways; Profile.device() picks this one.
from microp2p import crypto
from microp2p.codec import varint
from microp2p.errors import AuthError, LimitError, UsageError, SCOPE_STREAM
from microp2p.pubsub import rpc as R

# Named caps of a leaf.
MAX_PEERS = 8                    # pubsub peers tracked
MAX_PEER_QUEUE = 16              # frames queued for one peer (urgent control frames may pass)
MAX_PEER_QUEUE_BYTES = 32 * 1024  # bytes queued for one peer, never passed
MAX_TOPICS_PER_PEER = 16         # a remote peer's subscriptions we track
MAX_MESSAGE_SIZE = 4096          # data bytes of one message
MAX_MESSAGES_PER_RPC = 16        # messages processed from one RPC
MAX_PEER_MESSAGES_PER_HEARTBEAT = 64  # messages accepted from one peer per heartbeat
MAX_SEEN = 256                   # message-id hashes remembered (a ring: oldest forgotten first)
HASH_LEN = 4                     # bytes of sha256(id) kept per seen id
MAX_BACKOFF = 32                 # (peer, topic) backoff entries
MAX_PRUNE_BACKOFF_S = 86400      # a remote's PRUNE backoff is clamped to this
OWN_REPLAY_MAX = 8               # own messages kept for replay_own() (set_replay changes it)
D = 1                            # mesh peers we graft ourselves per topic
D_HI = 2                         # grafts accepted up to this many mesh peers per topic
PRUNE_BACKOFF_MS = 60000         # backoff we ask for (and keep) when we prune a peer
UNSUBSCRIBE_BACKOFF_MS = 10000   # ... when we leave a topic
BACKOFF_SLACK_MS = 2000          # extra wait before re-grafting a peer that pruned us
HEARTBEAT_MS = 1000


class LeafConfig:
    """The knobs the driver and apps touch (same names as the full router's config)."""

    def __init__(self):
        self.sign_policy = "strict-sign"
        self.max_rpc_size = R.MAX_RPC_SIZE_DEVICE
        self.max_message_size = MAX_MESSAGE_SIZE
        self.max_seen = MAX_SEEN
        self.own_replay_max = OWN_REPLAY_MAX
        self.include_key = False
        self.heartbeat_interval_ms = HEARTBEAT_MS
        self.D = D
        self.Dhi = D_HI
        self.seqno_start = None         # first seqno (int); drivers pass wall-clock ns

    @classmethod
    def device(cls):
        return cls()


def id_hash(mid):
    """HASH_LEN bytes of sha256(message id), never all zero (an empty ring slot).
    Unkeyed: an author can only collide with ids of messages it signed itself."""
    h = crypto.sha256(mid)[:HASH_LEN]
    return h if h != _EMPTY else b"\x00\x00\x00\x01"


_EMPTY = bytes(HASH_LEN)


class Peer:
    def __init__(self, pid, proto, outbound):
        self.id = pid
        self.bytes = pid if isinstance(pid, (bytes, bytearray)) else pid.to_bytes()
        self.proto = proto
        self.outbound = outbound
        self.topics = set()
        self.queue = []
        self.queue_bytes = 0
        self.dropped = 0
        self.reader = None
        self.msg_count = 0
        self.msgs_sent = 0
        self.dups_recv = 0


class LeafSub:
    protocols = R.GOSSIPSUB_PROTOCOLS

    @classmethod
    def default_config(cls):
        return LeafConfig()

    def __init__(self, local_peer, identity_key, config=None, now_ms=0):
        if identity_key is None:
            raise UsageError("StrictSign needs the identity key")
        c = config or LeafConfig()
        if c.sign_policy != "strict-sign":
            raise UsageError("the leaf router speaks StrictSign only")
        self.config = c
        self.local = local_peer
        self.local_bytes = local_peer if isinstance(local_peer, (bytes, bytearray)) else local_peer.to_bytes()
        self.key = identity_key
        self.peers = {}
        self.my_topics = set()
        self.mesh = {}          # topic -> set(peer ids)
        self.backoff = {}       # (peer id, topic) -> ms until which we do not graft
        self.seen = bytearray(HASH_LEN * c.max_seen)  # ring of id hashes, zero: empty slot
        self._seen_pos = 0
        self.now = now_ms
        self.next_heartbeat = now_ms + 100
        self.stats = {}
        self._events = []
        if c.seqno_start is not None:
            s = bytearray(c.seqno_start.to_bytes(8, "big"))
        else:
            s = bytearray(crypto.random_bytes(8))
            s[0] &= 0x7F
        self._seqno = s
        self._sbuf = bytearray(R.SIGN_PREFIX)
        self._own_recent = []   # [(ms, mid, topic, encoded)] newest last

    # --- bookkeeping ---------------------------------------------------------------------
    def _count(self, name):
        self.stats[name] = self.stats.get(name, 0) + 1

    def _take_events(self):
        ev = self._events
        if ev:
            self._events = []
        return ev

    def seen_has(self, h):
        """True when the id hash h (id_hash) is in the ring."""
        ring = self.seen
        i = ring.find(h)
        while i >= 0:
            if i % HASH_LEN == 0:
                return True
            i = ring.find(h, i + 1)  # a match straddling two slots is not one
        return False

    def _seen_add(self, mid):
        """Mark an id seen; False when it already was."""
        h = id_hash(mid)
        if self.seen_has(h):
            return False
        i = self._seen_pos
        self.seen[i:i + HASH_LEN] = h
        i += HASH_LEN
        self._seen_pos = 0 if i >= len(self.seen) else i
        return True

    # --- peers ---------------------------------------------------------------------------
    def add_peer(self, peer_id, protocol, outbound=False):
        p = self.peers.get(peer_id)
        if p is not None:
            p.proto = protocol
            return
        if len(self.peers) >= MAX_PEERS:
            raise LimitError("pubsub peer table full", SCOPE_STREAM)
        p = Peer(peer_id, protocol, outbound)
        self.peers[peer_id] = p
        if self.my_topics:
            self._send(p, {"subscriptions": [{"subscribe": True, "topicid": t} for t in self.my_topics]}, True)

    def remove_peer(self, peer_id):
        if self.peers.pop(peer_id, None) is not None:
            for m in self.mesh.values():
                m.discard(peer_id)

    def topic_peers(self, topic):
        return set(p.id for p in self.peers.values() if topic in p.topics)

    def mesh_peers(self, topic):
        return set(self.mesh.get(topic, ()))

    def peer_stats(self):
        out = {}
        for pid, p in self.peers.items():
            out[pid] = {"proto": p.proto, "msgs_sent": p.msgs_sent, "dups_recv": p.dups_recv, "dropped": p.dropped}
        return out

    # --- output --------------------------------------------------------------------------
    def _enqueue(self, peer, data, urgent=False):
        if (len(peer.queue) >= MAX_PEER_QUEUE and not urgent) or \
                peer.queue_bytes + len(data) > MAX_PEER_QUEUE_BYTES:
            peer.dropped += 1
            self._count("dropped_frames")
            return
        peer.queue.append(data)
        peer.queue_bytes += len(data)

    def _send(self, peer, rpc, urgent=False):
        self._enqueue(peer, R.frame(R.encode_rpc(rpc)), urgent)

    def _control(self, peer, kind, topic, backoff_ms=0):
        entry = {"topicID": topic}
        if backoff_ms and R.supports_px(peer.proto):
            entry["backoff"] = backoff_ms // 1000
        self._send(peer, {"control": {kind: [entry]}}, True)

    def outgoing(self):
        """[(peer_id, framed RPC bytes), ...] to write now, in queue order per peer."""
        out = []
        for pid, peer in self.peers.items():
            if peer.queue:
                for f in peer.queue:
                    out.append((pid, f))
                peer.queue = []
                peer.queue_bytes = 0
        return out

    # --- subscriptions and mesh ----------------------------------------------------------
    def subscribe(self, topic):
        if topic in self.my_topics:
            return
        if len(topic) > R.MAX_TOPIC_LEN:
            raise UsageError("topic name too long")
        self.my_topics.add(topic)
        self._announce(topic, True)
        self.mesh[topic] = set()
        self._fill(topic)

    def unsubscribe(self, topic):
        if topic not in self.my_topics:
            return
        self.my_topics.discard(topic)
        self._announce(topic, False)
        for pid in self.mesh.pop(topic, ()):
            self._control(self.peers[pid], "prune", topic, UNSUBSCRIBE_BACKOFF_MS)
            self._add_backoff(pid, topic, UNSUBSCRIBE_BACKOFF_MS)

    def _announce(self, topic, sub):
        if self.peers:
            f = R.frame(R.encode_rpc({"subscriptions": [{"subscribe": sub, "topicid": topic}]}))
            for peer in self.peers.values():
                self._enqueue(peer, f, True)

    def _add_backoff(self, pid, topic, ms):
        bo = self.backoff
        k = (pid, topic)
        if k not in bo and len(bo) >= MAX_BACKOFF:
            self._count("backoff_over_cap")
            return
        exp = self.now + ms
        if bo.get(k, exp) <= exp:
            bo[k] = exp

    def _fill(self, topic):
        """Graft subscribed mesh-capable peers (not backing off) until the mesh holds D."""
        mesh = self.mesh[topic]
        now = self.now
        for pid, peer in self.peers.items():
            if len(mesh) >= self.config.D:
                return
            if pid in mesh or topic not in peer.topics or not R.supports_mesh(peer.proto):
                continue
            e = self.backoff.get((pid, topic))
            if e is not None and now < e + BACKOFF_SLACK_MS:
                continue
            mesh.add(pid)
            self._control(peer, "graft", topic)

    # --- input ---------------------------------------------------------------------------
    def feed(self, peer_id, data, now_ms):
        """Bytes from the peer's inbound stream; complete RPCs are processed, events returned."""
        peer = self.peers.get(peer_id)
        if peer is None:
            raise UsageError("feed for unknown peer")
        if peer.reader is None:
            peer.reader = R.FrameReader(self.config.max_rpc_size)
        events = []
        for body in peer.reader.feed(data):
            events += self.receive_rpc(peer_id, body, now_ms)
        return events

    def receive_rpc(self, peer_id, body, now_ms):
        """One RPC body from peer_id. Returns events; DecodeError/LimitError for bad bytes."""
        self.now = now_ms
        peer = self.peers.get(peer_id)
        if peer is None:
            raise UsageError("RPC from unknown peer")
        rpc = R.decode_rpc(body, self.config.max_rpc_size)
        for sub in rpc.get("subscriptions") or ():
            self._subscription(peer, sub)
        n = 0
        for msg in rpc.get("publish") or ():
            n += 1
            peer.msg_count += 1
            if n > MAX_MESSAGES_PER_RPC or peer.msg_count > MAX_PEER_MESSAGES_PER_HEARTBEAT:
                self._count("messages_over_cap")
                break
            self._message(peer, msg)
        ctl = rpc.get("control")
        if ctl:
            for g in ctl.get("graft") or ():
                self._graft(peer, g.get("topicID"))
            for pr in ctl.get("prune") or ():
                self._prune(peer, pr)
        return self._take_events()

    def _subscription(self, peer, sub):
        topic = sub.get("topicid")
        if topic is None or len(topic) > R.MAX_TOPIC_LEN:
            self._count("bad_subscriptions")
            return
        if sub.get("subscribe", False):
            if topic in peer.topics:
                return
            if len(peer.topics) >= MAX_TOPICS_PER_PEER:
                self._count("subscriptions_over_cap")
                return
            peer.topics.add(topic)
            self._events.append(("subscribed", peer.id, topic))
            if topic in self.mesh:
                self._fill(topic)  # no need to wait for the heartbeat
        elif topic in peer.topics:
            peer.topics.discard(topic)
            m = self.mesh.get(topic)
            if m is not None:
                m.discard(peer.id)
            self._events.append(("unsubscribed", peer.id, topic))

    def _graft(self, peer, topic):
        mesh = self.mesh.get(topic)
        if mesh is None or peer.id in mesh:
            return  # a topic we are not in: ignored, like go and the full router
        e = self.backoff.get((peer.id, topic))
        if (e is not None and self.now < e) or len(mesh) >= self.config.Dhi:
            # grafting while we back off, or our mesh is full: PRUNE with a backoff
            self._count("graft_refused")
            self._add_backoff(peer.id, topic, PRUNE_BACKOFF_MS)
            self._control(peer, "prune", topic, PRUNE_BACKOFF_MS)
            return
        mesh.add(peer.id)
        self._events.append(("graft", peer.id, topic))

    def _prune(self, peer, pr):
        topic = pr.get("topicID")
        mesh = self.mesh.get(topic)
        if mesh is None:
            return
        if peer.id in mesh:
            mesh.discard(peer.id)
            self._events.append(("prune", peer.id, topic))
        b = pr.get("backoff", 0)
        self._add_backoff(peer.id, topic, (b if b < MAX_PRUNE_BACKOFF_S else MAX_PRUNE_BACKOFF_S) * 1000
                          if b > 0 else PRUNE_BACKOFF_MS)

    def _message(self, peer, msg):
        topic = msg.get("topic")
        if topic not in self.my_topics:
            self._count("messages_unsubscribed_topic")
            return
        try:
            if len(msg.get("data", b"")) > self.config.max_message_size:
                raise AuthError("oversized")
            R.check_strict_sign_fields(msg)
        except AuthError as e:
            return self._reject(peer, topic, str(e))
        mid = msg["from"] + msg["seqno"]
        if self.seen_has(id_hash(mid)):
            # our own messages come back too (js forwards to every mesh peer but the sender)
            self._count("duplicates")
            peer.dups_recv += 1
            return
        if msg["from"] == self.local_bytes:
            return self._reject(peer, topic, "self origin")
        enc = bytes(R.encode_message(msg))
        try:
            R.verify_message(msg, enc)
        except AuthError:
            return self._reject(peer, topic, "bad signature")
        self._seen_add(mid)  # only now: a forged copy must not block the real message
        self._count("delivered")
        msg["id"] = mid
        msg["peer"] = peer.id
        self._events.append(("message", topic, msg))
        self._out(enc, topic, peer.id, msg["from"], False)

    def _reject(self, peer, topic, reason):
        self._count("rejected")
        self._events.append(("rejected", peer.id, topic, reason))

    def _out(self, enc, topic, src, origin, own):
        """Queue a message to our mesh and floodsub peers on topic (own: to every subscriber)."""
        mesh = self.mesh.get(topic, ())
        f = None
        for pid, peer in self.peers.items():
            if pid == src or peer.bytes == origin or topic not in peer.topics:
                continue
            if not own and pid not in mesh and R.supports_mesh(peer.proto):
                continue
            if f is None:
                f = R.message_frame(enc)  # one frame shared by every recipient
            peer.msgs_sent += 1
            self._enqueue(peer, f)

    # --- publishing ----------------------------------------------------------------------
    def publish(self, topic, data, now_ms):
        """Publish data on topic (subscribed or not), signed. Returns the message id."""
        self.now = now_ms
        if len(data) > self.config.max_message_size:
            raise UsageError("message over max_message_size")
        s = self._seqno
        i = 7
        while i >= 0:  # the 8-byte seqno bumped in place: no big ints on 31-bit ports
            v = s[i] + 1
            s[i] = v & 0xFF
            if v < 256:
                break
            i -= 1
        seqno = bytes(s)
        # one encoding serves both: signature input = prefix + fields 1-4, wire = fields 1-4 + sig
        buf = self._sbuf
        P = len(R.SIGN_PREFIX)
        buf[P:] = b""
        R.pb.encode({"from": self.local_bytes, "data": data, "seqno": seqno, "topic": topic}, R.MESSAGE_UNSIGNED, buf)
        sig = self.key.sign(bytes(buf))
        buf.append(0x2A)  # field 5 (signature), length-delimited
        buf += varint.encode(len(sig))
        buf += sig
        if self.config.include_key:
            k = self.key.public_key.to_protobuf()
            buf.append(0x32)  # field 6 (key)
            buf += varint.encode(len(k))
            buf += k
        enc = bytes(memoryview(buf)[P:])
        mid = self.local_bytes + seqno
        self._seen_add(mid)
        self._out(enc, topic, None, None, True)
        keep = self.config.own_replay_max
        if keep:
            recent = self._own_recent
            recent.append((now_ms, mid, topic, enc))
            while len(recent) > keep:
                recent.pop(0)
        return mid

    def replay_own(self, since_ms, now_ms, skip=0, limit=0):
        """Send again, byte for byte, our own messages published at or after since_ms (oldest
        first; skip/limit pick a batch). Peers drop copies they have (same id). Returns count."""
        self.now = now_ms
        n = 0
        for t, mid, topic, enc in self._own_recent:
            if t - since_ms >= 0:
                if skip:
                    skip -= 1
                    continue
                self._out(enc, topic, None, None, True)
                n += 1
                if n == limit:
                    break
        return n

    # --- time ----------------------------------------------------------------------------
    def tick(self, now_ms):
        """Call often; runs the heartbeat when due. Returns events."""
        self.now = now_ms
        if now_ms - self.next_heartbeat >= 0:
            iv = self.config.heartbeat_interval_ms
            self.next_heartbeat += iv
            if now_ms - self.next_heartbeat >= 0:
                self.next_heartbeat = now_ms + iv
            self.heartbeat(now_ms)
        return self._take_events()

    def heartbeat(self, now_ms):
        self.now = now_ms
        for peer in self.peers.values():
            peer.msg_count = 0
        bo = self.backoff
        for k in [k for k, e in bo.items() if e + BACKOFF_SLACK_MS < now_ms]:
            del bo[k]
        for topic, mesh in self.mesh.items():
            if len(mesh) < self.config.D:
                self._fill(topic)
            while len(mesh) > self.config.Dhi:
                pid = mesh.pop()
                self._add_backoff(pid, topic, PRUNE_BACKOFF_MS)
                self._control(self.peers[pid], "prune", topic, PRUNE_BACKOFF_MS)
        return self._take_events()


__all__ = ("LeafSub", "LeafConfig")
