# `microp2p gateway --config FILE`: the host that sits between constrained devices and the libp2p
# network. One Node and one gossipsub router carry everything:
#   - network listeners (TCP, any libp2p peer) and bootstrap dials (bounded retry with backoff);
#   - device listeners (TCP) and serial ports: only allow-listed peer IDs are admitted (checked
#     right after the Noise handshake), the others are refused and reported;
#   - the configured topics are subscribed, so the gateway is in the mesh between the devices
#     and the network and forwards in both directions.
# stdout carries JSON event lines only (scripts read them); the device table goes to stderr.
#
# Config (TOML):
#   [identity]  key_file = "gateway.key"                  # created (mode 0600) when missing
#   [network]   listen = ["/ip4/0.0.0.0/tcp/4001"]
#               bootstrap = ["/ip4/1.2.3.4/tcp/4001/p2p/12D3..."]
#   [devices]   listen = ["/ip4/0.0.0.0/tcp/4002"]
#               allow = ["12D3...", {id = "12D3...", name = "greenhouse-1"}]
#   [[serial]]  path = "/dev/ttyUSB0"   baud = 115200   throttle = false   # throttle: pace a pty
#   [pubsub]    topics = ["sensors/readings", "sensors/commands"]
#   [relay]     hop = true     # circuit relay v2: each connected allow-listed device is reachable at
#                              # <network addr>/p2p/GW/p2p-circuit/p2p/DEV (its link counts as a
#                              # reservation without limits); RESERVE only from allow-listed peers
#   [gateway]   stats_interval_s = 10   table_interval_s = 1   message_events = false
#               bootstrap_max_attempts = 10   max_connections = 1024   max_pending_upgrades = 64
#   [mqtt]      url = "mqtt://127.0.0.1:1883"  prefix = "microp2p"  out = [...]  in = [...]  qos = 1
#               (the MQTT bridge: see bridge/mqtt.py; its topics are subscribed like pubsub.topics)
#   [dht]       mode = "server"   bootstrap = ["/ip4/.../p2p/12D3..."]   protocol = "/ipfs/kad/1.0.0"
#               rendezvous_interval_s = 60   # provide each topic, connect to its other providers
import asyncio
import json
import os
import signal
import sys
import time
import tomllib

from microp2p_host import events as E
from microp2p.codec import cbor
from microp2p_host.formats import jsonable
from microp2p.errors import MicroP2PError
from microp2p.identity import keys
from microp2p.io import node as nodemod, pubsub as pubsub_driver
from microp2p.io.profile import Profile
from microp2p.io.tcp import StreamPair
from microp2p.aio import print_exc
from microp2p.codec.multiaddr import Multiaddr
from microp2p.identity.peerid import PeerId

DEFAULT_TOPICS = ("sensors/readings", "sensors/commands")
DEFAULT_BAUD = 115200
BOOTSTRAP_BACKOFF_MIN_S = 1.0
BOOTSTRAP_BACKOFF_MAX_S = 60.0
BOOTSTRAP_MAX_ATTEMPTS = 10      # consecutive failed dials of one bootstrap peer before giving up
BOOTSTRAP_DIAL_TIMEOUT_S = 15.0
SERIAL_REOPEN_S = 2.0            # wait before reopening a serial port that failed to open
STOP_TIMEOUT_S = 5.0             # shutdown is bounded: whatever is still closing after this is dropped
MAX_ALLOW = 100000               # allow-list entries
MAX_DEVICE_NAME = 64
TABLE_ROWS_MAX = 60              # rows drawn in the live table (the rest is summarised)
MESSAGE_SUMMARY_BYTES = 32       # data bytes shown (hex) in a gossip:message summary
MAX_CONFIG_BYTES = 4 << 20       # a gateway config larger than this is refused
MAX_CONNECTIONS = 1024           # devices + network peers (the node's default, 128, is a peer's)
MAX_PENDING_UPGRADES = 64        # connections in handshake at once (a fleet reconnecting together)


from microp2p_host.config import ConfigError, check as check_schema, Str, Num, Bool, List, Table, AnyOf

LOG_LEVELS = ("error", "warning", "info", "debug")


