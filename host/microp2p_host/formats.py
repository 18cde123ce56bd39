# Decoded CBOR (readings, commands) as JSON for the host's event lines, the MQTT bridge and
# `microp2p watch`: one conversion, so every JSON consumer sees the same shapes.
import base64
import math


def jsonable(v, depth=0):
    """A decoded CBOR value as JSON-able data: bytes -> base64 text, non-text map keys -> text,
    tags -> their value, NaN/inf -> null."""
    if depth > 32:
        raise ValueError("nested too deep")
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else str(jsonable(k, depth + 1))): jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x, depth + 1) for x in v]
    value = getattr(v, "value", None)   # cbor2 CBORTag / undefined
    if value is not None:
        return jsonable(value, depth + 1)
    return str(v)
