# Freezes the microp2p device parts into a MicroPython firmware for Raspberry Pi Pico 2 W (RP2350, Cortex-M33), MicroPython RPI_PICO2_W firmware.
# In a MicroPython checkout (MicroPython 1.24 or newer (.mpy version 6)):
#   make -C ports/rp2 BOARD=RPI_PICO2_W FROZEN_MANIFEST=<this repo>/boards/rp2_pico2_w/manifest.py
# (`microp2p build --board rp2_pico2_w --freeze` prints the command with absolute paths.)
include("$(PORT_DIR)/boards/manifest.py")
add_library("microp2p", "../../firmware/parts")
require("sensor-node")
