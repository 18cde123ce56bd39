# Run @micropython.viper function bodies on CPython with every intermediate checked against what a
# 32-bit viper word can hold (ESP32, RP2040: viper ints are signed 32-bit machine words, uint
# unsigned ones, `*` keeps the low 32 bits). The 64-bit unix port cannot show a 32-bit overflow;
# this harness does, on the very function bodies that ship.
#
# load_viper_module(path, name, strict) parses the module, and inside every viper function:
#   - every BinOp / AugAssign becomes _vb(op, lhs, rhs) and every comparison _vc(op, lhs, rhs);
#     a value's viper type follows the emitter's rule (the left operand's type; uint(...) casts
#     give uint, ptr loads and literals give int) and is carried as a Python `U` (uint) or int;
#   - strict=True: every result must lie in the type's 32-bit range (int: [-2**31, 2**31),
#     uint: [0, 2**32)); nothing may rely on wrap-around;
#   - strict=False (for code that uses mod-2**32 wrap on purpose, e.g. SHA-512 halves): + - * <<
#     & | ^ commute with reduction mod 2**32, so their results may exceed the range (64-bit viper
#     keeps the extra bits, 32-bit drops them: same low word), but every operand of an op that
#     does NOT commute (>>, //, %, comparisons) and every index must be in range, so the 32- and
#     64-bit machines observe the same value; shift counts must be in [0, 32);
#   - ptr8/ptr16/ptr32 parameters and ptrN(obj) casts become bounds-checked views of the same
#     buffer; stores truncate to the element width as the hardware does; ptrN(uint(p) + n)
#     (pointer arithmetic) is a view n bytes further into the same buffer, still bounds-checked;
#   - an int literal >= 2**30 outside uint(...) is rejected (a compile error on 32-bit ports).
# Non-viper code in the module runs unchanged.
import ast
import sys
import types

INT_MIN = -(1 << 31)
INT_MAX = (1 << 31) - 1
UINT_MAX = (1 << 32) - 1


class ViperBoundError(AssertionError):
    pass


class U(int):
    """A viper uint value."""
    __slots__ = ()


