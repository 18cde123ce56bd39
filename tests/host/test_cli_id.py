# `microp2p id` and `microp2p keygen` through the installed console script, as scripts use them.
import os
import stat
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / ".venv" / "bin" / "microp2p")

SPEC_SEED = "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
SPEC_PEER = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"  # libp2p/specs peer-ids vector
SPEC_PRIV = bytes.fromhex("08011240" + SPEC_SEED + "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def test_id_from_seed_prints_only_the_peer_id():
    r = run("id", "--seed", SPEC_SEED)
    assert r.returncode == 0, r.stderr
    assert r.stdout == SPEC_PEER + "\n"


def test_id_from_key_file():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "k")
        with open(p, "wb") as f:
            f.write(SPEC_PRIV)
        r = run("id", "--key", p)
        assert r.returncode == 0, r.stderr
        assert r.stdout == SPEC_PEER + "\n"


def test_id_rejects_bad_input():
    for args in (["id"], ["id", "--seed", "00"], ["id", "--seed", "zz" * 32],
                 ["id", "--seed", SPEC_SEED, "--key", "/nonexistent"]):
        r = run(*args)
        assert r.returncode == 2, (args, r.returncode)
        assert r.stdout == ""
    r = run("id", "--key", "/nonexistent/key")
    assert r.returncode == 1 and "cannot read key file" in r.stderr and r.stdout == ""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "k")
        with open(p, "wb") as f:
            f.write(SPEC_PRIV[:-1])
        r = run("id", "--key", p)
        assert r.returncode == 1 and "not a usable key file" in r.stderr and r.stdout == ""


def test_keygen_writes_a_0600_key_and_refuses_to_overwrite():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "id.key")
        r = run("keygen", "--out", p)
        assert r.returncode == 0, r.stderr
        peer = r.stdout.strip()
        assert peer.startswith("12D3KooW")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        data = open(p, "rb").read()
        assert len(data) == 68 and data[:4] == b"\x08\x01\x12\x40"
        r = run("id", "--key", p)
        assert r.returncode == 0 and r.stdout.strip() == peer
        # a second keygen must not touch the existing identity
        r = run("keygen", "--out", p)
        assert r.returncode != 0
        assert "already exists" in r.stderr
        assert open(p, "rb").read() == data
        # two keygens give two identities
        p2 = os.path.join(d, "id2.key")
        r2 = run("keygen", "--out", p2)
        assert r2.returncode == 0 and r2.stdout.strip() != peer


def test_keygen_into_missing_directory_fails_cleanly():
    r = run("keygen", "--out", "/nonexistent-dir/x.key")
    assert r.returncode == 1 and "cannot create" in r.stderr


def test_main_is_callable_in_process():
    import contextlib
    import io
    from microp2p_host.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["id", "--seed", SPEC_SEED]) == 0
    assert out.getvalue() == SPEC_PEER + "\n"
