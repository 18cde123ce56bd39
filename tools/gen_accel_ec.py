# Generates the unrolled viper bodies of firmware/microp2p/crypto/accel_ec.py (_run: row-scanning MUL/SQR and
# the other ops), spliced in place between their markers:  python3 tools/gen_accel_ec.py firmware/microp2p/crypto/accel_ec.py
# tests/host/test_gen_accel_ec.py keeps the committed module equal to what this writes.
import sys, re

M = "0x1FFF"


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
    L.append("%sr = (r >> 13) * 608 + t0" % ind)
    L.append("%spd[0] = r & %s" % (ind, M))
    L.append("%sr = (r >> 13) + t1" % ind)
    L.append("%spd[1] = r & %s" % (ind, M))
    L.append("%spd[2] = pd[2] + (r >> 13)" % ind)
    return L


def linear(ind, expr):
    """20-limb carried op: expr(k) is limb k's new value before the carry."""
    L = ["%sr = %s" % (ind, expr(0)), "%st0 = r & %s" % (ind, M)]
    for k in range(1, 20):
        L.append("%sr = (r >> 13) + %s" % (ind, expr(k)))
        L.append(("%st1 = r & %s" if k == 1 else "%spd[" + str(k) + "] = r & %s") % (ind, M))
    L.append("%sr = (r >> 13) * 608 + t0" % ind)
    L.append("%spd[0] = r & %s" % (ind, M))
    L.append("%sr = (r >> 13) + t1" % ind)
    L.append("%spd[1] = r & %s" % (ind, M))
    L.append("%spd[2] = pd[2] + (r >> 13)" % ind)
    return L


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
    for o, c, t in ((0, "r", "t"), (20, "v", "t")):
        L.append("%s%s = (%s >> 13) * 608 + t%d" % (ind, c, c, o))
        L.append("%spd[%d] = %s & %s" % (ind, o, c, M))
        L.append("%s%s = (%s >> 13) + t%d" % (ind, c, c, o + 1))
        L.append("%spd[%d] = %s & %s" % (ind, o + 1, c, M))
        L.append("%spd[%d] = pd[%d] + (%s >> 13)" % (ind, o + 2, o + 2, c))
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
        L.append("%s%s = (%s >> 13) * 608 + t%d" % (ind, c, c, o))
        L.append("%spd[%d] = %s & %s" % (ind, o, c, M))
        L.append("%s%s = (%s >> 13) + t%d" % (ind, c, c, o + 1))
        L.append("%spd[%d] = %s & %s" % (ind, o + 1, c, M))
        L.append("%spd[%d] = pd[%d] + (%s >> 13)" % (ind, o + 2, o + 2, c))
    return L


