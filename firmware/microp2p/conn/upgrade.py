# The connection upgrade as one sans-IO machine: raw bytes of ANY duplex byte stream (TCP, a serial
# link, a relayed yamux stream) in, a secured and multiplexed connection out.
#
#   multistream(/noise) ── Noise XX ── [early muxer in the Noise payload | multistream(/yamux/1.0.0)
#                                       over the encrypted channel]
#
#   u = Upgrade(outbound, key, ...)      the dialer's first bytes are ready at once
#   out = u.data_to_send()              write these to the stream
#   u.receive(data) -> events           bytes read from the stream: [("upgraded",)] once, when done;
#                                       raises ProtocolError subclasses (the connection must close)
#   u.done                              True once secured and the muxer is agreed; then:
#   u.remote_peer u.transport u.muxer u.muxer_negotiation ("early" | "multistream")
#   u.pending                           plaintext chunks that already belong to the muxer
#
# After done, every further byte read goes to u.transport.receive() (the Noise transport), which
# this machine hands over with whatever partial frame it holds.
from microp2p.conn import mss, noise
from microp2p.errors import UsageError, SCOPE_CONNECTION

NOISE = noise.PROTOCOL_ID
YAMUX = "/yamux/1.0.0"

_SECURITY = 0
_HANDSHAKE = 1
_MUXER = 2
_DONE = 3


def _data_events(events):
    out = []
    for ev in events:
        if ev[0] == "data" and ev[1]:
            out.append(bytes(ev[1]))
    return out


class Upgrade:
    """outbound: we dialled (multistream and Noise initiator, yamux client).
    key: our identity private key; expected_peer: the PeerId the dialer wants (None: anyone).
    noise_static: (static_private, identity_sig, static_public) cached per node (see noise.make_static).
    early: offer our muxers inside the Noise handshake (the inlined-muxer spec); False always
    negotiates the muxer with multistream-select afterwards."""

    def __init__(self, outbound, key, expected_peer=None, noise_static=None, muxers=(YAMUX,), early=True):
        self.outbound = outbound
        self.muxers = tuple(muxers)
        self._early = early
        self._key = key
        self._expected = expected_peer
        self._static = noise_static or (None, None, None)
        self._state = _SECURITY
        self._mss = mss.Dialer([NOISE], SCOPE_CONNECTION) if outbound else mss.Listener((NOISE,), SCOPE_CONNECTION)
        self._hs = None
        self._out = bytearray(self._mss.data_to_send())
        self.remote_peer = None
        self.transport = None
        self.muxer = None
        self.muxer_negotiation = None
        self.pending = []

    @property
    def done(self):
        return self._state == _DONE

    def data_to_send(self):
        out = bytes(self._out)
        self._out = bytearray()
        return out

    def receive(self, data):
        if self._state == _DONE:
            raise UsageError("upgrade already done: feed the transport")
        self._receive(data)
        return [("upgraded",)] if self._state == _DONE else []

    def _receive(self, data):
        if self._state == _SECURITY:
            events = self._mss.receive(data)
            self._out += self._mss.data_to_send()
            if self._mss.protocol is None:
                return
            self._start_handshake()
            data = b"".join(_data_events(events))
            if not data:
                return
        if self._state == _HANDSHAKE:
            self.pending.extend(_data_events(self._hs.receive(data)))
            self._out += self._hs.data_to_send()
            if self._hs.complete:
                self._secured()
            return
        if self._state == _MUXER:
            for chunk in self.transport.receive(data):
                self._muxer_input(chunk)

    # ---- steps ---------------------------------------------------------------------------------
    def _start_handshake(self):
        sp, sig, pub = self._static
        self._hs = noise.Handshake(self.outbound, self._key, self._expected, self.muxers if self._early else (),
                                   static_private=sp, identity_sig=sig, static_public=pub)
        self._out += self._hs.data_to_send()  # msg 1 when we initiate
        self._state = _HANDSHAKE

    def _secured(self):
        hs = self._hs
        self.remote_peer = hs.remote_peer
        self.transport = hs.transport()
        self._hs = None
        if hs.muxer is not None and hs.muxer in self.muxers:
            self.muxer = hs.muxer
            self.muxer_negotiation = "early"
            self._state = _DONE
            return
        # no common early muxer: multistream-select over the encrypted channel
        self.muxer_negotiation = "multistream"
        self._mss = mss.Dialer(list(self.muxers), SCOPE_CONNECTION) if self.outbound \
            else mss.Listener(self.muxers, SCOPE_CONNECTION)
        self._state = _MUXER
        early = self.pending
        self.pending = []
        self._send_plain(self._mss.data_to_send())
        for chunk in early:
            self._muxer_input(chunk)

    def _muxer_input(self, chunk):
        if self._state == _DONE:
            self.pending.append(chunk)
            return
        events = self._mss.receive(chunk)
        self._send_plain(self._mss.data_to_send())
        if self._mss.protocol is not None:
            self.muxer = self._mss.protocol
            self._state = _DONE
            self.pending.extend(_data_events(events))

    def _send_plain(self, data):
        if data:
            self._out += self.transport.encrypt(data)
