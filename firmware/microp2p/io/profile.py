# One object that carries every bound of a node: connection and stream limits, buffer sizes,
# timeouts, the yamux settings and the pubsub flavour. Profile() suits a gateway or desktop peer;
# Profile.device() is the small-RAM profile a microcontroller runs. Change fields before handing
# the profile to Node(); the drivers read them, the protocol machines get their own configs.
from microp2p.conn import yamux
from microp2p.io.resources import Limits

AGENT = "microp2p/0.1.0"
HEAP_SHARE_PER_CONN = 4   # on MicroPython: one connection's unread input <= heap / this


def heap_bytes():
    """The MicroPython heap's size, or None on CPython (whose memory is not one fixed heap)."""
    import gc
    try:
        return gc.mem_free() + gc.mem_alloc()
    except AttributeError:
        return None


class Profile:
    def __init__(self):
        self.name = "gateway"
        self.device = False                 # pubsub: the device router and queue sizes
        self.pubsub = "gossipsub"           # io/pubsub.attach: "gossipsub" (full), "leaf", "floodsub"
        # connection, stream, pending-upgrade and memory limits: the resource manager's
        # (docs/resources.md); max_connections / max_pending_upgrades below are two of them
        self.limits = Limits.node()
        self.read_size = 65536              # bytes per read from a connection's byte stream
        self.write_buffer_cap = 262144      # encrypted bytes queued per connection before writers wait
        self.unconsumed_cap = 4 * 1024 * 1024   # unread stream bytes per connection before we stop reading
        self.handshake_timeout_ms = 10000   # mss + Noise + muxer negotiation
        self.negotiate_timeout_ms = 10000   # multistream on a new stream
        self.identify_timeout_ms = 5000     # an identify answer or push must be complete by then
        self.identify_max_bytes = 65536     # bytes read from one identify / push stream
        self.tick_ms = 1000                 # keepalive / timers granularity
        self.yamux = yamux.Config()
        self.agent = AGENT
        heap = heap_bytes()
        if heap:
            # A MicroPython node in this profile (e.g. the unix port's default 2 MiB heap) must
            # stop reading before its unread input can fill the heap: a 4 MiB budget on a 2 MiB
            # heap ends in MemoryError, not backpressure.
            cap = heap // HEAP_SHARE_PER_CONN
            if cap < self.unconsumed_cap:
                self.unconsumed_cap = cap
            lim = self.limits
            if cap < lim.max_memory_per_conn:
                lim.max_memory_per_conn = cap
            if heap // 2 < lim.max_memory_per_peer:
                lim.max_memory_per_peer = heap // 2
            if heap // 2 < lim.max_memory:
                lim.max_memory = heap // 2

    @classmethod
    def device(cls):
        p = cls()
        p.name = "device"
        p.device = True
        p.pubsub = "leaf"                   # pubsub/leaf.py: subscribe, publish, 1-2 mesh peers
        p.limits = Limits.device()
        p.read_size = 1024                  # each read allocates this much in one block
        p.write_buffer_cap = 8192
        p.unconsumed_cap = 16384
        p.handshake_timeout_ms = 60000      # pure-Python X25519/Ed25519 take seconds on an MCU
        p.identify_max_bytes = 8192
        p.yamux = yamux.device_config()
        return p

    @classmethod
    def gateway(cls):
        p = cls()
        p.limits = Limits.gateway()
        return p

    # the two limits every profile user knows, kept as plain attributes of the profile
    @property
    def max_connections(self):
        return self.limits.max_conns

    @max_connections.setter
    def max_connections(self, n):
        # one number for the old single limit: an eighth of it reserved for allow-listed peers
        self.limits.max_conns = n
        self.limits.reserved_conns = n // 8

    @property
    def max_pending_upgrades(self):
        return self.limits.max_pending

    @max_pending_upgrades.setter
    def max_pending_upgrades(self, n):
        # a quarter reserved for device listeners and serial links; one listener takes the rest
        lim = self.limits
        lim.max_pending = n
        lim.reserved_pending = n // 4
        lim.max_pending_per_listener = n - n // 4
