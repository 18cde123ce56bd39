# `microp2p emulate` as a user runs it: from any folder (even one holding a `microp2p` folder),
# a summary with no null standing for "not measured", serial link fault figures with --ber, and a
# device that dies shown with its last stderr lines in a one-line error.
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _emulate(cwd, *args, env=None):
    # the console script, as users run it (python -m would put the cwd first on sys.path itself)
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "microp2p"), "emulate"] + list(args), cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=180)


def test_emulate_from_a_folder_with_a_microp2p_folder_and_no_nulls():
    cwd = tempfile.mkdtemp(prefix="microp2p-cwd-")
    os.makedirs(os.path.join(cwd, "microp2p"))
    open(os.path.join(cwd, "microp2p", "__init__.py"), "w").write("raise ImportError('the wrong microp2p')\n")
    r = _emulate(cwd, "--tcp", "1", "--serial", "1", "--ber", "1e-3", "--duration", "6")
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["connected"] == 2 and s["sent"] > 0

    def no_nulls(v):
        if isinstance(v, dict):
            return all(no_nulls(x) for x in v.values())
        if isinstance(v, list):
            return all(no_nulls(x) for x in v)
        return v is not None
    assert no_nulls(s), s
    assert "received" not in s          # no js subscriber: not measured, so not there
    serial = [d for d in s["perDevice"] if d["link"] == "serial"][0]
    assert serial["linkFaults"]["toGateway"]["bytes"] > 0 and "flips" in serial["linkFaults"]["toDevice"]


def test_a_device_that_cannot_start_is_shown_with_its_stderr():
    bad = tempfile.mkdtemp(prefix="microp2p-badmpy-")
    exe = os.path.join(bad, "micropython")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\necho 'ImportError: no module named sensor_node' >&2\nexit 1\n")
    os.chmod(exe, 0o755)
    env = dict(os.environ, MICROP2P_MICROPYTHON=exe)
    r = _emulate(ROOT, "--tcp", "1", "--duration", "5", env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "ImportError: no module named sensor_node" in r.stderr, r.stderr[-2000:]
