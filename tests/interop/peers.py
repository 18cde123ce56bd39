"""Launch and drive real libp2p peers (js-libp2p, py-libp2p, go-libp2p, rust-libp2p, microp2p on
CPython and on MicroPython) from pytest on CPython.

Every peer kind speaks the `microp2p node` command-line contract (docs/architecture.md,
"Command line"):
JSON lines on stdout (events: "started" first, then "connection:open", "identify", "ping",
"gossip:message", "echo", "error", ...), JSON commands on stdin, stderr for logs.

    with start_peer("js") as a, start_peer("py") as b:
        b.send({"cmd": "dial", "addr": a.addr})
        a.wait_for("connection:open", lambda e: e["peer"] == b.peer_id)

Every wait is bounded; a failed wait raises PeerError carrying the tail of the peer's stderr log.
"""
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

INTEROP_DIR = Path(__file__).resolve().parent
ROOT = INTEROP_DIR.parents[1]
FIRMWARE_DIR = ROOT / "firmware"
JS_DIR = ROOT / "peers" / "js"   # js_peer.mjs and its npm install (shared with `microp2p emulate`)
JS_PEER = JS_DIR / "js_peer.mjs"
PY_PEER = INTEROP_DIR / "py_peer.py"
PY_PEER_PYTHON = INTEROP_DIR / ".venv-py" / "bin" / "python"
MICROP2P_CLI = ROOT / ".venv" / "bin" / "microp2p"
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
NODE = os.environ.get("NODE", "node")
# The go and rust peers are built by `make setup` (tests/interop/Makefile) outside the clone.
PEER_BIN_DIR = Path(os.environ.get("MICROP2P_PEER_BIN", Path.home() / ".cache" / "microp2p" / "bin"))
GO_PEER = PEER_BIN_DIR / "microp2p-go-peer"
RUST_PEER = PEER_BIN_DIR / "microp2p-rust-peer"

KINDS = ("js", "py", "go", "rust", "microp2p", "microp2p-mpy")
# The reference implementations (peers we did not write the libp2p stack of).
REFERENCE_KINDS = ("js", "py", "go", "rust")
# What each reference peer's identify agentVersion starts with.
AGENTS = {"js": "js-libp2p/", "py": "py-libp2p/", "go": "go-libp2p/", "rust": "rust-libp2p/"}
DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"
STARTUP_TIMEOUT = 30.0      # node + libp2p import, or py-libp2p import, takes a few seconds
DEFAULT_TIMEOUT = 15.0
STOP_GRACE = 5.0            # the contract: a node exits within a few seconds of "stop"/EOF/SIGTERM
TERM_GRACE = 3.0
KILL_GRACE = 3.0
STDERR_TAIL_LINES = 60
EVENTS_MAX = 100000         # a runaway peer must not eat the test host's memory
LOG_DIR = Path(os.environ.get("MICROP2P_INTEROP_LOGS", Path(tempfile.gettempdir()) / "microp2p-interop"))


class PeerError(AssertionError):
    """A peer did not do what a test waited for (timeout, early exit, bad output)."""


def require_installed(kind):
    """Assert (never skip: a missing install is a broken setup, and CI must say so) that the peer
    kind was installed by `make setup`."""
    if kind == "js":
        assert (JS_DIR / "node_modules" / "libp2p").is_dir(), \
            "js-libp2p missing: run `make setup` (npm ci in peers/js)"
    elif kind == "py":
        assert PY_PEER_PYTHON.exists(), "py-libp2p venv missing: run `make setup`"
    elif kind == "go":
        assert GO_PEER.exists(), "%s missing: run `make setup` (builds tests/interop/go_peer)" % GO_PEER
    elif kind == "rust":
        assert RUST_PEER.exists(), "%s missing: run `make setup` (builds tests/interop/rust_peer)" % RUST_PEER


def random_seed():
    return secrets.token_hex(32)


