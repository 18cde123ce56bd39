#!/usr/bin/env python3
# Kademlia figures (issue 12), all measured in this run:
#   1. an in-process network of 100 real microp2p nodes (CPython, native crypto, loopback TCP, DHT
#      server mode): find_peer and find_providers latency p50/p99 and requests per lookup;
#   2. a mixed network of 10 js-libp2p DHT servers: the same find_peer / find_providers lookups
#      done by a microp2p client and by a js-libp2p client side by side (wall time from command
#      to answer, each over its own process's JSON-line interface);
#   3. gateway server memory: RSS growth of a provider store holding 10 000 provider records.
#
#   .venv/bin/python bench/kad.py [--nodes 100] [--lookups 40] [--no-js]
import argparse
import asyncio
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "firmware"))
sys.path.insert(0, os.path.join(ROOT, "host"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))

import microp2p_host  # noqa: E402,F401  (native crypto)
from microp2p import crypto  # noqa: E402
from microp2p.identity.keys import Ed25519PrivateKey  # noqa: E402
from microp2p.io import kad as kadmod  # noqa: E402
from microp2p.io import node as nodemod  # noqa: E402
from microp2p.io.profile import Profile  # noqa: E402
from microp2p.proto.kad.store import ProviderStore  # noqa: E402

BOOTSTRAP_PEERS = 3          # each node dials this many earlier nodes before its self lookup
TARGET_P50_RATIO = 1.0       # issue 12: microp2p p50 <= js's in the same run
TARGET_RSS_PER_1000 = 1 << 20
RSS_RECORDS = 10000


def pct(vals, q):
    v = sorted(vals)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else float("nan")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---- 1. in-process network ---------------------------------------------------------------------

def loopback_profile():
    """A node's profile with the per-IP limits lifted: the 100 nodes stand for 100 hosts but all
    dial from 127.0.0.1, and the default 16 connections / 4 pending upgrades per IP (a public
    listener's defence, issue 11) would refuse most of them (measured: build 723 s, 33/40 found)."""
    p = Profile()
    lim = p.limits
    lim.max_conns_per_ip = lim.max_conns
    lim.max_pending_per_ip = lim.max_pending
    lim.overflow_per_ip_per_s = 1000
    return p


async def build_network(n, rng):
    nodes = []
    for i in range(n):
        node = nodemod.Node(Ed25519PrivateKey.from_seed(crypto.sha256(b"kad-bench-%d" % i)), loopback_profile())
        dht = kadmod.KadDHT(node, "server")
        addr = await node.listen("/ip4/127.0.0.1/tcp/0")
        nodes.append((node, dht, "%s/p2p/%s" % (addr, node.peer_id)))
    for i in range(1, n):
        node, dht, _ = nodes[i]
        for j in rng.sample(range(i), min(BOOTSTRAP_PEERS, i)):
            await dht.dial_identified(nodes[j][2])
        await dht.refresh()
    return nodes


async def _drop_connections(nodes):
    for node, _, _ in nodes:
        for c in list(node.connections):
            c.close()
    for _ in range(500):
        if not any(nd.connections for nd, _, _ in nodes):
            return
        await asyncio.sleep(0.01)


