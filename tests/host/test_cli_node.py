# The `microp2p node` / `microp2p ping` command-line contract (docs/architecture.md, "Command line"),
# on CPython and on the MicroPython unix port: JSON lines only on stdout, `started` first with
# the real bound port, exit within seconds of stop / EOF / SIGTERM; ping prints rtt lines and
# exits non-zero when the peer cannot be reached.
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, ".venv", "bin")
SEED_A = "11" * 32


def node_cmd(runtime, *args):
    if runtime == "cpython":
        return [os.path.join(BIN, "microp2p"), "node"] + list(args), None
    env = dict(os.environ)
    env["MICROPYPATH"] = os.path.join(ROOT, "firmware") + ":.frozen"
    return [os.path.join(BIN, "micropython"), "-m", "microp2p.node"] + list(args), env


def start_node(runtime, *args):
    argv, env = node_cmd(runtime, "--listen", "/ip4/127.0.0.1/tcp/0", *args)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, cwd=ROOT)
    line = p.stdout.readline()
    started = json.loads(line)
    assert started["event"] == "started", started
    return p, started


def wait_exit(p, limit):
    try:
        return p.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("node did not exit within %s s" % limit)


def check_stdout_is_json(p):
    rest = p.stdout.read().decode()
    for line in rest.splitlines():
        json.loads(line)  # every stdout line is JSON
    return rest


def test_node_started_reports_real_port_and_stops_on_command():
    for runtime in ("cpython", "micropython"):
        p, started = start_node(runtime, "--seed", SEED_A)
        addr = started["addrs"][0]
        port = int(re.search(r"/tcp/(\d+)/", addr).group(1))
        assert port != 0
        assert addr.endswith("/p2p/" + started["peerId"])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # really bound
        p.stdin.write(b'{"cmd":"stop"}\n')
        p.stdin.flush()
        assert wait_exit(p, 5) == 0
        out = check_stdout_is_json(p)
        assert '"stopped"' in out, (runtime, out)


def test_node_exits_on_stdin_eof_and_sigterm():
    for runtime in ("cpython", "micropython"):
        p, _ = start_node(runtime)
        p.stdin.close()
        assert wait_exit(p, 5) == 0
    p, _ = start_node("cpython")
    p.send_signal(signal.SIGTERM)
    assert wait_exit(p, 5) == 0
    check_stdout_is_json(p)


def test_ping_cli_prints_rtts_and_fails_when_unreachable():
    for runtime in ("cpython", "micropython"):
        p, started = start_node(runtime, "--seed", SEED_A)
        try:
            r = subprocess.run([os.path.join(BIN, "microp2p"), "ping", started["addrs"][0], "--count", "3"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            lines = [l for l in r.stdout.splitlines() if "rtt=" in l]
            assert len(lines) == 3, r.stdout
            for l in lines:
                assert float(re.search(r"rtt=([0-9.]+) ms", l).group(1)) >= 0
        finally:
            p.stdin.close()
            wait_exit(p, 5)
    # nothing listens there any more
    r = subprocess.run([os.path.join(BIN, "microp2p"), "ping", started["addrs"][0], "--count", "1",
                        "--timeout", "5"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "failed" in r.stderr


def test_node_dial_to_wrong_peer_id_reports_error_and_keeps_running():
    a, sa = start_node("cpython", "--seed", SEED_A)
    b, sb = start_node("micropython")
    try:
        wrong = sa["addrs"][0].rsplit("/p2p/", 1)[0] + "/p2p/" + sb["peerId"]
        b.stdin.write((json.dumps({"cmd": "dial", "addr": wrong}) + "\n").encode())
        b.stdin.write((json.dumps({"cmd": "dial", "addr": sa["addrs"][0]}) + "\n").encode())
        b.stdin.flush()
        seen = {}
        deadline = time.time() + 30
        while time.time() < deadline and not ("dial:error" in seen and "dial:ok" in seen):
            ev = json.loads(b.stdout.readline())
            seen[ev["event"]] = ev
        assert "dial:error" in seen and "AuthError" in seen["dial:error"]["error"], seen
        assert seen["dial:ok"]["peer"] == sa["peerId"], seen
    finally:
        for p in (a, b):
            p.stdin.close()
            wait_exit(p, 5)
