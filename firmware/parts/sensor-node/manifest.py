# sensor-node: the device app (signed CBOR readings, commands, reconnect); boards run main.py.
metadata(version="0.1.0", description="microp2p sensor node app", license="MIT")
require("microp2p-pubsub")
require("microp2p-serial")
require("microp2p-relay")   # reachable through the gateway (STOP), loaded on first use by reach.py
package("sensor_node", files=("__init__.py", "__main__.py", "app.py", "reach.py", "sensors.py", "serial_link.py", "main.py"),
        base_path="../..")
package("microp2p", files=("proto/sensor.py",), base_path="../..")
