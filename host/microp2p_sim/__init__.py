# Portable simulators (run on CPython and MicroPython): test and emulation tooling, never on a device.
