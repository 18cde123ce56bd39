# The Kademlia request handler of a DHT server (gateway / any CPython node in server mode):
# one decoded request in -> one encoded response out (None for ADD_PROVIDER, which has none).
# Sans-IO: the routing table, stores and the clock value are passed in; peer_addrs(pid) is the
# driver's view of its peer store (connected peers and peers it knows addresses for).
from microp2p.proto.kad import codec
from microp2p.proto.kad.table import key_of
from microp2p.errors import ProtocolError, DecodeError, SCOPE_STREAM


class Server:
    def __init__(self, local_id, table, providers, records, peer_addrs=None, k=None):
        self.local_id = bytes(local_id)
        self.table = table
        self.providers = providers
        self.records = records
        self.peer_addrs = peer_addrs      # fn(pid bytes) -> [Multiaddr] (may be empty) or None
        self.k = k or table.k
        self.counts = [0] * 6             # requests handled, by type

    def _addrs(self, pid):
        if self.peer_addrs is None:
            return []
        return self.peer_addrs(pid) or []

    def _closer(self, key, sender):
        """The k closest peers of the table to key, without the sender and ourselves."""
        ents = self.table.closest(key_of(key), self.k, (sender, self.local_id))
        return [(e[0], e[2]) for e in ents]

    def handle(self, sender, msg, now_ms):
        """sender: the requester's peer id bytes; msg: a decoded codec.Message.
        Returns the framed response bytes, or None. Raises ProtocolError (stream scope)."""
        t = msg.type
        self.counts[t] += 1
        key = msg.key
        if t == codec.PING:
            return codec.frame(codec.encode(codec.Message(codec.PING)))
        if key is None or not key:
            raise DecodeError("kad request without a key", SCOPE_STREAM)
        if t == codec.FIND_NODE:
            closer = self._closer(key, sender)
            # the key's own peer, when we know how to reach it (a device we serve, a connected
            # peer): first, as go does; the requester asking for itself gets itself too
            own = self._addrs(key)
            if own:
                closer = [(key, own)] + [p for p in closer if p[0] != key]
                closer = closer[:self.k]
            return codec.frame(codec.encode(codec.Message(codec.FIND_NODE, key, closer=closer)))
        if t == codec.GET_PROVIDERS:
            provs = []
            for pid, addrs in self.providers.get(key, now_ms):
                if not addrs:
                    addrs = [a.to_bytes() for a in self._addrs(pid)]
                provs.append((pid, addrs))
            return codec.frame(codec.encode(codec.Message(
                codec.GET_PROVIDERS, key, closer=self._closer(key, sender), providers=provs)))
        if t == codec.ADD_PROVIDER:
            for pid, addrs in msg.providers:
                # only the sender may add itself (spec), and only with addresses (go, js)
                if pid == sender and addrs:
                    self.providers.add(key, pid, [a.to_bytes() for a in addrs], now_ms)
            return None
        if t == codec.GET_VALUE:
            rec = None
            value = self.records.get(key, now_ms)
            if value is not None:
                rec = (key, value)
            return codec.frame(codec.encode(codec.Message(
                codec.GET_VALUE, key, record=rec, closer=self._closer(key, sender))))
        if t == codec.PUT_VALUE:
            if msg.record is None or msg.record[0] != key:
                raise DecodeError("PUT_VALUE record key differs from the message key", SCOPE_STREAM)
            self.records.put(key, msg.record[1], now_ms)
            echo = codec.Message(codec.PUT_VALUE, key, record=msg.record)
            echo.time_received = msg.time_received
            return codec.frame(codec.encode(echo))
        raise ProtocolError("unhandled kad message type %d" % t, SCOPE_STREAM)
