# io/pubsub.attach picks the router from the node's profile: the leaf client for Profile.device(),
# the full gossipsub otherwise; kind= and flood= override it.
import asyncio

import microp2p_host  # noqa: F401  (native crypto)
from microp2p.io import node as nodemod, pubsub
from microp2p.io.profile import Profile
from microp2p.identity.keys import Ed25519PrivateKey
from microp2p.pubsub.floodsub import FloodSub
from microp2p.pubsub.gossipsub import GossipSub
from microp2p.pubsub.leaf import LeafSub


def _router(profile, **kw):
    async def main():
        n = nodemod.Node(Ed25519PrivateKey.from_seed(b"\x21" * 32), profile)
        try:
            ps = pubsub.attach(n, **kw)
            await asyncio.sleep(0)  # let its ticker start before it is cancelled
            ps.close()
            return ps.router
        finally:
            await n.stop()
    return asyncio.run(main())


def test_device_profile_runs_the_leaf_router():
    assert Profile.device().pubsub == "leaf" and Profile().pubsub == "gossipsub"
    r = _router(Profile.device())
    assert isinstance(r, LeafSub)
    assert isinstance(_router(Profile()), GossipSub)
    assert isinstance(_router(Profile.device(), kind="gossipsub"), GossipSub)
    assert isinstance(_router(Profile.device(), flood=True), FloodSub)


def test_leaf_router_offers_the_protocols_asked_for():
    r = _router(Profile.device(), protocols=("/meshsub/1.1.0", "/floodsub/1.0.0"))
    assert r.protocols == ("/meshsub/1.1.0", "/floodsub/1.0.0")
    try:
        _router(Profile.device(), protocols=("/meshsub/9.9.9",))
    except ValueError:
        pass
    else:
        assert False, "an unknown protocol was accepted"
    try:
        _router(Profile(), kind="nope")
    except ValueError:
        pass
    else:
        assert False
