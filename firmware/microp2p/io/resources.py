# The resource manager: every connection, stream, pending upgrade and buffered byte a node holds is
# accounted to a scope, and every scope has a named limit (the table is docs/resources.md), in the
# spirit of go-libp2p's rcmgr. Portable (MicroPython too) and clock-free: times are passed in.
#
#   system ─┬─ transient (pending upgrades: sockets not yet authenticated; per listener, per IP)
#           ├─ peer ── conn ── stream ── protocol (per peer, e.g. identify push)
#           └─ reserved capacity: slots only allow-listed peers and serial/device links may take
#
#   rm = ResourceManager(Limits.gateway(), allow=allowed_peer_ids)   (io.profile.Profile.limits)
#   p = rm.open_pending(listener="/ip4/0.0.0.0/tcp/4001", ip="1.2.3.4", public=True)  # LimitError
#   c = p.promote(peer_id, now_ms)          # after the handshake: conn slot, per peer / per IP
#   s = c.open_stream(inbound=True); s.set_protocol("/ipfs/id/push/1.0.0")        # LimitError
#   c.set_usage(unread, queued); c.read_budget()   # the driver stops reading past the budget
#   s.reserve(n) / s.release(n)             # protocol buffers (an identify being read, ...)
#   s.close(); c.close()
#   rm.trim_candidate(now_ms)               # an idle, unprivileged connection to close for room
#
# A refusal raises LimitError (scope connection or stream) naming the limit, and is counted in
# rm.stats with the peer (or IP) concerned in rm.drops, so every drop is reported to someone.
from microp2p.errors import LimitError, SCOPE_CONNECTION, SCOPE_STREAM

MAX_DROP_KEYS = 256     # peers/IPs whose refusals are reported one by one (the rest: "other")
MAX_OVERFLOW_IPS = 256  # hosts whose overflow entry rate is tracked at once


class Limits:
    """The limits of one kind of node. Every number is named in docs/resources.md."""

    def __init__(self):
        # connections: pending upgrades count too, so a node never holds more sockets than this
        self.max_conns = 128
        self.reserved_conns = 8           # of max_conns, only for allow-listed peers and serial links
        self.max_conns_per_peer = 4
        self.max_conns_per_ip = 16        # public listeners only
        # pending upgrades (transient scope)
        self.max_pending = 16
        self.reserved_pending = 4         # of max_pending, only for device listeners / serial links
        self.max_pending_per_listener = 12
        self.max_pending_per_ip = 4       # public listeners only
        self.handshake_idle_ms = 3000     # a pending upgrade that sends nothing for this long ends
        self.pending_evict_ms = 500       # when the pool is full, the oldest unprivileged upgrade
                                          # that has received nothing for this long gives its slot
                                          # to a newcomer that talks (0: never)
        self.max_pending_overflow = 16    # newcomers held past a full pool, waiting for their
        self.overflow_wait_ms = 500       # first bytes for at most this long (then closed)
        self.overflow_per_ip_per_s = 8    # times one host may enter the overflow per second: a
                                          # host that keeps reconnecting cannot displace waiters
        # streams
        self.max_streams = 8192
        self.max_streams_per_peer = 512
        self.max_streams_per_conn = 256
        self.max_streams_per_protocol = {   # concurrent inbound streams per peer and protocol
            "/ipfs/id/push/1.0.0": 2,
            "/ipfs/id/1.0.0": 4,
            "/ipfs/ping/1.0.0": 2,
        }
        # memory (bytes): unread input of connections and protocol buffers (queued output is
        # bounded apart: writers wait past Profile.write_buffer_cap, replies by yamux's backlog)
        self.max_memory = 64 << 20
        self.max_memory_per_peer = 16 << 20
        self.max_memory_per_conn = 4 << 20   # as the old unconsumed_cap: a MicroPython peer holds it too
        self.max_memory_per_stream = 1 << 20
        self.min_read_budget = 64 * 1024  # a connection may always hold this much unread
        # trimming
        self.trim_idle_ms = 30000         # a connection with no stream traffic this long may go
        self.trim_high_water = 0.9        # trim once conns exceed this share of max_conns

    @classmethod
    def node(cls):
        return cls()

    @classmethod
    def gateway(cls):
        p = cls()
        p.max_conns = 1024
        p.reserved_conns = 128
        p.max_conns_per_peer = 4
        p.max_conns_per_ip = 32
        p.max_pending = 64
        p.reserved_pending = 16
        p.max_pending_per_listener = 48
        p.max_pending_per_ip = 8
        p.max_streams = 32768
        p.max_memory = 128 << 20
        p.max_memory_per_conn = 4 << 20
        return p

    @classmethod
    def device(cls):
        p = cls()
        p.max_conns = 4
        p.reserved_conns = 1
        p.max_conns_per_peer = 2
        p.max_conns_per_ip = 4
        p.max_pending = 2
        p.reserved_pending = 0
        p.max_pending_per_listener = 2
        p.max_pending_per_ip = 2
        p.handshake_idle_ms = 30000       # pure-Python X25519/Ed25519 take seconds on an MCU
        p.pending_evict_ms = 0            # a device's two slots serve its gateway: never evicted
        p.max_pending_overflow = 0
        p.max_streams = 32
        p.max_streams_per_peer = 16
        p.max_streams_per_conn = 16
        p.max_streams_per_protocol = {"/ipfs/id/push/1.0.0": 1, "/ipfs/id/1.0.0": 2,
                                      "/ipfs/ping/1.0.0": 1}
        p.max_memory = 48 * 1024
        p.max_memory_per_peer = 32 * 1024
        p.max_memory_per_conn = 24 * 1024
        p.max_memory_per_stream = 8192
        p.min_read_budget = 4096
        p.trim_idle_ms = 0                # a device never trims (its few links are all wanted)
        return p


