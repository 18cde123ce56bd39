# Viper field arithmetic mod p = 2**255 - 19 and, on it, X25519 (RFC 7748) and Ed25519 point
# arithmetic (RFC 8032) for MicroPython: no big-int temporaries, every field element lives in a
# preallocated buffer. pure.py imports this only when `micropython` exists and uses it only when
# self_test() passes at import; a port without the viper emitter fails to compile the module and
# pure.py keeps the big-int code (curve25519.py).
#
# Representation: a field element is 20 limbs of 13 bits (260 bits) in 32-bit words, "carried"
# when every limb is <= LIMB_MAX (2**13 + 2**7). Every op below leaves its result carried, so:
#   - a product column sums at most 20 * LIMB_MAX**2 < 1.39e9, and folding the high columns
#     (times 2**260 mod p = 608, after splitting each at bit 13) adds < 1.1e8,
#   - a + 121665 * b < 1.02e9, and a - b is computed as a + 64p - b with 64p's limbs >= 15168 >
#     LIMB_MAX,
# i.e. every intermediate fits a signed 32-bit viper word (ESP32, RP2040): products never need a
# high half. tests/host/test_viper_bounds.py runs these same function bodies on CPython with every
# intermediate checked against that bound. No literal >= 2**30 appears in viper code (a compile
# error on 32-bit ports).
#
# The field ops are run by one viper interpreter, _run(w, 0, prog, nbytes, _tabs), over slots of
# the work buffer w (slot s = words 20s .. 20s+19); a program is bytes of (op, dst, a, b)
# quadruples. One call per X25519 (LADDER_IN, LOOP, CSWAP), per fixed-base multiplication (SELN,
# LOOP) and per verify's Straus loop (SEL, LOOP): the loops run inside. Products are summed by
# rows (limb a_i, held in a register, times every b_j) into 39 column locals, then reduced in one
# carry pass: the viper emitter keeps only a function's first two locals in registers, so this
# layout needs about half the loads and stores of summing by columns. The body of _run is
# written out in full (unrolled rows and carry chains): loops would cost more than the products.
#
# Buffers are module-level scratch, shared by the (synchronous) calls: safe under asyncio, not
# across threads. Secret-dependent slots are wiped before each public function returns.
# Timing: the ladder's swaps (LADDER_IN, CSWAP) and the signing table reads (SELN) are masked
# (no secret-dependent branch or index); the interpreter's own work does not depend on values.
# Verify's reads (SEL) are variable-time: its inputs are public. MicroPython makes no stronger
# promise than that.
from array import array

import micropython

NLIMBS = 20
LIMB_MAX = 8320
NSLOTS = 56
P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493

# op codes of _run
MUL = 0
SQR = 1
SQRN = 2  # dst = a squared b times (b is a count, not a slot)
ADD = 3
SUB = 4
A24 = 5  # dst = a + 121665 * b
COPY = 6
ADDSUB = 7  # dst = a + b, dst + 1 = a - b
CSWAP = 8  # X25519 ladder: masked swap of slots (dst, dst+1) and (a, a+1); state in slot b
LOOP = 9  # u -= 1 (word 0 of slot b); while u > 0 jump to op number a
LADDER_IN = 10  # dst..dst+3 = x2 +- z2, x3 +- z3 of slots a..a+3 as swapped by the state in b
SEL = 11  # verify: dst.. = wNAF digit times B (a = 0) or -A (a = 1), digits in slot b
SKIPZ = 13  # verify: skip dst ops if the digits chosen by a (1: B's, 2: A's, 3: both) are 0
SELN = 12  # signing: dst..dst+2 = digit times T_a, masked, digits in slot b

_w = array("I", [0] * (NSLOTS * NLIMBS))
# tables read by _run (ops 11, 12), in halfwords: 0..2159: affine (y-x, y+x, 2dxy) of 0..8
# times T_t = 2**(64t) B for t = 0..3 (60 words each); 2160..2639: the same of 1, 3, .., 15
# times B (these two built once); 2640..3279: verify's cached 1, 3, .., 15 times -A (80 words
# each, public data)
_tabs = bytearray(2 * (4 * 9 * 60 + 8 * 60 + 8 * 80))  # read as halfwords (ptr16)
_BODD = 4 * 9 * 60
_ATAB = _BODD + 8 * 60
_bytes = bytearray(32)


