# The device parts: micropython-lib style manifests under firmware/parts/<part>/manifest.py are the
# one list of which files a device gets. This module reads them (the manifest functions metadata,
# package, module, require, include, add_library, with micropython's tools/manifestfile.py
# semantics for paths and de-duplication), writes each part's mip package.json, and the board
# manifest that freezes a board's parts into a firmware build.
#
#   files_of(["sensor-node"])   -> [(target path, source path)], every required part included
#   package_json("sensor-node")  -> the mip package.json (all files, relative urls, no deps)
import json
import os

from microp2p_host.paths import PARTS_DIR
MAX_MANIFEST_BYTES = 65536


class PartError(Exception):
    pass


def part_names(parts_dir=PARTS_DIR):
    try:
        return sorted(d for d in os.listdir(parts_dir) if os.path.isfile(os.path.join(parts_dir, d, "manifest.py")))
    except OSError:
        return []


class _Reader:
    def __init__(self, parts_dir):
        self.library_dirs = [parts_dir]
        self.files = []          # (target, full)
        self.visited = []        # manifest paths in the order read
        self.meta = {}           # manifest path -> metadata kwargs
        self.external = []       # includes of MicroPython's own manifests (left to the firmware build)
        self._cwd = [parts_dir]

    def _path(self, p):
        return os.path.normpath(os.path.join(self._cwd[-1], p))

    def _globals(self, manifest):
        def metadata(**kw):
            if manifest in self.meta:
                raise PartError("%s: duplicate call to metadata()" % manifest)
            self.meta[manifest] = kw

        def package(package_path, files=None, base_path="."):
            base = self._path(base_path)
            if files is None:
                top = os.path.join(base, package_path)
                for d, dirs, names in os.walk(top):
                    dirs.sort()
                    for n in sorted(names):
                        if n.endswith(".py"):
                            full = os.path.join(d, n)
                            self._add(os.path.relpath(full, base), full)
            else:
                for f in files:
                    target = package_path + "/" + f
                    self._add(target, os.path.join(base, package_path, f))

        def module(module_path, base_path="."):
            self._add(module_path, os.path.join(self._path(base_path), module_path))

        def require(name, version=None, library=None, **kw):
            for lib in self.library_dirs:
                cand = os.path.join(lib, name, "manifest.py")
                if os.path.isfile(cand):
                    self.include(cand)
                    return
            raise PartError("%s: required part %r not found" % (manifest, name))

        def add_library(library, library_path, prepend=False):
            p = self._path(library_path)
            if prepend:
                self.library_dirs.insert(0, p)
            else:
                self.library_dirs.append(p)

        return {"metadata": metadata, "package": package, "module": module, "require": require,
                "include": self.include, "add_library": add_library}

    def _add(self, target, full):
        target = target.replace(os.sep, "/")
        if not os.path.isfile(full):
            raise PartError("manifest names a missing file: %s" % full)
        if target not in [t for t, _ in self.files]:
            self.files.append((target, os.path.normpath(full)))

    def include(self, path):
        if "$(" in path:
            # a MicroPython build variable ($(PORT_DIR), $(MPY_DIR)): the port's own files,
            # resolved by the firmware build, not part of microp2p
            self.external.append(path)
            return
        path = self._path(path)
        if os.path.isdir(path):
            path = os.path.join(path, "manifest.py")
        if path in self.visited:
            return
        self.visited.append(path)
        try:
            with open(path) as f:
                code = f.read(MAX_MANIFEST_BYTES + 1)
        except OSError as e:
            raise PartError("cannot read %s: %s" % (path, e.strerror or e))
        if len(code) > MAX_MANIFEST_BYTES:
            raise PartError("%s is over %d bytes" % (path, MAX_MANIFEST_BYTES))
        self._cwd.append(os.path.dirname(path))
        try:
            exec(compile(code, path, "exec"), self._globals(path))
        finally:
            self._cwd.pop()


def read(manifest_path, parts_dir=PARTS_DIR):
    """Run one manifest (a part's or a board's); returns the reader (files, visited, meta)."""
    r = _Reader(parts_dir)
    r.include(os.path.abspath(manifest_path))
    return r


def files_of(parts, parts_dir=PARTS_DIR):
    """(target path, source path) of every file the named parts and their requirements hold."""
    r = _Reader(parts_dir)
    for name in parts:
        p = os.path.join(parts_dir, name, "manifest.py")
        if not os.path.isfile(p):
            raise PartError("unknown part %r (known: %s)" % (name, ", ".join(part_names(parts_dir))))
        r.include(p)
    return sorted(r.files)


def package_json(name, parts_dir=PARTS_DIR):
    """The mip package.json of a part: every file of it and of the parts it requires, as urls
    relative to the part's folder, so `mpremote mip install firmware/parts/NAME/package.json`
    (or the same path on a git host) installs a complete, runnable set."""
    r = read(os.path.join(parts_dir, name, "manifest.py"), parts_dir)
    here = os.path.join(parts_dir, name)
    meta = r.meta.get(os.path.join(here, "manifest.py"), {})
    urls = [[target, os.path.relpath(full, here).replace(os.sep, "/")] for target, full in sorted(r.files)]
    return {"urls": urls, "deps": [], "version": meta.get("version", "0.0.0")}


def package_json_text(name, parts_dir=PARTS_DIR):
    pj = package_json(name, parts_dir)
    rows = ",\n".join("    " + json.dumps(u) for u in pj["urls"])
    return '{\n  "urls": [\n%s\n  ],\n  "deps": [],\n  "version": %s\n}\n' % (rows, json.dumps(pj["version"]))


def write_package_jsons(parts_dir=PARTS_DIR):
    """(Re)write every part's package.json; returns the paths written."""
    out = []
    for name in part_names(parts_dir):
        p = os.path.join(parts_dir, name, "package.json")
        with open(p, "w") as f:
            f.write(package_json_text(name, parts_dir))
        out.append(p)
    return out
