# Circuit relay v2 bench (issue 13): relayed vs direct in the same run, through a microp2p hop
# (`microp2p node --relay-hop`) and through a js-libp2p hop (@libp2p/circuit-relay-v2, no limit):
#
#   handshake   js dialer -> A, direct TCP vs through the hop (dial: mss + Noise + yamux, the
#               relayed one after the hop's CONNECT/STOP), A = js, microp2p (CPython), MicroPython
#   ping RTT    microp2p dialer -> A (median of --pings), direct vs relayed
#   throughput  js -> js 1 MiB echoes through each hop (both directions cross the hop), one stream
#               and --streams at once; and direct for reference
#   hop cost    CPU ms the hop process spends per relayed MiB, and its RSS (microp2p and js);
#               RSS and CPU of the hop with 64 open circuits (8 destinations, the per-IP
#               reservation cap, x 8 sources: all 16 connections come from 127.0.0.1, and a
#               node's public listener takes 16 per IP, the issue-11 limit)
#
# Target: a microp2p hop relays >= 2x the throughput of a js-libp2p hop.
#   .venv/bin/python bench/relay.py [--n 10] [--pings 30] [--echo-mib 16] [--streams 4] [--repeat 3]
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
from peers import start_peer, random_seed, peer_id_of  # noqa: E402

TARGET_RATIO = 2.0
WAIT_S = 120
os.environ.setdefault("MICROP2P_MPY_HEAP", "32M")


def proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_ms = (int(parts[11]) + int(parts[12])) * 1000.0 / ticks
    rss_kb = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return cpu_ms, rss_kb


def hop_pid(peer):
    return peer.proc.pid


