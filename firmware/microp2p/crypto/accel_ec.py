# Viper field arithmetic mod p = 2**255 - 19 and, on it, X25519 (RFC 7748) and Ed25519 point
# arithmetic (RFC 8032) for MicroPython: no big-int temporaries, every field element lives in a
# preallocated buffer. pure.py imports this only when `micropython` exists and uses it only when
# self_test() passes at import; a port without the viper emitter fails to compile the module and
# pure.py keeps the big-int code (curve25519.py).
#
# Representation: a field element is 20 limbs of 13 bits (260 bits) in 32-bit words, "carried"
# when every limb is <= LIMB_MAX (2**13 + 2**7). Every op below leaves its result carried, so:
#   - a product column sums at most 20 * LIMB_MAX**2 < 1.39e9 < 2**31,
#   - a*121665 < 1.02e9, and a - b is computed as a + 64p - b with 64p's limbs >= 15168 > LIMB_MAX,
# i.e. every intermediate fits a signed 32-bit viper word (ESP32, RP2040): products never need a
# high half. tests/host/test_viper_bounds.py runs these same function bodies on CPython with every
# intermediate checked against that bound. No literal >= 2**30 appears in viper code (a compile
# error on 32-bit ports).
#
# The field ops are run by one viper interpreter, _run(w, prog, nbytes), over slots of the work
# buffer w (slot s = words 20s .. 20s+19); a program is bytes of (op, dst, a, b) quadruples. One
# call per ladder step / point operation instead of one per field op.
#
# Buffers are module-level scratch, shared by the (synchronous) calls: safe under asyncio, not
# across threads. Secret-dependent slots are wiped before each public function returns.
# Timing: the ladder's swaps and the signing table lookup are masked (no secret-dependent branch
# or index); the interpreter's own work does not depend on values. MicroPython makes no stronger
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
A24 = 5  # dst = a * 121665
COPY = 6

_w = array("I", [0] * (NSLOTS * NLIMBS))
_atab = array("H", [0] * (9 * 80))  # verify: cached 0..8 times -A (public data)
# signing: affine (y-x, y+x, 2dxy) of 0..8 times T_t = 2**(64t) B for t = 0..3 (60 words each)
_ntab = array("H", [0] * (4 * 9 * 60))
_bytes = bytearray(32)


