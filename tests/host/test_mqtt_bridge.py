# The MQTT bridge's pure parts: strict [mqtt] config, command validation, reading payloads, and
# the bridge's bookkeeping (dedupe, loop guards, bounded outbox) driven without a broker. The
# broker paths (QoS 1, reconnects, last will) are in tests/e2e/test_mqtt.py with real Mosquitto.
import asyncio
import base64
import json

import cbor2

import microp2p_host  # noqa: F401
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p_host.bridge import mqtt as M
from microp2p_host.gateway import ConfigError, DeviceState, GatewayConfig


def _pid():
    return PeerId.from_public_key(Ed25519PrivateKey.generate().public_key)


def _err(d, env=None, base="."):
    try:
        M.MqttConfig.from_dict(d, base, env or {})
    except M.MqttConfigError as e:
        assert "\n" not in str(e)
        return str(e)
    raise AssertionError("accepted %r" % (d,))


def test_config_full_and_defaults(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    c = M.MqttConfig.from_dict({"urls": ["mqtts://broker.local", "mqtt://[::1]:1884"], "prefix": "farm/a",
                                "out": ["sensors/readings", "blobs"], "raw": ["blobs"], "in": ["sensors/commands"],
                                "qos": 1, "username": "u", "password_env": "PW", "ca_file": "ca.pem",
                                "cert_file": "c.pem", "key_file": "k.pem", "client_id": "gw-1", "buffer_max": 50,
                                "device_wills": 0},
                               str(tmp_path), {"PW": "s3cret"})
    assert c.urls == [("mqtts", "broker.local", 8883), ("mqtt", "::1", 1884)]
    assert c.prefix == "farm/a" and c.raw == ["blobs"] and c.buffer_max == 50 and c.device_wills == 0
    assert c.password == "s3cret" and c.ca_file == str(tmp_path / "ca.pem")
    assert "s3cret" not in repr(c) and "password=set" in repr(c)
    d = M.MqttConfig.from_dict({"url": "mqtt://127.0.0.1:1999"}, ".", {})
    assert (d.prefix, d.out, d.in_, d.qos, d.buffer_max) == ("microp2p", ["sensors/readings"], ["sensors/commands"], 1,
                                                             M.BUFFER_MAX)
    assert d.device_wills == M.DEVICE_WILLS == 256


def test_config_errors_name_the_key(tmp_path):
    base = {"url": "mqtt://127.0.0.1:1999"}
    cases = [({"url": "mqtt://h", "bogus": 1}, "mqtt.bogus: unknown key"),
             ({"url": 5}, "mqtt.url must be a string"),
             ({"url": "mqtt://h", "qos": "1"}, "mqtt.qos must be an integer"),
             ({"url": "mqtt://h", "qos": True}, "mqtt.qos must be an integer"),
             ({"url": "mqtt://h", "qos": 3}, "mqtt.qos must be an integer from 0 to 2"),
             ({"url": "mqtt://h", "out": "sensors/readings"}, "mqtt.out must be a list"),
             ({"url": "mqtt://h", "in": [1]}, "mqtt.in[0] must be a string"),
             ({"url": "mqtt://h", "username": "u", "password": 123456789}, "mqtt.password must be a string"),
             ({"url": "http://h"}, "mqtt.url"),
             ({"url": "mqtt://u:p@h"}, "no credentials in the URL"),
             ({"url": "mqtt://h:99999"}, "bad port"),
             ({}, "mqtt.url (or mqtt.urls) is required"),
             ({"url": "mqtt://h", "urls": ["mqtt://h"]}, "not both"),
             ({"url": "mqtt://h", "out": ["a"], "in": ["a"]}, "overlap"),
             ({"url": "mqtt://h", "out": ["a/#"]}, "wildcard"),
             ({"url": "mqtt://h", "prefix": "/x"}, "mqtt.prefix"),
             ({"url": "mqtt://h", "raw": ["zz"]}, "mqtt.raw"),
             ({"url": "mqtt://h", "out": ["devices/x"]}, "status topics"),
             ({"url": "mqtt://h", "username": "u", "password_env": "NOPE"}, "NOPE is not set"),
             ({"url": "mqtt://h", "password": "p"}, "needs mqtt.username"),
             ({"url": "mqtt://h", "username": "u", "password": "p", "password_env": "X"}, "give one"),
             ({"url": "mqtts://h", "ca_file": "missing.pem"}, "mqtt.ca_file: no such file"),
             ({"url": "mqtt://h", "buffer_max": 0}, "mqtt.buffer_max"),
             ({"url": "mqtt://h", "device_wills": -1}, "mqtt.device_wills must be an integer from 0"),
             ({"url": "mqtt://h", "device_wills": M.DEVICE_WILLS_LIMIT + 1}, "mqtt.device_wills"),
             ({"url": "mqtt://h", "device_wills": 1.5}, "mqtt.device_wills must be an integer"),
             (dict(base, client_id=""), "mqtt.client_id")]
    for d, words in cases:
        msg = _err(d, base=str(tmp_path))
        assert words in msg, (d, msg)
        assert "123456789" not in msg      # a credential is never quoted back
    (tmp_path / "ca.pem").write_text("x")
    assert "need an mqtts://" in _err({"url": "mqtt://h", "ca_file": "ca.pem"}, base=str(tmp_path))


def test_schema_matches_the_host_config_module():
    from microp2p_host import config as hc
    s = M.schema()
    assert set(s) == {"url", "urls", "prefix", "out", "in", "raw", "qos", "username", "password", "password_env",
                      "ca_file", "cert_file", "key_file", "client_id", "buffer_max", "device_wills"}
    hc.check({"mqtt": {"url": "mqtt://h", "qos": 1, "out": ["a"]}}, {"mqtt": s})


def test_gateway_config_mqtt_section(tmp_path):
    base = {"network": {"listen": ["/ip4/127.0.0.1/tcp/0"]}}
    c = GatewayConfig.from_dict(dict(base, mqtt={"url": "mqtt://127.0.0.1:1999", "out": ["extra/topic"]}))
    assert c.mqtt.out == ["extra/topic"] and "extra/topic" in c.topics   # bridged topics are subscribed
    try:
        GatewayConfig.from_dict(dict(base, mqtt={"url": "mqtt://h", "qos": "x"}))
        raise AssertionError("accepted")
    except ConfigError as e:
        assert "mqtt.qos" in str(e)
    assert GatewayConfig.from_dict(base).mqtt is None
    c = GatewayConfig.from_dict(dict(base, mqtt={"url": "mqtt://127.0.0.1:1999", "device_wills": 16}))
    assert c.mqtt.device_wills == 16


def test_command_bounds_match_the_device_app():
    from sensor_node import app
    assert (M.MIN_INTERVAL_MS, M.MAX_INTERVAL_MS) == (app.MIN_INTERVAL_MS, app.MAX_INTERVAL_MS)


def test_parse_command_shapes():
    dev = str(_pid())
    assert M.parse_command(b'{"cmd":"interval","ms":500}') == {"cmd": "interval", "ms": 500}
    assert M.parse_command(b'{"cmd":"ping"}', dev) == {"cmd": "ping", "to": dev}
    assert M.parse_command(('{"cmd":"ping","to":"%s"}' % dev).encode()) == {"cmd": "ping", "to": dev}
    assert M.parse_command(b'{"cmd":"ping","to":"*"}') == {"cmd": "ping", "to": "*"}
    bad = [(b"{", "invalid JSON"), (b"\xff\xfe", "invalid JSON"), (b"[1,2]", "not a JSON object"),
           (b'"ping"', "not a JSON object"), (b"{}", "cmd must be a string"),
           (b'{"cmd":"reboot"}', "unknown command"), (b'{"cmd":"interval"}', "ms must be an integer"),
           (b'{"cmd":"interval","ms":"5"}', "ms must be an integer"),
           (b'{"cmd":"interval","ms":true}', "ms must be an integer"),
           (b'{"cmd":"interval","ms":1.5}', "ms must be an integer"),
           (b'{"cmd":"interval","ms":10}', "ms must be 50.."),
           (b'{"cmd":"interval","ms":99999999999}', "ms must be 50.."),
           (b'{"cmd":"ping","extra":1}', "unknown field"), (b'{"cmd":"ping","to":7}', "to must be"),
           (b'{"cmd":"ping","to":"nope"}', "not a peer id"),
           (b'{"cmd":"ping","pad":"' + b"x" * M.COMMAND_MAX_BYTES + b'"}', "payload over")]
    for payload, words in bad:
        try:
            M.parse_command(payload)
            raise AssertionError("accepted %r" % payload[:40])
        except M.CommandError as e:
            assert words in str(e), (payload[:40], str(e))
    other = str(_pid())
    try:
        M.parse_command(('{"cmd":"ping","to":"%s"}' % other).encode(), dev)
        raise AssertionError("accepted a mismatched to")
    except M.CommandError as e:
        assert "does not match" in str(e)


def test_reading_payload():
    author = str(_pid())
    r = json.loads(M.reading_payload(author, b"\x01\x02", cbor2.dumps({"dev": author, "seq": 3, "v": 21.5,
                                                                         "raw": b"\x00\xff", 7: float("nan")}), False))
    assert r == {"from": author, "seqno": "0102", "verified": True,
                 "data": {"dev": author, "seq": 3, "v": 21.5, "raw": "AP8=", "7": None}}
    r = json.loads(M.reading_payload(author, b"\x09", b"\xde\xad", True))
    assert r["dataB64"] == base64.b64encode(b"\xde\xad").decode() and "data" not in r
    # not a CBOR map on a CBOR topic: kept as bytes, not dropped
    r = json.loads(M.reading_payload(author, b"\x09", cbor2.dumps([1, 2]), False))
    assert r["dataB64"] == base64.b64encode(cbor2.dumps([1, 2])).decode()


class _FakePubSub:
    def __init__(self):
        self.published = []

    def publish(self, topic, data):
        self.published.append((topic, cbor2.loads(data)))


class _FakeGateway:
    def __init__(self, devices=2):
        self.peer_id = str(_pid())
        self.devices = {}
        for i in range(devices):
            p = str(_pid())
            self.devices[p] = DeviceState(p, "d%d" % i)
        self.events = []
        self.pubsub = _FakePubSub()

    def emit(self, name, fields=None):
        self.events.append(dict(fields or {}, event=name))

    def named(self, name):
        return [e for e in self.events if e["event"] == name]


def _bridge(gw, **cfg):
    c = M.MqttConfig.from_dict(dict({"url": "mqtt://127.0.0.1:1999", "prefix": "p"}, **cfg), ".", {})
    return M.MqttBridge(c, gw)


def _msg(author_pid, seqno, data):
    return {"from": author_pid.to_bytes(), "seqno": seqno, "data": data}


def test_out_dedupe_own_unverified_and_topics():
    async def body():
        gw = _FakeGateway()
        b = _bridge(gw)
        dev = PeerId.from_string(next(iter(gw.devices)))
        data = cbor2.dumps({"seq": 1})
        b.on_gossip("sensors/readings", _msg(dev, b"\x00\x01", data), True)
        b.on_gossip("sensors/readings", _msg(dev, b"\x00\x01", data), True)     # a replay
        b.on_gossip("sensors/readings", _msg(dev, b"\x00\x02", data), False)    # not verified
        b.on_gossip("sensors/commands", _msg(dev, b"\x00\x03", data), True)     # not an out topic
        b.on_gossip("sensors/readings", _msg(PeerId.from_string(gw.peer_id), b"\x00\x04", data), True)  # our own
        assert len(b.outbox) == 1
        e = b.outbox[0]
        assert e.topic == "p/sensors/readings/%s" % dev
        assert json.loads(e.payload)["data"] == {"seq": 1}
        assert b.counters["duplicates"] == 1 and b.counters["unverified"] == 1
        # the dedupe cache is bounded (a small cap for the test)
        saved, M.DEDUPE_MAX = M.DEDUPE_MAX, 50
        try:
            for i in range(120):
                b.on_gossip("sensors/readings", _msg(dev, (100 + i).to_bytes(8, "big"), data), True)
            assert len(b.seen) == 50
            # the oldest were forgotten: a very late replay of one goes out again (bounded memory
            # wins over dedupe beyond the cap; gossip's own seen cache covers the recent past)
            n = len(b.outbox)
            b.on_gossip("sensors/readings", _msg(dev, (100).to_bytes(8, "big"), data), True)
            assert len(b.outbox) == n + 1
        finally:
            M.DEDUPE_MAX = saved
    asyncio.run(body())


def test_outbox_bounded_drops_oldest_and_reports():
    async def body():
        gw = _FakeGateway()
        b = _bridge(gw, buffer_max=5)
        dev = PeerId.from_string(next(iter(gw.devices)))
        for i in range(12):
            b.on_gossip("sensors/readings", _msg(dev, i.to_bytes(8, "big"), cbor2.dumps({"seq": i})), True)
        assert [json.loads(e.payload)["data"]["seq"] for e in b.outbox] == [7, 8, 9, 10, 11]
        assert b.stats()["dropped"] == 7 and b.stats()["buffered"] == 5
        drops = gw.named("mqtt:dropped")
        assert drops and drops[0]["bufferMax"] == 5     # reported at once, then at most once per second
        b._report_drops(final=True)
        assert sum(e["dropped"] for e in gw.named("mqtt:dropped")) == 7
    asyncio.run(body())


def test_commands_in_validated_published_and_loop_guarded():
    async def body():
        gw = _FakeGateway()
        b = _bridge(gw)
        dev = next(iter(gw.devices))
        assert b.handle_command("p/sensors/commands", b'{"cmd":"interval","ms":250}') == {"cmd": "interval", "ms": 250}
        assert b.handle_command("p/sensors/commands/" + dev, b'{"cmd":"ping"}') == {"cmd": "ping", "to": dev}
        assert gw.pubsub.published == [("sensors/commands", {"cmd": "interval", "ms": 250}),
                                       ("sensors/commands", {"cmd": "ping", "to": dev})]

        class Props:
            UserProperty = [(M.ORIGIN_PROPERTY, "gateway/other")]
        rejected = [("p/sensors/commands", b'{"cmd":"ping"}', True, None, "retained"),
                    ("p/sensors/commands", b'{"cmd":"ping"}', False, Props(), "loop"),
                    ("p/sensors/commands/" + str(_pid()), b'{"cmd":"ping"}', False, None, "unknown device"),
                    ("p/sensors/commands/not-a-peer", b'{"cmd":"ping"}', False, None, "not a peer id"),
                    ("p/sensors/commands/a/b", b'{"cmd":"ping"}', False, None, "not a command topic"),
                    ("p/sensors/commands", b"\x00garbage", False, None, "invalid JSON")]
        for topic, payload, retain, props, words in rejected:
            n = len(gw.named("mqtt:rejected"))
            assert b.handle_command(topic, payload, retain, props) is None
            ev = gw.named("mqtt:rejected")[n:]
            assert len(ev) == 1 and words in ev[0]["reason"], (topic, ev)
        assert len(gw.pubsub.published) == 2       # nothing more reached gossip
        assert b.stats()["loopsDropped"] == 1 and b.stats()["rejected"] == len(rejected)
    asyncio.run(body())


def test_metrics_families():
    async def body():
        gw = _FakeGateway()
        b = _bridge(gw, buffer_max=2)
        dev = PeerId.from_string(next(iter(gw.devices)))
        for i in range(3):
            b.on_gossip("sensors/readings", _msg(dev, bytes([i]), cbor2.dumps({"seq": i})), True)
        fams = {f.name: f for f in b.metrics_families()}
        assert fams["microp2p_mqtt_connected"].samples[0].value == 0
        assert fams["microp2p_mqtt_buffered"].samples[0].value == 2
        ev = {s.labels["kind"]: s.value for s in fams["microp2p_mqtt_events"].samples}
        assert ev["dropped"] == 1 and ev["published"] == 0
    asyncio.run(body())


def test_command_rate_bounded():
    async def body():
        gw = _FakeGateway()
        b = _bridge(gw)
        for _ in range(M.COMMAND_BURST + 5):
            b.handle_command("p/sensors/commands", b'{"cmd":"ping"}')
        assert len(gw.pubsub.published) == M.COMMAND_BURST
        rej = gw.named("mqtt:rejected")
        assert len(rej) == 5 and all("rate limit" in e["reason"] for e in rej)
        b._cmd_refill_at -= 1.0   # a second later the bucket has refilled (COMMAND_RATE_PER_S)
        b.handle_command("p/sensors/commands", b'{"cmd":"ping"}')
        assert len(gw.pubsub.published) == M.COMMAND_BURST + 1
    asyncio.run(body())


def test_statuses_and_will_payloads():
    async def body():
        gw = _FakeGateway(devices=1)
        b = _bridge(gw)
        pid, d = next(iter(gw.devices.items()))
        d.state, d.link, d.connects = "connected", "serial", 2
        st = json.loads(b._device_status(pid))
        assert (st["status"], st["link"], st["gateway"], st["connects"]) == ("online", "serial", gw.peer_id, 2)
        off = json.loads(b._device_status(pid, offline=True))
        assert off["status"] == "offline" and "reason" not in off and set(off) == set(st)   # the shape is kept
        # the will of the device's session, and the clean-exit status, say why
        will = json.loads(b._device_status(pid, offline=True, reason="gateway connection lost"))
        assert (will["status"], will["reason"], will["peer"], will["gateway"]) == (
            "offline", "gateway connection lost", pid, gw.peer_id)
        assert set(will) == set(st) | {"reason"}
        assert "reason" not in json.loads(b._device_status(pid, reason="stopped"))   # never on an online status
        assert [json.loads(p)["reason"] for _, p in b._all_statuses(offline=True, reason="stopped")] == ["stopped"]
        assert b._all_statuses(skip={pid}) == []
        assert b.gw_status_topic == "p/gateways/%s/status" % gw.peer_id
        topics = [t for t, _ in b._all_statuses()]
        assert topics == ["p/devices/%s/status" % pid]
        assert json.loads(b._gateway_status("offline", "connection lost"))["reason"] == "connection lost"
    asyncio.run(body())


def _settle():
    async def turns(n=20):
        for _ in range(n):
            await asyncio.sleep(0)
    return turns()


def test_will_sessions_bounded_over_cap_counted_and_promoted():
    """device_wills = 1 with three devices online: one will session, two over the cap (counted,
    their statuses left to the main connection); when the session's device leaves, the slot
    goes to the longest-waiting device. No broker: sessions wait for the main connection."""
    async def body():
        gw = _FakeGateway(devices=3)
        b = _bridge(gw, device_wills=1)
        pids = list(gw.devices)
        for p in pids:
            gw.devices[p].state = "connected"
            b.device_changed(p)
        try:
            assert list(b.sessions) == [pids[0]] and list(b._over_cap) == pids[1:]
            assert b.stats()["willOverCap"] == 2 and b.stats()["willSessions"] == 0   # none connected
            # the main connection publishes the statuses of the devices without a session only
            sent = []

            async def capture(client, items):
                sent.extend(items)
            b._publish_retained = capture
            await b._send_statuses(None)
            assert sorted(t for t, _ in sent) == sorted(b._status_topic(p) for p in pids[1:])
            # the first device leaves: its session (never connected) ends, the main connection
            # publishes its offline status, and the slot goes to the next device in line
            gw.devices[pids[0]].state = "disconnected"
            b.device_changed(pids[0])
            await _settle()
            assert list(b.sessions) == [pids[1]] and list(b._over_cap) == [pids[2]]
            assert pids[0] in b.status_dirty
            # an over-cap device that leaves is no longer in line
            gw.devices[pids[2]].state = "disconnected"
            b.device_changed(pids[2])
            assert not b._over_cap
            assert b.stats()["willOverCap"] == 2
            # device_wills = 0: no sessions at all
            b0 = _bridge(_FakeGateway(devices=1), device_wills=0)
            p0, d0 = next(iter(b0.gw.devices.items()))
            d0.state = "connected"
            b0.device_changed(p0)
            assert not b0.sessions and not b0._over_cap and b0.stats()["willOverCap"] == 0
        finally:
            b._stopping = True
            for s in list(b.sessions.values()):
                s.task.cancel()
            await _settle()
    asyncio.run(body())


def test_stale_statuses_of_an_earlier_run():
    """Retained statuses read at (re)connect: only an "online" one naming this gateway for a
    device it no longer knows is set offline (reason "gateway restarted", the rest kept)."""
    async def body():
        gw = _FakeGateway(devices=1)
        b = _bridge(gw)
        known = next(iter(gw.devices))
        gone, other = str(_pid()), str(_pid())

        def st(pid, status="online", gateway=gw.peer_id, **kw):
            return json.dumps(dict({"status": status, "peer": pid, "name": "x", "gateway": gateway, "link": "tcp",
                                    "state": "connected", "lastSeen": 1.0, "connects": 3, "msgsIn": 7,
                                    "msgsOut": 1, "ts": 1.0}, **kw)).encode()
        b._check_stale(b._status_topic(known), st(known))                        # allow-listed: republished anyway
        b._check_stale(b._status_topic(other), st(other, gateway=str(_pid())))   # another gateway's device
        b._check_stale(b._status_topic(other), st(other, status="offline"))
        b._check_stale(b._status_topic(other), b"not json")
        b._check_stale(b._status_topic(other), b"x" * (M.STATUS_PAYLOAD_MAX + 1))
        b._check_stale("p/devices/%s/status/extra" % other, st(other))
        b._check_stale("q/devices/%s/status" % other, st(other))
        assert b._stale_out == []
        b._check_stale(b._status_topic(gone), st(gone))
        [(topic, payload)] = b._stale_out
        got = json.loads(payload)
        assert topic == "p/devices/%s/status" % gone
        assert (got["status"], got["reason"], got["msgsIn"], got["peer"]) == ("offline", "gateway restarted", 7, gone)
        assert got["ts"] > 1.0 and b.stats()["staleCleared"] == 1
        # bounded: at most STALE_SCAN_MAX examined per (re)connect
        b._stale_seen = M.STALE_SCAN_MAX
        b._check_stale(b._status_topic(other), st(other))
        assert len(b._stale_out) == 1
    asyncio.run(body())
