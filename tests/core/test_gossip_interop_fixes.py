# Gossipsub behaviours that real js-libp2p peers exposed (tests/interop/test_interop_gossip.py),
# pinned here on the in-memory router (both runtimes):
#  - js forwards to every mesh peer but the one it got the copy from, so our own messages come
#    back; that is a duplicate, not an offence (scoring it got js peers pruned from our mesh);
#  - js names signed messages key-protobuf + seqno, go/py (and we) from + seqno: IDONTWANT /
#    IHAVE / IWANT ids from js must be understood, and ids we send a js peer must be in its form.
from microp2p.identity import keys, peerid
from microp2p.pubsub import rpc as R
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig
from pubsub_net import is_message_frame, body_of

T = "topic"


def signed_node(seed):
    sk = keys.Ed25519PrivateKey.from_seed(bytes([seed] * 32))
    return sk, peerid.PeerId.from_public_key(sk.public_key)


def meshed(a, peers, now=0):
    for p in peers:
        a.add_peer(p, R.MESHSUB_V12, True)
    a.subscribe(T)
    sub = bytes(R.encode_rpc({"subscriptions": [{"subscribe": True, "topicid": T}]}))
    for p in peers:
        a.receive_rpc(p, sub, now)
    a.heartbeat(1000)
    a.outgoing()
    for p in peers:
        assert p in a.mesh_peers(T)


def js_id(mid):
    # key protobuf + seqno: our from + seqno minus the identity multihash header
    return mid[2:]


def test_own_message_echoed_back_is_a_duplicate_not_an_offence():
    sk, me = signed_node(5)
    _, other = signed_node(6)
    b = other.to_bytes()
    a = GossipSub(me, sk, GossipSubConfig(), 0)
    meshed(a, [b])
    a.publish(T, b"mine", 1000)
    a.outgoing()
    msg = {"from": me.to_bytes(), "data": b"mine", "seqno": bytes(a._seqno), "topic": T}
    R.sign_message(msg, sk)
    for i in range(5):
        ev = a.receive_rpc(b, bytes(R.encode_rpc({"publish": [msg]})), 1100 + i)
        assert ev == [], ev
    assert a.stats.get("duplicates") == 5 and not a.stats.get("rejected"), a.stats
    assert a.peer_score(b) >= 0
    a.heartbeat(2000)
    assert b in a.mesh_peers(T)
    # a message claiming to be ours that we never published is still rejected
    forged = {"from": me.to_bytes(), "data": b"never", "seqno": bytes([9] * 8), "topic": T}
    R.sign_message(forged, sk)
    ev = a.receive_rpc(b, bytes(R.encode_rpc({"publish": [forged]})), 2100)
    assert ev and ev[0][0] == "rejected" and ev[0][3] == "self origin"


def test_js_form_idontwant_suppresses_forwarding():
    sk_a, ia = signed_node(1)
    sk_s, isrc = signed_node(2)
    _, ijs = signed_node(3)
    src, js = isrc.to_bytes(), ijs.to_bytes()
    a = GossipSub(ia, sk_a, GossipSubConfig(), 0)
    meshed(a, [src, js])
    msg = {"from": src, "data": b"x" * 2000, "seqno": bytes([0, 0, 0, 0, 0, 0, 0, 7]), "topic": T}
    R.sign_message(msg, sk_s)
    mid = R.default_msg_id(msg)
    # the js peer says IDONTWANT in its own id form before the message reaches us
    a.receive_rpc(js, bytes(R.encode_rpc({"control": {"idontwant": [{"messageIDs": [js_id(mid)]}]}})), 1100)
    assert a.peers[js].key_ids
    a.receive_rpc(src, bytes(R.encode_rpc({"publish": [msg]})), 1101)
    to_js = [f for p, f in a.outgoing() if p == js]
    assert not [f for f in to_js if is_message_frame(f)], "forwarded despite IDONTWANT"
    assert a.peers[js].suppressed == 1
    # and our IDONTWANT to it went out in its form
    idw = [R.decode_rpc(body_of(f)) for f in to_js]
    ids = [i for r in idw for x in r.get("control", {}).get("idontwant", []) for i in x["messageIDs"]]
    assert ids == [js_id(mid)], ids


def test_js_form_ihave_and_iwant():
    sk_a, ia = signed_node(1)
    sk_s, isrc = signed_node(2)
    _, ijs = signed_node(3)
    src, js = isrc.to_bytes(), ijs.to_bytes()
    a = GossipSub(ia, sk_a, GossipSubConfig(), 0)
    meshed(a, [src, js])
    msg = {"from": src, "data": b"y", "seqno": bytes([0, 0, 0, 0, 0, 0, 0, 8]), "topic": T}
    R.sign_message(msg, sk_s)
    mid = R.default_msg_id(msg)
    # IHAVE in js form for a message we lack: we ask for it in the same form
    a.receive_rpc(js, bytes(R.encode_rpc({"control": {"ihave": [{"topicID": T, "messageIDs": [js_id(mid)]}]}})), 1100)
    out = [R.decode_rpc(body_of(f)) for p, f in a.outgoing() if p == js]
    asked = [i for r in out for x in r.get("control", {}).get("iwant", []) for i in x["messageIDs"]]
    assert asked == [js_id(mid)], asked
    # once we have it, the same IHAVE asks for nothing, and a js-form IWANT is served
    a.receive_rpc(src, bytes(R.encode_rpc({"publish": [msg]})), 1200)
    a.outgoing()
    a.heartbeat(2000)
    a.outgoing()
    a.receive_rpc(js, bytes(R.encode_rpc({"control": {"ihave": [{"topicID": T, "messageIDs": [js_id(mid)]}]}})), 2100)
    assert not [f for p, f in a.outgoing() if p == js]
    a.receive_rpc(js, bytes(R.encode_rpc({"control": {"iwant": [{"messageIDs": [js_id(mid)]}]}})), 2200)
    served = [f for p, f in a.outgoing() if p == js and is_message_frame(f)]
    assert len(served) == 1
    # our IHAVE gossip to the js peer uses its form too, to the go-form peer ours
    a._emit_gossip(T, set())
    ihave = [i for x in a.gossip_q.get(js, []) for i in x["messageIDs"]]
    assert js_id(mid) in ihave and mid not in ihave, ihave
    ihave = [i for x in a.gossip_q.get(src, []) for i in x["messageIDs"]]
    assert mid in ihave, ihave
