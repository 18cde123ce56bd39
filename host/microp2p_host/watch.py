# `microp2p watch [--topic T]... [--json] [--count N] MA...`: subscribe through any peer or gateway
# and print the sensor readings that arrive, decoded from CBOR, with the author each signature
# proves (gossipsub StrictSign: the router drops a message whose signature does not check out).
# A table on a terminal, JSON lines otherwise (or with --json). Uses only the public API.
import asyncio
import json
import sys
import time

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.codec import cbor
from microp2p.codec.multiaddr import Multiaddr
from microp2p.errors import MicroP2PError
from microp2p.identity.peerid import PeerId
from microp2p.io.node import Node
from microp2p.io import pubsub
from microp2p_host.formats import jsonable
from microp2p_host.keyfile import CliError

DEFAULT_TOPIC = "sensors/readings"
DIAL_TIMEOUT_S = 15.0
MAX_VALUE_TEXT = 24        # characters of a value shown in the table


def add_args(p):
    p.add_argument("addrs", nargs="+", metavar="MA", help="peer or gateway multiaddr(s) ending in /p2p/ID")
    p.add_argument("--topic", action="append", help="gossip topic (default %s; repeat for more)" % DEFAULT_TOPIC)
    p.add_argument("--json", action="store_true", help="JSON lines even on a terminal")
    p.add_argument("--count", type=int, default=0, help="exit after N readings (0: until Ctrl-C)")
    p.add_argument("--timeout", type=float, default=0, help="exit non-zero after S seconds without --count readings")


def reading_record(topic, msg):
    """(record dict) for one received message: author, seqno, decoded reading or an error."""
    author = str(PeerId.from_bytes(msg["from"])) if msg.get("from") else None
    rec = {"topic": topic, "from": author, "seqno": bytes(msg.get("seqno") or b"").hex(), "verified": True}
    try:
        rec["reading"] = jsonable(cbor.decode(msg.get("data", b"")))
    except MicroP2PError as e:
        rec["error"] = "not CBOR: %s" % e
        rec["dataHex"] = bytes(msg.get("data", b""))[:64].hex()
    return rec


def table_row(rec):
    r = rec.get("reading")
    if not isinstance(r, dict):
        return "%s  %-16s  %s" % (time.strftime("%H:%M:%S"), (rec["from"] or "?")[-16:], rec.get("error", r))
    v = r.get("v")
    vs = ("%.3f" % v if isinstance(v, float) else str(v))[:MAX_VALUE_TEXT]
    return "%s  %-16s  seq %-6s %10s %-4s%s" % (time.strftime("%H:%M:%S"), (rec["from"] or "?")[-16:], r.get("seq"), vs,
                                              r.get("unit", ""), "  dropped %s" % r["dropped"] if r.get("dropped") else "")


async def watch(args, out=sys.stdout):
    topics = args.topic or [DEFAULT_TOPIC]
    as_json = args.json or not (hasattr(out, "isatty") and out.isatty())
    node = Node()
    done = asyncio.Event()
    seen = [0]

    def on_message(topic, msg):
        rec = reading_record(topic, msg)
        out.write((json.dumps(rec) if as_json else table_row(rec)) + "\n")
        out.flush()
        seen[0] += 1
        if args.count and seen[0] >= args.count:
            done.set()

    ps = pubsub.attach(node, on_message=on_message)
    for t in topics:
        ps.subscribe(t)
    connected = 0
    for a in args.addrs:
        try:
            m = Multiaddr.from_string(a)
        except MicroP2PError as e:
            raise CliError("bad multiaddr %s: %s" % (a, e))
        if m.value_for("p2p") is None:
            raise CliError("%s: the multiaddr must end in /p2p/PEER_ID" % a)
        try:
            await asyncio.wait_for(node.dial(m), DIAL_TIMEOUT_S)
            connected += 1
        except Exception as e:
            print("microp2p watch: cannot reach %s: %s %s" % (a, type(e).__name__, e), file=sys.stderr)
    if not connected:
        await node.stop()
        raise CliError("could not reach any of %s" % ", ".join(args.addrs))
    if not as_json:
        out.write("watching %s through %d peer(s); Ctrl-C to stop\n" % (", ".join(topics), connected))
    try:
        if args.timeout:
            await asyncio.wait_for(done.wait(), args.timeout)
        else:
            await done.wait()
    except asyncio.TimeoutError:
        raise CliError("%d reading(s) within %.0f s (wanted %d)" % (seen[0], args.timeout, args.count))
    finally:
        ps.close()
        await node.stop()
    return 0


def run(args):
    try:
        return asyncio.run(watch(args))
    except KeyboardInterrupt:
        return 130