@micropython.viper
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
            # <generated: mul rows>
            r = pa[0]
            t0 = pb[0] * r
            t1 = pb[1] * r
            t2 = pb[2] * r
            t3 = pb[3] * r
            t4 = pb[4] * r
            t5 = pb[5] * r
            t6 = pb[6] * r
            t7 = pb[7] * r
            t8 = pb[8] * r
            t9 = pb[9] * r
            t10 = pb[10] * r
            t11 = pb[11] * r
            t12 = pb[12] * r
            t13 = pb[13] * r
            t14 = pb[14] * r
            t15 = pb[15] * r
            t16 = pb[16] * r
            t17 = pb[17] * r
            t18 = pb[18] * r
            t19 = pb[19] * r
            r = pa[1]
            t1 = pb[0] * r + t1
            t2 = pb[1] * r + t2
            t3 = pb[2] * r + t3
            t4 = pb[3] * r + t4
            t5 = pb[4] * r + t5
            t6 = pb[5] * r + t6
            t7 = pb[6] * r + t7
            t8 = pb[7] * r + t8
            t9 = pb[8] * r + t9
            t10 = pb[9] * r + t10
            t11 = pb[10] * r + t11
            t12 = pb[11] * r + t12
            t13 = pb[12] * r + t13
            t14 = pb[13] * r + t14
            t15 = pb[14] * r + t15
            t16 = pb[15] * r + t16
            t17 = pb[16] * r + t17
            t18 = pb[17] * r + t18
            t19 = pb[18] * r + t19
            t20 = pb[19] * r
            r = pa[2]
            t2 = pb[0] * r + t2
            t3 = pb[1] * r + t3
            t4 = pb[2] * r + t4
            t5 = pb[3] * r + t5
            t6 = pb[4] * r + t6
            t7 = pb[5] * r + t7
            t8 = pb[6] * r + t8
            t9 = pb[7] * r + t9
            t10 = pb[8] * r + t10
            t11 = pb[9] * r + t11
            t12 = pb[10] * r + t12
            t13 = pb[11] * r + t13
            t14 = pb[12] * r + t14
            t15 = pb[13] * r + t15
            t16 = pb[14] * r + t16
            t17 = pb[15] * r + t17
            t18 = pb[16] * r + t18
            t19 = pb[17] * r + t19
            t20 = pb[18] * r + t20
            t21 = pb[19] * r
            r = pa[3]
            t3 = pb[0] * r + t3
            t4 = pb[1] * r + t4
            t5 = pb[2] * r + t5
            t6 = pb[3] * r + t6
            t7 = pb[4] * r + t7
            t8 = pb[5] * r + t8
            t9 = pb[6] * r + t9
            t10 = pb[7] * r + t10
            t11 = pb[8] * r + t11
            t12 = pb[9] * r + t12
            t13 = pb[10] * r + t13
            t14 = pb[11] * r + t14
            t15 = pb[12] * r + t15
            t16 = pb[13] * r + t16
            t17 = pb[14] * r + t17
            t18 = pb[15] * r + t18
            t19 = pb[16] * r + t19
            t20 = pb[17] * r + t20
            t21 = pb[18] * r + t21
            t22 = pb[19] * r
            r = pa[4]
            t4 = pb[0] * r + t4
            t5 = pb[1] * r + t5
            t6 = pb[2] * r + t6
            t7 = pb[3] * r + t7
            t8 = pb[4] * r + t8
            t9 = pb[5] * r + t9
            t10 = pb[6] * r + t10
            t11 = pb[7] * r + t11
            t12 = pb[8] * r + t12
            t13 = pb[9] * r + t13
            t14 = pb[10] * r + t14
            t15 = pb[11] * r + t15
            t16 = pb[12] * r + t16
            t17 = pb[13] * r + t17
            t18 = pb[14] * r + t18
            t19 = pb[15] * r + t19
            t20 = pb[16] * r + t20
            t21 = pb[17] * r + t21
            t22 = pb[18] * r + t22
            t23 = pb[19] * r
            r = pa[5]
            t5 = pb[0] * r + t5
            t6 = pb[1] * r + t6
            t7 = pb[2] * r + t7
            t8 = pb[3] * r + t8
            t9 = pb[4] * r + t9
            t10 = pb[5] * r + t10
            t11 = pb[6] * r + t11
            t12 = pb[7] * r + t12
            t13 = pb[8] * r + t13
            t14 = pb[9] * r + t14
            t15 = pb[10] * r + t15
            t16 = pb[11] * r + t16
            t17 = pb[12] * r + t17
            t18 = pb[13] * r + t18
            t19 = pb[14] * r + t19
            t20 = pb[15] * r + t20
            t21 = pb[16] * r + t21
            t22 = pb[17] * r + t22
            t23 = pb[18] * r + t23
            t24 = pb[19] * r
            r = pa[6]
            t6 = pb[0] * r + t6
            t7 = pb[1] * r + t7
            t8 = pb[2] * r + t8
            t9 = pb[3] * r + t9
            t10 = pb[4] * r + t10
            t11 = pb[5] * r + t11
            t12 = pb[6] * r + t12
            t13 = pb[7] * r + t13
            t14 = pb[8] * r + t14
            t15 = pb[9] * r + t15
            t16 = pb[10] * r + t16
            t17 = pb[11] * r + t17
            t18 = pb[12] * r + t18
            t19 = pb[13] * r + t19
            t20 = pb[14] * r + t20
            t21 = pb[15] * r + t21
            t22 = pb[16] * r + t22
            t23 = pb[17] * r + t23
            t24 = pb[18] * r + t24
            t25 = pb[19] * r
            r = pa[7]
            t7 = pb[0] * r + t7
            t8 = pb[1] * r + t8
            t9 = pb[2] * r + t9
            t10 = pb[3] * r + t10
            t11 = pb[4] * r + t11
            t12 = pb[5] * r + t12
            t13 = pb[6] * r + t13
            t14 = pb[7] * r + t14
            t15 = pb[8] * r + t15
            t16 = pb[9] * r + t16
            t17 = pb[10] * r + t17
            t18 = pb[11] * r + t18
            t19 = pb[12] * r + t19
            t20 = pb[13] * r + t20
            t21 = pb[14] * r + t21
            t22 = pb[15] * r + t22
            t23 = pb[16] * r + t23
            t24 = pb[17] * r + t24
            t25 = pb[18] * r + t25
            t26 = pb[19] * r
            r = pa[8]
            t8 = pb[0] * r + t8
            t9 = pb[1] * r + t9
            t10 = pb[2] * r + t10
            t11 = pb[3] * r + t11
            t12 = pb[4] * r + t12
            t13 = pb[5] * r + t13
            t14 = pb[6] * r + t14
            t15 = pb[7] * r + t15
            t16 = pb[8] * r + t16
            t17 = pb[9] * r + t17
            t18 = pb[10] * r + t18
            t19 = pb[11] * r + t19
            t20 = pb[12] * r + t20
            t21 = pb[13] * r + t21
            t22 = pb[14] * r + t22
            t23 = pb[15] * r + t23
            t24 = pb[16] * r + t24
            t25 = pb[17] * r + t25
            t26 = pb[18] * r + t26
            t27 = pb[19] * r
            r = pa[9]
            t9 = pb[0] * r + t9
            t10 = pb[1] * r + t10
            t11 = pb[2] * r + t11
            t12 = pb[3] * r + t12
            t13 = pb[4] * r + t13
            t14 = pb[5] * r + t14
            t15 = pb[6] * r + t15
            t16 = pb[7] * r + t16
            t17 = pb[8] * r + t17
            t18 = pb[9] * r + t18
            t19 = pb[10] * r + t19
            t20 = pb[11] * r + t20
            t21 = pb[12] * r + t21
            t22 = pb[13] * r + t22
            t23 = pb[14] * r + t23
            t24 = pb[15] * r + t24
            t25 = pb[16] * r + t25
            t26 = pb[17] * r + t26
            t27 = pb[18] * r + t27
            t28 = pb[19] * r
            r = pa[10]
            t10 = pb[0] * r + t10
            t11 = pb[1] * r + t11
            t12 = pb[2] * r + t12
            t13 = pb[3] * r + t13
            t14 = pb[4] * r + t14
            t15 = pb[5] * r + t15
            t16 = pb[6] * r + t16
            t17 = pb[7] * r + t17
            t18 = pb[8] * r + t18
            t19 = pb[9] * r + t19
            t20 = pb[10] * r + t20
            t21 = pb[11] * r + t21
            t22 = pb[12] * r + t22
            t23 = pb[13] * r + t23
            t24 = pb[14] * r + t24
            t25 = pb[15] * r + t25
            t26 = pb[16] * r + t26
            t27 = pb[17] * r + t27
            t28 = pb[18] * r + t28
            t29 = pb[19] * r
            r = pa[11]
            t11 = pb[0] * r + t11
            t12 = pb[1] * r + t12
            t13 = pb[2] * r + t13
            t14 = pb[3] * r + t14
            t15 = pb[4] * r + t15
            t16 = pb[5] * r + t16
            t17 = pb[6] * r + t17
            t18 = pb[7] * r + t18
            t19 = pb[8] * r + t19
            t20 = pb[9] * r + t20
            t21 = pb[10] * r + t21
            t22 = pb[11] * r + t22
            t23 = pb[12] * r + t23
            t24 = pb[13] * r + t24
            t25 = pb[14] * r + t25
            t26 = pb[15] * r + t26
            t27 = pb[16] * r + t27
            t28 = pb[17] * r + t28
            t29 = pb[18] * r + t29
            t30 = pb[19] * r
            r = pa[12]
            t12 = pb[0] * r + t12
            t13 = pb[1] * r + t13
            t14 = pb[2] * r + t14
            t15 = pb[3] * r + t15
            t16 = pb[4] * r + t16
            t17 = pb[5] * r + t17
            t18 = pb[6] * r + t18
            t19 = pb[7] * r + t19
            t20 = pb[8] * r + t20
            t21 = pb[9] * r + t21
            t22 = pb[10] * r + t22
            t23 = pb[11] * r + t23
            t24 = pb[12] * r + t24
            t25 = pb[13] * r + t25
            t26 = pb[14] * r + t26
            t27 = pb[15] * r + t27
            t28 = pb[16] * r + t28
            t29 = pb[17] * r + t29
            t30 = pb[18] * r + t30
            t31 = pb[19] * r
            r = pa[13]
            t13 = pb[0] * r + t13
            t14 = pb[1] * r + t14
            t15 = pb[2] * r + t15
            t16 = pb[3] * r + t16
            t17 = pb[4] * r + t17
            t18 = pb[5] * r + t18
            t19 = pb[6] * r + t19
            t20 = pb[7] * r + t20
            t21 = pb[8] * r + t21
            t22 = pb[9] * r + t22
            t23 = pb[10] * r + t23
            t24 = pb[11] * r + t24
            t25 = pb[12] * r + t25
            t26 = pb[13] * r + t26
            t27 = pb[14] * r + t27
            t28 = pb[15] * r + t28
            t29 = pb[16] * r + t29
            t30 = pb[17] * r + t30
            t31 = pb[18] * r + t31
            t32 = pb[19] * r
            r = pa[14]
            t14 = pb[0] * r + t14
            t15 = pb[1] * r + t15
            t16 = pb[2] * r + t16
            t17 = pb[3] * r + t17
            t18 = pb[4] * r + t18
            t19 = pb[5] * r + t19
            t20 = pb[6] * r + t20
            t21 = pb[7] * r + t21
            t22 = pb[8] * r + t22
            t23 = pb[9] * r + t23
            t24 = pb[10] * r + t24
            t25 = pb[11] * r + t25
            t26 = pb[12] * r + t26
            t27 = pb[13] * r + t27
            t28 = pb[14] * r + t28
            t29 = pb[15] * r + t29
            t30 = pb[16] * r + t30
            t31 = pb[17] * r + t31
            t32 = pb[18] * r + t32
            t33 = pb[19] * r
            r = pa[15]
            t15 = pb[0] * r + t15
            t16 = pb[1] * r + t16
            t17 = pb[2] * r + t17
            t18 = pb[3] * r + t18
            t19 = pb[4] * r + t19
            t20 = pb[5] * r + t20
            t21 = pb[6] * r + t21
            t22 = pb[7] * r + t22
            t23 = pb[8] * r + t23
            t24 = pb[9] * r + t24
            t25 = pb[10] * r + t25
            t26 = pb[11] * r + t26
            t27 = pb[12] * r + t27
            t28 = pb[13] * r + t28
            t29 = pb[14] * r + t29
            t30 = pb[15] * r + t30
            t31 = pb[16] * r + t31
            t32 = pb[17] * r + t32
            t33 = pb[18] * r + t33
            t34 = pb[19] * r
            r = pa[16]
            t16 = pb[0] * r + t16
            t17 = pb[1] * r + t17
            t18 = pb[2] * r + t18
            t19 = pb[3] * r + t19
            t20 = pb[4] * r + t20
            t21 = pb[5] * r + t21
            t22 = pb[6] * r + t22
            t23 = pb[7] * r + t23
            t24 = pb[8] * r + t24
            t25 = pb[9] * r + t25
            t26 = pb[10] * r + t26
            t27 = pb[11] * r + t27
            t28 = pb[12] * r + t28
            t29 = pb[13] * r + t29
            t30 = pb[14] * r + t30
            t31 = pb[15] * r + t31
            t32 = pb[16] * r + t32
            t33 = pb[17] * r + t33
            t34 = pb[18] * r + t34
            t35 = pb[19] * r
            r = pa[17]
            t17 = pb[0] * r + t17
            t18 = pb[1] * r + t18
            t19 = pb[2] * r + t19
            t20 = pb[3] * r + t20
            t21 = pb[4] * r + t21
            t22 = pb[5] * r + t22
            t23 = pb[6] * r + t23
            t24 = pb[7] * r + t24
            t25 = pb[8] * r + t25
            t26 = pb[9] * r + t26
            t27 = pb[10] * r + t27
            t28 = pb[11] * r + t28
            t29 = pb[12] * r + t29
            t30 = pb[13] * r + t30
            t31 = pb[14] * r + t31
            t32 = pb[15] * r + t32
            t33 = pb[16] * r + t33
            t34 = pb[17] * r + t34
            t35 = pb[18] * r + t35
            t36 = pb[19] * r
            r = pa[18]
            t18 = pb[0] * r + t18
            t19 = pb[1] * r + t19
            t20 = pb[2] * r + t20
            t21 = pb[3] * r + t21
            t22 = pb[4] * r + t22
            t23 = pb[5] * r + t23
            t24 = pb[6] * r + t24
            t25 = pb[7] * r + t25
            t26 = pb[8] * r + t26
            t27 = pb[9] * r + t27
            t28 = pb[10] * r + t28
            t29 = pb[11] * r + t29
            t30 = pb[12] * r + t30
            t31 = pb[13] * r + t31
            t32 = pb[14] * r + t32
            t33 = pb[15] * r + t33
            t34 = pb[16] * r + t34
            t35 = pb[17] * r + t35
            t36 = pb[18] * r + t36
            t37 = pb[19] * r
            r = pa[19]
            t19 = pb[0] * r + t19
            t20 = pb[1] * r + t20
            t21 = pb[2] * r + t21
            t22 = pb[3] * r + t22
            t23 = pb[4] * r + t23
            t24 = pb[5] * r + t24
            t25 = pb[6] * r + t25
            t26 = pb[7] * r + t26
            t27 = pb[8] * r + t27
            t28 = pb[9] * r + t28
            t29 = pb[10] * r + t29
            t30 = pb[11] * r + t30
            t31 = pb[12] * r + t31
            t32 = pb[13] * r + t32
            t33 = pb[14] * r + t33
            t34 = pb[15] * r + t34
            t35 = pb[16] * r + t35
            t36 = pb[17] * r + t36
            t37 = pb[18] * r + t37
            t38 = pb[19] * r
            # </generated>
            # column 20 + j = h * 2**13 + l folds in times 2**260 mod p = 608: l into limb j,
            # h into limb j + 1 (each sum < 1.5e9), while carrying limbs 0..19; the carry out of
            # limb 19 (at 2**260) goes back times 608 into limbs 0..2 (t0, t1 hold limbs 0, 1).
            # <generated: mul reduce>
            r = (t20 & 0x1FFF) * 608 + t0
            t0 = r & 0x1FFF
            r = (r >> 13) + ((t21 & 0x1FFF) + (t20 >> 13)) * 608 + t1
            t1 = r & 0x1FFF
            r = (r >> 13) + ((t22 & 0x1FFF) + (t21 >> 13)) * 608 + t2
            pd[2] = r & 0x1FFF
            r = (r >> 13) + ((t23 & 0x1FFF) + (t22 >> 13)) * 608 + t3
            pd[3] = r & 0x1FFF
            r = (r >> 13) + ((t24 & 0x1FFF) + (t23 >> 13)) * 608 + t4
            pd[4] = r & 0x1FFF
            r = (r >> 13) + ((t25 & 0x1FFF) + (t24 >> 13)) * 608 + t5
            pd[5] = r & 0x1FFF
            r = (r >> 13) + ((t26 & 0x1FFF) + (t25 >> 13)) * 608 + t6
            pd[6] = r & 0x1FFF
            r = (r >> 13) + ((t27 & 0x1FFF) + (t26 >> 13)) * 608 + t7
            pd[7] = r & 0x1FFF
            r = (r >> 13) + ((t28 & 0x1FFF) + (t27 >> 13)) * 608 + t8
            pd[8] = r & 0x1FFF
            r = (r >> 13) + ((t29 & 0x1FFF) + (t28 >> 13)) * 608 + t9
            pd[9] = r & 0x1FFF
            r = (r >> 13) + ((t30 & 0x1FFF) + (t29 >> 13)) * 608 + t10
            pd[10] = r & 0x1FFF
            r = (r >> 13) + ((t31 & 0x1FFF) + (t30 >> 13)) * 608 + t11
            pd[11] = r & 0x1FFF
            r = (r >> 13) + ((t32 & 0x1FFF) + (t31 >> 13)) * 608 + t12
            pd[12] = r & 0x1FFF
            r = (r >> 13) + ((t33 & 0x1FFF) + (t32 >> 13)) * 608 + t13
            pd[13] = r & 0x1FFF
            r = (r >> 13) + ((t34 & 0x1FFF) + (t33 >> 13)) * 608 + t14
            pd[14] = r & 0x1FFF
            r = (r >> 13) + ((t35 & 0x1FFF) + (t34 >> 13)) * 608 + t15
            pd[15] = r & 0x1FFF
            r = (r >> 13) + ((t36 & 0x1FFF) + (t35 >> 13)) * 608 + t16
            pd[16] = r & 0x1FFF
            r = (r >> 13) + ((t37 & 0x1FFF) + (t36 >> 13)) * 608 + t17
            pd[17] = r & 0x1FFF
            r = (r >> 13) + ((t38 & 0x1FFF) + (t37 >> 13)) * 608 + t18
            pd[18] = r & 0x1FFF
            r = (r >> 13) + (t38 >> 13) * 608 + t19
            pd[19] = r & 0x1FFF
            r = (r >> 13) * 608 + t0
            pd[0] = r & 0x1FFF
            r = (r >> 13) + t1
            pd[1] = r & 0x1FFF
            pd[2] = pd[2] + (r >> 13)
            # </generated>
        elif op <= 2:
            # a**2 (SQRN: b times): column t(2i) += a_i**2, t(i+j) += (2 a_i) a_j for j > i
            rep = 1
            if op == 2:
                rep = prog[pc - 1]
            pb = pa
            while rep > 0:
                # <generated: sqr rows>
                r = pb[0]
                t0 = pb[0] * r
                r = r + r
                t1 = pb[1] * r
                t2 = pb[2] * r
                t3 = pb[3] * r
                t4 = pb[4] * r
                t5 = pb[5] * r
                t6 = pb[6] * r
                t7 = pb[7] * r
                t8 = pb[8] * r
                t9 = pb[9] * r
                t10 = pb[10] * r
                t11 = pb[11] * r
                t12 = pb[12] * r
                t13 = pb[13] * r
                t14 = pb[14] * r
                t15 = pb[15] * r
                t16 = pb[16] * r
                t17 = pb[17] * r
                t18 = pb[18] * r
                t19 = pb[19] * r
                r = pb[1]
                t2 = pb[1] * r + t2
                r = r + r
                t3 = pb[2] * r + t3
                t4 = pb[3] * r + t4
                t5 = pb[4] * r + t5
                t6 = pb[5] * r + t6
                t7 = pb[6] * r + t7
                t8 = pb[7] * r + t8
                t9 = pb[8] * r + t9
                t10 = pb[9] * r + t10
                t11 = pb[10] * r + t11
                t12 = pb[11] * r + t12
                t13 = pb[12] * r + t13
                t14 = pb[13] * r + t14
                t15 = pb[14] * r + t15
                t16 = pb[15] * r + t16
                t17 = pb[16] * r + t17
                t18 = pb[17] * r + t18
                t19 = pb[18] * r + t19
                t20 = pb[19] * r
                r = pb[2]
                t4 = pb[2] * r + t4
                r = r + r
                t5 = pb[3] * r + t5
                t6 = pb[4] * r + t6
                t7 = pb[5] * r + t7
                t8 = pb[6] * r + t8
                t9 = pb[7] * r + t9
                t10 = pb[8] * r + t10
                t11 = pb[9] * r + t11
                t12 = pb[10] * r + t12
                t13 = pb[11] * r + t13
                t14 = pb[12] * r + t14
                t15 = pb[13] * r + t15
                t16 = pb[14] * r + t16
                t17 = pb[15] * r + t17
                t18 = pb[16] * r + t18
                t19 = pb[17] * r + t19
                t20 = pb[18] * r + t20
                t21 = pb[19] * r
                r = pb[3]
                t6 = pb[3] * r + t6
                r = r + r
                t7 = pb[4] * r + t7
                t8 = pb[5] * r + t8
                t9 = pb[6] * r + t9
                t10 = pb[7] * r + t10
                t11 = pb[8] * r + t11
                t12 = pb[9] * r + t12
                t13 = pb[10] * r + t13
                t14 = pb[11] * r + t14
                t15 = pb[12] * r + t15
                t16 = pb[13] * r + t16
                t17 = pb[14] * r + t17
                t18 = pb[15] * r + t18
                t19 = pb[16] * r + t19
                t20 = pb[17] * r + t20
                t21 = pb[18] * r + t21
                t22 = pb[19] * r
                r = pb[4]
                t8 = pb[4] * r + t8
                r = r + r
                t9 = pb[5] * r + t9
                t10 = pb[6] * r + t10
                t11 = pb[7] * r + t11
                t12 = pb[8] * r + t12
                t13 = pb[9] * r + t13
                t14 = pb[10] * r + t14
                t15 = pb[11] * r + t15
                t16 = pb[12] * r + t16
                t17 = pb[13] * r + t17
                t18 = pb[14] * r + t18
                t19 = pb[15] * r + t19
                t20 = pb[16] * r + t20
                t21 = pb[17] * r + t21
                t22 = pb[18] * r + t22
                t23 = pb[19] * r
                r = pb[5]
                t10 = pb[5] * r + t10
                r = r + r
                t11 = pb[6] * r + t11
                t12 = pb[7] * r + t12
                t13 = pb[8] * r + t13
                t14 = pb[9] * r + t14
                t15 = pb[10] * r + t15
                t16 = pb[11] * r + t16
                t17 = pb[12] * r + t17
                t18 = pb[13] * r + t18
                t19 = pb[14] * r + t19
                t20 = pb[15] * r + t20
                t21 = pb[16] * r + t21
                t22 = pb[17] * r + t22
                t23 = pb[18] * r + t23
                t24 = pb[19] * r
                r = pb[6]
                t12 = pb[6] * r + t12
                r = r + r
                t13 = pb[7] * r + t13
                t14 = pb[8] * r + t14
                t15 = pb[9] * r + t15
                t16 = pb[10] * r + t16
                t17 = pb[11] * r + t17
                t18 = pb[12] * r + t18
                t19 = pb[13] * r + t19
                t20 = pb[14] * r + t20
                t21 = pb[15] * r + t21
                t22 = pb[16] * r + t22
                t23 = pb[17] * r + t23
                t24 = pb[18] * r + t24
                t25 = pb[19] * r
                r = pb[7]
                t14 = pb[7] * r + t14
                r = r + r
                t15 = pb[8] * r + t15
                t16 = pb[9] * r + t16
                t17 = pb[10] * r + t17
                t18 = pb[11] * r + t18
                t19 = pb[12] * r + t19
                t20 = pb[13] * r + t20
                t21 = pb[14] * r + t21
                t22 = pb[15] * r + t22
                t23 = pb[16] * r + t23
                t24 = pb[17] * r + t24
                t25 = pb[18] * r + t25
                t26 = pb[19] * r
                r = pb[8]
                t16 = pb[8] * r + t16
                r = r + r
                t17 = pb[9] * r + t17
                t18 = pb[10] * r + t18
                t19 = pb[11] * r + t19
                t20 = pb[12] * r + t20
                t21 = pb[13] * r + t21
                t22 = pb[14] * r + t22
                t23 = pb[15] * r + t23
                t24 = pb[16] * r + t24
                t25 = pb[17] * r + t25
                t26 = pb[18] * r + t26
                t27 = pb[19] * r
                r = pb[9]
                t18 = pb[9] * r + t18
                r = r + r
                t19 = pb[10] * r + t19
                t20 = pb[11] * r + t20
                t21 = pb[12] * r + t21
                t22 = pb[13] * r + t22
                t23 = pb[14] * r + t23
                t24 = pb[15] * r + t24
                t25 = pb[16] * r + t25
                t26 = pb[17] * r + t26
                t27 = pb[18] * r + t27
                t28 = pb[19] * r
                r = pb[10]
                t20 = pb[10] * r + t20
                r = r + r
                t21 = pb[11] * r + t21
                t22 = pb[12] * r + t22
                t23 = pb[13] * r + t23
                t24 = pb[14] * r + t24
                t25 = pb[15] * r + t25
                t26 = pb[16] * r + t26
                t27 = pb[17] * r + t27
                t28 = pb[18] * r + t28
                t29 = pb[19] * r
                r = pb[11]
                t22 = pb[11] * r + t22
                r = r + r
                t23 = pb[12] * r + t23
                t24 = pb[13] * r + t24
                t25 = pb[14] * r + t25
                t26 = pb[15] * r + t26
                t27 = pb[16] * r + t27
                t28 = pb[17] * r + t28
                t29 = pb[18] * r + t29
                t30 = pb[19] * r
                r = pb[12]
                t24 = pb[12] * r + t24
                r = r + r
                t25 = pb[13] * r + t25
                t26 = pb[14] * r + t26
                t27 = pb[15] * r + t27
                t28 = pb[16] * r + t28
                t29 = pb[17] * r + t29
                t30 = pb[18] * r + t30
                t31 = pb[19] * r
                r = pb[13]
                t26 = pb[13] * r + t26
                r = r + r
                t27 = pb[14] * r + t27
                t28 = pb[15] * r + t28
                t29 = pb[16] * r + t29
                t30 = pb[17] * r + t30
                t31 = pb[18] * r + t31
                t32 = pb[19] * r
                r = pb[14]
                t28 = pb[14] * r + t28
                r = r + r
                t29 = pb[15] * r + t29
                t30 = pb[16] * r + t30
                t31 = pb[17] * r + t31
                t32 = pb[18] * r + t32
                t33 = pb[19] * r
                r = pb[15]
                t30 = pb[15] * r + t30
                r = r + r
                t31 = pb[16] * r + t31
                t32 = pb[17] * r + t32
                t33 = pb[18] * r + t33
                t34 = pb[19] * r
                r = pb[16]
                t32 = pb[16] * r + t32
                r = r + r
                t33 = pb[17] * r + t33
                t34 = pb[18] * r + t34
                t35 = pb[19] * r
                r = pb[17]
                t34 = pb[17] * r + t34
                r = r + r
                t35 = pb[18] * r + t35
                t36 = pb[19] * r
                r = pb[18]
                t36 = pb[18] * r + t36
                r = r + r
                t37 = pb[19] * r
                r = pb[19]
                t38 = pb[19] * r
                # </generated>
                # <generated: sqr reduce>
                r = (t20 & 0x1FFF) * 608 + t0
                t0 = r & 0x1FFF
                r = (r >> 13) + ((t21 & 0x1FFF) + (t20 >> 13)) * 608 + t1
                t1 = r & 0x1FFF
                r = (r >> 13) + ((t22 & 0x1FFF) + (t21 >> 13)) * 608 + t2
                pd[2] = r & 0x1FFF
                r = (r >> 13) + ((t23 & 0x1FFF) + (t22 >> 13)) * 608 + t3
                pd[3] = r & 0x1FFF
                r = (r >> 13) + ((t24 & 0x1FFF) + (t23 >> 13)) * 608 + t4
                pd[4] = r & 0x1FFF
                r = (r >> 13) + ((t25 & 0x1FFF) + (t24 >> 13)) * 608 + t5
                pd[5] = r & 0x1FFF
                r = (r >> 13) + ((t26 & 0x1FFF) + (t25 >> 13)) * 608 + t6
                pd[6] = r & 0x1FFF
                r = (r >> 13) + ((t27 & 0x1FFF) + (t26 >> 13)) * 608 + t7
                pd[7] = r & 0x1FFF
                r = (r >> 13) + ((t28 & 0x1FFF) + (t27 >> 13)) * 608 + t8
                pd[8] = r & 0x1FFF
                r = (r >> 13) + ((t29 & 0x1FFF) + (t28 >> 13)) * 608 + t9
                pd[9] = r & 0x1FFF
                r = (r >> 13) + ((t30 & 0x1FFF) + (t29 >> 13)) * 608 + t10
                pd[10] = r & 0x1FFF
                r = (r >> 13) + ((t31 & 0x1FFF) + (t30 >> 13)) * 608 + t11
                pd[11] = r & 0x1FFF
                r = (r >> 13) + ((t32 & 0x1FFF) + (t31 >> 13)) * 608 + t12
                pd[12] = r & 0x1FFF
                r = (r >> 13) + ((t33 & 0x1FFF) + (t32 >> 13)) * 608 + t13
                pd[13] = r & 0x1FFF
                r = (r >> 13) + ((t34 & 0x1FFF) + (t33 >> 13)) * 608 + t14
                pd[14] = r & 0x1FFF
                r = (r >> 13) + ((t35 & 0x1FFF) + (t34 >> 13)) * 608 + t15
                pd[15] = r & 0x1FFF
                r = (r >> 13) + ((t36 & 0x1FFF) + (t35 >> 13)) * 608 + t16
                pd[16] = r & 0x1FFF
                r = (r >> 13) + ((t37 & 0x1FFF) + (t36 >> 13)) * 608 + t17
                pd[17] = r & 0x1FFF
                r = (r >> 13) + ((t38 & 0x1FFF) + (t37 >> 13)) * 608 + t18
                pd[18] = r & 0x1FFF
                r = (r >> 13) + (t38 >> 13) * 608 + t19
                pd[19] = r & 0x1FFF
                r = (r >> 13) * 608 + t0
                pd[0] = r & 0x1FFF
                r = (r >> 13) + t1
                pd[1] = r & 0x1FFF
                pd[2] = pd[2] + (r >> 13)
                # </generated>
                pb = pd
                rep -= 1
        elif op == 3:
            # <generated: add>
            r = pa[0] + pb[0]
            t0 = r & 0x1FFF
            r = (r >> 13) + pa[1] + pb[1]
            t1 = r & 0x1FFF
            r = (r >> 13) + pa[2] + pb[2]
            pd[2] = r & 0x1FFF
            r = (r >> 13) + pa[3] + pb[3]
            pd[3] = r & 0x1FFF
            r = (r >> 13) + pa[4] + pb[4]
            pd[4] = r & 0x1FFF
            r = (r >> 13) + pa[5] + pb[5]
            pd[5] = r & 0x1FFF
            r = (r >> 13) + pa[6] + pb[6]
            pd[6] = r & 0x1FFF
            r = (r >> 13) + pa[7] + pb[7]
            pd[7] = r & 0x1FFF
            r = (r >> 13) + pa[8] + pb[8]
            pd[8] = r & 0x1FFF
            r = (r >> 13) + pa[9] + pb[9]
            pd[9] = r & 0x1FFF
            r = (r >> 13) + pa[10] + pb[10]
            pd[10] = r & 0x1FFF
            r = (r >> 13) + pa[11] + pb[11]
            pd[11] = r & 0x1FFF
            r = (r >> 13) + pa[12] + pb[12]
            pd[12] = r & 0x1FFF
            r = (r >> 13) + pa[13] + pb[13]
            pd[13] = r & 0x1FFF
            r = (r >> 13) + pa[14] + pb[14]
            pd[14] = r & 0x1FFF
            r = (r >> 13) + pa[15] + pb[15]
            pd[15] = r & 0x1FFF
            r = (r >> 13) + pa[16] + pb[16]
            pd[16] = r & 0x1FFF
            r = (r >> 13) + pa[17] + pb[17]
            pd[17] = r & 0x1FFF
            r = (r >> 13) + pa[18] + pb[18]
            pd[18] = r & 0x1FFF
            r = (r >> 13) + pa[19] + pb[19]
            pd[19] = r & 0x1FFF
            r = (r >> 13) * 608 + t0
            pd[0] = r & 0x1FFF
            r = (r >> 13) + t1
            pd[1] = r & 0x1FFF
            pd[2] = pd[2] + (r >> 13)
            # </generated>
        elif op == 4:
            # a + 64p - b: 64p = 2**261 - 1216 has limbs 15168, 16382 x 19, each above LIMB_MAX
            # <generated: sub>
            r = pa[0] + 15168 - pb[0]
            t0 = r & 0x1FFF
            r = (r >> 13) + pa[1] + 16382 - pb[1]
            t1 = r & 0x1FFF
            r = (r >> 13) + pa[2] + 16382 - pb[2]
            pd[2] = r & 0x1FFF
            r = (r >> 13) + pa[3] + 16382 - pb[3]
            pd[3] = r & 0x1FFF
            r = (r >> 13) + pa[4] + 16382 - pb[4]
            pd[4] = r & 0x1FFF
            r = (r >> 13) + pa[5] + 16382 - pb[5]
            pd[5] = r & 0x1FFF
            r = (r >> 13) + pa[6] + 16382 - pb[6]
            pd[6] = r & 0x1FFF
            r = (r >> 13) + pa[7] + 16382 - pb[7]
            pd[7] = r & 0x1FFF
            r = (r >> 13) + pa[8] + 16382 - pb[8]
            pd[8] = r & 0x1FFF
            r = (r >> 13) + pa[9] + 16382 - pb[9]
            pd[9] = r & 0x1FFF
            r = (r >> 13) + pa[10] + 16382 - pb[10]
            pd[10] = r & 0x1FFF
            r = (r >> 13) + pa[11] + 16382 - pb[11]
            pd[11] = r & 0x1FFF
            r = (r >> 13) + pa[12] + 16382 - pb[12]
            pd[12] = r & 0x1FFF
            r = (r >> 13) + pa[13] + 16382 - pb[13]
            pd[13] = r & 0x1FFF
            r = (r >> 13) + pa[14] + 16382 - pb[14]
            pd[14] = r & 0x1FFF
            r = (r >> 13) + pa[15] + 16382 - pb[15]
            pd[15] = r & 0x1FFF
            r = (r >> 13) + pa[16] + 16382 - pb[16]
            pd[16] = r & 0x1FFF
            r = (r >> 13) + pa[17] + 16382 - pb[17]
            pd[17] = r & 0x1FFF
            r = (r >> 13) + pa[18] + 16382 - pb[18]
            pd[18] = r & 0x1FFF
            r = (r >> 13) + pa[19] + 16382 - pb[19]
            pd[19] = r & 0x1FFF
            r = (r >> 13) * 608 + t0
            pd[0] = r & 0x1FFF
            r = (r >> 13) + t1
            pd[1] = r & 0x1FFF
            pd[2] = pd[2] + (r >> 13)
            # </generated>
        elif op == 5:
            # a + 121665 * b (the ladder's AA + a24 * E)
            # <generated: mul a24 add>
            r = pb[0] * 121665 + pa[0]
            t0 = r & 0x1FFF
            r = (r >> 13) + pb[1] * 121665 + pa[1]
            t1 = r & 0x1FFF
            r = (r >> 13) + pb[2] * 121665 + pa[2]
            pd[2] = r & 0x1FFF
            r = (r >> 13) + pb[3] * 121665 + pa[3]
            pd[3] = r & 0x1FFF
            r = (r >> 13) + pb[4] * 121665 + pa[4]
            pd[4] = r & 0x1FFF
            r = (r >> 13) + pb[5] * 121665 + pa[5]
            pd[5] = r & 0x1FFF
            r = (r >> 13) + pb[6] * 121665 + pa[6]
            pd[6] = r & 0x1FFF
            r = (r >> 13) + pb[7] * 121665 + pa[7]
            pd[7] = r & 0x1FFF
            r = (r >> 13) + pb[8] * 121665 + pa[8]
            pd[8] = r & 0x1FFF
            r = (r >> 13) + pb[9] * 121665 + pa[9]
            pd[9] = r & 0x1FFF
            r = (r >> 13) + pb[10] * 121665 + pa[10]
            pd[10] = r & 0x1FFF
            r = (r >> 13) + pb[11] * 121665 + pa[11]
            pd[11] = r & 0x1FFF
            r = (r >> 13) + pb[12] * 121665 + pa[12]
            pd[12] = r & 0x1FFF
            r = (r >> 13) + pb[13] * 121665 + pa[13]
            pd[13] = r & 0x1FFF
            r = (r >> 13) + pb[14] * 121665 + pa[14]
            pd[14] = r & 0x1FFF
            r = (r >> 13) + pb[15] * 121665 + pa[15]
            pd[15] = r & 0x1FFF
            r = (r >> 13) + pb[16] * 121665 + pa[16]
            pd[16] = r & 0x1FFF
            r = (r >> 13) + pb[17] * 121665 + pa[17]
            pd[17] = r & 0x1FFF
            r = (r >> 13) + pb[18] * 121665 + pa[18]
            pd[18] = r & 0x1FFF
            r = (r >> 13) + pb[19] * 121665 + pa[19]
            pd[19] = r & 0x1FFF
            r = (r >> 13) * 608 + t0
            pd[0] = r & 0x1FFF
            r = (r >> 13) + t1
            pd[1] = r & 0x1FFF
            pd[2] = pd[2] + (r >> 13)
            # </generated>
        elif op == 6:
            r = 0
            while r < 20:
                pd[r] = pa[r]
                pd[r + 1] = pa[r + 1]
                pd[r + 2] = pa[r + 2]
                pd[r + 3] = pa[r + 3]
                r += 4
        elif op == 7:
            # slot d = a + b and slot d + 1 = a + 64p - b, each carried (two chains: r, v)
            # <generated: addsub>
            x = pa[0]
            y = pb[0]
            r = x + y
            v = x + 15168 - y
            t0 = r & 0x1FFF
            t20 = v & 0x1FFF
            x = pa[1]
            y = pb[1]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            t1 = r & 0x1FFF
            t21 = v & 0x1FFF
            x = pa[2]
            y = pb[2]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[2] = r & 0x1FFF
            pd[22] = v & 0x1FFF
            x = pa[3]
            y = pb[3]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[3] = r & 0x1FFF
            pd[23] = v & 0x1FFF
            x = pa[4]
            y = pb[4]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[4] = r & 0x1FFF
            pd[24] = v & 0x1FFF
            x = pa[5]
            y = pb[5]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[5] = r & 0x1FFF
            pd[25] = v & 0x1FFF
            x = pa[6]
            y = pb[6]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[6] = r & 0x1FFF
            pd[26] = v & 0x1FFF
            x = pa[7]
            y = pb[7]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[7] = r & 0x1FFF
            pd[27] = v & 0x1FFF
            x = pa[8]
            y = pb[8]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[8] = r & 0x1FFF
            pd[28] = v & 0x1FFF
            x = pa[9]
            y = pb[9]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[9] = r & 0x1FFF
            pd[29] = v & 0x1FFF
            x = pa[10]
            y = pb[10]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[10] = r & 0x1FFF
            pd[30] = v & 0x1FFF
            x = pa[11]
            y = pb[11]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[11] = r & 0x1FFF
            pd[31] = v & 0x1FFF
            x = pa[12]
            y = pb[12]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[12] = r & 0x1FFF
            pd[32] = v & 0x1FFF
            x = pa[13]
            y = pb[13]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[13] = r & 0x1FFF
            pd[33] = v & 0x1FFF
            x = pa[14]
            y = pb[14]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[14] = r & 0x1FFF
            pd[34] = v & 0x1FFF
            x = pa[15]
            y = pb[15]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[15] = r & 0x1FFF
            pd[35] = v & 0x1FFF
            x = pa[16]
            y = pb[16]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[16] = r & 0x1FFF
            pd[36] = v & 0x1FFF
            x = pa[17]
            y = pb[17]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[17] = r & 0x1FFF
            pd[37] = v & 0x1FFF
            x = pa[18]
            y = pb[18]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[18] = r & 0x1FFF
            pd[38] = v & 0x1FFF
            x = pa[19]
            y = pb[19]
            r = (r >> 13) + x + y
            v = (v >> 13) + x + 16382 - y
            pd[19] = r & 0x1FFF
            pd[39] = v & 0x1FFF
            r = (r >> 13) * 608 + t0
            pd[0] = r & 0x1FFF
            r = (r >> 13) + t1
            pd[1] = r & 0x1FFF
            pd[2] = pd[2] + (r >> 13)
            v = (v >> 13) * 608 + t20
            pd[20] = v & 0x1FFF
            v = (v >> 13) + t21
            pd[21] = v & 0x1FFF
            pd[22] = pd[22] + (v >> 13)
            # </generated>
        elif op == 8:
            # ladder swap: slots d, d+1 <-> a, a+1 when bit u-1 of the scalar differs from the
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
        elif op == 9:
            # loop: u = u - 1 in slot b (d = 0, never below 0; d = 1 leaves u), then if u > 0
            # jump to op number a
            r = pb[0]
            if prog[pc - 3] == 0 and r > 0:
                r -= 1
                pb[0] = r
            if r > 0:
                pc = prog[pc - 2] * 4
        elif op == 13:
            x = prog[pc - 2]
            # verify: skip d ops when the wNAF digits selected by a (bit 0: B's, bit 1: A's) in word
            # u of slot b are all 0 (stored as 16)
            r = pb[pb[0]]
            if ((x & 1) == 0 or (r & 0xFF) == 16) and ((x & 2) == 0 or (r >> 8) == 16):
                pc += prog[pc - 3] * 4
        elif op >= 11:
            # table reads for Ed25519 (state slot b: u, then the digits of the scalars):
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
        else:
            # ladder step input: slots d..d+3 = x2 + z2, x2 - z2, x3 + z3, x3 - z3 of
            # slots a..a+3 = x2 z2 x3 z3 after the masked swap CSWAP would make (the slots
            # are not swapped: the step overwrites all four); state in slot b as for CSWAP
            # <generated: ladder in>
            x = 0
            r = pb[0]
            if r > 0:
                r -= 1
                x = (pb[2 + (r >> 3)] >> (r & 7)) & 1
            y = 0 - (x ^ pb[1])
            pb[1] = x
            pb = pa
            x2 = pb[0]
            x3 = pb[40]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[20]
            z3 = pb[60]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = x2 + z2
            t0 = r & 0x1FFF
            v = x2 + 15168 - z2
            t20 = v & 0x1FFF
            q = x3 + z3
            t40 = q & 0x1FFF
            s = x3 + 15168 - z3
            t60 = s & 0x1FFF
            x2 = pb[1]
            x3 = pb[41]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[21]
            z3 = pb[61]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            t1 = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            t21 = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            t41 = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            t61 = s & 0x1FFF
            x2 = pb[2]
            x3 = pb[42]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[22]
            z3 = pb[62]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[2] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[22] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[42] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[62] = s & 0x1FFF
            x2 = pb[3]
            x3 = pb[43]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[23]
            z3 = pb[63]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[3] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[23] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[43] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[63] = s & 0x1FFF
            x2 = pb[4]
            x3 = pb[44]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[24]
            z3 = pb[64]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[4] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[24] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[44] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[64] = s & 0x1FFF
            x2 = pb[5]
            x3 = pb[45]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[25]
            z3 = pb[65]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[5] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[25] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[45] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[65] = s & 0x1FFF
            x2 = pb[6]
            x3 = pb[46]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[26]
            z3 = pb[66]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[6] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[26] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[46] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[66] = s & 0x1FFF
            x2 = pb[7]
            x3 = pb[47]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[27]
            z3 = pb[67]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[7] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[27] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[47] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[67] = s & 0x1FFF
            x2 = pb[8]
            x3 = pb[48]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[28]
            z3 = pb[68]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[8] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[28] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[48] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[68] = s & 0x1FFF
            x2 = pb[9]
            x3 = pb[49]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[29]
            z3 = pb[69]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[9] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[29] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[49] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[69] = s & 0x1FFF
            x2 = pb[10]
            x3 = pb[50]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[30]
            z3 = pb[70]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[10] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[30] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[50] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[70] = s & 0x1FFF
            x2 = pb[11]
            x3 = pb[51]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[31]
            z3 = pb[71]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[11] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[31] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[51] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[71] = s & 0x1FFF
            x2 = pb[12]
            x3 = pb[52]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[32]
            z3 = pb[72]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[12] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[32] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[52] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[72] = s & 0x1FFF
            x2 = pb[13]
            x3 = pb[53]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[33]
            z3 = pb[73]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[13] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[33] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[53] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[73] = s & 0x1FFF
            x2 = pb[14]
            x3 = pb[54]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[34]
            z3 = pb[74]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[14] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[34] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[54] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[74] = s & 0x1FFF
            x2 = pb[15]
            x3 = pb[55]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[35]
            z3 = pb[75]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[15] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[35] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[55] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[75] = s & 0x1FFF
            x2 = pb[16]
            x3 = pb[56]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[36]
            z3 = pb[76]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[16] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[36] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[56] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[76] = s & 0x1FFF
            x2 = pb[17]
            x3 = pb[57]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[37]
            z3 = pb[77]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[17] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[37] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[57] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[77] = s & 0x1FFF
            x2 = pb[18]
            x3 = pb[58]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[38]
            z3 = pb[78]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[18] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[38] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[58] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[78] = s & 0x1FFF
            x2 = pb[19]
            x3 = pb[59]
            x = (x2 ^ x3) & y
            x2 = x2 ^ x
            x3 = x3 ^ x
            z2 = pb[39]
            z3 = pb[79]
            x = (z2 ^ z3) & y
            z2 = z2 ^ x
            z3 = z3 ^ x
            r = (r >> 13) + x2 + z2
            pd[19] = r & 0x1FFF
            v = (v >> 13) + x2 + 16382 - z2
            pd[39] = v & 0x1FFF
            q = (q >> 13) + x3 + z3
            pd[59] = q & 0x1FFF
            s = (s >> 13) + x3 + 16382 - z3
            pd[79] = s & 0x1FFF
            r = (r >> 13) * 608 + t0
            pd[0] = r & 0x1FFF
            r = (r >> 13) + t1
            pd[1] = r & 0x1FFF
            pd[2] = pd[2] + (r >> 13)
            v = (v >> 13) * 608 + t20
            pd[20] = v & 0x1FFF
            v = (v >> 13) + t21
            pd[21] = v & 0x1FFF
            pd[22] = pd[22] + (v >> 13)
            q = (q >> 13) * 608 + t40
            pd[40] = q & 0x1FFF
            q = (q >> 13) + t41
            pd[41] = q & 0x1FFF
            pd[42] = pd[42] + (q >> 13)
            s = (s >> 13) * 608 + t60
            pd[60] = s & 0x1FFF
            s = (s >> 13) + t61
            pd[61] = s & 0x1FFF
            pd[62] = pd[62] + (s >> 13)
            # </generated>