def config_schema():
    """Every section and key the gateway config may hold, with its type (docs: README, [gateway])."""
    from microp2p_host.bridge import mqtt as mqtt_bridge
    addrs = List(Str(max_len=1024), max_items=64)
    return {
        "identity": {"key_file": Str()},
        "network": {"listen": addrs, "bootstrap": addrs},
        "devices": {"listen": addrs,
                    "allow": List(AnyOf(Str(max_len=128), Table({"id": Str(max_len=128), "name": Str(max_len=MAX_DEVICE_NAME)},
                                                                 required=("id",))), max_items=MAX_ALLOW)},
        "serial": List(Table({"path": Str(), "fd": Num(min=0, integer=True), "baud": Num(min=1, max=10000000, integer=True),
                              "throttle": Bool(), "name": Str(max_len=MAX_DEVICE_NAME)}), max_items=64),
        "pubsub": {"topics": List(Str(max_len=256), max_items=256)},
        "gateway": {"stats_interval_s": Num(min=0), "table_interval_s": Num(min=0.05), "message_events": Bool(),
                    "bootstrap_max_attempts": Num(min=1, integer=True), "max_connections": Num(min=1, max=100000, integer=True),
                    "max_pending_upgrades": Num(min=1, max=10000, integer=True), "metrics": Str(max_len=300),
                    "log_level": Str(choices=LOG_LEVELS)},
        "mqtt": mqtt_bridge.schema(),
        "dht": {"mode": Str(choices=("server", "client")), "bootstrap": addrs, "protocol": Str(max_len=256),
                "rendezvous_interval_s": Num(min=0.001)},
        "relay": {"hop": Bool()},
    }


def _as_list(v, what):
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list):
        raise ConfigError("%s must be a list" % what)
    return v


class GatewayConfig:
    """The parsed TOML config; paths are resolved relative to the config file."""

    def __init__(self):
        self.key_file = "gateway.key"
        self.network_listen = []
        self.bootstrap = []
        self.device_listen = []
        self.allow = {}          # peer id text -> display name (or None)
        self.serial = []         # [{"path"|"fd", "baud", "throttle", "name"}]
        self.topics = list(DEFAULT_TOPICS)
        self.stats_interval_s = 10.0
        self.table_interval_s = 1.0
        self.message_events = False
        self.bootstrap_max_attempts = BOOTSTRAP_MAX_ATTEMPTS
        self.max_connections = MAX_CONNECTIONS
        self.max_pending_upgrades = MAX_PENDING_UPGRADES
        self.metrics = None      # "HOST:PORT" of the Prometheus endpoint
        self.log_level = "warning"
        self.mqtt = None         # bridge.mqtt.MqttConfig when there is an [mqtt] section
        self.dht_mode = None     # "server" / "client" with a [dht] section
        self.dht_bootstrap = []
        self.dht_protocol = None
        self.dht_rendezvous_s = 60.0
        self.relay_hop = False

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            try:
                text = f.read(MAX_CONFIG_BYTES + 1)
            except OSError as e:
                raise ConfigError("%s: %s" % (path, e.strerror or e))
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError("%s: over %d bytes" % (path, MAX_CONFIG_BYTES))
        try:
            text = text.decode("utf-8")
            data = tomllib.loads(text)
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError("%s: %s" % (path, e))
        check_schema(data, config_schema(), text, path)
        return cls.from_dict(data, os.path.dirname(os.path.abspath(path)))

    @classmethod
    def from_dict(cls, d, base_dir="."):
        c = cls()
        ident = d.get("identity", {})
        c.key_file = os.path.join(base_dir, ident.get("key_file", c.key_file))
        net = d.get("network", {})
        c.network_listen = [_check_addr(a) for a in _as_list(net.get("listen"), "network.listen")]
        c.bootstrap = [_check_addr(a, need_peer=True) for a in _as_list(net.get("bootstrap"), "network.bootstrap")]
        dev = d.get("devices", {})
        c.device_listen = [_check_addr(a) for a in _as_list(dev.get("listen"), "devices.listen")]
        allow = _as_list(dev.get("allow"), "devices.allow")
        if len(allow) > MAX_ALLOW:
            raise ConfigError("devices.allow: more than %d entries" % MAX_ALLOW)
        for entry in allow:
            if isinstance(entry, dict):
                pid, name = entry.get("id"), entry.get("name")
            else:
                pid, name = entry, None
            try:
                PeerId.from_string(str(pid))
            except Exception:
                raise ConfigError("devices.allow: %r is not a peer ID" % (pid,))
            c.allow[str(pid)] = str(name)[:MAX_DEVICE_NAME] if name else None
        for i, s in enumerate(_as_list(d.get("serial"), "serial")):
            if not isinstance(s, dict) or ("path" not in s and "fd" not in s):
                raise ConfigError("serial[%d] needs a path (or an inherited fd)" % i)
            baud = int(s.get("baud", DEFAULT_BAUD))
            if baud <= 0:
                raise ConfigError("serial[%d].baud must be positive" % i)
            c.serial.append({"path": s.get("path"), "fd": s.get("fd"), "baud": baud,
                             "throttle": bool(s.get("throttle", False))})
        ps = d.get("pubsub", {})
        if "topics" in ps:
            c.topics = [str(t) for t in _as_list(ps["topics"], "pubsub.topics")]
        gw = d.get("gateway", {})
        c.stats_interval_s = float(gw.get("stats_interval_s", c.stats_interval_s))
        c.table_interval_s = float(gw.get("table_interval_s", c.table_interval_s))
        c.message_events = bool(gw.get("message_events", c.message_events))
        c.bootstrap_max_attempts = int(gw.get("bootstrap_max_attempts", c.bootstrap_max_attempts))
        c.max_connections = int(gw.get("max_connections", c.max_connections))
        c.max_pending_upgrades = int(gw.get("max_pending_upgrades", c.max_pending_upgrades))
        c.metrics = gw.get("metrics")
        if c.metrics:
            from microp2p_host.metrics import parse_listen
            try:
                parse_listen(c.metrics)
            except ValueError as e:
                raise ConfigError("gateway.metrics: %s" % e)
        c.log_level = gw.get("log_level", "warning")
        if "mqtt" in d:
            from microp2p_host.bridge.mqtt import MqttConfig, MqttConfigError
            try:
                c.mqtt = MqttConfig.from_dict(d["mqtt"], base_dir)
            except MqttConfigError as e:
                raise ConfigError(str(e))
            c.topics += [t for t in c.mqtt.out + c.mqtt.in_ if t not in c.topics]
        dht = d.get("dht")
        if dht is not None:
            c.dht_mode = str(dht.get("mode", "server"))
            if c.dht_mode not in ("server", "client"):
                raise ConfigError("dht.mode must be server or client")
            c.dht_bootstrap = [_check_addr(a, need_peer=True) for a in _as_list(dht.get("bootstrap"), "dht.bootstrap")]
            c.dht_protocol = dht.get("protocol")
            c.dht_rendezvous_s = float(dht.get("rendezvous_interval_s", c.dht_rendezvous_s))
            if c.dht_rendezvous_s <= 0:
                raise ConfigError("dht.rendezvous_interval_s must be positive")
        c.relay_hop = bool(d.get("relay", {}).get("hop", False))
        if not c.network_listen and not c.device_listen and not c.serial:
            raise ConfigError("nothing to do: no network.listen, devices.listen or serial ports")
        return c


