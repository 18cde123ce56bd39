# Kademlia keyspace and k-bucket routing table (libp2p/specs kad-dht/README.md, "Distance" and
# "Kademlia routing table"). A key's position is sha256(key); distance is the XOR of positions,
# compared as 32-byte big-endian strings (no big ints: every big-int op allocates on a device).
#
# Bucket i holds peers whose position shares exactly i leading bits with ours (i = 0..255), at
# most k each. A full bucket never evicts on its own: the newcomer waits in the bucket's one
# pending slot and add() returns ("check", oldest) so the driver can probe the least recently
# seen peer; check_result(oldest, alive) then keeps the old peer (and drops the newcomer) or
# replaces it. A check not answered within CHECK_TIMEOUT_MS counts as failed (tick()).
from microp2p import crypto

K = 20
KEY_BITS = 256
CHECK_TIMEOUT_MS = 10000     # a liveness check the driver never answered counts as failed
MAX_ADDRS = 8                # addresses kept per routing table entry
MAX_RANDOM_TRIES = 1 << 14   # attempts to draw a key in a bucket (refresh); ~2^(cpl+1) needed


def key_of(b):
    """A key's 32-byte position in the keyspace."""
    return crypto.sha256(bytes(b))


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def common_prefix_len(a, b):
    """Leading bits shared by two 32-byte positions (256 when equal)."""
    for i in range(32):
        d = a[i] ^ b[i]
        if d:
            n = i * 8
            while not d & 0x80:
                d <<= 1
                n += 1
            return n
    return KEY_BITS


def closer(a, b, target):
    """True when position a is strictly closer to target than position b."""
    for i in range(32):
        da = a[i] ^ target[i]
        db = b[i] ^ target[i]
        if da != db:
            return da < db
    return False


def sort_by_distance(entries, target, pos=1):
    """Sort (in place) tuples/lists whose element `pos` is a 32-byte position."""
    entries.sort(key=lambda e: xor(e[pos], target))
    return entries


# A table entry is a 3-tuple (replaced when it changes), not an object: MicroPython gives every
# instance a dict (it ignores __slots__), which doubles a gateway-sized table. A bucket is kept
# least recently seen first, so the entry needs no timestamp.
ID = 0      # peer id bytes
POS = 1     # key_of(id)
ADDRS = 2   # [Multiaddr]


ADDED = ("added",)
UPDATED = ("updated",)
IGNORED = ("ignored",)


def Entry(pid, pos, addrs):
    return (pid, pos, _cap(addrs))


def _cap(addrs):
    # the table keeps the caller's list (no copy per entry: a gateway holds thousands)
    return addrs if len(addrs) <= MAX_ADDRS else addrs[:MAX_ADDRS]


class RoutingTable:
    def __init__(self, local_id, k=K):
        self.local_id = bytes(local_id)
        self.local_pos = key_of(local_id)
        self.k = k
        self._buckets = {}   # cpl -> [Entry], least recently seen first
        self._pending = {}   # cpl -> (newcomer Entry, oldest peer id, since_ms)
        self._size = 0

    def __len__(self):
        return self._size

    def _find(self, pid, pos=None):
        if pos is None:
            pos = key_of(pid)
        cpl = common_prefix_len(pos, self.local_pos)
        b = self._buckets.get(cpl)
        if b:
            for i in range(len(b)):
                if b[i][ID] == pid:
                    return cpl, b, i
        return cpl, b, -1

    def get(self, pid):
        cpl, b, i = self._find(pid)
        return b[i] if i >= 0 else None

    def add(self, pid, addrs, now_ms, pos=None):
        """Offer a peer seen alive (a DHT server). Returns ADDED, UPDATED, IGNORED or
        ("check", oldest_id) when its bucket is full. pos: key_of(pid) if known.
        Allocates nothing for a peer it does not keep (a full table is offered peers all the time)."""
        if type(pid) is not bytes:
            pid = bytes(pid)
        if pid == self.local_id:
            return IGNORED
        if pos is None:
            pos = key_of(pid)
        cpl = common_prefix_len(pos, self.local_pos)
        b = self._buckets.get(cpl)
        if b is None:
            b = []
            self._buckets[cpl] = b
        for i in range(len(b)):
            if b[i][ID] == pid:
                e = b.pop(i)
                b.append((pid, e[POS], _cap(addrs) if addrs else e[ADDRS]))
                return UPDATED
        if len(b) < self.k:
            b.append(Entry(pid, pos, addrs))
            self._size += 1
            return ADDED
        if cpl in self._pending:
            return IGNORED  # one check per bucket at a time; later newcomers are not kept
        oldest = b[0][ID]
        self._pending[cpl] = (Entry(pid, pos, addrs), oldest, now_ms)
        return ("check", oldest)

    def check_result(self, pid, alive, now_ms):
        """The driver's answer to a ("check", pid) request."""
        cpl, b, i = self._find(pid)
        p = self._pending.pop(cpl, None)
        if i < 0:
            if p is not None and b is not None and len(b) < self.k:
                b.append(p[0])
                self._size += 1
            return
        if alive:
            e = b.pop(i)
            b.append(e)
        else:
            b.pop(i)
            self._size -= 1
            if p is not None and p[1] == pid:
                b.append(p[0])
                self._size += 1

    def tick(self, now_ms):
        """Fail liveness checks the driver never answered. Returns the ids that were dropped."""
        dropped = []
        for cpl in list(self._pending):
            p = self._pending[cpl]
            if now_ms - p[2] >= CHECK_TIMEOUT_MS:
                dropped.append(p[1])
                self.check_result(p[1], False, now_ms)
        return dropped

    def pending_checks(self):
        return [p[1] for p in self._pending.values()]

    def remove(self, pid):
        cpl, b, i = self._find(pid)
        if i >= 0:
            b.pop(i)
            self._size -= 1
            p = self._pending.pop(cpl, None)
            if p is not None:  # the waiting newcomer takes the free slot
                b.append(p[0])
                self._size += 1
            if not b:
                del self._buckets[cpl]
            return True
        return False

    def closest(self, target_pos, n=None, exclude=None):
        """The n (default k) entries closest to a 32-byte position, closest first."""
        if n is None:
            n = self.k
        out = []
        for b in self._buckets.values():
            for e in b:
                if exclude is None or e[ID] not in exclude:
                    out.append(e)
        out.sort(key=lambda e: xor(e[POS], target_pos))
        return out[:n]

    def peers(self):
        out = []
        for b in self._buckets.values():
            out.extend(b)
        return out

    def bucket_cpls(self):
        """Common prefix lengths of the non-empty buckets (refresh targets)."""
        return sorted(c for c in self._buckets if self._buckets[c])

    def random_id_in_bucket(self, cpl, rand=None):
        """A random key (an identity-multihash-shaped id) whose position shares exactly cpl bits
        with ours, for bucket refresh. None when not found within MAX_RANDOM_TRIES (large cpl)."""
        if rand is None:
            rand = crypto.random_bytes
        for _ in range(MAX_RANDOM_TRIES):
            cand = b"\x00\x24\x08\x01\x12\x20" + rand(32)  # shaped like an Ed25519 peer id
            if common_prefix_len(key_of(cand), self.local_pos) == cpl:
                return cand
        return None