@micropython.viper
def _run(w: ptr32, prog: ptr8, n: int):
    m = 0x1FFF
    pc = 0
    while pc < n:
        op = prog[pc]
        d = prog[pc + 1] * 20
        a = prog[pc + 2] * 20
        b = prog[pc + 3] * 20
        pc += 4
        # operand pointers: constant-offset loads and stores below, no per-access indexing
        pd = ptr32(uint(w) + uint(d << 2))
        pa = ptr32(uint(w) + uint(a << 2))
        pb = ptr32(uint(w) + uint(b << 2))
        if op == 0:
            # column k of a*b, carried on the fly; columns 20..38 fold back times 2**260 mod p = 608
            a0 = pa[0]
            a1 = pa[1]
            a2 = pa[2]
            a3 = pa[3]
            a4 = pa[4]
            a5 = pa[5]
            a6 = pa[6]
            a7 = pa[7]
            a8 = pa[8]
            a9 = pa[9]
            a10 = pa[10]
            a11 = pa[11]
            a12 = pa[12]
            a13 = pa[13]
            a14 = pa[14]
            a15 = pa[15]
            a16 = pa[16]
            a17 = pa[17]
            a18 = pa[18]
            a19 = pa[19]
            b0 = pb[0]
            b1 = pb[1]
            b2 = pb[2]
            b3 = pb[3]
            b4 = pb[4]
            b5 = pb[5]
            b6 = pb[6]
            b7 = pb[7]
            b8 = pb[8]
            b9 = pb[9]
            b10 = pb[10]
            b11 = pb[11]
            b12 = pb[12]
            b13 = pb[13]
            b14 = pb[14]
            b15 = pb[15]
            b16 = pb[16]
            b17 = pb[17]
            b18 = pb[18]
            b19 = pb[19]
            c = 0
            v = a0 * b0 + c
            pd[0] = v & m
            c = v >> 13
            v = a0 * b1 + a1 * b0 + c
            pd[1] = v & m
            c = v >> 13
            v = a0 * b2 + a1 * b1 + a2 * b0 + c
            pd[2] = v & m
            c = v >> 13
            v = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + c
            pd[3] = v & m
            c = v >> 13
            v = a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0 + c
            pd[4] = v & m
            c = v >> 13
            v = a0 * b5 + a1 * b4 + a2 * b3 + a3 * b2 + a4 * b1 + a5 * b0 + c
            pd[5] = v & m
            c = v >> 13
            v = a0 * b6 + a1 * b5 + a2 * b4 + a3 * b3 + a4 * b2 + a5 * b1 + a6 * b0 + c
            pd[6] = v & m
            c = v >> 13
            v = a0 * b7 + a1 * b6 + a2 * b5 + a3 * b4 + a4 * b3 + a5 * b2 + a6 * b1 + a7 * b0 + c
            pd[7] = v & m
            c = v >> 13
            v = a0 * b8 + a1 * b7 + a2 * b6 + a3 * b5 + a4 * b4 + a5 * b3 + a6 * b2 + a7 * b1 + a8 * b0 + c
            pd[8] = v & m
            c = v >> 13
            v = a0 * b9 + a1 * b8 + a2 * b7 + a3 * b6 + a4 * b5 + a5 * b4 + a6 * b3 + a7 * b2 + a8 * b1 + a9 * b0 + c
            pd[9] = v & m
            c = v >> 13
            v = a0 * b10 + a1 * b9 + a2 * b8 + a3 * b7 + a4 * b6 + a5 * b5 + a6 * b4 + a7 * b3 + a8 * b2 + a9 * b1 + a10 * b0 + c
            pd[10] = v & m
            c = v >> 13
            v = a0 * b11 + a1 * b10 + a2 * b9 + a3 * b8 + a4 * b7 + a5 * b6 + a6 * b5 + a7 * b4 + a8 * b3 + a9 * b2 + a10 * b1 + a11 * b0 + c
            pd[11] = v & m
            c = v >> 13
            v = a0 * b12 + a1 * b11 + a2 * b10 + a3 * b9 + a4 * b8 + a5 * b7 + a6 * b6 + a7 * b5 + a8 * b4 + a9 * b3 + a10 * b2 + a11 * b1 + a12 * b0 + c
            pd[12] = v & m
            c = v >> 13
            v = a0 * b13 + a1 * b12 + a2 * b11 + a3 * b10 + a4 * b9 + a5 * b8 + a6 * b7 + a7 * b6 + a8 * b5 + a9 * b4 + a10 * b3 + a11 * b2 + a12 * b1 + a13 * b0 + c
            pd[13] = v & m
            c = v >> 13
            v = a0 * b14 + a1 * b13 + a2 * b12 + a3 * b11 + a4 * b10 + a5 * b9 + a6 * b8 + a7 * b7 + a8 * b6 + a9 * b5 + a10 * b4 + a11 * b3 + a12 * b2 + a13 * b1 + a14 * b0 + c
            pd[14] = v & m
            c = v >> 13
            v = a0 * b15 + a1 * b14 + a2 * b13 + a3 * b12 + a4 * b11 + a5 * b10 + a6 * b9 + a7 * b8 + a8 * b7 + a9 * b6 + a10 * b5 + a11 * b4 + a12 * b3 + a13 * b2 + a14 * b1 + a15 * b0 + c
            pd[15] = v & m
            c = v >> 13
            v = a0 * b16 + a1 * b15 + a2 * b14 + a3 * b13 + a4 * b12 + a5 * b11 + a6 * b10 + a7 * b9 + a8 * b8 + a9 * b7 + a10 * b6 + a11 * b5 + a12 * b4 + a13 * b3 + a14 * b2 + a15 * b1 + a16 * b0 + c
            pd[16] = v & m
            c = v >> 13
            v = a0 * b17 + a1 * b16 + a2 * b15 + a3 * b14 + a4 * b13 + a5 * b12 + a6 * b11 + a7 * b10 + a8 * b9 + a9 * b8 + a10 * b7 + a11 * b6 + a12 * b5 + a13 * b4 + a14 * b3 + a15 * b2 + a16 * b1 + a17 * b0 + c
            pd[17] = v & m
            c = v >> 13
            v = a0 * b18 + a1 * b17 + a2 * b16 + a3 * b15 + a4 * b14 + a5 * b13 + a6 * b12 + a7 * b11 + a8 * b10 + a9 * b9 + a10 * b8 + a11 * b7 + a12 * b6 + a13 * b5 + a14 * b4 + a15 * b3 + a16 * b2 + a17 * b1 + a18 * b0 + c
            pd[18] = v & m
            c = v >> 13
            v = a0 * b19 + a1 * b18 + a2 * b17 + a3 * b16 + a4 * b15 + a5 * b14 + a6 * b13 + a7 * b12 + a8 * b11 + a9 * b10 + a10 * b9 + a11 * b8 + a12 * b7 + a13 * b6 + a14 * b5 + a15 * b4 + a16 * b3 + a17 * b2 + a18 * b1 + a19 * b0 + c
            pd[19] = v & m
            c = v >> 13
            v = a1 * b19 + a2 * b18 + a3 * b17 + a4 * b16 + a5 * b15 + a6 * b14 + a7 * b13 + a8 * b12 + a9 * b11 + a10 * b10 + a11 * b9 + a12 * b8 + a13 * b7 + a14 * b6 + a15 * b5 + a16 * b4 + a17 * b3 + a18 * b2 + a19 * b1 + c
            pd[0] = pd[0] + (v & m) * 608
            c = v >> 13
            v = a2 * b19 + a3 * b18 + a4 * b17 + a5 * b16 + a6 * b15 + a7 * b14 + a8 * b13 + a9 * b12 + a10 * b11 + a11 * b10 + a12 * b9 + a13 * b8 + a14 * b7 + a15 * b6 + a16 * b5 + a17 * b4 + a18 * b3 + a19 * b2 + c
            pd[1] = pd[1] + (v & m) * 608
            c = v >> 13
            v = a3 * b19 + a4 * b18 + a5 * b17 + a6 * b16 + a7 * b15 + a8 * b14 + a9 * b13 + a10 * b12 + a11 * b11 + a12 * b10 + a13 * b9 + a14 * b8 + a15 * b7 + a16 * b6 + a17 * b5 + a18 * b4 + a19 * b3 + c
            pd[2] = pd[2] + (v & m) * 608
            c = v >> 13
            v = a4 * b19 + a5 * b18 + a6 * b17 + a7 * b16 + a8 * b15 + a9 * b14 + a10 * b13 + a11 * b12 + a12 * b11 + a13 * b10 + a14 * b9 + a15 * b8 + a16 * b7 + a17 * b6 + a18 * b5 + a19 * b4 + c
            pd[3] = pd[3] + (v & m) * 608
            c = v >> 13
            v = a5 * b19 + a6 * b18 + a7 * b17 + a8 * b16 + a9 * b15 + a10 * b14 + a11 * b13 + a12 * b12 + a13 * b11 + a14 * b10 + a15 * b9 + a16 * b8 + a17 * b7 + a18 * b6 + a19 * b5 + c
            pd[4] = pd[4] + (v & m) * 608
            c = v >> 13
            v = a6 * b19 + a7 * b18 + a8 * b17 + a9 * b16 + a10 * b15 + a11 * b14 + a12 * b13 + a13 * b12 + a14 * b11 + a15 * b10 + a16 * b9 + a17 * b8 + a18 * b7 + a19 * b6 + c
            pd[5] = pd[5] + (v & m) * 608
            c = v >> 13
            v = a7 * b19 + a8 * b18 + a9 * b17 + a10 * b16 + a11 * b15 + a12 * b14 + a13 * b13 + a14 * b12 + a15 * b11 + a16 * b10 + a17 * b9 + a18 * b8 + a19 * b7 + c
            pd[6] = pd[6] + (v & m) * 608
            c = v >> 13
            v = a8 * b19 + a9 * b18 + a10 * b17 + a11 * b16 + a12 * b15 + a13 * b14 + a14 * b13 + a15 * b12 + a16 * b11 + a17 * b10 + a18 * b9 + a19 * b8 + c
            pd[7] = pd[7] + (v & m) * 608
            c = v >> 13
            v = a9 * b19 + a10 * b18 + a11 * b17 + a12 * b16 + a13 * b15 + a14 * b14 + a15 * b13 + a16 * b12 + a17 * b11 + a18 * b10 + a19 * b9 + c
            pd[8] = pd[8] + (v & m) * 608
            c = v >> 13
            v = a10 * b19 + a11 * b18 + a12 * b17 + a13 * b16 + a14 * b15 + a15 * b14 + a16 * b13 + a17 * b12 + a18 * b11 + a19 * b10 + c
            pd[9] = pd[9] + (v & m) * 608
            c = v >> 13
            v = a11 * b19 + a12 * b18 + a13 * b17 + a14 * b16 + a15 * b15 + a16 * b14 + a17 * b13 + a18 * b12 + a19 * b11 + c
            pd[10] = pd[10] + (v & m) * 608
            c = v >> 13
            v = a12 * b19 + a13 * b18 + a14 * b17 + a15 * b16 + a16 * b15 + a17 * b14 + a18 * b13 + a19 * b12 + c
            pd[11] = pd[11] + (v & m) * 608
            c = v >> 13
            v = a13 * b19 + a14 * b18 + a15 * b17 + a16 * b16 + a17 * b15 + a18 * b14 + a19 * b13 + c
            pd[12] = pd[12] + (v & m) * 608
            c = v >> 13
            v = a14 * b19 + a15 * b18 + a16 * b17 + a17 * b16 + a18 * b15 + a19 * b14 + c
            pd[13] = pd[13] + (v & m) * 608
            c = v >> 13
            v = a15 * b19 + a16 * b18 + a17 * b17 + a18 * b16 + a19 * b15 + c
            pd[14] = pd[14] + (v & m) * 608
            c = v >> 13
            v = a16 * b19 + a17 * b18 + a18 * b17 + a19 * b16 + c
            pd[15] = pd[15] + (v & m) * 608
            c = v >> 13
            v = a17 * b19 + a18 * b18 + a19 * b17 + c
            pd[16] = pd[16] + (v & m) * 608
            c = v >> 13
            v = a18 * b19 + a19 * b18 + c
            pd[17] = pd[17] + (v & m) * 608
            c = v >> 13
            v = a19 * b19 + c
            pd[18] = pd[18] + (v & m) * 608
            c = v >> 13
            pd[19] = pd[19] + c * 608
            c = 0
            i = 0
            while i < 20:
                v = pd[i] + c
                pd[i] = v & m
                c = v >> 13
                i += 1
            v = pd[0] + c * 608
            pd[0] = v & m
            v = pd[1] + (v >> 13)
            pd[1] = v & m
            pd[2] = pd[2] + (v >> 13)
        elif op <= 2:
            rep = 1
            if op == 2:
                rep = prog[pc - 1]
            while rep > 0:
                # squaring: each cross product once, doubled
                a0 = pa[0]
                a1 = pa[1]
                a2 = pa[2]
                a3 = pa[3]
                a4 = pa[4]
                a5 = pa[5]
                a6 = pa[6]
                a7 = pa[7]
                a8 = pa[8]
                a9 = pa[9]
                a10 = pa[10]
                a11 = pa[11]
                a12 = pa[12]
                a13 = pa[13]
                a14 = pa[14]
                a15 = pa[15]
                a16 = pa[16]
                a17 = pa[17]
                a18 = pa[18]
                a19 = pa[19]
                c = 0
                v = a0 * a0 + c
                pd[0] = v & m
                c = v >> 13
                v = (a0 * a1) * 2 + c
                pd[1] = v & m
                c = v >> 13
                v = (a0 * a2) * 2 + a1 * a1 + c
                pd[2] = v & m
                c = v >> 13
                v = (a0 * a3 + a1 * a2) * 2 + c
                pd[3] = v & m
                c = v >> 13
                v = (a0 * a4 + a1 * a3) * 2 + a2 * a2 + c
                pd[4] = v & m
                c = v >> 13
                v = (a0 * a5 + a1 * a4 + a2 * a3) * 2 + c
                pd[5] = v & m
                c = v >> 13
                v = (a0 * a6 + a1 * a5 + a2 * a4) * 2 + a3 * a3 + c
                pd[6] = v & m
                c = v >> 13
                v = (a0 * a7 + a1 * a6 + a2 * a5 + a3 * a4) * 2 + c
                pd[7] = v & m
                c = v >> 13
                v = (a0 * a8 + a1 * a7 + a2 * a6 + a3 * a5) * 2 + a4 * a4 + c
                pd[8] = v & m
                c = v >> 13
                v = (a0 * a9 + a1 * a8 + a2 * a7 + a3 * a6 + a4 * a5) * 2 + c
                pd[9] = v & m
                c = v >> 13
                v = (a0 * a10 + a1 * a9 + a2 * a8 + a3 * a7 + a4 * a6) * 2 + a5 * a5 + c
                pd[10] = v & m
                c = v >> 13
                v = (a0 * a11 + a1 * a10 + a2 * a9 + a3 * a8 + a4 * a7 + a5 * a6) * 2 + c
                pd[11] = v & m
                c = v >> 13
                v = (a0 * a12 + a1 * a11 + a2 * a10 + a3 * a9 + a4 * a8 + a5 * a7) * 2 + a6 * a6 + c
                pd[12] = v & m
                c = v >> 13
                v = (a0 * a13 + a1 * a12 + a2 * a11 + a3 * a10 + a4 * a9 + a5 * a8 + a6 * a7) * 2 + c
                pd[13] = v & m
                c = v >> 13
                v = (a0 * a14 + a1 * a13 + a2 * a12 + a3 * a11 + a4 * a10 + a5 * a9 + a6 * a8) * 2 + a7 * a7 + c
                pd[14] = v & m
                c = v >> 13
                v = (a0 * a15 + a1 * a14 + a2 * a13 + a3 * a12 + a4 * a11 + a5 * a10 + a6 * a9 + a7 * a8) * 2 + c
                pd[15] = v & m
                c = v >> 13
                v = (a0 * a16 + a1 * a15 + a2 * a14 + a3 * a13 + a4 * a12 + a5 * a11 + a6 * a10 + a7 * a9) * 2 + a8 * a8 + c
                pd[16] = v & m
                c = v >> 13
                v = (a0 * a17 + a1 * a16 + a2 * a15 + a3 * a14 + a4 * a13 + a5 * a12 + a6 * a11 + a7 * a10 + a8 * a9) * 2 + c
                pd[17] = v & m
                c = v >> 13
                v = (a0 * a18 + a1 * a17 + a2 * a16 + a3 * a15 + a4 * a14 + a5 * a13 + a6 * a12 + a7 * a11 + a8 * a10) * 2 + a9 * a9 + c
                pd[18] = v & m
                c = v >> 13
                v = (a0 * a19 + a1 * a18 + a2 * a17 + a3 * a16 + a4 * a15 + a5 * a14 + a6 * a13 + a7 * a12 + a8 * a11 + a9 * a10) * 2 + c
                pd[19] = v & m
                c = v >> 13
                v = (a1 * a19 + a2 * a18 + a3 * a17 + a4 * a16 + a5 * a15 + a6 * a14 + a7 * a13 + a8 * a12 + a9 * a11) * 2 + a10 * a10 + c
                pd[0] = pd[0] + (v & m) * 608
                c = v >> 13
                v = (a2 * a19 + a3 * a18 + a4 * a17 + a5 * a16 + a6 * a15 + a7 * a14 + a8 * a13 + a9 * a12 + a10 * a11) * 2 + c
                pd[1] = pd[1] + (v & m) * 608
                c = v >> 13
                v = (a3 * a19 + a4 * a18 + a5 * a17 + a6 * a16 + a7 * a15 + a8 * a14 + a9 * a13 + a10 * a12) * 2 + a11 * a11 + c
                pd[2] = pd[2] + (v & m) * 608
                c = v >> 13
                v = (a4 * a19 + a5 * a18 + a6 * a17 + a7 * a16 + a8 * a15 + a9 * a14 + a10 * a13 + a11 * a12) * 2 + c
                pd[3] = pd[3] + (v & m) * 608
                c = v >> 13
                v = (a5 * a19 + a6 * a18 + a7 * a17 + a8 * a16 + a9 * a15 + a10 * a14 + a11 * a13) * 2 + a12 * a12 + c
                pd[4] = pd[4] + (v & m) * 608
                c = v >> 13
                v = (a6 * a19 + a7 * a18 + a8 * a17 + a9 * a16 + a10 * a15 + a11 * a14 + a12 * a13) * 2 + c
                pd[5] = pd[5] + (v & m) * 608
                c = v >> 13
                v = (a7 * a19 + a8 * a18 + a9 * a17 + a10 * a16 + a11 * a15 + a12 * a14) * 2 + a13 * a13 + c
                pd[6] = pd[6] + (v & m) * 608
                c = v >> 13
                v = (a8 * a19 + a9 * a18 + a10 * a17 + a11 * a16 + a12 * a15 + a13 * a14) * 2 + c
                pd[7] = pd[7] + (v & m) * 608
                c = v >> 13
                v = (a9 * a19 + a10 * a18 + a11 * a17 + a12 * a16 + a13 * a15) * 2 + a14 * a14 + c
                pd[8] = pd[8] + (v & m) * 608
                c = v >> 13
                v = (a10 * a19 + a11 * a18 + a12 * a17 + a13 * a16 + a14 * a15) * 2 + c
                pd[9] = pd[9] + (v & m) * 608
                c = v >> 13
                v = (a11 * a19 + a12 * a18 + a13 * a17 + a14 * a16) * 2 + a15 * a15 + c
                pd[10] = pd[10] + (v & m) * 608
                c = v >> 13
                v = (a12 * a19 + a13 * a18 + a14 * a17 + a15 * a16) * 2 + c
                pd[11] = pd[11] + (v & m) * 608
                c = v >> 13
                v = (a13 * a19 + a14 * a18 + a15 * a17) * 2 + a16 * a16 + c
                pd[12] = pd[12] + (v & m) * 608
                c = v >> 13
                v = (a14 * a19 + a15 * a18 + a16 * a17) * 2 + c
                pd[13] = pd[13] + (v & m) * 608
                c = v >> 13
                v = (a15 * a19 + a16 * a18) * 2 + a17 * a17 + c
                pd[14] = pd[14] + (v & m) * 608
                c = v >> 13
                v = (a16 * a19 + a17 * a18) * 2 + c
                pd[15] = pd[15] + (v & m) * 608
                c = v >> 13
                v = (a17 * a19) * 2 + a18 * a18 + c
                pd[16] = pd[16] + (v & m) * 608
                c = v >> 13
                v = (a18 * a19) * 2 + c
                pd[17] = pd[17] + (v & m) * 608
                c = v >> 13
                v = a19 * a19 + c
                pd[18] = pd[18] + (v & m) * 608
                c = v >> 13
                pd[19] = pd[19] + c * 608
                c = 0
                i = 0
                while i < 20:
                    v = pd[i] + c
                    pd[i] = v & m
                    c = v >> 13
                    i += 1
                v = pd[0] + c * 608
                pd[0] = v & m
                v = pd[1] + (v >> 13)
                pd[1] = v & m
                pd[2] = pd[2] + (v >> 13)
                pa = pd
                rep -= 1
        elif op == 3:
            c = 0
            v = pa[0] + pb[0] + c
            pd[0] = v & m
            c = v >> 13
            v = pa[1] + pb[1] + c
            pd[1] = v & m
            c = v >> 13
            v = pa[2] + pb[2] + c
            pd[2] = v & m
            c = v >> 13
            v = pa[3] + pb[3] + c
            pd[3] = v & m
            c = v >> 13
            v = pa[4] + pb[4] + c
            pd[4] = v & m
            c = v >> 13
            v = pa[5] + pb[5] + c
            pd[5] = v & m
            c = v >> 13
            v = pa[6] + pb[6] + c
            pd[6] = v & m
            c = v >> 13
            v = pa[7] + pb[7] + c
            pd[7] = v & m
            c = v >> 13
            v = pa[8] + pb[8] + c
            pd[8] = v & m
            c = v >> 13
            v = pa[9] + pb[9] + c
            pd[9] = v & m
            c = v >> 13
            v = pa[10] + pb[10] + c
            pd[10] = v & m
            c = v >> 13
            v = pa[11] + pb[11] + c
            pd[11] = v & m
            c = v >> 13
            v = pa[12] + pb[12] + c
            pd[12] = v & m
            c = v >> 13
            v = pa[13] + pb[13] + c
            pd[13] = v & m
            c = v >> 13
            v = pa[14] + pb[14] + c
            pd[14] = v & m
            c = v >> 13
            v = pa[15] + pb[15] + c
            pd[15] = v & m
            c = v >> 13
            v = pa[16] + pb[16] + c
            pd[16] = v & m
            c = v >> 13
            v = pa[17] + pb[17] + c
            pd[17] = v & m
            c = v >> 13
            v = pa[18] + pb[18] + c
            pd[18] = v & m
            c = v >> 13
            v = pa[19] + pb[19] + c
            pd[19] = v & m
            v = pd[0] + (v >> 13) * 608
            pd[0] = v & m
            v = pd[1] + (v >> 13)
            pd[1] = v & m
            pd[2] = pd[2] + (v >> 13)
        elif op == 4:
            # a + 64p - b: 64p = 2**261 - 1216 has limbs 15168, 16382 x 19, each above LIMB_MAX
            c = 0
            v = pa[0] + 15168 - pb[0] + c
            pd[0] = v & m
            c = v >> 13
            v = pa[1] + 16382 - pb[1] + c
            pd[1] = v & m
            c = v >> 13
            v = pa[2] + 16382 - pb[2] + c
            pd[2] = v & m
            c = v >> 13
            v = pa[3] + 16382 - pb[3] + c
            pd[3] = v & m
            c = v >> 13
            v = pa[4] + 16382 - pb[4] + c
            pd[4] = v & m
            c = v >> 13
            v = pa[5] + 16382 - pb[5] + c
            pd[5] = v & m
            c = v >> 13
            v = pa[6] + 16382 - pb[6] + c
            pd[6] = v & m
            c = v >> 13
            v = pa[7] + 16382 - pb[7] + c
            pd[7] = v & m
            c = v >> 13
            v = pa[8] + 16382 - pb[8] + c
            pd[8] = v & m
            c = v >> 13
            v = pa[9] + 16382 - pb[9] + c
            pd[9] = v & m
            c = v >> 13
            v = pa[10] + 16382 - pb[10] + c
            pd[10] = v & m
            c = v >> 13
            v = pa[11] + 16382 - pb[11] + c
            pd[11] = v & m
            c = v >> 13
            v = pa[12] + 16382 - pb[12] + c
            pd[12] = v & m
            c = v >> 13
            v = pa[13] + 16382 - pb[13] + c
            pd[13] = v & m
            c = v >> 13
            v = pa[14] + 16382 - pb[14] + c
            pd[14] = v & m
            c = v >> 13
            v = pa[15] + 16382 - pb[15] + c
            pd[15] = v & m
            c = v >> 13
            v = pa[16] + 16382 - pb[16] + c
            pd[16] = v & m
            c = v >> 13
            v = pa[17] + 16382 - pb[17] + c
            pd[17] = v & m
            c = v >> 13
            v = pa[18] + 16382 - pb[18] + c
            pd[18] = v & m
            c = v >> 13
            v = pa[19] + 16382 - pb[19] + c
            pd[19] = v & m
            v = pd[0] + (v >> 13) * 608
            pd[0] = v & m
            v = pd[1] + (v >> 13)
            pd[1] = v & m
            pd[2] = pd[2] + (v >> 13)
        elif op == 5:
            c = 0
            v = pa[0] * 121665 + c
            pd[0] = v & m
            c = v >> 13
            v = pa[1] * 121665 + c
            pd[1] = v & m
            c = v >> 13
            v = pa[2] * 121665 + c
            pd[2] = v & m
            c = v >> 13
            v = pa[3] * 121665 + c
            pd[3] = v & m
            c = v >> 13
            v = pa[4] * 121665 + c
            pd[4] = v & m
            c = v >> 13
            v = pa[5] * 121665 + c
            pd[5] = v & m
            c = v >> 13
            v = pa[6] * 121665 + c
            pd[6] = v & m
            c = v >> 13
            v = pa[7] * 121665 + c
            pd[7] = v & m
            c = v >> 13
            v = pa[8] * 121665 + c
            pd[8] = v & m
            c = v >> 13
            v = pa[9] * 121665 + c
            pd[9] = v & m
            c = v >> 13
            v = pa[10] * 121665 + c
            pd[10] = v & m
            c = v >> 13
            v = pa[11] * 121665 + c
            pd[11] = v & m
            c = v >> 13
            v = pa[12] * 121665 + c
            pd[12] = v & m
            c = v >> 13
            v = pa[13] * 121665 + c
            pd[13] = v & m
            c = v >> 13
            v = pa[14] * 121665 + c
            pd[14] = v & m
            c = v >> 13
            v = pa[15] * 121665 + c
            pd[15] = v & m
            c = v >> 13
            v = pa[16] * 121665 + c
            pd[16] = v & m
            c = v >> 13
            v = pa[17] * 121665 + c
            pd[17] = v & m
            c = v >> 13
            v = pa[18] * 121665 + c
            pd[18] = v & m
            c = v >> 13
            v = pa[19] * 121665 + c
            pd[19] = v & m
            v = pd[0] + (v >> 13) * 608
            pd[0] = v & m
            v = pd[1] + (v >> 13)
            pd[1] = v & m
            pd[2] = pd[2] + (v >> 13)
        else:
            i = 0
            while i < 20:
                pd[i] = pa[i]
                i += 1


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
def _ladder(wobj, k: ptr8, prog, n: int):
    """RFC 7748 ladder over slots x2 z2 x3 z3 = 1..4 (x1 in slot 0), scalar bytes k (clamped)."""
    w = ptr32(wobj)
    swap = 0
    t = 254
    while t >= 0:
        bit = (k[t >> 3] >> (t & 7)) & 1
        mask = 0 - (swap ^ bit)
        j = 20
        while j < 60:  # masked swap of (x2, z2) with (x3, z3)
            x = (w[j] ^ w[j + 40]) & mask
            w[j] = w[j] ^ x
            w[j + 40] = w[j + 40] ^ x
            j += 1
        swap = bit
        _run(wobj, prog, n)
        t -= 1
    mask = 0 - swap
    j = 20
    while j < 60:
        x = (w[j] ^ w[j + 40]) & mask
        w[j] = w[j] ^ x
        w[j + 40] = w[j + 40] ^ x
        j += 1