_OPS = {
    "Add": (lambda a, b: a + b, True), "Sub": (lambda a, b: a - b, True),
    "Mult": (lambda a, b: a * b, True), "LShift": (lambda a, b: a << b, True),
    "BitAnd": (lambda a, b: a & b, True), "BitOr": (lambda a, b: a | b, True),
    "BitXor": (lambda a, b: a ^ b, True), "RShift": (lambda a, b: a >> b, False),
    "FloorDiv": (lambda a, b: a // b, False), "Mod": (lambda a, b: a % b, False),
}
_CMPS = {
    "Lt": lambda a, b: a < b, "Gt": lambda a, b: a > b, "LtE": lambda a, b: a <= b,
    "GtE": lambda a, b: a >= b, "Eq": lambda a, b: a == b, "NotEq": lambda a, b: a != b,
}


class Stats:
    def __init__(self):
        self.ops = 0
        self.max_int = 0
        self.min_int = 0
        self.max_uint = 0


def _in_range(v, is_u):
    if is_u:
        return 0 <= v <= UINT_MAX
    return INT_MIN <= v <= INT_MAX


class Addr:
    """uint(ptr) in viper: the buffer's address. Only `addr + n` and ptrN(addr) are allowed."""
    __slots__ = ("ptr", "off")

    def __init__(self, ptr, off):
        self.ptr = ptr
        self.off = off  # bytes


def _make_runtime(strict, stats, where):
    def vb(op, a, b, line):
        if type(a) is Addr:
            if op != "Add" or type(b) not in (int, U) or b < 0:
                raise ViperBoundError("line %d: only address + offset is modelled" % line)
            return Addr(a.ptr, a.off + int(b))
        if type(a) is bool or type(b) is bool:
            raise ViperBoundError("line %d: arithmetic on a bool" % line)
        fn, wrap_safe = _OPS[op]
        is_u = type(a) is U
        if op in ("LShift", "RShift") and not 0 <= b < 32:
            raise ViperBoundError("line %d: shift count %d" % (line, b))
        if not wrap_safe or strict:
            if not (_in_range(a, is_u) and _in_range(b, is_u or b >= 0)):
                raise ViperBoundError("%s line %d: operand out of 32-bit range in %s: %d, %d"
                                      % (where, line, op, a, b))
        r = fn(int(a), int(b))
        stats.ops += 1
        if strict and not _in_range(r, is_u):
            raise ViperBoundError("%s line %d: %s result %d exceeds the 32-bit %s range"
                                  % (where, line, op, r, "uint" if is_u else "int"))
        if is_u:
            if r > stats.max_uint:
                stats.max_uint = r
            return U(r)
        if r > stats.max_int:
            stats.max_int = r
        elif r < stats.min_int:
            stats.min_int = r
        return r

    def vc(op, a, b, line):
        # (viper rejects an int/uint comparison at compile time: the unix-port build checks that)
        ua, ub = type(a) is U, type(b) is U
        if not (_in_range(a, ua) and _in_range(b, ub or b >= 0)):
            raise ViperBoundError("%s line %d: compared value out of 32-bit range: %d, %d"
                                  % (where, line, a, b))
        return _CMPS[op](int(a), int(b))

    return vb, vc


class Ptr:
    """A ptr8/ptr16/ptr32 view of a buffer: bounds-checked, stores truncate like the hardware."""
    __slots__ = ("mv", "mask", "n")

    def __init__(self, obj, fmt):
        if isinstance(obj, Addr):
            base = obj.ptr.mv
            step = base.itemsize
            if obj.off % step:
                raise ViperBoundError("unaligned pointer cast")
            view = base[obj.off // step:]
            if view.format != fmt:
                view = view.cast("B").cast(fmt) if fmt != "B" else view.cast("B")
            self.mv = view
            self.mask = (1 << (8 * view.itemsize)) - 1
            self.n = len(view)
            return
        if isinstance(obj, Ptr):
            obj = obj.mv.obj
        mv = memoryview(obj)
        if mv.format != fmt:
            mv = mv.cast("B")
            if fmt != "B":
                mv = mv.cast(fmt)
        self.mv = mv
        self.mask = (1 << (8 * mv.itemsize)) - 1
        self.n = len(mv)

    def __getitem__(self, i):
        if type(i) is bool or not 0 <= i < self.n:
            raise ViperBoundError("ptr index %r outside 0..%d" % (i, self.n - 1))
        return self.mv[i]

    def __setitem__(self, i, v):
        if type(i) is bool or not 0 <= i < self.n:
            raise ViperBoundError("ptr index %r outside 0..%d" % (i, self.n - 1))
        self.mv[i] = int(v) & self.mask


def _uint(x):
    if isinstance(x, Ptr):
        return Addr(x, 0)
    if type(x) is bool:
        x = int(x)
    if not INT_MIN <= x <= UINT_MAX:
        raise ViperBoundError("uint() of %d" % x)
    return U(x & UINT_MAX)


def _vint(x):
    if type(x) is bool:
        return int(x)
    if type(x) is U and x > INT_MAX:
        raise ViperBoundError("int() of uint %d (reads differently on 32 and 64 bits)" % x)
    return int(x)


def _int_arg(x):
    if not INT_MIN <= x <= UINT_MAX:
        raise ViperBoundError("int argument %d does not fit a machine word" % x)
    return int(x)


_PTRS = {"ptr8": "B", "ptr16": "H", "ptr32": "I"}


def _is_viper(fn):
    for d in fn.decorator_list:
        if isinstance(d, ast.Attribute) and d.attr == "viper":
            return True
    return False


class _Rewrite(ast.NodeTransformer):
    def __init__(self):
        self.in_uint = 0

    def visit_Constant(self, node):
        if type(node.value) is int and node.value >= (1 << 30) and not self.in_uint:
            raise ViperBoundError("line %d: literal %#x >= 2**30 in viper code"
                                  % (node.lineno, node.value))
        return node

    def visit_Call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "uint":
            self.in_uint += 1
            node = self.generic_visit(node)
            self.in_uint -= 1
            node.func = ast.Name("_v_uint", ast.Load())
            return node
        node = self.generic_visit(node)
        if name == "int":
            node.func = ast.Name("_v_int", ast.Load())
        elif name in _PTRS:
            node.func = ast.Name("_v_" + name, ast.Load())
        return node

    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        return ast.Call(ast.Name("_vb", ast.Load()),
                        [ast.Constant(type(node.op).__name__), node.left, node.right,
                         ast.Constant(node.lineno)], [])

    def visit_Compare(self, node):
        node = self.generic_visit(node)
        if len(node.ops) != 1:
            raise ViperBoundError("line %d: chained comparison" % node.lineno)
        return ast.Call(ast.Name("_vc", ast.Load()),
                        [ast.Constant(type(node.ops[0]).__name__), node.left,
                         node.comparators[0], ast.Constant(node.lineno)], [])

    def visit_UnaryOp(self, node):
        raise ViperBoundError("line %d: unary op in viper code (write 0 - x)" % node.lineno)

    def visit_AugAssign(self, node):
        value = self.visit(node.value)
        target = node.target
        if isinstance(target, ast.Name):
            load = ast.Name(target.id, ast.Load())
        elif isinstance(target, ast.Subscript):
            target = self.visit(target)
            load = ast.Subscript(target.value, target.slice, ast.Load())
        else:
            raise ViperBoundError("line %d: augmented assignment target" % node.lineno)
        call = ast.Call(ast.Name("_vb", ast.Load()),
                        [ast.Constant(type(node.op).__name__), load, value,
                         ast.Constant(node.lineno)], [])
        store = ast.Name(target.id, ast.Store()) if isinstance(target, ast.Name) else \
            ast.Subscript(target.value, target.slice, ast.Store())
        return ast.Assign([store], call, lineno=node.lineno)


def _rewrite_function(fn):
    fn.decorator_list = []
    prologue = []
    for a in fn.args.args:
        ann = a.annotation
        if isinstance(ann, ast.Name):
            if ann.id in _PTRS:
                conv = "_v_" + ann.id
            elif ann.id == "int":
                conv = "_v_int_arg"
            elif ann.id == "uint":
                conv = "_v_uint"
            else:
                conv = None
            if conv:
                prologue.append(ast.Assign(
                    [ast.Name(a.arg, ast.Store())],
                    ast.Call(ast.Name(conv, ast.Load()), [ast.Name(a.arg, ast.Load())], []),
                    lineno=fn.lineno))
        a.annotation = None
    fn.returns = None
    body = [_Rewrite().visit(s) for s in fn.body]
    # keep a docstring first
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        fn.body = body[:1] + prologue + body[1:]
    else:
        fn.body = prologue + body
    return fn


def load_viper_module(path, name, strict=True):
    """The module at path, its viper functions rewritten as above. Returns (module, stats)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    viper_names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and _is_viper(node):
            _rewrite_function(node)
            viper_names.add(node.name)
    ast.fix_missing_locations(tree)
    stats = Stats()
    vb, vc = _make_runtime(strict, stats, name)
    mod = types.ModuleType(name)
    mod.__file__ = path
    g = mod.__dict__
    g.update({"_vb": vb, "_vc": vc, "_v_uint": _uint, "_v_int": _vint, "_v_int_arg": _int_arg,
              "_v_ptr8": lambda o: Ptr(o, "B"), "_v_ptr16": lambda o: Ptr(o, "H"),
              "_v_ptr32": lambda o: Ptr(o, "I")})
    fake = types.ModuleType("micropython")
    fake.viper = lambda f: f
    fake.native = lambda f: f
    fake.const = lambda x: x
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = fake
    try:
        exec(compile(tree, path, "exec"), g)
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    names = [node.name for node in tree.body
             if isinstance(node, ast.FunctionDef) and node.name in viper_names]
    calls = dict.fromkeys(names, 0)
    for fname in names:
        g[fname] = _counting(g[fname], fname, calls)
    mod.VIPER_CALLS = calls  # every viper function must be exercised by the bound tests
    return mod, stats


def _counting(fn, name, calls):
    def wrapper(*args):
        calls[name] += 1
        return fn(*args)
    return wrapper
