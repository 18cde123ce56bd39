# The gateway's Prometheus metrics endpoint (the official prometheus-client library), configured
# by `[gateway] metrics = "127.0.0.1:9464"`. Values are read from the gateway at scrape time (a
# custom collector), so the gateway's hot paths carry no metric bookkeeping of their own.
#
#   microp2p_devices{state="connected"|"known"}            gauge
#   microp2p_device_messages_total{peer, name, direction}  counter (in: readings from it, out: to it)
#   microp2p_device_refusals_total{peer, name}             counter
#   microp2p_refused_unknown_total                         counter (peers not on the allow-list)
#   microp2p_connections, microp2p_network_peers           gauges
#   microp2p_messages_total                                counter (gossip messages received)
#   microp2p_router_events_total{kind}                     counter (router stats: drops, rejects, ...)
#   microp2p_process_rss_bytes, microp2p_process_cpu_seconds_total
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

MAX_LABELLED_DEVICES = 4096   # per-device series beyond this are summed into the totals only


def parse_listen(text):
    """"HOST:PORT" -> (host, port); ValueError with a readable message."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("metrics address must be HOST:PORT, e.g. 127.0.0.1:9464 (got %r)" % text)
    return host.strip("[]"), int(port)


SCRAPE_TIMEOUT_S = 5.0       # a scrape waits at most this long for the gateway's loop


class GatewayCollector:
    """Reads the gateway on its own event loop (the HTTP server runs in a thread): a snapshot of
    stats and the device table is taken there, so no table changes under a scrape."""

    def __init__(self, gateway, loop):
        self.gateway = gateway
        self.loop = loop

    def _snapshot(self):
        gw = self.gateway
        devs = [(d.peer, d.name, d.msgs_in, d.msgs_out, d.refusals) for d in gw.devices.values()]
        extra = getattr(gw, "metrics_extra", None)
        return gw.stats(), devs, list(extra()) if extra is not None else []

    def collect(self):
        import asyncio
        async def snap():
            return self._snapshot()
        s, devs, extra = asyncio.run_coroutine_threadsafe(snap(), self.loop).result(SCRAPE_TIMEOUT_S)
        g = GaugeMetricFamily("microp2p_devices", "Devices on the allow-list, by state", labels=["state"])
        g.add_metric(["connected"], s["devicesConnected"])
        g.add_metric(["known"], s["devicesKnown"])
        yield g
        yield GaugeMetricFamily("microp2p_connections", "Open libp2p connections", value=s["connections"])
        yield GaugeMetricFamily("microp2p_network_peers", "Connected peers that are not devices", value=s["networkPeers"])
        yield CounterMetricFamily("microp2p_messages", "Gossip messages received", value=s["messages"])
        yield CounterMetricFamily("microp2p_refused_unknown", "Connections refused: peer not on the allow-list",
                                  value=s["refusedUnknown"])
        msgs = CounterMetricFamily("microp2p_device_messages", "Gossip messages from / to each device",
                                   labels=["peer", "name", "direction"])
        refusals = CounterMetricFamily("microp2p_device_refusals", "Refused connections per device", labels=["peer", "name"])
        for peer, name, m_in, m_out, refused in devs[:MAX_LABELLED_DEVICES]:
            msgs.add_metric([peer, name or "", "in"], m_in)
            msgs.add_metric([peer, name or "", "out"], m_out)
            refusals.add_metric([peer, name or ""], refused)
        yield msgs
        yield refusals
        router = CounterMetricFamily("microp2p_router_events", "Pubsub router counters (drops, rejects, ...)", labels=["kind"])
        for k, v in sorted((s.get("router") or {}).items()):
            if isinstance(v, (int, float)):
                router.add_metric([str(k)], v)
        yield router
        relay = s.get("relay")
        if isinstance(relay, dict):   # relay hop on: reservations held, circuits open, counters
            yield GaugeMetricFamily("microp2p_relay_reservations", "Relay v2 reservations held",
                                    value=relay.get("reservations", 0))
            yield GaugeMetricFamily("microp2p_relay_circuits", "Relay v2 circuits open", value=relay.get("circuits", 0))
            rs = CounterMetricFamily("microp2p_relay_events", "Relay v2 hop counters (reserved, refused, ...)",
                                     labels=["kind"])
            for k, v in sorted((relay.get("stats") or {}).items()):
                if isinstance(v, (int, float)):
                    rs.add_metric([str(k)], v)
            yield rs
        for family in extra:
            yield family
        yield GaugeMetricFamily("microp2p_process_rss_bytes", "Resident memory of the gateway", value=s["rssKb"] * 1024)
        yield CounterMetricFamily("microp2p_process_cpu_seconds", "CPU time of the gateway", value=s["cpuS"])


def serve(gateway, listen):
    """Start the HTTP endpoint in a background thread; returns (server, thread, port)."""
    host, port = parse_listen(listen)
    registry = CollectorRegistry()
    import asyncio
    registry.register(GatewayCollector(gateway, asyncio.get_running_loop()))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread, server.server_port
