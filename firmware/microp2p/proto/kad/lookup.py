# The iterative Kademlia lookup (libp2p/specs kad-dht/README.md, "Peer routing"), sans-IO.
#
#   lk = Lookup(FIND_NODE, key, local_id, seeds, now_ms, alpha=3)
#   for (pid, addrs, request_bytes) in lk.next_requests(now_ms): ...send...
#   lk.on_response(pid, message, now_ms) / lk.on_failure(pid, now_ms) / lk.tick(now_ms)
#   lk.done -> lk.closest() (the k closest peers that answered), lk.providers, lk.record,
#              lk.found (find-peer: addresses of the target)
#
# Termination follows the spec: done when the k closest peers seen (failures discarded) have all
# answered, or when nothing is left to ask. Budgets keep a hostile network from holding a lookup
# open: at most max_queries peers are ever asked, candidates beyond MAX_CANDIDATES (the farthest)
# are forgotten, each request times out after request_timeout_ms and the whole lookup after
# timeout_ms (time is passed in). Our own id is dropped from every answer.
from microp2p.proto.kad import codec
from microp2p.proto.kad.table import key_of, xor, K

ALPHA_GATEWAY = 3
ALPHA_DEVICE = 1
MAX_QUERIES = 60              # peers one lookup may ask (gateway); devices pass less
MAX_QUERIES_DEVICE = 16
MAX_CANDIDATES = 3 * K        # candidates kept (closest to the target first)
REQUEST_TIMEOUT_MS = 10000    # go/js query timeout per request
LOOKUP_TIMEOUT_MS = 60000     # the whole lookup
MAX_PROVIDERS = 20            # providers collected before a GET_PROVIDERS lookup stops (go's count)

HEARD = 0
WAITING = 1
ANSWERED = 2
FAILED = 3


