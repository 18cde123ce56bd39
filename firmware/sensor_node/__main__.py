import sys

from sensor_node.app import main

sys.exit(main())
