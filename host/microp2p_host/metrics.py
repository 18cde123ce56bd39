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


class GatewayCollector:
    def __init__(self, gateway):
        self.gateway = gateway

    def collect(self):
        gw = self.gateway
        s = gw.stats()
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
        for i, dev in enumerate(gw.devices.values()):
            if i >= MAX_LABELLED_DEVICES:
                break
            msgs.add_metric([dev.peer, dev.name or "", "in"], dev.msgs_in)
            msgs.add_metric([dev.peer, dev.name or "", "out"], dev.msgs_out)
            refusals.add_metric([dev.peer, dev.name or ""], dev.refusals)
        yield msgs
        yield refusals
        router = CounterMetricFamily("microp2p_router_events", "Pubsub router counters (drops, rejects, ...)", labels=["kind"])
        for k, v in sorted((s.get("router") or {}).items()):
            if isinstance(v, (int, float)):
                router.add_metric([str(k)], v)
        yield router
        extra = getattr(gw, "metrics_extra", None)
        if extra is not None:
            for family in extra():
                yield family
        yield GaugeMetricFamily("microp2p_process_rss_bytes", "Resident memory of the gateway", value=s["rssKb"] * 1024)
        yield CounterMetricFamily("microp2p_process_cpu_seconds", "CPU time of the gateway", value=s["cpuS"])


def serve(gateway, listen):
    """Start the HTTP endpoint in a background thread; returns (server, thread, port)."""
    host, port = parse_listen(listen)
    registry = CollectorRegistry()
    registry.register(GatewayCollector(gateway))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread, server.server_port
