# The device reached from the network through its gateway (loaded on first use by app._reach):
#   /libp2p/circuit/relay/0.2.0/stop   a relayed connection, accepted only from the gateway
#   /microp2p/sensor/1.0.0             the latest signed reading (as published) and the status
import gc
from microp2p.clock import ticks_ms, ticks_diff
from microp2p.proto import sensor


async def serve(app, st):
    if st.protocol == sensor.PROTOCOL:
        await sensor.serve(st, lambda: status(app), lambda: latest_signed(app))
        return
    rc = getattr(app, "relay", None)
    if rc is None:
        from microp2p.io import relay
        rc = relay.RelayClient(app.node, stop_from=set([app.gateway_peer]) if app.gateway_peer else None)
        app.relay = rc
    await rc.handle_stop(st)


def latest_signed(app):
    """Our latest reading exactly as published: the signed pubsub Message bytes (the router keeps
    our recent own messages for replay)."""
    recent = getattr(app.pubsub.router, "_own_recent", None) if app.pubsub is not None else None
    if recent:
        for i in range(len(recent) - 1, -1, -1):
            if recent[i][2] == app.topic:
                return recent[i][3]
    return None


def status(app):
    try:
        heap = gc.mem_free()
    except AttributeError:   # CPython
        heap = None
    c = app.conn
    return {"uptime_ms": ticks_diff(ticks_ms(), app.started_ms), "heap_free": heap,
            "link": app.cfg["link"] if c is not None and not c.closed else "down",
            "queue": len(app.queue), "drops": app.dropped, "seq": app.seq, "sent": app.sent}
