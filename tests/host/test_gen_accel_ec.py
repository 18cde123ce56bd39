# The unrolled viper runs in crypto/accel_ec.py (between its `# <generated: NAME>` and
# `# </generated>` markers) are written by tools/gen_accel_ec.py, which leaves every other line as
# it is: the committed module must be exactly what the generator writes (edit the generator, not
# the generated lines; the hand-written lines are edited in the module).
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOD = os.path.join(ROOT, "firmware", "microp2p", "crypto", "accel_ec.py")


def test_accel_ec_is_what_the_generator_writes():
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "accel_ec.py")
        shutil.copy(MOD, copy)
        r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_accel_ec.py"), copy],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        assert r.returncode == 0, r.stdout
        with open(copy) as a, open(MOD) as b:
            assert a.read() == b.read(), "accel_ec.py differs from tools/gen_accel_ec.py's output"
