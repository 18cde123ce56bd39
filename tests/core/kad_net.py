# An in-memory Kademlia network for core tests and the bench: N nodes, each a routing table, a
# provider store and a request handler; lookups are driven wave by wave (all requests of a wave
# answered before the next), so "rounds" and message counts are deterministic.
from microp2p import crypto
from microp2p.codec.multiaddr import Multiaddr
from microp2p.proto.kad import codec
from microp2p.proto.kad.table import RoutingTable, key_of, xor
from microp2p.proto.kad.lookup import Lookup


def fake_id(i, salt=b""):
    """A valid sha2-256-multihash peer id, deterministic per index."""
    return b"\x12\x20" + crypto.sha256(salt + ("node-%d" % i).encode())


def fake_addr(i):
    return Multiaddr.from_string("/ip4/10.%d.%d.%d/tcp/4001" % ((i >> 16) & 255, (i >> 8) & 255, i & 255))


class SimNode:
    """One node: its table and provider store (made on first ADD_PROVIDER). Requests are answered
    by the network's one Server object, pointed at the node's state per request: 200 full Server
    objects would not fit next to 200 tables in a 2 MiB MicroPython heap."""

    def __init__(self, pid, addr, k=20):
        self.id = pid
        self.addr = addr
        self.table = RoutingTable(pid, k)
        self.providers = None
        self.silent = False   # never answers
        self.handler = None   # fn(sender, Message, now) -> framed bytes: a custom (hostile) answer


class Network:
    def __init__(self, n, k=20, salt=b""):
        self.nodes = {}
        self.order = []
        for i in range(n):
            pid = fake_id(i, salt)
            self.nodes[pid] = SimNode(pid, fake_addr(i), k)
            self.order.append(pid)
        self.messages = 0
        from microp2p.proto.kad.store import ProviderStore, RecordStore
        from microp2p.proto.kad.server import Server
        self._empty = ProviderStore()
        self._server = Server(b"", None, None, RecordStore(), k=k)

    def server_of(self, node, add=False):
        """The shared Server, set up as node's. add: make the node its own provider store."""
        from microp2p.proto.kad.store import ProviderStore
        if add and node.providers is None:
            node.providers = ProviderStore()
        srv = self._server
        srv.local_id = node.id
        srv.table = node.table
        srv.providers = node.providers or self._empty
        return srv

    def fill_tables(self, now_ms=0, share=1):
        """Every node offered every other node, or only about 1 in `share` of them (a pseudo-random
        choice per pair: tables that know less than all, and fit a 2 MiB MicroPython heap);
        buckets cap what each keeps."""
        pos = [key_of(pid) for pid in self.order]
        addrs = [[self.nodes[pid].addr] for pid in self.order]  # shared: tables keep the list given
        n = len(self.order)
        for i in range(n):
            t = self.nodes[self.order[i]].table
            for j in range(n):
                if j != i and (share == 1 or (pos[i][j & 31] ^ pos[j][i & 31]) % share == 0):
                    t.add(self.order[j], addrs[j], now_ms, pos[j])

    def true_closest(self, key, n=20, exclude=None):
        """The n ids closest to key over the whole network (a running top-n: no list of all ids,
        which a fragmented MicroPython heap may not find room for)."""
        target = key_of(key)
        best = []  # (distance, id), sorted
        for p in self.order:
            if exclude is not None and p in exclude:
                continue
            d = xor(key_of(p), target)
            if len(best) < n or d < best[-1][0]:
                j = len(best)
                while j > 0 and best[j - 1][0] > d:
                    j -= 1
                best.insert(j, (d, p))
                if len(best) > n:
                    best.pop()
        return [p for _, p in best]

    def request(self, sender, pid, framed, now_ms):
        """Deliver one framed request; returns the decoded response or None (failure)."""
        self.messages += 1
        node = self.nodes.get(pid)
        if node is None or node.silent:
            return None
        body = codec.Reader().receive(framed)[0]
        msg = codec.decode(body)
        if node.handler is not None:
            out = node.handler(sender, msg, now_ms)
        else:
            out = self.server_of(node, msg.type == codec.ADD_PROVIDER).handle(sender, msg, now_ms)
        if out is None:
            return None
        return codec.decode(codec.Reader().receive(out)[0])

    def run(self, lk, sender, now_ms=0, wave_ms=100, max_waves=1000):
        """Drive a Lookup to its end. Silent peers fail by the lookup's own timeout.
        Returns the number of waves."""
        import gc
        waves = 0
        while not lk.done and waves < max_waves:
            gc.collect()  # 200 tables fill most of a 2 MiB MicroPython heap: keep it compact
            reqs = lk.next_requests(now_ms)
            waves += 1
            for pid, addrs, framed in reqs:
                resp = self.request(sender, pid, framed, now_ms)
                if resp is not None:
                    lk.on_response(pid, resp, now_ms)
            now_ms += wave_ms
            lk.tick(now_ms)
        return waves

    def lookup(self, origin, kind, key, now_ms=0, **kw):
        node = self.nodes[origin]
        seeds = [(e[0], e[2]) for e in node.table.closest(key_of(key))]
        lk = Lookup(kind, key, origin, seeds, now_ms, **kw)
        self.run(lk, origin, now_ms)
        return lk

    def provide(self, origin, key, now_ms=0, **kw):
        """FIND_NODE for key, then ADD_PROVIDER to the closest that answered. Returns (lookup, n)."""
        lk = self.lookup(origin, codec.FIND_NODE, key, now_ms, **kw)
        me = self.nodes[origin]
        add = codec.frame(codec.encode(codec.Message(codec.ADD_PROVIDER, key,
                                                     providers=[(origin, [me.addr])])))
        n = 0
        for pid, _ in lk.closest():
            self.messages += 1
            node = self.nodes[pid]
            if not node.silent:
                msg = codec.decode(codec.Reader().receive(add)[0])
                self.server_of(node, True).handle(origin, msg, now_ms)
                n += 1
        return lk, n
