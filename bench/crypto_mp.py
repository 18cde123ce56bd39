# Crypto micro-benchmark that runs on MicroPython and CPython alike. bench/crypto.py imports
# `run` for the CPython backends and spawns this file under MicroPython for the pure rows:
#   micropython bench/crypto_mp.py [budget_ms]   -> one JSON line per (backend, primitive)
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
    from microp2p.crypto import pure
    budget = int(argv[1]) if len(argv) > 1 else 250
    impl = "micropython"
    label = impl + " pure" + ("+" + pure.accel_name() if pure.accel_name() else "")
    for row in run(pure, label, budget):
        print(json.dumps(row))
    if pure.accel_available():
        pure.use_accel(False)
        for row in run(pure, impl + " pure", budget, ("aead 1KiB", "aead 64KiB")):
            print(json.dumps(row))
        pure.use_accel(True)


if __name__ == "__main__":
    main(sys.argv)