async def in_process(n, lookups, rng):
    t0 = time.perf_counter()
    nodes = await build_network(n, rng)
    build_s = time.perf_counter() - t0
    tables = sorted(len(d.table) for _, d, _ in nodes)
    # every lookup starts cold: no connections, routing tables as built (each hop dials, runs
    # Noise + yamux, then asks): the cost a peer pays for a lookup into a network it is not
    # already connected to
    await _drop_connections(nodes)
    res = {"find_peer": ([], [], 0), "find_providers": ([], [], 0)}
    for i in range(lookups):
        a, b, c = rng.sample(range(n), 3)
        node, dht, _ = nodes[a]
        r0 = dht.stats["requests_out"]
        t = time.perf_counter()
        addrs = await dht.find_peer(nodes[b][0].peer_id, local=False)
        ms, msgs, found = res["find_peer"]
        ms.append((time.perf_counter() - t) * 1000)
        msgs.append(dht.stats["requests_out"] - r0)
        res["find_peer"] = (ms, msgs, found + bool(addrs))
        key = b"\x12\x20" + crypto.sha256(b"content-%d" % i)
        stored = await nodes[c][1].provide(key)
        # ADD_PROVIDER has no answer: wait (bounded) until the records landed before hanging up
        for _ in range(500):
            if sum(1 for _, d, _ in nodes if d.server.providers.get(key, 0)) >= stored + 1:
                break
            await asyncio.sleep(0.01)
        await _drop_connections(nodes)
        r0 = dht.stats["requests_out"]
        t = time.perf_counter()
        got = await dht.find_providers(key, 1)
        ms, msgs, found = res["find_providers"]
        ms.append((time.perf_counter() - t) * 1000)
        msgs.append(dht.stats["requests_out"] - r0)
        res["find_providers"] = (ms, msgs, found + any(p == nodes[c][0].peer_id.to_bytes() for p, _ in got))
        await _drop_connections(nodes)
    for node, _, _ in nodes:
        await node.stop()
    res.update({"build_s": build_s, "tables": tables})
    return res


# ---- 2. js network, microp2p vs js clients ----------------------------------------------------

def js_side_by_side(servers, lookups):
    from peers import start_peer
    import contextlib
    out = {"microp2p": ([], 0, [], []), "js": ([], 0, [], [])}
    with contextlib.ExitStack() as st:
        js = []
        for i in range(servers):
            p = st.enter_context(start_peer("js", args=["--dht", "server"]))
            if js:
                p.send({"cmd": "dial", "addr": js[random.Random(i).randrange(len(js))].addr})
                p.wait_for("dialed", timeout=30, fail_on_error=True)
            js.append(p)
        clients = {
            "microp2p": st.enter_context(start_peer("microp2p", args=["--dht", "client"])),
            "js": st.enter_context(start_peer("js", args=["--dht", "client"])),
        }
        for kind, c in clients.items():
            c.send({"cmd": "dial", "addr": js[0].addr})
            c.wait_for("dial:ok" if kind == "microp2p" else "dialed", timeout=30, fail_on_error=True)
        provider = js[-1]
        keys = []
        for i in range(lookups):
            # a CIDv1 raw key per lookup, provided by the last js server
            from microp2p.codec import cid, multihash
            key = cid.encode(cid.RAW, multihash.encode(multihash.SHA2_256, crypto.sha256(b"js-bench-%d" % i)))
            provider.send({"cmd": "provide", "key": key, "id": "p%d" % i})
            provider.wait_for("dht:provided", lambda e, i=i: e.get("id") == "p%d" % i, timeout=60)
            keys.append(key)
        for i in range(lookups):
            target = js[1 + i % (servers - 1)].peer_id
            for kind in ("microp2p", "js") if i % 2 == 0 else ("js", "microp2p"):
                c = clients[kind]
                t = time.perf_counter()
                c.send({"cmd": "find_peer", "peer": target, "id": "f%d" % i})
                ev = c.wait_for("dht:find_peer", lambda e, i=i: e.get("id") == "f%d" % i, timeout=60)
                out[kind][0].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                c.send({"cmd": "find_providers", "key": keys[i], "id": "v%d" % i, "count": 1})
                pv = c.wait_for("dht:providers", lambda e, i=i: e.get("id") == "v%d" % i, timeout=60)
                out[kind][2].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                c.send({"cmd": "get_closest_peers", "key": keys[i], "id": "c%d" % i})
                cp = c.wait_for("dht:closest_peers", lambda e, i=i: e.get("id") == "c%d" % i, timeout=60)
                out[kind][3].append((time.perf_counter() - t) * 1000)
                ok = ev["found"] and any(p["id"] == provider.peer_id for p in pv["providers"]) and cp["peers"]
                out[kind] = (out[kind][0], out[kind][1] + bool(ok), out[kind][2], out[kind][3])
    return out