@micropython.viper
def _unpack(w: ptr32, d: int, s: ptr8):
    """Slot d = the 32 little-endian bytes s, bit 255 dropped."""
    acc = 0
    nb = 0
    j = 0
    k = 0
    d = d * 20
    while k < 20:
        while nb < 13 and j < 32:
            acc = acc | (s[j] << nb)
            j += 1
            nb += 8
        w[d + k] = acc & 0x1FFF
        acc = acc >> 13
        nb -= 13
        k += 1
    w[d + 19] = w[d + 19] & 0xFF


@micropython.viper
def _pack(w: ptr32, s: int, out: ptr8):
    """out[0:32] = slot s fully reduced mod p, little-endian. Slot s is left reduced."""
    m = 0x1FFF
    s = s * 20
    r = 0
    while r < 2:  # fold bits >= 255 (times 19) twice: the value is then below 2**255
        c = 0
        k = 0
        while k < 19:
            v = w[s + k] + c
            w[s + k] = v & m
            c = v >> 13
            k += 1
        v = w[s + 19] + c
        w[s + 19] = v & 0xFF
        w[s] = w[s] + (v >> 8) * 19
        r += 1
    c = 0
    k = 0
    while k < 20:
        v = w[s + k] + c
        w[s + k] = v & m
        c = v >> 13
        k += 1
    # value >= p iff value + 19 >= 2**255; then subtract p = add 19 and drop bit 255 (no branch)
    c = 19
    k = 0
    while k < 19:
        c = (w[s + k] + c) >> 13
        k += 1
    c = ((w[s + 19] + c) >> 8) * 19
    k = 0
    while k < 20:
        v = w[s + k] + c
        w[s + k] = v & m
        c = v >> 13
        k += 1
    w[s + 19] = w[s + 19] & 0xFF
    acc = 0
    nb = 0
    j = 0
    k = 0
    while k < 20:
        acc = acc | (w[s + k] << nb)
        nb += 13
        k += 1
        while nb >= 8 and j < 32:
            out[j] = acc & 0xFF
            acc = acc >> 8
            nb -= 8
            j += 1


