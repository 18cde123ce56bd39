# Gossipsub v1.1 router with v1.2 IDONTWANT (libp2p/specs pubsub/gossipsub/gossipsub-v1.0.md,
# -v1.1.md, -v1.2.md), sans-IO. Defaults follow go-libp2p-pubsub (Dlo 5, not the spec's 4).
#
#   mesh per subscribed topic (D/Dlo/Dhi, Dscore, Dout), fanout for topics we only publish to,
#   IHAVE/IWANT gossip from a windowed message cache, PRUNE backoff (honoured and enforced),
#   peer exchange on PRUNE, flood publishing of our own messages, optional peer scoring with
#   graylisting and opportunistic grafting, IDONTWANT for large messages.
import random

from microp2p.pubsub import rpc as R
from microp2p.pubsub.router import Router, PubSubConfig, shuffle
from microp2p.pubsub.mcache import MessageCache, MAX_MCACHE_ENTRIES, MAX_MCACHE_ENTRIES_DEVICE

# Caps (gateway, then device where they differ). go names in brackets.
MAX_IHAVE_LENGTH = 5000          # ids asked for per peer per heartbeat [MaxIHaveLength]
MAX_IHAVE_LENGTH_DEVICE = 64
MAX_IHAVE_MESSAGES = 10          # control RPCs with IHAVE per peer per heartbeat [MaxIHaveMessages]
MAX_IHAVE_MESSAGES_DEVICE = 4
MAX_IWANT_SERVED = 5000          # messages sent per peer per heartbeat in answer to IWANT
MAX_IWANT_SERVED_DEVICE = 16
MAX_IDONTWANT_LENGTH = 10        # ids honoured per IDONTWANT RPC [MaxIDontWantLength]
MAX_IDONTWANT_MESSAGES = 1000    # IDONTWANT RPCs per peer per heartbeat [MaxIDontWantMessages]
MAX_DONT_SEND = 1000             # remembered IDONTWANT ids per peer
MAX_DONT_SEND_DEVICE = 16
MAX_PROMISES = 4096              # IWANT follow-ups tracked for P7
MAX_BACKOFF_PER_TOPIC = 4096     # backoff entries per topic
MAX_PRUNE_BACKOFF_S = 86400      # a remote's PRUNE backoff is clamped to this
IDONTWANT_MIN_DATA_SIZE = 1024   # go's threshold (js uses 512); data bytes
IDONTWANT_TTL_HEARTBEATS = 3
BACKOFF_SLACK_HEARTBEATS = 2     # extra wait before re-GRAFTing (specs PR #289)
# Message ids in control messages. go/py name a signed message `from + seqno`; js-libp2p
# (@libp2p/gossipsub 17) names it `key protobuf + seqno`. For an inlined (identity-multihash) key
# the two differ only by from's 2-byte multihash header, so ids are translated per peer: otherwise
# IHAVE/IWANT/IDONTWANT with js name messages we cannot match (seen with real js peers).
IDENTITY_MH = 0x00
MAX_IDENTITY_KEY = 42            # longest key an identity multihash may inline (peer id spec)
KEY_PB_FIRST = 0x08              # a key protobuf starts with field 1 (KeyType), varint


