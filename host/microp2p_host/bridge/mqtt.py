# The gateway's MQTT bridge (aiomqtt, MQTT 5): the fleet's signed gossip readings go out to any
# MQTT broker as JSON, JSON commands from MQTT come back in as CBOR gossip signed by the gateway.
#
# Config ([mqtt] in the gateway's TOML; every key optional except url/urls):
#   url = "mqtt://127.0.0.1:1883"   (or urls = [...]: tried in turn on each reconnect; mqtts:// = TLS)
#   prefix = "microp2p"   out = ["sensors/readings"]   in = ["sensors/commands"]   qos = 1
#   raw = []              gossip topics in `out` whose payload is not CBOR: sent as "dataB64"
#   username, password | password_env, ca_file, cert_file, key_file, client_id, buffer_max
#   device_wills = 256    devices whose status has a last will of its own (one MQTT connection each)
#
# Topics:
#   out  <prefix>/<gossip topic>/<device peer id>   {"from","seqno","verified":true,"data"|"dataB64"}
#   status (retained)  <prefix>/devices/<peer id>/status     <prefix>/gateways/<gateway id>/status
#   in   <prefix>/<command topic>  (every device)   <prefix>/<command topic>/<peer id>  (one device)
#
# Last wills. MQTT gives a connection one will. The main connection's will is the gateway's own
# retained status (<prefix>/gateways/<id>/status -> "offline", reason "connection lost"). Each
# online device gets a small connection of its own (a "will session", client id
# <client id>-<last 16 characters of the device's peer id>, same URL, credentials and TLS as the
# main one) whose will is that device's retained offline status (reason "gateway connection
# lost") and on which its statuses are published while it is up. So when the gateway dies
# (crash, kill -9, network cut) the broker itself flips the gateway and every device it had
# online to offline. A device that leaves gets its offline status on its own session, which then
# ends with a normal DISCONNECT (no will); a session that must end before that status was
# acknowledged ends with MQTT 5 reason code 0x04 (disconnect with will message), so the broker
# publishes the will instead. Bounds: at most `device_wills` sessions (config, default
# DEVICE_WILLS; 0 = none); a device coming online when all are taken falls back to a status on
# the main connection without a will (counted: willOverCap) and gets the next free session.
# Sessions connect only while the main connection is up, SESSION_CONNECTS_MAX at a time, each
# retrying with its own backoff; they run in their own tasks, never in the readings' path. While
# a device's session is not up (connecting after a failure, over the cap) its status goes out on
# the main connection as before.
# A clean exit flips each device's retained status to offline (reason "stopped"), then marks the
# gateway offline. Every (re)connect republishes the status of every allow-listed device and
# reads the retained statuses under <prefix>/devices/ once: one still "online" that names this
# gateway but whose device is no longer allow-listed (left over by an earlier run) is set offline
# (reason "gateway restarted"), so a restart leaves no stale "online" behind.
#
# Guarantees and bounds:
#   - only messages whose StrictSign signature the router checked go out ("verified": true);
#   - one MQTT message per (from, seqno): replays after a device reconnect are dropped by a
#     bounded cache (DEDUPE_MAX);
#   - QoS 1: a reading leaves the outbox only when the broker acknowledged it; while the broker is
#     unreachable readings wait in the outbox (buffer_max, oldest dropped first, drops counted and
#     reported as `mqtt:dropped` events and in stats) and go out in order after the reconnect,
#     which retries with exponential backoff (BACKOFF_MIN_S .. BACKOFF_MAX_S);
#   - no loops: the bridge subscribes with MQTT 5 No Local (it never gets its own publishes back),
#     tags what it publishes with the user property ORIGIN_PROPERTY and drops any tagged message
#     that reaches its command subscriptions (another bridge's), refuses a config whose `out`
#     and `in` overlap, and never sends to MQTT a gossip message it authored itself;
#   - commands: bounded size, a JSON object of a known shape (sensor_node's commands), never a
#     retained message (it would re-run on every reconnect), at a bounded rate (COMMAND_BURST,
#     COMMAND_RATE_PER_S); anything else -> `mqtt:rejected`.
# Credentials are never logged or emitted (events carry the URL without userinfo, which a config
# may not contain anyway).
import asyncio
import base64
import collections
import json
import logging
import math
import os
import time

from microp2p_host import events as E
from microp2p.identity.peerid import PeerId

DEFAULT_PREFIX = "microp2p"
DEFAULT_OUT = ("sensors/readings",)
DEFAULT_IN = ("sensors/commands",)
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
BUFFER_MAX = 10000          # readings waiting for the broker (config buffer_max)
BUFFER_MAX_LIMIT = 1000000
DEDUPE_MAX = 16384          # (from, seqno) pairs remembered to publish each message once (~3 MB;
                            # the router's seen cache already drops copies within its TTL)
INFLIGHT_MAX = 48           # QoS 1 readings awaiting their PUBACK at once (aiomqtt and paho walk
                            # their pending lists per publish: a larger window costs CPU); never
                            # more than the broker's MQTT 5 Receive Maximum (paho ignores it)
from microp2p_host.commands import COMMAND_MAX_BYTES  # noqa: E402  an MQTT command payload larger than this is rejected unread
INCOMING_MAX = 1024         # MQTT messages queued in the client before we read them
COMMAND_BURST = 20          # commands from MQTT to gossip: a burst of this many, then ...
COMMAND_RATE_PER_S = 10.0   # ... this many per second (a flood must not swamp the devices' small queues)
STATUS_BATCH = 64           # retained statuses published at once (a large fleet goes in batches)
DEVICE_WILLS = 256          # will sessions (one MQTT connection per online device; config device_wills)
DEVICE_WILLS_LIMIT = 10000
SESSION_CONNECTS_MAX = 4    # will sessions connecting at once (each connect holds an executor thread)
SESSION_STABLE_S = 10.0     # a will session up this long starts its backoff afresh when it is lost
SESSION_END_TIMEOUT_S = 2.0  # a will session's DISCONNECT written within this, else its socket is closed
STALE_SCAN_MAX = 4096       # retained device statuses examined per (re)connect for stale "online" ones
STATUS_PAYLOAD_MAX = 4096   # a retained status larger than this is not ours: never parsed
BACKOFF_MIN_S = 0.25
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 10.0
PUBACK_TIMEOUT_S = 30.0     # readings in flight and no PUBACK for this long: reconnect, send again
KEEPALIVE_S = 15
DROP_REPORT_S = 1.0         # mqtt:dropped events: at most one per this interval (plus a final one)
CLOSE_TIMEOUT_S = 3.0       # clean exit: statuses flushed within this bound
MAX_URLS = 16
MAX_TOPICS = 64
MAX_TOPIC_LEN = 256
MAX_CREDENTIAL_LEN = 1024
ORIGIN_PROPERTY = "microp2p-origin"   # MQTT 5 user property on everything a bridge publishes
from microp2p_host.commands import MIN_INTERVAL_MS, MAX_INTERVAL_MS  # noqa: E402,F401