@micropython.viper
def _ladder_state(w: ptr32, s: int, k: ptr8):
    """Slot s (and s + 1): the ladder state read by CSWAP/LOOP: u = 255 bits to go, previous
    bit 0, then the 32 scalar bytes k."""
    s = s * 20
    w[s] = 255
    w[s + 1] = 0
    j = 0
    while j < 32:
        w[s + 2 + j] = k[j]
        j += 1


@micropython.viper
def _put(tab: ptr16, off: int, w: ptr32, s: int, n: int):
    """tab[off:off + n] = n words of the work buffer from slot s on."""
    s = s * 20
    k = 0
    while k < n:
        tab[off + k] = w[s + k]
        k += 1


@micropython.viper
def _recode(w: ptr32, o: int, s: ptr8):
    """w[o:o+64] = the signed radix-16 digits (-8..7, the top one 0..8) of the 32-byte scalar
    s < 2**255, each stored as digit + 8 (no branch: s may be secret)."""
    c = 0
    i = 0
    while i < 63:
        e = ((s[i >> 1] >> ((i & 1) << 2)) & 15) + c
        c = (e + 8) >> 4
        w[o + i] = e - (c << 4) + 8
        i += 1
    w[o + 63] = (s[31] >> 4) + c + 8  # top digit 0..8: no carry out for s < 2**255


