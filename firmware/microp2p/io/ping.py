# The ping service (`/ipfs/ping/1.0.0`) over a Node's streams: answers pings (at most
# proto.ping.MAX_PING_STREAMS_PER_PEER concurrent inbound streams per connection, as the spec
# allows) and measures round trips. The wire format is the sans-IO proto.ping.
from microp2p.proto import ping
from microp2p.aio import asyncio
from microp2p.clock import ticks_ms, ticks_us, ticks_diff

PING = ping.PROTOCOL_ID


class PingService:
    def __init__(self, node):
        self.node = node
        node.handle(PING, self.serve)

    async def serve(self, st):
        """Answer pings on one inbound stream until the dialer closes it."""
        conn = st.conn
        if conn.ping_streams >= ping.MAX_PING_STREAMS_PER_PEER:
            st.reset()
            return
        conn.ping_streams += 1
        try:
            responder = ping.PingResponder()
            while True:
                data = await st.read()
                if not data:
                    break
                responder.receive(data)
                out = responder.data_to_send()
                if out:
                    await st.write(out)
            await st.close()
        finally:
            conn.ping_streams -= 1

    async def ping(self, peer, count=1, on_rtt=None):
        """RTTs in ms (float) for count pings over one stream to peer (PeerId or Connection)."""
        st = await self.node.new_stream(peer, [PING])
        rtts = []
        try:
            pinger = ping.PingInitiator()
            for _ in range(count):
                t0 = ticks_us()
                pinger.ping(ticks_ms())
                await st.write(pinger.data_to_send())
                got = False
                while not got:
                    data = await asyncio.wait_for(st.read(), ping.PING_TIMEOUT_MS / 1000)
                    if not data:
                        raise EOFError("ping stream closed")
                    for ev in pinger.receive(data, ticks_ms()):
                        got = ev[0] == "pong"
                rtt = ticks_diff(ticks_us(), t0) / 1000
                rtts.append(rtt)
                if on_rtt is not None:
                    on_rtt(rtt)
        finally:
            await st.close()
        return rtts