class GossipSubConfig(PubSubConfig):
    def __init__(self, scoring=True):
        PubSubConfig.__init__(self)
        self.D = 6
        self.Dlo = 5
        self.Dhi = 12
        self.Dlazy = 6
        self.Dout = 2
        self.Dscore = 4
        self.history_length = 5
        self.history_gossip = 3
        self.gossip_factor = 0.25
        self.gossip_retransmission = 3
        self.fanout_ttl_ms = 60000
        self.prune_backoff_ms = 60000
        self.unsubscribe_backoff_ms = 10000
        self.graft_flood_threshold_ms = 10000
        self.opportunistic_graft_ticks = 60
        self.opportunistic_graft_peers = 2
        self.prune_peers = 16
        self.do_px = False               # go's default: PX only on bootstrappers
        self.peer_record_fn = None       # fn(peer_id) -> signed peer record bytes or None (PX)
        self.flood_publish = True
        self.iwant_followup_ms = 3000
        self.max_ihave_length = MAX_IHAVE_LENGTH
        self.max_ihave_messages = MAX_IHAVE_MESSAGES
        self.max_iwant_served = MAX_IWANT_SERVED
        self.idontwant_min_data_size = IDONTWANT_MIN_DATA_SIZE  # None: never send IDONTWANT
        self.max_idontwant_length = MAX_IDONTWANT_LENGTH
        self.max_idontwant_messages = MAX_IDONTWANT_MESSAGES
        self.max_dont_send = MAX_DONT_SEND
        self.idontwant_ttl = IDONTWANT_TTL_HEARTBEATS
        self.max_mcache_entries = MAX_MCACHE_ENTRIES
        # None: no scoring. Imported only when used: the device profile never loads the scoring
        # module (~9 KB of heap on MicroPython).
        if scoring:
            from microp2p.pubsub.score import PeerScoreParams
            self.score_params = PeerScoreParams()
        else:
            self.score_params = None

    @classmethod
    def device(cls):
        return cls(scoring=False)._device()

    def _device(self):
        PubSubConfig._device(self)
        # A device meshes with its gateway and little else; scoring is the gateway's job.
        self.D = 1
        self.Dlo = 1
        self.Dhi = 2
        self.Dlazy = 1
        self.Dout = 0
        self.Dscore = 0
        self.history_length = 3
        self.history_gossip = 2
        self.prune_peers = 0
        self.max_ihave_length = MAX_IHAVE_LENGTH_DEVICE
        self.max_ihave_messages = MAX_IHAVE_MESSAGES_DEVICE
        self.max_iwant_served = MAX_IWANT_SERVED_DEVICE
        self.idontwant_min_data_size = None
        self.max_dont_send = MAX_DONT_SEND_DEVICE
        self.max_mcache_entries = MAX_MCACHE_ENTRIES_DEVICE
        self.score_params = None
        return self

    def check(self):
        if not (0 <= self.Dout < max(self.Dlo, 1) and self.Dout * 2 <= self.D):
            raise ValueError("gossipsub: need Dout < Dlo and Dout <= D/2")
        if not (self.Dlo <= self.D <= self.Dhi) or self.Dscore > self.D:
            raise ValueError("gossipsub: need Dlo <= D <= Dhi and Dscore <= D")


