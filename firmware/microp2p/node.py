# `micropython -m microp2p.node ARGS` and `python -m microp2p.node ARGS`: the node command line
# (docs/architecture.md, "Command line"). The Node class itself is microp2p.io.node.Node.
import sys
from microp2p.cli import main

if __name__ == "__main__":
    sys.exit(main())
