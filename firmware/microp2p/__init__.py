# microp2p: libp2p for constrained hardware. Portable core: imports unchanged on MicroPython
# and CPython. Every protocol is a sans-IO machine in its own module.
__version__ = "0.1.0"
