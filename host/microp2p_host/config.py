# Strict TOML configs: every section and key is declared with its type; an unknown key, a wrong
# type or a value out of range is an error that names the key and its line in the file, so a typo
# (`alow = [...]`) never silently changes what the gateway does.
#
#   schema = {"gateway": {"stats_interval_s": Num(min=0), "metrics": Str()}, ...}
#   check(data, schema, text, path)  -> None or raises ConfigError("gw.toml:12: gateway.alow: unknown key ...")
import re


class ConfigError(Exception):
    pass


class _Type:
    name = "value"

    def check(self, v):
        return True


class Str(_Type):
    name = "a string"

    def __init__(self, choices=None, max_len=4096):
        self.choices = choices
        self.max_len = max_len

    def check(self, v):
        if not isinstance(v, str) or len(v) > self.max_len:
            return False
        return self.choices is None or v in self.choices

    def describe(self):
        return "one of %s" % ", ".join(repr(c) for c in self.choices) if self.choices else self.name


class Bool(_Type):
    name = "true or false"

    def check(self, v):
        return isinstance(v, bool)

    def describe(self):
        return self.name


class Num(_Type):
    def __init__(self, min=None, max=None, integer=False):
        self.min, self.max, self.integer = min, max, integer

    def check(self, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (self.integer and not isinstance(v, int)):
            return False
        return (self.min is None or v >= self.min) and (self.max is None or v <= self.max)

    def describe(self):
        kind = "an integer" if self.integer else "a number"
        if self.min is not None and self.max is not None:
            return "%s from %s to %s" % (kind, self.min, self.max)
        if self.min is not None:
            return "%s >= %s" % (kind, self.min)
        return kind


class List(_Type):
    """A list of items (a single item is accepted where one_ok, as the gateway always has)."""

    def __init__(self, item, max_items=100000, one_ok=True):
        self.item, self.max_items, self.one_ok = item, max_items, one_ok

    def check(self, v):
        if self.one_ok and not isinstance(v, list):
            v = [v]
        return isinstance(v, list) and len(v) <= self.max_items and all(self.item.check(x) for x in v)

    def describe(self):
        return "a list of %s" % self.item.describe()


class Table(_Type):
    """An inline table / array-of-tables entry with its own keys."""

    def __init__(self, keys, required=()):
        self.keys, self.required = keys, tuple(required)

    def check(self, v):
        return isinstance(v, dict)

    def describe(self):
        return "a table"


class AnyOf(_Type):
    def __init__(self, *types):
        self.types = types

    def check(self, v):
        return any(t.check(v) for t in self.types)

    def describe(self):
        return " or ".join(t.describe() for t in self.types)


def line_of(text, section, key=None):
    """1-based line of `key =` inside [section] (or of the section header), 0 when not found."""
    if not text:
        return 0
    lines = text.splitlines()
    cur = None
    header = None
    for i, line in enumerate(lines, 1):
        s = line.strip()
        m = re.match(r"^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?", s)
        if m:
            cur = m.group(1)
            if cur == section and header is None:
                header = i
            continue
        if key is not None and cur == section and re.match(r"^%s\s*=" % re.escape(key), s):
            return i
    return header or 0


def _where(path, text, section, key=None):
    n = line_of(text, section, key)
    return "%s:%d" % (path, n) if n else path


def check(data, schema, text="", path="config"):
    """Raise ConfigError for the first unknown section/key or mistyped value."""
    for section, value in data.items():
        if section not in schema:
            raise ConfigError("%s: unknown section [%s] (known: %s)" % (
                _where(path, text, section), section, ", ".join(sorted(schema))))
        keys = schema[section]
        if isinstance(keys, List) and isinstance(keys.item, Table):   # [[serial]] style
            entries = value if isinstance(value, list) else [value]
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    raise ConfigError("%s: %s[%d] must be a table" % (_where(path, text, section), section, i))
                _check_table(entry, keys.item, "%s[%d]" % (section, i), section, text, path)
            continue
        if not isinstance(value, dict):
            raise ConfigError("%s: [%s] must be a table" % (_where(path, text, section), section))
        _check_table(value, Table(keys), section, section, text, path)


def _check_table(d, table, label, section, text, path):
    for k, v in d.items():
        t = table.keys.get(k)
        if t is None:
            raise ConfigError("%s: %s.%s: unknown key (known: %s)" % (
                _where(path, text, section, k), label, k, ", ".join(sorted(table.keys))))
        _check_value(v, t, "%s.%s" % (label, k), section, k, text, path)
    for k in table.required:
        if k not in d:
            raise ConfigError("%s: %s needs %s" % (_where(path, text, section), label, k))


def _check_value(v, t, label, section, key, text, path):
    if isinstance(t, Table):
        if not isinstance(v, dict):
            raise ConfigError("%s: %s must be a table (got %r)" % (_where(path, text, section, key), label, v))
        _check_table(v, t, label, section, text, path)
        return
    if isinstance(t, List):
        items = v if isinstance(v, list) else ([v] if t.one_ok else None)
        if items is None or len(items) > t.max_items:
            raise ConfigError("%s: %s must be %s" % (_where(path, text, section, key), label, t.describe()))
        for i, item in enumerate(items):
            _check_value(item, t.item, "%s[%d]" % (label, i), section, key, text, path)
        return
    if isinstance(t, AnyOf) and isinstance(v, dict):
        for alt in t.types:
            if isinstance(alt, Table):
                _check_table(v, alt, label, section, text, path)
                return
    if not t.check(v):
        raise ConfigError("%s: %s must be %s (got %r)" % (_where(path, text, section, key), label, t.describe(), v))
