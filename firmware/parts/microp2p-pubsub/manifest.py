# microp2p-pubsub: gossipsub v1.1/v1.2, the leaf gossipsub client and floodsub routers, and their driver.
metadata(version="0.1.0", description="microp2p pubsub: gossipsub, floodsub", license="MIT")
require("microp2p-conn")
package("microp2p", files=(
    "pubsub/__init__.py", "pubsub/rpc.py", "pubsub/router.py", "pubsub/gossipsub.py",
    "pubsub/floodsub.py", "pubsub/mcache.py", "pubsub/score.py", "pubsub/leaf.py",
    "io/pubsub.py",
), base_path="../..")
