# Gossipsub v1.1 peer scoring (gossipsub-v1.1.md "Peer Scoring"): P1..P7, decay, thresholds.
#
#   score(p) = min(cap, sum_t w_t * (P1 w1 + P2 w2 + P3 w3 + P3b w3b + P4 w4)) + P5 w5 + P6 w6 + P7 w7
#   P1 time in mesh (quanta, capped)     P2 first deliveries (decayed, capped)
#   P3 squared mesh-delivery deficit     P3b sticky mesh failure penalty
#   P4 squared invalid deliveries        P5 application score   P6 squared IP colocation surplus
#   P7 squared behaviour-penalty excess
# go-libp2p-pubsub ships no default parameters; the defaults here are a modest, documented set
# (P3 off by default: it punishes quiet topics). Time is passed in as ms; nothing reads a clock.

MAX_SCORED_PEERS = 4096        # peers with stats, connected or retained after disconnect
MAX_DELIVERY_RECORDS = 20000   # message ids tracked for P3/P4 attribution
MAX_RECORD_PEERS = 16          # peers remembered per delivery record

_UNKNOWN = 0
_VALID = 1
_INVALID = 2
_IGNORED = 3


class TopicScoreParams:
    def __init__(self, topic_weight=1.0,
                 time_in_mesh_weight=0.01, time_in_mesh_quantum_ms=1000, time_in_mesh_cap=3600.0,
                 first_message_deliveries_weight=1.0, first_message_deliveries_decay=0.9,
                 first_message_deliveries_cap=100.0,
                 mesh_message_deliveries_weight=0.0, mesh_message_deliveries_decay=0.9,
                 mesh_message_deliveries_cap=100.0, mesh_message_deliveries_threshold=1.0,
                 mesh_message_deliveries_window_ms=10, mesh_message_deliveries_activation_ms=5000,
                 mesh_failure_penalty_weight=0.0, mesh_failure_penalty_decay=0.9,
                 invalid_message_deliveries_weight=-10.0, invalid_message_deliveries_decay=0.99):
        self.topic_weight = topic_weight
        self.time_in_mesh_weight = time_in_mesh_weight
        self.time_in_mesh_quantum_ms = time_in_mesh_quantum_ms
        self.time_in_mesh_cap = time_in_mesh_cap
        self.first_message_deliveries_weight = first_message_deliveries_weight
        self.first_message_deliveries_decay = first_message_deliveries_decay
        self.first_message_deliveries_cap = first_message_deliveries_cap
        self.mesh_message_deliveries_weight = mesh_message_deliveries_weight
        self.mesh_message_deliveries_decay = mesh_message_deliveries_decay
        self.mesh_message_deliveries_cap = mesh_message_deliveries_cap
        self.mesh_message_deliveries_threshold = mesh_message_deliveries_threshold
        self.mesh_message_deliveries_window_ms = mesh_message_deliveries_window_ms
        self.mesh_message_deliveries_activation_ms = mesh_message_deliveries_activation_ms
        self.mesh_failure_penalty_weight = mesh_failure_penalty_weight
        self.mesh_failure_penalty_decay = mesh_failure_penalty_decay
        self.invalid_message_deliveries_weight = invalid_message_deliveries_weight
        self.invalid_message_deliveries_decay = invalid_message_deliveries_decay