# ---- 3. provider store RSS --------------------------------------------------------------------

def provider_rss(records):
    import gc
    gc.collect()
    before = rss_bytes()
    ps = ProviderStore(max_records=records)
    addr = bytes.fromhex("047f000001060fa1")  # /ip4/127.0.0.1/tcp/4001
    for i in range(records):
        key = b"\x12\x20" + crypto.sha256(b"k%d" % i)
        pid = b"\x00\x24\x08\x01\x12\x20" + crypto.sha256(b"p%d" % (i % 2000))
        ps.add(key, pid, [addr], 0)
    gc.collect()
    after = rss_bytes()
    assert len(ps) == records
    return after - before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--lookups", type=int, default=40)
    ap.add_argument("--js-servers", type=int, default=10)
    ap.add_argument("--no-js", action="store_true")
    ap.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    o = ap.parse_args()
    if o.rss_only:
        print(provider_rss(RSS_RECORDS))
        return
    rng = random.Random(12)
    print("Kademlia bench (%s crypto)" % crypto.backend_name)
    r = asyncio.run(in_process(o.nodes, o.lookups, rng))
    t = r["tables"]
    print("in-process network: %d microp2p DHT servers over loopback TCP, built in %.1f s; routing "
          "table sizes min/median/max %d/%d/%d; lookups start with no connections (each hop dials)"
          % (o.nodes, r["build_s"], t[0], t[len(t) // 2], t[-1]))
    print("%-16s %8s %8s %10s %10s %8s" % ("lookup", "p50 ms", "p99 ms", "req p50", "req max", "found"))
    for name in ("find_peer", "find_providers"):
        ms, msgs, found = r[name]
        print("%-16s %8.1f %8.1f %10d %10d %5d/%d" % (name, pct(ms, .5), pct(ms, .99), pct(msgs, .5),
                                                       max(msgs), found, len(ms)))
    if not o.no_js:
        js = js_side_by_side(o.js_servers, min(o.lookups, 20))
        print("mixed network: %d js-libp2p DHT servers; clients: microp2p (CPython) and js-libp2p, "
              "same lookups, command-to-answer wall time" % o.js_servers)
        print("%-10s %-18s %8s %8s %8s" % ("client", "lookup", "p50 ms", "p99 ms", "ok"))
        for kind in ("microp2p", "js"):
            fp, ok, pv, cp = js[kind]
            print("%-10s %-18s %8.1f %8.1f %5d/%d" % (kind, "find_peer", pct(fp, .5), pct(fp, .99), ok, len(fp)))
            print("%-10s %-18s %8.1f %8.1f" % (kind, "find_providers", pct(pv, .5), pct(pv, .99)))
            print("%-10s %-18s %8.1f %8.1f" % (kind, "get_closest_peers", pct(cp, .5), pct(cp, .99)))
        for i, name in ((0, "find_peer"), (2, "find_providers"), (3, "get_closest_peers")):
            ratio = pct(js["microp2p"][i], .5) / pct(js["js"][i], .5)
            print("%s p50 microp2p/js = %.2f (target <= %.1f)" % (name, ratio, TARGET_P50_RATIO))
    # in a fresh process: this one's heap is full of freed network buffers RSS would not show
    import subprocess
    n = RSS_RECORDS
    grow = int(subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-only"],
                              capture_output=True, text=True, check=True).stdout.strip())
    per = grow * 1000 / n
    print("provider store: %d records, RSS +%.1f MiB = %.0f KiB per 1000 (target <= %d KiB)"
          % (n, grow / 1048576, per / 1024, TARGET_RSS_PER_1000 // 1024))


if __name__ == "__main__":
    main()