def _check_addr(a, need_peer=False):
    try:
        m = Multiaddr.from_string(str(a))
    except Exception as e:
        raise ConfigError("bad multiaddr %r: %s" % (a, e))
    if need_peer and m.value_for("p2p") is None:
        raise ConfigError("%s: a bootstrap address must end in /p2p/PEER_ID" % a)
    return str(m)


def serial_addr(path):
    """The local-only /serial/<escaped path> multiaddr naming a serial port."""
    return Multiaddr.from_string("/serial/" + _escape_path(path))


def _escape_path(path):
    out = []
    for b in path.encode():
        c = chr(b)
        if b < 0x21 or b > 0x7E or c in "%/":
            out.append("%%%02X" % b)
        else:
            out.append(c)
    return "".join(out)


def load_or_create_key(path):
    """The gateway identity: read from path, or a new one written there (mode 0600)."""
    if os.path.exists(path):
        return keys.load_private_key(path)
    from microp2p_host.keyfile import write_key_file
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    key = keys.Ed25519PrivateKey.generate()
    write_key_file(path, key)
    return key


class DeviceState:
    __slots__ = ("peer", "name", "link", "addr", "state", "last_seen", "msgs_in", "msgs_out",
                 "out_base", "connects", "refusals", "connected_at", "circuits")

    def __init__(self, peer, name):
        self.peer = peer
        self.name = name
        self.link = "-"
        self.addr = None
        self.state = "never"     # never | connected | disconnected | refused
        self.last_seen = None    # time.time()
        self.msgs_in = 0         # messages authored by the device (their `from`) that reached us
        self.msgs_out = 0        # messages we forwarded to the device
        self.out_base = 0        # msgs_out of its earlier connections (router counters restart)
        self.connects = 0
        self.refusals = 0
        self.connected_at = None
        self.circuits = 0        # relayed circuits to it open now ([relay] hop = true)

    def to_json(self):
        return {"peer": self.peer, "name": self.name, "link": self.link, "addr": self.addr,
                "state": self.state, "lastSeen": self.last_seen, "msgsIn": self.msgs_in,
                "msgsOut": self.msgs_out, "connects": self.connects, "circuits": self.circuits}


