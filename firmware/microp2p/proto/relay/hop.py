# Circuit relay v2, the relay (hop) side, sans-IO: who may reserve, how many, for how long; which
# circuits are admitted and with what limit; the bookkeeping of open circuits. Time is passed in
# (unix seconds for reservations, whose expiry is wall time on the wire; ms for circuits).
#
# Policy (docs/architecture.md "Reach"): circuits between peers the relay does not know carry the
# default limit (duration, bytes per direction); circuits to its allow-listed peers (a gateway's
# devices) carry NO limit field: js and go treat any limited connection as unfit for gossipsub
# and kad. RESERVE and CONNECT arriving over a relayed connection are refused (the spec's
# "should not"), so a relay is never chained through itself.
from microp2p.proto.relay import codec, voucher as vouchermod
from microp2p.identity.peerid import PeerId
from microp2p.errors import UsageError

# Defaults (go: 128 reservations, 8 per IP, TTL 1 h, 16 circuits per peer, 2 min / 128 KiB)
MAX_RESERVATIONS = 128
MAX_RESERVATIONS_PER_IP = 8
RESERVATION_TTL_S = 3600
MAX_CIRCUITS = 256            # open circuits through this relay
MAX_CIRCUITS_PER_PEER = 16    # open circuits with one peer as either end
LIMIT_DURATION_S = 120
LIMIT_DATA = 1 << 17          # bytes per direction


class HopConfig:
    def __init__(self):
        self.max_reservations = MAX_RESERVATIONS
        self.max_reservations_per_ip = MAX_RESERVATIONS_PER_IP
        self.reservation_ttl_s = RESERVATION_TTL_S
        self.max_circuits = MAX_CIRCUITS
        self.max_circuits_per_peer = MAX_CIRCUITS_PER_PEER
        self.limit_duration_s = LIMIT_DURATION_S
        self.limit_data = LIMIT_DATA
        self.reserve_allow = None     # None: anyone may reserve; else a set of PeerIds that may
        self.unlimited = set()        # PeerIds whose circuits carry no limit (allow-listed devices)


class _Rsvp:
    __slots__ = ("peer", "ip", "expire", "static")

    def __init__(self, peer, ip, expire, static):
        self.peer = peer
        self.ip = ip
        self.expire = expire      # unix s; 0 for a static entry (never expires)
        self.static = static


class Circuit:
    """One admitted circuit's limit accounting, sans-IO: count(direction, n) before forwarding n
    bytes, check(now_ms) on a timer. Each returns None or the reason to cut the circuit."""

    __slots__ = ("src", "dst", "limit", "opened_ms", "sent", "id")

    def __init__(self, cid, src, dst, limit, now_ms):
        self.id = cid
        self.src = src
        self.dst = dst
        self.limit = limit        # dict or None
        self.opened_ms = now_ms
        self.sent = [0, 0]        # bytes src->dst, dst->src

    def count(self, direction, n):
        self.sent[direction] += n
        lim = self.limit
        if lim is not None and lim.get("data") and self.sent[direction] > lim["data"]:
            return "data limit of %d bytes exceeded" % lim["data"]
        return None

    def room(self, direction):
        """Bytes that may still pass in this direction (-1: unbounded)."""
        lim = self.limit
        if lim is None or not lim.get("data"):
            return -1
        r = lim["data"] - self.sent[direction]
        return r if r > 0 else 0

    def check(self, now_ms):
        lim = self.limit
        if lim is not None and lim.get("duration") and now_ms - self.opened_ms >= lim["duration"] * 1000:
            return "duration limit of %d s exceeded" % lim["duration"]
        return None


