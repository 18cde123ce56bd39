# An in-memory network of pubsub routers with a simulated clock, for the pubsub tests.
#
# Frames are delivered in order of a virtual arrival time: 1 + len(frame) // 100 units after the
# frame that caused them (big frames take longer on the wire, as they do for real), so a small
# IDONTWANT can overtake a large message, which is the point of IDONTWANT. A `drop` hook can
# lose frames on chosen links. Message transmissions are counted: a frame whose RPC body starts
# with field 2 (publish) carries one message (our routers never mix messages and control).
import heapq
import random

from microp2p.pubsub import rpc as R
from microp2p.pubsub.gossipsub import GossipSub, GossipSubConfig

NOSIGN = "strict-no-sign"


def nosign_config(cls=GossipSubConfig, device=False):
    c = cls.device() if device else cls()
    c.sign_policy = NOSIGN
    # Test messages carry a unique prefix, so a short content id is enough (and cheap).
    c.msg_id_fn = lambda m: m.get("data", b"")[:16]
    return c


def node_id(i):
    return b"node-%03d" % i


def body_of(frame):
    n, p = R.varint.read(frame, 0)
    return frame[p:p + n]


def is_message_frame(frame):
    b = body_of(frame)
    return len(b) > 0 and b[0] == 0x12


class Net:
    def __init__(self, n, config_fn=None, proto=R.MESHSUB_V12, seed=1, cls=GossipSub, ids=None, keys=None):
        random.seed(seed)
        self.now = 0
        self.ids = ids if ids is not None else [node_id(i) for i in range(n)]
        self.index = {}
        for i, pid in enumerate(self.ids):
            self.index[pid] = i
        self.routers = []
        for i in range(n):
            cfg = config_fn(i) if config_fn is not None else nosign_config()
            key = keys[i] if keys is not None else None
            self.routers.append(cls(self.ids[i], key, cfg, 0))
        self.proto = proto
        self.protos = [proto] * n
        self.events = [[] for _ in range(n)]
        self.drop = None         # fn(src, dst, frame) -> True to lose the frame
        self.frames = 0
        self.msg_frames = 0
        self.dropped = 0
        self.links = set()

    def connect(self, i, j):
        if i == j or (i, j) in self.links:
            return
        self.links.add((i, j))
        self.links.add((j, i))
        self.routers[i].add_peer(self.ids[j], self.protos[j], True)
        self.routers[j].add_peer(self.ids[i], self.protos[i], False)

    def disconnect(self, i, j):
        self.links.discard((i, j))
        self.links.discard((j, i))
        self.routers[i].remove_peer(self.ids[j])
        self.routers[j].remove_peer(self.ids[i])

    def connect_all(self):
        n = len(self.routers)
        for i in range(n):
            for j in range(i + 1, n):
                self.connect(i, j)

    def connect_random(self, degree):
        n = len(self.routers)
        for i in range(n):
            self.connect(i, (i + 1) % n)  # a ring keeps it connected
            while sum(1 for (a, b) in self.links if a == i) < degree:
                self.connect(i, random.getrandbits(16) % n)

    def pump(self, limit=200000):
        """Deliver frames (by virtual arrival time) until nothing is left to send."""
        q = []
        seq = 0
        for i, r in enumerate(self.routers):
            for pid, f in r.outgoing():
                seq += 1
                heapq.heappush(q, (1 + len(f) // 100, seq, i, self.index[pid], f))
        steps = 0
        while q:
            t, _, src, dst, f = heapq.heappop(q)
            steps += 1
            assert steps < limit, "network did not go quiet"
            if (src, dst) not in self.links:
                continue
            self.frames += 1
            if self.drop is not None and self.drop(src, dst, f):
                self.dropped += 1
                continue
            if is_message_frame(f):
                self.msg_frames += 1
            r = self.routers[dst]
            self.events[dst] += r.feed(self.ids[src], f, self.now)
            for pid, g in r.outgoing():
                seq += 1
                heapq.heappush(q, (t + 1 + len(g) // 100, seq, dst, self.index[pid], g))

    def advance(self, ms, step=100):
        end = self.now + ms
        while self.now < end:
            self.now += step
            for i, r in enumerate(self.routers):
                self.events[i] += r.tick(self.now)
            self.pump()

    def subscribe_all(self, topic):
        for r in self.routers:
            r.subscribe(topic)
        self.pump()

    def publish(self, i, topic, data):
        mid = self.routers[i].publish(topic, data, self.now)
        self.pump()
        return mid

    def received(self, i, kind="message"):
        return [e for e in self.events[i] if e[0] == kind]

    def clear_events(self):
        self.events = [[] for _ in self.routers]
