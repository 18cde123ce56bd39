# The identify service (`/ipfs/id/1.0.0`, push `/ipfs/id/push/1.0.0`) over a Node's streams: answers
# identify requests, identifies every new connection, accepts pushes and sends them when our
# protocols or addresses change. The message codec is the sans-IO proto.identify.
from microp2p.proto import identify
from microp2p.aio import asyncio, TimeoutError, print_exc
from microp2p.clock import wall_us
from microp2p.errors import ProtocolError
from microp2p.io.connection import StreamReset
from microp2p import events as E

IDENTIFY = identify.PROTOCOL_ID
IDENTIFY_PUSH = identify.PUSH_PROTOCOL_ID


def observed_addr(maddr):
    """What identify tells a peer about the address we see it at: maddr (the connection's remote
    address) without its trailing /p2p/ID. A relayed connection's address,
    <relay addr>/p2p/RELAY/p2p-circuit/p2p/PEER, becomes <relay addr>/p2p/RELAY/p2p-circuit (as go
    reports it); cutting at the first /p2p would tell the peer that the relay's own socket is
    the address we see it at. None when no transport address is left (a circuit through a relay
    we reach over a serial link: /p2p/RELAY/p2p-circuit tells the peer nothing it can use, and
    js-libp2p fails identify on an observed address without one)."""
    if maddr.protocols()[-1:] == ["p2p"]:
        maddr = maddr.decapsulate("/p2p/" + str(maddr.peer_id()))
    if maddr is None or maddr.protocols()[0] in ("p2p", "p2p-circuit"):
        return None
    return maddr


def identify_fields(peer, info):
    """The JSON fields of an identify / identify:push event."""
    obs = info.get("observed_addr")
    return {
        "peer": str(peer),
        "protocols": sorted(info.get("protocols") or []),
        "agentVersion": info.get("agent_version"),
        "protocolVersion": info.get("protocol_version"),
        "listenAddrs": [str(a) for a in info.get("listen_addrs") or []],
        "observedAddr": str(obs) if obs else None,
        "signedPeerRecord": info.get("signed_record") is not None,
    }


class IdentifyService:
    def __init__(self, node):
        self.node = node
        # Peer-record sequence: peers ignore a record whose seq is not above the last one they
        # stored, so a restarted node must not start again at 1: use the wall clock (µs).
        self._record_seq = wall_us()
        self._record_cache = None   # (addrs, signed peer record envelope)
        self._listeners = []        # fn(conn, info) after every identify answer or push
        node.handle(IDENTIFY, self._handle)
        node.handle(IDENTIFY_PUSH, self._handle_push)
        node.on_connection(self._on_connection)

    def on_identify(self, fn):
        """fn(conn, info) whenever a connection's identify answer (or a push) has arrived;
        info is conn.identified (protocols, listen_addrs, ...)."""
        self._listeners.append(fn)

    def _notify(self, conn):
        for fn in self._listeners:
            try:
                fn(conn, conn.identified)
            except Exception as e:
                print_exc(e)

    def _on_connection(self, conn, opened):
        if opened:
            self.node.spawn(self.identify(conn))

    def signed_record(self):
        """Our signed peer record (an envelope), sealed again only when its content changes: an
        Ed25519 signature per identify costs ~5 ms on MicroPython (x86), far more on an MCU."""
        addrs = self.node.advertised_addrs()
        key = tuple(a.to_bytes() for a in addrs)
        cached = self._record_cache
        if cached is None or cached[0] != key:
            if cached is not None:
                # New addresses (a relay reservation came or went), a higher seq: peers keep a
                # record only when its seq is above the one they hold.
                seq = wall_us()
                self._record_seq = seq if seq > self._record_seq else self._record_seq + 1
            from microp2p.identity import envelope  # loaded with the first identify answered
            cached = (key, envelope.seal_peer_record(self.node.key, self._record_seq, addrs))
            self._record_cache = cached
        return cached[1]

    def message(self, conn):
        observed = observed_addr(conn.remote_addr) if conn.remote_addr is not None else None
        node = self.node
        return identify.frame(identify.encode_identify(
            node.key, node.protocols(), node.advertised_addrs(), observed, node.profile.agent,
            signed_record=self.signed_record()))

    async def _handle(self, st):
        await st.write(self.message(st.conn))
        await st.close()

    async def read_info(self, st, push):
        reader = identify.IdentifyReader(st.conn.remote_peer, push)
        limit = self.node.profile.identify_max_bytes
        got = 0
        while True:
            data = await st.read()
            if not data:
                return reader.receive_eof()[0][1]
            got += len(data)
            if got > limit:
                raise ProtocolError("identify stream over %d bytes" % limit)
            reader.receive(data)

    async def identify(self, conn):
        """Ask the remote who it is; the answer lands in conn.identified and an identify event."""
        node = self.node
        try:
            st = await conn.new_stream([IDENTIFY])
            info = await asyncio.wait_for(self.read_info(st, False), node.profile.identify_timeout_ms / 1000)
            await st.close()
        except (ProtocolError, OSError, EOFError, StreamReset, TimeoutError) as e:
            node.log("identify %s failed: %s %s" % (conn.remote_peer, type(e).__name__, e))
            return
        conn.identified = info
        node.emit(E.IDENTIFY, identify_fields(conn.remote_peer, info))
        self._notify(conn)

    async def _handle_push(self, st):
        from microp2p.io import identify_push  # pushes are rare: their code loads on the first
        await identify_push.receive(self, st, identify_fields)
        self._notify(st.conn)

    def push(self):
        """Tell every connected peer our current protocols and addresses (after they changed)."""
        for conn in list(self.node.connections):
            if not conn.closed:
                from microp2p.io import identify_push
                self.node.spawn(identify_push.send(self, conn))