class Lookup:
    def __init__(self, kind, key, local_id, seeds, now_ms, alpha=ALPHA_GATEWAY, k=K,
                 max_queries=MAX_QUERIES, timeout_ms=LOOKUP_TIMEOUT_MS,
                 request_timeout_ms=REQUEST_TIMEOUT_MS, max_providers=MAX_PROVIDERS,
                 stop_on_target=False, validate=None):
        """kind: codec.FIND_NODE / GET_PROVIDERS / GET_VALUE; key: the key bytes (a peer id for
        FIND_NODE, a multihash for providers); seeds: (peer id bytes, [Multiaddr]) pairs."""
        self.kind = kind
        self.key = bytes(key)
        self.target = key_of(key)
        self.local_id = bytes(local_id)
        self.alpha = alpha
        self.k = k
        self.max_queries = max_queries
        self.deadline = now_ms + timeout_ms
        self.request_timeout_ms = request_timeout_ms
        self.max_providers = max_providers
        self.stop_on_target = stop_on_target
        self.validate = validate      # GET_VALUE: fn(key, value) raising on a bad record
        self._request = codec.frame(codec.encode(codec.Message(kind, self.key)))
        self._cands = []              # [dist, pid, addrs, state, sent_ms, depth], sorted by dist
        self._by_id = {}
        self.queried = 0
        self.answered = 0
        self.failed = 0
        self.in_flight = 0
        self.rounds = 0               # max answer depth (seeds answer in round 1)
        self.providers = []           # [(pid, [Multiaddr])]
        self._provider_ids = set()
        self.record = None            # (key, value) for GET_VALUE
        self.found = None             # FIND_NODE target's addresses when seen
        self.timed_out = False
        self.done = False
        for pid, addrs in seeds:
            self._offer(pid, addrs, 0)
        self._check_done(now_ms)

    # ---- candidates --------------------------------------------------------------------------
    def _offer(self, pid, addrs, depth):
        if pid == self.local_id:
            return
        c = self._by_id.get(pid)
        if c is not None:
            if not c[2] and addrs:
                c[2] = addrs
            return
        if self.kind == codec.FIND_NODE and pid == self.key and addrs and depth > 0 and self.found is None:
            self.found = addrs  # named by a peer that answered (not only our own table: a seed)
        d = xor(key_of(pid), self.target)
        cands = self._cands
        if len(cands) >= MAX_CANDIDATES:
            # forget the farthest candidate not being asked right now, if it is farther than d
            j = len(cands) - 1
            while j >= 0 and cands[j][3] == WAITING:
                j -= 1
            if j < 0 or cands[j][0] <= d:
                return
            del self._by_id[cands[j][1]]
            cands.pop(j)
        c = [d, pid, addrs, HEARD, 0, depth]
        lo, hi = 0, len(cands)
        while lo < hi:
            mid = (lo + hi) // 2
            if cands[mid][0] < d:
                lo = mid + 1
            else:
                hi = mid
        cands.insert(lo, c)
        self._by_id[pid] = c

    # ---- driver API --------------------------------------------------------------------------
    def next_requests(self, now_ms):
        """-> [(pid, addrs, framed request)] to send now (marks them as being asked)."""
        out = []
        if self.done:
            return out
        for c in self._cands:
            if self.in_flight >= self.alpha or self.queried >= self.max_queries:
                break
            if c[3] == HEARD:
                c[3] = WAITING
                c[4] = now_ms
                self.in_flight += 1
                self.queried += 1
                out.append((c[1], c[2], self._request))
        if not out:
            self._check_done(now_ms)
        return out

    def on_response(self, pid, msg, now_ms):
        """A decoded codec.Message answering our request to pid."""
        c = self._by_id.get(pid)
        if c is None or c[3] != WAITING or self.done:
            return
        c[3] = ANSWERED
        self.in_flight -= 1
        self.answered += 1
        depth = c[5] + 1
        if depth > self.rounds:
            self.rounds = depth
        if self.kind == codec.FIND_NODE and pid == self.key:
            self.found = c[2] or self.found or []
        for p in msg.closer:
            self._offer(p[0], p[1], depth)
        if self.kind == codec.GET_PROVIDERS:
            for p in msg.providers:
                if p[0] not in self._provider_ids and len(self.providers) < self.max_providers:
                    self._provider_ids.add(p[0])
                    self.providers.append(p)
        elif self.kind == codec.GET_VALUE and msg.record is not None and self.record is None:
            ok = msg.record[0] == self.key
            if ok and self.validate is not None:
                try:
                    self.validate(msg.record[0], msg.record[1])
                except Exception:
                    ok = False
            if ok:
                self.record = msg.record
        self._check_done(now_ms)

    def on_failure(self, pid, now_ms):
        """The request to pid failed (dial error, reset, bad message, timeout)."""
        c = self._by_id.get(pid)
        if c is None or c[3] != WAITING:
            return
        c[3] = FAILED
        self.in_flight -= 1
        self.failed += 1
        self._check_done(now_ms)

    def tick(self, now_ms):
        """Time out late requests and the lookup itself. Returns the pids that timed out."""
        late = []
        if self.done:
            return late
        for c in self._cands:
            if c[3] == WAITING and now_ms - c[4] >= self.request_timeout_ms:
                late.append(c[1])
        for pid in late:
            self.on_failure(pid, now_ms)
        if not self.done and now_ms >= self.deadline:
            self.timed_out = True
            self.done = True
        return late

    def waiting(self):
        return [c[1] for c in self._cands if c[3] == WAITING]

    # ---- results -----------------------------------------------------------------------------
    def _check_done(self, now_ms):
        if self.done:
            return
        if now_ms >= self.deadline:
            self.timed_out = True
            self.done = True
            return
        if self.stop_on_target and self.found:
            self.done = True
            return
        if self.kind == codec.GET_PROVIDERS and len(self.providers) >= self.max_providers:
            self.done = True
            return
        if self.kind == codec.GET_VALUE and self.record is not None:
            self.done = True
            return
        # the k closest not-failed candidates have all answered?
        n = 0
        idle = False
        for c in self._cands:
            s = c[3]
            if s == FAILED:
                continue
            if s != ANSWERED:
                idle = True
                break
            n += 1
            if n >= self.k:
                break
        if not idle:
            self.done = True
            return
        if self.in_flight == 0:
            if self.queried >= self.max_queries:
                self.done = True  # budget spent
                return
            for c in self._cands:
                if c[3] == HEARD:
                    return
            self.done = True

    def closest(self, n=None):
        """The closest peers that answered, closest first: [(pid, addrs)]."""
        n = self.k if n is None else n
        out = []
        for c in self._cands:
            if c[3] == ANSWERED:
                out.append((c[1], c[2]))
                if len(out) >= n:
                    break
        return out
