# The bridge against a real Mosquitto, in process (a stand-in gateway object, no devices): MQTT 5
# No Local keeps the bridge from taking back its own publishes; mqtts:// with a CA file and a
# password from the environment connects, a wrong password is refused, and the password never
# shows up in an event or a log line. Needs the `mosquitto` binary (make setup installs it).
import asyncio
import datetime
import ipaddress
import json
import os
import subprocess
import tempfile
import time

import aiomqtt
import cbor2

import microp2p_host  # noqa: F401
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.identity.peerid import PeerId
from microp2p_host.bridge import mqtt as M
from microp2p_host.gateway import DeviceState
from microp2p_host.mosquitto import Mosquitto

WAIT_S = 15


class _PubSub:
    def __init__(self):
        self.published = []

    def publish(self, topic, data):
        self.published.append((topic, cbor2.loads(data)))


class _Gateway:
    def __init__(self, n_devices=1):
        self.peer_id = str(PeerId.from_public_key(Ed25519PrivateKey.generate().public_key))
        self.devices = {}
        for i in range(n_devices):
            d = str(PeerId.from_public_key(Ed25519PrivateKey.generate().public_key))
            self.devices[d] = DeviceState(d, "dev" if n_devices == 1 else "dev%d" % i)
        self.events = []
        self.pubsub = _PubSub()
        self._changed = asyncio.Event()

    def emit(self, name, fields=None):
        self.events.append(dict(fields or {}, event=name))
        self._changed.set()

    def named(self, name):
        return [e for e in self.events if e["event"] == name]

    async def wait(self, name, pred=lambda e: True, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            hit = [e for e in self.named(name) if pred(e)]
            if hit:
                return hit[0]
            left = deadline - time.monotonic()
            assert left > 0, "no %s event within %s s: %s" % (name, timeout, self.events)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass


def _bridge(gw, d, env=None, base="."):
    return M.MqttBridge(M.MqttConfig.from_dict(dict({"prefix": "p"}, **d), base, env or {}), gw)


def test_no_local_own_publishes_never_come_back():
    async def body():
        with Mosquitto() as mq:
            gw = _Gateway()
            b = _bridge(gw, {"url": mq.url})
            b.start()
            try:
                await gw.wait("mqtt:connected")
                # the bridge's own connection publishes a valid, untagged command on its own command
                # topic: only No Local keeps it from coming back in
                await b._client.publish("p/sensors/commands", b'{"cmd":"ping"}', qos=1)
                async with aiomqtt.Client("127.0.0.1", mq.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
                    await c.publish("p/sensors/commands", b'{"cmd":"interval","ms":500}', qos=1)
                await gw.wait("mqtt:command")
                assert [e["cmd"] for e in gw.named("mqtt:command")] == [{"cmd": "interval", "ms": 500}]
                assert gw.pubsub.published == [("sensors/commands", {"cmd": "interval", "ms": 500})]
                assert not gw.named("mqtt:rejected")
            finally:
                await b.close()
    asyncio.run(asyncio.wait_for(body(), 60))


def _tls_files(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, pub, signer, ca, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(signer, hashes.SHA256())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "microp2p test CA")])
    ca = cert(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, srv_key.public_key(),
               ca_key, False, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    pem = serialization.Encoding.PEM
    with open(os.path.join(d, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(d, "server.pem"), "wb") as f:
        f.write(srv.public_bytes(pem))
    with open(os.path.join(d, "server.key"), "wb") as f:
        f.write(srv_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")]), ca_name, cli_key.public_key(),
               ca_key, False)
    with open(os.path.join(d, "client.pem"), "wb") as f:
        f.write(cli.public_bytes(pem))
    with open(os.path.join(d, "client.key"), "wb") as f:
        f.write(cli_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))


def test_mqtts_with_ca_and_password_env_and_the_password_never_shows():
    secret = "s3cret-%s" % os.urandom(4).hex()

    async def body(d):
        _tls_files(d)
        passwd = os.path.join(d, "passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", passwd, "gw", secret], check=True, capture_output=True)
        with Mosquitto(workdir=d, listener_lines=[
                "cafile %s/ca.pem" % d, "certfile %s/server.pem" % d, "keyfile %s/server.key" % d,
                "password_file %s" % passwd, "allow_anonymous false"]) as mq:
            url = "mqtts://127.0.0.1:%d" % mq.port
            gw = _Gateway()
            cfg = {"url": url, "username": "gw", "password_env": "GW_MQTT_PW", "ca_file": "ca.pem"}
            b = _bridge(gw, cfg, {"GW_MQTT_PW": secret}, d)
            assert secret not in repr(b.config)
            b.start()
            try:
                await gw.wait("mqtt:connected")
                # a reading goes out over TLS, to a subscriber with the same credentials
                tls = aiomqtt.TLSParameters(ca_certs=os.path.join(d, "ca.pem"))
                async with aiomqtt.Client("127.0.0.1", mq.port, username="gw", password=secret, tls_params=tls,
                                          protocol=aiomqtt.ProtocolVersion.V5) as c:
                    await c.subscribe("p/sensors/readings/+", qos=1)
                    dev = next(iter(gw.devices))
                    b.on_gossip("sensors/readings", {"from": PeerId.from_string(dev).to_bytes(), "seqno": b"\x01",
                                                     "data": cbor2.dumps({"v": 1})}, True, dev)

                    async def first():
                        async for m in c.messages:
                            return m
                    m = await asyncio.wait_for(first(), WAIT_S)
                    assert m.topic.value == "p/sensors/readings/" + dev
                    assert json.loads(m.payload) == {"from": dev, "seqno": "01", "verified": True, "data": {"v": 1}}
                    # the device comes online: its will session connects with the same TLS and
                    # credentials and publishes its status
                    await c.subscribe("p/devices/+/status", qos=1)
                    gw.devices[dev].state = "connected"
                    b.device_changed(dev)

                    async def status():
                        async for m in c.messages:   # (the retained "offline" from the connect first)
                            if m.topic.value == "p/devices/%s/status" % dev and not m.retain:
                                return json.loads(m.payload)
                    assert (await asyncio.wait_for(status(), WAIT_S))["status"] == "online"
                    assert b.stats()["willSessions"] == 1 and b.stats()["willFailures"] == 0, b.stats()
            finally:
                await b.close()
            # the wrong password: refused, retried with backoff, reported without the password
            gw2 = _Gateway()
            b2 = _bridge(gw2, cfg, {"GW_MQTT_PW": secret + "x"}, d)
            b2.start()
            try:
                ev = await gw2.wait("mqtt:connect_failed")
                assert ev["retryInS"] == M.BACKOFF_MIN_S and "127.0.0.1" in ev["url"]
            finally:
                await b2.close()
            text = json.dumps(gw.events + gw2.events)
            assert secret not in text and (secret + "x") not in text
            with open(mq.log_path, errors="replace") as f:
                assert secret not in f.read()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(asyncio.wait_for(body(d), 60))


