# microp2p-kad: the Kademlia DHT client (codec, routing table, lookup, driver): what a device needs
# for find_peer / get_closest_peers / provide / find_providers.
metadata(version="0.1.0", description="microp2p Kademlia DHT client", license="MIT")
require("microp2p-conn")
package("microp2p", files=(
    "proto/kad/__init__.py", "proto/kad/codec.py", "proto/kad/table.py", "proto/kad/lookup.py",
    "io/kad.py",
), base_path="../..")
