# microp2p-conn: multistream, Noise XX, yamux, the upgrade machine, identify, ping and the node
# driver over TCP (or any byte stream).
metadata(version="0.1.0", description="microp2p connections: mss, noise, yamux, identify, ping, node", license="MIT")
require("microp2p-core")
package("microp2p", files=(
    "conn/__init__.py", "conn/mss.py", "conn/noise.py", "conn/yamux.py", "conn/upgrade.py",
    "proto/__init__.py", "proto/identify.py", "proto/ping.py",
    "io/__init__.py", "io/node.py", "io/connection.py", "io/profile.py", "io/identify.py",
    "io/identify_push.py", "io/ping.py", "io/tcp.py", "io/resources.py",
), base_path="../..")
