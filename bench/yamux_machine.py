# Throughput of the yamux machine alone: N MiB through a client/server Session pair in
# memory (no sockets, no crypto), in MB/s (1 MB = 10^6 bytes).
#
#   .venv/bin/python bench/yamux_machine.py            # CPython figures, then MicroPython's
#   .venv/bin/micropython -X heapsize=8M bench/yamux_machine.py --here
#
# Runs unchanged on both runtimes; under CPython it also spawns the MicroPython unix port on
# this same file and prints both tables.
import sys
import gc

from benchenv import now_s, elapsed, ROOT, MICROPYTHON  # noqa: E402,F401

from microp2p.conn.yamux import Session, Config, device_config  # noqa: E402

MIB = 1024 * 1024
WRITE = 64 * 1024  # what the application hands to send() at a time


def transfer(total, client_cfg=None, server_cfg=None, read_size=0):
    a = Session(True, client_cfg)
    b = Session(False, server_cfg)
    block = b"\xa5" * WRITE
    sid = a.open_stream()
    received = 0
    sent = 0
    t0 = now_s()
    while received < total:
        if sent < total:
            n = total - sent
            sent += a.send(sid, block if n >= WRITE else block[:n])
        out = a.data_to_send()
        pos = 0
        while pos < len(out):
            # read_size > 0 models a socket handing over small reads (e.g. one TCP segment)
            piece = out[pos:pos + read_size] if read_size else out
            pos += len(piece)
            for ev in b.receive(piece):
                if ev[0] == "data":
                    k = len(ev[2])
                    received += k
                    b.consumed(sid, k)
        back = b.data_to_send()
        if back:
            a.receive(back)
    dt = elapsed(t0)
    return total / dt / 1e6, dt


def run_here():
    impl = sys.implementation.name
    rows = []
    sizes = (1, 4, 16, 64)
    big = Config(max_window=16 * MIB)
    for label, ca, cb, rs in (("default (256 KiB window, 64 KiB frames)", None, None, 0),
                              ("16 MiB window", big, Config(max_window=16 * MIB), 0),
                              ("device (4 KiB frames)", device_config(), device_config(), 0),
                              ("default, 1460-byte reads", None, None, 1460)):
        for mib in sizes:
            gc.collect()
            mbs, dt = transfer(mib * MIB, ca, cb, rs)
            rows.append((label, mib, mbs, dt))
            print("%s\t%s\t%d MiB\t%.1f MB/s\t%.3f s" % (impl, label, mib, mbs, dt))


def main():
    if "--here" in sys.argv or sys.implementation.name != "cpython":
        run_here()
        return
    run_here()
    import subprocess
    import os
    mpy = os.path.join(ROOT, ".venv", "bin", "micropython")
    if os.path.exists(mpy):
        sys.stdout.flush()
        subprocess.run([mpy, "-X", "heapsize=8M", os.path.abspath(sys.argv[0]), "--here"],
                       check=True)


main()
