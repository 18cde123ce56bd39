# The gateway raises its open-file soft limit to what its config can use (connection slots, one
# MQTT connection per device will session, serial ports) and says so when the hard limit is lower.
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.pathsep.join([os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host")])

PROBE = r"""
import resource, sys
from microp2p_host import gateway
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
cfg = gateway.GatewayConfig.load(sys.argv[3])
need = gateway.fds_needed(cfg)
print(need, gateway.raise_fd_limit(need), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""

CONFIG = """
[gateway]
max_connections = 2000
[network]
listen = ["/ip4/127.0.0.1/tcp/0"]
[devices]
allow = []
[mqtt]
url = "mqtt://127.0.0.1:1"
device_wills = 300
"""


def _probe(soft, hard):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gw.toml")
        with open(path, "w") as f:
            f.write(CONFIG)
        r = subprocess.run([sys.executable, "-c", PROBE, str(soft), str(hard), path], env=dict(os.environ, PYTHONPATH=SRC),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [int(x) for x in r.stdout.split()]


def test_soft_limit_raised_to_what_the_config_can_use():
    need, got, now = _probe(256, 4096)
    assert need == 2000 + 301 + 0 + 128
    assert got == need and now == need


def test_soft_limit_stops_at_the_hard_limit():
    need, got, now = _probe(256, 1024)
    assert need > 1024 and got == 1024 and now == 1024
