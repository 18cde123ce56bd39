# XOR distance over sha256 keys and the k-bucket routing table (liveness-checked replacement).
from microp2p import crypto
from microp2p.proto.kad import table
from microp2p.proto.kad.table import RoutingTable, key_of, xor, common_prefix_len, closer
from kad_net import fake_id


def test_distance_is_xor_of_sha256():
    a = b"\x12\x20" + bytes(32)
    b = b"\x12\x20" + bytes([1] * 32)
    assert key_of(a) == crypto.sha256(a)
    d = xor(key_of(a), key_of(b))
    assert len(d) == 32
    assert d == bytes(x ^ y for x, y in zip(crypto.sha256(a), crypto.sha256(b)))
    assert xor(key_of(a), key_of(a)) == bytes(32)
    assert xor(d, key_of(b)) == key_of(a)


def test_common_prefix_len():
    z = bytes(32)
    assert common_prefix_len(z, z) == 256
    assert common_prefix_len(z, b"\x80" + bytes(31)) == 0
    assert common_prefix_len(z, b"\x01" + bytes(31)) == 7
    assert common_prefix_len(z, bytes(5) + b"\x10" + bytes(26)) == 43
    assert common_prefix_len(z, bytes(31) + b"\x01") == 255


def test_closer():
    t = bytes(32)
    assert closer(b"\x01" + bytes(31), b"\x02" + bytes(31), t)
    assert not closer(b"\x02" + bytes(31), b"\x01" + bytes(31), t)
    assert not closer(t, t, t)


def _ids(n, salt=b"t"):
    return [fake_id(i, salt) for i in range(n)]


def test_buckets_hold_at_most_k_and_closest_is_sorted():
    me = fake_id(0, b"me")
    rt = RoutingTable(me, k=4)
    res = [rt.add(p, [], 0)[0] for p in _ids(200)]
    assert res.count("added") == len(rt)
    # ~half of all ids fall in bucket 0: it is full at 4
    for cpl in rt.bucket_cpls():
        assert len([e for e in rt.peers() if common_prefix_len(e[1], rt.local_pos) == cpl]) <= 4
    assert len(rt) <= 4 * len(rt.bucket_cpls())
    target = key_of(b"anything")
    got = rt.closest(target, 10)
    assert got == sorted(rt.peers(), key=lambda e: xor(e[1], target))[:10]
    assert rt.add(me, [], 0) == ("ignored",)


def test_full_bucket_asks_for_a_liveness_check():
    me = fake_id(0, b"me")
    rt = RoutingTable(me, k=2)
    # find three ids in bucket 0
    b0 = [p for p in _ids(50) if common_prefix_len(key_of(p), rt.local_pos) == 0][:4]
    assert rt.add(b0[0], [], 1) == ("added",)
    assert rt.add(b0[1], [], 2) == ("added",)
    assert rt.add(b0[2], [], 3) == ("check", b0[0])   # the least recently seen is probed
    assert rt.pending_checks() == [b0[0]]
    assert rt.add(b0[3], [], 4) == ("ignored",)       # one check per bucket at a time
    # the old peer answered: it stays (moves to the tail), the newcomer is dropped
    rt.check_result(b0[0], True, 5)
    assert rt.get(b0[0]) is not None and rt.get(b0[3]) is None and rt.get(b0[2]) is None
    assert rt.pending_checks() == []
    # now b0[1] is the oldest; it fails its check: the newcomer replaces it
    assert rt.add(b0[2], [], 6) == ("check", b0[1])
    rt.check_result(b0[1], False, 7)
    assert rt.get(b0[1]) is None and rt.get(b0[2]) is not None
    assert len(rt) == 2


def test_unanswered_check_times_out_as_failed():
    me = fake_id(0, b"me")
    rt = RoutingTable(me, k=1)
    b0 = [p for p in _ids(50) if common_prefix_len(key_of(p), rt.local_pos) == 0][:2]
    rt.add(b0[0], [], 0)
    assert rt.add(b0[1], [], 100) == ("check", b0[0])
    assert rt.tick(100 + table.CHECK_TIMEOUT_MS - 1) == []
    assert rt.tick(100 + table.CHECK_TIMEOUT_MS) == [b0[0]]
    assert rt.get(b0[1]) is not None and rt.get(b0[0]) is None


def test_seen_again_updates_and_moves_to_tail():
    me = fake_id(0, b"me")
    rt = RoutingTable(me, k=2)
    b0 = [p for p in _ids(50) if common_prefix_len(key_of(p), rt.local_pos) == 0][:3]
    rt.add(b0[0], [], 0)
    rt.add(b0[1], [], 1)
    assert rt.add(b0[0], ["a"], 2) == ("updated",)
    assert rt.get(b0[0])[2] == ["a"]
    assert rt.add(b0[2], [], 3) == ("check", b0[1])


def test_remove_lets_the_waiting_newcomer_in():
    me = fake_id(0, b"me")
    rt = RoutingTable(me, k=1)
    b0 = [p for p in _ids(50) if common_prefix_len(key_of(p), rt.local_pos) == 0][:2]
    rt.add(b0[0], [], 0)
    rt.add(b0[1], [], 1)
    assert rt.remove(b0[0])
    assert rt.get(b0[1]) is not None and len(rt) == 1
    assert not rt.remove(b0[0])


def test_random_id_in_bucket():
    me = fake_id(0, b"me")
    rt = RoutingTable(me)
    n = [0]

    def rand(k):
        n[0] += 1
        return crypto.sha256(str(n[0]).encode())[:k]

    for cpl in (0, 1, 4):
        k = rt.random_id_in_bucket(cpl, rand)
        assert common_prefix_len(key_of(k), rt.local_pos) == cpl
