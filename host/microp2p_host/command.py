# `microp2p command [--key FILE | --seed HEX64] [--to PEER] [--wait S] MA JSON`: sign a sensor
# command with our identity, publish it on the command topic through a gateway (or any peer that
# routes the topic), and report which devices accepted it — each device answers on the command
# topic with a signed ack (docs/formats.md), including the reason when it refuses (e.g. our peer ID
# is not in its command_from: `microp2p provision --command-from <our id>`).
# Exit 0 when at least one device accepted; 1 when none did (the acks' reasons are printed).
import asyncio
import json
import sys

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.codec import cbor
from microp2p.codec.multiaddr import Multiaddr
from microp2p.errors import MicroP2PError
from microp2p.identity.peerid import PeerId
from microp2p.io.node import Node
from microp2p.io import pubsub
from microp2p_host.commands import CommandError, parse_command
from microp2p_host.keyfile import CliError, add_identity_args, load_identity

COMMAND_TOPIC = "sensors/commands"
DIAL_TIMEOUT_S = 15.0
SUBSCRIBE_TIMEOUT_S = 10.0    # until the gateway's subscription to the command topic is known
DEFAULT_WAIT_S = 5.0          # how long acks are collected
MAX_ACKS = 10000
MESH_POLL_S = 0.05       # how often the gateway's place in our mesh is checked before publishing


def add_args(p):
    add_identity_args(p)
    p.add_argument("addr", metavar="MA", help="gateway (or peer) multiaddr ending in /p2p/ID")
    p.add_argument("command", metavar="JSON", help='e.g. \'{"cmd": "interval", "ms": 1000}\' or \'{"cmd": "ping"}\'')
    p.add_argument("--to", metavar="PEER", help="only this device (default: every device)")
    p.add_argument("--topic", default=COMMAND_TOPIC, help="command topic (default %s)" % COMMAND_TOPIC)
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, help="seconds to collect device acks")


async def send(args, key):
    try:
        cmd = parse_command(args.command.encode(), args.to)
    except CommandError as e:
        raise CliError("bad command: %s" % e)
    try:
        ma = Multiaddr.from_string(args.addr)
    except MicroP2PError as e:
        raise CliError("bad multiaddr %s: %s" % (args.addr, e))
    if ma.value_for("p2p") is None:
        raise CliError("%s: the multiaddr must end in /p2p/PEER_ID" % args.addr)
    node = Node(key)
    me = str(node.peer_id)
    acks = {}
    ready = asyncio.Event()
    target_acked = asyncio.Event()

    def on_message(topic, msg):
        try:
            a = cbor.decode(msg["data"])
        except MicroP2PError:
            return
        if not isinstance(a, dict) or "ack" not in a or a.get("to") != me or len(acks) >= MAX_ACKS:
            return
        author = str(PeerId.from_bytes(msg["from"]))
        if a.get("dev") == author:          # a device speaks only for itself
            acks[author] = a
            if args.to and author == args.to:
                target_acked.set()

    def on_event(ev):
        if ev[0] == "subscribed" and ev[2] == args.topic:
            ready.set()

    ps = pubsub.attach(node, on_message=on_message, on_event=on_event)
    ps.subscribe(args.topic)
    try:
        try:
            await asyncio.wait_for(node.dial(ma), DIAL_TIMEOUT_S)
            await asyncio.wait_for(ready.wait(), SUBSCRIBE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise CliError("%s did not take the command topic %s within %.0f s" % (args.addr, args.topic, SUBSCRIBE_TIMEOUT_S))
        except (OSError, MicroP2PError) as e:
            raise CliError("cannot reach %s: %s %s" % (args.addr, type(e).__name__, e))
        # Acks come back through the gateway's mesh for the command topic: publish once the
        # gateway and we have grafted each other (our first heartbeat grafts it), bounded.
        gw = PeerId.from_string(ma.value_for("p2p"))
        deadline = asyncio.get_running_loop().time() + SUBSCRIBE_TIMEOUT_S
        while gw not in ps.mesh_peers(args.topic) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(MESH_POLL_S)
        ps.publish(args.topic, cbor.encode(cmd))
        # acks arrive within the window; only an addressed command has a "last ack" to wait for
        try:
            await asyncio.wait_for(target_acked.wait(), args.wait)
        except asyncio.TimeoutError:
            pass
    finally:
        ps.close()
        await node.stop()
    return me, cmd, acks


def run(args):
    key = load_identity(args)
    me, cmd, acks = asyncio.run(send(args, key))
    accepted = sorted(p for p, a in acks.items() if a.get("ok"))
    refused = {p: a.get("reason") for p, a in acks.items() if not a.get("ok")}
    print(json.dumps({"from": me, "command": cmd, "accepted": accepted, "refused": refused}))
    if not accepted:
        why = "; ".join("%s: %s" % (p, r) for p, r in sorted(refused.items())) or "no device answered within %.0f s" % args.wait
        print("microp2p command: no device accepted it (%s)" % why, file=sys.stderr)
        return 1
    return 0
