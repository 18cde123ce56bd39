# The device reached from the network through its gateway (loaded on first use by app._reach, or
# when the gateway's identify lists the relay hop protocol):
#   /libp2p/circuit/relay/0.2.0/stop   a relayed connection, accepted only from the gateway
#   /microp2p/sensor/1.0.0             the latest signed reading (as published) and the status
#   a reservation on the gateway's relay, held over our link (TCP or serial; never a dial of its
#   own): the gateway answers with its public addresses, and <addr>/p2p/GW/p2p-circuit/p2p/US
#   goes into our identify listenAddrs and signed peer record while it holds (refreshed before
#   it expires, taken again after a reconnect; relay:reservation on stdout each time)
import gc
from microp2p.clock import ticks_ms, ticks_diff
from microp2p.proto import sensor


async def serve(app, st):
    if st.protocol == sensor.PROTOCOL:
        await sensor.serve(st, lambda: status(app), lambda: latest_signed(app))
        return
    await client(app).handle_stop(st)


def client(app):
    rc = app.relay
    if rc is None:
        from microp2p.io import relay
        rc = relay.RelayClient(app.node, on_event=app.emit,
                               stop_from=set([app.gateway_peer]) if app.gateway_peer else None)
        app.relay = rc
    return rc


def gateway_relay(app, hop):
    """After each identify of the gateway: hold a slot on it while it serves hop, else let go."""
    rc = client(app)
    gw = app.gateway_peer
    if hop:
        rc.reserve("/p2p/" + str(gw), dial=False)
    elif gw in rc.reservations:
        rc.release(gw)


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