CSWAP = '''            # ladder swap: slots d, d+1 <-> a, a+1 when bit u-1 of the scalar differs from the
            # previous bit (u = bits left, slot b: u, previous bit, the 32 scalar bytes); at u = 0
            # (after the last step) by the previous bit alone. Masked: no secret branch or index.
            x = 0
            r = pb[0]
            if r > 0:
                r -= 1
                x = (pb[2 + (r >> 3)] >> (r & 7)) & 1
            y = 0 - (x ^ pb[1])
            pb[1] = x
            pb = pa
            r = 0
            while r < 10:  # 4 words a pass, pd and pb moving on by 16 bytes
                x = (pd[0] ^ pb[0]) & y
                pd[0] = pd[0] ^ x
                pb[0] = pb[0] ^ x
                x = (pd[1] ^ pb[1]) & y
                pd[1] = pd[1] ^ x
                pb[1] = pb[1] ^ x
                x = (pd[2] ^ pb[2]) & y
                pd[2] = pd[2] ^ x
                pb[2] = pb[2] ^ x
                x = (pd[3] ^ pb[3]) & y
                pd[3] = pd[3] ^ x
                pb[3] = pb[3] ^ x
                pd = ptr32(uint(pd) + 16)
                pb = ptr32(uint(pb) + 16)
                r += 1
'''
LOOP = '''            # loop: u = u - 1 in slot b (d = 0, never below 0; d = 1 leaves u), then if u > 0
            # jump to op number a
            r = pb[0]
            if prog[pc - 3] == 0 and r > 0:
                r -= 1
                pb[0] = r
            if r > 0:
                pc = prog[pc - 2] * 4
'''
SKIPZ = '''            # verify: skip d ops when the wNAF digits selected by a (bit 0: B's, bit 1: A's) in word
            # u of slot b are all 0 (stored as 16)
            r = pb[pb[0]]
            if ((x & 1) == 0 or (r & 0xFF) == 16) and ((x & 2) == 0 or (r >> 8) == 16):
                pc += prog[pc - 3] * 4
'''
SEL = '''            # table reads for Ed25519 (state slot b: u, then the digits of the scalars):
            # op 11 (verify, public digits, variable time): slots d.. = e * B (a = 0: affine, 60
            # words, tab[2160..]) or e * (-A) (a = 1: cached, 80 words, tab[2640..]) for the odd
            # wNAF digit e (+ 16) in byte a of word u of slot b; op 12 (signing, secret digit e =
            # digit 16a + u - 1 of the one scalar): slots d..d+2 = e * T_a, all nine entries read
            # and masked. The halfword
            # limbs are read in pairs, as 32-bit words (all targets are little-endian; entries
            # start at even halfword offsets).
            x = prog[pc - 2]
            if op == 11:
                y = ((pb[pb[0]] >> (x << 3)) & 0xFF) - 16
                z = 0
                if y < 0:
                    y = 0 - y
                    z = 0 - 1
                x2 = (y >> 1) * 60 + 2160
                x3 = 30
                if x == 1:
                    x2 = (y >> 1) * 80 + 2640
                    x3 = 40
                pb = ptr32(uint(tab) + uint(x2 << 1))
                r = 0
                while r < x3:
                    y = pb[r]
                    pd[r + r] = y & 0xFFFF
                    pd[r + r + 1] = y >> 16
                    r += 1
            else:
                y = pb[x * 16 + pb[0] + 1] - 8
                z = 0 - ((y >> 8) & 1)
                y = (y ^ z) - z
                # entry e of table x: 60 halfwords = 30 words at tab + 1080x + 120e bytes, OR-ed
                # into t0..t29 under the mask r = -(e == |digit|)
                pb = ptr32(uint(tab) + uint(x * 1080))
                r = 0 - (((y - 1) >> 8) & 1)
                t0 = pb[0] & r
                t1 = pb[1] & r
                t2 = pb[2] & r
                t3 = pb[3] & r
                t4 = pb[4] & r
                t5 = pb[5] & r
                t6 = pb[6] & r
                t7 = pb[7] & r
                t8 = pb[8] & r
                t9 = pb[9] & r
                t10 = pb[10] & r
                t11 = pb[11] & r
                t12 = pb[12] & r
                t13 = pb[13] & r
                t14 = pb[14] & r
                t15 = pb[15] & r
                t16 = pb[16] & r
                t17 = pb[17] & r
                t18 = pb[18] & r
                t19 = pb[19] & r
                t20 = pb[20] & r
                t21 = pb[21] & r
                t22 = pb[22] & r
                t23 = pb[23] & r
                t24 = pb[24] & r
                t25 = pb[25] & r
                t26 = pb[26] & r
                t27 = pb[27] & r
                t28 = pb[28] & r
                t29 = pb[29] & r
                x3 = 1
                while x3 < 9:
                    pb = ptr32(uint(pb) + 120)
                    r = 0 - ((((x3 ^ y) - 1) >> 8) & 1)
                    t0 = (pb[0] & r) | t0
                    t1 = (pb[1] & r) | t1
                    t2 = (pb[2] & r) | t2
                    t3 = (pb[3] & r) | t3
                    t4 = (pb[4] & r) | t4
                    t5 = (pb[5] & r) | t5
                    t6 = (pb[6] & r) | t6
                    t7 = (pb[7] & r) | t7
                    t8 = (pb[8] & r) | t8
                    t9 = (pb[9] & r) | t9
                    t10 = (pb[10] & r) | t10
                    t11 = (pb[11] & r) | t11
                    t12 = (pb[12] & r) | t12
                    t13 = (pb[13] & r) | t13
                    t14 = (pb[14] & r) | t14
                    t15 = (pb[15] & r) | t15
                    t16 = (pb[16] & r) | t16
                    t17 = (pb[17] & r) | t17
                    t18 = (pb[18] & r) | t18
                    t19 = (pb[19] & r) | t19
                    t20 = (pb[20] & r) | t20
                    t21 = (pb[21] & r) | t21
                    t22 = (pb[22] & r) | t22
                    t23 = (pb[23] & r) | t23
                    t24 = (pb[24] & r) | t24
                    t25 = (pb[25] & r) | t25
                    t26 = (pb[26] & r) | t26
                    t27 = (pb[27] & r) | t27
                    t28 = (pb[28] & r) | t28
                    t29 = (pb[29] & r) | t29
                    x3 += 1
                pd[0] = t0 & 0xFFFF
                pd[1] = t0 >> 16
                pd[2] = t1 & 0xFFFF
                pd[3] = t1 >> 16
                pd[4] = t2 & 0xFFFF
                pd[5] = t2 >> 16
                pd[6] = t3 & 0xFFFF
                pd[7] = t3 >> 16
                pd[8] = t4 & 0xFFFF
                pd[9] = t4 >> 16
                pd[10] = t5 & 0xFFFF
                pd[11] = t5 >> 16
                pd[12] = t6 & 0xFFFF
                pd[13] = t6 >> 16
                pd[14] = t7 & 0xFFFF
                pd[15] = t7 >> 16
                pd[16] = t8 & 0xFFFF
                pd[17] = t8 >> 16
                pd[18] = t9 & 0xFFFF
                pd[19] = t9 >> 16
                pd[20] = t10 & 0xFFFF
                pd[21] = t10 >> 16
                pd[22] = t11 & 0xFFFF
                pd[23] = t11 >> 16
                pd[24] = t12 & 0xFFFF
                pd[25] = t12 >> 16
                pd[26] = t13 & 0xFFFF
                pd[27] = t13 >> 16
                pd[28] = t14 & 0xFFFF
                pd[29] = t14 >> 16
                pd[30] = t15 & 0xFFFF
                pd[31] = t15 >> 16
                pd[32] = t16 & 0xFFFF
                pd[33] = t16 >> 16
                pd[34] = t17 & 0xFFFF
                pd[35] = t17 >> 16
                pd[36] = t18 & 0xFFFF
                pd[37] = t18 >> 16
                pd[38] = t19 & 0xFFFF
                pd[39] = t19 >> 16
                pd[40] = t20 & 0xFFFF
                pd[41] = t20 >> 16
                pd[42] = t21 & 0xFFFF
                pd[43] = t21 >> 16
                pd[44] = t22 & 0xFFFF
                pd[45] = t22 >> 16
                pd[46] = t23 & 0xFFFF
                pd[47] = t23 >> 16
                pd[48] = t24 & 0xFFFF
                pd[49] = t24 >> 16
                pd[50] = t25 & 0xFFFF
                pd[51] = t25 >> 16
                pd[52] = t26 & 0xFFFF
                pd[53] = t26 >> 16
                pd[54] = t27 & 0xFFFF
                pd[55] = t27 >> 16
                pd[56] = t28 & 0xFFFF
                pd[57] = t28 >> 16
                pd[58] = t29 & 0xFFFF
                pd[59] = t29 >> 16
            if op == 12 or z != 0:
                # negate (mask z): swap the first two coordinates, third = 64p - third, carried
                r = 0
                while r < 20:
                    x = (pd[r] ^ pd[r + 20]) & z
                    pd[r] = pd[r] ^ x
                    pd[r + 20] = pd[r + 20] ^ x
                    r += 1
                v = 15168 - pd[40]
                t0 = v & 0x1FFF
                v = (v >> 13) + 16382 - pd[41]
                t1 = v & 0x1FFF
                v = (v >> 13) + 16382 - pd[42]
                t2 = v & 0x1FFF
                r = 43
                while r < 60:
                    v = (v >> 13) + 16382 - pd[r]
                    x = pd[r]
                    pd[r] = x ^ ((x ^ (v & 0x1FFF)) & z)
                    r += 1
                v = (v >> 13) * 608 + t0
                t0 = v & 0x1FFF
                v = (v >> 13) + t1
                t1 = v & 0x1FFF
                t2 = t2 + (v >> 13)
                pd[40] = pd[40] ^ ((pd[40] ^ t0) & z)
                pd[41] = pd[41] ^ ((pd[41] ^ t1) & z)
                pd[42] = pd[42] ^ ((pd[42] ^ t2) & z)
'''