def test_several_urls_tried_in_turn():
    async def body():
        from microp2p_host.mosquitto import free_port
        with Mosquitto() as mq:
            dead = "mqtt://127.0.0.1:%d" % free_port()   # nobody listens there
            gw = _Gateway()
            b = _bridge(gw, {"urls": [dead, mq.url]})
            b.start()
            try:
                ok = await gw.wait("mqtt:connected")
                failed = gw.named("mqtt:connect_failed")
                assert [e["url"] for e in failed] == [dead] and ok["url"] == mq.url
                assert b.stats()["connected"] and b.stats()["url"] == mq.url
            finally:
                await b.close()
    asyncio.run(asyncio.wait_for(body(), 60))


def test_mqtts_client_certificate():
    async def body(d):
        _tls_files(d)
        with Mosquitto(workdir=d, listener_lines=[
                "cafile %s/ca.pem" % d, "certfile %s/server.pem" % d, "keyfile %s/server.key" % d,
                "require_certificate true"]) as mq:
            url = "mqtts://127.0.0.1:%d" % mq.port
            gw = _Gateway()
            b = _bridge(gw, {"url": url, "ca_file": "ca.pem", "cert_file": "client.pem", "key_file": "client.key"},
                        base=d)
            b.start()
            try:
                await gw.wait("mqtt:connected")
            finally:
                await b.close()
            gw2 = _Gateway()   # the same broker without a client certificate: refused
            b2 = _bridge(gw2, {"url": url, "ca_file": "ca.pem"}, base=d)
            b2.start()
            try:
                await gw2.wait("mqtt:connect_failed")
                assert not gw2.named("mqtt:connected")
            finally:
                await b2.close()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(asyncio.wait_for(body(d), 60))


