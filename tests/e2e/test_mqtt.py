# The MQTT bridge end to end: a private Mosquitto (generated config, free 127.0.0.1 port), the
# real gateway process with [mqtt], real MicroPython devices (sensor_node over TCP and an
# emulated serial line), and aiomqtt clients as the outside MQTT world. Every wait is bounded and
# waits for an event (an MQTT message, a gateway or device event line).
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import aiomqtt

from microp2p_host.bridge.mqtt import INFLIGHT_MAX, ORIGIN_PROPERTY
from microp2p_host.emulate import Fleet, Proc, QUIESCE_INTERVAL_MS
from microp2p_host.mosquitto import Mosquitto

PREFIX = "t"
READINGS = "sensors/readings"
COMMANDS = "sensors/commands"
TEST_TIMEOUT_S = 170
WAIT_S = 20


def _run(coro, timeout=TEST_TIMEOUT_S):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _log(msg):
    print("[%.1f] %s" % (time.monotonic() % 1000, msg), flush=True)


class Sub:
    """An MQTT subscriber that keeps every message (topic, JSON payload, retain, origin) and
    reconnects when the broker goes away. persistent=True: an MQTT 3.1.1 persistent session
    (clean_session false, fixed client id), so a broker with persistence keeps what arrives
    for it while it is offline."""

    def __init__(self, port, topics, ident=None, persistent=False, v5=True):
        self.port, self.topics, self.ident, self.persistent = port, topics, ident, persistent
        self.v5 = v5 and not persistent
        self.msgs = []
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = None

    def start(self):
        self._task = asyncio.ensure_future(self._loop())
        return self

    async def _loop(self):
        while True:
            kw = dict(identifier=self.ident)
            if self.v5:
                kw["protocol"] = aiomqtt.ProtocolVersion.V5
            else:
                kw.update(protocol=aiomqtt.ProtocolVersion.V311, clean_session=not self.persistent)
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, **kw) as c:
                    for t in self.topics:
                        await c.subscribe(t, qos=1)
                    self.subscribed.set()
                    async for m in c.messages:
                        ups = getattr(m.properties, "UserProperty", None) or []
                        origin = dict(ups).get(ORIGIN_PROPERTY)
                        try:
                            payload = json.loads(m.payload) if m.payload else None
                        except ValueError:
                            payload = m.payload
                        self.msgs.append((m.topic.value, payload, m.retain, origin))
                        self._changed.set()
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.1)   # broker down: retry its port

    async def wait(self, pred, timeout=WAIT_S, what="messages"):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.0f s (%d messages)" % (what, timeout, len(self.msgs)))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def on(self, prefix):
        return [m for m in self.msgs if m[0].startswith(prefix)]

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


async def _retained(port, topic_filter, n, timeout=WAIT_S):
    """The retained messages a fresh client gets for topic_filter (waits for n of them)."""
    s = Sub(port, [topic_filter]).start()
    try:
        await s.wait(lambda: len(s.msgs) >= n, timeout, "%d retained on %s" % (n, topic_filter))
        return {m[0]: m for m in s.msgs}
    finally:
        await s.close()


def _readings(sub):
    """peer id -> [(seq, payload)] in arrival order, each payload checked against its topic."""
    out = {}
    for topic, p, retain, origin in sub.on("%s/%s/" % (PREFIX, READINGS)):
        pid = topic.rsplit("/", 1)[1]
        assert p["from"] == pid and p["data"]["dev"] == pid and p["verified"] is True, (topic, p)
        assert not retain
        out.setdefault(pid, []).append((p["data"]["seq"], p))
    return out


async def _publish(port, topic, payload, retain=False):
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.publish(topic, payload, qos=1, retain=retain)


def _cmds(dev, name=None):
    return [e for e in dev.commands if name is None or e.get("cmd") == name]


