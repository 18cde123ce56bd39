# Board entry point: `microp2p deploy` copies this file to the board's root as main.py, next to
# config.json and the key, so the board starts the sensor app at boot.
from sensor_node.app import run

CONFIG_PATH = "/config.json"


def main(config_path=CONFIG_PATH):
    return run(config_path)


if __name__ == "__main__":
    main()
