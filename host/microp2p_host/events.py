# The gateway's events: every name of microp2p.events plus the ones only the gateway prints (kept
# out of microp2p.events so a device does not hold them in RAM). Tools outside the repo match on
# these names: change none.
from microp2p.events import *  # noqa: F401,F403

# gateway (microp2p_host.gateway)
DHT_BOOTSTRAP = "dht:bootstrap"       # gateway: {reached, of, table} after its DHT bootstrap
DEVICE_CONNECTED = "device:connected"
DEVICE_DISCONNECTED = "device:disconnected"
DEVICE_REFUSED = "device:refused"
PEER_CONNECTED = "peer:connected"
PEER_DISCONNECTED = "peer:disconnected"
BOOTSTRAP_CONNECTED = "bootstrap:connected"
BOOTSTRAP_ERROR = "bootstrap:error"
BOOTSTRAP_FAILED = "bootstrap:failed"
SERIAL_OPEN = "serial:open"
SERIAL_LINK = "serial:link"
SERIAL_ERROR = "serial:error"
# gateway MQTT bridge (microp2p_host.bridge.mqtt)
MQTT_CONNECTED = "mqtt:connected"         # {url, buffered, subscribed}
MQTT_DISCONNECTED = "mqtt:disconnected"   # {url, error, retryInS, buffered}
MQTT_CONNECT_FAILED = "mqtt:connect_failed"  # {url, error, retryInS, buffered}: a retry failed again
MQTT_DROPPED = "mqtt:dropped"             # {dropped, droppedTotal, buffered, bufferMax}: buffer overflow
MQTT_COMMAND = "mqtt:command"             # {topic, gossipTopic, cmd}: an MQTT command sent to gossip
MQTT_REJECTED = "mqtt:rejected"           # {topic, reason}: bad MQTT input, nothing published
MQTT_ERROR = "mqtt:error"                 # {error}
SUMMARY = "summary"                       # emulate's end-of-run figures (devices, readings, sent, received, ...)