def test_mqtt_readings_statuses_commands_and_bad_input():
    mq = Mosquitto().start()
    fleet = Fleet(n_tcp=2, n_serial=1, interval_ms=300, mqtt={"url": mq.url, "prefix": PREFIX}, log=_log)

    async def scenario():
        sub = Sub(mq.port, ["%s/#" % PREFIX]).start()
        try:
            await asyncio.wait_for(sub.subscribed.wait(), WAIT_S)
            cmd_topic = "%s/%s" % (PREFIX, COMMANDS)
            # a retained command, there before the gateway connects: it would run again on every
            # (re)subscribe, so the bridge refuses retained deliveries
            await _publish(mq.port, cmd_topic, b'{"cmd":"ping"}', retain=True)
            await fleet.start()
            await fleet.wait_connected()
            gw = fleet.gateway
            await gw.wait_for("mqtt:connected")
            await gw.wait_for("mqtt:rejected", lambda e: "retained" in e["reason"])
            await _publish(mq.port, cmd_topic, b"", retain=True)   # clear it (an empty payload: rejected too)
            await gw.wait_for("mqtt:rejected", lambda e: "invalid JSON" in e["reason"])
            devs = fleet.devices
            await sub.wait(lambda: all(len(_readings(sub).get(d.peer_id, ())) >= 3 for d in devs), what="readings")

            # the serial cable is pulled long enough for the link to drop: the device's status goes
            # offline on MQTT, and back online after the replug; the device then replays its recent
            # messages (gossip drops the copies it has seen; the bridge dedupes the rest), so the
            # exactly-once check at the end covers a reconnect replay
            ser = fleet.device("serial-1")
            status_topic = "%s/devices/%s/status" % (PREFIX, ser.peer_id)

            def status_is(v):
                return lambda: any(m[0] == status_topic and m[1]["status"] == v for m in sub.msgs[n_before:])
            n_before = len(sub.msgs)
            ser.line.unplug(True)
            await ser.wait_for("disconnected", timeout=WAIT_S)
            await sub.wait(status_is("offline"), what="serial-1 offline")
            n_before = len(sub.msgs)
            ser.line.unplug(False)
            await ser.wait_for("connected", lambda e: True, timeout=WAIT_S, past=False)
            await sub.wait(status_is("online"), what="serial-1 online again")
            await ser.wait_for("replayed", timeout=WAIT_S)

            # bad input: each rejected with a reason, nothing reaches gossip, the bridge goes on
            bad = [(cmd_topic, b"{not json", "invalid JSON"),
                   (cmd_topic, json.dumps({"cmd": "ping", "pad": "x" * 4000}).encode(), "payload over"),
                   (cmd_topic, b'{"cmd":"selfdestruct"}', "unknown command"),
                   (cmd_topic, b'{"cmd":"interval","ms":"fast"}', "ms must be an integer"),
                   (cmd_topic, b'{"cmd":"interval","ms":1}', "ms must be"),
                   (cmd_topic, b'[{"cmd":"ping"}]', "not a JSON object"),
                   (cmd_topic + "/12D3KooWnotapeer", b'{"cmd":"ping"}', "not a peer id"),
                   (cmd_topic + "/" + fleet.gateway_id, b'{"cmd":"ping"}', "unknown device")]
            for topic, payload, _ in bad:
                await _publish(mq.port, topic, payload)
            await gw.wait_for("mqtt:rejected", lambda e: "unknown device" in e["reason"])
            reasons = [e["reason"] for e in gw.named("mqtt:rejected")][2:]
            assert len(reasons) == len(bad), reasons
            for (_, _, words), r in zip(bad, reasons):
                assert words in r, (words, r)

            # a command for every device, signed by the gateway (devices accept their gateway)
            await _publish(mq.port, cmd_topic, b'{"cmd":"interval","ms":250}')
            for d in devs:
                ev = await d.wait_for("command", lambda e: e.get("ms") == 250, timeout=WAIT_S)
                assert ev["from"] == fleet.gateway_id
            # one device only: a ping on .../<peer id>; then a broadcast that, arriving after it
            # on the same gossip path, shows the others never got the ping
            await _publish(mq.port, cmd_topic + "/" + devs[0].peer_id, b'{"cmd":"ping"}')
            await devs[0].wait_for("command", lambda e: e.get("cmd") == "ping", timeout=WAIT_S)
            await _publish(mq.port, cmd_topic, b'{"cmd":"interval","ms":260}')
            for d in devs:
                await d.wait_for("command", lambda e: e.get("ms") == 260, timeout=WAIT_S)
            assert [len(_cmds(d, "ping")) for d in devs] == [1, 0, 0]
            assert all([e.get("ms") for e in _cmds(d, "interval")] == [250, 260] for d in devs)
            assert not any(d.named("command_rejected") for d in devs)

            # stop sampling, then every published reading must be on MQTT exactly once
            await _publish(mq.port, cmd_topic, json.dumps({"cmd": "interval", "ms": QUIESCE_INTERVAL_MS}).encode())
            for d in devs:
                await d.wait_for("command", lambda e: e.get("ms") == QUIESCE_INTERVAL_MS, timeout=WAIT_S)

            def complete():
                got = _readings(sub)
                return all({s for _, s in d.published} <= {s for s, _ in got.get(d.peer_id, ())} for d in devs)
            await sub.wait(complete, what="every published reading")
            got = _readings(sub)
            for d in devs:
                seqs = [s for s, _ in got[d.peer_id]]
                published = [s for _, s in d.published]
                assert sorted(seqs) == sorted(published), (d.name, seqs, published)   # exactly once
                assert seqs == sorted(seqs), "%s: out of order" % d.name
                seqnos = [p["seqno"] for _, p in got[d.peer_id]]
                assert len(set(seqnos)) == len(seqnos)
                assert len(published) >= 3
            assert set(got) == {d.peer_id for d in devs}
            # everything the gateway published carries its origin tag
            assert {m[3] for m in sub.msgs if not m[0].startswith(cmd_topic)} == {"gateway/" + fleet.gateway_id}

            # retained statuses, as a newcomer sees them
            st = await _retained(mq.port, "%s/devices/+/status" % PREFIX, len(devs))
            for d in devs:
                topic, p, retain, _ = st["%s/devices/%s/status" % (PREFIX, d.peer_id)]
                assert retain and p["status"] == "online" and p["gateway"] == fleet.gateway_id, p
                assert p["link"] == d.link and p["name"] == d.name and p["connects"] >= 1, p
            gst = await _retained(mq.port, "%s/gateways/+/status" % PREFIX, 1)
            assert gst["%s/gateways/%s/status" % (PREFIX, fleet.gateway_id)][1]["status"] == "online"

            # clean gateway exit with the devices still up: every status flips offline
            await gw.stop(signal.SIGTERM)
            st = await _retained(mq.port, "%s/devices/+/status" % PREFIX, len(devs))
            assert all(m[1]["status"] == "offline" and m[2] for m in st.values()), st
            gst = await _retained(mq.port, "%s/gateways/+/status" % PREFIX, 1)
            g = gst["%s/gateways/%s/status" % (PREFIX, fleet.gateway_id)][1]
            assert (g["status"], g["reason"]) == ("offline", "stopped")
            stopped = gw.named("stopped")[-1]["mqtt"]
            assert stopped["published"] == sum(len(d.published) for d in devs)
            assert stopped["rejected"] == len(bad) + 2 and stopped["commands"] == 4 and stopped["dropped"] == 0
        finally:
            await sub.close()
            await fleet.stop()

    try:
        _run(scenario())
    finally:
        fleet.cleanup()
        mq.close()


