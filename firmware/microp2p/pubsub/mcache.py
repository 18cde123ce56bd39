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


class _Account:
    """The seen ids one owner brought first: (expiry, mid) in insertion order, a moving head."""
    __slots__ = ("fifo", "head", "n")

    def __init__(self):
        self.fifo = []
        self.head = 0
        self.n = 0       # live entries (the fifo may also hold stale ones, skipped when met)

    def compact(self):
        h = self.head
        if h > 64 and h * 2 > len(self.fifo):
            self.fifo = self.fifo[h:]
            self.head = 0


class SeenCache:
    """Ids seen within ttl_ms, bounded by max_entries, each accounted to the owner that brought it
    first (the delivering peer; None for our own messages).

    When full, room is made so that one owner's flood can only push out its own ids: an owner at
    or over its fair share (max_entries // owners) evicts its own oldest id; one under it evicts
    the oldest id of the owner holding the most. So a peer sending 20 000 junk messages cannot
    flush an honest peer's ids inside the TTL and then replay them as new. A duplicate arriving
    from a less loaded owner moves the id to it, so racing to be first does not help either.
    Insertion order is expiry order per owner (the TTL is constant)."""

    def __init__(self, ttl_ms=120000, max_entries=MAX_SEEN):
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._map = {}      # mid -> (expiry ms, _Account)
        self._owners = {}   # owner -> _Account
        self._big = None    # the account found largest at the last scan (eviction victim)
        self.evicted = 0            # ids dropped before their TTL because the cache was full
        self.evicted_others = 0     # ... of those, ids of another owner than the one adding

    def __len__(self):
        return len(self._map)

    def __contains__(self, mid):
        return mid in self._map

    def owner_count(self, owner):
        a = self._owners.get(owner)
        return a.n if a is not None else 0

    def add(self, mid, now_ms, owner=None):
        """Mark seen; returns False when it already was."""
        if mid in self._map:
            return False
        acct = self._owners.get(owner)
        if len(self._map) >= self.max_entries:
            self._make_room(acct)
        if acct is None:
            acct = _Account()
            self._owners[owner] = acct
        exp = now_ms + self.ttl_ms
        self._map[mid] = (exp, acct)
        acct.fifo.append((exp, mid))
        acct.n += 1
        return True

    def note_duplicate(self, mid, owner):
        """A copy of a seen id from owner: move the id to owner when owner holds fewer ids."""
        e = self._map.get(mid)
        if e is None:
            return
        acct = self._owners.get(owner)
        if acct is None or acct is e[1] or e[1].n <= acct.n + 1:
            return
        e[1].n -= 1
        self._map[mid] = (e[0], acct)
        acct.fifo.append((e[0], mid))
        acct.n += 1

    def _make_room(self, acct):
        owners = len(self._owners) + (1 if acct is None else 0)
        share = self.max_entries // owners if owners else self.max_entries
        if acct is not None and acct.n >= share:
            victim = acct
        else:
            victim = self._big
            if victim is None or victim.n <= share or victim is acct:
                victim = None
                for a in self._owners.values():
                    if a is not acct and (victim is None or a.n > victim.n):
                        victim = a
                self._big = victim
            if victim is None:
                return
            self.evicted_others += 1
        self._pop(victim)
        self.evicted += 1

    def _pop(self, acct):
        fifo = acct.fifo
        m = self._map
        while acct.head < len(fifo):
            exp, mid = fifo[acct.head]
            acct.head += 1
            e = m.get(mid)
            if e is not None and e[1] is acct and e[0] == exp:
                del m[mid]
                acct.n -= 1
                break
        acct.compact()

    def expire(self, now_ms):
        m = self._map
        empty = None
        for owner, acct in self._owners.items():
            fifo = acct.fifo
            h = acct.head
            n = len(fifo)
            while h < n:
                exp, mid = fifo[h]
                if exp > now_ms:
                    break
                e = m.get(mid)
                if e is not None and e[1] is acct and e[0] == exp:
                    del m[mid]
                    acct.n -= 1
                h += 1
            acct.head = h
            if h >= n:
                acct.fifo = []
                acct.head = 0
                if not acct.n:
                    if empty is None:
                        empty = []
                    empty.append(owner)
            else:
                acct.compact()
        if empty:
            for owner in empty:
                a = self._owners.pop(owner)
                if a is self._big:
                    self._big = None