HEAD = '''@micropython.viper
def _run(pb: ptr32, r: int, prog: ptr8, n: int, tab: ptr16):
    # Called as _run(w, 0, prog, len(prog), _tabs). pb and r are the function's first two
    # locals, which every port's viper emitter keeps in registers (the rest live in the stack
    # frame): the multiply rows below read limbs through pb and multiply by r, so each
    # product-accumulate is one limb load, one multiply and one load/add/store of its column.
    base = uint(pb)
    pc = 0
    while pc < n:
        op = prog[pc]
        pd = ptr32(base + uint(prog[pc + 1] * 80))
        pa = ptr32(base + uint(prog[pc + 2] * 80))
        pb = ptr32(base + uint(prog[pc + 3] * 80))
        pc += 4
        if op == 0:
            # a*b by rows: column t(i+j) += a_i * b_j, every column < 20 * LIMB_MAX**2 < 2**31
'''
SQR_HEAD = '''        elif op <= 2:
            # a**2 (SQRN: b times): column t(2i) += a_i**2, t(i+j) += (2 a_i) a_j for j > i
            rep = 1
            if op == 2:
                rep = prog[pc - 1]
            pb = pa
            while rep > 0:
'''
RED_COMMENT = [
    "# column 20 + j = h * 2**13 + l folds in times 2**260 mod p = 608: l into limb j,",
    "# h into limb j + 1 (each sum < 1.5e9), while carrying limbs 0..19; the carry out of",
    "# limb 19 (at 2**260) goes back times 608 into limbs 0..2 (t0, t1 hold limbs 0, 1).",
]