def test_mqtt_broker_restart_buffer_overflow_and_last_will():
    """Broker down twice: once within the gateway's buffer bound (nothing lost), once past it
    (the oldest waiting readings dropped, counted, reported); then the gateway is killed and its
    last will marks it offline."""
    mq = Mosquitto(persistence=True).start()   # keeps the subscriber's session over restarts
    buffer_max = 40
    fleet = Fleet(n_tcp=2, interval_ms=100, stats_interval_s=0.25, log=_log,
                  mqtt={"url": mq.url, "prefix": PREFIX, "buffer_max": buffer_max})

    async def scenario():
        sub = Sub(mq.port, ["%s/%s/+" % (PREFIX, READINGS)], ident="test-sub", persistent=True).start()
        try:
            await asyncio.wait_for(sub.subscribed.wait(), WAIT_S)
            await fleet.start()
            await fleet.wait_connected()
            gw = fleet.gateway
            devs = fleet.devices
            await gw.wait_for("mqtt:connected")
            await sub.wait(lambda: sum(len(v) for v in _readings(sub).values()) >= 10, what="first readings")

            def stats_mqtt(pred):
                return gw.wait_for("stats", lambda e: pred(e["mqtt"]), timeout=WAIT_S, past=False)

            # 1. within the bound
            mq.stop()
            await gw.wait_for("mqtt:disconnected", timeout=WAIT_S)
            await stats_mqtt(lambda m: m["buffered"] >= 10)
            mq.start()
            await gw.wait_for("mqtt:connected", past=False)
            await stats_mqtt(lambda m: m["buffered"] == 0 and m["connected"])
            assert gw.named("stats")[-1]["mqtt"]["dropped"] == 0
            _log("outage 1: reconnected, buffer drained, nothing dropped")

            # 2. past the bound
            marks = {}
            marks["stop"] = {d.peer_id: len(d.published) for d in devs}
            mq.stop()
            await gw.wait_for("mqtt:disconnected", past=False)
            await gw.wait_for("mqtt:dropped", timeout=WAIT_S, past=False)
            await stats_mqtt(lambda m: m["dropped"] >= 20)
            marks["start"] = {d.peer_id: len(d.published) for d in devs}
            mq.start()
            ev = await gw.wait_for("mqtt:connected", past=False)
            assert 0 < ev["buffered"] <= buffer_max

            # quiesce through MQTT (the command goes in while readings go out)
            await _publish(mq.port, "%s/%s" % (PREFIX, COMMANDS),
                           json.dumps({"cmd": "interval", "ms": QUIESCE_INTERVAL_MS}).encode())
            for d in devs:
                await d.wait_for("command", lambda e: e.get("ms") == QUIESCE_INTERVAL_MS, timeout=WAIT_S)
            final = await stats_mqtt(lambda m: m["buffered"] == 0 and m["connected"]
                                     and m["published"] + m["dropped"] >= sum(len(d.published) for d in devs))
            m = final["mqtt"]
            total = sum(len(d.published) for d in devs)
            await sub.wait(lambda: sum(len({s for s, _ in v}) for v in _readings(sub).values()) >= total - m["dropped"],
                           what="all readings not dropped")
            got = _readings(sub)
            dups = 0
            missing_total = 0
            for d in devs:
                seqs = [s for s, _ in got.get(d.peer_id, ())]
                first = []
                for s in seqs:
                    if s in first:
                        dups += 1
                    else:
                        first.append(s)
                assert first == sorted(first), "%s: out of order" % d.name
                published = [s for _, s in d.published]
                missing = set(published) - set(first)
                missing_total += len(missing)
                # only readings of the second outage (and the few in flight as it began) are gone
                lo = published[max(0, marks["stop"][d.peer_id] - INFLIGHT_MAX)]
                hi = published[marks["start"][d.peer_id] - 1] if marks["start"][d.peer_id] else 0
                assert all(lo <= s <= hi for s in missing), (d.name, sorted(missing), lo, hi)
                assert set(first) <= set(published)
            _log("outage 2: dropped %d (counted %d), duplicates %d, readings %d" % (
                missing_total, m["dropped"], dups, total))
            assert missing_total == m["dropped"] > 0
            assert dups <= INFLIGHT_MAX       # QoS 1 is at least once: only re-sent unacked ones
            assert m["reconnects"] >= 2

            # 3. the gateway dies: the broker publishes its will (retained)
            gs = Sub(mq.port, ["%s/gateways/%s/status" % (PREFIX, fleet.gateway_id)]).start()
            try:
                await gs.wait(lambda: any(x[1]["status"] == "online" for x in gs.msgs), what="gateway online")
                await gw.stop(signal.SIGKILL)
                await gs.wait(lambda: any(x[1]["status"] == "offline" for x in gs.msgs), what="the last will")
                will = [x for x in gs.msgs if x[1]["status"] == "offline"][0][1]
                assert will["reason"] == "connection lost" and will["gateway"] == fleet.gateway_id
            finally:
                await gs.close()
            gst = await _retained(mq.port, "%s/gateways/+/status" % PREFIX, 1)
            assert gst["%s/gateways/%s/status" % (PREFIX, fleet.gateway_id)][1]["status"] == "offline"
            st = await _retained(mq.port, "%s/devices/+/status" % PREFIX, len(devs))
            assert all(x[1]["gateway"] == fleet.gateway_id for x in st.values())   # read with the gateway's
        finally:
            await sub.close()
            await fleet.stop()

    try:
        _run(scenario())
    finally:
        fleet.cleanup()
        mq.close()


