# The device parts (firmware/parts/<part>/manifest.py): every portable module belongs to a part,
# the committed mip package.json files match the manifests, a board build takes exactly its parts,
# and `mpremote mip install` of a part into the MicroPython unix port (over a pty, as onto a
# board) gives a node that runs.
import json
import os
import shutil
import subprocess
import tempfile
import time

from microp2p_host import parts, tooling
from test_tooling import PtyRelay, MPY, ROOT

FIRMWARE = os.path.join(ROOT, "firmware")


def _portable_modules():
    out = set()
    for pkg in ("microp2p", "sensor_node"):
        for d, dirs, files in os.walk(os.path.join(FIRMWARE, pkg)):
            dirs[:] = [x for x in dirs if not x.startswith(("_", "."))]
            for f in files:
                if f.endswith(".py"):
                    out.add(os.path.relpath(os.path.join(d, f), FIRMWARE).replace(os.sep, "/"))
    return out


def test_every_module_is_in_a_part_and_package_jsons_are_current():
    names = parts.part_names()
    assert {"microp2p-core", "microp2p-conn", "microp2p-pubsub", "microp2p-serial", "microp2p-cli",
            "sensor-node"} <= set(names)
    covered = set()
    for n in names:
        covered |= {t for t, _ in parts.files_of([n])}
        with open(os.path.join(parts.PARTS_DIR, n, "package.json")) as f:
            committed = f.read()
        assert committed == parts.package_json_text(n), \
            "%s/package.json is stale: run `microp2p build --packages`" % n
        pj = json.loads(committed)
        for target, url in pj["urls"]:
            assert os.path.isfile(os.path.join(parts.PARTS_DIR, n, url)), url
    missing = _portable_modules() - covered
    assert not missing, "modules in no part (a device build would miss them): %s" % sorted(missing)


def test_device_parts_leave_out_the_cli_and_each_board_gets_its_parts():
    dev = {t for t, _ in parts.files_of(["sensor-node"])}
    assert "microp2p/cli.py" not in dev and "microp2p/node.py" not in dev
    assert "microp2p/io/node.py" in dev and "sensor_node/app.py" in dev and "microp2p/io/serial.py" in dev
    core = {t for t, _ in parts.files_of(["microp2p-core"])}
    assert not [t for t in core if t.startswith(("microp2p/conn/", "microp2p/io/", "microp2p/pubsub/"))]
    unix = {rel for rel, _ in tooling.source_files(tooling.load_board("unix"))}
    esp = {rel for rel, _ in tooling.source_files(tooling.load_board("esp32"))}
    # the unix board runs the node CLI, which brings the Kademlia parts (`node --dht`)
    kad = {t for t, _ in parts.files_of(["microp2p-kad-server"])} - esp
    assert "microp2p/io/kad.py" in kad and "microp2p/proto/kad/server.py" in kad
    assert unix - esp == {"microp2p/cli.py", "microp2p/node.py"} | kad


def test_unknown_part_is_a_clear_error():
    try:
        parts.files_of(["no-such-part"])
    except parts.PartError as e:
        assert "unknown part" in str(e) and "sensor-node" in str(e)
    else:
        raise AssertionError("unknown part accepted")


def test_mip_install_into_the_unix_port_and_run_the_installed_node():
    out = tempfile.mkdtemp(prefix="microp2p-mip-")
    board_fs = os.path.join(out, "boardfs")
    os.makedirs(board_fs)
    relay = PtyRelay(board_fs, board_fs)
    node = None
    try:
        time.sleep(0.3)
        for part in ("sensor-node", "microp2p-cli"):
            r = subprocess.run([os.path.join(os.path.dirname(MPY), "mpremote"), "connect", relay.device,
                                "resume", "mip", "install", "--target", "lib",
                                os.path.join(parts.PARTS_DIR, part, "package.json")],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
            assert r.returncode == 0, r.stdout
        installed = set()
        lib = os.path.join(board_fs, "lib")
        for d, _, files in os.walk(lib):
            for f in files:
                installed.add(os.path.relpath(os.path.join(d, f), lib).replace(os.sep, "/"))
        assert installed == {t for t, _ in parts.files_of(["sensor-node", "microp2p-cli"])}
        # the installed node runs: `micropython -m microp2p.node` from lib/ alone
        env = dict(os.environ, MICROPYPATH=lib + ":.frozen")
        node = subprocess.Popen([MPY, "-m", "microp2p.node", "--listen", "/ip4/127.0.0.1/tcp/0"], cwd=out,
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = json.loads(node.stdout.readline())
        assert started["event"] == "started" and started["runtime"] == "micropython"
        assert started["addrs"][0].startswith("/ip4/127.0.0.1/tcp/")
        node.stdin.write('{"cmd":"stop"}\n')
        node.stdin.flush()
        assert node.wait(20) == 0
    finally:
        if node is not None and node.poll() is None:
            node.kill()
        relay.close()
        shutil.rmtree(out, ignore_errors=True)


def test_board_freeze_manifests_freeze_exactly_the_board_parts():
    for name in ("esp32", "esp32s3", "rp2_pico_w", "rp2_pico2_w"):
        board = tooling.load_board(name)
        r = parts.read(os.path.join(ROOT, "boards", name, "manifest.py"))
        assert r.external == ["$(PORT_DIR)/boards/manifest.py"]
        assert sorted(r.files) == parts.files_of(board["parts"]), name
        # the generated one (absolute paths) names the same parts and the exact make command
        text = tooling.freeze_manifest_text(board)
        assert "require('sensor-node')" in text and parts.PARTS_DIR in text
        cmd = tooling.freeze_command(board, "/tmp/m.py")
        assert cmd == "make -C ports/%s BOARD=%s FROZEN_MANIFEST=/tmp/m.py" % (
            board["firmware"]["port"], board["firmware"]["board"])


def test_build_freeze_cli_writes_the_manifest_and_prints_the_command():
    from test_tooling import _cli
    out = tempfile.mkdtemp(prefix="microp2p-freeze-")
    try:
        rc, so, se = _cli(["build", "--board", "rp2_pico2_w", "--freeze", "--out", out])
        assert rc == 0, se
        assert so.strip() == "make -C ports/rp2 BOARD=RPI_PICO2_W FROZEN_MANIFEST=%s" % os.path.join(out, "manifest.py")
        r = parts.read(os.path.join(out, "manifest.py"))
        assert sorted(r.files) == parts.files_of(["sensor-node"])
        rc, so, se = _cli(["build", "--freeze", "--out", out])
        assert rc != 0 and "--board is required" in se and "Traceback" not in se
    finally:
        shutil.rmtree(out, ignore_errors=True)
