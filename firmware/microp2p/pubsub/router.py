# What floodsub and gossipsub share: peers and their subscriptions, per-peer outbound queues,
# the seen cache, the receive pipeline (signing policy, dedup, validation) and publishing.
#
# Sans-IO: the driver calls add_peer/remove_peer, feed (stream bytes) or receive_rpc (one RPC
# body), subscribe/unsubscribe, publish, tick(now_ms); it writes what outgoing() returns and
# hands events to the application. Peers are whatever hashable ids the driver uses (PeerId
# objects, or raw id bytes); `from` fields are compared with their bytes form.
import random

from microp2p.codec import varint
from microp2p.errors import AuthError, LimitError, UsageError, ProtocolError, SCOPE_STREAM
from microp2p.pubsub import rpc as R
from microp2p.pubsub.mcache import SeenCache, MAX_SEEN, MAX_SEEN_DEVICE

# validation results (a validator returns one of these)
ACCEPT = "accept"
REJECT = "reject"
IGNORE = "ignore"
PENDING = "pending"

# signature policies
STRICT_SIGN = "strict-sign"
STRICT_NO_SIGN = "strict-no-sign"

# Named caps: gateway value, then the device profile's.
MAX_PEERS = 1024
MAX_PEERS_DEVICE = 8
MAX_PEER_QUEUE = 256               # frames queued for one peer; then new frames are dropped
MAX_PEER_QUEUE_DEVICE = 16
MAX_PEER_QUEUE_BYTES = 4 << 20     # bytes queued for one peer
MAX_PEER_QUEUE_BYTES_DEVICE = 32 * 1024
MAX_TOPICS_PER_PEER = 256          # subscriptions we track per remote peer
MAX_TOPICS_PER_PEER_DEVICE = 16
MAX_TOPICS_TOTAL = 4096            # distinct topics we track across all peers (ours not counted)
MAX_TOPICS_TOTAL_DEVICE = 32
# A peer may bring new topics into the table only while it holds fewer than its fair share of it
# (MAX_TOPICS_TOTAL // peers): identities flooding junk topics cannot fill it for everyone else.
# When full, a newcomer under its share takes the slot of a topic only an over-share peer wants.
MAX_MESSAGE_SIZE = (1 << 20) - 1024  # data bytes of one message
MAX_MESSAGE_SIZE_DEVICE = 4096
MAX_MESSAGES_PER_RPC = 512         # messages processed from one RPC; the rest are ignored
MAX_MESSAGES_PER_RPC_DEVICE = 16
# Messages accepted from one peer per heartbeat. A flood guard, not a rate limit for honest
# bursts: a gateway's own peers publish thousands per second (js-libp2p bursts ~3,000/s).
MAX_PEER_MESSAGES_PER_HEARTBEAT = 20000
MAX_PEER_MESSAGES_PER_HEARTBEAT_DEVICE = 64
MAX_PENDING_VALIDATIONS = 1024     # messages waiting for report_validation
MAX_PENDING_VALIDATIONS_DEVICE = 4
VALIDATION_TIMEOUT_MS = 30000      # a pending validation not reported by then is ignored
SEEN_TTL_MS = 120000
# Our own recent messages kept for replay_own() (device profile only): a link that dies silently
# swallows what was published before the loss was noticed; sending the very same signed bytes
# again after the reconnect recovers them, and every seen cache drops the copies that had arrived.
OWN_REPLAY_MAX = 0
OWN_REPLAY_MAX_DEVICE = 8


