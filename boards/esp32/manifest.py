# Freezes the microp2p device parts into a MicroPython firmware for ESP32 (WROOM/WROVER, Xtensa LX6), MicroPython ESP32_GENERIC firmware.
# In a MicroPython checkout (MicroPython 1.24 or newer (.mpy version 6)):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<this repo>/boards/esp32/manifest.py
# (`microp2p build --board esp32 --freeze` prints the command with absolute paths.)
include("$(PORT_DIR)/boards/manifest.py")
add_library("microp2p", "../../firmware/parts")
require("sensor-node")