class PeerScoreParams:
    def __init__(self, topics=None, default_topic=None, topic_score_cap=0.0,
                 app_specific_score=None, app_specific_weight=1.0,
                 ip_colocation_factor_weight=0.0, ip_colocation_factor_threshold=1.0,
                 ip_colocation_whitelist=(),
                 behaviour_penalty_weight=-10.0, behaviour_penalty_threshold=1.0,
                 behaviour_penalty_decay=0.99,
                 decay_interval_ms=1000, decay_to_zero=0.01, retain_score_ms=600000,
                 # thresholds (gossipsub-v1.1.md "Score Thresholds")
                 gossip_threshold=-10.0, publish_threshold=-50.0, graylist_threshold=-80.0,
                 accept_px_threshold=10.0, opportunistic_graft_threshold=1.0):
        # topic -> TopicScoreParams; default_topic scores every other topic (None: a modest
        # default set; False: topics not listed are not scored).
        self.topics = topics if topics is not None else {}
        self.default_topic = TopicScoreParams() if default_topic is None else default_topic
        self.topic_score_cap = topic_score_cap
        self.app_specific_score = app_specific_score  # fn(peer) -> float, or None
        self.app_specific_weight = app_specific_weight
        # P6 is off by default: emulated fleets share 127.0.0.1 and serial devices have no IP.
        self.ip_colocation_factor_weight = ip_colocation_factor_weight
        self.ip_colocation_factor_threshold = ip_colocation_factor_threshold
        self.ip_colocation_whitelist = ip_colocation_whitelist
        self.behaviour_penalty_weight = behaviour_penalty_weight
        self.behaviour_penalty_threshold = behaviour_penalty_threshold
        self.behaviour_penalty_decay = behaviour_penalty_decay
        self.decay_interval_ms = decay_interval_ms
        self.decay_to_zero = decay_to_zero
        self.retain_score_ms = retain_score_ms
        if not (publish_threshold <= gossip_threshold <= 0 and graylist_threshold < publish_threshold):
            raise ValueError("score thresholds: need graylist < publish <= gossip <= 0")
        if accept_px_threshold < 0 or opportunistic_graft_threshold < 0:
            raise ValueError("score thresholds: acceptPX and opportunisticGraft must be >= 0")
        self.gossip_threshold = gossip_threshold
        self.publish_threshold = publish_threshold
        self.graylist_threshold = graylist_threshold
        self.accept_px_threshold = accept_px_threshold
        self.opportunistic_graft_threshold = opportunistic_graft_threshold

    def topic_params(self, topic):
        p = self.topics.get(topic)
        if p is not None:
            return p
        return self.default_topic or None


class _TopicStats:
    def __init__(self):
        self.in_mesh = False
        self.graft_ms = 0
        self.mesh_ms = 0
        self.first_deliveries = 0.0
        self.mesh_deliveries = 0.0
        self.mesh_deliveries_active = False
        self.mesh_failure_penalty = 0.0
        self.invalid_deliveries = 0.0


class _PeerStats:
    def __init__(self):
        self.connected = True
        self.expire_ms = 0
        self.topics = {}
        self.behaviour_penalty = 0.0
        self.ip = None