@micropython.viper
def _wnaf(w: ptr32, o: int, s: ptr8, sh: int) -> int:
    """Width-5 wNAF of the 32-byte scalar s < 2**255 (public: branches): digit i (0, or odd with
    |d| <= 15; four zeros follow each nonzero one) + 16 into byte sh // 8 of w[o + 1 + i], for
    i = 0..255 (sh = 0 sets the words, sh = 8 adds the second byte). Returns 1 + the position
    of the top nonzero digit (0 for s = 0)."""
    c = 0
    i = 0
    top = 0
    while i < 256:
        b = ((s[i >> 3] >> (i & 7)) & 1) + c
        if (b & 1) == 0:
            c = b >> 1
            v = 0
            n = 1
        else:
            j = i >> 3
            v = s[j]
            if j < 31:
                v = v | (s[j + 1] << 8)
            v = ((v >> (i & 7)) & 31) + c
            c = 0
            if v > 16:
                v -= 32
                c = 1
            top = i + 1
            n = 5
        while n > 0 and i < 256:
            if sh == 0:
                w[o + 1 + i] = v + 16
            else:
                w[o + 1 + i] = w[o + 1 + i] | ((v + 16) << 8)
            v = 0
            n -= 1
            i += 1
    return top


@micropython.viper
def _wipe(w: ptr32, n: int):
    k = 0
    while k < n:
        w[k] = 0
        k += 1


