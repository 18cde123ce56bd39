# Property tests (CPython only): arbitrary identify stream bytes give a result or a stream-scope
# ProtocolError, never another exception type.
from hypothesis import given, settings, strategies as st

import microp2p_host  # noqa: F401
from microp2p.proto import identify
from microp2p.identity import keys
from microp2p.codec import pb
from microp2p.identity.peerid import PeerId
from microp2p.errors import ProtocolError, SCOPE_STREAM

KEY = keys.Ed25519PrivateKey.from_seed(bytes(range(32)))
PEER = PeerId.from_public_key(KEY.public_key)
GOOD = identify.encode_identify(KEY, ["/a", "/b"], ["/ip4/10.0.0.1/tcp/1"], None, "t", seq=3)


def _run(data, cuts, push=False):
    r = identify.IdentifyReader(PEER, push)
    pos = 0
    try:
        for c in list(cuts) + [len(data)]:
            r.receive(data[pos:pos + c])
            pos += c
        return r.receive_eof()
    except ProtocolError as e:
        assert e.scope == SCOPE_STREAM
        return None


_cuts = st.lists(st.integers(min_value=1, max_value=200), max_size=6)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=500), cuts=_cuts, push=st.booleans())
def test_random_bytes(data, cuts, push):
    _run(data, cuts, push)


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(min_value=0, max_value=len(GOOD) - 1),
       bit=st.integers(min_value=0, max_value=7), cuts=_cuts)
def test_bit_flips_in_a_real_message(pos, bit, cuts):
    m = bytearray(GOOD)
    m[pos] ^= 1 << bit
    _run(identify.frame(bytes(m)), cuts)


@settings(max_examples=200, deadline=None)
@given(addrs=st.lists(st.binary(max_size=40), max_size=8),
       protos=st.lists(st.text(max_size=20), max_size=8))
def test_arbitrary_fields_well_typed(addrs, protos):
    m = pb.encode({"publicKey": KEY.public_key.to_protobuf(), "listenAddrs": addrs,
                   "protocols": protos}, identify.IDENTIFY_SCHEMA)
    events = _run(identify.frame(bytes(m)), [])
    assert events is not None
    res = events[0][1]
    assert res["protocols"] == protos
    assert len(res["listen_addrs"]) + res["skipped_addrs"] == len(addrs)