@micropython.viper
def _get(w: ptr32, d: int, tab: ptr16, off: int, n: int):
    """n words from tab[off:] into the work buffer from slot d on."""
    d = d * 20
    k = 0
    while k < n:
        w[d + k] = tab[off + k]
        k += 1


@micropython.viper
def _put(tab: ptr16, off: int, w: ptr32, s: int, n: int):
    """tab[off:off + n] = n words of the work buffer from slot s on."""
    s = s * 20
    k = 0
    while k < n:
        tab[off + k] = w[s + k]
        k += 1


@micropython.viper
def _select_niels(w: ptr32, q: int, tab: ptr16, t: int, dig: int):
    """Slots q..q+2 = dig * T_t (dig in -8..8) from table t's affine entries 0..8 (y-x, y+x,
    2dxy), reading all nine entries; a negative dig swaps y-x/y+x and negates 2dxy. All masked
    (dig is secret); slots q+3 and q+4 are scratch."""
    neg = (dig >> 8) & 1
    ad = dig - (dig + dig) * neg
    pq = ptr32(uint(w) + uint(q * 80))
    # the table's halfword limbs are read in pairs, as 32-bit words (all targets are
    # little-endian; entries start at even halfword offsets), into 30 words at slot q+3..
    k = 60
    while k < 90:
        pq[k] = 0
        k += 1
    e = 0
    while e < 9:
        mask = 0 - ((((e ^ ad) - 1) >> 8) & 1)
        pt = ptr32(uint(tab) + uint((t * 540 + e * 60) << 1))
        k = 0
        while k < 30:
            pq[k + 60] = pq[k + 60] | (pt[k] & mask)
            pq[k + 61] = pq[k + 61] | (pt[k + 1] & mask)
            pq[k + 62] = pq[k + 62] | (pt[k + 2] & mask)
            k += 3
        e += 1
    k = 0
    while k < 30:
        x = pq[k + 60]
        pq[k + k] = x & 0xFFFF
        pq[k + k + 1] = x >> 16
        k += 1
    mask = 0 - neg
    k = 0
    while k < 20:
        x = (pq[k] ^ pq[k + 20]) & mask
        pq[k] = pq[k] ^ x
        pq[k + 20] = pq[k + 20] ^ x
        k += 1
    # -2dxy = 64p - 2dxy, carried, into slot q+3; then masked copy over slot q+2
    c = 0
    k = 0
    while k < 20:
        kk = 16382
        if k == 0:
            kk = 15168
        v = kk - pq[k + 40] + c
        pq[k + 60] = v & 0x1FFF
        c = v >> 13
        k += 1
    v = pq[60] + c * 608
    pq[60] = v & 0x1FFF
    v = pq[61] + (v >> 13)
    pq[61] = v & 0x1FFF
    pq[62] = pq[62] + (v >> 13)
    k = 40
    while k < 60:
        pq[k] = pq[k] ^ ((pq[k] ^ pq[k + 20]) & mask)
        k += 1


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