def _since(proc):
    """A wait_for predicate: only events that arrive from now on (wait_for(past=True) with it
    also sees the ones that arrived before the wait started)."""
    old = {id(e) for e in proc.events}
    return lambda e: id(e) not in old


def _rewrite_gateway_config(fleet, allowed, **mqtt):
    """The fleet's gateway config for a restart: the device listener on the port it had (the
    devices dial that address again), `allowed` devices only, [mqtt] keys changed."""
    fleet.mqtt = dict(fleet.mqtt, **mqtt)
    fleet._write_gateway_config([(d.peer_id, d.name) for d in allowed])
    path = fleet.dir / "gateway.toml"
    port = fleet.device_addr.split("/tcp/")[1].split("/")[0]
    old = '[devices]\nlisten = ["/ip4/127.0.0.1/tcp/0"]'
    text = path.read_text()
    assert text.count(old) == 1, text
    path.write_text(text.replace(old, '[devices]\nlisten = ["/ip4/127.0.0.1/tcp/%s"]' % port))


def test_mqtt_device_statuses_go_offline_by_their_wills_when_the_gateway_is_killed():
    """Each online device's status has a last will of its own (its will session): kill -9 of the
    gateway flips every device's retained status to offline through the broker. Then, restarted
    with device_wills = 1, one device has a will and the two others are over the cap (counted):
    a kill leaves those two "online" (the documented fallback). A restart that no longer allows
    one of them sets its left-over status offline, and the others come back online."""
    mq = Mosquitto().start()
    fleet = Fleet(n_tcp=2, n_serial=1, interval_ms=500, stats_interval_s=0.25, log=_log,
                  mqtt={"url": mq.url, "prefix": PREFIX})
    status_filter = "%s/devices/+/status" % PREFIX

    async def scenario():
        sub = Sub(mq.port, [status_filter]).start()

        def statuses(dev, since):
            return [m[1] for m in sub.msgs[since:] if m[0] == "%s/devices/%s/status" % (PREFIX, dev.peer_id)]

        def all_online(devs, since):
            return lambda: all(any(x["status"] == "online" for x in statuses(d, since)) for d in devs)

        async def restart(gw, devs):
            marks = [_since(d) for d in devs]
            mark = _since(gw)
            n = len(sub.msgs)
            await gw.start()
            await gw.wait_for("mqtt:connected", mark, timeout=WAIT_S)
            for d, m in zip(devs, marks):
                await d.wait_for("connected", m, timeout=WAIT_S)
            return mark, n
        try:
            await asyncio.wait_for(sub.subscribed.wait(), WAIT_S)
            await fleet.start()
            await fleet.wait_connected()
            gw = fleet.gateway
            devs = fleet.devices

            # 1. every device online, each with its will armed on a session of its own
            await gw.wait_for("stats", lambda e: e["mqtt"]["willSessions"] == len(devs), timeout=WAIT_S)
            await sub.wait(all_online(devs, 0), what="every device online")
            st = await _retained(mq.port, status_filter, len(devs))
            assert all(m[1]["status"] == "online" and m[2] for m in st.values()), st
            n = len(sub.msgs)
            await gw.stop(signal.SIGKILL)
            _log("gateway killed")
            await sub.wait(lambda: all(any(x["status"] == "offline" for x in statuses(d, n)) for d in devs),
                           what="every device's will")
            st = await _retained(mq.port, status_filter, len(devs))
            for d in devs:
                topic, p, retain, origin = st["%s/devices/%s/status" % (PREFIX, d.peer_id)]
                assert retain and origin == "gateway/" + fleet.gateway_id, (topic, retain, origin)
                assert (p["status"], p["reason"], p["gateway"], p["peer"], p["link"], p["name"]) == (
                    "offline", "gateway connection lost", fleet.gateway_id, d.peer_id, d.link, d.name), p

            # 2. restarted with one will session for three devices: two over the cap
            _rewrite_gateway_config(fleet, devs, device_wills=1)
            mark, n = await restart(gw, devs)
            ev = await gw.wait_for("stats", lambda e: mark(e) and e["mqtt"]["willSessions"] == 1
                                   and e["mqtt"]["willOverCap"] == 2, timeout=WAIT_S)
            assert ev["mqtt"]["willSessionsMax"] == 1
            await sub.wait(all_online(devs, n), what="every device online after the restart")
            n = len(sub.msgs)
            await gw.stop(signal.SIGKILL)
            await sub.wait(lambda: any(x["status"] == "offline" for d in devs for x in statuses(d, n)),
                           what="the one will")
            st = await _retained(mq.port, status_filter, len(devs))
            by_status = {}
            for d in devs:
                by_status.setdefault(st["%s/devices/%s/status" % (PREFIX, d.peer_id)][1]["status"], []).append(d)
            assert len(by_status["offline"]) == 1 and len(by_status["online"]) == 2, by_status
            over_cap = by_status["online"]
            _log("over the cap, left online by the kill: %s" % [d.name for d in over_cap])

            # 3. restarted without one of those two in the allow-list: its left-over "online" is
            # set offline; the others come back online
            gone = over_cap[0]
            keep = [d for d in devs if d is not gone]
            _rewrite_gateway_config(fleet, keep, device_wills=256)
            mark, n = await restart(gw, keep)
            await sub.wait(lambda: any(x["status"] == "offline" for x in statuses(gone, n)),
                           what="the left-over status offline")
            await sub.wait(all_online(keep, n), what="the allowed devices online again")
            await gw.wait_for("device:refused", lambda e: mark(e) and e["peer"] == gone.peer_id, timeout=WAIT_S)
            st = await _retained(mq.port, status_filter, len(devs))
            p = st["%s/devices/%s/status" % (PREFIX, gone.peer_id)][1]
            assert (p["status"], p["reason"], p["gateway"], p["name"]) == (
                "offline", "gateway restarted", fleet.gateway_id, gone.name), p
            assert all(st["%s/devices/%s/status" % (PREFIX, d.peer_id)][1]["status"] == "online" for d in keep)
            ev = await gw.wait_for("stats", lambda e: mark(e) and e["mqtt"]["willSessions"] == len(keep), timeout=WAIT_S)
            assert ev["mqtt"]["staleCleared"] == 1 and ev["mqtt"]["willOverCap"] == 0
        finally:
            await sub.close()
            await fleet.stop()

    try:
        _run(scenario())
    finally:
        fleet.cleanup()
        mq.close()