def schema():
    """The [mqtt] section's keys and types in the host config module's terms (for the gateway's
    whole-file schema; from_dict checks them the same way, then the rules between keys)."""
    from microp2p_host.config import List, Num, Str
    topics = List(Str(max_len=MAX_TOPIC_LEN), max_items=MAX_TOPICS, one_ok=False)
    return {"url": Str(), "urls": List(Str(), max_items=MAX_URLS, one_ok=False), "prefix": Str(max_len=MAX_TOPIC_LEN),
            "out": topics, "in": topics, "raw": topics, "qos": Num(min=0, max=2, integer=True),
            "username": Str(max_len=MAX_CREDENTIAL_LEN), "password": Str(max_len=MAX_CREDENTIAL_LEN),
            "password_env": Str(max_len=256), "ca_file": Str(), "cert_file": Str(), "key_file": Str(),
            "client_id": Str(max_len=128), "buffer_max": Num(min=1, max=BUFFER_MAX_LIMIT, integer=True),
            "device_wills": Num(min=0, max=DEVICE_WILLS_LIMIT, integer=True)}


class MqttConfigError(Exception):
    pass


def _check_topic_part(t, what):
    if not isinstance(t, str):
        raise MqttConfigError("%s must be strings" % what)
    if not t or len(t) > MAX_TOPIC_LEN or t.startswith("/") or t.endswith("/") or "//" in t:
        raise MqttConfigError("%s: %r is not a usable topic (empty, too long or stray '/')" % (what, t))
    if "+" in t or "#" in t or "\x00" in t:
        raise MqttConfigError("%s: %r contains an MQTT wildcard or NUL" % (what, t))
    return t


def parse_url(u):
    """(scheme, host, port) of an mqtt:// or mqtts:// URL; userinfo is refused."""
    if not isinstance(u, str):
        raise MqttConfigError("mqtt.url must be a string")
    scheme, sep, rest = u.partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        raise MqttConfigError("mqtt.url %r: must start with mqtt:// or mqtts://" % (u,))
    if "@" in rest:
        raise MqttConfigError("mqtt.url: no credentials in the URL (use username and password_env)")
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise MqttConfigError("mqtt.url %r: no host" % (u,))
    port = DEFAULT_PORTS[scheme]
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise MqttConfigError("mqtt.url %r: bad port" % (u,))
        port = int(port_text)
    return scheme, host, port


class MqttConfig:
    """The [mqtt] section, checked strictly: unknown keys and wrong types are errors naming the key."""

    def __init__(self):
        self.urls = []             # [(scheme, host, port)]
        self.prefix = DEFAULT_PREFIX
        self.out = list(DEFAULT_OUT)
        self.in_ = list(DEFAULT_IN)
        self.raw = []
        self.qos = 1
        self.username = None
        self.password = None       # never logged (see __repr__)
        self.ca_file = self.cert_file = self.key_file = None
        self.client_id = None
        self.buffer_max = BUFFER_MAX
        self.device_wills = DEVICE_WILLS

    def __repr__(self):
        return "MqttConfig(urls=%r, prefix=%r, out=%r, in=%r, qos=%d, username=%s, password=%s)" % (
            [display_url(u) for u in self.urls], self.prefix, self.out, self.in_, self.qos,
            "set" if self.username else None, "set" if self.password else None)

    @classmethod
    def from_dict(cls, d, base_dir=".", environ=None):
        env = os.environ if environ is None else environ
        if not isinstance(d, dict):
            raise MqttConfigError("[mqtt] must be a table")
        c = cls()
        from microp2p_host import config as hc
        for k in ("password", "username"):   # checked here: a generic error would quote the value
            v = d.get(k)
            if v is not None and (not isinstance(v, str) or len(v) > MAX_CREDENTIAL_LEN):
                raise MqttConfigError("mqtt.%s must be a string of at most %d characters" % (k, MAX_CREDENTIAL_LEN))
        try:
            hc.check({"mqtt": d}, {"mqtt": schema()}, path="")
        except hc.ConfigError as e:
            raise MqttConfigError(str(e)[2:] if str(e).startswith(": ") else str(e))
        if ("url" in d) == ("urls" in d):
            raise MqttConfigError("mqtt.url (or mqtt.urls) is required, not both")
        urls = [d["url"]] if "url" in d else d["urls"]
        if not urls or len(urls) > MAX_URLS:
            raise MqttConfigError("mqtt.urls: 1..%d broker URLs" % MAX_URLS)
        c.urls = [parse_url(u) for u in urls]
        c.prefix = _check_topic_part(d.get("prefix", c.prefix), "mqtt.prefix")
        for key, attr in (("out", "out"), ("in", "in_"), ("raw", "raw")):
            if key in d:
                vals = d[key]
                if len(vals) > MAX_TOPICS:
                    raise MqttConfigError("mqtt.%s: more than %d topics" % (key, MAX_TOPICS))
                setattr(c, attr, [_check_topic_part(t, "mqtt." + key) for t in vals])
        both = set(c.out) & set(c.in_)
        if both:
            raise MqttConfigError("mqtt.out and mqtt.in overlap (%s): that would loop" % ", ".join(sorted(both)))
        stray = set(c.raw) - set(c.out)
        if stray:
            raise MqttConfigError("mqtt.raw: %s not in mqtt.out" % ", ".join(sorted(stray)))
        # <prefix>/devices/... and <prefix>/gateways/... are the status topics
        for t in c.out + c.in_:
            if t.split("/", 1)[0] in ("devices", "gateways"):
                raise MqttConfigError("mqtt: topic %r collides with the status topics" % t)
        c.qos = d.get("qos", 1)
        if c.qos not in (0, 1, 2):
            raise MqttConfigError("mqtt.qos must be 0, 1 or 2")
        if "password" in d and "password_env" in d:
            raise MqttConfigError("mqtt.password and mqtt.password_env: give one")
        c.username = d.get("username")
        if "password_env" in d:
            name = d["password_env"]
            if name not in env:
                raise MqttConfigError("mqtt.password_env: environment variable %s is not set" % name)
            c.password = env[name]
        else:
            c.password = d.get("password")
        if c.password is not None and len(c.password) > MAX_CREDENTIAL_LEN:
            raise MqttConfigError("mqtt.password_env: the password is over %d characters" % MAX_CREDENTIAL_LEN)
        if c.password is not None and c.username is None:
            raise MqttConfigError("mqtt.password needs mqtt.username")
        for k in ("ca_file", "cert_file", "key_file"):
            if k in d:
                p = os.path.join(base_dir, d[k])
                if not os.path.isfile(p):
                    raise MqttConfigError("mqtt.%s: no such file %s" % (k, p))
                setattr(c, k, p)
        if (c.cert_file is None) != (c.key_file is None):
            raise MqttConfigError("mqtt.cert_file and mqtt.key_file go together")
        if (c.ca_file or c.cert_file) and not any(u[0] == "mqtts" for u in c.urls):
            raise MqttConfigError("mqtt.ca_file/cert_file need an mqtts:// URL")
        c.client_id = d.get("client_id")
        if c.client_id is not None and not 0 < len(c.client_id) <= 128:
            raise MqttConfigError("mqtt.client_id: 1..128 characters")
        c.buffer_max = d.get("buffer_max", c.buffer_max)
        if not 1 <= c.buffer_max <= BUFFER_MAX_LIMIT:
            raise MqttConfigError("mqtt.buffer_max must be 1..%d" % BUFFER_MAX_LIMIT)
        c.device_wills = d.get("device_wills", c.device_wills)
        if not 0 <= c.device_wills <= DEVICE_WILLS_LIMIT:
            raise MqttConfigError("mqtt.device_wills must be 0..%d" % DEVICE_WILLS_LIMIT)
        try:
            import aiomqtt  # noqa: F401
        except ImportError:
            raise MqttConfigError("[mqtt] needs the aiomqtt package: pip install 'microp2p[mqtt]'")
        return c


