# Crypto micro-benchmark that runs on MicroPython and CPython alike. bench/crypto.py imports
# `run` for the CPython backends and spawns this file under MicroPython for the pure rows:
#   micropython bench/crypto_mp.py [budget_ms]   -> one JSON line per (backend, primitive)
# Device figures (issue 10): ms per op and bytes allocated per call, viper vs big ints, a Noise
# XX handshake side, a reference workload, and a projection to ESP32 / RP2040:
#   micropython -X heapsize=64M bench/crypto_mp.py device [budget_ms]   (GC-off counts need room)
# The same script runs unchanged on a board (mpremote run, microp2p installed): its reference
# loop time there, divided by the one printed here, is the measured ratio that replaces ours.
import sys
import gc
import json

try:
    from time import ticks_us, ticks_diff
except ImportError:  # CPython
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

PRIMITIVES = ("x25519", "ed25519 sign", "ed25519 verify", "sha512 1KiB", "aead 1KiB",
              "aead 64KiB", "hkdf")


def _cases(b):
    key = bytes(range(32))
    nonce = bytes(12)
    kib = bytes(1024)
    big = bytes(65536)
    pub = b.x25519_public(key)
    seed = bytes(range(1, 33))
    msg = bytes(56)
    edpub = b.ed25519_public(seed)
    sig = b.ed25519_sign(seed, msg)
    return (
        ("x25519", lambda: b.x25519(key, pub)),
        ("ed25519 sign", lambda: b.ed25519_sign(seed, msg)),
        ("ed25519 verify", lambda: b.ed25519_verify(edpub, msg, sig)),
        ("sha512 1KiB", lambda: b.sha512(kib)),
        ("aead 1KiB", lambda: b.aead_encrypt(key, nonce, b"", kib)),
        ("aead 64KiB", lambda: b.aead_encrypt(key, nonce, b"", big)),
        ("hkdf", lambda: b.hkdf(key, pub, 3)),
    )


BATCHES = 5  # the best batch is reported: the host may be shared, and the best is the most stable


def run(b, label, budget_ms=250, only=None):
    """[(label, primitive, ops_per_s)]: each primitive repeated for about budget_ms."""
    rows = []
    for name, fn in _cases(b):
        if only and name not in only:
            continue
        fn()  # warm-up (builds lazy tables, fills caches)
        best = 0.0
        for _ in range(BATCHES):
            gc.collect()
            n = 0
            t0 = ticks_us()
            while True:
                fn()
                n += 1
                dt = ticks_diff(ticks_us(), t0)
                if dt * BATCHES >= budget_ms * 1000 and n >= 2:
                    break
            rate = n * 1000000.0 / dt
            if rate > best:
                best = rate
        rows.append((label, name, best))
    return rows


def main(argv):
    here = argv[0][:argv[0].rfind("/")] if "/" in argv[0] else "."
    root = here[:here.rfind("/")] if "/" in here else (".." if here == "." else ".")
    sys.path.insert(0, root + "/firmware")
    if len(argv) > 1 and argv[1] == "device":
        device(int(argv[2]) if len(argv) > 2 else 300)
        return
    from microp2p.crypto import pure
    budget = int(argv[1]) if len(argv) > 1 else 250
    impl = "micropython"
    label = impl + " pure" + ("+" + pure.accel_name() if pure.accel_name() else "")
    for row in run(pure, label, budget):
        print(json.dumps(row))
    if pure.accel_available():
        pure.use_accel(False)
        for row in run(pure, impl + " pure", budget):
            print(json.dumps(row))
        pure.use_accel(True)


# --------------------------------------------------------------------------- device figures

# Projection to the chips (compute only, no GC, +-2x). Ratio = device time / this host's time.
# Source: /work/shared/notes/micropython-feasibility.md section 3: instruction counts of the same
# MicroPython code on the 32-bit unix build times Xtensa cycles-per-x86-instruction k = 1.5..3
# put an ESP32 at 240 MHz 75-150x slower than an x86 host of this class (central 100x); the
# RP2040 figure scales that by 240/133 MHz, because scruss.com's cross-board MicroPython benchmark
# (ESP32 @ 160 MHz 15.4 s, RP2040 @ 125 MHz 19.8 s) shows the two do equal work per cycle. That
# ratio was derived for interpreted code; for viper (native) code it is an assumption.
RATIO_ESP32 = (75, 100, 150)
RATIO_RP2040 = (135, 180, 270)
ALLOC_TARGETS = {"ed25519 sign": 16384, "handshake side": 131072}
TIME_TARGETS_MS = {"ed25519 sign": 0.5, "ed25519 verify": 1.0, "x25519": 0.5}


def reference_loop():
    """A fixed integer workload (pystone-like: locals, calls, list indexing); ms per call."""
    def f(a, b):
        return (a * 3 + b) & 0xFFFF
    lst = list(range(64))
    t0 = ticks_us()
    acc = 0
    for i in range(20000):
        acc = f(acc, lst[i & 63]) + (i >> 3)
    dt = ticks_diff(ticks_us(), t0)
    return dt / 1000.0, acc