class PeerScore:
    def __init__(self, params, now_ms=0):
        self.params = params
        self.stats = {}       # peer -> _PeerStats
        self.ips = {}         # ip -> set(peers)
        self.records = {}     # mid -> [status, validated_ms, peers set, expire_ms]
        self._rec_fifo = []   # (expire, mid) in insertion order
        self._rec_head = 0
        self.last_decay_ms = now_ms
        self.now_ms = now_ms

    # --- peers ---------------------------------------------------------------------------
    def add_peer(self, p, now_ms):
        st = self.stats.get(p)
        if st is None:
            if len(self.stats) >= MAX_SCORED_PEERS:
                self._drop_one_retained()
            st = _PeerStats()
            self.stats[p] = st
        st.connected = True

    def _drop_one_retained(self):
        victim = None
        for q, st in self.stats.items():
            if not st.connected and (victim is None or st.expire_ms < self.stats[victim].expire_ms):
                victim = q
        if victim is not None:
            self._forget(victim)

    def _forget(self, p):
        st = self.stats.pop(p, None)
        if st is not None and st.ip is not None:
            s = self.ips.get(st.ip)
            if s is not None:
                s.discard(p)
                if not s:
                    del self.ips[st.ip]

    def remove_peer(self, p, now_ms):
        st = self.stats.get(p)
        if st is None:
            return
        # Only non-positive scores are retained, so leaving and coming back never resets a
        # penalty, and a good peer loses nothing by leaving.
        if self.score(p) > 0:
            self._forget(p)
            return
        for topic, ts in st.topics.items():
            ts.first_deliveries = 0.0
            tp = self.params.topic_params(topic)
            if ts.in_mesh and ts.mesh_deliveries_active and ts.mesh_deliveries < tp.mesh_message_deliveries_threshold:
                d = tp.mesh_message_deliveries_threshold - ts.mesh_deliveries
                ts.mesh_failure_penalty += d * d
            ts.in_mesh = False
        st.connected = False
        st.expire_ms = now_ms + self.params.retain_score_ms

    def set_ip(self, p, ip):
        st = self.stats.get(p)
        if st is None or st.ip == ip:
            return
        if st.ip is not None:
            s = self.ips.get(st.ip)
            if s is not None:
                s.discard(p)
                if not s:
                    del self.ips[st.ip]
        st.ip = ip
        if ip is not None:
            s = self.ips.get(ip)
            if s is None:
                s = set()
                self.ips[ip] = s
            s.add(p)

    def _tstats(self, p, topic):
        st = self.stats.get(p)
        if st is None:
            return None
        ts = st.topics.get(topic)
        if ts is None:
            if self.params.topic_params(topic) is None:
                return None
            ts = _TopicStats()
            st.topics[topic] = ts
        return ts

    # --- mesh ----------------------------------------------------------------------------
    def graft(self, p, topic, now_ms):
        ts = self._tstats(p, topic)
        if ts is not None:
            ts.in_mesh = True
            ts.graft_ms = now_ms
            ts.mesh_ms = 0
            ts.mesh_deliveries_active = False

    def prune(self, p, topic):
        ts = self._tstats(p, topic)
        if ts is None:
            return
        tp = self.params.topic_params(topic)
        if ts.mesh_deliveries_active and ts.mesh_deliveries < tp.mesh_message_deliveries_threshold:
            d = tp.mesh_message_deliveries_threshold - ts.mesh_deliveries
            ts.mesh_failure_penalty += d * d
        ts.in_mesh = False

    def add_penalty(self, p, n=1):
        st = self.stats.get(p)
        if st is not None:
            st.behaviour_penalty += n

    # --- messages ------------------------------------------------------------------------
    def _record(self, mid, now_ms, ttl_ms):
        r = self.records.get(mid)
        if r is None:
            if len(self.records) >= MAX_DELIVERY_RECORDS:
                self._gc_records(None)
            r = [_UNKNOWN, 0, set(), now_ms + ttl_ms]
            self.records[mid] = r
            self._rec_fifo.append((r[3], mid))
        return r

    def validate_message(self, mid, now_ms, ttl_ms=120000):
        self._record(mid, now_ms, ttl_ms)

    def deliver_message(self, mid, src, topic, now_ms, ttl_ms=120000):
        self._first_delivery(src, topic)
        r = self._record(mid, now_ms, ttl_ms)
        if r[0] != _UNKNOWN:
            return
        r[0] = _VALID
        r[1] = now_ms
        for q in r[2]:
            if q != src:
                self._mesh_delivery(q, topic, now_ms, -1)

    def reject_message(self, mid, src, topic, now_ms, invalid=True, ttl_ms=120000):
        """invalid=True: the message is bad (P4 for the sender and anyone who forwarded it).
        invalid=False: ignored/throttled, nobody is penalised."""
        if mid is None:
            # Rejected before it had an id we trust (signature, size): only the sender pays.
            if invalid:
                self._invalid(src, topic)
            return
        r = self._record(mid, now_ms, ttl_ms)
        if r[0] != _UNKNOWN:
            return
        if not invalid:
            r[0] = _IGNORED
            r[2] = set()
            return
        r[0] = _INVALID
        self._invalid(src, topic)
        for q in r[2]:
            self._invalid(q, topic)
        r[2] = set()

    def duplicate_message(self, mid, src, topic, now_ms):
        r = self.records.get(mid)
        if r is None or src in r[2]:
            return
        status = r[0]
        if status == _UNKNOWN:
            if len(r[2]) < MAX_RECORD_PEERS:
                r[2].add(src)
        elif status == _VALID:
            if len(r[2]) < MAX_RECORD_PEERS:
                r[2].add(src)
            self._mesh_delivery(src, topic, now_ms, r[1])
        elif status == _INVALID:
            self._invalid(src, topic)

    def _invalid(self, p, topic):
        ts = self._tstats(p, topic)
        if ts is not None:
            ts.invalid_deliveries += 1

    def _first_delivery(self, p, topic):
        ts = self._tstats(p, topic)
        if ts is None:
            return
        tp = self.params.topic_params(topic)
        ts.first_deliveries = min(ts.first_deliveries + 1, tp.first_message_deliveries_cap)
        if ts.in_mesh:
            ts.mesh_deliveries = min(ts.mesh_deliveries + 1, tp.mesh_message_deliveries_cap)

    def _mesh_delivery(self, p, topic, now_ms, validated_ms):
        ts = self._tstats(p, topic)
        if ts is None or not ts.in_mesh:
            return
        tp = self.params.topic_params(topic)
        if validated_ms >= 0 and now_ms - validated_ms > tp.mesh_message_deliveries_window_ms:
            return
        ts.mesh_deliveries = min(ts.mesh_deliveries + 1, tp.mesh_message_deliveries_cap)

    def _gc_records(self, now_ms):
        """Expire records (now_ms given) or drop the oldest one (now_ms None: table full)."""
        fifo = self._rec_fifo
        h = self._rec_head
        while h < len(fifo):
            exp, mid = fifo[h]
            if now_ms is not None and exp > now_ms:
                break
            h += 1
            r = self.records.get(mid)
            if r is not None and r[3] == exp:
                del self.records[mid]
                if now_ms is None:
                    break
        if h >= len(fifo):
            self._rec_fifo = []
            h = 0
        elif h > 64 and h * 2 > len(fifo):
            self._rec_fifo = fifo[h:]
            h = 0
        self._rec_head = h

    # --- time ----------------------------------------------------------------------------
    def refresh(self, now_ms):
        """Decay counters once per decay interval (call from the heartbeat)."""
        self.now_ms = now_ms
        if now_ms - self.last_decay_ms < self.params.decay_interval_ms:
            return
        self.last_decay_ms = now_ms
        prm = self.params
        zero = prm.decay_to_zero
        gone = None
        for p, st in self.stats.items():
            if not st.connected:
                # Retained scores do not decay: disconnecting is no way to launder a penalty.
                if now_ms > st.expire_ms:
                    if gone is None:
                        gone = []
                    gone.append(p)
                continue
            for topic, ts in st.topics.items():
                tp = prm.topic_params(topic)
                ts.first_deliveries *= tp.first_message_deliveries_decay
                if ts.first_deliveries < zero:
                    ts.first_deliveries = 0.0
                ts.mesh_deliveries *= tp.mesh_message_deliveries_decay
                if ts.mesh_deliveries < zero:
                    ts.mesh_deliveries = 0.0
                ts.mesh_failure_penalty *= tp.mesh_failure_penalty_decay
                if ts.mesh_failure_penalty < zero:
                    ts.mesh_failure_penalty = 0.0
                ts.invalid_deliveries *= tp.invalid_message_deliveries_decay
                if ts.invalid_deliveries < zero:
                    ts.invalid_deliveries = 0.0
                if ts.in_mesh:
                    ts.mesh_ms = now_ms - ts.graft_ms
                    if ts.mesh_ms > tp.mesh_message_deliveries_activation_ms:
                        ts.mesh_deliveries_active = True
            st.behaviour_penalty *= prm.behaviour_penalty_decay
            if st.behaviour_penalty < zero:
                st.behaviour_penalty = 0.0
        if gone:
            for p in gone:
                self._forget(p)
        self._gc_records(now_ms)

    def score(self, p):
        st = self.stats.get(p)
        if st is None:
            return 0.0
        prm = self.params
        total = 0.0
        for topic, ts in st.topics.items():
            tp = prm.topic_params(topic)
            s = 0.0
            if ts.in_mesh:
                p1 = ts.mesh_ms // tp.time_in_mesh_quantum_ms
                if p1 > tp.time_in_mesh_cap:
                    p1 = tp.time_in_mesh_cap
                s += p1 * tp.time_in_mesh_weight
            s += ts.first_deliveries * tp.first_message_deliveries_weight
            if ts.mesh_deliveries_active and ts.mesh_deliveries < tp.mesh_message_deliveries_threshold:
                d = tp.mesh_message_deliveries_threshold - ts.mesh_deliveries
                s += d * d * tp.mesh_message_deliveries_weight
            s += ts.mesh_failure_penalty * tp.mesh_failure_penalty_weight
            s += ts.invalid_deliveries * ts.invalid_deliveries * tp.invalid_message_deliveries_weight
            total += s * tp.topic_weight
        if prm.topic_score_cap > 0 and total > prm.topic_score_cap:
            total = prm.topic_score_cap
        if prm.app_specific_score is not None:
            total += prm.app_specific_score(p) * prm.app_specific_weight
        if prm.ip_colocation_factor_weight and st.ip is not None and st.ip not in prm.ip_colocation_whitelist:
            n = len(self.ips.get(st.ip, ()))
            if n > prm.ip_colocation_factor_threshold:
                d = n - prm.ip_colocation_factor_threshold
                total += d * d * prm.ip_colocation_factor_weight
        if st.behaviour_penalty > prm.behaviour_penalty_threshold:
            d = st.behaviour_penalty - prm.behaviour_penalty_threshold
            total += d * d * prm.behaviour_penalty_weight
        return total