# ------------------------------------------------------------------------------------- programs
# slots: X25519 0..13 (x1 x2 z2 x3 z3, ladder temps), 14..17 pow-chain temps, 18/19 spare;
# Ed25519 point P = 20..23 (X Y Z T), cached point Q = 24..27 (Y-X, Y+X, 2dT, 2Z), temps 28..35,
# constants 36..40 (2d, d, sqrt(-1), 1, 0), decode 41..47, cached output 48..51.
_X1, _X2, _Z2, _X3, _Z3 = 0, 1, 2, 3, 4
_T0, _T1, _T2, _T3 = 14, 15, 16, 17
_PX, _PY, _PZ, _PT = 20, 21, 22, 23
_Q = 24
_KD2, _KD, _KSQRTM1, _KONE, _KZERO = 36, 37, 38, 39, 40
_DY, _DU, _DV, _DX, _D1, _D2, _D3 = 41, 42, 43, 44, 45, 46, 47
_CQ = 48
_SECRET_WORDS = 36 * NLIMBS  # slots 0..35 hold secret-derived values after a call


def _prog(ops):
    out = bytearray()
    for op in ops:
        out.extend(bytes((op[0], op[1], op[2], op[3] if len(op) > 3 else 0)))
    return bytes(out)


def _chain(z, out, last):
    """z**(2**250 - 1) into _T1/_T0 per the ref10 chains; `last` finishes inverse or pow22523."""
    t0, t1, t2, t3 = _T0, _T1, _T2, _T3
    ops = [(SQR, t0, z), (SQRN, t1, t0, 2), (MUL, t1, z, t1), (MUL, t0, t0, t1)]
    if last == "inv":
        ops += [(SQR, t2, t0), (MUL, t1, t1, t2)]  # t1 = z**(2**5 - 1), t0 = z**11
        a, b = t1, t2
    else:
        ops += [(SQR, t0, t0), (MUL, t0, t1, t0)]  # t0 = z**(2**5 - 1)
        a, b = t0, t1
    # a = z**(2**5 - 1) -> z**(2**250 - 1), b and t3 scratch
    ops += [(SQRN, b, a, 5), (MUL, a, b, a), (SQRN, b, a, 10), (MUL, b, b, a),
            (SQRN, t3, b, 20), (MUL, b, t3, b), (SQRN, b, b, 10), (MUL, a, b, a),
            (SQRN, b, a, 50), (MUL, b, b, a), (SQRN, t3, b, 100), (MUL, b, t3, b),
            (SQRN, b, b, 50), (MUL, a, b, a)]
    if last == "inv":  # z**(2**255 - 32) * z**11 = z**(p - 2)
        ops += [(SQRN, a, a, 5), (MUL, out, a, t0)]
    else:  # z**(2**252 - 4) * z = z**((p - 5) / 8)
        ops += [(SQRN, a, a, 2), (MUL, out, a, z)]
    return ops