class PubSubConfig:
    """Knobs shared by floodsub and gossipsub (gateway defaults; device() for the MCU)."""

    def __init__(self):
        self.sign_policy = STRICT_SIGN
        self.msg_id_fn = None             # fn(msg dict) -> bytes; None: from+seqno / sha256(data)
        self.include_key = False          # Ed25519 keys are inlined in the peer id
        self.seen_ttl_ms = SEEN_TTL_MS
        self.max_seen = MAX_SEEN
        self.max_rpc_size = R.MAX_RPC_SIZE
        self.max_rpc_fields = R.MAX_RPC_FIELDS
        self.max_message_size = MAX_MESSAGE_SIZE
        self.max_peers = MAX_PEERS
        self.max_peer_queue = MAX_PEER_QUEUE
        self.max_peer_queue_bytes = MAX_PEER_QUEUE_BYTES
        self.max_topics_per_peer = MAX_TOPICS_PER_PEER
        self.max_topics_total = MAX_TOPICS_TOTAL
        self.max_messages_per_rpc = MAX_MESSAGES_PER_RPC
        self.max_peer_messages_per_heartbeat = MAX_PEER_MESSAGES_PER_HEARTBEAT
        self.max_pending_validations = MAX_PENDING_VALIDATIONS
        self.validation_timeout_ms = VALIDATION_TIMEOUT_MS
        self.heartbeat_interval_ms = 1000
        self.heartbeat_initial_delay_ms = 100
        # First seqno (int). Drivers with a wall clock should pass time-in-ns, as go/js do: kubo
        # drops seqnos that do not grow across a publisher's restarts. None: random start.
        self.seqno_start = None
        self.own_replay_max = OWN_REPLAY_MAX

    def _device(self):
        self.max_seen = MAX_SEEN_DEVICE
        self.max_rpc_size = R.MAX_RPC_SIZE_DEVICE
        self.max_rpc_fields = R.MAX_RPC_FIELDS_DEVICE
        self.max_message_size = MAX_MESSAGE_SIZE_DEVICE
        self.max_peers = MAX_PEERS_DEVICE
        self.max_peer_queue = MAX_PEER_QUEUE_DEVICE
        self.max_peer_queue_bytes = MAX_PEER_QUEUE_BYTES_DEVICE
        self.max_topics_per_peer = MAX_TOPICS_PER_PEER_DEVICE
        self.max_topics_total = MAX_TOPICS_TOTAL_DEVICE
        self.max_messages_per_rpc = MAX_MESSAGES_PER_RPC_DEVICE
        self.max_peer_messages_per_heartbeat = MAX_PEER_MESSAGES_PER_HEARTBEAT_DEVICE
        self.max_pending_validations = MAX_PENDING_VALIDATIONS_DEVICE
        self.own_replay_max = OWN_REPLAY_MAX_DEVICE
        return self

    @classmethod
    def device(cls):
        return cls()._device()


def pid_bytes(p):
    return p if isinstance(p, (bytes, bytearray)) else p.to_bytes()


def shuffle(lst):
    # Fisher-Yates with getrandbits: the one random primitive every MicroPython port has.
    for i in range(len(lst) - 1, 0, -1):
        j = random.getrandbits(30) % (i + 1)
        lst[i], lst[j] = lst[j], lst[i]


class Peer:
    def __init__(self, pid, proto, outbound):
        self.id = pid
        self.bytes = pid_bytes(pid)
        self.proto = proto
        self.outbound = outbound
        self.topics = set()
        self.queue = []
        self.queue_bytes = 0
        self.dropped = 0          # frames dropped because the queue was full
        self.reader = None        # FrameReader, made on first feed()
        self.created = 0          # table slots accounted to this peer (topics not ours)
        self.msg_count = 0        # messages received this heartbeat
        # gossipsub per-heartbeat counters and IDONTWANT set
        self.ihave_count = 0
        self.iasked = 0
        self.iwant_served = 0
        self.idontwant_count = 0
        self.dont_send = {}       # mid -> heartbeats left
        # Wire counters, for stats/tests: messages we queued to the peer, copies of an already
        # seen message it sent us, IDONTWANT ids each way, copies skipped because of its IDONTWANT.
        self.msgs_sent = 0
        self.dups_recv = 0
        self.idontwant_sent = 0
        self.idontwant_recv = 0
        self.suppressed = 0
        # js-libp2p names a signed message by key protobuf + seqno, go/py (and we) by from +
        # seqno; set once the peer's control messages show the js form (see gossipsub).
        self.key_ids = False


