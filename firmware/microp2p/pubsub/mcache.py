# Message cache (gossipsub-v1.0.md "Message Cache") and the seen-ids cache, both bounded.
#
# The message cache keeps the last `history` heartbeat windows of forwarded messages, already
# encoded, so IWANT answers need no re-encoding; the newest `gossip` windows are advertised in
# IHAVE. It also counts per-peer IWANT retransmissions (go's GossipRetransmission).

MAX_MCACHE_ENTRIES = 4096        # gateway: messages held for IWANT answers
MAX_MCACHE_ENTRIES_DEVICE = 16
MAX_SEEN = 20000                 # gateway: ids remembered for the seen TTL
MAX_SEEN_DEVICE = 256


class MessageCache:
    def __init__(self, history=5, gossip=3, max_entries=MAX_MCACHE_ENTRIES):
        if gossip > history or history < 1:
            raise ValueError("mcache: gossip windows must be <= history windows")
        self.gossip = gossip
        self.max_entries = max_entries
        self.windows = [[] for _ in range(history)]  # each: list of (mid, topic)
        self.msgs = {}    # mid -> (topic, encoded Message bytes)
        self.peertx = {}  # mid -> {peer: times sent by IWANT}
        self.evicted = 0  # entries dropped early because the cache was full

    def __len__(self):
        return len(self.msgs)

    def put(self, mid, topic, enc):
        if mid in self.msgs:
            return
        if len(self.msgs) >= self.max_entries:
            self._evict_oldest()
        self.msgs[mid] = (topic, enc)
        self.windows[0].append((mid, topic))

    def _evict_oldest(self):
        for i in range(len(self.windows) - 1, -1, -1):
            w = self.windows[i]
            if w:
                mid = w.pop(0)[0]
                self.msgs.pop(mid, None)
                self.peertx.pop(mid, None)
                self.evicted += 1
                return

    def get(self, mid):
        return self.msgs.get(mid)

    def get_for_peer(self, mid, peer):
        """(topic, enc, count) where count is how often `peer` asked for it (this one included)."""
        entry = self.msgs.get(mid)
        if entry is None:
            return None
        tx = self.peertx.get(mid)
        if tx is None:
            tx = {}
            self.peertx[mid] = tx
        n = tx.get(peer, 0) + 1
        tx[peer] = n
        return entry[0], entry[1], n

    def gossip_ids(self, topic):
        out = []
        for i in range(self.gossip):
            for mid, t in self.windows[i]:
                if t == topic:
                    out.append(mid)
        return out

    def shift(self):
        last = self.windows.pop()
        for mid, _ in last:
            self.msgs.pop(mid, None)
            self.peertx.pop(mid, None)
        last.clear()  # reuse the list: no garbage per heartbeat
        self.windows.insert(0, last)


class SeenCache:
    """Ids seen within ttl_ms, oldest evicted first when full. Insertion order == expiry order
    because the TTL is constant, so a FIFO list (with a moving head) is enough."""

    def __init__(self, ttl_ms=120000, max_entries=MAX_SEEN):
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._exp = {}    # mid -> expiry ms
        self._fifo = []   # (expiry, mid) in insertion order
        self._head = 0
        self.evicted = 0

    def __len__(self):
        return len(self._exp)

    def __contains__(self, mid):
        return mid in self._exp

    def add(self, mid, now_ms):
        """Mark seen; returns False when it already was."""
        if mid in self._exp:
            return False
        if len(self._exp) >= self.max_entries:
            self._pop()
            self.evicted += 1
        exp = now_ms + self.ttl_ms
        self._exp[mid] = exp
        self._fifo.append((exp, mid))
        return True

    def _pop(self):
        fifo = self._fifo
        while self._head < len(fifo):
            exp, mid = fifo[self._head]
            self._head += 1
            if self._exp.get(mid) == exp:
                del self._exp[mid]
                break
        self._compact()

    def _compact(self):
        h = self._head
        if h > 64 and h * 2 > len(self._fifo):
            self._fifo = self._fifo[h:]
            self._head = 0

    def expire(self, now_ms):
        fifo = self._fifo
        h = self._head
        n = len(fifo)
        while h < n:
            exp, mid = fifo[h]
            if exp > now_ms:
                break
            if self._exp.get(mid) == exp:
                del self._exp[mid]
            h += 1
        self._head = h
        if h >= n:
            self._fifo = []
            self._head = 0
        else:
            self._compact()