class Hop:
    def __init__(self, relay_key, config=None):
        self.key = relay_key
        self.peer_id = PeerId.from_public_key(relay_key.public_key)
        self.config = config or HopConfig()
        self.reservations = {}    # PeerId -> _Rsvp
        self.circuits = {}        # id -> Circuit
        self._per_peer = {}       # PeerId -> open circuits with it as an end
        self._next_id = 1
        self.stats = {"reserved": 0, "refused": 0, "circuits": 0, "circuits_refused": 0, "cut": 0}

    # ---- reservations -----------------------------------------------------------------------
    def _per_ip(self, ip):
        n = 0
        for r in self.reservations.values():
            if r.ip is not None and r.ip == ip and not r.static:
                n += 1
        return n

    def reserve(self, peer, ip, relayed, now_s, relay_addrs):
        """A RESERVE from `peer` (PeerId) connected from `ip` (text or None). Returns the answer
        bytes (a framed HopMessage STATUS) and the status code."""
        cfg = self.config
        status = codec.OK
        existing = self.reservations.get(peer)
        if relayed:
            status = codec.PERMISSION_DENIED
        elif cfg.reserve_allow is not None and peer not in cfg.reserve_allow:
            status = codec.PERMISSION_DENIED
        elif existing is None:
            if len(self.reservations) >= cfg.max_reservations:
                status = codec.RESERVATION_REFUSED
            elif ip is not None and self._per_ip(ip) >= cfg.max_reservations_per_ip:
                status = codec.RESERVATION_REFUSED
        if status != codec.OK:
            self.stats["refused"] += 1
            return codec.encode_hop({"type": codec.STATUS, "status": status}), status
        expire = now_s + cfg.reservation_ttl_s
        if existing is not None and existing.static:
            existing.expire = expire
        else:
            self.reservations[peer] = _Rsvp(peer, ip, expire, False)
        self.stats["reserved"] += 1
        msg = {
            "type": codec.STATUS,
            "status": codec.OK,
            "reservation": {
                "expire": expire,
                "addrs": [a.to_bytes() for a in relay_addrs],
                "voucher": vouchermod.seal(self.key, peer, expire),
            },
        }
        lim = self.limit_for(peer)
        if lim is not None:
            msg["limit"] = lim
        return codec.encode_hop(msg), status

    def add_static(self, peer):
        """A peer reachable without RESERVE (a gateway's device on its link): no expiry, no limit."""
        self.reservations[peer] = _Rsvp(peer, None, 0, True)
        self.config.unlimited.add(peer)

    def remove(self, peer):
        """The peer's connection to us closed: its reservation ends with it (spec)."""
        self.reservations.pop(peer, None)

    def expire(self, now_s):
        """Drop reservations past their expiry; returns the PeerIds dropped."""
        gone = [p for p, r in self.reservations.items() if not r.static and r.expire <= now_s]
        for p in gone:
            del self.reservations[p]
        return gone

    def has_reservation(self, peer, now_s):
        r = self.reservations.get(peer)
        return r is not None and (r.static or r.expire > now_s)

    def limit_for(self, peer):
        cfg = self.config
        if peer in cfg.unlimited:
            return None
        return codec.limit_msg(cfg.limit_duration_s, cfg.limit_data)

    # ---- circuits -----------------------------------------------------------------------------
    def admit(self, src, dst, relayed, now_s):
        """A CONNECT from src to dst. Returns (status, limit): on OK the driver opens STOP to dst
        (stop_request) and, when that succeeds, answers connect_ok(limit) and splices."""
        cfg = self.config
        status = codec.OK
        if relayed:
            status = codec.PERMISSION_DENIED
        elif dst == self.peer_id or dst == src:
            status = codec.PERMISSION_DENIED
        elif not self.has_reservation(dst, now_s):
            status = codec.NO_RESERVATION
        elif len(self.circuits) >= cfg.max_circuits:
            status = codec.RESOURCE_LIMIT_EXCEEDED
        elif (self._per_peer.get(src, 0) >= cfg.max_circuits_per_peer
              or self._per_peer.get(dst, 0) >= cfg.max_circuits_per_peer):
            status = codec.RESOURCE_LIMIT_EXCEEDED
        if status != codec.OK:
            self.stats["circuits_refused"] += 1
            return status, None
        return status, self.limit_for(dst)

    def stop_request(self, src, limit):
        msg = {"type": codec.STOP_CONNECT, "peer": codec.peer_msg(src)}
        if limit is not None:
            msg["limit"] = limit
        return codec.encode_stop(msg)

    def stop_result(self, msg):
        """The destination's StopMessage answer -> status (OK or why not)."""
        if msg["type"] != codec.STOP_STATUS:
            return codec.UNEXPECTED_MESSAGE
        return msg.get("status", codec.UNUSED)

    def connect_answer(self, status, limit=None):
        msg = {"type": codec.STATUS, "status": status}
        if status == codec.OK and limit is not None:
            msg["limit"] = limit
        return codec.encode_hop(msg)

    def open_circuit(self, src, dst, limit, now_ms):
        cid = self._next_id
        self._next_id += 1
        c = Circuit(cid, src, dst, limit, now_ms)
        self.circuits[cid] = c
        for p in (src, dst):
            self._per_peer[p] = self._per_peer.get(p, 0) + 1
        self.stats["circuits"] += 1
        return c

    def close_circuit(self, c, cut=False):
        if self.circuits.pop(c.id, None) is None:
            return
        for p in (c.src, c.dst):
            n = self._per_peer.get(p, 0) - 1
            if n > 0:
                self._per_peer[p] = n
            else:
                self._per_peer.pop(p, None)
        if cut:
            self.stats["cut"] += 1

    def circuits_of(self, peer):
        return self._per_peer.get(peer, 0)

    def hop_error(self, status):
        if status not in codec.STATUS_NAMES:
            raise UsageError("unknown status")
        return codec.encode_hop({"type": codec.STATUS, "status": status})