def launch_command(kind, seed, listen=DEFAULT_LISTEN, args=()):
    """The argv and extra environment that start one peer of `kind`."""
    common = ["--listen", listen, "--seed", seed] + [str(a) for a in args]
    env = {}
    if kind == "js":
        argv = [NODE, str(JS_PEER)] + common
    elif kind == "py":
        argv = [str(PY_PEER_PYTHON), str(PY_PEER)] + common
        env["PYTHONUNBUFFERED"] = "1"
    elif kind == "go":
        argv = [str(GO_PEER)] + common
    elif kind == "rust":
        argv = [str(RUST_PEER)] + common
        env.setdefault("RUST_LOG", os.environ.get("RUST_LOG", "warn"))
    elif kind == "microp2p":
        argv = [str(MICROP2P_CLI), "node"] + common
        env["PYTHONUNBUFFERED"] = "1"
    elif kind == "microp2p-mpy":
        heap = os.environ.get("MICROP2P_MPY_HEAP")
        argv = [str(MICROPYTHON)] + (["-X", "heapsize=" + heap] if heap else []) + ["-m", "microp2p.node"] + common
        # MICROPYPATH replaces the default search path, so keep the usual entries after ours.
        env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_DIR), ".frozen", "~/.micropython/lib", "/usr/lib/micropython"])
    else:
        raise ValueError("unknown peer kind %r (one of %s)" % (kind, ", ".join(KINDS)))
    return argv, env


class Peer:
    """One running peer process. Use start_peer() to make one."""

    def __init__(self, kind, argv, env=None, seed=None, log_path=None):
        self.kind = kind
        self.argv = list(argv)
        self.seed = seed
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="%s-" % kind, suffix=".stderr.log", dir=str(LOG_DIR))
            os.close(fd)
        self.log_path = Path(log_path)
        self.started = None
        self.bad_stdout = []          # non-JSON stdout lines: a contract violation tests may assert on
        self._events = []
        self._consumed = set()
        self._cond = threading.Condition()
        self._eof = False
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=full_env, cwd=str(ROOT), start_new_session=True)
        self._reader = threading.Thread(target=self._read_stdout, name="peer-%s-stdout" % kind, daemon=True)
        self._reader.start()

    # -- output side ------------------------------------------------------------------------
    def _read_stdout(self):
        try:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                try:
                    ev = json.loads(line)
                    if not isinstance(ev, dict) or "event" not in ev:
                        raise ValueError("not an event object")
                except ValueError:
                    with self._cond:
                        self.bad_stdout.append(line)
                    continue
                with self._cond:
                    if len(self._events) < EVENTS_MAX:
                        self._events.append(ev)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    @property
    def events(self):
        """A snapshot of every event seen so far, in order."""
        with self._cond:
            return list(self._events)

    def events_named(self, name):
        return [e for e in self.events if e.get("event") == name]

    def stderr_tail(self, lines=STDERR_TAIL_LINES):
        try:
            self._log.flush()
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self):
        return "%s peer %s (pid %s, exit %s)\n  argv: %s\n  stderr log: %s" % (
            self.kind, self.peer_id, self.proc.pid, self.proc.poll(), " ".join(self.argv), self.log_path)

    def fail(self, msg):
        evs = self.events
        raise PeerError("%s\n%s\n  last events: %s\n  bad stdout: %s\n--- stderr tail ---\n%s" % (
            msg, self.describe(), json.dumps(evs[-15:]), self.bad_stdout[-5:], self.stderr_tail()))

    def wait_for(self, event_name, predicate=None, timeout=DEFAULT_TIMEOUT, fail_on_error=False):
        """Return the first event named `event_name` (matching `predicate`) not returned before.

        Looks at everything seen since the peer started, so an event that came before the call
        still counts. Raises PeerError after `timeout` seconds, when the peer exits first, or
        (with fail_on_error) as soon as the peer reports an "error" event.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._scan(event_name, predicate, fail_on_error)
                if found is not None and found.get("event") == event_name:
                    return found
                if found is not None:
                    break
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        if found is not None:
            self.fail("%s reported an error while waiting for %r: %s" % (self.kind, event_name, json.dumps(found)))
        why = "exited" if self._eof else "timed out after %.1f s" % timeout
        self.fail("%s waiting for %r event: %s" % (self.kind, event_name, why))

    def _scan(self, event_name, predicate, fail_on_error):
        # Caller holds self._cond. Consumes and returns the first match (or error event).
        for i, ev in enumerate(self._events):
            if i in self._consumed:
                continue
            name = ev.get("event")
            if name == event_name and (predicate is None or predicate(ev)):
                self._consumed.add(i)
                return ev
            if fail_on_error and name == "error":
                self._consumed.add(i)
                return ev
        return None

    # -- input side -------------------------------------------------------------------------
    def send(self, cmd):
        """Write one JSON command line to the peer's stdin."""
        if self.proc.poll() is not None:
            self.fail("%s: cannot send %r, the peer has exited" % (self.kind, cmd))
        try:
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as e:
            self.fail("%s: cannot send %r: %s" % (self.kind, cmd, e))

    # -- identity ---------------------------------------------------------------------------
    @property
    def peer_id(self):
        return self.started.get("peerId") if self.started else None

    @property
    def addrs(self):
        return list(self.started.get("addrs", ())) if self.started else []

    @property
    def addr(self):
        """The first loopback TCP address with /p2p/<id>, ready for {"cmd": "dial"}."""
        for a in self.addrs:
            if a.startswith("/ip4/127.") and "/tcp/" in a and "/p2p-circuit" not in a:
                return a if "/p2p/" in a else a + "/p2p/" + self.peer_id
        self.fail("%s: no loopback TCP address in 'started' event" % self.kind)

    # -- lifetime ---------------------------------------------------------------------------
    @property
    def returncode(self):
        return self.proc.poll()

    def _wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _signal_group(self, sig):
        # The peer runs in its own session; signal only its group (npm/node helpers included).
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self, grace=STOP_GRACE):
        """Stop the peer: {"cmd":"stop"} + stdin EOF, then SIGTERM, then SIGKILL. Returns how it
        ended: "stop", "term" or "kill" (or "exited" when it was already gone)."""
        how = "exited"
        if self.proc.poll() is None:
            how = "stop"
            try:
                self.proc.stdin.write(b'{"cmd": "stop"}\n')
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
            if not self._wait_exit(grace):
                how = "term"
                self._signal_group(signal.SIGTERM)
                if not self._wait_exit(TERM_GRACE):
                    how = "kill"
                    self._signal_group(signal.SIGKILL)
                    self._wait_exit(KILL_GRACE)
        else:
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
        self._reader.join(timeout=KILL_GRACE)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self._log.close()
        return how

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return "<Peer %s %s>" % (self.kind, self.peer_id)


