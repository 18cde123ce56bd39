# microp2p.codec.cbor against PyPI cbor2 (an independent implementation), both directions, on generated
# values of the subset; plus: garbage never raises anything but ProtocolError.
import math

import cbor2
from hypothesis import assume, given, settings, strategies as st

from microp2p.codec import cbor
from microp2p.errors import ProtocolError

ints = st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
floats = st.floats(allow_nan=False)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.text(max_size=40), st.binary(max_size=40))
keys = st.one_of(ints, st.text(max_size=12), st.binary(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30)


def same(a, b):
    """Equality that also checks types (1 vs 1.0 vs True) and treats -0.0 as distinct."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=400, deadline=None)
@given(values)
def test_ours_encode_cbor2_decodes(v):
    assert same(cbor2.loads(cbor.encode_own(v)), v)


@settings(max_examples=400, deadline=None)
@given(values)
def test_cbor2_encode_ours_decodes(v):
    assert same(cbor.decode(cbor2.dumps(v)), v)


def _sorted_like_rfc8949(x):
    """x with every map rebuilt in RFC 8949 §4.2.1 key order (bytewise on the encoded key);
    cbor2 writes maps in insertion order and floats as float64 in its default mode."""
    if isinstance(x, list):
        return [_sorted_like_rfc8949(y) for y in x]
    if isinstance(x, dict):
        return {k: _sorted_like_rfc8949(x[k]) for k in sorted(x, key=cbor2.dumps)}
    return x


@settings(max_examples=400, deadline=None)
@given(values)
def test_ours_byte_identical_to_cbor2_in_rfc8949_key_order(v):
    # cbor2 writes infinities as float16; we write every float as float64 (the brief's rule)
    assume("f97c00" not in cbor2.dumps(v).hex() and "f9fc00" not in cbor2.dumps(v).hex())
    assert cbor.encode_own(v) == cbor2.dumps(_sorted_like_rfc8949(v))


@settings(max_examples=300, deadline=None)
@given(st.floats(width=16) | st.floats(width=32) | st.floats())
def test_float_widths_from_cbor2_canonical(x):
    got = cbor.decode(cbor2.dumps(x, canonical=True))
    assert (math.isnan(x) and math.isnan(got)) or same(got, x)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_raises_only_protocol_errors(data):
    try:
        v = cbor.decode(data)
    except ProtocolError:
        return
    # whatever we accept, cbor2 reads the same
    assert same(cbor2.loads(data), v) or (isinstance(v, float) and math.isnan(v))


@settings(max_examples=500, deadline=None)
@given(values, st.integers(min_value=0, max_value=200))
def test_mutated_encodings_raise_only_protocol_errors(v, pos):
    b = bytearray(cbor.encode_own(v))
    b[pos % len(b)] ^= 0x5A
    try:
        cbor.decode(bytes(b))
    except ProtocolError:
        pass
