# Every CLI command given bad arguments: a one-line error (or argparse usage) on stderr, a
# non-zero exit, never a traceback.
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = "12D3KooWDBwiYEx4nwKo9jzJmTttv9bsbz4QZxFx1nE4bRjga1WL"
TMP = tempfile.mkdtemp(prefix="microp2p-cli-errors-")
BAD_TOML = os.path.join(TMP, "bad.toml")
with open(BAD_TOML, "w") as f:
    f.write("[devices\nlisten = 3\n")
NOT_A_KEY = os.path.join(TMP, "not-a-key")
with open(NOT_A_KEY, "wb") as f:
    f.write(b"\x00garbage")

CASES = [
    ["id", "--seed", "zz"], ["id", "--key", "/nonexistent/key"], ["id", "--key", NOT_A_KEY],
    ["keygen"], ["keygen", "--out", "/nonexistent/dir/key"],
    ["ping", "garbage"], ["ping", "/ip4/127.0.0.1/tcp/1"], ["ping", "/ip4/127.0.0.1/tcp/1/p2p/" + PEER],
    ["ping", "/ip4/127.0.0.1/tcp/99999/p2p/" + PEER],
    ["node", "--seed", "zz"], ["node", "--listen", "garbage"], ["node", "--listen", "/ip4/127.0.0.1/tcp/99999"],
    ["node", "--key", "/nonexistent"], ["node", "--key", NOT_A_KEY], ["node", "--bogus", "1"], ["node", "--dht", "maybe"],
    ["gateway", "--config", "/nonexistent.toml"], ["gateway", "--config", BAD_TOML],
    ["watch"], ["watch", "garbage"], ["watch", "/ip4/1.2.3.4/tcp/1"],
    ["emulate", "--tcp", "-3"], ["emulate", "--tcp", "many"],
    ["build"], ["build", "--board", "nosuch"], ["provision", "--board", "esp32"],
    ["provision", "--board", "esp32", "--out", os.path.join(TMP, "p"), "--gateway", "garbage"],
    ["deploy", "--board", "esp32", "--port", "/dev/nonexistent", "--build", "/nonexistent"],
    ["flash", "--board", "esp32", "--port", "/dev/null", "--firmware", "/nonexistent.bin"],
    ["nosuchcommand"],
]


def test_bad_arguments_give_one_line_errors_and_no_traceback():
    bad = []
    for args in CASES:
        r = subprocess.run([sys.executable, "-m", "microp2p_host.cli"] + args, cwd=ROOT, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if r.returncode == 0 or "Traceback" in r.stderr or "Traceback" in r.stdout or not r.stderr.strip():
            bad.append((args, r.returncode, r.stderr[-400:]))
    assert not bad, "\n".join("%s -> exit %s: %s" % b for b in bad)


def test_version_everywhere():
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("microp2p ")
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "node", "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("microp2p ")
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "node", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and '{"cmd":"find_peer"' in r.stdout and '{"cmd":"stop"}' in r.stdout


def test_provision_command_from_and_private_config():
    import json
    import stat
    out = os.path.join(TMP, "prov")
    gw = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "provision", "--board", "esp32", "--out", out,
                        "--gateway", "/ip4/192.0.2.1/tcp/4001/p2p/" + gw, "--command-from", PEER,
                        "--wifi-ssid", "home", "--wifi-password", "secret"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    path = os.path.join(out, "config.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cfg = json.load(open(path))
    assert cfg["command_from"] == [gw, PEER] and cfg["wifi"]["password"] == "secret"
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli", "provision", "--board", "esp32", "--out",
                        os.path.join(TMP, "prov2"), "--command-from", "nobody"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not a peer ID" in r.stderr and "Traceback" not in r.stderr