def build():
    ind = "            "
    out = HEAD.rstrip("\n").split("\n")
    out += mul_rows(ind)
    out += [ind + c for c in RED_COMMENT]
    out += reduce_cols(ind)
    out += SQR_HEAD.rstrip("\n").split("\n")
    ind2 = ind + "    "
    out += sqr_rows(ind2)
    out += reduce_cols(ind2)
    out += [ind2 + "pb = pd", ind2 + "rep -= 1"]
    out.append("        elif op == 3:")
    out += linear(ind, lambda k: "pa[%d] + pb[%d]" % (k, k))
    out.append("        elif op == 4:")
    out.append(ind + "# a + 64p - b: 64p = 2**261 - 1216 has limbs 15168, 16382 x 19, each above LIMB_MAX")
    out += linear(ind, lambda k: "pa[%d] + %d - pb[%d]" % (k, 15168 if k == 0 else 16382, k))
    out.append("        elif op == 5:")
    out.append(ind + "# a + 121665 * b (the ladder's AA + a24 * E)")
    out += linear(ind, lambda k: "pb[%d] * 121665 + pa[%d]" % (k, k))
    out.append("        elif op == 6:")
    out += [ind + "r = 0", ind + "while r < 20:", ind + "    pd[r] = pa[r]",
            ind + "    pd[r + 1] = pa[r + 1]", ind + "    pd[r + 2] = pa[r + 2]",
            ind + "    pd[r + 3] = pa[r + 3]", ind + "    r += 4"]
    out.append("        elif op == 7:")
    out.append(ind + "# slot d = a + b and slot d + 1 = a + 64p - b, each carried (two chains: r, v)")
    out += addsub(ind)
    out.append("        elif op == 8:")
    out += CSWAP.rstrip("\n").split("\n")
    out.append("        elif op == 9:")
    out += LOOP.rstrip("\n").split("\n")
    out.append("        elif op == 13:")
    out.append("            x = prog[pc - 2]")
    out += SKIPZ.rstrip("\n").split("\n")
    out.append("        elif op >= 11:")
    out += SEL.rstrip("\n").split("\n")
    out.append("        else:")
    out.append(ind + "# ladder step input: slots d..d+3 = x2 + z2, x2 - z2, x3 + z3, x3 - z3 of")
    out.append(ind + "# slots a..a+3 = x2 z2 x3 z3 after the masked swap CSWAP would make (the slots")
    out.append(ind + "# are not swapped: the step overwrites all four); state in slot b as for CSWAP")
    out += ladder_in(ind)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    path = sys.argv[1]
    src = open(path).read()
    start = src.index("@micropython.viper\ndef _run(")
    end = src.index("@micropython.viper", start + 10)
    src = src[:start] + build() + "\n\n" + src[end:]
    open(path, "w").write(src)
