# `microp2p build | provision | deploy | flash` without hardware:
#   build      real mpy-cross output for every board; the unix .mpy build runs the app elsewhere
#   provision  key file mode, config contents, the printed peer ID
#   deploy     real mpremote against the MicroPython unix port's REPL on a pty (relayed through a
#              second pty, `resume` because the unix port exits on a soft reset), then an import
#              on the "board" of what was copied
#   flash      real esptool write-flash against PyPI esp32-mock-bootloader (a ROM bootloader
#              protocol emulator on a pty), read back byte-identical; UF2 copy to a fake drive
import json
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tty

from microp2p_host import tooling
from microp2p_host.cli import main as cli_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPY = os.path.join(ROOT, ".venv", "bin", "micropython")
BIN = os.path.dirname(sys.executable)
# MicroPython .mpy header: b"M", version 6, then (arch << 2) | sub-version
MPY_ARCH = {"x64": 2, "armv6m": 4, "armv7emsp": 7, "xtensawin": 10}


def _cli(argv, sub=False):
    """(exit status, stdout, stderr) of `microp2p ARGV`: in-process, or as a process when the
    output of the tools it runs (mpremote, esptool) matters."""
    if not sub:
        import contextlib
        import io
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli_main(argv)
            except SystemExit as e:
                rc = e.code
        return rc, out.getvalue(), err.getvalue()
    r = subprocess.run([sys.executable, "-m", "microp2p_host.cli"] + argv, cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


def _tmp():
    return tempfile.mkdtemp(prefix="microp2p-tool-")


def test_board_files():
    names = tooling.board_names()
    assert set(names) >= {"esp32", "esp32s3", "rp2_pico_w", "rpi", "unix"}
    for n in names:
        b = tooling.load_board(n)
        assert b["board"] == n and b["link"] in ("tcp", "serial") and b["sensor"]["kind"]
        assert b["runtime"] in ("micropython", "cpython")
        if b["runtime"] == "micropython":
            assert b["march"] in MPY_ARCH and b["heap_hint_kb"] > 0


def test_build_every_board():
    out = _tmp()
    try:
        for name in ("esp32", "esp32s3", "rp2_pico_w", "rp2_pico2_w", "unix"):
            d = os.path.join(out, name)
            rc, so, se = _cli(["build", "--board", name, "--out", d])
            assert rc == 0, se
            with open(os.path.join(d, "manifest.json")) as f:
                man = json.load(f)
            board = tooling.load_board(name)
            assert man["march"] == board["march"]
            paths = [x["path"] for x in man["files"]]
            assert "main.py" in paths and "microp2p/io/node.mpy" in paths and "sensor_node/app.mpy" in paths
            assert "microp2p/crypto/accel_viper.mpy" in paths
            assert ("microp2p/cli.mpy" in paths) == (name == "unix")
            assert not [p for p in paths if p.endswith(".py") and p != "main.py"]
            total = 0
            for x in man["files"]:
                full = os.path.join(d, x["path"])
                assert os.path.getsize(full) == x["size"]
                total += x["size"]
                if x["path"].endswith(".mpy"):
                    with open(full, "rb") as f:
                        head = f.read(4)
                    assert head[0:1] == b"M" and head[1] == 6
                    if x["path"] == "microp2p/crypto/accel_viper.mpy":  # native code: arch recorded
                        assert head[2] >> 2 == MPY_ARCH[board["march"]], (name, head)
            assert total == man["total_bytes"] and man["total_bytes"] < man["source_bytes"]
        # a CPython board has nothing to build
        rc, so, se = _cli(["build", "--board", "rpi", "--out", os.path.join(out, "rpi")])
        assert rc == 0 and "CPython" in se and not os.path.exists(os.path.join(out, "rpi"))
        rc, so, se = _cli(["build", "--board", "nosuchboard"])
        assert rc != 0 and "unknown board" in se
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_build_runs_on_the_unix_port():
    out = _tmp()
    try:
        tooling.build(tooling.load_board("unix"), out)
        env = dict(os.environ, MICROPYPATH=out + ":.frozen")
        code = ("from microp2p.codec import cbor; import sensor_node.app as a; "
                "print(cbor.decode(cbor.encode({'a': [1, -2, 1.5]})), a.DEFAULTS['topic'], cbor.__file__)")
        r = subprocess.run([MPY, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout
        assert "{'a': [1, -2, 1.5]} sensors/readings" in r.stdout and ".mpy" in r.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_provision_writes_key_and_config():
    out = _tmp()
    try:
        dev = os.path.join(out, "dev1")
        gw = "/ip4/192.168.1.2/tcp/4001/p2p/12D3KooWDBwiYEx4nwKo9jzJmTttv9bsbz4QZxFx1nE4bRjga1WL"
        rc, so, se = _cli(["provision", "--board", "esp32", "--out", dev, "--gateway", gw,
                           "--link", "serial", "--interval-ms", "5000", "--wifi-ssid", "lab"])
        assert rc == 0, se
        peer = so.strip()
        assert peer.startswith("12D3KooW") and "\n" not in peer
        key = os.path.join(dev, "device.key")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        rc, so2, _ = _cli(["id", "--key", key])
        assert so2.strip() == peer
        with open(os.path.join(dev, "config.json")) as f:
            cfg = json.load(f)
        assert cfg["gateway"] == gw and cfg["link"] == "serial" and cfg["serial_port"] == 2
        assert cfg["uart_pins"] == {"tx": 17, "rx": 16} and cfg["interval_ms"] == 5000
        assert cfg["sensor"] == {"kind": "internal_temp"} and cfg["key_file"] == "device.key"
        assert cfg["wifi"]["ssid"] == "lab"
        # the app accepts it (relative key path resolved next to the config on the board)
        sys.path.insert(0, os.path.join(ROOT, "firmware"))
        from sensor_node import app
        full = app.make_config(cfg, "/config.json")
        assert full["key_file"] == "/device.key" and full["queue_max"] == 32
        # never overwrite a provisioned device
        rc, _, se = _cli(["provision", "--board", "esp32", "--out", dev, "--gateway", gw])
        assert rc != 0 and "refusing" in se
        # unix has no UART default: a serial link needs --serial-port
        rc, _, se = _cli(["provision", "--board", "unix", "--out", os.path.join(out, "d2"), "--link", "serial"])
        assert rc != 0 and "--serial-port" in se
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_deploy_command_line():
    out = _tmp()
    try:
        b = os.path.join(out, "build")
        tooling.build(tooling.load_board("esp32"), b)
        dev = os.path.join(out, "dev")
        _cli(["provision", "--board", "esp32", "--out", dev, "--gateway", "/p2p/12D3KooWDBwiYEx4nwKo9jzJmTttv9bsbz4QZxFx1nE4bRjga1WL"])
        argv = tooling.deploy_commands(b, "/dev/ttyUSB0", dev, resume=False, reset=True)
        assert argv[:3] == [sys.executable, "-m", "mpremote"]
        assert argv[3:5] == ["connect", "/dev/ttyUSB0"] and "resume" not in argv
        i = argv.index("cp")
        assert argv[i + 1] == "-r" and argv[argv.index("+") - 1] == ":/"
        assert os.path.join(b, "main.py") in argv and os.path.join(b, "microp2p") in argv
        assert os.path.join(b, "manifest.json") not in argv
        assert argv[-2:] == ["+", "reset"]
        assert os.path.join(dev, "device.key") in argv and os.path.join(dev, "config.json") in argv
        # a fake runner sees the same command from the CLI path
        seen = []

        class A:
            board = "esp32"; port = "/dev/ttyUSB0"; build = b; device = dev; resume = False
            reset = True; dry_run = False
        assert tooling.run_deploy(A, runner=lambda a: seen.append(a) or 0) == 0
        assert seen == [argv]
        try:
            tooling.run_deploy(A, runner=lambda a: 3)
            assert False
        except tooling.ToolError as e:
            assert "exit 3" in str(e)
        try:
            tooling.deploy_commands(out, "/dev/ttyUSB0")
            assert False
        except tooling.ToolError as e:
            assert "not a build" in str(e)
    finally:
        shutil.rmtree(out, ignore_errors=True)


class PtyRelay:
    """The unix port's REPL on pty A, mpremote on pty B, bytes copied between the masters (the
    REPL and mpremote cannot share one pty)."""

    def __init__(self, cwd, path):
        self.ma, sa = os.openpty()
        self.mb, sb = os.openpty()
        for fd in (self.ma, sa, self.mb, sb):
            tty.setraw(fd)
        self.device = os.ttyname(sb)
        self._sb = sb
        env = dict(os.environ, MICROPYPATH=path + ":.frozen")
        self.proc = subprocess.Popen([MPY, "-X", "heapsize=2M"], stdin=sa, stdout=sa, stderr=sa,
                                     cwd=cwd, env=env, close_fds=True)
        os.close(sa)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.ma, self.mb], [], [], 0.1)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                os.write(self.mb if fd == self.ma else self.ma, data)

    def close(self):
        self._stop = True
        self.thread.join(5)
        self.proc.kill()
        self.proc.wait(10)
        for fd in (self.ma, self.mb, self._sb):
            os.close(fd)


def test_deploy_to_the_unix_port_with_mpremote():
    out = _tmp()
    board_fs = os.path.join(out, "boardfs")
    os.makedirs(board_fs)
    relay = None
    try:
        b = os.path.join(out, "build")
        tooling.build(tooling.load_board("unix"), b)
        dev = os.path.join(out, "dev")
        rc, peer, se = _cli(["provision", "--board", "unix", "--out", dev, "--gateway",
                             "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDBwiYEx4nwKo9jzJmTttv9bsbz4QZxFx1nE4bRjga1WL"])
        assert rc == 0, se
        relay = PtyRelay(board_fs, board_fs)
        time.sleep(0.3)
        rc, so, se = _cli(["deploy", "--board", "unix", "--port", relay.device, "--build", b,
                           "--device", dev, "--resume"])
        assert rc == 0, so + se
        # again over the existing files (a redeploy)
        rc, so, se = _cli(["deploy", "--board", "unix", "--port", relay.device, "--build", b,
                           "--device", dev, "--resume"])
        assert rc == 0, so + se
        assert not os.path.exists(os.path.join(board_fs, "microp2p", "microp2p"))
        for p in ("main.py", "config.json", "device.key", "microp2p/io/node.mpy", "microp2p/crypto/pure.mpy",
                  "microp2p/pubsub/gossipsub.mpy", "sensor_node/app.mpy"):
            got = os.path.join(board_fs, p)
            src = os.path.join(dev if p in ("config.json", "device.key") else b, p)
            with open(got, "rb") as f1, open(src, "rb") as f2:
                assert f1.read() == f2.read(), p
        # the "board" imports what was deployed and reads its identity from its own files
        code = ("from sensor_node import app; from microp2p.identity import keys; from microp2p.identity.peerid import PeerId; "
                "c = app.load_config('config.json'); "
                "print('PEER', PeerId.from_public_key(keys.load_private_key(c['key_file']).public_key))")
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", relay.device, "resume", "exec", code],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        assert r.returncode == 0 and "PEER " + peer.strip() in r.stdout, r.stdout
    finally:
        if relay is not None:
            relay.close()
        shutil.rmtree(out, ignore_errors=True)


def _mock_bootloader(chip):
    p = subprocess.Popen([os.path.join(BIN, "esp32-mock-bootloader"), "run", "--pty", "--chip", chip,
                          "--timeout", "120"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    line = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            line = p.stdout.readline()
            if b"/dev/pts/" in line:
                return p, line.decode().split()[-1] if line.startswith(b"Mock") else line.decode().strip()
    p.kill()
    raise AssertionError("mock bootloader did not start: %r" % line)


def test_flash_esp32_against_mock_bootloader():
    out = _tmp()
    mock = None
    try:
        fw = os.path.join(out, "fw.bin")
        with open(fw, "wb") as f:
            f.write(bytes([0xE9, 3, 2, 0x20]) + os.urandom(8188))
        mock, port = _mock_bootloader("esp32")
        rc, so, se = _cli(["flash", "--board", "esp32", "--port", port, "--firmware", fw, "--baud", "115200"],
                          sub=True)
        assert rc == 0, so + se
        assert "Hash of data verified" in so + se
        # the flash now holds exactly fw.bin at the board's offset (the mock compares MD5s), and a
        # different file does not verify
        def verify(path):
            return subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "--port", port,
                                   "--baud", "115200", "verify-flash", "0x1000", path],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        r = verify(fw)
        assert r.returncode == 0 and "verification successful" in r.stdout.lower(), r.stdout
        other = os.path.join(out, "other.bin")
        with open(fw, "rb") as f:
            data = bytearray(f.read())
        data[4000] ^= 1
        with open(other, "wb") as f:
            f.write(data)
        assert verify(other).returncode != 0
        # not an ESP image: refused before touching the port
        junk = os.path.join(out, "junk.bin")
        with open(junk, "wb") as f:
            f.write(b"\x00" * 64)
        rc, so, se = _cli(["flash", "--board", "esp32", "--port", port, "--firmware", junk])
        assert rc != 0 and "0xE9" in se
    finally:
        if mock is not None:
            mock.kill()
            mock.wait(10)
        shutil.rmtree(out, ignore_errors=True)


def test_flash_command_lines():
    board = tooling.load_board("esp32s3")
    cmds = tooling.esptool_commands(board, "/dev/ttyACM0", "fw.bin", erase=True)
    assert cmds[0][-1] == "erase-flash" and "--chip" in cmds[0] and cmds[0][cmds[0].index("--chip") + 1] == "esp32s3"
    assert cmds[1][-4:] == ["write-flash", "-z", "0x0", "fw.bin"]
    assert tooling.esptool_commands(tooling.load_board("esp32"), "p", "f")[0][-2] == "0x1000"


def _uf2(path, blocks=2):
    with open(path, "wb") as f:
        for i in range(blocks):
            blk = bytearray(512)
            blk[0:4] = (0x0A324655).to_bytes(4, "little")
            blk[4:8] = (0x9E5D5157).to_bytes(4, "little")
            blk[508:512] = (0x0AB16F30).to_bytes(4, "little")
            f.write(blk)


def test_flash_rp2_uf2():
    out = _tmp()
    try:
        fw = os.path.join(out, "firmware.uf2")
        _uf2(fw)
        rc, so, se = _cli(["flash", "--board", "rp2_pico_w", "--firmware", fw])
        assert rc == 0 and "BOOTSEL" in so and "picotool load" in so
        drive = os.path.join(out, "RPI-RP2")
        os.makedirs(drive)
        rc, so, se = _cli(["flash", "--board", "rp2_pico_w", "--firmware", fw, "--port", drive])
        assert rc != 0 and "INFO_UF2.TXT" in se
        with open(os.path.join(drive, "INFO_UF2.TXT"), "w") as f:
            f.write("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
        rc, so, se = _cli(["flash", "--board", "rp2_pico_w", "--firmware", fw, "--port", drive])
        assert rc == 0, se
        with open(os.path.join(drive, "firmware.uf2"), "rb") as a, open(fw, "rb") as b:
            assert a.read() == b.read()
        bad = os.path.join(out, "bad.uf2")
        with open(bad, "wb") as f:
            f.write(b"\x00" * 512)
        rc, so, se = _cli(["flash", "--board", "rp2_pico_w", "--firmware", bad, "--port", drive])
        assert rc != 0 and "UF2" in se
        rc, so, se = _cli(["flash", "--board", "unix", "--firmware", fw])
        assert rc != 0 and "no firmware" in se
    finally:
        shutil.rmtree(out, ignore_errors=True)
