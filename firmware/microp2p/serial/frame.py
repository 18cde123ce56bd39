# Framing for serial links (UART, pty): COBS-encoded frames between 0x00 delimiters, CRC-32 on
# every frame. Sans-IO; used by microp2p.serial.link on the device and on the gateway.
#
# Wire format (one frame):
#
#   0x00? COBS( body ) 0x00
#
#   body  = kind(1) src_sid(4) dst_sid(4) seq(1) ack(1) sack(1) payload(0..FRAME_PAYLOAD_MAX) crc(4)
#     kind     high nibble = VERSION (1), low nibble = K_DATA 1 | K_ACK 2 | K_RESET 3 | K_RESET_ACK 4
#     src_sid  the sender's random 32-bit session id (never 0)
#     dst_sid  the session id the sender believes the receiver has (0 = not known yet)
#     seq      DATA: sequence number of this frame (mod 256); other kinds: 0
#     ack      cumulative ack: the next seq the sender expects from the receiver (mod 256)
#     sack     bit i set = the sender already holds seq ack+1+i (selective ack, 8 frames)
#     crc      CRC-32 (IEEE, as binascii.crc32 / zlib.crc32) of everything before it, little-endian
#
# COBS removes every 0x00 from the body, so a 0x00 on the line always ends a frame: after line
# noise the decoder throws away what it holds and starts over at the next 0x00 (resync). A
# writer may put an extra 0x00 before a burst of frames so that noise sitting in the receiver's
# buffer (after an unplug, say) ends there instead of spoiling the first frame; empty frames are
# ignored. A frame whose encoded length would exceed the cap is discarded as it arrives: the
# decoder never holds more than `encoded_max(max_payload)` bytes.
_crc_table = None


def crc32_py(data, crc=0):
    # Table-driven CRC-32 (IEEE); same values as binascii.crc32, for ports built without it.
    global _crc_table
    if _crc_table is None:
        t = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            t.append(c)
        _crc_table = t
    t = _crc_table
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    from binascii import crc32
except ImportError:
    crc32 = crc32_py

VERSION = 1
K_DATA = 1
K_ACK = 2
K_RESET = 3
K_RESET_ACK = 4

HEADER_LEN = 12
CRC_LEN = 4
# Hard cap on payload bytes per frame (a receiver may advertise less). 1 KiB keeps one frame
# under 100 ms at 115200 baud and a device's out-of-order store at window x 1 KiB.
FRAME_PAYLOAD_MAX = 1024
NO_SID = b"\x00\x00\x00\x00"


def encoded_max(max_payload):
    # COBS adds one code byte per started 254-byte block; the delimiter is not counted
    body = HEADER_LEN + max_payload + CRC_LEN
    return body + body // 254 + 1


def cobs_encode(src, out):
    # Appends COBS(src) to the bytearray out. bytes.find does the scanning in C.
    n = len(src)
    pos = 0
    while True:
        z = src.find(b"\x00", pos)
        end = pos + 254
        if 0 <= z < end:
            out.append(z - pos + 1)
            out += src[pos:z]
            pos = z + 1
            continue  # a trailing zero still needs its (empty) final block: handled next round
        if end >= n:
            out.append(n - pos + 1)
            out += src[pos:n]
            return out
        out.append(0xFF)  # a full 254-byte block: no zero implied after it
        out += src[pos:end]
        pos = end
        if pos == n:
            return out


def cobs_decode(src, start, end):
    # COBS-decodes src[start:end] (no delimiters inside); None when malformed.
    out = bytearray()
    i = start
    while i < end:
        code = src[i]
        j = i + code
        if code == 0 or j > end:
            return None
        out += src[i + 1:j]
        i = j
        if code != 0xFF and i < end:
            out.append(0)
    return out


def encode_frame(out, kind, src_sid, dst_sid, seq, ack, sack, payload=None):
    # Appends one complete frame (COBS body + 0x00 delimiter) to the bytearray out.
    body = bytearray(HEADER_LEN)
    body[0] = (VERSION << 4) | kind
    body[1:5] = src_sid
    body[5:9] = dst_sid
    body[9] = seq
    body[10] = ack
    body[11] = sack
    if payload:
        body += payload
    body += (crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")
    cobs_encode(body, out)
    out.append(0)
    return out


class FrameDecoder:
    """Bytes from the line in, frames out. Never raises on bad input: damage is counted in
    `stats` (a dict shared with the link) and the decoder resyncs at the next delimiter.

    feed(data) -> list of (kind, src_sid, dst_sid, seq, ack, sack, payload) tuples, where the
    sids are 4-byte bytes and payload is a memoryview into a fresh buffer (safe to keep)."""

    def __init__(self, max_payload=FRAME_PAYLOAD_MAX, stats=None):
        if max_payload > FRAME_PAYLOAD_MAX:
            max_payload = FRAME_PAYLOAD_MAX
        self.max_payload = max_payload
        self.cap = encoded_max(max_payload)
        self.buf = bytearray()
        self.discarding = False
        s = stats if stats is not None else {}
        for k in ("crc_errors", "cobs_errors", "oversize", "bad_header", "resyncs"):
            s[k] = s.get(k, 0)
        self.stats = s

    def buffered(self):
        return len(self.buf)

    def feed(self, data):
        frames = []
        if isinstance(data, memoryview):
            data = bytes(data)
        n = len(data)
        pos = 0
        buf = self.buf
        while pos < n:
            z = data.find(b"\x00", pos)
            end = n if z < 0 else z
            if self.discarding:
                pass
            elif len(buf) + end - pos > self.cap:
                # over the cap: stop holding bytes and drop everything up to the next 0x00
                self.discarding = True
                self.stats["oversize"] += 1
                self.stats["resyncs"] += 1
                buf[:] = b""
            elif z >= 0 and not buf:
                # the common case: a whole frame inside this chunk, decode it without copying
                if end > pos:
                    self._frame(data, pos, end, frames)
            else:
                buf += data[pos:end]
                if z >= 0:
                    self._frame(buf, 0, len(buf), frames)
                    buf[:] = b""
            if z < 0:
                break
            self.discarding = False
            pos = z + 1
        return frames

    def _frame(self, src, start, end, frames):
        st = self.stats
        body = cobs_decode(src, start, end)
        if body is None:
            st["cobs_errors"] += 1
            st["resyncs"] += 1
            return
        n = len(body)
        if n < HEADER_LEN + CRC_LEN:
            st["bad_header"] += 1
            st["resyncs"] += 1
            return
        mv = memoryview(body)
        if crc32(mv[:n - CRC_LEN]) & 0xFFFFFFFF != int.from_bytes(body[n - CRC_LEN:], "little"):
            st["crc_errors"] += 1
            st["resyncs"] += 1
            return
        kind = body[0]
        if kind >> 4 != VERSION or not (K_DATA <= (kind & 15) <= K_RESET_ACK) \
                or n - HEADER_LEN - CRC_LEN > self.max_payload:
            st["bad_header"] += 1
            return
        frames.append((kind & 15, bytes(body[1:5]), bytes(body[5:9]), body[9], body[10], body[11],
                       mv[HEADER_LEN:n - CRC_LEN]))
