# A small, strict, deterministic protobuf codec for the handful of libp2p messages.
#
# A schema is a tuple of fields sorted by number: (number, name, kind, repeated). kind is one of
#   U  uint (varint)        Z  bool (varint 0/1)      B  bytes        S  utf-8 string
#   or a nested schema tuple (an embedded message).
# Decoding returns a dict {name: value}; repeated fields are lists; absent fields are absent.
# Encoding writes present fields in field-number order with minimal varints, so a message
# re-encoded from its decoded form is byte-identical to a canonical encoding (gossipsub signs that).
# Unknown fields are skipped (wire types 0, 1, 2, 5); groups (3, 4) and anything malformed raise
# DecodeError. Every length is checked against the bytes actually present and a caller's cap.
from microp2p.codec import varint
from microp2p.errors import DecodeError, LimitError

U = 0
Z = 1
B = 2
S = 3

WT_VARINT = 0
WT_I64 = 1
WT_LEN = 2
WT_I32 = 5

MAX_REPEATED = 1000  # default cap on the items of one repeated field in one message


def _wire_type(kind):
    return WT_VARINT if kind == U or kind == Z else WT_LEN


def encode(msg, schema, out=None):
    """Encode dict msg by schema; appends to bytearray out (made if None) and returns it."""
    if out is None:
        out = bytearray()
    for number, name, kind, repeated in schema:
        value = msg.get(name)
        if value is None:
            continue
        if repeated:
            for item in value:
                _encode_field(out, number, kind, item)
        else:
            _encode_field(out, number, kind, value)
    return out


def _encode_field(out, number, kind, value):
    if kind == U:
        out += varint.encode(number << 3)
        out += varint.encode(value)
    elif kind == Z:
        out += varint.encode(number << 3)
        out.append(1 if value else 0)
    else:
        if kind == S:
            value = value.encode()
        elif kind != B:
            value = encode(value, kind)
        out += varint.encode((number << 3) | WT_LEN)
        out += varint.encode(len(value))
        out += value


def decode(buf, schema, max_repeated=MAX_REPEATED, start=0, end=-1, budget=None):
    """Decode a complete message (buf[start:end]) by schema. Raises DecodeError/LimitError.

    budget: a one-item list [n], the fields (every key, known or not, at every nesting level)
    the whole decode may read; shared with the nested decodes and decremented in place."""
    if end < 0:
        end = len(buf)
    msg = {}
    pos = start
    while pos < end:
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise LimitError("too many protobuf fields in one message")
        key, pos = varint.decode(buf, pos, 0xFFFFFFFF, end)
        number = key >> 3
        wt = key & 7
        if number == 0:
            raise DecodeError("protobuf field number 0")
        field = None
        for f in schema:
            if f[0] == number:
                field = f
                break
        if wt == WT_VARINT:
            value, pos = varint.decode(buf, pos, varint.MAX_VALUE, end)
        elif wt == WT_LEN:
            n, pos = varint.decode(buf, pos, end - pos, end)
            if pos + n > end:  # the cap above still counts the length prefix's own bytes
                raise DecodeError("truncated length-delimited field")
            value = (pos, pos + n)
            pos += n
        elif wt == WT_I64 or wt == WT_I32:
            pos += 8 if wt == WT_I64 else 4
            if pos > end:
                raise DecodeError("truncated fixed-width field")
            if field is not None:
                raise DecodeError("wrong wire type for field %d" % number)
            continue
        else:
            raise DecodeError("unsupported wire type %d" % wt)
        if field is None:
            continue
        kind = field[2]
        if wt != _wire_type(kind):
            raise DecodeError("wrong wire type for field %d" % number)
        if kind == Z:
            if value > 1:
                raise DecodeError("bool out of range")
            value = value == 1
        elif kind == B:
            value = bytes(buf[value[0]:value[1]])
        elif kind == S:
            try:
                value = str(bytes(buf[value[0]:value[1]]), "utf-8")
            except UnicodeError:
                raise DecodeError("invalid utf-8 in field %d" % number)
        elif kind != U:
            value = decode(buf, kind, max_repeated, value[0], value[1], budget)
        name = field[1]
        if field[3]:
            items = msg.get(name)
            if items is None:
                items = []
                msg[name] = items
            if len(items) >= max_repeated:
                raise LimitError("too many items in field %d" % number)
            items.append(value)
        else:
            msg[name] = value  # proto semantics: the last occurrence wins
    return msg