def best_ms(fn, budget_ms):
    """The fastest single call within budget_ms (at least 20 calls): on a shared host the minimum
    is the figure least disturbed by other processes."""
    fn()
    gc.collect()
    best = None
    n = 0
    t_end = ticks_us()
    spent = 0
    while spent < budget_ms * 1000 or n < 20:
        t0 = ticks_us()
        fn()
        dt = ticks_diff(ticks_us(), t0)
        if best is None or dt < best:
            best = dt
        n += 1
        spent = ticks_diff(ticks_us(), t_end)
    return best / 1000.0


def allocated(fn):
    """Bytes allocated by one call, GC off (an upper bound of the call's live peak)."""
    fn()
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        fn()
        b = gc.mem_alloc()
    finally:
        gc.enable()
    return b - a


def _handshake_pair():
    from microp2p.conn import noise
    from microp2p.identity import keys
    i_id = keys.Ed25519PrivateKey.from_seed(bytes(range(32)))
    r_id = keys.Ed25519PrivateKey.from_seed(bytes(range(32, 64)))

    def pair():
        i = noise.Handshake(True, i_id, muxers=("/yamux/1.0.0",))
        r = noise.Handshake(False, r_id, muxers=("/yamux/1.0.0",))
        r.receive(i.data_to_send())
        i.receive(r.data_to_send())
        r.receive(i.data_to_send())
        assert i.complete and r.complete
    return pair


def device(budget_ms):
    from microp2p.crypto import pure
    key = bytes(range(32))
    pub = pure.x25519_public(key)
    seed = bytes(range(1, 33))
    msg = bytes(100)
    edpub = pure.ed25519_public(seed)
    sig = pure.ed25519_sign(seed, msg)
    kib = bytes(1024)
    ops = (("x25519", lambda: pure.x25519(key, pub)),
           ("ed25519 sign", lambda: pure.ed25519_sign(seed, msg)),
           ("ed25519 verify", lambda: pure.ed25519_verify(edpub, msg, sig)),
           ("sha512 1KiB", lambda: pure.sha512(kib)),
           ("handshake side", _handshake_pair()))
    word = 64 if sys.maxsize > 2 ** 32 else 32
    ref_ms, _ = reference_loop()
    ref_ms = min(ref_ms, reference_loop()[0], reference_loop()[0])
    modes = [("viper", True), ("bigint", False)] if pure.accel_available() else [("bigint", False)]
    res = {}
    for mode, flag in modes:
        pure.use_accel(flag)
        for name, fn in ops:
            ms = best_ms(fn, budget_ms)
            if name == "handshake side":
                ms /= 2  # the pair does both sides
            al = allocated(fn)
            if name == "handshake side":
                al //= 2
            res[(mode, name)] = (ms, al)
    pure.use_accel(True)
    print("MicroPython %s, %d-bit words, backend %s" % (sys.platform, word, pure.accel_name()))
    print("reference loop (20000 iterations): %.2f ms here" % ref_ms)
    print("%-16s %-7s %10s %12s %9s %22s %22s" % ("op", "mode", "ms", "alloc B", "target",
                                                  "ESP32 240MHz ms", "RP2040 133MHz ms"))
    for mode, _ in modes:
        for name, _ in ops:
            ms, al = res[(mode, name)]
            tgt = []
            if name in TIME_TARGETS_MS:
                tgt.append("%s%gms" % ("ok " if ms <= TIME_TARGETS_MS[name] else "MISS ",
                                       TIME_TARGETS_MS[name]))
            if name in ALLOC_TARGETS:
                tgt.append("%s%dK" % ("ok " if al <= ALLOC_TARGETS[name] else "MISS ",
                                      ALLOC_TARGETS[name] // 1024))
            e = "%.0f (%.0f-%.0f)" % (ms * RATIO_ESP32[1], ms * RATIO_ESP32[0],
                                      ms * RATIO_ESP32[2])
            r = "%.0f (%.0f-%.0f)" % (ms * RATIO_RP2040[1], ms * RATIO_RP2040[0],
                                      ms * RATIO_RP2040[2])
            print("%-16s %-7s %10.3f %12d %9s %22s %22s" % (name, mode, ms, al, ",".join(tgt),
                                                            e, r))
    print("projection ratios: ESP32 %d (%d-%d)x, RP2040 %d (%d-%d)x this host; see RATIO_* in "
          "bench/crypto_mp.py for the source" % (RATIO_ESP32[1], RATIO_ESP32[0], RATIO_ESP32[2],
                                                 RATIO_RP2040[1], RATIO_RP2040[0],
                                                 RATIO_RP2040[2]))


if __name__ == "__main__":
    main(sys.argv)