def _setup_relay(gw):
    """[relay] hop = true: a RelayHop whose allow-listed devices need no RESERVE and whose
    circuits to them carry no limit; only allow-listed peers may RESERVE."""
    from microp2p.io import relay
    from microp2p.proto.relay import hop
    cfg = hop.HopConfig()
    allowed = set(PeerId.from_string(p) for p in gw.config.allow)
    cfg.reserve_allow = allowed
    cfg.unlimited = set(allowed)
    return relay.RelayHop(gw.node, cfg, on_event=gw.emit)


class Gateway:
    def __init__(self, config, key=None, out=None, err=None, table=None):
        """out: where JSON event lines go (stdout); err: the table/log stream (stderr).
        table: None = redraw live when err is a tty, True = print periodically, False = never."""
        self.config = config
        self.key = key or load_or_create_key(config.key_file)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        # Redraw live only when stderr is a terminal and stdout is not the same terminal: a
        # clear-screen there would wipe the JSON event lines.
        self.live = (table is None and hasattr(self.err, "isatty") and self.err.isatty()
                     and not (hasattr(self.out, "isatty") and self.out.isatty()))
        self.table = table if table is not None else self.live
        self.devices = {}                       # peer id text -> DeviceState
        for pid, name in config.allow.items():
            self.devices[pid] = DeviceState(pid, name)
        self.network_peers = set()
        self.refused_unknown = 0
        self.messages = 0
        ncfg = Profile.gateway()
        ncfg.max_connections = config.max_connections         # an eighth reserved for devices
        ncfg.max_pending_upgrades = config.max_pending_upgrades  # a quarter for device ports
        self.node = nodemod.Node(self.key, ncfg, on_event=self._on_node_event, log=self._log)
        self.node.resources.allow = set(config.allow)  # reserved capacity, never trimmed
        self.peer_id = str(self.node.peer_id)
        self.pubsub = None
        self.dht = None                         # gateway_dht.GatewayDHT with a [dht] section
        if config.dht_mode:
            from microp2p_host.gateway_dht import GatewayDHT
            self.dht = GatewayDHT(self, config.dht_mode, config.dht_protocol, config.dht_bootstrap,
                                  config.dht_rendezvous_s)
        self.serial_ports = []                  # SerialPort per configured port (once open)
        self._conn_link = {}                    # Connection -> (link kind, addr text)
        self._tasks = []
        self._stop = asyncio.Event()
        self.started_at = None
        self.verbose = False
        self.log_level = config.log_level
        self.metrics_server = None
        self._device_ports = set()
        self.bridge = None                      # the MQTT bridge ([mqtt])
        self.relay = _setup_relay(self) if config.relay_hop else None
        self._net_addrs = []

    def circuit_addrs(self, pid):
        """Where the network reaches device pid through this gateway (empty without [relay])."""
        if self.relay is None:
            return []
        return ["%s/p2p/%s/p2p-circuit/p2p/%s" % (a, self.peer_id, pid) for a in self._net_addrs]

    # ---- output ------------------------------------------------------------------------------
    def emit(self, name, fields=None):
        d = {"event": name, "ts": round(time.time(), 3)}
        if fields:
            d.update(fields)
        try:
            self.out.write(json.dumps(d) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass  # a closed stdout must not take the gateway down

    def log(self, msg, level="debug"):
        """A diagnostic line on stderr when level is at or above the configured log level
        (--log-level / [gateway] log_level; --verbose = debug)."""
        want = "debug" if self.verbose else self.log_level
        if LOG_LEVELS.index(level) <= LOG_LEVELS.index(want):
            try:
                self.err.write("gateway %s: %s\n" % (level, msg))
            except (OSError, ValueError):
                pass

    _log = log

    # ---- admission and connection bookkeeping ------------------------------------------------
    def admit_device(self, peer):
        """True for an allow-listed device; otherwise the reason the device is told (and logs)."""
        if str(peer) in self.config.allow:
            return True
        return "not admitted: add %s to [devices] allow in the gateway config" % peer

    def _on_node_event(self, name, f):
        if name == "connection:open":
            pid = f["peer"]
            dev = self.devices.get(pid)
            conn = self._find_conn(pid)
            link, addr = self._conn_link_of(conn, f.get("addr"))
            if dev is not None:
                dev.state = "connected"
                dev.link = link
                dev.addr = addr
                dev.connects += 1
                dev.last_seen = dev.connected_at = time.time()
                fields = {"peer": pid, "name": dev.name, "link": link, "addr": addr}
                if self.relay is not None and not f.get("relayed"):
                    self.relay.add_device(PeerId.from_string(pid))
                    fields["circuitAddrs"] = self.circuit_addrs(pid)
                self.emit(E.DEVICE_CONNECTED, fields)
                if self.bridge is not None:
                    self.bridge.device_changed(pid)
            else:
                self.network_peers.add(pid)
                self.emit(E.PEER_CONNECTED, {"peer": pid, "addr": f.get("addr"), "direction": f.get("direction")})
        elif name == "connection:close":
            pid = f["peer"]
            dev = self.devices.get(pid)
            if dev is not None and dev.state == "connected" and self.node.connection_to(PeerId.from_string(pid)) is None:
                self._fold_out_count(dev)
                dev.state = "disconnected"
                dev.last_seen = time.time()
                if self.relay is not None:
                    self.relay.hop.remove(PeerId.from_string(pid))
                self.emit(E.DEVICE_DISCONNECTED, {"peer": pid, "name": dev.name, "link": dev.link,
                                                  "msgsIn": dev.msgs_in, "msgsOut": dev.msgs_out})
                if self.bridge is not None:
                    self.bridge.device_changed(pid)
            elif pid in self.network_peers and self.node.connection_to(PeerId.from_string(pid)) is None:
                self.network_peers.discard(pid)
                self.emit(E.PEER_DISCONNECTED, {"peer": pid})
        elif name == "connection:refused":
            pid = f.get("peer")
            dev = self.devices.get(pid) if pid else None
            limit = f.get("reason") == "limit"
            if dev is not None:
                dev.refusals += 1
            elif not limit:
                self.refused_unknown += 1     # not on the allow-list (limits count in resources)
            if limit:
                # a resource limit (pending upgrades, connection slots), not an admission decision:
                # reported as the node's connection:refused, with the limit that was hit
                self.emit(E.CONNECTION_REFUSED, {"peer": pid, "addr": f.get("addr"), "reason": "limit",
                                                 "limit": f.get("limit")})
            else:
                self.emit(E.DEVICE_REFUSED, {"peer": pid, "addr": f.get("addr"), "reason": f.get("reason")})

    def _find_conn(self, pid):
        for c in reversed(self.node.connections):
            if str(c.remote_peer) == pid:
                return c
        return None

    def _conn_link_of(self, conn, addr_text):
        """("tcp" | "serial" | "network", address text) of a new connection."""
        if conn is not None:
            tag = self._conn_link.get(id(conn.duplex))
            if tag is not None:
                return tag
            sock = conn.duplex.get_extra_info("sockname") if hasattr(conn.duplex, "get_extra_info") else None
            if isinstance(sock, tuple) and not conn.outbound and sock[1] in self._device_ports:
                return "tcp", addr_text
        return "net", addr_text

    def _fold_out_count(self, dev):
        dev.out_base = dev.msgs_out

    def _refresh_out_counts(self):
        if self.relay is not None:
            for dev in self.devices.values():
                dev.circuits = self.relay.hop.circuits_of(PeerId.from_string(dev.peer))
        if self.pubsub is None:
            return
        peers = self.pubsub.peer_stats()
        for dev in self.devices.values():
            if dev.state != "connected":
                continue
            p = peers.get(PeerId.from_string(dev.peer))
            if p is not None:
                dev.msgs_out = dev.out_base + p["msgs_sent"]

    # ---- pubsub ------------------------------------------------------------------------------
    def _on_message(self, topic, msg):
        self.messages += 1
        frm = msg.get("from")
        author = str(PeerId.from_bytes(frm)) if frm else None
        dev = self.devices.get(author) if author else None
        if dev is not None:
            dev.msgs_in += 1
            dev.last_seen = time.time()
        if self.config.message_events:
            data = bytes(msg.get("data", b""))
            fields = {"topic": topic, "from": author, "seqno": bytes(msg.get("seqno", b"")).hex(),
                      "size": len(data), "dataHex": data[:MESSAGE_SUMMARY_BYTES].hex()}
            try:
                fields["cbor"] = jsonable(cbor.decode(data))   # a reading or a command, decoded
            except MicroP2PError:
                pass
            self.emit(E.GOSSIP_MESSAGE, fields)
        if self.bridge is not None:
            # the router checked the StrictSign signature before delivering (when signing)
            self.bridge.on_gossip(topic, msg, bool(self.pubsub.router.signing), author)

    # ---- listeners, dials, serial ------------------------------------------------------------
    async def start(self):
        node = self.node
        self.pubsub = pubsub_driver.attach(node, on_message=self._on_message)
        for pid in self.config.allow:
            # devices are leaves (a mesh of 1-2, no gossip): every message of their topics is
            # pushed to each of them, or a command would reach only the gateway's mesh (D of them)
            self.pubsub.set_direct(PeerId.from_string(pid))
        for t in self.config.topics:
            self.pubsub.subscribe(t)
        if self.config.mqtt is not None:
            from microp2p_host.bridge.mqtt import MqttBridge
            self.bridge = MqttBridge(self.config.mqtt, self)
            self.bridge.start()
            prev = getattr(self, "metrics_extra", None)   # the Prometheus endpoint reads these too
            self.metrics_extra = lambda: [*(prev() if prev else ()), *self.bridge.metrics_families()]
        if self.config.metrics:
            from microp2p_host import metrics
            self.metrics_server, _, port = metrics.serve(self, self.config.metrics)
            self.metrics_port = port
        net_addrs = []
        for a in self.config.network_listen:
            net_addrs.append(await node.listen(a))
        self._net_addrs = [str(a) for a in net_addrs]
        dev_addrs = []
        for a in self.config.device_listen:
            bound = await node.listen(a, admit=self.admit_device, advertise=False)
            self._device_ports.add(int(bound.value_for("tcp")))
            dev_addrs.append(bound)
        for spec in self.config.serial:
            self._tasks.append(asyncio.create_task(self._serial_loop(spec)))
        for a in self.config.bootstrap:
            self._tasks.append(asyncio.create_task(self._bootstrap_loop(a)))
        node.start()
        self.started_at = time.time()
        suffix = "/p2p/" + self.peer_id
        self.emit(E.STARTED, {"peerId": self.peer_id,
                              "addrs": [str(a) + suffix for a in net_addrs],
                              "deviceAddrs": [str(a) + suffix for a in dev_addrs],
                              "serial": [s.get("path") or "fd:%s" % s.get("fd") for s in self.config.serial],
                              "topics": list(self.config.topics), "devices": len(self.config.allow)})
        if self.dht is not None:  # after "started": its events come later
            self._tasks.append(asyncio.create_task(self.dht.run(self._stop)))
        if self.config.stats_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._stats_loop()))
        if self.table:
            self._tasks.append(asyncio.create_task(self._table_loop()))

    async def _bootstrap_loop(self, addr):
        """Keep a connection to one bootstrap peer: dial, wait while it lasts, back off on failure
        (doubling, capped), give up after bootstrap_max_attempts consecutive failures."""
        pid = PeerId.from_string(Multiaddr.from_string(addr).value_for("p2p"))
        backoff = BOOTSTRAP_BACKOFF_MIN_S
        failures = 0
        while not self._stop.is_set():
            conn = self.node.connection_to(pid)
            if conn is None:
                try:
                    conn = await asyncio.wait_for(self.node.dial(addr), BOOTSTRAP_DIAL_TIMEOUT_S)
                    failures = 0
                    backoff = BOOTSTRAP_BACKOFF_MIN_S
                    self.emit(E.BOOTSTRAP_CONNECTED, {"addr": addr})
                except Exception as e:
                    failures += 1
                    self.emit(E.BOOTSTRAP_ERROR, {"addr": addr, "attempt": failures,
                                                  "error": "%s: %s" % (type(e).__name__, e),
                                                  "retryInS": backoff if failures < self.config.bootstrap_max_attempts else None})
                    if failures >= self.config.bootstrap_max_attempts:
                        self.emit(E.BOOTSTRAP_FAILED, {"addr": addr, "attempts": failures})
                        return
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, BOOTSTRAP_BACKOFF_MAX_S)
                    continue
            while not conn.closed and not self._stop.is_set():
                await self._sleep(1.0)

    async def _sleep(self, s):
        try:
            await asyncio.wait_for(self._stop.wait(), s)
        except asyncio.TimeoutError:
            pass

    def _open_serial(self, spec, on_event):
        from microp2p_host import serial_host
        if spec.get("fd") is not None:
            return serial_host.open_fd(int(spec["fd"]), throttle_baud=spec["baud"] if spec["throttle"] else 0,
                                       on_event=on_event)
        return serial_host.open_serial(spec["path"], spec["baud"], throttle=spec["throttle"], on_event=on_event)

    async def _serial_loop(self, spec):
        """One serial port: open it, then accept link sessions forever; each session is one
        libp2p connection (device side dials). A link reset ends that connection; the next
        session is accepted the same way."""
        name = spec.get("path") or "fd%s" % spec.get("fd")
        addr = serial_addr(name)
        while not self._stop.is_set():
            held = []

            def on_link(ev, name=name, held=held):
                fields = {"port": name, "state": ev[0]}
                if held and ev[0] != "link_up":
                    fields["link"] = dict(held[0].link.stats)  # what the ended session saw
                self.emit(E.SERIAL_LINK, fields)
            try:
                port = self._open_serial(spec, on_link)
                held.append(port)
            except Exception as e:
                self.emit(E.SERIAL_ERROR, {"port": name, "error": "%s: %s" % (type(e).__name__, e)})
                await self._sleep(SERIAL_REOPEN_S)
                continue
            self.serial_ports.append(port)
            port.start()
            self.emit(E.SERIAL_OPEN, {"port": name, "baud": spec["baud"]})
            try:
                while not self._stop.is_set():
                    conn = StreamPair(*([await port.accept()] * 2))
                    self._conn_link[id(conn)] = ("serial", str(addr))
                    t = asyncio.create_task(self._serial_session(conn, addr))
                    self._tasks.append(t)
                    t.add_done_callback(self._forget_task)
            except OSError as e:
                self.emit(E.SERIAL_ERROR, {"port": name, "error": str(e)})
            finally:
                port.close()
                if port in self.serial_ports:
                    self.serial_ports.remove(port)
            await self._sleep(SERIAL_REOPEN_S)

    def _forget_task(self, t):
        try:
            self._tasks.remove(t)
        except ValueError:
            pass

    async def _serial_session(self, conn, addr):
        c = await self.node.accept_stream(conn, addr, admit=self.admit_device, privileged=True,
                                          listener="serial")
        self._conn_link.pop(id(conn), None)
        if c is None:
            await conn.close()  # refused or failed: a link restart tells the device to start over

    # ---- periodic output ---------------------------------------------------------------------
    def stats(self):
        self._refresh_out_counts()
        devs = self.devices.values()
        return {"devicesConnected": sum(1 for d in devs if d.state == "connected"),
                "devicesKnown": len(self.devices), "networkPeers": len(self.network_peers),
                "connections": len(self.node.connections), "messages": self.messages,
                "msgsIn": sum(d.msgs_in for d in devs), "msgsOut": sum(d.msgs_out for d in devs),
                "refusedUnknown": self.refused_unknown,
                "relay": self.relay.table() if self.relay is not None else None,
                "router": self.pubsub.stats() if self.pubsub else {},
                **({"mqtt": self.bridge.stats()} if self.bridge is not None else {}),
                "resources": self.node.resources.snapshot(),
                "peerDrops": self.peer_drops(),
                "rssKb": rss_kb(), "cpuS": round(sum(os.times()[:2]), 2)}

    def peer_drops(self, limit=32):
        """Frames dropped per peer (the router's per-peer queue cap), most first: who was not
        served, so a flooding or stalled peer is named in the stats."""
        if self.pubsub is None:
            return []
        peers = getattr(self.pubsub.router, "peers", {})
        rows = [(p.dropped, str(pid)) for pid, p in peers.items() if getattr(p, "dropped", 0)]
        rows.sort(reverse=True)
        return [{"peer": pid, "dropped": n} for n, pid in rows[:limit]]

    async def _stats_loop(self):
        while not self._stop.is_set():
            await self._sleep(self.config.stats_interval_s)
            if not self._stop.is_set():
                self.emit(E.STATS, self.stats())

    async def _table_loop(self):
        while not self._stop.is_set():
            self.draw_table()
            await self._sleep(self.config.table_interval_s)

    def draw_table(self):
        self._refresh_out_counts()
        text = render_table(self.devices.values(), self.peer_id, len(self.network_peers), self.messages)
        try:
            if self.live:
                self.err.write("\x1b[H\x1b[2J" + text)
            else:
                self.err.write(text + "\n")
            self.err.flush()
        except (OSError, ValueError):
            pass

    # ---- lifetime ----------------------------------------------------------------------------
    def stop(self):
        self._stop.set()

    async def run(self):
        await self.start()
        await self._stop.wait()
        await self.close()

    async def close(self):
        for t in list(self._tasks):
            t.cancel()
        for p in list(self.serial_ports):
            p.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None
        if self.bridge is not None:
            await self.bridge.close()   # statuses offline, then a clean MQTT disconnect
        if self.pubsub is not None:
            self.pubsub.close()
        try:
            await asyncio.wait_for(self.node.stop(), STOP_TIMEOUT_S)
        except asyncio.TimeoutError:
            pass
        self.emit(E.STOPPED, self.stats())