def _inc(d, k, n=1):
    v = d.get(k, 0) + n
    if v:
        d[k] = v
    else:
        d.pop(k, None)


class _Peer:
    __slots__ = ("conns", "streams", "memory", "protocols")

    def __init__(self):
        self.conns = 0
        self.streams = 0
        self.memory = 0
        self.protocols = {}


class Pending:
    """A socket in its upgrade (transient scope). promote() or release() exactly once."""

    def __init__(self, rm, listener, ip, public, privileged, now_ms):
        self.rm = rm
        self.listener = listener
        self.ip = ip if public else None
        self.privileged = privileged
        self.started_ms = now_ms
        self.evict = None     # the driver's fn() that ends this upgrade (closes its socket)
        self.stalled = None   # the driver's fn() -> True while the remote has sent nothing
        self.open = True

    def release(self):
        if self.open:
            self.open = False
            rm = self.rm
            rm.evictable.discard(self)
            rm.pending -= 1
            _inc(rm.pending_by_listener, self.listener, -1)
            if self.ip is not None:
                _inc(rm.pending_by_ip, self.ip, -1)

    def promote(self, peer, now_ms=0, outbound=False):
        """The upgrade succeeded: the pending slot becomes a connection slot (or LimitError)."""
        rm = self.rm
        privileged = self.privileged or rm.is_allowed(peer)
        self.release()
        rm.pending_to_conn += 1
        try:
            return rm._open_conn(peer, self.ip, privileged, now_ms, outbound)
        finally:
            rm.pending_to_conn -= 1