_LADDER_STEP = _prog([
    (ADD, 5, _X2, _Z2), (SQR, 6, 5), (SUB, 7, _X2, _Z2), (SQR, 8, 7), (SUB, 9, 6, 8),
    (ADD, 10, _X3, _Z3), (SUB, 11, _X3, _Z3), (MUL, 12, 11, 5), (MUL, 13, 10, 7),
    (ADD, _X3, 12, 13), (SQR, _X3, _X3), (SUB, _Z3, 12, 13), (SQR, _Z3, _Z3),
    (MUL, _Z3, _X1, _Z3), (MUL, _X2, 6, 8), (A24, _Z2, 9), (ADD, _Z2, 6, _Z2),
    (MUL, _Z2, 9, _Z2)])
_LADDER_INIT = _prog([(COPY, _X2, _KONE), (COPY, _Z2, _KZERO), (COPY, _X3, _X1),
                      (COPY, _Z3, _KONE)])
_LADDER_END = _prog(_chain(_Z2, 18, "inv") + [(MUL, 19, _X2, 18)])

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
_P_MADD = _prog([(SUB, _A, _PY, _PX), (MUL, _A, _A, _Q), (ADD, _B, _PY, _PX),
                 (MUL, _B, _B, _Q + 1), (MUL, _C, _PT, _Q + 2), (ADD, _D, _PZ, _PZ),
                 (SUB, _E, _B, _A), (SUB, _F, _D, _C), (ADD, _G, _D, _C), (ADD, _H, _B, _A),
                 (MUL, _PX, _E, _F), (MUL, _PY, _G, _H), (MUL, _PZ, _F, _G), (MUL, _PT, _E, _H)])
