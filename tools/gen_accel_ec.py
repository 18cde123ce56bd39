# Writes the unrolled viper runs of firmware/microp2p/crypto/accel_ec.py's _run (the MUL/SQR rows, the
# reductions, the carried add/sub/a24 chains, ADDSUB and LADDER_IN), each between its marker comments in the
# module, at the markers' indentation:
#     # <generated: NAME>
#     ...
#     # </generated>
# Only the lines between markers are rewritten; every other line (the op dispatch, comments, CSWAP, LOOP,
# the table reads) is hand-written and lives in the module alone. Every run below must have exactly one
# marker pair and every marker pair a run, else this fails without writing. Rerunning changes nothing.
#     python3 tools/gen_accel_ec.py firmware/microp2p/crypto/accel_ec.py
# tests/host/test_gen_accel_ec.py keeps the committed module equal to what this writes.
import re
import sys

M = "0x1FFF"


def wrap(ind, c, o):
    """The carry out of limb 19 (at 2**260, in c) back times 608 into limbs 0..2; t(o), t(o+1) hold limbs 0, 1."""
    return ["%s%s = (%s >> 13) * 608 + t%d" % (ind, c, c, o),
            "%spd[%d] = %s & %s" % (ind, o, c, M),
            "%s%s = (%s >> 13) + t%d" % (ind, c, c, o + 1),
            "%spd[%d] = %s & %s" % (ind, o + 1, c, M),
            "%spd[%d] = pd[%d] + (%s >> 13)" % (ind, o + 2, o + 2, c)]


def mul_rows(ind):
    L = []
    for i in range(20):
        L.append("%sr = pa[%d]" % (ind, i))
        for j in range(20):
            k = i + j
            if i == 0 or j == 19:
                L.append("%st%d = pb[%d] * r" % (ind, k, j))
            else:
                L.append("%st%d = pb[%d] * r + t%d" % (ind, k, j, k))
    return L


def sqr_rows(ind):
    L = []
    seen = set()

    def acc(k, j):
        if k in seen:
            L.append("%st%d = pb[%d] * r + t%d" % (ind, k, j, k))
        else:
            seen.add(k)
            L.append("%st%d = pb[%d] * r" % (ind, k, j))
    for i in range(20):
        L.append("%sr = pb[%d]" % (ind, i))
        acc(2 * i, i)
        if i < 19:
            L.append("%sr = r + r" % ind)
            for j in range(i + 1, 20):
                acc(i + j, j)
    return L


def reduce_cols(ind):
    L = []
    L.append("%sr = (t20 & %s) * 608 + t0" % (ind, M))
    L.append("%st0 = r & %s" % (ind, M))
    for k in range(1, 20):
        if k < 19:
            L.append("%sr = (r >> 13) + ((t%d & %s) + (t%d >> 13)) * 608 + t%d"
                     % (ind, 20 + k, M, 19 + k, k))
        else:
            L.append("%sr = (r >> 13) + (t38 >> 13) * 608 + t19" % ind)
        if k < 2:
            L.append("%st%d = r & %s" % (ind, k, M))
        else:
            L.append("%spd[%d] = r & %s" % (ind, k, M))
    return L + wrap(ind, "r", 0)


def linear(ind, expr):
    """20-limb carried op: expr(k) is limb k's new value before the carry."""
    L = ["%sr = %s" % (ind, expr(0)), "%st0 = r & %s" % (ind, M)]
    for k in range(1, 20):
        L.append("%sr = (r >> 13) + %s" % (ind, expr(k)))
        L.append(("%st1 = r & %s" if k == 1 else "%spd[" + str(k) + "] = r & %s") % (ind, M))
    return L + wrap(ind, "r", 0)


def addsub(ind):
    L = []
    for k in range(20):
        L.append("%sx = pa[%d]" % (ind, k))
        L.append("%sy = pb[%d]" % (ind, k))
        kk = 15168 if k == 0 else 16382
        if k == 0:
            L.append("%sr = x + y" % ind)
            L.append("%sv = x + %d - y" % (ind, kk))
        else:
            L.append("%sr = (r >> 13) + x + y" % ind)
            L.append("%sv = (v >> 13) + x + %d - y" % (ind, kk))
        if k < 2:
            L.append("%st%d = r & %s" % (ind, k, M))
            L.append("%st%d = v & %s" % (ind, 20 + k, M))
        else:
            L.append("%spd[%d] = r & %s" % (ind, k, M))
            L.append("%spd[%d] = v & %s" % (ind, 20 + k, M))
    for c, o in (("r", 0), ("v", 20)):
        L += wrap(ind, c, o)
    return L


