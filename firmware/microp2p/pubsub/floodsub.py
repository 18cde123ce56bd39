# Floodsub (/floodsub/1.0.0, pubsub/README.md): every valid new message goes to every peer
# subscribed to its topic, except the one it came from and its author. No control messages.
from microp2p.pubsub import rpc as R
from microp2p.pubsub.router import Router, PubSubConfig

PROTOCOL = R.FLOODSUB


class FloodSub(Router):
    protocols = (R.FLOODSUB,)

    def _forward(self, enc, mid, topic, src, origin):
        self._flood(enc, topic, src, origin)

    def _publish_out(self, enc, mid, topic):
        self._flood(enc, topic, None, None)

    def _flood(self, enc, topic, src, origin):
        members = self.topics.get(topic)
        if not members:
            return
        f = None
        for pid in members:
            if pid == src:
                continue
            peer = self.peers[pid]
            if origin is not None and peer.bytes == origin:
                continue
            if f is None:
                f = R.message_frame(enc)  # one frame shared by every recipient
            self._enqueue(peer, f)


__all__ = ("FloodSub", "PubSubConfig", "PROTOCOL")
