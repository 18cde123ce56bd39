# The sensor device app (see app.py). `micropython -m sensor_node CONFIG.json` runs it.
