# noise-libp2p (`/noise`): Noise_XX_25519_ChaChaPoly_SHA256 as a sans-IO machine.
#
# Spec: libp2p/specs noise/README.md (r4: handshake payload with extensions, 2-byte frames) and the
# Noise Protocol Framework rev 34 (sections 5.1-5.3 CipherState/SymmetricState/HandshakeState,
# 7.5 XX). Early muxer negotiation: specs connections/inlined-muxer-negotiation.md.
#
#   XX:  -> e                       (msg 1, empty payload)
#        <- e, ee, s, es            (msg 2, responder's signed payload)
#        -> s, se                   (msg 3, initiator's signed payload)
#
# Handshake.receive(data) -> events; Handshake.data_to_send() -> bytes. On completion it yields
# ('handshake_complete', remote_peer_id, remote_muxers) and, if bytes after the last handshake
# message came in the same receive, one ('data', plaintext) per transport frame they held.
# Handshake.transport() then returns the Transport (encrypt / receive) for the connection.
from microp2p import crypto
from microp2p.codec import pb
from microp2p.identity import keys
from microp2p.identity.peerid import PeerId
from microp2p.errors import ProtocolError, DecodeError, LimitError, AuthError, UsageError

PROTOCOL_ID = "/noise"
# Exactly HASHLEN (32) bytes long, so InitializeSymmetric uses it as h directly (no hash, no pad).
PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
SIG_PREFIX = b"noise-libp2p-static-key:"

MAX_FRAME = 65535                   # 2-byte big-endian length prefix
TAG_LEN = 16
MAX_PLAINTEXT = MAX_FRAME - TAG_LEN  # per transport frame
DH_LEN = 32
# Handshake messages carry one key protobuf, one signature and a few extension strings: under
# 1 KiB with Ed25519, ~1.2 KiB with RSA-4096. A larger one is refused before it is buffered.
MAX_HANDSHAKE_FRAME = 4096
MAX_EXTENSION_ITEMS = 16            # per repeated extension field (muxers, certhashes)
MAX_NONCE = 0xFFFFFFFFFFFFFFFF      # 2^64-1 is reserved by Noise: never used as a nonce

EXTENSIONS_SCHEMA = (
    (1, "webtransport_certhashes", pb.B, True),
    (2, "stream_muxers", pb.S, True),
)
PAYLOAD_SCHEMA = (
    (1, "identity_key", pb.B, False),
    (2, "identity_sig", pb.B, False),
    (4, "extensions", EXTENSIONS_SCHEMA, False),
)

_ZERO32 = bytes(32)

# Handshake states
_AWAIT_MSG1 = 1   # responder
_AWAIT_MSG2 = 2   # initiator (msg 1 queued at construction)
_AWAIT_MSG3 = 3   # responder (msg 2 sent)
_DONE = 4
_FAILED = 5


def make_static(identity_key):
    """A Noise static key and its identity signature, for a node that reuses one static key
    across handshakes (saves one Ed25519 signature per connection on a device).
    Returns (static_private32, identity_sig); pass both to Handshake."""
    priv = crypto.random_bytes(32)
    return priv, identity_key.sign(SIG_PREFIX + crypto.x25519_public(priv))


def _dh(private, public):
    # Every backend raises AuthError for a low-order peer key (all-zero secret); checked again
    # here because keying a channel with zeros must never happen, whatever the backend.
    out = crypto.x25519(private, bytes(public))
    if out == _ZERO32:
        raise AuthError("x25519 gave an all-zero secret")
    return out


def _nonce(n):
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


class _Framer:
    """Cuts a byte stream into 2-byte-length frames. Whole frames inside the caller's data are
    returned as memoryviews into it (no copy); only a frame split across receives is collected,
    in one bytearray that grows to the largest such frame (capped by the caller) and is reused."""

    def __init__(self):
        self._rx = bytearray(2)
        self._fill = 0

    def _next_frame(self, mv, pos, cap):
        """Returns (frame or None, new_pos). A returned frame is valid until the next call."""
        n = len(mv)
        fill = self._fill
        if fill == 0:
            if n - pos < 2:
                if n == pos:
                    return None, pos
            else:
                flen = (mv[pos] << 8) | mv[pos + 1]
                if flen > cap:
                    raise LimitError("noise frame of %d bytes over cap %d" % (flen, cap))
                if n - pos - 2 >= flen:
                    return mv[pos + 2:pos + 2 + flen], pos + 2 + flen
        rx = self._rx
        if fill < 2:
            take = min(2 - fill, n - pos)
            rx[fill:fill + take] = mv[pos:pos + take]
            fill += take
            pos += take
            if fill < 2:
                self._fill = fill
                return None, pos
        flen = (rx[0] << 8) | rx[1]
        if flen > cap:
            raise LimitError("noise frame of %d bytes over cap %d" % (flen, cap))
        if len(rx) < 2 + flen:
            grown = bytearray(2 + flen)
            grown[0:fill] = rx[0:fill]
            self._rx = rx = grown
        take = min(2 + flen - fill, n - pos)
        rx[fill:fill + take] = mv[pos:pos + take]
        fill += take
        pos += take
        if fill < 2 + flen:
            self._fill = fill
            return None, pos
        self._fill = 0
        return memoryview(rx)[2:2 + flen], pos