def test_mqtt_two_bridges_same_broker_no_loop():
    """Gateway A bridges the fleet; gateway B, meshed with A over gossip, bridges to the same
    broker and prefix and exports the command topic too (out = readings + commands, the
    mistake that would close a loop). A command from MQTT goes A -> gossip -> B -> MQTT, where A
    drops B's copy by its origin tag: a bounded count of messages, nothing circulates."""
    mq = Mosquitto().start()
    fleet = Fleet(n_tcp=2, interval_ms=400, mqtt={"url": mq.url, "prefix": PREFIX}, log=_log)
    gw_b = None

    async def scenario():
        nonlocal gw_b
        sub = Sub(mq.port, ["%s/#" % PREFIX]).start()
        try:
            await asyncio.wait_for(sub.subscribed.wait(), WAIT_S)
            await fleet.start()
            await fleet.wait_connected()
            a = fleet.gateway
            await a.wait_for("mqtt:connected")
            cfg = fleet.dir / "gateway-b.toml"
            cfg.write_text('[identity]\nkey_file = "gateway-b.key"\n[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n'
                           'bootstrap = [%s]\n[mqtt]\nurl = %s\nprefix = %s\nout = [%s, %s]\nin = []\n' % (
                               json.dumps(fleet.gateway_addr), json.dumps(mq.url), json.dumps(PREFIX),
                               json.dumps(READINGS), json.dumps(COMMANDS)))
            gw_b = Proc("gateway-b", [sys.executable, "-m", "microp2p_host.cli", "gateway", "--config", str(cfg),
                                      "--no-table"], {"PYTHONUNBUFFERED": "1"}, str(fleet.dir / "gateway-b.stderr.log"))
            await gw_b.start()
            b_id = (await gw_b.wait_for("started"))["peerId"]
            await gw_b.wait_for("mqtt:connected")
            # B is in the readings mesh once its copies show up on MQTT
            await sub.wait(lambda: any(m[3] == "gateway/" + b_id for m in sub.on("%s/%s/" % (PREFIX, READINGS))),
                           what="readings via B")

            cmd_topic = "%s/%s" % (PREFIX, COMMANDS)
            for i, ms in enumerate((300, 310)):
                await _publish(mq.port, cmd_topic, json.dumps({"cmd": "interval", "ms": ms}).encode())
                for d in fleet.devices:
                    await d.wait_for("command", lambda e, ms=ms: e.get("ms") == ms, timeout=WAIT_S)
                await a.wait_for("mqtt:rejected", lambda e, n=i + 1: "loop" in e["reason"]
                                 and len([x for x in a.named("mqtt:rejected") if "loop" in x["reason"]]) >= n)
            # a marker through the same path: once it is back, anything still circulating would be too
            await _publish(mq.port, cmd_topic, b'{"cmd":"ping"}')
            for d in fleet.devices:
                await d.wait_for("command", lambda e: e.get("cmd") == "ping", timeout=WAIT_S)
            await a.wait_for("mqtt:rejected", lambda e: len([x for x in a.named("mqtt:rejected")
                                                             if "loop" in x["reason"]]) >= 3)
            # devices answer each command with a signed ack on the command topic, which B bridges
            # out too: those are counted apart (each once: no loop either)
            def is_ack(m):
                return isinstance(m[1], dict) and isinstance(m[1].get("data"), dict) and "ack" in m[1]["data"]
            await sub.wait(lambda: len([m for m in sub.on(cmd_topic) if not is_ack(m)]) >= 6, what="the command copies")
            on_cmd = [m for m in sub.on(cmd_topic) if not is_ack(m)]
            acks = [(m[1]["from"], m[1]["seqno"]) for m in sub.on(cmd_topic) if is_ack(m)]
            assert len(acks) == len(set(acks))
            # 3 from the test, 3 echoed by B (on .../<A's id>): nothing more
            assert len(on_cmd) == 6, [(m[0], m[3]) for m in on_cmd]
            assert sorted(m[3] or "test" for m in on_cmd) == sorted(["test"] * 3 + ["gateway/" + b_id] * 3)
            assert all(m[0] == cmd_topic + "/" + fleet.gateway_id for m in on_cmd if m[3])
            assert len(a.named("mqtt:command")) == 3           # A fed gossip once per MQTT command
            for d in fleet.devices:
                assert len(_cmds(d)) == 3, (d.name, d.commands)   # each device obeyed each exactly once
                assert all(e["from"] == fleet.gateway_id for e in _cmds(d))
            # readings: once per bridge, never more (B's copies are not taken back by A)
            counts = {}
            for topic, p, _, origin in sub.on("%s/%s/" % (PREFIX, READINGS)):
                k = (topic, p["seqno"], origin)
                counts[k] = counts.get(k, 0) + 1
            assert counts and max(counts.values()) == 1
            assert not [e for e in gw_b.events if e.get("event") == "mqtt:command"]
        except BaseException:
            _log("A: %s" % [e for e in fleet.gateway.events if e["event"].startswith(("mqtt", "peer"))])
            _log("B: %s" % [e for e in (gw_b.events if gw_b else []) if e["event"] != "stats"])
            _log("MQTT: %s" % [(m[0], m[3]) for m in sub.msgs if "commands" in m[0]])
            raise
        finally:
            await sub.close()
            if gw_b is not None:
                await gw_b.stop(signal.SIGTERM)
            await fleet.stop()

    try:
        _run(scenario())
    finally:
        fleet.cleanup()
        mq.close()


def test_emulate_mqtt_cli():
    """`microp2p emulate --mqtt` (what `make demo` runs): its own Mosquitto, readings printed from
    MQTT, a command through MQTT reaching every device, nothing lost."""
    import subprocess
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "emulate", "--tcp", "2", "--serial", "0",
                        "--duration", "10", "--interval-ms", "500", "--mqtt"],
                       capture_output=True, text=True, timeout=120, cwd=str(Path(__file__).resolve().parents[2]))
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["mqttLost"] == 0 and summary["mqttReceived"] == summary["sent"] >= 10, summary
    assert summary["mqttCommandReached"] == 2
    assert r.stderr.count("emulate: mqtt  microp2p/sensors/readings/") >= 3
    assert "mosquitto on mqtt://127.0.0.1:" in r.stderr
