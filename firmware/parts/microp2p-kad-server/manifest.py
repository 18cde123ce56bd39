# microp2p-kad-server: the Kademlia server side (provider and record stores, request handler),
# loaded only in server mode (gateways; any node run with --dht server).
metadata(version="0.1.0", description="microp2p Kademlia DHT server part", license="MIT")
require("microp2p-kad")
package("microp2p", files=("proto/kad/store.py", "proto/kad/server.py"), base_path="../..")
