# Shared launcher for the connection benches (handshakes.py, yamux.py): starts the bench peers of
# bench/peers/ (microp2p on CPython or MicroPython, js-libp2p, py-libp2p) and the bench mode of the
# go-libp2p and rust-libp2p interop peers (tests/interop/go_peer, rust_peer: `... bench MODE`,
# built by `make setup`), reads their JSON lines.
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.path.join(HERE, "peers")
INTEROP = os.path.join(ROOT, "tests", "interop")
JS_DIR = os.path.join(ROOT, "peers", "js")    # the js-libp2p install (npm ci by `make setup`)
PY = os.path.join(ROOT, ".venv", "bin", "python")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
PY_LIBP2P = os.path.join(INTEROP, ".venv-py", "bin", "python")
NODE = os.environ.get("NODE", "node")
PEER_BIN = os.environ.get("MICROP2P_PEER_BIN", os.path.join(os.path.expanduser("~"), ".cache", "microp2p", "bin"))
GO_PEER = os.path.join(PEER_BIN, "microp2p-go-peer")
RUST_PEER = os.path.join(PEER_BIN, "microp2p-rust-peer")

IMPLS = ("microp2p", "js", "py", "go", "rust")
START_TIMEOUT_S = 60      # js / py-libp2p imports take seconds on a loaded machine
STOP_GRACE_S = 5


def available(impl):
    if impl == "js":
        return os.path.isdir(os.path.join(JS_DIR, "node_modules", "libp2p"))
    if impl == "py":
        return os.path.exists(PY_LIBP2P)
    if impl == "micropython":
        return os.path.exists(MICROPYTHON)
    if impl == "go":
        return os.path.exists(GO_PEER)
    if impl == "rust":
        return os.path.exists(RUST_PEER)
    return True


def command(impl, args, heap=None):
    """argv and environment for one bench peer."""
    env = dict(os.environ)
    if impl == "microp2p":
        return [PY, os.path.join(PEERS, "mp_bench.py")] + args, env
    if impl == "micropython":
        # MICROP2P_BENCH_MPY: a `microp2p build --board unix` tree (.mpy, as devices load them);
        # else the sources (compiling them needs a larger heap than running them)
        code = os.environ.get("MICROP2P_BENCH_MPY") or os.path.join(ROOT, "firmware")
        env["MICROPYPATH"] = os.pathsep.join([code, ".frozen"])
        heap_args = ["-X", "heapsize=" + heap] if heap else []
        return [MICROPYTHON] + heap_args + [os.path.join(PEERS, "mp_bench.py")] + args, env
    if impl == "js":
        return [NODE, os.path.join(PEERS, "js_bench.mjs")] + args, env
    if impl == "py":
        return [PY_LIBP2P, os.path.join(PEERS, "py_bench.py")] + args, env
    if impl == "go":
        return [GO_PEER, "bench"] + args, env
    if impl == "rust":
        return [RUST_PEER, "bench"] + args, env
    raise ValueError(impl)


def cpu_seconds(pid):
    """utime + stime of a running process (Linux /proc), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Server:
    def __init__(self, impl):
        self.impl = impl
        argv, env = command(impl, ["serve", "/ip4/127.0.0.1/tcp/0"])
        self.log = open(os.path.join("/tmp", "microp2p-bench-%s-server.log" % impl), "w")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        self.addr = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "listening":
                self.addr = ev["addr"]
                break
        if self.addr is None:
            self.stop()
            raise RuntimeError("%s server did not start (see %s)" % (impl, self.log.name))

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_client(impl, args, timeout_s, heap=None):
    """Run one client to completion; its last JSON line, or {"error": ...}."""
    argv, env = command(impl, args, heap)
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % timeout_s}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    tail = (p.stderr or "").strip().splitlines()[-3:]
    return {"error": "exit %d: %s" % (p.returncode, " | ".join(tail))}


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def say(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
