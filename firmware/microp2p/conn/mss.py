# multistream-select 1.0 (`/multistream/1.0.0`) as two sans-IO machines.
#
# Every message is uvarint(len) ‖ body ‖ '\n' where len counts the '\n'. The dialer writes the
# header and its first proposal in one write (what js does, and what saves a round trip); the
# listener answers its own header only once the dialer's arrived (js listeners do the same), so
# neither side waits for the other's header first.
#
#   d = Dialer(["/yamux/1.0.0"]); sock.write(d.data_to_send())
#   for ev in d.receive(sock.read()): ('agreed', proto) | ('data', early_bytes)
#
# Bytes that arrive behind the agreeing message in the same buffer belong to the next protocol
# (rust's V1Lazy sends them before our answer); they come out as ('data', bytes), and so does
# everything passed to receive() after agreement, so a driver can keep pumping one machine.
from microp2p.codec import varint
from microp2p.errors import ProtocolError, DecodeError, LimitError, UsageError, SCOPE_STREAM

PROTOCOL_ID = "/multistream/1.0.0"
# js and go refuse longer ids; the +1 is the trailing '\n' counted in the length prefix.
MAX_PROTOCOL_LEN = 1024
MAX_MESSAGE_LEN = MAX_PROTOCOL_LEN + 1
# Proposals (and `ls` requests) one negotiation may take before we give up on the peer.
MAX_ATTEMPTS = 16

_HEADER = PROTOCOL_ID.encode()
_NA = b"na"
_LS = b"ls"


class NegotiationFailed(ProtocolError):
    """No common protocol, or the peer does not speak multistream-select 1.0."""
    scope = SCOPE_STREAM


def encode_message(body):
    """One multistream message: uvarint(len(body)+1) ‖ body ‖ '\\n'."""
    return varint.encode(len(body) + 1) + body + b"\n"


def _protocol_bytes(proto):
    b = proto.encode() if isinstance(proto, str) else bytes(proto)
    if not b or len(b) > MAX_PROTOCOL_LEN:
        raise UsageError("protocol id length out of range")
    return b


class _Machine:
    def __init__(self, scope):
        self.scope = scope
        self.protocol = None  # the agreed protocol (str) once negotiation succeeded
        self._buf = b""
        self._out = []
        self._attempts = 0

    def data_to_send(self):
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out = []
        return out

    def leftover(self):
        """Bytes received but not yet parsed (only non-empty mid-message before agreement)."""
        return self._buf

    def _fail(self, cls, msg):
        return cls(msg, self.scope)

    def receive(self, data):
        if self.protocol is not None:
            return [("data", bytes(data))] if data else []
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        events = []
        pos = 0
        end = len(buf)
        while self.protocol is None:
            try:
                length, start = varint.read(buf, pos, MAX_MESSAGE_LEN, end)
            except DecodeError as e:
                # Re-raise with our scope: a bad prefix on a stream only kills that stream.
                raise self._fail(DecodeError, str(e))
            if length is None or end - start < length:
                break
            if length == 0 or buf[start + length - 1] != 0x0A:
                raise self._fail(DecodeError, "multistream message without trailing newline")
            pos = start + length
            self._on_message(buf[start:pos - 1], events)
        if self.protocol is not None:
            self._buf = b""
            if pos < end:
                events.append(("data", buf[pos:]))
        else:
            self._buf = buf[pos:]
        return events

    def _count_attempt(self):
        self._attempts += 1
        if self._attempts > MAX_ATTEMPTS:
            raise self._fail(LimitError, "too many multistream attempts")

    def _decode_protocol(self, body):
        try:
            return body.decode()
        except Exception:  # UnicodeError on CPython; MicroPython may not check at all
            raise self._fail(DecodeError, "protocol id is not utf-8")


class Dialer(_Machine):
    """Proposes `protocols` in order. Events: ('agreed', proto), ('data', bytes).

    Raises NegotiationFailed when the listener refuses every proposal."""

    def __init__(self, protocols, scope=SCOPE_STREAM):
        _Machine.__init__(self, scope)
        if not protocols or len(protocols) > MAX_ATTEMPTS:
            raise UsageError("need 1..%d protocols" % MAX_ATTEMPTS)
        self._proposals = [_protocol_bytes(p) for p in protocols]
        self._index = 0
        self._header_seen = False
        self._out.append(encode_message(_HEADER) + encode_message(self._proposals[0]))

    def _on_message(self, body, events):
        if not self._header_seen:
            if body != _HEADER:
                raise self._fail(NegotiationFailed, "peer does not speak %s" % PROTOCOL_ID)
            self._header_seen = True
            return
        if body == _NA:
            self._index += 1
            if self._index >= len(self._proposals):
                raise self._fail(NegotiationFailed, "no protocol in common")
            self._out.append(encode_message(self._proposals[self._index]))
            return
        if body != self._proposals[self._index]:
            raise self._fail(NegotiationFailed, "unexpected multistream answer")
        self.protocol = self._decode_protocol(body)
        events.append(("agreed", self.protocol))


class Listener(_Machine):
    """Answers a dialer. `supported` is a collection of protocol strings or a callable
    (proto) -> bool. Events: ('agreed', proto), ('data', bytes)."""

    def __init__(self, supported, scope=SCOPE_STREAM):
        _Machine.__init__(self, scope)
        if callable(supported):
            self._accepts = supported
            self._listing = ()
        else:
            listing = sorted(supported)  # sets are unordered; the `ls` answer must not be
            self._accepts = lambda p, _s=set(listing): p in _s
            self._listing = listing
        self._header_seen = False

    def _on_message(self, body, events):
        if not self._header_seen:
            if body != _HEADER:
                raise self._fail(NegotiationFailed, "peer does not speak %s" % PROTOCOL_ID)
            self._header_seen = True
            self._out.append(encode_message(_HEADER))
            return
        self._count_attempt()
        if body == _LS:
            self._out.append(self._ls_response())
            return
        proto = self._decode_protocol(body)
        if body != _NA and self._accepts(proto):
            self.protocol = proto
            self._out.append(encode_message(body))
            events.append(("agreed", proto))
        else:
            self._out.append(encode_message(_NA))

    def _ls_response(self):
        # go-multistream's form: one message whose body is the protocols, each itself a
        # multistream message, so the whole thing ends in "\n\n".
        inner = b"".join(encode_message(p.encode()) for p in self._listing)
        return encode_message(inner)


def decode_ls_response(body):
    """Protocol strings from the body of an `ls` answer (helper for tests and tools)."""
    out = []
    pos = 0
    end = len(body)
    while pos < end:
        if len(out) >= MAX_ATTEMPTS * 16:
            raise LimitError("ls listing too long", SCOPE_STREAM)
        length, start = varint.decode(body, pos, MAX_MESSAGE_LEN, end)
        if length == 0 or start + length > end or body[start + length - 1] != 0x0A:
            raise DecodeError("bad ls entry", SCOPE_STREAM)
        try:
            out.append(bytes(body[start:start + length - 1]).decode())
        except Exception:
            raise DecodeError("ls entry is not utf-8", SCOPE_STREAM)
        pos = start + length
    return out