class Transport(_Framer):
    """The two CipherStates after Split(): encrypt() frames outgoing data, receive() returns the
    plaintext of every complete incoming frame."""

    def __init__(self, send_key, recv_key):
        _Framer.__init__(self)
        self._send_key = send_key
        self._recv_key = recv_key
        self._send_n = 0
        self._recv_n = 0
        # Nonces as 12-byte buffers bumped in place: no per-frame int->bytes garbage.
        self._send_nonce = bytearray(12)
        self._recv_nonce = bytearray(12)

    def _set_nonces(self, send_n, recv_n):
        """Test hook: jump both counters (nonce exhaustion tests)."""
        self._send_n = send_n
        self._recv_n = recv_n
        self._send_nonce[4:12] = send_n.to_bytes(8, "little")
        self._recv_nonce[4:12] = recv_n.to_bytes(8, "little")

    @staticmethod
    def _bump(nonce):
        i = 4
        while i < 12:
            v = nonce[i] + 1
            if v < 256:
                nonce[i] = v
                return
            nonce[i] = 0
            i += 1

    def encrypt(self, plaintext):
        """Encrypt and frame plaintext (any length; split into frames of <= MAX_PLAINTEXT).
        Returns the wire bytes (a bytearray)."""
        total = len(plaintext)
        frames = (total + MAX_PLAINTEXT - 1) // MAX_PLAINTEXT
        # One allocation of the exact wire size (no regrowth while appending frames).
        out = bytearray(total + frames * (2 + TAG_LEN))
        mv = memoryview(plaintext)
        pos = 0
        o = 0
        while pos < total:
            end = pos + MAX_PLAINTEXT
            if end > total:
                end = total
            if self._send_n >= MAX_NONCE:
                raise LimitError("noise send nonce exhausted")
            ct = crypto.aead_encrypt(self._send_key, self._send_nonce, b"", mv[pos:end])
            self._send_n += 1
            self._bump(self._send_nonce)
            clen = len(ct)
            out[o] = clen >> 8
            out[o + 1] = clen & 0xFF
            out[o + 2:o + 2 + clen] = ct
            o += 2 + clen
            pos = end
        return out

    def receive(self, data):
        """Feed wire bytes; returns a list of plaintext chunks (one per complete frame).
        A frame that fails to authenticate raises AuthError (connection scope)."""
        chunks = []
        mv = memoryview(data)
        pos = 0
        while True:
            frame, pos = self._next_frame(mv, pos, MAX_FRAME)
            if frame is None:
                return chunks
            chunks.append(self._open(frame))

    def _open(self, frame):
        if len(frame) < TAG_LEN:
            raise AuthError("noise transport frame shorter than its tag")
        if self._recv_n >= MAX_NONCE:
            raise LimitError("noise receive nonce exhausted")
        pt = crypto.aead_decrypt(self._recv_key, self._recv_nonce, b"", frame)
        self._recv_n += 1
        self._bump(self._recv_nonce)
        return pt


