# Server-side stores of a Kademlia DHT node (a gateway; devices never load this module).
#
# ProviderStore: provider records (libp2p/specs kad-dht, "Content provider advertisement"): key
# (a multihash) -> providers, each with an expiry PROVIDER_TTL_MS after its last ADD_PROVIDER
# and addresses kept for PROVIDER_ADDR_TTL_MS. Caps: providers per key, keys per provider (one
# peer cannot fill the store), total records. Expiry by the clock passed in.
#
# RecordStore: PUT_VALUE / GET_VALUE records, validated per namespace: a key is "/<ns>/<rest>"
# and <ns> must have a validator (go's rule; unknown namespaces are rejected). Built in: "pk"
# (key /pk/<peer id multihash>, value the PublicKey protobuf whose peer id that is).
from microp2p.codec import multihash, pb
from microp2p.identity.peerid import PeerId
from microp2p.errors import DecodeError, LimitError, SCOPE_STREAM

PROVIDER_TTL_MS = 48 * 3600 * 1000        # spec: provider records expire after 48 h
PROVIDER_ADDR_TTL_MS = 24 * 3600 * 1000   # go ProviderAddrTTL: addresses served this long
MAX_PROVIDER_RECORDS = 20000              # (key, provider) pairs in total
MAX_PROVIDERS_PER_KEY = 64                # providers kept per key (the newest replace the oldest)
MAX_KEYS_PER_PROVIDER = 1024              # keys one peer may provide here
MAX_PROVIDER_ADDRS = 8                    # addresses kept per provider record
MAX_PROVIDERS_RETURNED = 20               # providerPeers in one GET_PROVIDERS answer

RECORD_TTL_MS = 36 * 3600 * 1000          # go MaxRecordAge
MAX_RECORDS = 1024
MAX_RECORD_VALUE = 10240
MAX_RECORD_BYTES = 4 * 1024 * 1024        # key + value bytes of all records

KEY_PB_SCHEMA = ((1, "type", pb.U, False), (2, "data", pb.B, False))
MAX_KEY_TYPE = 3                          # RSA, Ed25519, Secp256k1, ECDSA


class ProviderStore:
    def __init__(self, max_records=MAX_PROVIDER_RECORDS, per_key=MAX_PROVIDERS_PER_KEY,
                 per_provider=MAX_KEYS_PER_PROVIDER, ttl_ms=PROVIDER_TTL_MS,
                 addr_ttl_ms=PROVIDER_ADDR_TTL_MS):
        self.max_records = max_records
        self.per_key = per_key
        self.per_provider = per_provider
        self.ttl_ms = ttl_ms
        self.addr_ttl_ms = addr_ttl_ms
        self._keys = {}      # key -> {pid: [expires_ms, addrs (tuple of bytes), added_ms]}
        self._count = {}     # pid -> number of keys it provides
        self.size = 0
        self.refused = 0

    def __len__(self):
        return self.size

    def add(self, key, pid, addrs, now_ms):
        """Store (or refresh) pid as a provider of key. Returns True when stored."""
        key = bytes(key)
        try:
            multihash.decode(key, multihash.MAX_DIGEST_LEN, True)
        except DecodeError:
            raise DecodeError("provider key is not a multihash", SCOPE_STREAM)
        addrs = tuple(bytes(a) for a in addrs[:MAX_PROVIDER_ADDRS])
        provs = self._keys.get(key)
        if provs is not None:
            rec = provs.get(pid)
            if rec is not None:
                rec[0] = now_ms + self.ttl_ms
                rec[1] = addrs
                rec[2] = now_ms
                return True
        if self._count.get(pid, 0) >= self.per_provider:
            self.refused += 1
            return False
        if self.size >= self.max_records:
            self.expire(now_ms)
            if self.size >= self.max_records:
                self.refused += 1
                return False
        if provs is None:
            provs = {}
            self._keys[key] = provs
        elif len(provs) >= self.per_key:
            # replace the provider whose record expires first
            oldest = None
            for p in provs:
                if oldest is None or provs[p][0] < provs[oldest][0]:
                    oldest = p
            self._drop(key, provs, oldest)
        provs[pid] = [now_ms + self.ttl_ms, addrs, now_ms]
        self._count[pid] = self._count.get(pid, 0) + 1
        self.size += 1
        return True

    def _drop(self, key, provs, pid):
        del provs[pid]
        n = self._count.get(pid, 1) - 1
        if n:
            self._count[pid] = n
        else:
            self._count.pop(pid, None)
        self.size -= 1

    def get(self, key, now_ms, limit=MAX_PROVIDERS_RETURNED):
        """-> [(pid, [addr bytes])] of live providers (addresses only while fresh)."""
        provs = self._keys.get(bytes(key))
        if not provs:
            return []
        out = []
        for pid in list(provs):
            rec = provs[pid]
            if rec[0] <= now_ms:
                self._drop(key, provs, pid)
                continue
            if len(out) < limit:
                fresh = now_ms - rec[2] < self.addr_ttl_ms
                out.append((pid, list(rec[1]) if fresh else []))
        if not provs:
            del self._keys[bytes(key)]
        return out

    def expire(self, now_ms):
        """Drop every expired record; returns how many."""
        n = 0
        for key in list(self._keys):
            provs = self._keys[key]
            for pid in list(provs):
                if provs[pid][0] <= now_ms:
                    self._drop(key, provs, pid)
                    n += 1
            if not provs:
                del self._keys[key]
        return n

    def keys(self):
        return list(self._keys)


