# microp2p-cli: the portable `node` command line (`micropython -m microp2p.node ...`); unix port only.
metadata(version="0.1.0", description="microp2p node command line", license="MIT")
require("microp2p-pubsub")
require("microp2p-kad-server")
require("microp2p-relay")
package("microp2p", files=("cli.py", "node.py"), base_path="../..")
