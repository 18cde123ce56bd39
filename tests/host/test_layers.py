# The import direction of the layers (docs/architecture.md): a module may import its own layer and
# the ones below, never one above; and no import circle among the project's modules.
# codec, crypto < identity < conn, serial < proto, pubsub < io < node CLI < apps (sensor app, host).
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREES = (("firmware", "microp2p"), ("firmware", "sensor_node"), ("host", "microp2p_host"), ("host", "microp2p_sim"))

# longest prefix wins
LAYERS = (
    ("microp2p", 0), ("microp2p.errors", 0), ("microp2p.events", 0), ("microp2p.clock", 0), ("microp2p.aio", 0),
    ("microp2p.codec", 1), ("microp2p.crypto", 1),
    # multiaddr parses /p2p/<peer id>: it sits with the identities it carries
    ("microp2p.identity", 2), ("microp2p.codec.multiaddr", 2),
    ("microp2p.conn", 3), ("microp2p.serial", 3),
    ("microp2p.proto", 4), ("microp2p.pubsub", 4),
    ("microp2p.io", 5),
    ("microp2p.cli", 6), ("microp2p.node", 6), ("microp2p_sim", 6),
    # apps: the host package and the sensor app (which takes the host's native crypto on CPython)
    ("microp2p_host", 7), ("sensor_node", 7),
)


def layer_of(module):
    best = None
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return best[1] if best else None


def project_modules():
    mods = {}
    for base, pkg in TREES:
        top = os.path.join(ROOT, base, pkg)
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if not x.startswith((".", "__"))]
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, f), os.path.join(ROOT, base))[:-3].replace(os.sep, ".")
                    if rel.endswith(".__init__"):
                        rel = rel[:-9]
                    mods[rel] = os.path.join(d, f)
    return mods


def imports_of(path, mods):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [node.module + "." + a.name for a in node.names]
            # `from pkg import module` depends on the module, not on the (empty) package
            names = subs if all(s in mods for s in subs) else subs + [node.module]
        for n in names:
            while n and n not in mods:
                n = n.rpartition(".")[0]
            if n:
                out.add(n)
    return out


def test_every_module_has_a_layer():
    mods = project_modules()
    assert len(mods) > 40
    missing = [m for m in mods if layer_of(m) is None]
    assert not missing, missing


def test_no_import_goes_up_a_layer():
    mods = project_modules()
    bad = []
    for m, path in sorted(mods.items()):
        lm = layer_of(m)
        for dep in imports_of(path, mods):
            if dep == m or dep.startswith(m + "."):
                continue
            if layer_of(dep) > lm:
                bad.append("%s (layer %d) imports %s (layer %d)" % (m, lm, dep, layer_of(dep)))
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    mods = project_modules()
    graph = {m: {d for d in imports_of(p, mods) if d != m and not m.startswith(d + ".")} for m, p in mods.items()}
    # packages import nothing (empty __init__ files), so a circle is one among modules
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_device_packages_have_empty_init_files():
    mods = project_modules()
    for m, path in mods.items():
        if path.endswith("__init__.py") and m.startswith("microp2p") and not m.startswith("microp2p_"):
            code = [l for l in open(path) if l.strip() and not l.strip().startswith("#")]
            # microp2p/__init__.py holds the version, crypto/__init__.py is the crypto interface
            if m not in ("microp2p", "microp2p.crypto"):
                assert not code, "%s re-exports (a device would load every module): %s" % (path, code[:2])
