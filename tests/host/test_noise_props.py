# Property tests (CPython only): whatever bytes arrive at any stage of a Noise handshake or
# after it, the machines either make progress or raise a typed ProtocolError -- never IndexError,
# ValueError, struct errors or the like.
import os
import sys

from hypothesis import given, settings, strategies as st, HealthCheck

import microp2p_host  # noqa: F401  native crypto: fast handshakes
from microp2p.conn import noise
from microp2p.identity import keys
from microp2p.errors import ProtocolError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))
import noise_vector as vec  # noqa: E402

I_ID = keys.Ed25519PrivateKey.from_seed(vec.I_IDENTITY_SEED)
R_ID = keys.Ed25519PrivateKey.from_seed(vec.R_IDENTITY_SEED)


def _initiator():
    return noise.Handshake(True, I_ID, muxers=vec.I_MUXERS, static_private=vec.I_STATIC,
                           ephemeral_private=vec.I_EPHEMERAL)


def _responder():
    return noise.Handshake(False, R_ID, muxers=vec.R_MUXERS, static_private=vec.R_STATIC,
                           ephemeral_private=vec.R_EPHEMERAL)


def _transcript():
    i = _initiator()
    r = _responder()
    m1 = i.data_to_send()
    r.receive(m1)
    m2 = r.data_to_send()
    i.receive(m2)
    m3 = i.data_to_send()
    r.receive(m3)
    return m1, m2, m3


M1, M2, M3 = _transcript()


def _machine_at(stage):
    """A machine waiting for message `stage` (1: responder, 2: initiator, 3: responder),
    or (stage 4) a completed responder fed through its handshake."""
    if stage == 1:
        return _responder()
    if stage == 2:
        i = _initiator()
        i.data_to_send()
        return i
    r = _responder()
    r.receive(M1)
    r.data_to_send()
    if stage == 4:
        r.receive(M3)
    return r


def _feed(machine, data, cuts):
    """Feed data in pieces; only ProtocolError may escape."""
    pos = 0
    try:
        for c in cuts:
            if pos >= len(data):
                break
            machine.receive(data[pos:pos + c])
            pos += c
        if pos < len(data):
            machine.receive(data[pos:])
    except ProtocolError:
        return "error"
    return "ok"


_cuts = st.lists(st.integers(min_value=1, max_value=300), max_size=8)
_settings = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(stage=st.integers(min_value=1, max_value=4), data=st.binary(max_size=600), cuts=_cuts)
def test_random_garbage_at_every_stage(stage, data, cuts):
    _feed(_machine_at(stage), data, cuts)


@st.composite
def _mutated(draw):
    stage = draw(st.integers(min_value=1, max_value=3))
    msg = bytearray((M1, M2, M3)[stage - 1])
    kind = draw(st.sampled_from(("flip", "truncate", "extend", "length")))
    if kind == "flip":
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            p = draw(st.integers(min_value=0, max_value=len(msg) - 1))
            msg[p] ^= 1 << draw(st.integers(min_value=0, max_value=7))
    elif kind == "truncate":
        msg = msg[:draw(st.integers(min_value=0, max_value=len(msg) - 1))]
    elif kind == "extend":
        msg += draw(st.binary(min_size=1, max_size=80))
    else:
        n = draw(st.integers(min_value=0, max_value=0xFFFF))
        msg[0:2] = n.to_bytes(2, "big")
    return stage, bytes(msg)


@_settings
@given(case=_mutated(), cuts=_cuts)
def test_mutated_handshake_messages(case, cuts):
    stage, data = case
    assert _feed(_machine_at(stage), data, cuts) in ("ok", "error")
    if stage > 1:
        # a change inside an authenticated handshake message never completes the handshake
        original = (M1, M2, M3)[stage - 1]
        m = _machine_at(stage)
        try:
            m.receive(data)
        except ProtocolError:
            return
        assert not m.complete or data[:len(original)] == original


@_settings
@given(data=st.binary(max_size=400), cuts=_cuts)
def test_garbage_after_handshake(data, cuts):
    r = _machine_at(4)
    assert r.complete
    t = r.transport()
    pos = 0
    try:
        for c in list(cuts) + [len(data)]:
            chunks = t.receive(data[pos:pos + c])
            # random bytes never authenticate as a transport frame
            assert chunks == []
            pos += c
    except ProtocolError:
        pass


@_settings
@given(plain=st.lists(st.binary(max_size=200), max_size=6), cuts=_cuts)
def test_transport_round_trip_any_chunking(plain, cuts):
    a = noise.Transport(bytes(32), bytes(range(32)))
    b = noise.Transport(bytes(range(32)), bytes(32))
    wire = b"".join(bytes(a.encrypt(p)) for p in plain)
    got = []
    pos = 0
    for c in list(cuts) + [len(wire)]:
        got.extend(b.receive(wire[pos:pos + c]))
        pos += c
    assert b"".join(got) == b"".join(plain)
    assert got == [p for p in plain if p]