class Handshake(_Framer):
    """One Noise XX handshake, either role.

    identity_key   our libp2p identity private key (microp2p.identity.keys), signs the static key
    remote_peer    expected PeerId of the remote (the dialer knows it); mismatch -> AuthError
    muxers         our stream muxers in preference order, sent as early-muxer-negotiation data
    static_private / identity_sig   a cached static key and its signature (see make_static)
    static_public                   x25519_public(static_private), when the caller has it cached:
                                    saves a scalar multiplication per handshake (~4 ms on
                                    MicroPython x86, much more on an MCU); trusted, not checked
    ephemeral_private               test hook only: fixes the ephemeral key (vectors)
    """

    def __init__(self, initiator, identity_key, remote_peer=None, muxers=(),
                 static_private=None, identity_sig=None, ephemeral_private=None,
                 static_public=None):
        _Framer.__init__(self)
        self.initiator = initiator
        self._identity_key = identity_key
        self.expected_peer = remote_peer
        self.muxers = list(muxers)
        if static_private is None:
            if identity_sig is not None:
                raise UsageError("identity_sig without its static_private")
            static_private = crypto.random_bytes(32)
        self._s_priv = static_private
        if static_public is None:
            static_public = crypto.x25519_public(static_private)
        self._s_pub = static_public
        self._identity_sig = identity_sig
        self._e_priv = ephemeral_private
        self._e_pub = None
        self._re = None
        self._rs = None
        # SymmetricState.InitializeSymmetric + MixHash(empty prologue)
        self._h = PROTOCOL_NAME
        self._ck = PROTOCOL_NAME
        self._k = None
        self._n = 0
        self._mix_hash(b"")
        self._out = bytearray()
        self._transport = None
        self.remote_peer = None
        self.remote_public_key = None
        self.remote_muxers = None
        self.muxer = None            # early-negotiated muxer, or None -> use multistream-select
        self.handshake_hash = None   # h at the end (channel binding, test vectors)
        if initiator:
            self._write_msg1()
            self._state = _AWAIT_MSG2
        else:
            self._state = _AWAIT_MSG1

    # --- SymmetricState -------------------------------------------------------------------
    def _mix_hash(self, data):
        self._h = crypto.sha256(self._h + bytes(data))

    def _mix_key(self, ikm):
        self._ck, self._k = crypto.hkdf(self._ck, ikm, 2)
        self._n = 0

    def _encrypt_and_hash(self, plaintext):
        if self._k is None:
            ct = bytes(plaintext)
        else:
            ct = crypto.aead_encrypt(self._k, _nonce(self._n), self._h, plaintext)
            self._n += 1
        self._mix_hash(ct)
        return ct

    def _decrypt_and_hash(self, ciphertext):
        ciphertext = bytes(ciphertext)
        if self._k is None:
            pt = ciphertext
        else:
            pt = crypto.aead_decrypt(self._k, _nonce(self._n), self._h, ciphertext)
            self._n += 1
        self._mix_hash(ciphertext)
        return pt

    def _split(self):
        k1, k2 = crypto.hkdf(self._ck, b"", 2)
        self.handshake_hash = self._h
        if self.initiator:
            self._transport = Transport(k1, k2)
        else:
            self._transport = Transport(k2, k1)
        # Forget handshake secrets as soon as the transport keys exist.
        self._k = self._ck = self._e_priv = None
        self._state = _DONE

    # --- messages ---------------------------------------------------------------------------
    def _send_frame(self, msg):
        n = len(msg)
        self._out.append(n >> 8)
        self._out.append(n & 0xFF)
        self._out += msg

    def _write_e(self, out):
        if self._e_priv is None:
            self._e_priv = crypto.random_bytes(32)
        self._e_pub = crypto.x25519_public(self._e_priv)
        out += self._e_pub
        self._mix_hash(self._e_pub)

    def _local_payload(self):
        sig = self._identity_sig
        if sig is None:
            sig = self._identity_key.sign(SIG_PREFIX + self._s_pub)
        msg = {"identity_key": self._identity_key.public_key.to_protobuf(), "identity_sig": sig}
        if self.muxers:
            msg["extensions"] = {"stream_muxers": self.muxers}
        return pb.encode(msg, PAYLOAD_SCHEMA)

    def _write_msg1(self):
        out = bytearray()
        self._write_e(out)
        out += self._encrypt_and_hash(b"")
        self._send_frame(out)

    def _read_msg1(self, msg):
        if len(msg) < DH_LEN:
            raise DecodeError("noise msg1 too short")
        self._re = bytes(msg[0:DH_LEN])
        self._mix_hash(self._re)
        # libp2p sends no payload in msg 1 (no secrecy yet); any is hashed and ignored.
        self._decrypt_and_hash(msg[DH_LEN:])
        out = bytearray()
        self._write_e(out)
        self._mix_key(_dh(self._e_priv, self._re))                # ee
        out += self._encrypt_and_hash(self._s_pub)                 # s
        self._mix_key(_dh(self._s_priv, self._re))                # es (responder)
        out += self._encrypt_and_hash(self._local_payload())
        self._send_frame(out)
        self._state = _AWAIT_MSG3

    def _read_msg2(self, msg):
        if len(msg) < DH_LEN + DH_LEN + TAG_LEN + TAG_LEN:
            raise DecodeError("noise msg2 too short")
        self._re = bytes(msg[0:DH_LEN])
        self._mix_hash(self._re)
        self._mix_key(_dh(self._e_priv, self._re))                # ee
        self._rs = self._decrypt_and_hash(msg[DH_LEN:DH_LEN + DH_LEN + TAG_LEN])   # s
        self._mix_key(_dh(self._e_priv, self._rs))                # es (initiator)
        self._check_payload(self._decrypt_and_hash(msg[DH_LEN + DH_LEN + TAG_LEN:]))
        out = bytearray()
        out += self._encrypt_and_hash(self._s_pub)                 # s
        self._mix_key(_dh(self._s_priv, self._re))                # se (initiator)
        out += self._encrypt_and_hash(self._local_payload())
        self._send_frame(out)
        self._split()

    def _read_msg3(self, msg):
        if len(msg) < DH_LEN + TAG_LEN + TAG_LEN:
            raise DecodeError("noise msg3 too short")
        self._rs = self._decrypt_and_hash(msg[0:DH_LEN + TAG_LEN])  # s
        self._mix_key(_dh(self._e_priv, self._rs))                # se (responder)
        self._check_payload(self._decrypt_and_hash(msg[DH_LEN + TAG_LEN:]))
        self._split()

    def _check_payload(self, payload):
        msg = pb.decode(payload, PAYLOAD_SCHEMA, MAX_EXTENSION_ITEMS)
        key_pb = msg.get("identity_key")
        sig = msg.get("identity_sig")
        if not key_pb or not sig:
            raise AuthError("noise payload lacks identity key or signature")
        try:
            pub = keys.public_key_from_protobuf(key_pb)
        except ProtocolError as e:
            raise AuthError("noise identity key unusable: %s" % e)
        if not pub.verify(SIG_PREFIX + self._rs, sig):
            raise AuthError("noise static key signature invalid")
        peer = PeerId.from_public_key(pub)
        if self.expected_peer is not None and peer != self.expected_peer:
            raise AuthError("noise remote is %s, expected %s" % (peer, self.expected_peer))
        ext = msg.get("extensions")
        remote_muxers = (ext.get("stream_muxers") if ext else None) or []
        # The initiator's preference order decides (inlined-muxer-negotiation.md, Noise section);
        # both sides listing muxers with none in common is a failed handshake there.
        if self.muxers and remote_muxers:
            first, second = (self.muxers, remote_muxers) if self.initiator else (remote_muxers, self.muxers)
            chosen = None
            for m in first:
                if m in second:
                    chosen = m
                    break
            if chosen is None:
                raise ProtocolError("early muxer negotiation: no common muxer")
            self.muxer = chosen
        self.remote_public_key = pub
        self.remote_peer = peer
        self.remote_muxers = remote_muxers

    # --- machine interface ------------------------------------------------------------------
    @property
    def complete(self):
        return self._state == _DONE

    def data_to_send(self):
        out = self._out
        if not out:
            return b""
        self._out = bytearray()
        return bytes(out)

    def transport(self):
        if self._state != _DONE:
            raise UsageError("noise handshake not complete")
        return self._transport

    def receive(self, data):
        if self._state == _FAILED:
            raise UsageError("noise handshake already failed")
        if self._state == _DONE:
            return [("data", c) for c in self._transport.receive(data)]
        events = []
        mv = memoryview(data)
        pos = 0
        try:
            while self._state != _DONE:
                frame, pos = self._next_frame(mv, pos, MAX_HANDSHAKE_FRAME)
                if frame is None:
                    return events
                state = self._state
                if state == _AWAIT_MSG1:
                    self._read_msg1(frame)
                elif state == _AWAIT_MSG2:
                    self._read_msg2(frame)
                else:
                    self._read_msg3(frame)
            events.append(("handshake_complete", self.remote_peer, self.remote_muxers))
            if pos < len(mv):
                # Data the peer sent right behind its last handshake message (the initiator's
                # first transport frame usually rides with msg 3): decrypt it now.
                for chunk in self._transport.receive(mv[pos:]):
                    events.append(("data", chunk))
        except ProtocolError:
            if self._state != _DONE:
                self._state = _FAILED
            raise
        return events