class GossipSub(Router):
    protocols = R.GOSSIPSUB_PROTOCOLS

    @classmethod
    def default_config(cls):
        return GossipSubConfig()

    def __init__(self, local_peer, identity_key=None, config=None, now_ms=0):
        Router.__init__(self, local_peer, identity_key, config, now_ms)
        c = self.config
        c.check()
        self.mesh = {}       # topic -> set(peer)
        self.fanout = {}     # topic -> set(peer)
        self.lastpub = {}    # topic -> ms of our last publish (fanout expiry)
        self.backoff = {}    # topic -> {peer: expire ms}
        self.mcache = MessageCache(c.history_length, c.history_gossip, c.max_mcache_entries)
        sp = c.score_params
        if sp is not None:
            from microp2p.pubsub.score import PeerScore
            self.score = PeerScore(sp, now_ms)
        else:
            self.score = None
        self.gossip_threshold = sp.gossip_threshold if sp else 0.0
        self.publish_threshold = sp.publish_threshold if sp else 0.0
        self.graylist_threshold = sp.graylist_threshold if sp else 0.0
        self.accept_px_threshold = sp.accept_px_threshold if sp else 0.0
        self.opportunistic_graft_threshold = sp.opportunistic_graft_threshold if sp else 0.0
        self.gossip_q = {}   # peer -> [IHAVE dict] flushed at the heartbeat
        self.promises = {}   # mid -> {peer: deadline ms}: IWANTs the peer must honour
        self.ticks = 0
        self._scores = None  # per-heartbeat score cache
        # ids are translatable only when they are the default from+seqno of signed messages
        self._xlate = self.signing and c.msg_id_fn is None
        # peers that get every message of the topics they subscribe to, in the mesh or not (a
        # gateway's leaf devices: they keep a mesh of 1-2 and take no gossip, so a message that
        # reaches the gateway must be pushed to each of them). Bounded by the caller's allow list.
        self.direct = set()

    def set_direct(self, peer_id, on=True):
        """Mark (or unmark) a peer to which every message of its topics is forwarded."""
        if on:
            self.direct.add(peer_id)
        else:
            self.direct.discard(peer_id)

    # --- scores --------------------------------------------------------------------------
    def peer_score(self, p):
        if self.score is None:
            return 0.0
        cache = self._scores
        if cache is not None:
            s = cache.get(p)
            if s is None:
                s = self.score.score(p)
                cache[p] = s
            return s
        return self.score.score(p)

    def set_peer_ip(self, peer_id, ip):
        """For P6 (IP colocation); the driver knows the address, the router does not."""
        if self.score is not None:
            self.score.set_ip(peer_id, ip)

    def _accept_from(self, peer):
        return self.score is None or self.score.score(peer.id) >= self.graylist_threshold

    # --- peers ---------------------------------------------------------------------------
    def _on_add_peer(self, peer):
        if self.score is not None:
            self.score.add_peer(peer.id, self.now)

    def _on_remove_peer(self, peer):
        p = peer.id
        for m in self.mesh.values():
            m.discard(p)
        for f in self.fanout.values():
            f.discard(p)
        self.gossip_q.pop(p, None)
        if self.score is not None:
            self.score.remove_peer(p, self.now)

    def _on_peer_subscribed(self, peer, topic):
        # The first subscriber to a topic whose mesh is empty joins the mesh now, not at the next
        # heartbeat. Otherwise a message arriving in between is forwarded to nobody (forwarding
        # goes to the mesh only) and never gossiped to that peer either (the heartbeat that
        # grafts it excludes mesh peers from its IHAVE): a gateway whose only subscriber had just
        # connected lost a device's first readings that way. rust-libp2p grafts on subscription
        # up to Dlo; with only an empty mesh filled here, a subscription storm (everyone hears the
        # same peers first) does not crowd a few peers' meshes: the heartbeat picks the rest.
        mesh = self.mesh.get(topic)
        if mesh is None or mesh:
            return
        p = peer.id
        if not R.supports_mesh(peer.proto) or self.peer_score(p) < 0 or \
                self._backing_off(self.backoff.get(topic), p, self.now):
            return
        mesh.add(p)
        self._graft_local(p, topic)
        self._count("subscribe_grafts")
        self._send_rpc(peer, {"control": {"graft": [{"topicID": topic}]}}, True)

    def _on_peer_unsubscribed(self, peer, topic):
        m = self.mesh.get(topic)
        if m is not None and peer.id in m:
            m.discard(peer.id)
            if self.score is not None:
                self.score.prune(peer.id, topic)
        f = self.fanout.get(topic)
        if f is not None:
            f.discard(peer.id)

    def mesh_peers(self, topic):
        return set(self.mesh.get(topic, ()))

    def fanout_peers(self, topic):
        return set(self.fanout.get(topic, ()))

    def _get_peers(self, topic, count, filt):
        members = self.topics.get(topic)
        if not members:
            return []
        peers = self.peers
        lst = [p for p in members if R.supports_mesh(peers[p].proto) and filt(p)]
        shuffle(lst)
        if 0 < count < len(lst):
            del lst[count:]
        return lst

    def _backing_off(self, bo, p, now):
        if bo is None:
            return False
        e = bo.get(p)
        return e is not None and now < e + BACKOFF_SLACK_HEARTBEATS * self.config.heartbeat_interval_ms

    def _add_backoff(self, p, topic, ms, now):
        bo = self.backoff.get(topic)
        if bo is None:
            bo = {}
            self.backoff[topic] = bo
        exp = now + ms
        old = bo.get(p)
        if old is None:
            if len(bo) >= MAX_BACKOFF_PER_TOPIC:
                self._count("backoff_over_cap")
                return
            bo[p] = exp
        elif old < exp:
            bo[p] = exp

    # --- join / leave --------------------------------------------------------------------
    def _join(self, topic):
        if topic in self.mesh:
            return
        c = self.config
        now = self.now
        bo = self.backoff.get(topic)
        sc = self.peer_score
        mesh = self.fanout.pop(topic, None)
        self.lastpub.pop(topic, None)
        if mesh is not None:
            for p in list(mesh):
                if sc(p) < 0 or self._backing_off(bo, p, now):
                    mesh.discard(p)
        else:
            mesh = set()
        if len(mesh) < c.D:
            for p in self._get_peers(topic, c.D - len(mesh),
                                     lambda p: p not in mesh and not self._backing_off(bo, p, now) and sc(p) >= 0):
                mesh.add(p)
        self.mesh[topic] = mesh
        for p in mesh:
            self._graft_local(p, topic)
            self._send_rpc(self.peers[p], {"control": {"graft": [{"topicID": topic}]}}, True)

    def _leave(self, topic):
        mesh = self.mesh.pop(topic, None)
        if mesh is None:
            return
        for p in mesh:
            if self.score is not None:
                self.score.prune(p, topic)
            peer = self.peers[p]
            pr = self._make_prune(peer, topic, self.config.do_px, True)
            self._send_rpc(peer, {"control": {"prune": [pr]}}, True)
            self._add_backoff(p, topic, self.config.unsubscribe_backoff_ms, self.now)

    def _graft_local(self, p, topic):
        if self.score is not None:
            self.score.graft(p, topic, self.now)

    def _make_prune(self, peer, topic, do_px, unsubscribe):
        if not R.supports_px(peer.proto):
            return {"topicID": topic}  # a v1.0 peer cannot parse backoff/PX
        c = self.config
        ms = c.unsubscribe_backoff_ms if unsubscribe else c.prune_backoff_ms
        pr = {"topicID": topic, "backoff": ms // 1000}
        if do_px and c.prune_peers > 0:
            sc = self.peer_score
            pid = peer.id
            infos = []
            for q in self._get_peers(topic, c.prune_peers, lambda q: q != pid and sc(q) >= 0):
                info = {"peerID": self.peers[q].bytes}
                if c.peer_record_fn is not None:
                    rec = c.peer_record_fn(q)
                    if rec:
                        info["signedPeerRecord"] = rec
                infos.append(info)
            if infos:
                pr["peers"] = infos
        return pr

    # --- message ids on the wire ----------------------------------------------------------
    def _in_id(self, peer, mid):
        """A control-message id from peer, in our (from + seqno) form."""
        n = len(mid) - R.SEQNO_LEN
        if self._xlate and 0 < n <= MAX_IDENTITY_KEY and mid[0] == KEY_PB_FIRST:
            peer.key_ids = True
            return bytes((IDENTITY_MH, n)) + mid
        return mid

    def _out_id(self, peer, mid):
        """Our id in the form peer uses."""
        if peer.key_ids and len(mid) > 2 and mid[0] == IDENTITY_MH and mid[1] == len(mid) - 2 - R.SEQNO_LEN:
            return mid[2:]
        return mid

    # --- message pipeline hooks ----------------------------------------------------------
    def _on_duplicate(self, peer, mid, topic, now_ms):
        if self.score is not None:
            self.score.duplicate_message(mid, peer.id, topic, now_ms)

    def _on_first_seen(self, peer, msg, mid, topic, now_ms):
        # IDONTWANT (v1.2): tell mesh peers at once, before validation, so they skip the copy.
        th = self.config.idontwant_min_data_size
        if th is None or len(msg.get("data", b"")) < th:
            return
        mesh = self.mesh.get(topic)
        if not mesh:
            return
        f = None
        fk = None  # the frame for peers using key+seqno ids
        for p in mesh:
            if p == peer.id:
                continue
            q = self.peers[p]
            if not R.supports_idontwant(q.proto):
                continue
            if q.key_ids:
                if fk is None:
                    fk = R.frame(R.encode_rpc({"control": {"idontwant": [{"messageIDs": [self._out_id(q, mid)]}]}}))
                self._enqueue(q, fk, True)
            else:
                if f is None:
                    f = R.frame(R.encode_rpc({"control": {"idontwant": [{"messageIDs": [mid]}]}}))
                self._enqueue(q, f, True)
            q.idontwant_sent += 1
            self._count("idontwant_sent")

    def _on_validating(self, peer, mid, topic, now_ms):
        self.promises.pop(mid, None)  # whoever promised it: the message arrived
        if self.score is not None:
            self.score.validate_message(mid, now_ms, self.config.seen_ttl_ms)

    def _on_deliver(self, src, mid, topic, now_ms):
        if self.score is not None:
            self.score.deliver_message(mid, src, topic, now_ms, self.config.seen_ttl_ms)

    def _on_ignore(self, src, mid, topic, now_ms):
        if self.score is not None:
            self.score.reject_message(mid, src, topic, now_ms, False, self.config.seen_ttl_ms)

    def _on_reject(self, peer, mid, topic):
        if self.score is not None and peer is not None:
            self.score.reject_message(mid, peer.id, topic, self.now, True, self.config.seen_ttl_ms)

    # --- sending messages ----------------------------------------------------------------
    def _forward(self, enc, mid, topic, src, origin):
        self.mcache.put(mid, topic, enc)
        f = None
        mesh = self.mesh.get(topic)
        peers = self.peers
        if mesh:
            for p in mesh:
                if p == src:
                    continue
                q = peers[p]
                if q.bytes == origin:
                    continue
                if mid in q.dont_send:
                    q.suppressed += 1
                    continue
                if f is None:
                    f = R.message_frame(enc)
                q.msgs_sent += 1
                self._enqueue(q, f)
        members = self.topics.get(topic)
        if members:
            pt = self.publish_threshold
            direct = self.direct
            for p in members:
                q = peers[p]
                if p == src or q.bytes == origin:
                    continue
                if q.proto == R.FLOODSUB or (p in direct and not (mesh and p in mesh)):
                    if self.peer_score(p) < pt:
                        continue
                    if mid in q.dont_send:
                        q.suppressed += 1
                        continue
                    if f is None:
                        f = R.message_frame(enc)
                    q.msgs_sent += 1
                    self._enqueue(q, f)

    def _publish_out(self, enc, mid, topic):
        self.mcache.put(mid, topic, enc)
        members = self.topics.get(topic)
        if not members:
            self._count("publish_no_peers")
            return
        peers = self.peers
        pt = self.publish_threshold
        sc = self.peer_score
        f = R.message_frame(enc)
        if self.config.flood_publish:
            for p in members:
                if sc(p) >= pt:
                    q = peers[p]
                    q.msgs_sent += 1
                    self._enqueue(q, f)
            return
        targets = self.mesh.get(topic)
        if targets is None:
            targets = self._fanout_for_publish(topic)
        for p in targets:
            q = peers[p]
            q.msgs_sent += 1
            self._enqueue(q, f)
        direct = self.direct
        for p in members:
            q = peers[p]
            if (q.proto == R.FLOODSUB or p in direct) and p not in targets and sc(p) >= pt:
                q.msgs_sent += 1
                self._enqueue(q, f)

    def _fanout_for_publish(self, topic):
        fo = self.fanout.get(topic)
        if not fo:
            sc = self.peer_score
            pt = self.publish_threshold
            fo = set(self._get_peers(topic, self.config.D, lambda p: sc(p) >= pt))
            if fo:
                self.fanout[topic] = fo
        self.lastpub[topic] = self.now
        return fo

    # --- control -------------------------------------------------------------------------
    def _handle_control(self, peer, ctl, now_ms):
        iwant = None
        prune = None
        x = ctl.get("ihave")
        if x:
            iwant = self._handle_ihave(peer, x, now_ms)
        x = ctl.get("iwant")
        if x:
            self._handle_iwant(peer, x)
        x = ctl.get("graft")
        if x:
            prune = self._handle_graft(peer, x, now_ms)
        x = ctl.get("prune")
        if x:
            self._handle_prune(peer, x, now_ms)
        x = ctl.get("idontwant")
        if x:
            self._handle_idontwant(peer, x)
        if iwant or prune:
            out = {}
            if iwant:
                out["iwant"] = [{"messageIDs": iwant}]
            if prune:
                out["prune"] = prune
            self._send_rpc(peer, {"control": out}, True)

    def _handle_ihave(self, peer, ihaves, now_ms):
        c = self.config
        if self.peer_score(peer.id) < self.gossip_threshold:
            return None
        peer.ihave_count += 1
        if peer.ihave_count > c.max_ihave_messages or peer.iasked >= c.max_ihave_length:
            self._count("ihave_over_cap")
            return None
        want = []
        wanted = set()
        seen = self.seen
        for ih in ihaves:
            topic = ih.get("topicID")
            if topic not in self.mesh:
                continue
            ids = ih.get("messageIDs")
            if not ids:
                continue
            i = 0
            for mid in ids:
                i += 1
                if i > c.max_ihave_length:
                    break
                if len(mid) > R.MAX_MSG_ID_LEN:
                    continue
                cid = self._in_id(peer, mid)
                if cid in seen or cid in wanted:
                    continue
                wanted.add(cid)
                want.append(mid)  # asked for in the peer's own form
        if not want:
            return None
        budget = c.max_ihave_length - peer.iasked
        if len(want) > budget:
            shuffle(want)
            del want[budget:]
        peer.iasked += len(want)
        if self.score is not None and len(self.promises) < MAX_PROMISES:
            # Like go, follow up on one random id per IWANT: enough to catch liars cheaply.
            mid = self._in_id(peer, want[0] if len(want) == 1 else want[_rand(len(want))])
            d = self.promises.get(mid)
            if d is None:
                d = {}
                self.promises[mid] = d
            if peer.id not in d:
                d[peer.id] = now_ms + c.iwant_followup_ms
        return want

    def _handle_iwant(self, peer, iwants):
        c = self.config
        if self.peer_score(peer.id) < self.gossip_threshold:
            return
        for iw in iwants:
            ids = iw.get("messageIDs")
            if not ids:
                continue
            for mid in ids:
                if peer.iwant_served >= c.max_iwant_served:
                    self._count("iwant_over_cap")
                    return
                mid = self._in_id(peer, mid)
                if mid in peer.dont_send:
                    continue
                e = self.mcache.get_for_peer(mid, peer.id)
                if e is None:
                    continue
                if e[2] > c.gossip_retransmission:
                    self._count("iwant_retransmission_cap")
                    continue
                peer.iwant_served += 1
                peer.msgs_sent += 1
                self._enqueue(peer, R.message_frame(e[1]))

    def _handle_graft(self, peer, grafts, now_ms):
        c = self.config
        p = peer.id
        prune = []
        do_px = c.do_px
        score = self.peer_score(p)
        for g in grafts:
            topic = g.get("topicID")
            mesh = self.mesh.get(topic)
            if mesh is None:
                do_px = False  # unknown topic: never leak our peers
                continue
            if p in mesh:
                continue
            bo = self.backoff.get(topic)
            exp = bo.get(p) if bo is not None else None
            if exp is not None and now_ms < exp:
                # GRAFT while we back off: P7 penalty (double when way too early) + PRUNE.
                self._count("graft_during_backoff")
                if self.score is not None:
                    self.score.add_penalty(p, 1)
                    if now_ms < exp + c.graft_flood_threshold_ms - c.prune_backoff_ms:
                        self.score.add_penalty(p, 1)
                do_px = False
                self._add_backoff(p, topic, c.prune_backoff_ms, now_ms)
                prune.append(topic)
                continue
            if score < 0:
                do_px = False
                self._add_backoff(p, topic, c.prune_backoff_ms, now_ms)
                prune.append(topic)
                continue
            if len(mesh) >= c.Dhi and not peer.outbound:
                self._add_backoff(p, topic, c.prune_backoff_ms, now_ms)
                prune.append(topic)
                continue
            mesh.add(p)
            self._graft_local(p, topic)
            self._emit(("graft", p, topic))
        if not prune:
            return None
        return [self._make_prune(peer, t, do_px, False) for t in prune]

    def _handle_prune(self, peer, prunes, now_ms):
        c = self.config
        p = peer.id
        score = self.peer_score(p)
        for pr in prunes:
            topic = pr.get("topicID")
            mesh = self.mesh.get(topic)
            if mesh is None:
                continue
            if p in mesh:
                mesh.discard(p)
                if self.score is not None:
                    self.score.prune(p, topic)
                self._emit(("prune", p, topic))
            b = pr.get("backoff", 0)
            if b > 0:
                ms = (b if b < MAX_PRUNE_BACKOFF_S else MAX_PRUNE_BACKOFF_S) * 1000
            else:
                ms = c.prune_backoff_ms
            self._add_backoff(p, topic, ms, now_ms)
            px = pr.get("peers")
            if not px:
                continue
            if score < self.accept_px_threshold:
                self._count("px_ignored")
                continue
            if len(px) > c.prune_peers:
                shuffle(px)
                del px[c.prune_peers:]
            found = []
            for info in px:
                pid = info.get("peerID")
                if not pid or pid == self.local_bytes or pid in self.peer_by_bytes:
                    continue
                found.append((pid, info.get("signedPeerRecord")))
            if found:
                # The driver dials these (checking the signed records) if it wants more peers.
                self._emit(("px", topic, found))

    def _handle_idontwant(self, peer, idws):
        c = self.config
        if peer.idontwant_count >= c.max_idontwant_messages:
            self._count("idontwant_over_cap")
            return
        peer.idontwant_count += 1
        ds = peer.dont_send
        n = 0
        for idw in idws:
            ids = idw.get("messageIDs")
            if not ids:
                continue
            for mid in ids:
                if n >= c.max_idontwant_length:
                    return
                n += 1
                peer.idontwant_recv += 1
                mid = self._in_id(peer, mid)
                if mid not in ds and len(ds) >= c.max_dont_send:
                    self._count("idontwant_over_cap")
                    continue
                ds[mid] = c.idontwant_ttl

    # --- heartbeat -----------------------------------------------------------------------
    def _heartbeat(self, now):
        c = self.config
        self.ticks += 1
        for peer in self.peers.values():
            peer.ihave_count = 0
            peer.iasked = 0
            peer.iwant_served = 0
            peer.idontwant_count = 0
            ds = peer.dont_send
            if ds:
                for mid in list(ds):
                    t = ds[mid] - 1
                    if t <= 0:
                        del ds[mid]
                    else:
                        ds[mid] = t
        if self.ticks % 15 == 0:
            self._clear_backoff(now)
        if self.score is not None:
            self._broken_promises(now)
            self.score.refresh(now)
        self._scores = {} if self.score is not None else None
        try:
            self._maintain(now)
        finally:
            self._scores = None
        self.mcache.shift()

    def _clear_backoff(self, now):
        slack = BACKOFF_SLACK_HEARTBEATS * self.config.heartbeat_interval_ms
        for topic in list(self.backoff):
            bo = self.backoff[topic]
            for p in [p for p, e in bo.items() if e + slack < now]:
                del bo[p]
            if not bo:
                del self.backoff[topic]

    def _broken_promises(self, now):
        if not self.promises:
            return
        done = []
        for mid, d in self.promises.items():
            late = [p for p, t in d.items() if t < now]
            for p in late:
                del d[p]
                self.score.add_penalty(p, 1)
                self._count("broken_promises")
            if not d:
                done.append(mid)
        for mid in done:
            del self.promises[mid]

    def _maintain(self, now):
        c = self.config
        sc = self.peer_score
        peers = self.peers
        tograft = {}
        toprune = {}
        nopx = set()

        for topic, mesh in self.mesh.items():
            bo = self.backoff.get(topic)

            def prune_peer(p):
                mesh.discard(p)
                if self.score is not None:
                    self.score.prune(p, topic)
                self._add_backoff(p, topic, c.prune_backoff_ms, now)
                toprune.setdefault(p, []).append(topic)

            def graft_peer(p):
                mesh.add(p)
                self._graft_local(p, topic)
                tograft.setdefault(p, []).append(topic)

            if self.score is not None:
                for p in [p for p in mesh if sc(p) < 0]:
                    prune_peer(p)
                    nopx.add(p)

            if len(mesh) < c.Dlo:
                for p in self._get_peers(topic, c.D - len(mesh),
                                         lambda p: p not in mesh and not self._backing_off(bo, p, now) and sc(p) >= 0):
                    graft_peer(p)

            if len(mesh) > c.Dhi:
                lst = list(mesh)
                shuffle(lst)
                if self.score is not None:
                    lst.sort(key=sc, reverse=True)
                    rest = lst[c.Dscore:]
                    shuffle(rest)
                    lst[c.Dscore:] = rest
                # Keep at least Dout outbound peers among the D we keep.
                out_n = 0
                for p in lst[:c.D]:
                    if peers[p].outbound:
                        out_n += 1
                j = c.D - 1
                for i in range(c.D, len(lst)):
                    if out_n >= c.Dout:
                        break
                    if not peers[lst[i]].outbound:
                        continue
                    while j >= 0 and peers[lst[j]].outbound:
                        j -= 1
                    if j < 0:
                        break
                    lst[i], lst[j] = lst[j], lst[i]
                    out_n += 1
                    j -= 1
                for p in lst[c.D:]:
                    prune_peer(p)

            if len(mesh) >= c.Dlo and c.Dout > 0:
                out_n = 0
                for p in mesh:
                    if peers[p].outbound:
                        out_n += 1
                if out_n < c.Dout:
                    for p in self._get_peers(topic, c.Dout - out_n,
                                             lambda p: p not in mesh and peers[p].outbound and
                                             not self._backing_off(bo, p, now) and sc(p) >= 0):
                        graft_peer(p)

            if self.score is not None and c.opportunistic_graft_ticks > 0 and \
                    self.ticks % c.opportunistic_graft_ticks == 0 and len(mesh) > 1:
                ranked = sorted(sc(p) for p in mesh)
                median = ranked[len(ranked) // 2]
                if median < self.opportunistic_graft_threshold:
                    for p in self._get_peers(topic, c.opportunistic_graft_peers,
                                             lambda p: p not in mesh and not self._backing_off(bo, p, now) and
                                             sc(p) > median):
                        graft_peer(p)

            self._emit_gossip(topic, mesh)

        for topic in [t for t, ms in self.lastpub.items() if ms + c.fanout_ttl_ms < now]:
            self.fanout.pop(topic, None)
            del self.lastpub[topic]

        pt = self.publish_threshold
        for topic, fo in self.fanout.items():
            members = self.topics.get(topic, ())
            for p in [p for p in fo if p not in members or sc(p) < pt]:
                fo.discard(p)
            if len(fo) < c.D:
                for p in self._get_peers(topic, c.D - len(fo), lambda p: p not in fo and sc(p) >= pt):
                    fo.add(p)
            self._emit_gossip(topic, fo)

        # One control RPC per peer: its GRAFTs, PRUNEs and IHAVEs together.
        gq = self.gossip_q
        self.gossip_q = {}
        targets = set(tograft)
        targets.update(toprune)
        targets.update(gq)
        for p in targets:
            peer = peers.get(p)
            if peer is None:
                continue
            ctl = {}
            g = tograft.get(p)
            if g:
                ctl["graft"] = [{"topicID": t} for t in g]
            pr = toprune.get(p)
            if pr:
                ctl["prune"] = [self._make_prune(peer, t, c.do_px and p not in nopx, False) for t in pr]
            ih = gq.get(p)
            if ih:
                ctl["ihave"] = ih
            self._send_rpc(peer, {"control": ctl}, bool(g or pr))

    def _emit_gossip(self, topic, exclude):
        mids = self.mcache.gossip_ids(topic)
        if not mids:
            return
        members = self.topics.get(topic)
        if not members:
            return
        c = self.config
        gt = self.gossip_threshold
        sc = self.peer_score
        peers = self.peers
        cands = [p for p in members
                 if p not in exclude and R.supports_mesh(peers[p].proto) and sc(p) >= gt]
        target = int(c.gossip_factor * len(cands))
        if target < c.Dlazy:
            target = c.Dlazy
        if target < len(cands):
            shuffle(cands)
            del cands[target:]
        cap = c.max_ihave_length
        for p in cands:
            ids = mids
            if len(mids) > cap:
                ids = list(mids)
                shuffle(ids)
                del ids[cap:]
            peer = peers[p]
            if peer.key_ids:
                ids = [self._out_id(peer, m) for m in ids]
            q = self.gossip_q.get(p)
            if q is None:
                q = []
                self.gossip_q[p] = q
            q.append({"topicID": topic, "messageIDs": ids})


def _rand(n):
    return random.getrandbits(30) % n


__all__ = ("GossipSub", "GossipSubConfig")
