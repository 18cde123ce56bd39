# microp2p-relay: circuit relay v2 (hop/stop codec, vouchers, reservation client, hop policy) and
# its driver: reserve on a relay, dial through one, answer STOP, serve as a hop.
metadata(version="0.1.0", description="microp2p circuit relay v2", license="MIT")
require("microp2p-conn")
package("microp2p", files=(
    "proto/relay/__init__.py", "proto/relay/codec.py", "proto/relay/voucher.py",
    "proto/relay/client.py", "proto/relay/hop.py",
    "io/relay.py",
), base_path="../..")