_P_DBL4 = _prog(_dbl(False) * 3 + _dbl(True))  # T is only read by the addition that follows
_P_IDENTITY = _prog([(COPY, _PX, _KZERO), (COPY, _PY, _KONE), (COPY, _PZ, _KONE),
                     (COPY, _PT, _KZERO)])
_P_CACHED = _prog([(SUB, _CQ, _PY, _PX), (ADD, _CQ + 1, _PY, _PX), (MUL, _CQ + 2, _PT, _KD2),
                   (ADD, _CQ + 3, _PZ, _PZ)])
_P_CACHED_ID = _prog([(COPY, _CQ, _KONE), (COPY, _CQ + 1, _KONE), (COPY, _CQ + 2, _KZERO),
                      (ADD, _CQ + 3, _KONE, _KONE)])
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
# -Q for Q = (y-x, y+x, 2dxy[, 2z]) in slots 24..: swap the first two, negate the third
_P_NEG_Q = _prog([(COPY, 52, _Q), (COPY, _Q, _Q + 1), (COPY, _Q + 1, 52),
                  (SUB, _Q + 2, _KZERO, _Q + 2)])
_P_NIELS_ID = _prog([(COPY, _CQ, _KONE), (COPY, _CQ + 1, _KONE), (COPY, _CQ + 2, _KZERO)])
_P_SAVE = _prog([(COPY, 52 + i, _PX + i) for i in range(4)])
_P_RESTORE = _prog([(COPY, _PX + i, 52 + i) for i in range(4)])
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
    _run(_w, prog, len(prog))