# one _run call: init, then per bit (u = 255 .. 1) CSWAP + step + LOOP, the last CSWAP, and the
# inversion. Step temps: A, B = x2 +- z2 (5, 6), C, D = x3 +- z3 (7, 8), AA, BB (9, 10),
# E = AA - BB (11), DA, CB (12, 13); ladder state (u, previous bit, scalar) in slots 16..17.
_LADDER = _prog([
    (COPY, _X2, _KONE), (COPY, _Z2, _KZERO), (COPY, _X3, _X1), (COPY, _Z3, _KONE),
    (LADDER_IN, 5, _X2, _T2),  # op 4: the loop start
    (SQR, 9, 5), (SQR, 10, 6), (SUB, 11, 9, 10),
    (MUL, 12, 8, 5), (MUL, 13, 7, 6), (ADDSUB, _X3, 12, 13), (SQR, _X3, _X3), (SQR, _Z3, _Z3),
    (MUL, _Z3, _X1, _Z3), (MUL, _X2, 9, 10), (A24, _Z2, 9, 11), (MUL, _Z2, 11, _Z2),
    (LOOP, 0, 4, _T2), (CSWAP, _X2, _X3, _T2)] + _chain(_Z2, 18, "inv") + [(MUL, 19, _X2, 18)])

_A, _B, _C, _D, _E, _F, _G, _H = 28, 29, 30, 31, 32, 33, 34, 35


def _dbl(with_t):
    ops = [(SQR, _A, _PX), (SQR, _B, _PY), (SQR, _C, _PZ), (ADD, _C, _C, _C), (ADD, _H, _A, _B),
           (ADD, _E, _PX, _PY), (SQR, _E, _E), (SUB, _E, _H, _E), (SUB, _G, _A, _B),
           (ADD, _F, _C, _G), (MUL, _PX, _E, _F), (MUL, _PY, _G, _H), (MUL, _PZ, _F, _G)]
    if with_t:
        ops.append((MUL, _PT, _E, _H))
    return ops


_ADDQ = [(SUB, _A, _PY, _PX), (MUL, _A, _A, _Q), (ADD, _B, _PY, _PX), (MUL, _B, _B, _Q + 1),
         (MUL, _C, _PT, _Q + 2), (MUL, _D, _PZ, _Q + 3), (SUB, _E, _B, _A), (SUB, _F, _D, _C),
         (ADD, _G, _D, _C), (ADD, _H, _B, _A), (MUL, _PX, _E, _F), (MUL, _PY, _G, _H),
         (MUL, _PZ, _F, _G), (MUL, _PT, _E, _H)]
_P_ADD = _prog(_ADDQ)
# P + Q for an affine Q = (y-x, y+x, 2dxy) in slots 24..26 (Z = 1: 2Z1 replaces Z1 * 2Z2)
_MADDQ = [(SUB, _A, _PY, _PX), (MUL, _A, _A, _Q), (ADD, _B, _PY, _PX),
          (MUL, _B, _B, _Q + 1), (MUL, _C, _PT, _Q + 2), (ADD, _D, _PZ, _PZ),
          (SUB, _E, _B, _A), (SUB, _F, _D, _C), (ADD, _G, _D, _C), (ADD, _H, _B, _A),
          (MUL, _PX, _E, _F), (MUL, _PY, _G, _H), (MUL, _PZ, _F, _G), (MUL, _PT, _E, _H)]
_DBL4 = _dbl(False) * 3 + _dbl(True)  # T is only read by the addition that follows
_P_DBL4 = _prog(_DBL4)
_P_CACHED = _prog([(SUB, _CQ, _PY, _PX), (ADD, _CQ + 1, _PY, _PX), (MUL, _CQ + 2, _PT, _KD2),
                   (ADD, _CQ + 3, _PZ, _PZ)])
_P_ENCODE = _prog(_chain(_PZ, 18, "inv") + [(MUL, _DX, _PX, 18), (MUL, _DY, _PY, 18)])
# decode: y in _DY -> u = y^2 - 1, v = d y^2 + 1, x = u v^3 (u v^7)^((p-5)/8), vxx = v x^2 in _D1
_P_DECODE = _prog([(SQR, _D1, _DY), (SUB, _DU, _D1, _KONE), (MUL, _DV, _D1, _KD),
                   (ADD, _DV, _DV, _KONE), (SQR, _D1, _DV), (MUL, _D1, _D1, _DV),
                   (MUL, _D2, _DU, _D1), (SQR, _D3, _D1), (MUL, _D3, _D3, _DV),
                   (MUL, _D3, _D3, _DU)] + _chain(_D3, _DX, "pow") +
                  [(MUL, _DX, _D2, _DX), (SQR, _D1, _DX), (MUL, _D1, _D1, _DV)])
_P_DECODE_NEG = _prog([(ADD, _D3, _D1, _DU)])
_P_TIMES_SQRTM1 = _prog([(MUL, _DX, _DX, _KSQRTM1)])
_P_NEGATE_X = _prog([(SUB, _DX, _KZERO, _DX)])
_P_POINT_NEG = _prog([(SUB, _PX, _KZERO, _DX), (COPY, _PY, _DY), (COPY, _PZ, _KONE),
                      (MUL, _PT, _PX, _PY)])
_P_POINT = _prog([(COPY, _PX, _DX), (COPY, _PY, _DY), (COPY, _PZ, _KONE),
                  (MUL, _PT, _PX, _PY)])


_P_NIELS = _prog(_chain(_PZ, 18, "inv") + [
    (MUL, _DX, _PX, 18), (MUL, _DY, _PY, 18), (SUB, _CQ, _DY, _DX), (ADD, _CQ + 1, _DY, _DX),
    (MUL, _CQ + 2, _DX, _DY), (MUL, _CQ + 2, _CQ + 2, _KD2)])
# Montgomery u = (Z + Y) / (Z - Y) of P: the X25519 public key of the same scalar
_P_TO_U = _prog([(SUB, 5, _PZ, _PY), (ADD, 6, _PZ, _PY)] + _chain(5, 18, "inv") +
                [(MUL, 19, 6, 18)])
_P_NIELS_ID = _prog([(COPY, _CQ, _KONE), (COPY, _CQ + 1, _KONE), (COPY, _CQ + 2, _KZERO)])
_P_ADD_CACHED = _prog(_ADDQ + [(SUB, _CQ, _PY, _PX), (ADD, _CQ + 1, _PY, _PX),
                                (MUL, _CQ + 2, _PT, _KD2), (ADD, _CQ + 3, _PZ, _PZ)])
_SV = 5  # signing loop state: u, then the 64 digits (+ 8) of the scalar, in slots 5..8
_SVW = 0  # verify loop state: u, then word 1 + i = (d_i + 16) | (e_i + 16) << 8, slots 0..12
_SAVE = [(COPY, 52 + i, _PX + i) for i in range(4)]
_RESTORE = [(COPY, _PX + i, 52 + i) for i in range(4)]


def _loop_prog(first, body, tail):
    """first; then body with u = n..1 (digit u - 1), 4 doublings before each but the first."""
    j = len(first)  # the jump over the doublings
    d = j + 1
    b = d + len(_DBL4)
    return _prog(first + [(LOOP, 1, b, _SV)] + _DBL4 + body + [(LOOP, 0, d, _SV)] + tail)