def ladder_in(ind):
    L = ["%sx = 0" % ind, "%sr = pb[0]" % ind, "%sif r > 0:" % ind, "%s    r -= 1" % ind,
         "%s    x = (pb[2 + (r >> 3)] >> (r & 7)) & 1" % ind,
         "%sy = 0 - (x ^ pb[1])" % ind, "%spb[1] = x" % ind, "%spb = pa" % ind]
    ch = (("r", 0, "+"), ("v", 20, "-"), ("q", 40, "+"), ("s", 60, "-"))
    for k in range(20):
        kk = 15168 if k == 0 else 16382
        L.append("%sx2 = pb[%d]" % (ind, k))
        L.append("%sx3 = pb[%d]" % (ind, 40 + k))
        L.append("%sx = (x2 ^ x3) & y" % ind)
        L.append("%sx2 = x2 ^ x" % ind)
        L.append("%sx3 = x3 ^ x" % ind)
        L.append("%sz2 = pb[%d]" % (ind, 20 + k))
        L.append("%sz3 = pb[%d]" % (ind, 60 + k))
        L.append("%sx = (z2 ^ z3) & y" % ind)
        L.append("%sz2 = z2 ^ x" % ind)
        L.append("%sz3 = z3 ^ x" % ind)
        for c, o, sg in ch:
            a, b = ("x2", "z2") if o < 40 else ("x3", "z3")
            e = ("%s + %s" % (a, b)) if sg == "+" else ("%s + %d - %s" % (a, kk, b))
            if k == 0:
                L.append("%s%s = %s" % (ind, c, e))
            else:
                L.append("%s%s = (%s >> 13) + %s" % (ind, c, c, e))
            if k < 2:
                L.append("%st%d = %s & %s" % (ind, o + k, c, M))
            else:
                L.append("%spd[%d] = %s & %s" % (ind, o + k, c, M))
    for c, o, sg in ch:
        L += wrap(ind, c, o)
    return L


RUNS = {
    "mul rows": mul_rows,
    "mul reduce": reduce_cols,
    "sqr rows": sqr_rows,
    "sqr reduce": reduce_cols,
    "add": lambda ind: linear(ind, lambda k: "pa[%d] + pb[%d]" % (k, k)),
    "sub": lambda ind: linear(ind, lambda k: "pa[%d] + %d - pb[%d]" % (k, 15168 if k == 0 else 16382, k)),
    "mul a24 add": lambda ind: linear(ind, lambda k: "pb[%d] * 121665 + pa[%d]" % (k, k)),
    "addsub": addsub,
    "ladder in": ladder_in,
}

OPEN = re.compile(r"^( *)# <generated: ([^>]+)>$")
CLOSE = "# </generated>"


def splice(src):
    """src with the lines between each marker pair replaced by its run; ValueError on any bad marker."""
    lines = src.split("\n")
    out = []
    done = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        m = OPEN.match(line)
        if m is None:
            if line.strip() == CLOSE:
                raise ValueError("line %d: %r without its opening marker" % (i, CLOSE))
            continue
        ind, name = m.groups()
        if name not in RUNS:
            raise ValueError("line %d: unknown generated run %r" % (i, name))
        if name in done:
            raise ValueError("line %d: generated run %r marked twice" % (i, name))
        done.add(name)
        while i < len(lines) and lines[i] != ind + CLOSE:
            if OPEN.match(lines[i]) or lines[i].strip() == CLOSE:
                raise ValueError("line %d: marker inside generated run %r" % (i + 1, name))
            i += 1
        if i == len(lines):
            raise ValueError("generated run %r: no %r at its indentation" % (name, ind + CLOSE))
        out += RUNS[name](ind)
        out.append(lines[i])
        i += 1
    missing = sorted(set(RUNS) - done)
    if missing:
        raise ValueError("no markers for the generated runs %s" % ", ".join(missing))
    return "\n".join(out)


if __name__ == "__main__":
    path = sys.argv[1]
    with open(path) as f:
        src = f.read()
    try:
        new = splice(src)
    except ValueError as e:
        sys.exit("%s: %s" % (path, e))
    if new != src:
        with open(path, "w") as f:
            f.write(new)