def _fill_table(tab):
    """tab = cached 0*P .. 8*P for the point P in slots 20..23 (P is overwritten)."""
    w = _w
    _run_p(_P_CACHED_ID)
    _put(tab, 0, w, _CQ, 80)
    _run_p(_P_CACHED)
    _put(tab, 80, w, _CQ, 80)
    _get(w, _Q, tab, 80, 80)
    for j in range(2, 9):
        _run_p(_P_ADD)
        _run_p(_P_CACHED)
        _put(tab, 80 * j, w, _CQ, 80)


_niels_ready = False


def _niels_tables():
    """_ntab (once): entries 0..8 of T_t = 2**(64t) B, affine, for t = 0..3."""
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
            _put(_ntab, t * 540, _w, _CQ, 60)
            for e in range(1, 9):
                if e > 1:
                    _run_p(_P_ADD)
                _run_p(_P_NIELS)
                _put(_ntab, t * 540 + e * 60, _w, _CQ, 60)
            _run_p(_P_RESTORE)
            for _ in range(16):
                _run_p(_P_DBL4)
        _niels_ready = True
    return _ntab


def _recode(s):
    """Signed radix-16 digits (-8..7, the top one 0..8) of the 32-byte scalar s < 2**255, each
    stored as digit + 8."""
    out = bytearray(64)
    carry = 0
    for i in range(63):
        e = ((s[i >> 1] >> ((i & 1) << 2)) & 15) + carry
        carry = (e + 8) >> 4
        out[i] = e - (carry << 4) + 8
    out[63] = (s[31] >> 4) + carry + 8  # top digit 0..8: no carry out for s < 2**255
    return out


