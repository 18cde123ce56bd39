# The names of the JSON events the node, the node CLI and the sensor app print (one line of JSON
# each, {"event": NAME, ...fields}). Tools outside the repo match on these names: change none.
# Plain string constants; each one costs a device RAM (a name and a string), so the events only the
# gateway prints (device:*, peer:*, bootstrap:*, serial:*, mqtt:*, dht:bootstrap) are in
# microp2p_host/events.py, which has every name of this module too.

# node (microp2p.io.node) — also printed by `microp2p node`
STARTED = "started"                   # {peerId, addrs, runtime}: first line, addrs actually bound
STOPPED = "stopped"
CONNECTION_OPEN = "connection:open"   # {peer, addr, direction, muxer, encryption, relayed}
CONNECTION_CLOSE = "connection:close"  # {peer}
CONNECTION_REFUSED = "connection:refused"  # {addr, peer?, reason}
CONNECTION_REFUSED_BY_PEER = "connection:refused-by-peer"  # {peer, reason}: the remote told us why
IDENTIFY = "identify"                 # {peer, protocols, agentVersion, protocolVersion, listenAddrs, observedAddr, signedPeerRecord}
IDENTIFY_PUSH = "identify:push"
ERROR = "error"                       # {cmd?, error}: a malformed command or a failed action

# node CLI commands and their answers
DIAL_OK = "dial:ok"                   # {addr, peer}
DIAL_ERROR = "dial:error"             # {addr, error}
PING = "ping"                         # {peer, rtt}
ECHO = "echo"
PEERS = "peers"
STATS = "stats"
TOPIC_PEERS = "topic-peers"
PUBLISHED = "published"               # {topic, msgId, recipients}
PUBLISHED_MANY = "published-many"
BENCH_ARMED = "bench-armed"
BENCH_RESULT = "bench-result"

# pubsub
GOSSIP_MESSAGE = "gossip:message"     # {topic, from, data, seqno, ...}
GOSSIP_REJECTED = "gossip:rejected"
GOSSIP_PREFIX = "gossip:"             # + router event kind: gossip:graft, gossip:prune, gossip:subscribed, ...

# Kademlia and relay ("Reach")
DHT_FIND_PEER = "dht:find_peer"
DHT_CLOSEST_PEERS = "dht:closest_peers"
DHT_PROVIDED = "dht:provided"
DHT_PROVIDERS = "dht:providers"
RELAY_RESERVATION = "relay:reservation"     # {relay, addrs, expire, limit, renewed}: every reservation and renewal
RELAY_RESERVATION_ERROR = "relay:reservation:error"   # {relay, error, status?}: refused / lost; retried
RELAY_RESERVE = "relay:reserve"             # hop: {peer, status} for every RESERVE answered
RELAY_TABLE = "relay"                       # CLI {"cmd":"relay"}: {reservations, hop, relayedIn, relayedOut}
RELAY_CIRCUIT_OPEN = "relay:circuit:open"   # hop: {id, src, dst, limited, circuits}
RELAY_CIRCUIT_CLOSE = "relay:circuit:close"  # hop: {id, src, dst, bytes: [src->dst, dst->src], reason, circuits}
RELAY_CIRCUIT_REFUSED = "relay:circuit:refused"  # hop: {src, dst, status}

# sensor app (sensor_node.app)
WIFI = "wifi"
CONNECTED = "connected"
DISCONNECTED = "disconnected"
DIAL_FAILED = "dial_failed"
REFUSED = "refused"                   # {reason, retry_ms}: the gateway refused us and said why
READING = "reading"
QUEUED = "queued"
DROPPED = "dropped"
REPLAYED = "replayed"
COMMAND = "command"
COMMAND_REJECTED = "command_rejected"
