# microp2p-serial: the serial link (COBS + CRC frames, selective repeat) and its UART/pty driver.
metadata(version="0.1.0", description="microp2p serial link", license="MIT")
require("microp2p-conn")
package("microp2p", files=(
    "serial/__init__.py", "serial/frame.py", "serial/link.py",
    "io/serial.py",
), base_path="../..")
