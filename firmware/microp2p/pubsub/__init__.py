# Publish/subscribe for microp2p: the RPC codec (rpc), the message and seen caches (mcache),
# peer scoring (score), and two sans-IO routers sharing one API (router.Router):
# gossipsub.GossipSub (meshsub 1.0/1.1/1.2) and floodsub.FloodSub.
# Import the submodule you need; this file stays empty so a device loads only what it uses.
