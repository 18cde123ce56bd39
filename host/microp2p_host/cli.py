# `microp2p` command line. One function pair per subcommand (add its arguments, run it),
# registered in COMMANDS; main() dispatches. Output contracts (see docs/architecture.md) that scripts
# rely on: `id` prints only the peer ID; errors go to stderr with a non-zero exit status.
import argparse
import json
import os
import sys

import microp2p_host  # noqa: F401  (installs the native crypto backend)
from microp2p.identity import keys
from microp2p.errors import MicroP2PError
from microp2p.identity.peerid import PeerId
from microp2p_host.keyfile import CliError, write_key_file, add_identity_args, load_identity  # noqa: F401

EXIT_OK = 0
EXIT_FAIL = 1  # the command could not do its job (unreadable key, file exists...)
EXIT_USAGE = 2  # what argparse uses for bad arguments

# ---- id ----------------------------------------------------------------------------------------

def add_id_args(p):
    add_identity_args(p, required=True)


def run_id(args):
    key = load_identity(args)
    print(PeerId.from_public_key(key.public_key))
    return EXIT_OK


# ---- keygen ------------------------------------------------------------------------------------

def add_keygen_args(p):
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the new key (mode 0600)")


def run_keygen(args):
    key = keys.Ed25519PrivateKey.generate()
    write_key_file(args.out, key)
    print(PeerId.from_public_key(key.public_key))
    return EXIT_OK


# ---- node / ping -------------------------------------------------------------------------------

def run_node_passthrough(argv):
    """`microp2p node ...`: the portable node runner (the same code MicroPython runs)."""
    from microp2p import cli as cli_node
    return cli_node.main(argv)


def add_ping_args(p):
    p.add_argument("addr", metavar="MA", help="multiaddr of the peer, ending in /p2p/PEER_ID "
                   "(<relay>/p2p/R/p2p-circuit/p2p/PEER pings PEER through relay R)")
    p.add_argument("--count", type=int, default=3, help="number of pings (default 3)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait in all")
    add_identity_args(p)


def run_ping(args):
    import asyncio
    from microp2p.io import node as nodemod
    from microp2p.codec.multiaddr import Multiaddr

    try:
        maddr = Multiaddr.from_string(args.addr)
        target = maddr.peer_id()   # the LAST /p2p/ID: through a relay, the peer behind it
    except MicroP2PError as e:
        raise CliError("bad multiaddr %s: %s" % (args.addr, e))
    if target is None or maddr.protocols()[-1] != "p2p":
        raise CliError("the multiaddr must end in /p2p/PEER_ID")

    async def go():
        node = nodemod.Node(load_identity(args))
        try:
            conn = await _connect(node, maddr)
            rtts = await node.ping(conn, args.count, on_rtt=lambda r: print(
                "ping %s: rtt=%.3f ms" % (conn.remote_peer, r), flush=True))
            return rtts
        finally:
            await node.stop()

    try:
        rtts = asyncio.run(asyncio.wait_for(go(), args.timeout))
    except (OSError, MicroP2PError, EOFError, asyncio.TimeoutError) as e:
        raise CliError("ping %s failed: %s %s" % (args.addr, type(e).__name__, e))
    if len(rtts) != args.count:
        raise CliError("ping %s: %d of %d answered" % (args.addr, len(rtts), args.count))
    return EXIT_OK


async def _connect(node, maddr):
    """A connection to the peer named by maddr's LAST /p2p/ID (through the relay for a circuit)."""
    if "p2p-circuit" in maddr.protocols():
        from microp2p.io import relay
        conn = await relay.RelayClient(node).dial(maddr)
    else:
        conn = await node.dial(maddr)
    target = maddr.peer_id()
    if target is not None and conn.remote_peer != target:
        raise CliError("reached %s, not %s" % (conn.remote_peer, target))
    return conn


def add_sensor_args(p):
    p.add_argument("action", choices=["read"], help="read: the latest signed reading and the status")
    p.add_argument("addr", metavar="MA", help="the device: <gateway addr>/p2p/GW/p2p-circuit/p2p/DEV "
                   "or a direct address ending in /p2p/DEV")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait in all")
    add_identity_args(p)


