# Freezes the microp2p device parts into a MicroPython firmware for Raspberry Pi Pico W (RP2040, Cortex-M0+ = ARMv6-M), MicroPython RPI_PICO_W firmware.
# In a MicroPython checkout (MicroPython 1.24 or newer (.mpy version 6)):
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=<this repo>/boards/rp2_pico_w/manifest.py
# (`microp2p build --board rp2_pico_w --freeze` prints the command with absolute paths.)
include("$(PORT_DIR)/boards/manifest.py")
add_library("microp2p", "../../firmware/parts")
require("sensor-node")