class Router:
    protocols = ()

    def __init__(self, local_peer, identity_key=None, config=None, now_ms=0):
        if config is None:
            config = self.default_config()
        self.config = config
        self.local = local_peer
        self.local_bytes = pid_bytes(local_peer)
        self.key = identity_key
        self.signing = config.sign_policy == STRICT_SIGN
        if self.signing and identity_key is None:
            raise UsageError("StrictSign needs the identity key")
        if config.msg_id_fn is not None:
            self.msg_id_fn = config.msg_id_fn
        else:
            self.msg_id_fn = R.default_msg_id if self.signing else R.content_msg_id
        self.peers = {}
        self.peer_by_bytes = {}  # id bytes -> peer id, for `from` and PX lookups
        self.topics = {}        # topic -> set(peer ids subscribed)
        self.my_topics = set()
        self._creator = {}      # topic not ours -> the peer accounted for its table slot
        self.seen = SeenCache(config.seen_ttl_ms, config.max_seen)
        self.validators = {}    # topic -> fn(topic, msg, from_peer) -> ACCEPT/REJECT/IGNORE/PENDING
        self.pending = {}       # mid -> [msg, enc, src, topic, deadline_ms]
        self.now = now_ms
        self.next_heartbeat = now_ms + config.heartbeat_initial_delay_ms
        self.stats = {}
        self._events = []
        # Seqno: an 8-byte big-endian counter kept as bytes and bumped in place (no big ints on
        # 31-bit ports); the first message uses seqno_start + 1.
        if config.seqno_start is not None:
            s = bytearray(config.seqno_start.to_bytes(8, "big"))
        else:
            from microp2p import crypto
            s = bytearray(crypto.random_bytes(8))
            s[0] &= 0x7F
        self._seqno = s
        self._sbuf = bytearray(R.SIGN_PREFIX)  # reused signing/encoding buffer for publish
        self._own_recent = []  # [(ms, mid, topic, encoded)] newest last, own_replay_max at most

    @classmethod
    def default_config(cls):
        return PubSubConfig()

    # --- bookkeeping ---------------------------------------------------------------------
    def _count(self, name, n=1):
        self.stats[name] = self.stats.get(name, 0) + n

    def _emit(self, ev):
        self._events.append(ev)

    def _take_events(self):
        ev = self._events
        if ev:
            self._events = []
        return ev

    # --- peers ---------------------------------------------------------------------------
    def add_peer(self, peer_id, protocol, outbound=False):
        if peer_id in self.peers:
            self.peers[peer_id].proto = protocol
            return
        if len(self.peers) >= self.config.max_peers:
            raise LimitError("pubsub peer table full", SCOPE_STREAM)
        peer = Peer(peer_id, protocol, outbound)
        self.peers[peer_id] = peer
        self.peer_by_bytes[peer.bytes] = peer_id
        self._on_add_peer(peer)
        if self.my_topics:
            # The hello: our subscriptions, so the peer can mesh/flood with us at once.
            subs = [{"subscribe": True, "topicid": t} for t in sorted(self.my_topics)]
            self._send_rpc(peer, {"subscriptions": subs}, True)

    def remove_peer(self, peer_id):
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return
        self.peer_by_bytes.pop(peer.bytes, None)
        for t in peer.topics:
            self._drop_member(peer, t)
        self._on_remove_peer(peer)

    def _on_add_peer(self, peer):
        pass

    def _on_remove_peer(self, peer):
        pass

    def peer_topics(self, peer_id):
        p = self.peers.get(peer_id)
        return set(p.topics) if p is not None else set()

    def topic_peers(self, topic):
        return set(self.topics.get(topic, ()))

    def peer_stats(self):
        """{peer id: {counter: n}}: the per-peer wire counters (see Peer)."""
        out = {}
        for pid, p in self.peers.items():
            out[pid] = {"proto": p.proto, "msgs_sent": p.msgs_sent, "dups_recv": p.dups_recv,
                        "idontwant_sent": p.idontwant_sent, "idontwant_recv": p.idontwant_recv,
                        "suppressed": p.suppressed, "dropped": p.dropped}
        return out

    # --- outbound queues -----------------------------------------------------------------
    def _enqueue(self, peer, data, urgent=False):
        c = self.config
        # Urgent (small control) frames may pass the count cap, never the byte cap.
        if (len(peer.queue) >= c.max_peer_queue and not urgent) or \
                peer.queue_bytes + len(data) > c.max_peer_queue_bytes:
            peer.dropped += 1
            self._count("dropped_frames")
            return False
        peer.queue.append(data)
        peer.queue_bytes += len(data)
        return True

    def _send_rpc(self, peer, rpc, urgent=False):
        return self._enqueue(peer, R.frame(R.encode_rpc(rpc)), urgent)

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

    def data_to_send(self, peer_id):
        """All queued frames for one peer, concatenated (b'' if none)."""
        peer = self.peers.get(peer_id)
        if peer is None or not peer.queue:
            return b""
        q = peer.queue
        peer.queue = []
        peer.queue_bytes = 0
        return q[0] if len(q) == 1 else b"".join(q)

    # --- subscriptions -------------------------------------------------------------------
    def subscribe(self, topic):
        if topic in self.my_topics:
            return
        if len(topic) > R.MAX_TOPIC_LEN:
            raise UsageError("topic name too long")
        self.my_topics.add(topic)
        owner = self._creator.pop(topic, None)  # ours now: its slot no longer counts for a peer
        if owner is not None and owner in self.peers:
            self.peers[owner].created -= 1
        self._announce(topic, True)
        self._join(topic)

    def unsubscribe(self, topic):
        if topic not in self.my_topics:
            return
        self.my_topics.discard(topic)
        members = self.topics.get(topic)
        if members:
            self._account(topic, members)
        self._announce(topic, False)
        self._leave(topic)

    def _announce(self, topic, sub):
        if not self.peers:
            return
        f = R.frame(R.encode_rpc({"subscriptions": [{"subscribe": sub, "topicid": topic}]}))
        for peer in self.peers.values():
            self._enqueue(peer, f, True)

    def _join(self, topic):
        pass

    def _leave(self, topic):
        pass

    def add_validator(self, topic, fn):
        self.validators[topic] = fn

    def remove_validator(self, topic):
        self.validators.pop(topic, None)

    # --- input ---------------------------------------------------------------------------
    def feed(self, peer_id, data, now_ms):
        """Bytes from the peer's inbound stream; complete RPCs are processed, events returned.

        Raises DecodeError/LimitError (scope stream) at the first bad RPC; the events of the RPCs
        before it are on the exception as .events and must be handled like a normal return."""
        peer = self.peers.get(peer_id)
        if peer is None:
            raise UsageError("feed for unknown peer")
        if peer.reader is None:
            peer.reader = R.FrameReader(self.config.max_rpc_size)
        events = []
        try:
            for body in peer.reader.feed(data):
                events += self.receive_rpc(peer_id, body, now_ms)
        except ProtocolError as e:
            # A bad RPC behind good ones in the same read: what was accepted before it is already
            # marked seen and queued for forwarding, so it must reach the application too (else
            # the author's honest copy would be dropped as a duplicate). The driver delivers
            # e.events, then closes the stream.
            e.events = events + self._take_events()
            raise
        return events

    def receive_rpc(self, peer_id, body, now_ms):
        """One RPC body (no length prefix) from peer_id. Returns events.

        Raises DecodeError/LimitError (scope stream) for bytes that do not parse."""
        self.now = now_ms
        peer = self.peers.get(peer_id)
        if peer is None:
            raise UsageError("RPC from unknown peer")
        if not self._accept_from(peer):
            # checked before decoding: a graylisted peer's dense RPCs cost us nothing (go drops
            # the whole RPC of a graylisted peer too)
            self._count("graylisted_rpcs")
            return self._take_events()
        msg = R.decode_rpc(body, self.config.max_rpc_size, self.config.max_rpc_fields)
        subs = msg.get("subscriptions")
        if subs:
            self._handle_subscriptions(peer, subs)
        pubs = msg.get("publish")
        if pubs:
            self._handle_messages(peer, pubs, now_ms)
        ctl = msg.get("control")
        if ctl:
            self._handle_control(peer, ctl, now_ms)
        return self._take_events()

    def _accept_from(self, peer):
        return True

    def _handle_control(self, peer, ctl, now_ms):
        pass

    def _handle_subscriptions(self, peer, subs):
        c = self.config
        for sub in subs:
            topic = sub.get("topicid")
            if topic is None or len(topic) > R.MAX_TOPIC_LEN:
                self._count("bad_subscriptions")
                continue
            if sub.get("subscribe", False):
                if topic in peer.topics:
                    continue
                if len(peer.topics) >= c.max_topics_per_peer:
                    self._count("subscriptions_over_cap")
                    continue
                members = self.topics.get(topic)
                if members is None:
                    if topic not in self.my_topics and not self._room_for_topic(peer):
                        self._count("subscriptions_over_cap")
                        continue
                    members = set()
                    self.topics[topic] = members
                    if topic not in self.my_topics:
                        self._creator[topic] = peer.id
                        peer.created += 1
                members.add(peer.id)
                peer.topics.add(topic)
                self._emit(("subscribed", peer.id, topic))
                self._on_peer_subscribed(peer, topic)
            else:
                if topic not in peer.topics:
                    continue
                peer.topics.discard(topic)
                self._drop_member(peer, topic)
                self._on_peer_unsubscribed(peer, topic)
                self._emit(("unsubscribed", peer.id, topic))

    def _on_peer_subscribed(self, peer, topic):
        pass

    def _on_peer_unsubscribed(self, peer, topic):
        pass

    def _drop_member(self, peer, topic):
        members = self.topics.get(topic)
        if members is None:
            return
        members.discard(peer.id)
        if not members:
            del self.topics[topic]
            if self._creator.pop(topic, None) is not None:
                peer.created -= 1
        elif self._creator.get(topic) == peer.id:
            peer.created -= 1
            self._account(topic, members)

    def _account(self, topic, members):
        # the slot passes to a remaining member (any: each is as much its reason to exist)
        for pid in members:
            q = self.peers.get(pid)
            if q is not None:
                self._creator[topic] = pid
                q.created += 1
                return

    def _room_for_topic(self, peer):
        """May peer bring one more topic into the table? (See MAX_TOPICS_TOTAL.)"""
        total = self.config.max_topics_total
        share = total // (len(self.peers) or 1)
        if peer.created >= share:
            return False
        if len(self._creator) < total:
            return True
        # full: take a slot from the peer most over its share, a topic only it subscribes to
        big = None
        for q in self.peers.values():
            if q.created > share and (big is None or q.created > big.created):
                big = q
        if big is None:
            return False
        for t in big.topics:
            if self._creator.get(t) == big.id and len(self.topics.get(t, ())) == 1:
                big.topics.discard(t)
                del self.topics[t]
                del self._creator[t]
                big.created -= 1
                self._count("topics_reclaimed")
                self._on_peer_unsubscribed(big, t)
                self._emit(("unsubscribed", big.id, t))
                return True
        return False

    def _handle_messages(self, peer, msgs, now_ms):
        c = self.config
        n = 0
        for msg in msgs:
            n += 1
            if n > c.max_messages_per_rpc:
                self._count("messages_over_rpc_cap", len(msgs) - c.max_messages_per_rpc)
                break
            peer.msg_count += 1
            if peer.msg_count > c.max_peer_messages_per_heartbeat:
                self._count("messages_over_rate_cap")
                continue
            self._receive_message(peer, msg, now_ms)

    def _receive_message(self, peer, msg, now_ms):
        topic = msg.get("topic")
        if topic is None or topic not in self.my_topics:
            self._count("messages_unsubscribed_topic")
            return
        data = msg.get("data", b"")
        if len(data) > self.config.max_message_size:
            self._reject(peer, None, topic, "oversized")
            return
        try:
            if self.signing:
                R.check_strict_sign_fields(msg)
            else:
                R.check_strict_nosign_fields(msg)
        except AuthError:
            self._reject(peer, None, topic, "signing policy")
            return
        mid = self.msg_id_fn(msg)
        if mid in self.seen:
            # Our own messages come back too: js-libp2p forwards to every mesh peer but the one it
            # got the copy from, so an honest peer may echo what we published. A duplicate, not
            # an offence (penalising it got js peers pruned from our mesh within a minute).
            self._count("duplicates")
            peer.dups_recv += 1
            self.seen.note_duplicate(mid, peer.id)
            self._on_duplicate(peer, mid, topic, now_ms)
            return
        if self.signing and msg["from"] == self.local_bytes:
            self._reject(peer, None, topic, "self origin")
            return
        self._on_first_seen(peer, msg, mid, topic, now_ms)
        # Encoded once, canonically: forwarded as is, and its first fields are what the
        # signature covers.
        enc = bytes(R.encode_message(msg))
        if self.signing:
            # Checked before marking seen: a forged copy must not block the real message.
            try:
                R.verify_message(msg, enc)
            except AuthError:
                self._reject(peer, None, topic, "bad signature")
                return
        self.seen.add(mid, now_ms, peer.id)
        self._on_validating(peer, mid, topic, now_ms)
        msg["id"] = mid
        fn = self.validators.get(topic)
        result = ACCEPT if fn is None else fn(topic, msg, peer.id)
        if result == PENDING:
            if len(self.pending) >= self.config.max_pending_validations:
                self._count("validation_throttled")
                self._on_ignore(peer.id, mid, topic, now_ms)
                return
            self.pending[mid] = [msg, enc, peer.id, topic, now_ms + self.config.validation_timeout_ms]
            return
        self._finish(msg, enc, mid, peer.id, topic, result, now_ms)

    def report_validation(self, mid, result, now_ms):
        """The outcome of a PENDING validation. Returns events (the message, when accepted)."""
        self.now = now_ms
        entry = self.pending.pop(mid, None)
        if entry is None:
            return []
        msg, enc, src, topic, _ = entry
        self._finish(msg, enc, mid, src, topic, result, now_ms)
        return self._take_events()

    def _expire_pending(self, now_ms):
        if not self.pending:
            return
        late = [mid for mid, e in self.pending.items() if e[4] <= now_ms]
        for mid in late:
            e = self.pending.pop(mid)
            self._count("validation_timeouts")
            self._on_ignore(e[2], mid, e[3], now_ms)

    def _finish(self, msg, enc, mid, src, topic, result, now_ms):
        if result == ACCEPT:
            self._count("delivered")
            self._on_deliver(src, mid, topic, now_ms)
            msg["peer"] = src
            self._emit(("message", topic, msg))
            self._forward(enc, mid, topic, src, msg.get("from"))
        elif result == REJECT:
            self._reject(self.peers.get(src), mid, topic, "validator")
        else:
            self._count("ignored")
            self._on_ignore(src, mid, topic, now_ms)

    def _reject(self, peer, mid, topic, reason):
        self._count("rejected")
        self._emit(("rejected", peer.id if peer is not None else None, topic, reason))
        self._on_reject(peer, mid, topic)

    # hooks for scoring / IDONTWANT (gossipsub)
    def _on_duplicate(self, peer, mid, topic, now_ms):
        pass

    def _on_first_seen(self, peer, msg, mid, topic, now_ms):
        pass

    def _on_validating(self, peer, mid, topic, now_ms):
        pass

    def _on_deliver(self, src, mid, topic, now_ms):
        pass

    def _on_ignore(self, src, mid, topic, now_ms):
        pass

    def _on_reject(self, peer, mid, topic):
        pass

    def _forward(self, enc, mid, topic, src, origin):
        raise NotImplementedError

    # --- publishing ----------------------------------------------------------------------
    def _next_seqno(self):
        s = self._seqno
        i = 7
        while i >= 0:
            v = s[i] + 1
            if v < 256:
                s[i] = v
                break
            s[i] = 0
            i -= 1

    def _build_own(self, topic, data):
        """(msg dict, encoded Message) for a message of ours, signed under StrictSign.

        Encodes once into a reused buffer: the signature input is prefix + fields 1-4 and the
        wire form is fields 1-4 + signature (field 5), so one encoding serves both."""
        buf = self._sbuf
        P = len(R.SIGN_PREFIX)
        buf[P:] = b""
        if self.signing:
            self._next_seqno()
            msg = {"from": self.local_bytes, "data": data, "seqno": bytes(self._seqno), "topic": topic}
        else:
            msg = {"data": data, "topic": topic}
        R.pb.encode(msg, R.MESSAGE_UNSIGNED, buf)
        if self.signing:
            sig = self.key.sign(bytes(buf))
            msg["signature"] = sig
            buf.append(0x2A)  # field 5, length-delimited
            buf += varint.encode(len(sig))
            buf += sig
            if self.config.include_key:
                k = self.key.public_key.to_protobuf()
                msg["key"] = k
                buf.append(0x32)  # field 6
                buf += varint.encode(len(k))
                buf += k
        return msg, bytes(memoryview(buf)[P:])

    def publish(self, topic, data, now_ms):
        """Publish data on topic (subscribed or not). Returns the message id."""
        self.now = now_ms
        if len(data) > self.config.max_message_size:
            raise UsageError("message over max_message_size")
        msg, enc = self._build_own(topic, data)
        mid = self.msg_id_fn(msg)
        if not self.seen.add(mid, now_ms):
            self._count("publish_duplicates")
            return mid
        self._publish_out(enc, mid, topic)
        keep = self.config.own_replay_max
        if keep:
            recent = self._own_recent
            recent.append((now_ms, mid, topic, enc))
            if len(recent) > keep:
                recent.pop(0)
        return mid

    def replay_own(self, since_ms, now_ms, skip=0, limit=0):
        """Send again, byte for byte, our own messages published at or after since_ms (kept when
        config.own_replay_max > 0). Call after a reconnect: same signature and id, so a peer that
        already has one drops it as a duplicate. since_ms should lie within the seen TTL.
        skip/limit replay a batch (oldest first) so a device can pace a long replay through its
        small per-peer queue. Returns how many were sent."""
        self.now = now_ms
        n = 0
        for t, mid, topic, enc in self._own_recent:
            if t - since_ms >= 0:
                if skip:
                    skip -= 1
                    continue
                self._publish_out(enc, mid, topic)
                n += 1
                if n == limit:
                    break
        return n

    def _publish_out(self, enc, mid, topic):
        raise NotImplementedError

    # --- time ----------------------------------------------------------------------------
    def tick(self, now_ms):
        """Call often; runs the heartbeat when due. Returns events."""
        self.now = now_ms
        if now_ms - self.next_heartbeat >= 0:
            iv = self.config.heartbeat_interval_ms
            self.next_heartbeat += iv
            if now_ms - self.next_heartbeat >= 0:
                self.next_heartbeat = now_ms + iv  # far behind: do not run a burst
            self.heartbeat(now_ms)
        return self._take_events()

    def heartbeat(self, now_ms):
        """Periodic work (the driver normally calls tick, which calls this when due)."""
        self.now = now_ms
        for peer in self.peers.values():
            peer.msg_count = 0
        self.seen.expire(now_ms)
        self._expire_pending(now_ms)
        self._heartbeat(now_ms)
        return self._take_events()

    def _heartbeat(self, now_ms):
        pass