def display_url(u):
    scheme, host, port = u
    return "%s://%s:%d" % (scheme, ("[%s]" % host) if ":" in host else host, port)


# ---- payloads ----------------------------------------------------------------------------------

from microp2p_host.formats import jsonable  # noqa: E402,F401


def reading_payload(author, seqno, data, raw):
    """The JSON bytes published for one verified gossip message. A payload that is not a CBOR map
    goes out as dataB64, like a raw topic's."""
    d = {"from": author, "seqno": seqno.hex(), "verified": True}
    if not raw:
        import cbor2
        try:
            v = cbor2.loads(data)
            if isinstance(v, dict):
                d["data"] = v
                try:   # the common case (text, numbers): JSON as it is
                    return json.dumps(d, separators=(",", ":"), allow_nan=False).encode()
                except (TypeError, ValueError):   # bytes, tags, NaN, odd keys: converted
                    d["data"] = jsonable(v)
                    return json.dumps(d, separators=(",", ":"), allow_nan=False).encode()
        except Exception:
            pass
    d["dataB64"] = base64.b64encode(data).decode()
    return json.dumps(d, separators=(",", ":")).encode()


from microp2p_host.commands import CommandError, parse_command, check_peer as _check_peer  # noqa: E402,F401


# ---- the bridge -----------------------------------------------------------------------------

class _Entry:
    __slots__ = ("topic", "payload", "retain")

    def __init__(self, topic, payload, retain=False):
        self.topic = topic
        self.payload = payload
        self.retain = retain


def _packed_properties_class():
    from paho.mqtt.properties import Properties

    class PackedProperties(Properties):
        """Publish properties packed once (paho packs them again for every message)."""
        _packed = None

        def freeze(self):
            object.__setattr__(self, "_packed", Properties.pack(self))

        def pack(self):
            return self._packed if self._packed is not None else Properties.pack(self)
    return PackedProperties


def _PackedProperties(packet_type):
    global _PackedProperties
    cls = _packed_properties_class()
    _PackedProperties = cls
    return cls(packet_type)


def _quiet_logger():
    lg = logging.getLogger("microp2p.mqtt")
    if not lg.handlers:
        lg.addHandler(logging.NullHandler())
    lg.propagate = False   # paho's debug lines never reach a root handler
    return lg


def _client(config, url, identifier, will_topic, will_payload, origin, **extra):
    """An aiomqtt MQTT 5 client for url with config's credentials and TLS, and a retained QoS 1
    last will (will_payload on will_topic) tagged with our origin."""
    import aiomqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    scheme, host, port = url
    will_props = Properties(PacketTypes.WILLMESSAGE)
    will_props.UserProperty = [(ORIGIN_PROPERTY, origin)]
    tls = None
    if scheme == "mqtts":
        tls = aiomqtt.TLSParameters(ca_certs=config.ca_file, certfile=config.cert_file, keyfile=config.key_file)
    client = aiomqtt.Client(
        host, port, username=config.username, password=config.password, logger=_quiet_logger(),
        identifier=identifier, protocol=aiomqtt.ProtocolVersion.V5, clean_start=True, keepalive=KEEPALIVE_S,
        timeout=CONNECT_TIMEOUT_S, tls_params=tls, will=aiomqtt.Will(will_topic, will_payload, 1, True, will_props),
        **extra)
    client._client.disable_logger()   # paho's own lines: none (no cost per packet, nothing to leak)
    return client