def rss_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _ago(t, now):
    if t is None:
        return "-"
    s = now - t
    return "%.0fs" % s if s < 120 else "%.0fm" % (s / 60)


def render_table(devices, gateway_id, network_peers, messages):
    now = time.time()
    devs = sorted(devices, key=lambda d: (d.name or d.peer))
    lines = ["microp2p gateway %s   network peers: %d   messages: %d   %s" % (
        gateway_id, network_peers, messages, time.strftime("%H:%M:%S")),
        "%-14s %-54s %-7s %-13s %9s %8s %8s %5s" % ("DEVICE", "PEER ID", "LINK", "STATE", "LAST SEEN", "MSG IN",
                                                  "MSG OUT", "CIRC")]
    for d in devs[:TABLE_ROWS_MAX]:
        lines.append("%-14s %-54s %-7s %-13s %9s %8d %8d %5d" % (
            (d.name or "-")[:14], d.peer, d.link, d.state, _ago(d.last_seen, now), d.msgs_in, d.msgs_out,
            d.circuits))
    if len(devs) > TABLE_ROWS_MAX:
        rest = devs[TABLE_ROWS_MAX:]
        lines.append("... %d more (%d connected)" % (len(rest), sum(1 for d in rest if d.state == "connected")))
    return "\n".join(lines) + "\n"