def test_broker_that_stops_acknowledging_is_left_and_readings_resent():
    """A broker that keeps the TCP connection but answers nothing (SIGSTOP): the bridge gives up
    after PUBACK_TIMEOUT_S, reconnects once the broker is back, and every reading arrives."""
    import signal as sig

    async def body():
        saved = M.PUBACK_TIMEOUT_S
        M.PUBACK_TIMEOUT_S = 1.0
        with Mosquitto() as mq:
            gw = _Gateway()
            b = _bridge(gw, {"url": mq.url})
            b.start()
            try:
                await gw.wait("mqtt:connected")
                dev = next(iter(gw.devices))
                frm = PeerId.from_string(dev).to_bytes()
                async with aiomqtt.Client("127.0.0.1", mq.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
                    await c.subscribe("p/sensors/readings/+", qos=1)
                    mq.proc.send_signal(sig.SIGSTOP)
                    try:
                        for i in range(5):
                            b.on_gossip("sensors/readings", {"from": frm, "seqno": bytes([i]),
                                                             "data": cbor2.dumps({"seq": i})}, True, dev)
                        ev = await gw.wait("mqtt:disconnected")
                        assert "no PUBACK" in ev["error"] and ev["buffered"] == 5, ev
                    finally:
                        mq.proc.send_signal(sig.SIGCONT)
                    await gw.wait("mqtt:connected", lambda e: e["buffered"] > 0)
                    got = []

                    async def collect():
                        async for m in c.messages:
                            got.append(json.loads(m.payload)["data"]["seq"])
                            if len(set(got)) == 5:
                                return
                    await asyncio.wait_for(collect(), WAIT_S)
                    assert sorted(set(got)) == [0, 1, 2, 3, 4]
            finally:
                M.PUBACK_TIMEOUT_S = saved
                await b.close()
    asyncio.run(asyncio.wait_for(body(), 60))


def test_broker_receive_maximum_bounds_the_window():
    """MQTT 5: a broker announcing Receive Maximum 4 never has more than 4 of our QoS 1 publishes
    unacknowledged (paho does not apply it; the bridge does), and every reading still goes out."""
    async def body():
        with Mosquitto(listener_lines=["max_inflight_messages 4"]) as mq:
            gw = _Gateway()
            b = _bridge(gw, {"url": mq.url})
            b.start()
            try:
                await gw.wait("mqtt:connected")
                assert b._window == 3 and b._client._client._max_inflight_messages == 4
                dev = next(iter(gw.devices))
                frm = PeerId.from_string(dev).to_bytes()
                peak = 0
                async with aiomqtt.Client("127.0.0.1", mq.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
                    await c.subscribe("p/sensors/readings/+", qos=1)
                    for i in range(200):
                        b.on_gossip("sensors/readings", {"from": frm, "seqno": i.to_bytes(2, "big"),
                                                         "data": cbor2.dumps({"seq": i})}, True, dev)
                        peak = max(peak, len(b.inflight))
                    got = []

                    async def collect():
                        async for m in c.messages:
                            got.append(json.loads(m.payload)["data"]["seq"])
                            peak_now = len(b.inflight)
                            assert peak_now <= 3
                            if len(got) == 200:
                                return
                    await asyncio.wait_for(collect(), WAIT_S)
                assert got == list(range(200)) and peak <= 3
                assert not gw.named("mqtt:disconnected")
            finally:
                await b.close()
    asyncio.run(asyncio.wait_for(body(), 60))


class _StatusWatch:
    """Every device status message, in arrival order: (peer id, payload dict, retain)."""

    def __init__(self, port, prefix="p"):
        self.port, self.prefix = port, prefix
        self.msgs = []
        self.ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        async with aiomqtt.Client("127.0.0.1", self.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
            await c.subscribe("%s/devices/+/status" % self.prefix, qos=1)
            self.ready.set()
            async for m in c.messages:
                self.msgs.append((m.topic.value.split("/")[-2], json.loads(m.payload), m.retain))
                self._changed.set()

    def of(self, pid):
        return [p for q, p, _ in self.msgs if q == pid]

    async def wait(self, pred, what, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            assert left > 0, "no %s within %s s: %s" % (what, timeout, [(q[-6:], p["status"]) for q, p, _ in self.msgs])
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def test_device_will_sessions_cap_leave_will_and_clean_exit():
    """device_wills = 2, three devices: two statuses on will sessions, one on the main
    connection (over the cap, counted). A device that leaves gets its offline status on its own
    session, which ends (normal DISCONNECT: no will) and passes its slot on. A session ended
    with reason code 0x04 makes the broker publish its will (the device's offline status), and
    the session comes back and says online again. A clean exit sets every status offline."""
    async def body():
        with Mosquitto() as mq:
            gw = _Gateway(n_devices=3)
            pids = list(gw.devices)
            watch = _StatusWatch(mq.port)
            await asyncio.wait_for(watch.ready.wait(), WAIT_S)
            b = _bridge(gw, {"url": mq.url, "device_wills": 2})
            b.start()
            try:
                await gw.wait("mqtt:connected")
                for p in pids:
                    gw.devices[p].state = "connected"
                    gw.devices[p].link = "tcp"
                    b.device_changed(p)
                await watch.wait(lambda: all(any(x["status"] == "online" for x in watch.of(p)) for p in pids),
                                 "three online statuses")
                assert set(b.sessions) == set(pids[:2]) and list(b._over_cap) == [pids[2]]
                st = b.stats()
                assert (st["willSessions"], st["willSessionsMax"], st["willOverCap"]) == (2, 2, 1), st
                ids = {b.sessions[p].client._client._client_id.decode() for p in pids[:2]}
                assert ids == {"microp2p-%s-%s" % (gw.peer_id[-16:], p[-16:]) for p in pids[:2]}

                # device 0 leaves: offline on its session (no reason: not a will), the slot goes to device 2
                gw.devices[pids[0]].state = "disconnected"
                b.device_changed(pids[0])
                await watch.wait(lambda: [x["status"] for x in watch.of(pids[0])][-1:] == ["offline"], "device 0 offline")
                assert "reason" not in watch.of(pids[0])[-1]
                n2 = len(watch.of(pids[2]))
                await watch.wait(lambda: pids[2] in b.sessions and b.sessions[pids[2]].client is not None
                                 and len(watch.of(pids[2])) > n2, "device 2 on its own session")
                assert watch.of(pids[2])[-1]["status"] == "online"
                assert set(b.sessions) == set(pids[1:]) and not b._over_cap

                # device 1's session ends with reason code 0x04: the broker publishes its will, then
                # the session reconnects and the device reads online again
                n1 = len(watch.of(pids[1]))
                await M._end_session(b.sessions[pids[1]].client, with_will=True)
                await watch.wait(lambda: [x["status"] for x in watch.of(pids[1])[n1:]] == ["offline", "online"],
                                 "device 1: will, then online again")
                will = watch.of(pids[1])[n1]
                assert will["reason"] == "gateway connection lost" and will["gateway"] == gw.peer_id
                assert will["peer"] == pids[1] and will["state"] == "connected"
                assert b.stats()["willFailures"] >= 1
                assert not watch.of(pids[0])[-1].get("reason")   # device 0 ended without its will
            finally:
                await b.close()
            # clean exit: every status offline, "stopped" (on the sessions for devices 1 and 2)
            await watch.wait(lambda: all(watch.of(p)[-1]["status"] == "offline" for p in pids), "all offline")
            assert all(watch.of(p)[-1].get("reason") == "stopped" for p in pids), [watch.of(p)[-1] for p in pids]
            assert not any(x.get("reason") == "gateway connection lost" for p in pids[:1] + pids[2:]
                           for x in watch.of(p))   # no will fired but the one forced above
            assert not b.sessions
            await watch.close()
    asyncio.run(asyncio.wait_for(body(), 60))
