# The sensor node's command shapes (firmware/sensor_node/app.py, docs/formats.md), checked on the
# host before a command is signed and published: by the MQTT bridge and by `microp2p command`.
import json

from microp2p.identity.peerid import PeerId

COMMAND_MAX_BYTES = 1024    # a JSON command larger than this is rejected unread
MIN_INTERVAL_MS = 50        # sensor_node's bounds for {"cmd": "interval"}
MAX_INTERVAL_MS = 24 * 3600 * 1000


class CommandError(Exception):
    pass


def parse_command(payload, to=None):
    """A JSON command (from MQTT or the command line) -> the CBOR map to publish (sensor_node's command shapes):
    {"cmd": "interval", "ms": N} | {"cmd": "ping"}, optional "to": peer id or "*". `to` is the
    device the MQTT topic addressed, if any. Raises CommandError with the reason."""
    if len(payload) > COMMAND_MAX_BYTES:
        raise CommandError("payload over %d bytes" % COMMAND_MAX_BYTES)
    try:
        cmd = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CommandError("invalid JSON: %s" % e)
    if not isinstance(cmd, dict):
        raise CommandError("not a JSON object")
    name = cmd.get("cmd")
    if name == "interval":
        allowed = {"cmd", "ms", "to"}
        ms = cmd.get("ms")
        if not isinstance(ms, int) or isinstance(ms, bool):
            raise CommandError("interval: ms must be an integer")
        if not MIN_INTERVAL_MS <= ms <= MAX_INTERVAL_MS:
            raise CommandError("interval: ms must be %d..%d" % (MIN_INTERVAL_MS, MAX_INTERVAL_MS))
        out = {"cmd": "interval", "ms": ms}
    elif name == "ping":
        allowed = {"cmd", "to"}
        out = {"cmd": "ping"}
    elif isinstance(name, str):
        raise CommandError("unknown command %r" % name[:32])
    else:
        raise CommandError("cmd must be a string")
    extra = set(cmd) - allowed
    if extra:
        raise CommandError("unknown field %s" % ", ".join(sorted(repr(k)[:32] for k in extra)))
    target = cmd.get("to")
    if target is not None:
        if not isinstance(target, str):
            raise CommandError("to must be a peer id or \"*\"")
        if target != "*":
            check_peer(target)
        if to is not None and target not in (to, "*"):
            raise CommandError("to %s does not match the topic's device" % target[:64])
    if to is not None:
        out["to"] = to
    elif target is not None:
        out["to"] = target
    return out


def check_peer(text):
    try:
        PeerId.from_string(text)
    except Exception:
        raise CommandError("%r is not a peer id" % text[:64])


