#!/usr/bin/env python3
# Gateway cost per fleet size: RSS and CPU of the `microp2p gateway` process with N emulated
# devices, and each device's peak heap (from its own stats). Every device is a real MicroPython
# unix-port process running sensor_node over TCP (one reading per --interval-ms), exactly as in
# `microp2p emulate`; nothing is simulated in-process.
#
#   .venv/bin/python bench/fleet.py [--sizes 10,50,200] [--steady 20] [--interval-ms 1000]
#
# Per size: start the gateway and N devices, wait until all are connected, then measure the
# gateway over a steady window of --steady seconds (CPU % = CPU seconds used / wall seconds).
import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host"))
from microp2p_host.emulate import Fleet, proc_cpu_rss  # noqa: E402

CONNECT_TIMEOUT_S = 180
START_BATCH = 20


async def one(n, steady_s, interval_ms, heap):
    fleet = Fleet(n_tcp=n, interval_ms=interval_ms, device_heap=heap, stats_interval_s=2)
    t0 = time.monotonic()
    try:
        await fleet.start(devices=False)
        cpu_idle, rss_idle = proc_cpu_rss(fleet.gateway.pid)
        # batches: 200 MicroPython processes compiling and handshaking at once on a small host
        # would only measure the host's scheduler
        for i in range(0, n, START_BATCH):
            batch = fleet.devices[i:i + START_BATCH]
            await asyncio.gather(*[d.start() for d in batch])
            await fleet.wait_connected(batch, timeout=CONNECT_TIMEOUT_S)
        t_conn = time.monotonic() - t0
        await asyncio.sleep(3)  # past the connection burst
        cpu0, _ = proc_cpu_rss(fleet.gateway.pid)
        msgs0 = sum(len(d.published) for d in fleet.devices)
        w0 = time.monotonic()
        await asyncio.sleep(steady_s)
        cpu1, rss1 = proc_cpu_rss(fleet.gateway.pid)
        wall = time.monotonic() - w0
        msgs = sum(len(d.published) for d in fleet.devices) - msgs0
        dev_rss = [proc_cpu_rss(d.pid)[1] or 0 for d in fleet.devices]
        peaks = [d.heap_peak for d in fleet.devices if d.heap_peak]
        gw_stats = fleet.gateway.named("stats")
        msgs_in = gw_stats[-1].get("msgsIn") if gw_stats else None
        return {"devices": n, "connectSeconds": round(t_conn, 1),
                "gatewayRssKbStart": rss_idle, "gatewayRssKb": rss1,
                "gatewayCpuPct": round(100 * (cpu1 - cpu0) / wall, 1),
                "gatewayCpuSecondsTotal": round(cpu1, 2),
                "readingsPerS": round(msgs / wall, 1), "gatewayMsgsIn": msgs_in,
                "deviceHeapPeakMaxB": max(peaks) if peaks else None,
                "deviceHeapPeakMedianB": sorted(peaks)[len(peaks) // 2] if peaks else None,
                "deviceRssKbMedian": sorted(dev_rss)[len(dev_rss) // 2]}
    finally:
        await fleet.stop()
        fleet.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10,50,200")
    ap.add_argument("--steady", type=float, default=20.0)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--heap", default="512K", help="MicroPython heap per device")
    a = ap.parse_args()
    print("fleet bench: MicroPython unix-port devices over TCP, one reading / %d ms each, %d CPUs" % (
        a.interval_ms, os.cpu_count()), file=sys.stderr)
    print("%8s %9s %12s %10s %10s %10s %14s %13s" % ("devices", "connect", "gw RSS MB", "gw CPU %", "rdg/s",
                                                       "gw in", "dev heap peak", "dev RSS MB"), file=sys.stderr)
    for n in [int(x) for x in a.sizes.split(",")]:
        r = asyncio.run(one(n, a.steady, a.interval_ms, a.heap))
        print("%8d %8.1fs %12.1f %10.1f %10.1f %10s %11.0f KB %13.1f" % (
            n, r["connectSeconds"], r["gatewayRssKb"] / 1024, r["gatewayCpuPct"], r["readingsPerS"],
            r["gatewayMsgsIn"], (r["deviceHeapPeakMaxB"] or 0) / 1024, r["deviceRssKbMedian"] / 1024),
            file=sys.stderr, flush=True)
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