class ConnScope:
    def __init__(self, rm, peer, ip, privileged, now_ms, outbound):
        self.rm = rm
        self.peer = peer
        self.ip = ip
        self.privileged = privileged
        self.outbound = outbound
        self.streams = 0
        self.memory = 0       # protocol buffers reserved by its streams
        self.usage = 0        # unread input + queued output, as last reported by the driver
        self.last_active = now_ms
        self.protected = False
        self.open = True
        self.owner = None     # the driver's Connection, for trim_candidate()

    def touch(self, now_ms):
        self.last_active = now_ms

    def open_stream(self, inbound=True):
        rm = self.rm
        p = rm.profile
        peer = rm.peers[self.peer]
        if self.streams >= p.max_streams_per_conn:
            rm._refuse("streams_per_conn", self.peer, "max_streams_per_conn", SCOPE_STREAM)
        if peer.streams >= p.max_streams_per_peer:
            rm._refuse("streams_per_peer", self.peer, "max_streams_per_peer", SCOPE_STREAM)
        if rm.streams >= p.max_streams:
            rm._refuse("streams_system", self.peer, "max_streams", SCOPE_STREAM)
        self.streams += 1
        peer.streams += 1
        rm.streams += 1
        return StreamScope(self, inbound)

    def set_usage(self, nbytes):
        """The driver reports its unread input + queued output for this connection."""
        d = nbytes - self.usage
        if d:
            self.usage = nbytes
            self.rm.memory += d
            self.rm.peers[self.peer].memory += d

    def read_budget(self):
        """Bytes of unread input + queued output this connection may hold now: its own cap, its
        peer's, and a fair share of what the node as a whole may hold (never below a floor)."""
        rm = self.rm
        p = rm.profile
        share = p.max_memory // (rm.conns or 1)
        b = p.max_memory_per_conn
        if share < b:
            b = share if share > p.min_read_budget else p.min_read_budget
        peer = rm.peers[self.peer]
        room = p.max_memory_per_peer - (peer.memory - self.usage - self.memory)
        if room < b:
            b = room if room > p.min_read_budget else p.min_read_budget
        return b

    def over_budget(self):
        return self.usage + self.memory > self.read_budget()

    def close(self):
        if not self.open:
            return
        self.open = False
        rm = self.rm
        self.set_usage(0)
        peer = rm.peers.get(self.peer)
        rm.conns -= 1
        if self.privileged:
            rm.privileged_conns -= 1
        if self.ip is not None:
            _inc(rm.conns_by_ip, self.ip, -1)
        if peer is not None:
            peer.conns -= 1
            if not peer.conns and not peer.streams and not peer.memory:
                del rm.peers[self.peer]


class StreamScope:
    def __init__(self, conn, inbound):
        self.conn = conn
        self.inbound = inbound
        self.protocol = None
        self.memory = 0
        self.open = True

    def set_protocol(self, protocol):
        rm = self.conn.rm
        cap = rm.profile.max_streams_per_protocol.get(protocol)
        peer = rm.peers[self.conn.peer]
        if cap is not None and self.inbound and peer.protocols.get(protocol, 0) >= cap:
            rm._refuse("streams_per_protocol", self.conn.peer,
                       "max_streams_per_protocol[%s]" % protocol, SCOPE_STREAM)
        self.protocol = protocol
        _inc(peer.protocols, protocol)

    def reserve(self, n):
        """Account n more bytes buffered by this stream's protocol (LimitError when over)."""
        c = self.conn
        rm = c.rm
        p = rm.profile
        peer = rm.peers[c.peer]
        if self.memory + n > p.max_memory_per_stream:
            rm._refuse("memory_stream", c.peer, "max_memory_per_stream", SCOPE_STREAM)
        if c.memory + c.usage + n > p.max_memory_per_conn:
            rm._refuse("memory_conn", c.peer, "max_memory_per_conn", SCOPE_STREAM)
        if peer.memory + n > p.max_memory_per_peer:
            rm._refuse("memory_peer", c.peer, "max_memory_per_peer", SCOPE_STREAM)
        if rm.memory + n > p.max_memory:
            rm._refuse("memory_system", c.peer, "max_memory", SCOPE_STREAM)
        self.memory += n
        c.memory += n
        peer.memory += n
        rm.memory += n

    def release(self, n=None):
        if n is None or n > self.memory:
            n = self.memory
        if n:
            c = self.conn
            self.memory -= n
            c.memory -= n
            c.rm.peers[c.peer].memory -= n
            c.rm.memory -= n

    def close(self):
        if not self.open:
            return
        self.open = False
        self.release()
        c = self.conn
        rm = c.rm
        c.streams -= 1
        rm.streams -= 1
        peer = rm.peers.get(c.peer)
        if peer is not None:
            peer.streams -= 1
            if self.protocol is not None:
                _inc(peer.protocols, self.protocol, -1)
            if not peer.conns and not peer.streams and not peer.memory:
                del rm.peers[c.peer]


