"""py-libp2p (0.8.1) bench peer, run with tests/interop/.venv-py/bin/python. Same arguments and
JSON output as mp_bench.py and js_bench.mjs:

    py_bench.py serve [LISTEN_MA]     listen (echo + sink served), print {"event":"listening",...},
                                      run until stdin EOF or SIGTERM
    py_bench.py conns ADDR N [WARMUP] N sequential connections: connect (mss + Noise + yamux), wait
                                      for our identify of the server, disconnect; one JSON line
    py_bench.py push ADDR MIB         one /microp2p/bench/sink/1.0.0 stream: write MIB MiB, close,
                                      wait for the byte count; prints MB/s

Two py-libp2p behaviours are adjusted so the figures measure the connection itself:
* client max_connections_per_peer=1: with the default (3) every connect() waits out the 250 ms
  happy-eyeballs head start even with a single address; server max_connections_per_peer=64 (see
  make_host);
* identify runs on every connection (py caches a peer's protocols and skips identify on
  reconnects; the other peers identify each connection).
disconnect() still sleeps 2 x 100 ms inside py-libp2p; that is part of its figures.
"""
import json
import os
import sys
import threading
import time

SINK = "/microp2p/bench/sink/1.0.0"
ECHO = "/microp2p/echo/1.0.0"
CHUNK = 65536
READ_MAX = 65536
IDENTIFY_WAIT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
SERVER_CONNS_PER_PEER = 64


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentile(vals, p):
    if not vals:
        return None
    return vals[int(round((len(vals) - 1) * p / 100.0))]


def make_host(listen, client):
    import multiaddr
    from libp2p import new_host
    from libp2p.network.config import ConnectionConfig
    from libp2p.crypto.ed25519 import create_new_key_pair

    addrs = [multiaddr.Multiaddr(listen)] if listen else None
    # The listener gets a high per-peer limit: py tears a closed connection down for ~200 ms, and
    # with the default limit (3) it answers a client that reconnects faster with GoAway right
    # after the handshake (its trim of "excess" connections to that peer).
    per_peer = 1 if client else SERVER_CONNS_PER_PEER
    kw = {"key_pair": create_new_key_pair(os.urandom(32)),
          "connection_config": ConnectionConfig(max_connections_per_peer=per_peer)}
    if addrs:
        kw["listen_addrs"] = addrs
    return new_host(**kw), addrs


def identify_hook():
    """Patch py-libp2p so identify runs per connection; returns a function that arms a trio.Event
    set when the next identify answer has been processed."""
    import trio
    import libp2p.host.basic_host as basic_host

    state = {"event": None}
    original = basic_host.update_peerstore_from_identify

    async def update_and_signal(peerstore, peer_id, msg):
        await original(peerstore, peer_id, msg)
        ev = state["event"]
        if ev is not None:
            ev.set()

    basic_host.update_peerstore_from_identify = update_and_signal
    basic_host.BasicHost._has_cached_protocols = lambda self, peer_id: peer_id in self._identified_peers

    def arm():
        state["event"] = trio.Event()
        return state["event"]

    return arm


async def read_until_eof(stream, on_data):
    from libp2p.network.stream.exceptions import StreamEOF

    while True:
        try:
            data = await stream.read(READ_MAX)
        except StreamEOF:
            return
        if not data:
            return
        on_data(data)


async def serve(listen):
    import trio

    identify_hook()
    host, addrs = make_host(listen, False)

    async def sink(stream):
        n = [0]

        def count(d):
            n[0] += len(d)
        try:
            await read_until_eof(stream, count)
            await stream.write(str(n[0]).encode())
            await stream.close()
        except Exception:
            await stream.reset()

    async def echo(stream):
        pending = []
        try:
            from libp2p.network.stream.exceptions import StreamEOF
            while True:
                try:
                    data = await stream.read(READ_MAX)
                except StreamEOF:
                    break
                if not data:
                    break
                await stream.write(data)
            await stream.close()
        except Exception:
            await stream.reset()
        del pending

    host.set_stream_handler(SINK, sink)
    host.set_stream_handler(ECHO, echo)
    async with host.run(listen_addrs=addrs):
        a = str(host.get_addrs()[0])
        if "/p2p/" not in a:
            a += "/p2p/" + host.get_id().to_base58()
        out({"event": "listening", "addr": a, "peer": host.get_id().to_base58()})
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wait_stdin():
            sys.stdin.read()
            trio.from_thread.run_sync(done.set, trio_token=token)

        threading.Thread(target=wait_stdin, daemon=True).start()
        await done.wait()


async def conns(addr, count, warmup=0):
    import trio
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    arm = identify_hook()
    host, _ = make_host(None, True)
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    lat = []
    dial_lat = []
    errors = []

    async def one(record):
        ev = arm()
        t0 = time.perf_counter()
        connected = False
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                await host.connect(info)
            connected = True
            t_dial = (time.perf_counter() - t0) * 1000
            with trio.fail_after(IDENTIFY_WAIT_S):
                await ev.wait()
            if record:
                lat.append((time.perf_counter() - t0) * 1000)
                dial_lat.append(t_dial)
        except Exception as e:
            if record:
                errors.append("%s: %s" % (type(e).__name__, e))
        if connected:
            try:
                await host.disconnect(info.peer_id)
            except Exception as e:
                if record:
                    errors.append("disconnect %s: %s" % (type(e).__name__, e))

    async with host.run(listen_addrs=[]):
        for _ in range(warmup):
            await one(False)
        cpu0 = time.process_time()
        t_start = time.perf_counter()
        for _ in range(count):
            await one(True)
        total = time.perf_counter() - t_start
        cpu = time.process_time() - cpu0
    lat.sort()
    dial_lat.sort()
    out({"impl": "py", "n": count, "ok": len(lat), "fail": count - len(lat), "errors": errors[:3],
         "total_s": total, "cpu_s": cpu, "conns_per_s": len(lat) / total,
         "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
         "mean_ms": sum(lat) / len(lat) if lat else None,
         "dial_p50_ms": percentile(dial_lat, 50)})


async def push(addr, mib):
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    host, _ = make_host(None, True)
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    size = mib * 1024 * 1024
    buf = bytes(CHUNK)
    async with host.run(listen_addrs=[]):
        await host.connect(info)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        stream = await host.new_stream(info.peer_id, [SINK])
        sent = 0
        while sent < size:
            n = min(CHUNK, size - sent)
            await stream.write(buf if n == CHUNK else buf[:n])
            sent += n
        await stream.close_write() if hasattr(stream, "close_write") else await stream.close()
        reply = bytearray()
        await read_until_eof(stream, reply.extend)
        s = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        acked = int(reply.decode() or -1)
        out({"impl": "py", "bytes": size, "acked": acked, "ok": acked == size, "s": s, "cpu_s": cpu,
             "MBps": size / s / 1e6})
        await host.disconnect(info.peer_id)


def main(argv):
    import trio

    if len(argv) < 2:
        sys.exit("usage: py_bench.py serve [MA] | conns ADDR N | push ADDR MIB")
    mode = argv[1]
    if mode == "serve":
        trio.run(serve, argv[2] if len(argv) > 2 else "/ip4/127.0.0.1/tcp/0")
    elif mode == "conns":
        trio.run(conns, argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 0)
    elif mode == "push":
        trio.run(push, argv[2], int(argv[3]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
    sys.stdout.flush()
    os._exit(0)  # py-libp2p leaves background threads/tasks that can delay interpreter exit