# ---- records ---------------------------------------------------------------------------------

def split_key(key):
    """b"/ns/rest" -> ("ns", b"rest"). DecodeError when it has no namespace."""
    key = bytes(key)
    if len(key) < 3 or key[0] != 0x2F:
        raise DecodeError("record key has no namespace", SCOPE_STREAM)
    i = key.find(b"/", 1)
    if i <= 1 or i == len(key) - 1:
        raise DecodeError("record key has no namespace", SCOPE_STREAM)
    try:
        ns = str(key[1:i], "utf-8")
    except UnicodeError:
        raise DecodeError("record namespace is not utf-8", SCOPE_STREAM)
    return ns, key[i + 1:]


def validate_pk(key, value):
    """/pk/<multihash of peer id> -> the PublicKey protobuf of exactly that peer id."""
    ns, rest = split_key(key)
    if ns != "pk":
        raise DecodeError("not a /pk/ key", SCOPE_STREAM)
    try:
        want = PeerId.from_bytes(rest)
        k = pb.decode(value, KEY_PB_SCHEMA)
    except DecodeError:
        raise DecodeError("bad /pk/ record", SCOPE_STREAM)
    if k.get("type", 0) > MAX_KEY_TYPE or not k.get("data"):
        raise DecodeError("bad public key in /pk/ record", SCOPE_STREAM)
    if not want.matches_public_key_protobuf(value):
        raise DecodeError("/pk/ record key does not match its peer id", SCOPE_STREAM)


DEFAULT_VALIDATORS = {"pk": validate_pk}


class RecordStore:
    def __init__(self, validators=None, max_records=MAX_RECORDS, ttl_ms=RECORD_TTL_MS,
                 max_bytes=MAX_RECORD_BYTES):
        self.validators = DEFAULT_VALIDATORS if validators is None else validators
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.ttl_ms = ttl_ms
        self._records = {}   # key -> (value, expires_ms)
        self.bytes = 0

    def __len__(self):
        return len(self._records)

    def validate(self, key, value):
        ns, _ = split_key(key)
        v = self.validators.get(ns)
        if v is None:
            raise DecodeError("unknown record namespace %r" % ns, SCOPE_STREAM)
        if len(value) > MAX_RECORD_VALUE:
            raise LimitError("record value over %d bytes" % MAX_RECORD_VALUE, SCOPE_STREAM)
        v(key, value)

    def put(self, key, value, now_ms):
        """Validate and store. Raises DecodeError (invalid) / LimitError (store full)."""
        key = bytes(key)
        value = bytes(value)
        self.validate(key, value)
        old = self._records.get(key)
        if old is not None:
            self.bytes -= len(key) + len(old[0])
        elif len(self._records) >= self.max_records:
            self.expire(now_ms)
            if len(self._records) >= self.max_records:
                raise LimitError("record store full", SCOPE_STREAM)
        if self.bytes + len(key) + len(value) > self.max_bytes:
            if old is not None:
                self.bytes += len(key) + len(old[0])
            raise LimitError("record store full", SCOPE_STREAM)
        self._records[key] = (value, now_ms + self.ttl_ms)
        self.bytes += len(key) + len(value)

    def get(self, key, now_ms):
        r = self._records.get(bytes(key))
        if r is None:
            return None
        if r[1] <= now_ms:
            del self._records[bytes(key)]
            self.bytes -= len(key) + len(r[0])
            return None
        return r[0]

    def expire(self, now_ms):
        n = 0
        for key in list(self._records):
            r = self._records[key]
            if r[1] <= now_ms:
                del self._records[key]
                self.bytes -= len(key) + len(r[0])
                n += 1
        return n