# ----------------------------------------------------------------------------------- X25519

def x25519(k, u):
    """RFC 7748 X25519 of 32-byte k and u (the caller checks lengths and the all-zero result)."""
    w = _w
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] = (kb[31] & 127) | 64
    _unpack(w, _X1, u)
    _run_p(_LADDER_INIT)
    _ladder(w, kb, _LADDER_STEP, len(_LADDER_STEP))
    _run_p(_LADDER_END)
    out = bytearray(32)
    _pack(w, 19, out)
    _wipe(w, _SECRET_WORDS)
    for i in range(32):
        kb[i] = 0
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
    doublings and 64 mixed additions; the table reads are masked."""
    if s[31] > 127:
        raise ValueError("scalar >= 2**255")
    w = _w
    tab = _niels_tables()
    dig = _recode(s)
    _run_p(_P_IDENTITY)
    m = 15
    while m >= 0:
        if m != 15:
            _run_p(_P_DBL4)
        for t in range(4):
            _select_niels(w, _Q, tab, t, dig[16 * t + m] - 8)
            _run_p(_P_MADD)
        m -= 1
    for i in range(64):
        dig[i] = 0


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
    for i in range(32):
        kb[i] = 0
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
    encoding a_enc (Straus: one run of 252 doublings; signed radix-16 digits of both scalars;
    B's multiples are the affine signing table T_0, -A's are built here). Variable-time: every
    input is public."""
    w = _w
    ntab = _niels_tables()
    if not _decode(a_enc, True):
        return False
    _fill_table(_atab)
    ds = _recode(s)
    dk = _recode(k)
    _run_p(_P_IDENTITY)
    i = 63
    while i >= 0:
        if i != 63:
            _run_p(_P_DBL4)
        d = ds[i] - 8
        if d < 0:
            _get(w, _Q, ntab, -60 * d, 60)
            _run_p(_P_NEG_Q)
        else:
            _get(w, _Q, ntab, 60 * d, 60)
        _run_p(_P_MADD)
        d = dk[i] - 8
        if d < 0:
            _get(w, _Q, _atab, -80 * d, 80)
            _run_p(_P_NEG_Q)
        else:
            _get(w, _Q, _atab, 80 * d, 80)
        _run_p(_P_ADD)
        i -= 1
    _encode(_b1)
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
