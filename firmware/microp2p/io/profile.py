# One object that carries every bound of a node: connection and stream limits, buffer sizes,
# timeouts, the yamux settings and the pubsub flavour. Profile() suits a gateway or desktop peer;
# Profile.device() is the small-RAM profile a microcontroller runs. Change fields before handing
# the profile to Node(); the drivers read them, the protocol machines get their own configs.
from microp2p.conn import yamux

AGENT = "microp2p/0.1.0"


class Profile:
    def __init__(self):
        self.name = "gateway"
        self.device = False                 # pubsub: the device router and queue sizes
        self.pubsub = "gossipsub"           # io/pubsub.attach: "gossipsub" (full), "leaf", "floodsub"
        self.max_connections = 128          # open connections per node (inbound refused beyond)
        self.max_pending_upgrades = 16      # inbound connections still in handshake
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

    @classmethod
    def device(cls):
        p = cls()
        p.name = "device"
        p.device = True
        p.pubsub = "leaf"                   # pubsub/leaf.py: subscribe, publish, 1-2 mesh peers
        p.max_connections = 4
        p.max_pending_upgrades = 2
        p.read_size = 1024                  # each read allocates this much in one block
        p.write_buffer_cap = 8192
        p.unconsumed_cap = 16384
        p.handshake_timeout_ms = 60000      # pure-Python X25519/Ed25519 take seconds on an MCU
        p.identify_max_bytes = 8192
        p.yamux = yamux.device_config()
        return p
