# The Noise machine alone, in memory (no sockets): full XX handshakes per second (both sides'
# work: 10 X25519, 2 Ed25519 signs, 2 verifies), handshakes with a cached static key + signature
# (what a node does: one sign fewer per side), and transport throughput in MB/s (10^6 bytes).
# On MicroPython also the heap: bytes allocated by one handshake pair with the GC off (an upper
# bound of its peak) and bytes still held by a completed pair (two Transports).
#
# The smallest MicroPython heap in which the imports plus one handshake pair still run is found
# by bisection (from CPython, one micropython process per probe): the handshake's real peak.
#
#   .venv/bin/python bench/noise_machine.py        # CPython (native crypto), then MicroPython (pure)
#   .venv/bin/micropython -X heapsize=64M bench/noise_machine.py --here
import sys
import gc

from benchenv import now_s, elapsed, ROOT, MICROPYTHON  # noqa: E402,F401

if not MICROPYTHON:
    import microp2p_host  # noqa: F401  installs the native crypto backend

from microp2p.conn import noise  # noqa: E402
from microp2p.identity import keys
from microp2p import crypto

I_ID = keys.Ed25519PrivateKey.from_seed(bytes(range(32)))
R_ID = keys.Ed25519PrivateKey.from_seed(bytes(range(32, 64)))
MUXERS = ("/yamux/1.0.0",)


def handshake(i_static=None, r_static=None):
    i = noise.Handshake(True, I_ID, muxers=MUXERS,
                        static_private=i_static and i_static[0], identity_sig=i_static and i_static[1])
    r = noise.Handshake(False, R_ID, muxers=MUXERS,
                        static_private=r_static and r_static[0], identity_sig=r_static and r_static[1])
    r.receive(i.data_to_send())
    i.receive(r.data_to_send())
    r.receive(i.data_to_send())
    assert i.complete and r.complete
    return i.transport(), r.transport()


def rate(fn, seconds):
    n = 0
    t0 = now_s()
    while True:
        fn()
        n += 1
        dt = elapsed(t0)
        if dt >= seconds:
            return n / dt, n


def throughput(total, write):
    a, b = handshake()
    block = b"\xa5" * write
    got = 0
    t0 = now_s()
    sent = 0
    while sent < total:
        for c in b.receive(a.encrypt(block)):
            got += len(c)
        sent += write
    dt = elapsed(t0)
    assert got == sent
    return sent / dt / 1e6


def run_here():
    impl = "%s (%s crypto)" % (sys.implementation.name, crypto.backend_name)
    secs = 3 if MICROPYTHON else 2
    hs, n = rate(handshake, secs)
    print("%s\tfull handshake pair\t%.1f handshakes/s\t(%d in %ds)" % (impl, hs, n, secs))
    i_static = noise.make_static(I_ID)
    r_static = noise.make_static(R_ID)
    hs, n = rate(lambda: handshake(i_static, r_static), secs)
    print("%s\tcached static key+sig\t%.1f handshakes/s\t(%d in %ds)" % (impl, hs, n, secs))
    total = (256 * 1024) if MICROPYTHON else (32 * 1024 * 1024)
    for write in (1024, 65536):
        print("%s\ttransport %d-byte writes\t%.2f MB/s" % (impl, write, throughput(total, write)))
    if MICROPYTHON:
        gc.collect()
        before = gc.mem_alloc()
        gc.disable()
        pair = handshake()
        allocated = gc.mem_alloc() - before
        gc.enable()
        gc.collect()
        held = gc.mem_alloc() - before
        print("%s\theap: one handshake pair allocates %d bytes with GC off; a finished pair "
              "holds %d bytes" % (impl, allocated, held))
        a, b = pair
        msg = b"\x5a" * 1024
        b.receive(a.encrypt(msg))  # warm up (receive buffer etc.)
        gc.collect()
        before = gc.mem_alloc()
        gc.disable()
        for _ in range(10):
            b.receive(a.encrypt(msg))
        per_frame = (gc.mem_alloc() - before) // 10
        gc.enable()
        print("%s\theap: one 1 KiB frame encrypt+decrypt allocates %d bytes" % (impl, per_frame))


def min_heap_probe():
    gc.collect()
    base = gc.mem_alloc()
    handshake()
    gc.collect()
    print("ok %d" % base)


def min_heap(mpy, script):
    import subprocess
    lo, hi = 16 * 1024, 2 * 1024 * 1024
    base = None
    while hi - lo > 1024:
        mid = (lo + hi) // 2
        p = subprocess.run([mpy, "-X", "heapsize=%d" % mid, script, "--probe"],
                           capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.startswith("ok"):
            hi = mid
            base = int(p.stdout.split()[1])
        else:
            lo = mid
    return hi, base


def main():
    if "--probe" in sys.argv:
        min_heap_probe()
        return
    if "--here" in sys.argv or MICROPYTHON:
        run_here()
        return
    run_here()
    import subprocess
    import os
    mpy = os.path.join(ROOT, ".venv", "bin", "micropython")
    if os.path.exists(mpy):
        sys.stdout.flush()
        script = os.path.abspath(sys.argv[0])
        subprocess.run([mpy, "-X", "heapsize=64M", script, "--here"], check=True)
        heap, base = min_heap(mpy, script)
        print("micropython\theap: smallest -X heapsize running imports + one handshake pair: "
              "%d KiB (imports alone hold %d KiB)" % (heap // 1024, (base or 0) // 1024))


main()
