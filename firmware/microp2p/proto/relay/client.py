# Circuit relay v2, the client side, sans-IO: a reservation held at one relay (RESERVE, the
# answer checked, refreshed before it expires), dialling through a relay (CONNECT) and answering
# a relay's STOP CONNECT. Time is passed in as unix seconds (a reservation's expiry is wall time).
#
#   r = Reservation(self_peer, relay_peer)
#   send r.request()                          ...  r.receive(decode_hop(body), now_s) -> [events]
#   r.refresh_due(now_s) -> bool  (send r.request() again)     r.addrs -> circuit multiaddrs
from microp2p.proto.relay import codec, voucher as vouchermod
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId
from microp2p.errors import ProtocolError, AuthError, DecodeError, UsageError, SCOPE_STREAM

REFRESH_BEFORE_S = 300   # js refreshes 5 min before expiry; go one minute; we: 5 min or half the TTL
REFRESH_MIN_S = 1        # never refresh more often than this (a relay handing out tiny TTLs)
RETRY_S = 10             # after a failed refresh, try again this soon (while still valid)

IDLE = "idle"
PENDING = "pending"
ACTIVE = "active"
FAILED = "failed"


class RelayRefused(ProtocolError):
    """The relay answered a status other than OK (.status holds the code)."""
    scope = SCOPE_STREAM

    def __init__(self, status, what="reservation"):
        super().__init__("%s refused: %s" % (what, codec.status_name(status)))
        self.status = status


def circuit_addr(relay_addr, self_peer):
    """<relay addr incl. /p2p/R>/p2p-circuit/p2p/SELF."""
    return relay_addr.encapsulate("/p2p-circuit/p2p/" + str(self_peer))


class Reservation:
    def __init__(self, self_peer, relay_peer, relay_addr=None):
        self.self_peer = self_peer
        self.relay_peer = relay_peer
        self.relay_addr = relay_addr   # the address we reached the relay at (used when it sends none)
        self.state = IDLE
        self.expire = 0                # unix s
        self.refresh_at = 0
        self.limit = None              # {"duration": s, "data": bytes} or None (no limit)
        self.voucher = None            # vouchermod.Voucher when the relay sent one
        self.relay_addrs = []          # [Multiaddr] relay addrs with /p2p/R, no p2p-circuit
        self.addrs = []                # [Multiaddr] our circuit addrs through this relay
        self.renewals = 0

    def request(self):
        """The RESERVE message to write on a fresh hop stream."""
        if self.state == PENDING:
            raise UsageError("reservation request already in flight")
        self.state = PENDING
        return codec.encode_hop({"type": codec.RESERVE})

    def receive(self, msg, now_s):
        """The relay's answer (a decoded HopMessage). Returns [("reserved", self)] on OK; raises
        RelayRefused for a refusal, RelayError/AuthError for a bad answer (state FAILED)."""
        if self.state != PENDING:
            raise UsageError("no reservation request in flight")
        try:
            renewal = self._accept(msg, now_s)
        except BaseException:
            # A failed refresh leaves an unexpired reservation usable until it runs out.
            self.state = ACTIVE if self.expire > now_s else FAILED
            if self.state == ACTIVE:
                self.refresh_at = now_s + RETRY_S
            raise
        self.state = ACTIVE
        return [("renewed" if renewal else "reserved", self)]

    def _accept(self, msg, now_s):
        if msg["type"] != codec.STATUS:
            raise codec.RelayError("relay answered RESERVE with type %d" % msg["type"])
        status = msg.get("status", codec.UNUSED)
        if status != codec.OK:
            raise RelayRefused(status)
        rsvp = msg.get("reservation")
        if rsvp is None:
            raise codec.RelayError("OK without reservation")
        expire = rsvp.get("expire", 0)
        if expire <= now_s:
            raise codec.RelayError("reservation expires in the past")
        v = None
        vb = rsvp.get("voucher")
        if vb is not None:
            try:
                v = vouchermod.open_voucher(vb, self.relay_peer, self.self_peer, now_s)
            except DecodeError as e:
                raise codec.RelayError("bad voucher: %s" % e)
            except AuthError as e:
                raise AuthError("bad voucher: %s" % e, SCOPE_STREAM)
        relay_addrs = []
        rid = str(self.relay_peer)
        for b in rsvp.get("addrs", ()):
            try:
                a = Multiaddr.from_bytes(b)
            except DecodeError:
                continue   # a transport we do not know: useless to us, not wrong
            if "p2p-circuit" in a.protocols():
                continue
            pid = a.peer_id()
            if pid is None:
                a = a.encapsulate("/p2p/" + rid)
            elif pid != self.relay_peer:
                continue
            if a not in relay_addrs:
                relay_addrs.append(a)
        if not relay_addrs and self.relay_addr is not None:
            a = self.relay_addr
            if a.peer_id() is None:
                a = a.encapsulate("/p2p/" + rid)
            relay_addrs.append(a)
        lim = msg.get("limit")
        if lim is not None and not lim.get("duration") and not lim.get("data"):
            lim = None
        renewal = bool(self.addrs)
        if renewal:
            self.renewals += 1
        self.expire = expire
        ttl = expire - now_s
        before = REFRESH_BEFORE_S if ttl > 2 * REFRESH_BEFORE_S else ttl // 2
        if before < REFRESH_MIN_S:
            before = 0
        self.refresh_at = expire - before
        if self.refresh_at < now_s + REFRESH_MIN_S:
            self.refresh_at = now_s + REFRESH_MIN_S
        self.limit = lim
        self.voucher = v
        self.relay_addrs = relay_addrs
        self.addrs = [circuit_addr(a, self.self_peer) for a in relay_addrs]
        return renewal

    def refresh_due(self, now_s):
        return self.state == ACTIVE and now_s >= self.refresh_at

    def expired(self, now_s):
        return self.state != PENDING and now_s >= self.expire

    def lost(self):
        """The connection to the relay closed: the spec says the reservation ends with it."""
        self.state = FAILED
        self.addrs = []


def connect_request(target_peer):
    """HopMessage CONNECT to `target_peer` (PeerId), written by the circuit's dialer."""
    return codec.encode_hop({"type": codec.CONNECT, "peer": codec.peer_msg(target_peer)})


def connect_response(msg):
    """The relay's answer to CONNECT -> limit dict or None; raises RelayRefused / RelayError."""
    if msg["type"] != codec.STATUS:
        raise codec.RelayError("relay answered CONNECT with type %d" % msg["type"])
    status = msg.get("status", codec.UNUSED)
    if status != codec.OK:
        raise RelayRefused(status, "circuit")
    lim = msg.get("limit")
    if lim is not None and not lim.get("duration") and not lim.get("data"):
        lim = None
    return lim


def stop_answer(msg, accept=None):
    """A relay's StopMessage (decoded) -> (answer bytes, initiator PeerId or None, limit).

    accept(initiator PeerId) -> bool, when given, may refuse (PERMISSION_DENIED). The initiator is
    None when the answer is a refusal; then the driver writes the answer and closes the stream."""
    if msg["type"] != codec.STOP_CONNECT:
        return codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.UNEXPECTED_MESSAGE}), None, None
    p = msg.get("peer")
    if p is None:
        return codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.MALFORMED_MESSAGE}), None, None
    initiator = PeerId.from_bytes(p["id"])
    if accept is not None and not accept(initiator):
        return codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.PERMISSION_DENIED}), None, None
    lim = msg.get("limit")
    if lim is not None and not lim.get("duration") and not lim.get("data"):
        lim = None
    return codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.OK}), initiator, lim
