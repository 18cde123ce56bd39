# `microp2p gateway` as a process: identity file, config errors, bootstrap retry with backoff,
# bounded shutdown on SIGTERM. All waits bounded.
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from peers import start_peer  # noqa: E402
import microp2p_host  # noqa: E402,F401
from microp2p.identity.keys import Ed25519PrivateKey  # noqa: E402
from microp2p.identity.peerid import PeerId  # noqa: E402

CLI = [sys.executable, "-m", "microp2p_host.cli"]


def _gateway(cfg_text, d):
    (d / "gw.toml").write_text(cfg_text)
    return subprocess.Popen(CLI + ["gateway", "--config", str(d / "gw.toml")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=str(ROOT))


def _events_until(proc, name, timeout, pred=None):
    """Events read from proc's stdout until one named `name` (returns them all)."""
    out = []
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                ev = json.loads(line)
                out.append(ev)
                if ev["event"] == name and (pred is None or pred(ev)):
                    return out
        elif proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("no %s event within %s s; got %s; stderr %s" % (
        name, timeout, [e["event"] for e in out], proc.stderr.read() if proc.poll() is not None else ""))


def _stop(proc, bound=6.0):
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("gateway did not stop within %s s of SIGTERM" % bound)
    return time.monotonic() - t0


def test_identity_created_0600_and_sigterm_is_clean():
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        p = _gateway('[identity]\nkey_file = "id/gw.key"\n[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n', d)
        try:
            evs = _events_until(p, "started", 20)
            st = os.stat(d / "id" / "gw.key")
            assert stat.S_IMODE(st.st_mode) == 0o600
            started = evs[-1]
            assert started["addrs"] and started["addrs"][0].endswith("/p2p/" + started["peerId"])
            assert "/tcp/0/" not in started["addrs"][0]
            took = _stop(p)
            rest = p.stdout.read().decode()
            assert '"stopped"' in rest and p.returncode == 0, (p.returncode, rest)
            print("gateway stopped %.2f s after SIGTERM" % took)
        finally:
            if p.poll() is None:
                p.kill()
        # a second start keeps the same identity
        p = _gateway('[identity]\nkey_file = "id/gw.key"\n[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n', d)
        try:
            again = _events_until(p, "started", 20)[-1]
            assert again["peerId"] == started["peerId"]
        finally:
            _stop(p)


def test_bad_config_fails_with_message():
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        for text, words in [('[devices]\nallow = ["not-a-peer-id"]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n', "not a peer ID"),
                            ('[network]\nlisten = "/ip4/127.0.0.1/tcp/0"\nbootstrap = ["/ip4/127.0.0.1/tcp/1"]\n', "/p2p/"),
                            ('[network\n', "gateway config"),
                            ('', "nothing to do")]:
            (d / "gw.toml").write_text(text)
            r = subprocess.run(CLI + ["gateway", "--config", str(d / "gw.toml")], capture_output=True, text=True,
                               timeout=20, cwd=str(ROOT))
            assert r.returncode == 1 and words in r.stderr, (text, r.returncode, r.stderr)
            assert r.stdout == ""


def test_bootstrap_retries_with_backoff_then_connects_to_js():
    js = start_peer("js")
    try:
        with tempfile.TemporaryDirectory() as td:
            d = Path(td)
            # nobody listens on port 9 (the peer ID is a fresh one, not the js peer's)
            dead = "/ip4/127.0.0.1/tcp/9/p2p/" + str(PeerId.from_public_key(Ed25519PrivateKey.generate().public_key))
            cfg = ('[identity]\nkey_file = "gw.key"\n[network]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n'
                   'bootstrap = [%s, %s]\n[gateway]\nbootstrap_max_attempts = 3\n') % (json.dumps(dead), json.dumps(js.addr))
            p = _gateway(cfg, d)
            try:
                evs = _events_until(p, "bootstrap:failed", 30)
                errors = [e for e in evs if e["event"] == "bootstrap:error"]
                assert [e["attempt"] for e in errors] == [1, 2, 3]
                assert [e["retryInS"] for e in errors] == [1.0, 2.0, None]   # doubling, then give up
                assert any(e["event"] == "bootstrap:connected" and e["addr"] == js.addr for e in evs)
                assert any(e["event"] == "peer:connected" and e["peer"] == js.peer_id for e in evs)
            finally:
                _stop(p)
    finally:
        js.stop()
