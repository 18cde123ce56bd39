# Identify push (`/ipfs/id/push/1.0.0`) for io/identify.IdentifyService, imported on the first push
# received or sent: a leaf device rarely sees one, so this code stays out of its heap until then.
from microp2p.aio import asyncio, TimeoutError
from microp2p.errors import ProtocolError
from microp2p.io.connection import StreamReset
from microp2p.proto.identify import PUSH_PROTOCOL_ID
from microp2p import events as E


async def receive(svc, st, identify_fields):
    """A peer pushed its changed identify info: merged into conn.identified, an event emitted."""
    info = await asyncio.wait_for(svc.read_info(st, True), svc.node.profile.identify_timeout_ms / 1000)
    await st.close()  # our side too: the stream (and its resource slot) is done both ways
    old = st.conn.identified or {}
    for k in info:
        if info[k] is not None:
            old[k] = info[k]
    st.conn.identified = old
    svc.node.emit(E.IDENTIFY_PUSH, identify_fields(st.conn.remote_peer, old))


async def send(svc, conn):
    """Push our current identify message to one connection."""
    try:
        st = await conn.new_stream([PUSH_PROTOCOL_ID])
        await st.write(svc.message(conn))
        await st.close()
    except (ProtocolError, OSError, EOFError, StreamReset, TimeoutError) as e:
        svc.node.log("identify push to %s failed: %s %s" % (conn.remote_peer, type(e).__name__, e))