_IDENTITY = [(COPY, _PX, _KZERO), (COPY, _PY, _KONE), (COPY, _PZ, _KONE), (COPY, _PT, _KZERO)]
# signing: P = sum over t of d_(16t+u-1) T_t, u = 16..1 (the last addition of a round skips T:
# doublings or the encoding follow, neither reads it)
_P_BASE = _loop_prog(_IDENTITY, [(SELN, _Q, 0, _SV)] + _MADDQ + [(SELN, _Q, 1, _SV)] + _MADDQ +
                     [(SELN, _Q, 2, _SV)] + _MADDQ + [(SELN, _Q, 3, _SV)] + _MADDQ[:-1], [])
# verify: for bit i = u - 1 (u = n..1): P = 2P + d_i B + e_i (-A) with the wNAF digits d, e
# (odd, |.| <= 15, at least 4 zeros after each nonzero one: the additions of a digit are skipped
# when it is 0, and T only computed when one follows), then affine x, y in _DX, _DY
_WB = [(SEL, _Q, 0, _SVW)] + _MADDQ
_WA = [(SEL, _Q, 1, _SVW)] + _ADDQ[:-1]
_P_STRAUS = _prog(_IDENTITY + _dbl(False) + [
    (SKIPZ, 3 + len(_WB) + len(_WA), 3, _SVW), (MUL, _PT, _E, _H),
    (SKIPZ, len(_WB), 1, _SVW)] + _WB + [(SKIPZ, len(_WA), 2, _SVW)] + _WA +
    [(LOOP, 0, len(_IDENTITY), _SVW)] +
    _chain(_PZ, 18, "inv") + [(MUL, _DX, _PX, 18), (MUL, _DY, _PY, 18)])
# P = 2P, and Q = the cached 2P (P, T kept)
_P_TWICE_TO_Q = _prog(_SAVE + _dbl(True) + [(SUB, _Q, _PY, _PX), (ADD, _Q + 1, _PY, _PX),
                                            (MUL, _Q + 2, _PT, _KD2), (ADD, _Q + 3, _PZ, _PZ)]
                      + _RESTORE)
del _DBL4, _MADDQ, _ADDQ, _IDENTITY, _WA, _WB  # import-time op lists: only programs stay
_P_SAVE = _prog(_SAVE)
_P_RESTORE = _prog(_RESTORE)
del _SAVE, _RESTORE
_P_Q_FROM_CQ = _prog([(COPY, _Q + i, _CQ + i) for i in range(4)])


def _set(slot, x):
    w = _w
    o = slot * NLIMBS
    for i in range(NLIMBS):
        w[o + i] = (x >> (13 * i)) & 0x1FFF


def _init_constants():
    d = -121665 * pow(121666, P - 2, P) % P
    _set(_KD, d)
    _set(_KD2, 2 * d % P)
    _set(_KSQRTM1, pow(2, (P - 1) // 4, P))
    _set(_KONE, 1)
    _set(_KZERO, 0)


_init_constants()
_b1 = bytearray(32)
_b2 = bytearray(32)
_ZERO32 = bytes(32)
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960


def _run_p(prog):
    _run(_w, 0, prog, len(prog), _tabs)


def _fill_table():
    """_tabs[_ATAB:] = cached 1*P, 3*P, .., 15*P for the point P in slots 20..23 (P is
    overwritten)."""
    w = _w
    tab = _tabs
    _run_p(_P_CACHED)
    _put(tab, _ATAB, w, _CQ, 80)
    _run_p(_P_TWICE_TO_Q)
    for j in range(1, 8):
        _run_p(_P_ADD_CACHED)
        _put(tab, _ATAB + 80 * j, w, _CQ, 80)


_niels_ready = False


def _niels_tables():
    """_tabs[0:_ATAB] (once): entries 0..8 of T_t = 2**(64t) B, affine, for t = 0..3."""
    global _niels_ready
    if not _niels_ready:
        _set(_DX, _BX)
        _set(_DY, _BY)
        _run_p(_P_POINT)
        for t in range(4):
            _run_p(_P_SAVE)
            _run_p(_P_CACHED)
            _run_p(_P_Q_FROM_CQ)
            _run_p(_P_NIELS_ID)
            _put(_tabs, t * 540, _w, _CQ, 60)
            for e in range(1, 9):
                if e > 1:
                    _run_p(_P_ADD)
                _run_p(_P_NIELS)
                _put(_tabs, t * 540 + e * 60, _w, _CQ, 60)
            _run_p(_P_RESTORE)
            for _ in range(16):
                _run_p(_P_DBL4)
        # verify's 1, 3, .., 15 times B
        _set(_DX, _BX)
        _set(_DY, _BY)
        _run_p(_P_POINT)
        _run_p(_P_TWICE_TO_Q)
        for e in range(8):
            if e:
                _run_p(_P_ADD)
            _run_p(_P_NIELS)
            _put(_tabs, _BODD + e * 60, _w, _CQ, 60)
        _niels_ready = True


# ----------------------------------------------------------------------------------- X25519

def x25519(k, u):
    """RFC 7748 X25519 of 32-byte k and u (the caller checks lengths and the all-zero result)."""
    w = _w
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] = (kb[31] & 127) | 64
    _unpack(w, _X1, u)
    _ladder_state(w, _T2, kb)
    _run_p(_LADDER)
    out = bytearray(32)
    _pack(w, 19, out)
    _wipe(w, _SECRET_WORDS)
    kb[0:32] = _ZERO32
    return bytes(out)


# ---------------------------------------------------------------------------------- Ed25519

def _encode(out):
    """out[0:32] = the encoding of P (slots 20..23)."""
    _run_p(_P_ENCODE)
    _pack(_w, _DY, out)
    _pack(_w, _DX, _b2)
    out[31] |= (_b2[0] & 1) << 7


def _base_mult(s):
    """P (slots 20..23) = s*B for a 32-byte little-endian scalar s < 2**255 (secret): signed
    radix-16 digits d_i, s*B = sum over m of 16**m * sum over t of d_(16t+m) T_t, so 60
    doublings and 64 mixed additions (_P_BASE, one _run call); the table reads are masked."""
    if s[31] > 127:
        raise ValueError("scalar >= 2**255")
    w = _w
    _niels_tables()
    _recode(w, _SV * NLIMBS + 2, s)
    w[_SV * NLIMBS] = 16
    _run_p(_P_BASE)


def base_mult_encoded(s):
    """Encoding of s*B (Ed25519 public key / R) for a 32-byte scalar s < 2**255."""
    _base_mult(s)
    out = bytearray(32)
    _encode(out)
    _wipe(_w, _SECRET_WORDS)
    return bytes(out)


def x25519_base(k):
    """X25519(k, 9) via the Edwards fixed-base tables (about half the ladder's work)."""
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] = (kb[31] & 127) | 64
    _base_mult(kb)
    kb[0:32] = _ZERO32
    _run_p(_P_TO_U)
    out = bytearray(32)
    _pack(_w, 19, out)
    _wipe(_w, _SECRET_WORDS)
    return bytes(out)


def _decode(b, negate):
    """Point b into slots 20..23 (negated if asked); False for a non-canonical or absent x."""
    w = _w
    _unpack(w, _DY, b)
    _pack(w, _DY, _b1)
    sign = b[31] >> 7
    if bytes(_b1[0:31]) != bytes(b[0:31]) or _b1[31] != (b[31] & 127):
        return False  # y >= p
    _run_p(_P_DECODE)
    _pack(w, _D1, _b1)
    _pack(w, _DU, _b2)
    if _b1 != _b2:
        _run_p(_P_DECODE_NEG)
        _pack(w, _D3, _b1)
        if _b1 != _ZERO32:
            return False
        _run_p(_P_TIMES_SQRTM1)
    _pack(w, _DX, _b1)
    if sign and _b1 == _ZERO32:
        return False
    if (_b1[0] & 1) != sign:
        _run_p(_P_NEGATE_X)
    _run_p(_P_POINT_NEG if negate else _P_POINT)
    return True


def double_mult_encoded_eq(s, k, a_enc, r_enc):
    """encode(s*B - k*A) == r_enc for public 32-byte scalars s, k < 2**255 and the point
    encoding a_enc (Straus: one run of doublings; width-5 wNAF digits of both scalars, so about
    43 additions each; B's odd multiples are a fixed affine table, -A's are built here;
    _P_STRAUS, one _run call). Variable-time: every input is public."""
    w = _w
    _niels_tables()
    if not _decode(a_enc, True):
        return False
    _fill_table()
    o = _SVW * NLIMBS
    n = _wnaf(w, o, s, 0)
    n2 = _wnaf(w, o, k, 8)
    w[o] = max(n, n2, 1)
    _run_p(_P_STRAUS)
    _pack(w, _DY, _b1)
    _pack(w, _DX, _b2)
    _b1[31] |= (_b2[0] & 1) << 7
    return _b1 == r_enc


def self_test():
    """RFC 7748 6.1 (Alice's key pair, ladder and fixed-base), RFC 8032 test 1 (public key, and
    its signature through the verify path with k = SHA-512(R || A || M) mod L precomputed)."""
    try:
        alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        alice_pub = bytes.fromhex(
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        if x25519(alice, b"\x09" + bytes(31)) != alice_pub or x25519_base(alice) != alice_pub:
            return False
        a = bytes.fromhex("7c2cac12e69be96ae9065065462385e8fcff2768d980c0a3a520f006904de90f")
        pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        if base_mult_encoded(a) != pub:
            return False
        sig = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        k = bytes.fromhex("86eabc8e4c96193d290504e7c600df6cf8d8256131ec2c138a3e7e162e525404")
        if not double_mult_encoded_eq(sig[32:64], k, pub, sig[0:32]):
            return False
        return not double_mult_encoded_eq(sig[32:64], k, pub, bytes(32))
    except Exception:
        return False