class ResourceManager:
    def __init__(self, profile=None, allow=None):
        self.profile = profile if profile is not None else Profile()
        self.allow = allow if allow is not None else set()  # peer ids (any hashable form)
        self.conns = 0
        self.privileged_conns = 0
        self.pending = 0
        self.pending_to_conn = 0
        self.pending_by_listener = {}
        self.pending_by_ip = {}
        self.evictable = set()    # open unprivileged Pending objects (at most max_pending)
        self.overflow = []        # newcomers held past a full pool, oldest first: [cancel fn]
        self.overflow_ips = {}    # ip -> [entries, window start ms] (at most MAX_OVERFLOW_IPS)
        self.conns_by_ip = {}
        self.streams = 0
        self.memory = 0
        self.peers = {}       # peer -> _Peer
        self.stats = {}       # refusal reason -> count
        self.drops = {}       # peer or ip (str) -> {reason: count}

    def is_allowed(self, peer):
        if not self.allow:
            return False
        return peer in self.allow or str(peer) in self.allow

    # ---- reporting ---------------------------------------------------------------------------
    def count_drop(self, reason, who=None, n=1):
        """Count a drop (a refusal here, or a frame dropped elsewhere) with whom it concerns."""
        _inc(self.stats, reason, n)
        key = str(who) if who is not None else "-"
        d = self.drops.get(key)
        if d is None:
            if len(self.drops) >= MAX_DROP_KEYS:
                key = "other"
                d = self.drops.get(key)
            if d is None:
                d = {}
                self.drops[key] = d
        _inc(d, reason, n)

    def _refuse(self, reason, who, limit, scope):
        self.count_drop(reason, who)
        e = LimitError("resource limit %s reached" % limit, scope)
        e.limit = limit
        raise e

    # ---- transient scope: pending upgrades ------------------------------------------------------
    def open_pending(self, listener=None, ip=None, public=True, privileged=False, now_ms=0):
        """A socket accepted (or dialled, listener=None) and not yet upgraded.

        privileged: a device listener or a serial link (may use the reserved slots).
        public: a listener open to anyone (per-IP limits apply)."""
        p = self.profile
        who = ip or listener
        limit = p.max_pending if privileged else p.max_pending - p.reserved_pending
        if self.pending >= limit:
            self._refuse("pending_system", who, "max_pending", SCOPE_CONNECTION)
        if self.pending_by_listener.get(listener, 0) >= p.max_pending_per_listener:
            self._refuse("pending_listener", who, "max_pending_per_listener", SCOPE_CONNECTION)
        if public and ip is not None and self.pending_by_ip.get(ip, 0) >= p.max_pending_per_ip:
            self._refuse("pending_ip", who, "max_pending_per_ip", SCOPE_CONNECTION)
        if self._sockets() >= (p.max_conns if privileged else p.max_conns - p.reserved_conns):
            self._refuse("conns_system", who, "max_conns", SCOPE_CONNECTION)
        self.pending += 1
        _inc(self.pending_by_listener, listener)
        if public and ip is not None:
            _inc(self.pending_by_ip, ip)
        pe = Pending(self, listener, ip, public, privileged, now_ms)
        if not privileged:
            self.evictable.add(pe)
        return pe

    def take_overflow(self, cancel, ip=None, now_ms=0):
        """Hold a newcomer past a full pool while it shows it talks; cancel() ends its wait.
        When every overflow place is taken the oldest waiter is let go for the newcomer (a
        talker shows itself within a round trip, a silent socket never does); one host enters at
        most overflow_per_ip_per_s times a second. Returns a token for give_overflow, or None
        (refuse)."""
        p = self.profile
        if not p.pending_evict_ms or not p.max_pending_overflow:
            return None
        if ip is not None:
            t = self.overflow_ips
            e = t.get(ip)
            if e is None or now_ms - e[1] >= 1000:
                if e is None and len(t) >= MAX_OVERFLOW_IPS:
                    t.clear()                 # bounded: forget every window at once
                e = [0, now_ms]
                t[ip] = e
            if e[0] >= p.overflow_per_ip_per_s:
                self.count_drop("overflow_rate", ip)
                return None
            e[0] += 1
        w = self.overflow
        if len(w) >= p.max_pending_overflow:
            old = w.pop(0)
            self.count_drop("overflow_displaced")
            old[0]()
        tok = [cancel]
        w.append(tok)
        return tok

    def give_overflow(self, tok):
        if tok in self.overflow:
            self.overflow.remove(tok)

    def evict_pending(self, listener, now_ms):
        """The pending pool is full: end the oldest unprivileged upgrade (on `listener` when given)
        whose remote has sent nothing for at least pending_evict_ms, so a newcomer gets its slot.
        A slowloris that keeps refilling the pool with silent sockets then cannot keep out a peer
        that talks (an honest dialer sends its multistream header at once, so its own slot is
        safe from the next eviction). True when one was ended."""
        age = self.profile.pending_evict_ms
        if not age:
            return False
        old = None
        for pe in self.evictable:
            if pe.evict is None or (listener is not None and pe.listener != listener):
                continue
            if pe.stalled is not None and not pe.stalled():
                continue
            if now_ms - pe.started_ms >= age and (old is None or pe.started_ms < old.started_ms):
                old = pe
        if old is None:
            return False
        self.count_drop("pending_evicted", old.ip or old.listener)
        fn = old.evict
        old.release()
        fn()
        return True

    def _sockets(self):
        return self.conns + self.pending + self.pending_to_conn

    # ---- connections ---------------------------------------------------------------------------
    def _open_conn(self, peer, ip, privileged, now_ms, outbound):
        p = self.profile
        # this connection's own socket was counted as pending until a moment ago
        others = self.conns + self.pending
        if others >= (p.max_conns if privileged else p.max_conns - p.reserved_conns):
            self._refuse("conns_system", peer, "max_conns", SCOPE_CONNECTION)
        pe = self.peers.get(peer)
        if pe is not None and pe.conns >= p.max_conns_per_peer:
            self._refuse("conns_peer", peer, "max_conns_per_peer", SCOPE_CONNECTION)
        if ip is not None and not privileged and self.conns_by_ip.get(ip, 0) >= p.max_conns_per_ip:
            self._refuse("conns_ip", ip, "max_conns_per_ip", SCOPE_CONNECTION)
        if pe is None:
            pe = _Peer()
            self.peers[peer] = pe
        pe.conns += 1
        self.conns += 1
        if privileged:
            self.privileged_conns += 1
        if ip is not None:
            _inc(self.conns_by_ip, ip)
        return ConnScope(self, peer, ip, privileged, now_ms, outbound)

    def trim_candidate(self, now_ms, scopes, force=False):
        """Of scopes (open ConnScopes), the unprivileged, unprotected one idle longest, if idle
        for trim_idle_ms at least (force: the longest idle even if not that long). None if none."""
        idle_ms = self.profile.trim_idle_ms
        if not idle_ms and not force:
            return None
        best = None
        for c in scopes:
            if c.privileged or c.protected or not c.open:
                continue
            if best is None or c.last_active < best.last_active:
                best = c
        if best is None:
            return None
        if not force and now_ms - best.last_active < idle_ms:
            return None
        return best

    def needs_trim(self):
        p = self.profile
        return p.trim_idle_ms and self._sockets() >= p.max_conns * p.trim_high_water

    def snapshot(self):
        """Usage and refusals (for stats/metrics)."""
        return {"conns": self.conns, "privilegedConns": self.privileged_conns,
                "pending": self.pending, "streams": self.streams, "memory": self.memory,
                "peers": len(self.peers), "refused": dict(self.stats),
                "drops": dict((k, dict(v)) for k, v in self.drops.items())}
