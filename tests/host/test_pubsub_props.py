# Property tests (CPython only) for the pubsub codec and routers: random or mutated bytes from a
# peer give only our typed errors, structured RPCs round-trip, and router state stays within caps.
from hypothesis import given, settings, strategies as st

from microp2p.identity import keys, peerid
from microp2p.errors import ProtocolError
from microp2p.pubsub import rpc as R
from microp2p.pubsub.floodsub import FloodSub
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
from microp2p.pubsub.router import PubSubConfig

SETTINGS = settings(max_examples=300, deadline=None)
TOPICS = ["t", "u", "v/w"]

_ids = st.binary(max_size=24)
_topic = st.sampled_from(TOPICS) | st.text(max_size=12)
_subopt = st.fixed_dictionaries({}, optional={"subscribe": st.booleans(), "topicid": _topic})
_msg = st.fixed_dictionaries({}, optional={
    "from": st.binary(max_size=40), "data": st.binary(max_size=64), "seqno": st.binary(max_size=10),
    "topic": _topic, "signature": st.binary(max_size=70), "key": st.binary(max_size=40)})
_peerinfo = st.fixed_dictionaries({}, optional={"peerID": _ids, "signedPeerRecord": st.binary(max_size=20)})
_control = st.fixed_dictionaries({}, optional={
    "ihave": st.lists(st.fixed_dictionaries({}, optional={"topicID": _topic, "messageIDs": st.lists(_ids, max_size=6)}), max_size=3),
    "iwant": st.lists(st.fixed_dictionaries({}, optional={"messageIDs": st.lists(_ids, max_size=6)}), max_size=3),
    "graft": st.lists(st.fixed_dictionaries({}, optional={"topicID": _topic}), max_size=3),
    "prune": st.lists(st.fixed_dictionaries({}, optional={
        "topicID": _topic, "peers": st.lists(_peerinfo, max_size=4),
        "backoff": st.integers(0, (1 << 63) - 1)}), max_size=3),
    "idontwant": st.lists(st.fixed_dictionaries({}, optional={"messageIDs": st.lists(_ids, max_size=6)}), max_size=3),
})
_rpc = st.fixed_dictionaries({}, optional={
    "subscriptions": st.lists(_subopt, max_size=5),
    "publish": st.lists(_msg, max_size=4),
    "control": _control,
})


def _clean(d):
    """Drop empty lists / empty nested dicts the way a decoder would never produce them."""
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            v = _clean(v)
            if isinstance(v, list) and not v:
                continue
            out[k] = v
        return out
    if isinstance(d, list):
        return [_clean(x) for x in d]
    return d


def _gossip(signed=False):
    if signed:
        sk = keys.Ed25519PrivateKey.from_seed(bytes([1] * 32))
        cfg = GossipSubConfig()
        r = GossipSub(peerid.PeerId.from_public_key(sk.public_key), sk, cfg, 0)
    else:
        cfg = GossipSubConfig()
        cfg.sign_policy = "strict-no-sign"
        r = GossipSub(b"me", None, cfg, 0)
    for t in TOPICS:
        r.subscribe(t)
    r.add_peer(b"peer", R.MESHSUB_V12, True)
    r.receive_rpc(b"peer", bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": t} for t in TOPICS]})), 0)
    r.heartbeat(1000)
    r.outgoing()
    return r


def _check_bounded(r):
    c = r.config
    assert len(r.seen) <= c.max_seen
    assert len(r.topics) <= c.max_topics_total + len(r.my_topics)  # ours are not counted
    for p in r.peers.values():
        assert len(p.topics) <= c.max_topics_per_peer
        assert p.queue_bytes <= c.max_peer_queue_bytes
        if hasattr(p, "dont_send"):
            assert len(p.dont_send) <= getattr(c, "max_dont_send", 10 ** 9)
    assert len(r.pending) <= c.max_pending_validations


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_decode_only_typed_errors(b):
    try:
        R.decode_rpc(b)
    except ProtocolError:
        pass


@SETTINGS
@given(_rpc)
def test_structured_rpc_round_trip(rpc):
    enc = bytes(R.encode_rpc(rpc))
    dec = R.decode_rpc(enc)
    assert dec == _clean(rpc)
    assert bytes(R.encode_rpc(dec)) == enc


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_into_routers(b, signed):
    for r in (_gossip(signed), FloodSub(b"me", None, _nosign_flood(), 0)):
        if b"peer" not in r.peers:
            r.add_peer(b"peer", R.FLOODSUB)
        try:
            r.receive_rpc(b"peer", b, 2000)
        except ProtocolError:
            pass
        r.tick(5000)
        _check_bounded(r)


def _nosign_flood():
    c = PubSubConfig()
    c.sign_policy = "strict-no-sign"
    return c


@SETTINGS
@given(st.lists(_rpc, min_size=1, max_size=5), st.booleans())
def test_structured_rpcs_into_gossipsub(rpcs, signed):
    r = _gossip(signed)
    now = 1000
    for rpc in rpcs:
        now += 400
        r.receive_rpc(b"peer", bytes(R.encode_rpc(rpc)), now)
        r.tick(now)
        r.outgoing()
        _check_bounded(r)
    assert r.mesh_peers("t") <= {b"peer"}


@SETTINGS
@given(_rpc, st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_rpc_frames_only_typed_errors(rpc, flips):
    enc = bytearray(R.frame(R.encode_rpc(rpc)))
    for pos, val in flips:
        enc[pos % len(enc)] = val
    r = _gossip()
    try:
        # arbitrary chunking of the stream as well
        r.feed(b"peer", bytes(enc[:len(enc) // 2]), 1500)
        r.feed(b"peer", bytes(enc[len(enc) // 2:]), 1500)
    except ProtocolError:
        pass
    _check_bounded(r)
