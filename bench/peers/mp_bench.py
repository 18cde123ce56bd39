# microp2p bench peer, one file for CPython and the MicroPython unix port (the other bench peers,
# js_bench.mjs and py_bench.py, take the same arguments and print the same JSON):
#
#   mp_bench.py serve [LISTEN_MA]          listen (echo + sink served), print {"event":"listening",...},
#                                          run until killed (SIGTERM) or stdin EOF (CPython only)
#   mp_bench.py conns ADDR N [WARMUP]      N sequential connections: dial (mss + Noise + yamux),
#                                          wait until our identify of the server is done, close
#                                          and wait until the socket is closed; prints one JSON line
#   mp_bench.py push ADDR MIB              one stream of /microp2p/bench/sink/1.0.0: write MIB MiB,
#                                          close, wait for the byte count; prints MB/s
#
# On CPython the native crypto backend is used (import microp2p_host); MicroPython uses the pure +
# viper backend. The MicroPython client also reports heap figures (gc.mem_alloc).
import sys
import json
import gc

try:
    import microp2p_host  # noqa: F401  CPython: native crypto
except ImportError:
    pass

from microp2p.aio import asyncio, MICROPYTHON
from microp2p.clock import ticks_us, ticks_diff
from microp2p.io import node as nodemod
from microp2p.io.profile import Profile
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.codec.multiaddr import Multiaddr

SINK = "/microp2p/bench/sink/1.0.0"
CHUNK = 65536            # bytes per write when pushing
READ_MAX = 65536
IDENTIFY_WAIT_S = 10     # a bench connection that is not identified by then counts as failed
CLOSE_WAIT_S = 5


def out(obj):
    print(json.dumps(obj))
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


async def handle_sink(st):
    # Count everything until EOF, then answer with the count (decimal ASCII) and close.
    n = 0
    while True:
        b = await st.read()
        if not b:
            break
        n += len(b)
    await st.write(str(n).encode())
    await st.close()


def make_node(on_event=None):
    # on MicroPython the device profile (what a sensor node runs: small buffers, device yamux)
    cfg = Profile.device() if MICROPYTHON else Profile()
    n = nodemod.Node(Ed25519PrivateKey.generate(), cfg, on_event=on_event)
    n.handle(SINK, handle_sink)
    return n


async def serve(listen):
    node = make_node()
    bound = await node.listen(listen)
    out({"event": "listening", "addr": "%s/p2p/%s" % (bound, node.peer_id), "peer": str(node.peer_id)})
    if MICROPYTHON:
        while True:
            await asyncio.sleep(3600)
    # stdin EOF ends the server (the bench driver closes our stdin); SIGTERM works too
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await node.stop()


def _cpu_s():
    """This process's CPU seconds (user + system) from /proc: works on both runtimes."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (USER_HZ)
    except Exception:
        return None


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = int(round((len(sorted_vals) - 1) * p / 100.0))
    return sorted_vals[k]


async def conns(addr, count, warmup=0):
    identified = asyncio.Event()
    closed = asyncio.Event()
    peak = [0]

    def sample_heap():
        a = gc.mem_alloc()
        if a > peak[0]:
            peak[0] = a

    def on_event(name, fields):
        if name == "identify":
            identified.set()
        elif name == "connection:close":
            closed.set()
            identified.set()  # a connection the server closed early must not wait for a timeout
        if MICROPYTHON:
            sample_heap()

    node = make_node(on_event)
    addr = Multiaddr.from_string(addr)  # parsed once, like the other bench peers do
    lat = []
    dial_lat = []
    fails = []
    heap = {}

    async def one(record):
        identified.clear()
        closed.clear()
        t0 = ticks_us()
        conn = None
        try:
            conn = await node.dial(addr)
            t_dial = ticks_diff(ticks_us(), t0) / 1000.0
            await asyncio.wait_for(identified.wait(), IDENTIFY_WAIT_S)
            if conn.identified is None:
                raise OSError("connection closed before identify completed")
            if record:
                lat.append(ticks_diff(ticks_us(), t0) / 1000.0)
                dial_lat.append(t_dial)
                if MICROPYTHON:
                    sample_heap()
                    if "live_conn" not in heap:
                        # live heap with one open, identified connection (garbage collected away)
                        gc.collect()
                        heap["live_conn"] = gc.mem_alloc()
        except Exception as e:
            if record:
                fails.append("%s: %s" % (type(e).__name__, e))
        if conn is not None:
            conn.close()
            if conn in node.connections:
                try:
                    await asyncio.wait_for(closed.wait(), CLOSE_WAIT_S)
                except asyncio.TimeoutError:
                    if record:
                        fails.append("close timed out")

    for _ in range(warmup):
        await one(False)
    gc.collect()
    if MICROPYTHON:
        heap["base"] = gc.mem_alloc()
        peak[0] = 0
    cpu0 = _cpu_s()
    t_start = ticks_us()
    for _ in range(count):
        await one(True)
    total_s = ticks_diff(ticks_us(), t_start) / 1e6
    cpu = _cpu_s()
    lat.sort()
    dial_lat.sort()
    res = {"impl": "microp2p-" + ("micropython" if MICROPYTHON else "cpython"), "n": count,
           "ok": len(lat), "fail": len(fails), "errors": fails[:3], "total_s": total_s,
           "conns_per_s": len(lat) / total_s if total_s else 0.0,
           "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
           "mean_ms": (sum(lat) / len(lat)) if lat else None,
           "dial_p50_ms": percentile(dial_lat, 50),
           "cpu_s": (cpu - cpu0) if cpu is not None and cpu0 is not None else None}
    if MICROPYTHON:
        gc.collect()
        heap["peak_sampled"] = peak[0]
        heap["total"] = gc.mem_alloc() + gc.mem_free()
        res["heap"] = heap
    out(res)
    await node.stop()


async def push(addr, mib):
    node = make_node()
    conn = await node.dial(addr)
    size = mib * 1024 * 1024
    buf = bytes(CHUNK)
    cpu0 = _cpu_s()
    t0 = ticks_us()
    st = await node.new_stream(conn, [SINK])
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        await st.write(buf if n == CHUNK else buf[:n])
        sent += n
    await st.close()
    reply = await st.read_all(64)
    dt = ticks_diff(ticks_us(), t0) / 1e6
    cpu = _cpu_s()
    got = int(reply.decode()) if reply else -1
    out({"impl": "microp2p-" + ("micropython" if MICROPYTHON else "cpython"), "bytes": size,
         "acked": got, "ok": got == size, "s": dt, "MBps": size / dt / 1e6,
         "cpu_s": (cpu - cpu0) if cpu is not None and cpu0 is not None else None})
    conn.close()
    await node.stop()


def main(argv):
    if len(argv) < 2:
        raise SystemExit("usage: mp_bench.py serve [MA] | conns ADDR N [WARMUP] | push ADDR MIB")
    mode = argv[1]
    if mode == "serve":
        coro = serve(argv[2] if len(argv) > 2 else "/ip4/127.0.0.1/tcp/0")
    elif mode == "conns":
        coro = conns(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 0)
    elif mode == "push":
        coro = push(argv[2], int(argv[3]))
    else:
        raise SystemExit("unknown mode " + mode)
    asyncio.run(coro)


if __name__ == "__main__":
    main(sys.argv)