def run_sensor(args):
    """`microp2p sensor read MA`: one JSON line {peer, verified, reading, topic, status}; the
    reading's signature is checked against the device's own key (exit 1 if it fails)."""
    import asyncio
    from microp2p.io import node as nodemod
    from microp2p.codec.multiaddr import Multiaddr
    from microp2p.proto import sensor

    try:
        maddr = Multiaddr.from_string(args.addr)
    except MicroP2PError as e:
        raise CliError("bad multiaddr %s: %s" % (args.addr, e))
    if maddr.peer_id() is None:
        raise CliError("the multiaddr must end in /p2p/DEVICE_ID")

    async def go():
        node = nodemod.Node(load_identity(args))
        try:
            conn = await _connect(node, maddr)
            st = await node.new_stream(conn, [sensor.PROTOCOL])
            return conn.remote_peer, await sensor.request(st)
        finally:
            await node.stop()

    try:
        peer, resp = asyncio.run(asyncio.wait_for(go(), args.timeout))
    except (OSError, MicroP2PError, EOFError, asyncio.TimeoutError) as e:
        raise CliError("sensor read %s failed: %s %s" % (args.addr, type(e).__name__, e))
    out = {"peer": str(peer), "verified": False, "reading": None, "topic": None, "status": resp["status"]}
    if resp.get("signed") is not None:
        try:
            author, reading, topic = sensor.verify_signed(resp["signed"])
        except MicroP2PError as e:
            raise CliError("sensor read %s: the reading does not verify: %s" % (args.addr, e))
        if author != peer:
            raise CliError("sensor read %s: reading signed by %s, not the device" % (args.addr, author))
        out.update(verified=True, reading=reading, topic=topic)
    print(json.dumps(out), flush=True)
    return EXIT_OK


# ---- gateway / emulate (their own modules; imported only when used) ---------------------------

def add_gateway_args(p):
    from microp2p_host import gateway
    gateway.add_args(p)


def run_gateway(args):
    from microp2p_host import gateway
    return gateway.run(args)


def add_command_args(p):
    from microp2p_host import command
    command.add_args(p)


def run_command(args):
    from microp2p_host import command
    return command.run(args)


def add_watch_args(p):
    from microp2p_host import watch
    watch.add_args(p)


def run_watch(args):
    from microp2p_host import watch
    return watch.run(args)


def add_emulate_args(p):
    from microp2p_host import emulate
    emulate.add_args(p)


def run_emulate(args):
    from microp2p_host import emulate
    return emulate.run(args)


# ---- device tooling (host/microp2p_host/tooling.py) ----------------------------------------------

def _tool(name):
    """A tooling.run_<name> wrapped so its ToolError reaches the user like a CliError."""
    def run(args):
        from microp2p_host import tooling
        try:
            return getattr(tooling, "run_" + name)(args)
        except tooling.ToolError as e:
            raise CliError(str(e))
    return run


def _tool_args(name):
    def add(p):
        from microp2p_host import tooling
        getattr(tooling, "add_%s_args" % name)(p)
    return add


# ---- table and main ----------------------------------------------------------------------------

# (name, help, add_arguments(parser), run(args) -> exit status). Later commands (node, ping,
# gateway, ...) register here the same way.
COMMANDS = [
    ("id", "print the peer ID of an identity", add_id_args, run_id),
    ("keygen", "write a new Ed25519 identity to a file", add_keygen_args, run_keygen),
    ("ping", "ping a peer over /ipfs/ping/1.0.0 and print RTTs", add_ping_args, run_ping),
    ("sensor", "ask a device for its latest signed reading and status (/microp2p/sensor/1.0.0)",
     add_sensor_args, run_sensor),
    ("gateway", "run the gateway between devices (TCP, serial) and the libp2p network",
     add_gateway_args, run_gateway),
    ("command", "sign and send a command to the devices; report which accepted it",
     add_command_args, run_command),
    ("watch", "print decoded, signature-checked sensor readings from a peer or gateway",
     add_watch_args, run_watch),
    ("emulate", "run an emulated fleet: MicroPython devices + gateway (+ a js-libp2p subscriber)",
     add_emulate_args, run_emulate),
    ("build", "compile the device firmware (.mpy) for a board", _tool_args("build"), _tool("build")),
    ("provision", "make a device identity and config; prints its peer ID", _tool_args("provision"),
     _tool("provision")),
    ("deploy", "copy a build, config and key to a board (mpremote)", _tool_args("deploy"), _tool("deploy")),
    ("flash", "write MicroPython firmware to a board (esptool / UF2)", _tool_args("flash"), _tool("flash")),
]

# Commands with their own portable argument parsing (shared with MicroPython): argv goes through.
PASSTHROUGH = {
    "node": run_node_passthrough,
}


def build_parser():
    import microp2p
    parser = argparse.ArgumentParser(prog="microp2p", description="libp2p for constrained hardware")
    parser.add_argument("--version", action="version", version="microp2p %s" % microp2p.__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # listed for --help only: main() hands these argv straight to their own (portable) parsers
    sub.add_parser("node", help="a libp2p peer: JSON lines on stdout, JSON commands on stdin "
                                "(same code as `micropython -m microp2p.node`)", add_help=False)
    for name, help_text, add_args, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in PASSTHROUGH:
        return PASSTHROUGH[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as e:
        print("microp2p: %s" % e, file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