def start_peer(kind, seed=None, listen=DEFAULT_LISTEN, args=(), timeout=STARTUP_TIMEOUT):
    """Start a peer of `kind` (one of KINDS) and wait for its
    "started" event. The seed (64 hex digits) defaults to a fresh random one."""
    seed = seed or random_seed()
    argv, env = launch_command(kind, seed, listen, args)
    peer = Peer(kind, argv, env, seed=seed)
    try:
        peer.started = peer.wait_for("started", timeout=timeout)
        if peer.events and peer.events[0].get("event") != "started":
            peer.fail("%s: first event was not 'started'" % kind)
    except BaseException:
        peer.stop()
        raise
    return peer


def peer_id_of(kind, seed, timeout=DEFAULT_TIMEOUT):
    """The peer ID a peer of `kind` derives from `seed`, via its --print-id / `microp2p id`."""
    if kind == "js":
        argv = [NODE, str(JS_PEER), "--print-id", "--seed", seed]
    elif kind == "py":
        argv = [str(PY_PEER_PYTHON), str(PY_PEER), "--print-id", "--seed", seed]
    elif kind == "go":
        argv = [str(GO_PEER), "--print-id", "--seed", seed]
    elif kind == "rust":
        argv = [str(RUST_PEER), "--print-id", "--seed", seed]
    elif kind == "microp2p":
        argv = [str(MICROP2P_CLI), "id", "--seed", seed]
    else:
        raise ValueError("no --print-id for %r" % kind)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, cwd=str(ROOT))
    if r.returncode != 0:
        raise PeerError("%s exited %d\n%s" % (" ".join(argv), r.returncode, r.stderr.decode("utf-8", "replace")))
    return r.stdout.decode().strip()


if __name__ == "__main__":
    # Manual use: python tests/interop/peers.py js   -> starts a js peer, prints its events.
    with start_peer(sys.argv[1] if len(sys.argv) > 1 else "js") as p:
        print(p.started)