def handshakes(dialer, addr, target, n):
    """ms per dial (dial command -> dialed), closing the connection between dials."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        dialer.send({"cmd": "dial", "addr": addr})
        dialer.wait_for("dialed", lambda e: e["peer"] == target, timeout=WAIT_S, fail_on_error=True)
        out.append((time.perf_counter() - t0) * 1000)
        dialer.send({"cmd": "hangup", "peer": target})
        dialer.wait_for("hangup", timeout=WAIT_S)
        dialer.wait_for("connection:close", lambda e: e["peer"] == target, timeout=WAIT_S)
    return out


def pings(pinger, addr, target, count):
    pinger.send({"cmd": "ping", "addr": addr, "count": count})
    return [pinger.wait_for("ping", lambda e: e["peer"] == target, timeout=WAIT_S, fail_on_error=True)["rtt"]
            for _ in range(count)]


def echo_mbps(b, addr, mib, streams, repeat=1):
    """Best of `repeat` echo runs (other processes on the machine perturb single runs)."""
    best, err = None, None
    for _ in range(repeat):
        r, e = _echo_once(b, addr, mib, streams)
        if r is not None and (best is None or r > best):
            best = r
        err = err or e
    return best, (None if best is not None else err)


def _echo_once(b, addr, mib, streams):
    size = (mib << 20) // streams
    b.send({"cmd": "echo", "addr": addr, "size": size, "streams": streams})
    ev = b.wait_for("echo", timeout=600)
    if not ev.get("ok"):
        return None, ev.get("error")
    # each byte crosses the hop twice (there and back)
    return 2 * size * streams / (ev["ms"] / 1000) / 1e6, None


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, unit=""):
    return "-" if x is None else ("%.2f%s" % (x, unit))


def run_hop(kind, args, opts):
    res = {"hop": kind}
    a_seed, a2_seed, a3_seed = random_seed(), random_seed(), random_seed()
    allow = [peer_id_of("js", a_seed), peer_id_of("microp2p", a2_seed), peer_id_of("microp2p", a3_seed)]
    hop_args = ["--relay-hop"]
    if kind == "microp2p":
        for pid in allow:
            hop_args += ["--relay-allow", pid]
    else:
        hop_args += ["--relay-no-limit"]
    with start_peer(kind, args=hop_args) as r:
        circ = r.addr + "/p2p-circuit"
        with start_peer("js", seed=a_seed, args=["--listen", circ]) as a, \
                start_peer("js", args=["--relay-client"]) as b:
            ca = a.wait_for("relay:reservation", timeout=WAIT_S)["addrs"][0]
            res["hs_js_direct"] = med(handshakes(b, a.addr, a.peer_id, opts.n))
            res["hs_js_relayed"] = med(handshakes(b, ca, a.peer_id, opts.n))
            # relayed first, with no other connection to A (js reuses any connection it has to a
            # peer, a direct one included), then hang up and measure direct
            res["tp_relayed_1"], res["tp_err"] = echo_mbps(b, ca, opts.echo_mib, 1, opts.repeat)
            res["tp_relayed_n"], _ = echo_mbps(b, ca, opts.echo_mib, opts.streams, opts.repeat)
            # the hop's own cost: CPU ms per MiB it relayed (one more 1-stream echo), and its RSS
            cpu0, rss0 = proc_cpu_rss(hop_pid(r))
            _, err = echo_mbps(b, ca, opts.echo_mib, 1)
            cpu1, rss1 = proc_cpu_rss(hop_pid(r))
            if err:
                print("hop %s: cost echo failed: %s" % (kind, err), file=sys.stderr)
            res["hop_cpu_ms_per_mib"] = (cpu1 - cpu0) / (2 * opts.echo_mib)
            b.send({"cmd": "peers"})
            conns = b.wait_for("peers", timeout=WAIT_S)["peers"]
            assert all(c["relayed"] for c in conns if c["peer"] == a.peer_id), conns
            b.send({"cmd": "hangup", "peer": a.peer_id})
            b.wait_for("hangup", timeout=WAIT_S)
            res["tp_direct_1"], _ = echo_mbps(b, a.addr, opts.echo_mib, 1, opts.repeat)
            res["hop_rss_kb"] = rss1
        for a_kind, seed in (("microp2p", a2_seed), ("microp2p-mpy", a3_seed)):
            with start_peer(a_kind, seed=seed, args=["--listen", circ]) as a, \
                    start_peer("js", args=["--relay-client"]) as b, start_peer("microp2p") as p:
                ca = a.wait_for("relay:reservation", timeout=WAIT_S)["addrs"][0]
                res["hs_%s_direct" % a_kind] = med(handshakes(b, a.addr, a.peer_id, opts.n))
                res["hs_%s_relayed" % a_kind] = med(handshakes(b, ca, a.peer_id, opts.n))
                res["ping_%s_direct" % a_kind] = med(pings(p, a.addr, a.peer_id, opts.pings))
                res["ping_%s_relayed" % a_kind] = med(pings(p, ca, a.peer_id, opts.pings))
    return res


def circuits_cost(kind, n_dst=8, per_dst=8):
    """The hop process's RSS and CPU for n_dst * per_dst open circuits (raw: CONNECT/STOP and the
    spliced streams held open, no upgrade inside), from in-process microp2p peers."""
    import asyncio
    import microp2p_host  # noqa: F401
    from microp2p.io import node as nodemod, relay
    from microp2p.proto.relay import codec, client
    from microp2p.identity.keys import Ed25519PrivateKey
    from microp2p.identity.peerid import PeerId
    keys_ = [Ed25519PrivateKey.generate() for _ in range(n_dst)]
    ids = [str(PeerId.from_public_key(k.public_key)) for k in keys_]
    hop_args = ["--relay-hop"] + (sum([["--relay-allow", i] for i in ids], []) if kind == "microp2p" else ["--relay-no-limit"])
    with start_peer(kind, args=hop_args) as r:
        async def go():
            held = []

            async def hold_stop(st):
                await relay.read_message(st, codec.decode_stop)
                await st.write(codec.encode_stop({"type": codec.STOP_STATUS, "status": codec.OK}))
                while await st.read():
                    pass
            dsts = []
            for k in keys_:
                a = nodemod.Node(k)
                a.handle(codec.STOP, hold_stop)
                res = relay.RelayClient(a).reserve(r.addr)
                dsts.append((a, res))
            for _ in range(1000):
                if all(res.state == client.ACTIVE for _, res in dsts):
                    break
                await asyncio.sleep(0.01)
            srcs = [nodemod.Node() for _ in range(per_dst)]
            conns = [await b.dial(r.addr) for b in srcs]
            cpu0, rss0 = proc_cpu_rss(r.proc.pid)
            t0 = time.perf_counter()
            for b, c in zip(srcs, conns):
                for a, _ in dsts:
                    st = await b.new_stream(c, [codec.HOP])
                    await st.write(client.connect_request(a.peer_id))
                    client.connect_response(await relay.read_message(st, codec.decode_hop))
                    held.append(st)
            open_s = time.perf_counter() - t0
            await asyncio.sleep(1)
            cpu1, rss1 = proc_cpu_rss(r.proc.pid)
            for n in srcs + [a for a, _ in dsts]:
                await n.stop()
            return {"circuits": len(held), "rss_kb_delta": rss1 - rss0, "rss_kb": rss1,
                    "cpu_ms": cpu1 - cpu0, "open_s": open_s}
        return asyncio.run(asyncio.wait_for(go(), 300))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10, help="handshakes per case")
    ap.add_argument("--pings", type=int, default=30)
    ap.add_argument("--echo-mib", type=int, default=16)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="echo runs per case (best kept)")
    opts = ap.parse_args(argv)
    results = [run_hop("microp2p", (), opts), run_hop("js", (), opts)]
    cost = {k: circuits_cost(k) for k in ("microp2p", "js")}
    print("circuit relay v2 bench (loopback; medians; handshake = dial -> dialed as seen by a js dialer)")
    print("%-10s %-26s %12s %12s" % ("hop", "measure", "direct", "relayed"))
    for r in results:
        h = r["hop"]
        for a_kind in ("js", "microp2p", "microp2p-mpy"):
            print("%-10s %-26s %12s %12s" % (h, "handshake ms (A=%s)" % a_kind,
                                             fmt(r["hs_%s_direct" % a_kind]), fmt(r["hs_%s_relayed" % a_kind])))
        for a_kind in ("microp2p", "microp2p-mpy"):
            print("%-10s %-26s %12s %12s" % (h, "ping RTT ms (A=%s)" % a_kind,
                                             fmt(r["ping_%s_direct" % a_kind]), fmt(r["ping_%s_relayed" % a_kind])))
        print("%-10s %-26s %12s %12s" % (h, "echo MB/s js<->js 1 stream", fmt(r["tp_direct_1"]), fmt(r["tp_relayed_1"])))
        print("%-10s %-26s %12s %12s" % (h, "echo MB/s %d streams" % opts.streams, "", fmt(r["tp_relayed_n"])))
        print("%-10s %-26s %12s %12s" % (h, "hop CPU ms per relayed MiB", "", fmt(r["hop_cpu_ms_per_mib"])))
        print("%-10s %-26s %12s %12s" % (h, "hop RSS KiB", "", r["hop_rss_kb"]))
    for k in ("microp2p", "js"):
        c = cost[k]
        print("%-10s %d open circuits: hop RSS %d KiB (+%d KiB), CPU %.0f ms to open them (%.2f s)" % (
            k, c["circuits"], c["rss_kb"], c["rss_kb_delta"], c["cpu_ms"], c["open_s"]))
    m, j = results[0], results[1]
    if m["tp_relayed_1"] and j["tp_relayed_1"]:
        ratio = m["tp_relayed_1"] / j["tp_relayed_1"]
        ratio_n = (m["tp_relayed_n"] or 0) / (j["tp_relayed_n"] or 1)
        print("throughput microp2p hop / js hop: %.2fx (1 stream), %.2fx (%d streams); target >= %.1fx: %s" % (
            ratio, ratio_n, opts.streams, TARGET_RATIO, "met" if ratio >= TARGET_RATIO else "NOT met"))
    if m["hop_cpu_ms_per_mib"] and j["hop_cpu_ms_per_mib"]:
        print("hop CPU per relayed MiB, js / microp2p: %.2fx (the hop's capacity when it, not the "
              "endpoints, is the bottleneck)" % (j["hop_cpu_ms_per_mib"] / m["hop_cpu_ms_per_mib"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