# ---- CLI -------------------------------------------------------------------------------------

def add_args(p):
    p.add_argument("--config", metavar="FILE", help="gateway config (TOML)")
    p.add_argument("--check", metavar="FILE", help="validate a config file and exit (0: usable)")
    p.add_argument("--log-level", choices=LOG_LEVELS, help="diagnostics on stderr (default: the config's, else warning)")
    p.add_argument("--table", action="store_true", help="print the device table periodically on stderr "
                   "(it is drawn live anyway when stderr is a terminal)")
    p.add_argument("--no-table", action="store_true", help="never draw the device table")
    p.add_argument("--verbose", action="store_true", help="connection logs on stderr")


FD_MARGIN = 128  # descriptors beyond connections and MQTT sessions (listeners, serial ports, logs, DNS)


def fds_needed(config):
    """Open files the config can use at once: every connection slot, one MQTT connection per
    device will session plus the bridge's own, serial ports, and a margin."""
    wills = config.mqtt.device_wills + 1 if config.mqtt is not None else 0
    return config.max_connections + wills + len(config.serial) + FD_MARGIN


def raise_fd_limit(need):
    """Raise the soft RLIMIT_NOFILE towards `need` (never above the hard limit). Returns the soft
    limit now in force, or None where the platform has no such limit."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    if soft == inf or soft >= need:
        return soft
    want = need if hard == inf else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    except (ValueError, OSError):
        return soft


def run(args):
    from microp2p_host.keyfile import CliError
    path = args.check or args.config
    if not path:
        raise CliError("gateway: give --config FILE (or --check FILE)")
    try:
        config = GatewayConfig.load(path)
    except (OSError, ConfigError) as e:
        raise CliError("gateway config: %s" % e)
    if args.check:
        print("%s: ok (%d devices allowed; listen: network %s, devices %s, %d serial ports%s%s)" % (
            path, len(config.allow), config.network_listen or "-", config.device_listen or "-", len(config.serial),
            "; mqtt" if config.mqtt else "", "; dht %s" % config.dht_mode if getattr(config, "dht_mode", None) else ""))
        return 0
    if args.log_level:
        config.log_level = args.log_level
    need = fds_needed(config)
    have = raise_fd_limit(need)
    if have is not None and have < need:
        sys.stderr.write("gateway: warning: open-file limit %d is below the %d this config can use "
                         "(max_connections + MQTT will sessions + serial ports + %d); raise it with "
                         "ulimit -n or LimitNOFILE= in the service unit\n" % (have, need, FD_MARGIN))
    table = False if args.no_table else (True if args.table else None)

    async def main():
        try:
            gw = Gateway(config, table=table)
        except Exception as e:
            raise CliError("gateway: %s: %s" % (type(e).__name__, e))
        gw.verbose = args.verbose
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, gw.stop)
        await gw.run()

    try:
        asyncio.run(main())
    except OSError as e:
        raise CliError("gateway: %s" % e)
    return 0