class _WillSession:
    """One online device's own MQTT connection: its will is the device's retained offline status,
    and the device's statuses go out on it while it is up (so the broker never has an "online"
    newer than the will). Ends once the device is offline and that status was acknowledged."""
    __slots__ = ("bridge", "pid", "topic", "changed", "owns", "closing", "finished", "connecting", "client",
                 "url", "task")

    def __init__(self, bridge, pid):
        self.bridge = bridge
        self.pid = pid
        self.topic = bridge._status_topic(pid)
        self.changed = asyncio.Event()   # the device's state changed (or the gateway stops)
        self.owns = True       # connecting or connected: the main connection leaves this status alone
        self.closing = False   # clean gateway exit: publish offline ("stopped") and end
        self.finished = False  # its device's offline status was acknowledged on this connection
        self.connecting = False
        self.client = None     # the aiomqtt client while connected
        self.url = None        # where it is connected: the main connection's URL then
        self.task = None

    async def run(self):
        b = self.bridge
        backoff = BACKOFF_MIN_S
        try:
            while not self.closing and b._wants_session(self.pid):
                self.owns = True
                if not b._main_up.is_set():   # until the main connection is up (or the device goes)
                    self.changed.clear()
                    await _either(b._main_up, self.changed)
                    continue
                client = None
                async with b._session_connects:
                    if self.closing or not b._wants_session(self.pid) or not b._main_up.is_set():
                        continue
                    self.connecting = True
                    self.url = b.url
                    try:
                        client = b._session_client(self.pid, b._device_status(
                            self.pid, offline=True, reason="gateway connection lost"))
                        await client.__aenter__()
                    except asyncio.CancelledError:
                        raise
                    except Exception as e:   # MqttError, OSError, TLS errors: retried
                        client = None
                        error = e
                    finally:
                        self.connecting = False
                if client is None:
                    self._lost(error)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                self.client = client
                up_at = time.monotonic()
                error = None
                try:
                    await self._follow(client)
                except asyncio.CancelledError:
                    raise
                except Exception as e:   # the connection is gone (or a PUBACK never came)
                    error = e
                finally:
                    self.client = None
                    await _end_session(client, with_will=not self.finished)
                if self.finished:
                    return
                self._lost(error)
                if time.monotonic() - up_at > SESSION_STABLE_S:
                    backoff = BACKOFF_MIN_S   # it had been up a while: a fresh loss, not a flapping one
                await self._pause(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        finally:
            self.owns = False
            b._session_done(self)

    async def _pause(self, seconds):
        """A backoff, cut short when the device goes offline or the gateway stops."""
        deadline = time.monotonic() + seconds
        while not self.closing and self.bridge._wants_session(self.pid):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                return

    def _lost(self, e):
        """A connect failed or the connection ended early: retried after a backoff."""
        b = self.bridge
        self.owns = False
        b.counters["will_failures"] += 1
        log = getattr(b.gw, "log", None)
        if log is not None:
            log("mqtt: will session of %s: %s" % (self.pid, _err(e) if e is not None else "ended"))
        b.status_dirty[self.pid] = True   # meanwhile the main connection publishes it (no will)
        b._wake.set()

    async def _follow(self, client):
        """The device's status on this connection at every change, until it is offline (or the
        gateway stops) and that status was acknowledged."""
        b = self.bridge
        while True:
            self.changed.clear()
            online = not self.closing and b._online(self.pid)
            payload = b._device_status(self.pid, offline=not online, reason="stopped" if self.closing else None)
            await client.publish(self.topic, payload, 1, True, b._props, timeout=PUBACK_TIMEOUT_S)
            b.counters["status"] += 1
            if not online:
                if self.closing or not b._online(self.pid):
                    self.finished = True
                    return
                continue   # back online before the offline status was acknowledged
            waiter = asyncio.ensure_future(self.changed.wait())
            lost = asyncio.ensure_future(_until_lost(client))
            try:
                await asyncio.wait((waiter, lost), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                lost.cancel()   # no-op once it has ended
            if lost.done() and not lost.cancelled() and not self.changed.is_set():
                raise OSError("will session lost: %s" % (lost.result() or "disconnected"))
            if b._main_up.is_set() and b.url != self.url:   # the main connection moved to another broker
                raise OSError("the main connection is now on %s" % display_url(b.url))


async def _either(ev1, ev2):
    """Until one of two asyncio Events is set."""
    t1, t2 = asyncio.ensure_future(ev1.wait()), asyncio.ensure_future(ev2.wait())
    try:
        await asyncio.wait((t1, t2), return_when=asyncio.FIRST_COMPLETED)
    finally:
        t1.cancel()
        t2.cancel()


async def _until_lost(client):
    """Until the aiomqtt client's connection is gone; returns why (None: a clean end). A will
    session subscribes to nothing, so aiomqtt's public message iterator yields nothing and only
    ends, with MqttError (caused by the disconnect's error, if any), when the connection does;
    reading that error also marks it retrieved (no "exception was never retrieved")."""
    import aiomqtt
    try:
        async for _ in client.messages:
            pass
    except aiomqtt.MqttError as e:
        return e.__cause__
    return None


def _abort(pc):
    """Close a paho client's connection now, through paho's own end-of-connection path: the
    TCP connection is shut down (on a duplicate of the descriptor, so a TLS socket's state
    stays intact), then paho's loop_read() reads to the end of the stream, closes its socket
    (aiomqtt's on_socket_close unregisters it) and calls on_disconnect (aiomqtt's marks the
    client disconnected). Neither paho nor aiomqtt has a public "close now"."""
    import socket
    sock = pc.socket()
    if sock is None:
        return
    try:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass   # not connected any more: reading sees the end (or the error) all the same
    for _ in range(10000):   # each read consumes a packet or meets the end: bounded by what is buffered
        if pc.socket() is None:
            return
        try:
            pc.loop_read()
        except Exception:   # aiomqtt's reader (the socket is readable now) meets it again and ends the client
            return


async def _end_session(client, with_will):
    """A will session's end: a normal DISCONNECT (the broker drops the will), or with_will: MQTT 5
    reason code 0x04, so the broker publishes the will (the device's offline status). Bounded:
    the socket is closed after SESSION_END_TIMEOUT_S. Public APIs only: paho's disconnect()
    (aiomqtt's own exit sends no reason code) and socket(), aiomqtt's message iterator (to see
    the connection end) and its context-manager exit (releases the client); `client._client` is
    aiomqtt's paho client, which aiomqtt does not expose otherwise."""
    import paho.mqtt.client as paho
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode
    pc = client._client
    lost = asyncio.ensure_future(_until_lost(client))
    try:
        reason = ReasonCode(PacketTypes.DISCONNECT, identifier=0x04) if with_will else None
        # queued; once written paho closes the socket and aiomqtt's client reads as disconnected
        # (no connection any more: MQTT_ERR_NO_CONN, nothing sent)
        if pc.disconnect(reasoncode=reason) == paho.MQTT_ERR_SUCCESS:
            await asyncio.wait((lost,), timeout=SESSION_END_TIMEOUT_S)
    except Exception:
        pass   # the session ends all the same: closed below
    finally:
        _abort(pc)   # not written in time (or still open for another reason): closed now
        try:
            if not lost.done():   # it sees the end within a loop turn or two (and retrieves its error)
                await asyncio.wait((lost,), timeout=SESSION_END_TIMEOUT_S / 4)
        finally:
            lost.cancel()
            if lost.done() and not lost.cancelled():
                lost.exception()   # retrieved, whatever it was
            # disconnected by now: aiomqtt's exit only releases the client (sends and awaits nothing)
            try:
                await client.__aexit__(None, None, None)
            except Exception:
                pass   # an ending session never raises


class MqttBridge:
    """Owned by the gateway, which it uses through gw.emit(name, fields) (events),
    gw.pubsub.publish(topic, data), gw.peer_id and gw.devices (peer id text -> DeviceState)."""

    def __init__(self, config, gateway):
        self.config = config
        self.gw = gateway
        self.prefix = config.prefix
        self.out_topics = set(config.out)
        self.raw_topics = set(config.raw)
        self.in_topics = list(config.in_)
        self.outbox = collections.deque()      # _Entry readings waiting for the broker
        self.inflight = collections.deque()    # (_Entry, mid) sent, PUBACK awaited
        self.status_dirty = {}                 # peer id -> True: a device status to (re)publish
        self.seen = collections.OrderedDict()  # from + seqno bytes -> None
        self.counters = collections.Counter()
        self.connected = False
        self.url = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()           # the sender has nothing left to send
        self._ack_ev = asyncio.Event()         # a PUBACK for a reading arrived
        self._pc = None                        # the session's paho client (hot path)
        self._waiting = self._acked = None
        self._send_failed = False
        self._cmd_tokens = float(COMMAND_BURST)
        self._last_ack = 0.0
        self._window = INFLIGHT_MAX            # readings in flight at once: min(INFLIGHT_MAX, Receive Maximum)
        self._cmd_refill_at = time.monotonic()
        self._stopping = False
        self._task = None
        self._client = None
        self._url_index = 0
        self._drops_unreported = 0
        self._last_drop_report = 0.0
        self._origin = "gateway/" + gateway.peer_id
        self._props = None
        self.gw_status_topic = "%s/gateways/%s/status" % (self.prefix, gateway.peer_id)
        self.sessions = {}                     # peer id -> _WillSession (at most config.device_wills)
        self._over_cap = collections.OrderedDict()   # online devices waiting for a free will session
        self._main_up = asyncio.Event()        # the main connection is up: will sessions may connect
        self._session_connects = asyncio.Semaphore(SESSION_CONNECTS_MAX)
        self._stale_out = []                   # (topic, payload): left-over "online" statuses to set offline
        self._stale_seen = 0                   # retained statuses examined since the last (re)connect
        self._cap_warned = False

    # ---- gateway hooks (sync, called from the event loop) ------------------------------------
    def on_gossip(self, topic, msg, verified, author=None):
        """A gossip message the gateway received and (StrictSign) verified; author: the text
        form of its `from` when the caller has it (base58 costs as much as the rest)."""
        if topic not in self.out_topics:
            return
        frm = msg.get("from")
        seqno = bytes(msg.get("seqno") or b"")
        if not verified or not frm or not seqno:
            self.counters["unverified"] += 1
            return
        frm = bytes(frm)
        if author is None:
            author = str(PeerId.from_bytes(frm))
        if author == self.gw.peer_id:
            return   # what the bridge (or anything else in the gateway) published: never sent back out
        key = frm + seqno
        if key in self.seen:
            self.counters["duplicates"] += 1
            return
        self.seen[key] = None
        if len(self.seen) > DEDUPE_MAX:
            self.seen.popitem(last=False)
        payload = reading_payload(author, seqno, bytes(msg.get("data") or b""), topic in self.raw_topics)
        self._enqueue(_Entry("%s/%s/%s" % (self.prefix, topic, author), payload))

    def device_changed(self, peer):
        """A device connected or disconnected: its retained status is due (on its will session
        when it has one up, else on the main connection)."""
        self.status_dirty[peer] = True
        s = self.sessions.get(peer)
        if s is not None:
            s.changed.set()
        elif self._wants_session(peer):
            self._start_session(peer)
        else:
            self._over_cap.pop(peer, None)
        self._wake.set()

    # ---- will sessions -----------------------------------------------------------------------
    def _online(self, pid):
        d = self.gw.devices.get(pid)
        return d is not None and d.state == "connected"

    def _wants_session(self, pid):
        return self.config.device_wills > 0 and not self._stopping and self._online(pid)

    def _start_session(self, pid):
        if len(self.sessions) >= self.config.device_wills:
            if pid not in self._over_cap:
                self._over_cap[pid] = None
                self.counters["will_over_cap"] += 1
                if not self._cap_warned:
                    self._cap_warned = True
                    log = getattr(self.gw, "log", None)
                    if log is not None:
                        log("mqtt: %d will sessions in use (device_wills): further devices' statuses go out "
                            "without a last will until one is free" % self.config.device_wills, "warning")
            return
        self._over_cap.pop(pid, None)
        s = self.sessions[pid] = _WillSession(self, pid)
        s.task = asyncio.ensure_future(s.run())

    def _session_done(self, s):
        """A will session's task ended: its slot goes to its device again (back online in the
        meantime) or to the longest-waiting online device over the cap."""
        if self.sessions.get(s.pid) is s:
            del self.sessions[s.pid]
        if not s.finished:
            self.status_dirty[s.pid] = True   # the main connection has the last word
            self._wake.set()
        if self._stopping:
            return
        if self._wants_session(s.pid):
            self._start_session(s.pid)
        while self._over_cap and len(self.sessions) < self.config.device_wills:
            pid, _ = self._over_cap.popitem(last=False)
            if self._wants_session(pid) and pid not in self.sessions:
                self._start_session(pid)

    def _session_client(self, pid, will_payload):
        return _client(self.config, self.url, "%s-%s" % (self._client_id(), pid[-16:]), self._status_topic(pid),
                       will_payload, self._origin, max_queued_incoming_messages=1)

    async def _close_sessions(self, timeout):
        """Clean exit: each will session publishes its device's offline status ("stopped") on
        its own connection and ends with a normal DISCONNECT; the ones not done within timeout
        are cancelled (ending with the will, reason code 0x04, when still connected)."""
        sessions = list(self.sessions.values())
        for s in sessions:
            s.closing = True
            s.changed.set()
            if s.client is None and not s.connecting:
                s.task.cancel()   # waiting to connect: nothing of its own to publish
        tasks = [s.task for s in sessions]
        if not tasks:
            return set()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=SESSION_END_TIMEOUT_S + 1)
        return {s.pid for s in sessions if s.finished}

    def _enqueue(self, entry):
        if len(self.outbox) + len(self.inflight) >= self.config.buffer_max:
            if self.outbox:
                self.outbox.popleft()   # oldest waiting reading goes first
            else:
                self.counters["dropped"] += 1
                self._drops_unreported += 1
                self._report_drops()
                return
            self.counters["dropped"] += 1
            self._drops_unreported += 1
            self._report_drops()
        self.outbox.append(entry)
        self.counters["queued"] += 1
        if self._pc is not None and len(self.inflight) < self._window:
            self._pump()
        else:
            self._wake.set()

    def _report_drops(self, final=False):
        now = time.monotonic()
        if self._drops_unreported and (final or now - self._last_drop_report >= DROP_REPORT_S):
            self._last_drop_report = now
            self.gw.emit(E.MQTT_DROPPED, {"dropped": self._drops_unreported, "droppedTotal": self.counters["dropped"],
                                          "buffered": len(self.outbox) + len(self.inflight),
                                          "bufferMax": self.config.buffer_max})
            self._drops_unreported = 0

    def stats(self):
        c = self.counters
        return {"connected": self.connected, "url": display_url(self.url) if self.url else None,
                "published": c["published"], "buffered": len(self.outbox) + len(self.inflight),
                "bufferMax": self.config.buffer_max, "dropped": c["dropped"], "duplicates": c["duplicates"],
                "commands": c["commands"], "rejected": c["rejected"], "loopsDropped": c["loops"],
                "statusPublished": c["status"], "reconnects": c["reconnects"],
                "connectFailures": c["connect_failures"], "unverified": c["unverified"],
                "brokerRefused": c["brokerRefused"],
                "willSessions": sum(1 for s in self.sessions.values() if s.client is not None),
                "willSessionsMax": self.config.device_wills, "willOverCap": c["will_over_cap"],
                "willFailures": c["will_failures"], "staleCleared": c["stale"]}

    def metrics_families(self):
        """Prometheus families for the gateway's metrics endpoint (read at scrape time):
        microp2p_mqtt_connected, microp2p_mqtt_buffered (gauges), microp2p_mqtt_events_total{kind}."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        st = self.stats()
        yield GaugeMetricFamily("microp2p_mqtt_connected", "1 while the MQTT bridge is connected",
                                value=1 if st["connected"] else 0)
        yield GaugeMetricFamily("microp2p_mqtt_buffered", "Readings waiting for the MQTT broker", value=st["buffered"])
        yield GaugeMetricFamily("microp2p_mqtt_will_sessions", "Devices whose status has its own MQTT last will now",
                                value=st["willSessions"])
        c = CounterMetricFamily("microp2p_mqtt_events", "MQTT bridge counters (published, dropped, ...)",
                                labels=["kind"])
        for k in ("published", "dropped", "duplicates", "commands", "rejected", "loopsDropped", "statusPublished",
                  "reconnects", "connectFailures", "unverified", "brokerRefused", "willOverCap", "willFailures",
                  "staleCleared"):
            c.add_metric([k], st[k])
        yield c

    # ---- lifetime ----------------------------------------------------------------------------
    def start(self):
        self._task = asyncio.create_task(self._run())

    async def close(self):
        """Clean exit: every device's retained status -> offline (by its will session when it has
        one up, then a normal DISCONNECT there), the gateway's -> offline, then a normal
        DISCONNECT (the will is not sent). Bounded by 2 x CLOSE_TIMEOUT_S."""
        self._stopping = True
        self._over_cap.clear()
        client = self._client
        sessions = asyncio.ensure_future(self._close_sessions(CLOSE_TIMEOUT_S))
        if client is not None and self.connected:
            if self.outbox or self.inflight or self.status_dirty:   # readings waiting get their chance first
                self._idle.clear()
                self._wake.set()
                try:
                    await asyncio.wait_for(self._idle.wait(), CLOSE_TIMEOUT_S)
                except asyncio.TimeoutError:
                    pass
        done_by_sessions = await sessions
        if client is not None and self.connected:
            try:
                await asyncio.wait_for(self._publish_final(client, done_by_sessions), CLOSE_TIMEOUT_S)
            except Exception as e:
                self.gw.emit(E.MQTT_ERROR, {"error": "final status: %s" % _err(e)})
        self._report_drops(final=True)
        if self._task is not None:
            self._task.cancel()
            try:
                await asyncio.wait_for(self._task, CLOSE_TIMEOUT_S)
            except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
                pass

    async def _publish_final(self, client, skip=()):
        self.status_dirty.clear()
        await self._publish_retained(client, self._all_statuses(offline=True, reason="stopped", skip=skip))
        await client.publish(self.gw_status_topic, self._gateway_status("offline", "stopped"), 1, True, self._props)

    async def _publish_retained(self, client, items):
        """(topic, payload) pairs, retained QoS 1, STATUS_BATCH at a time."""
        for i in range(0, len(items), STATUS_BATCH):
            await asyncio.gather(*[client.publish(t, p, 1, True, self._props) for t, p in items[i:i + STATUS_BATCH]])
            self.counters["status"] += len(items[i:i + STATUS_BATCH])

    # ---- statuses ----------------------------------------------------------------------------
    def _status_topic(self, pid):
        return "%s/devices/%s/status" % (self.prefix, pid)

    def _device_status(self, pid, offline=False, reason=None):
        """reason (offline only): "stopped" (clean gateway exit), "gateway connection lost" (the
        will of the device's session; its counters and ts are those of when it was armed)."""
        d = self.gw.devices.get(pid)
        if d is None:
            return None
        online = d.state == "connected" and not offline
        st = {"status": "online" if online else "offline", "peer": pid, "name": d.name,
              "gateway": self.gw.peer_id, "link": d.link, "state": d.state,
              "lastSeen": round(d.last_seen, 3) if d.last_seen else None,
              "connects": d.connects, "msgsIn": d.msgs_in, "msgsOut": d.msgs_out,
              "ts": round(time.time(), 3)}
        if reason is not None and not online:
            st["reason"] = reason
        return json.dumps(st).encode()

    def _all_statuses(self, offline=False, reason=None, skip=()):
        out = []
        for pid in list(self.gw.devices):
            if pid in skip:
                continue
            p = self._device_status(pid, offline, reason)
            if p is not None:
                out.append((self._status_topic(pid), p))
        return out

    def _check_stale(self, topic, payload):
        """A retained device status read at (re)connect: one that names this gateway and says
        "online" for a device no longer allow-listed is left over by an earlier run (a crash
        without a will for it, an allow-list edit): it is set offline."""
        self._stale_seen += 1
        if self._stale_seen > STALE_SCAN_MAX or not payload or len(payload) > STATUS_PAYLOAD_MAX:
            return
        parts = topic.split("/")
        pid = parts[-2] if len(parts) >= 3 else None
        if pid is None or topic != self._status_topic(pid) or pid in self.gw.devices:
            return   # an allow-listed device's status is republished at every (re)connect anyway
        try:
            st = json.loads(payload)
        except ValueError:
            return
        if not isinstance(st, dict) or st.get("gateway") != self.gw.peer_id or st.get("status") != "online":
            return
        st.update(status="offline", reason="gateway restarted", ts=round(time.time(), 3))
        self._stale_out.append((topic, json.dumps(st).encode()))
        self.counters["stale"] += 1
        self._wake.set()

    async def _scan_statuses(self, client):
        """Subscribe to the device statuses and unsubscribe at once: the broker sends the retained
        ones in between (QoS 0, in order, before the UNSUBACK); _receive hands them to _check_stale."""
        from paho.mqtt.subscribeoptions import SubscribeOptions
        flt = "%s/devices/+/status" % self.prefix
        self._stale_seen = 0
        try:
            await client.subscribe(flt, options=SubscribeOptions(qos=0, noLocal=True))
            await client.unsubscribe(flt)
        except asyncio.CancelledError:
            raise
        except Exception as e:   # the session is ending: _receive reports why
            self.gw.emit(E.MQTT_ERROR, {"error": "status scan: %s" % _err(e)})

    def _gateway_status(self, status, reason=None):
        return json.dumps({"status": status, "gateway": self.gw.peer_id, "reason": reason,
                           "devices": len(self.gw.devices), "ts": round(time.time(), 3)}).encode()

    # ---- connection loop ---------------------------------------------------------------------
    def _client_id(self):
        return self.config.client_id or ("microp2p-" + self.gw.peer_id[-16:])

    def _client_for(self, url):
        from paho.mqtt.packettypes import PacketTypes
        props = _PackedProperties(PacketTypes.PUBLISH)
        props.UserProperty = [(ORIGIN_PROPERTY, self._origin)]
        props.freeze()
        self._props = props
        client = _client(self.config, url, self._client_id(), self.gw_status_topic,
                         self._gateway_status("offline", "connection lost"), self._origin,
                         max_inflight_messages=INFLIGHT_MAX + STATUS_BATCH, max_queued_incoming_messages=INCOMING_MAX)
        client.pending_calls_threshold = INFLIGHT_MAX + STATUS_BATCH + 16  # no warning spam
        pc = client._client
        orig_connect = pc.on_connect

        def on_connect(c, userdata, flags, reason_code, properties=None):
            # MQTT 5: the broker's Receive Maximum bounds what may be unacknowledged at once (all
            # QoS > 0 publishes); paho does not apply it, so the bridge does
            rm = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
            rm = rm if isinstance(rm, int) and rm > 0 else 65535
            self._window = max(1, min(INFLIGHT_MAX, rm - 1 if rm > 1 else 1))
            # paho refuses to change its own bound once connected; at CONNACK nothing is in
            # flight yet, so its field is set directly (paho-mqtt 2.x)
            if hasattr(c, "_max_inflight_messages"):
                c._max_inflight_messages = min(rm, INFLIGHT_MAX + STATUS_BATCH)
            orig_connect(c, userdata, flags, reason_code, properties)
        pc.on_connect = on_connect
        return client

    async def _run(self):
        backoff = BACKOFF_MIN_S
        while not self._stopping:
            url = self.config.urls[self._url_index % len(self.config.urls)]
            self.url = url
            try:
                client = self._client_for(url)
                async with client:
                    self._client = client
                    self._send_failed = False
                    self.connected = True
                    backoff = BACKOFF_MIN_S
                    await self._session(client, url)
            except asyncio.CancelledError:
                raise
            except Exception as e:   # MqttError, OSError, TLS errors, ...: the bridge retries whatever it was
                self._after_disconnect(url, e, backoff)
            finally:
                self._client = None
                self.connected = False
                self._main_up.clear()
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _after_disconnect(self, url, e, backoff):
        was = self.connected
        # readings sent but not acknowledged go back to the front, in order
        while self.inflight:   # (a PUBACK that raced the end makes a duplicate: QoS 1 is at least once)
            entry, _mid = self.inflight.pop()
            self.outbox.appendleft(entry)
        self.counters["reconnects" if was else "connect_failures"] += 1
        self._url_index += 1
        self.gw.emit(E.MQTT_DISCONNECTED if was else E.MQTT_CONNECT_FAILED,
                     {"url": display_url(url), "error": _err(e), "retryInS": backoff,
                      "buffered": len(self.outbox)})

    async def _session(self, client, url):
        from paho.mqtt.subscribeoptions import SubscribeOptions
        await client.publish(self.gw_status_topic, self._gateway_status("online"), 1, True, self._props)
        for t in self.in_topics:
            opts = SubscribeOptions(qos=1, noLocal=True)
            await client.subscribe("%s/%s" % (self.prefix, t), options=opts)
            await client.subscribe("%s/%s/+" % (self.prefix, t), options=opts)
        for pid in self.gw.devices:   # every status again: the broker may have restarted empty
            self.status_dirty[pid] = True
        self._main_up.set()   # will sessions may connect (to this URL)
        for s in self.sessions.values():
            s.changed.set()   # one on another broker (an earlier URL) moves here
        self.gw.emit(E.MQTT_CONNECTED, {"url": display_url(url), "buffered": len(self.outbox),
                                        "subscribed": ["%s/%s[/+]" % (self.prefix, t) for t in self.in_topics]})
        self._report_drops(final=True)
        self._last_ack = time.monotonic()
        tasks = (asyncio.ensure_future(self._receive(client)), asyncio.ensure_future(self._send(client)),
                 asyncio.ensure_future(self._watchdog()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()   # the error that ended the session
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watchdog(self):
        """A broker that keeps the connection alive but stops acknowledging: after PUBACK_TIMEOUT_S
        with readings in flight and no PUBACK, the session ends (they go out again after the
        reconnect)."""
        while True:
            await asyncio.sleep(PUBACK_TIMEOUT_S / 4)
            if self.inflight and time.monotonic() - self._last_ack > PUBACK_TIMEOUT_S:
                raise OSError("no PUBACK for %.0f s with %d readings in flight" % (PUBACK_TIMEOUT_S, len(self.inflight)))

    async def _send(self, client):
        """Readings out, in order, INFLIGHT_MAX at a time. The hot path publishes through the
        paho client aiomqtt wraps (`client._client`, what aiomqtt's own publish calls) and
        takes PUBACKs from its on_publish callback, chained to aiomqtt's: no task, event and
        timer per reading. An entry leaves `inflight` only once acknowledged."""
        pc = client._client
        orig = pc.on_publish
        waiting = self._waiting = {}    # mid -> None for readings awaiting PUBACK
        acked = self._acked = {}        # mid -> PUBACK carried a failure reason code
        ack_ev = self._ack_ev

        def on_publish(c, userdata, mid, reason_code, properties):
            orig(c, userdata, mid, reason_code, properties)
            if mid in waiting:
                self._last_ack = time.monotonic()
                acked[mid] = bool(getattr(reason_code, "is_failure", False))
                ack_ev.set()
                self._wake.set()   # the sender may be idle-waiting (readings pumped from on_gossip)
        pc.on_publish = on_publish
        outbox, inflight, counters = self.outbox, self.inflight, self.counters
        try:
            self._pc = pc
            while True:
                if self.status_dirty or self._stale_out:
                    await self._send_statuses(client)
                self._pump()
                if self._send_failed:   # paho refused a publish: the connection is gone
                    raise OSError("publish refused by the MQTT client (connection lost)")
                while inflight and inflight[0][1] in acked:
                    mid = inflight.popleft()[1]
                    del waiting[mid]
                    if acked.pop(mid):
                        counters["brokerRefused"] += 1   # PUBACK with a failure reason: not retried
                    else:
                        counters["published"] += 1
                if outbox and len(inflight) < self._window:
                    await asyncio.sleep(0)   # let the socket writer and reader run
                    continue
                ack_ev.clear()
                self._wake.clear()
                if inflight:
                    await ack_ev.wait()   # bounded by _watchdog
                elif not outbox and not self.status_dirty and not self._stale_out:
                    self._idle.set()
                    await self._wake.wait()
                    self._idle.clear()
        finally:
            self._pc = None
            pc.on_publish = orig

    def _pump(self):
        """Hand waiting readings to the MQTT client while the QoS 1 window has room (also called
        straight from on_gossip: a reading goes out in the same loop turn it arrived in)."""
        pc = self._pc
        if pc is None or self._send_failed:
            return
        import paho.mqtt.client as paho
        outbox, inflight = self.outbox, self.inflight
        qos, props = self.config.qos, self._props
        window = self._window
        while outbox and len(inflight) < window:
            e = outbox.popleft()
            info = pc.publish(e.topic, e.payload, qos, False, props)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                outbox.appendleft(e)
                self._send_failed = True   # the connection is going: _receive ends the session
                self._ack_ev.set()
                return
            if qos == 0:
                self.counters["published"] += 1
                continue
            self._waiting[info.mid] = None
            if not inflight:
                self._last_ack = time.monotonic()   # the watchdog counts from the first one in flight
            inflight.append((e, info.mid))

    async def _send_statuses(self, client):
        """Device statuses on the main connection: every dirty one whose device has no will
        session up (or connecting), and left-over statuses found stale."""
        dirty = list(self.status_dirty)
        self.status_dirty.clear()
        stale, self._stale_out = self._stale_out, []
        items = []
        for pid in dirty:
            s = self.sessions.get(pid)
            if s is not None and s.owns:
                continue   # the device's own session publishes it
            p = self._device_status(pid)
            if p is not None:
                items.append((self._status_topic(pid), p))
        try:
            await self._publish_retained(client, items + stale)
        except BaseException:
            for pid in dirty:
                self.status_dirty.setdefault(pid, True)
            self._stale_out[:0] = stale
            raise

    async def _receive(self, client):
        scan = asyncio.ensure_future(self._scan_statuses(client))
        status_pre = self.prefix + "/devices/"
        try:
            async for m in client.messages:
                try:
                    topic = m.topic.value
                    if topic.startswith(status_pre):
                        if m.retain:   # the scan's retained statuses (live ones are not ours to read)
                            self._check_stale(topic, m.payload)
                        continue
                    self.handle_command(topic, m.payload, m.retain, m.properties)
                except Exception as e:   # a bug here must not end the bridge
                    self.gw.emit(E.MQTT_ERROR, {"error": "command handling: %s" % _err(e)})
        finally:
            scan.cancel()

    # ---- in: MQTT -> gossip -----------------------------------------------------------------
    def handle_command(self, mtopic, payload, retain=False, properties=None):
        """One MQTT message on a command subscription. Returns the published CBOR map or None."""
        ups = getattr(properties, "UserProperty", None) or ()
        if any(k == ORIGIN_PROPERTY for k, _ in ups):
            self.counters["loops"] += 1
            return self._reject(mtopic, "published by a bridge (loop guard)")
        if not isinstance(payload, (bytes, bytearray)):
            payload = b"" if payload is None else str(payload).encode()
        gtopic, to = self._match_in(mtopic)
        if gtopic is None:
            return self._reject(mtopic, "not a command topic")
        if retain:
            return self._reject(mtopic, "retained command ignored (it would run again on every reconnect)")
        try:
            if to is not None:
                _check_peer(to)
            cmd = parse_command(payload, to)
        except CommandError as e:
            return self._reject(mtopic, str(e))
        target = cmd.get("to")
        if target not in (None, "*") and target not in self.gw.devices:
            return self._reject(mtopic, "unknown device %s" % target)
        now = time.monotonic()
        self._cmd_tokens = min(float(COMMAND_BURST), self._cmd_tokens + (now - self._cmd_refill_at) * COMMAND_RATE_PER_S)
        self._cmd_refill_at = now
        if self._cmd_tokens < 1:
            return self._reject(mtopic, "rate limit: over %d commands/s" % COMMAND_RATE_PER_S)
        self._cmd_tokens -= 1
        import cbor2
        self.gw.pubsub.publish(gtopic, cbor2.dumps(cmd))
        self.counters["commands"] += 1
        self.gw.emit(E.MQTT_COMMAND, {"topic": mtopic, "gossipTopic": gtopic, "cmd": cmd})
        return cmd

    def _match_in(self, mtopic):
        pre = self.prefix + "/"
        if not mtopic.startswith(pre):
            return None, None
        rest = mtopic[len(pre):]
        for t in self.in_topics:
            if rest == t:
                return t, None
            if rest.startswith(t + "/"):
                tail = rest[len(t) + 1:]
                if tail and "/" not in tail:
                    return t, tail
        return None, None

    def _reject(self, mtopic, reason):
        self.counters["rejected"] += 1
        self.gw.emit(E.MQTT_REJECTED, {"topic": mtopic[:MAX_TOPIC_LEN], "reason": reason})
        return None


def _err(e):
    return "%s: %s" % (type(e).__name__, e)
