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
_btab = array("H", [0] * (16 * 80))  # cached multiples 0..15 of the Ed25519 base point
_atab = array("H", [0] * (16 * 80))  # the same for -A in verify (public data)
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
        if op <= 2:
            rep = 1
            if op == 1:
                b = a
            elif op == 2:
                rep = prog[pc - 1]
                b = a
            while rep > 0:
                b0 = w[b + 0]
                b1 = w[b + 1]
                b2 = w[b + 2]
                b3 = w[b + 3]
                b4 = w[b + 4]
                b5 = w[b + 5]
                b6 = w[b + 6]
                b7 = w[b + 7]
                b8 = w[b + 8]
                b9 = w[b + 9]
                b10 = w[b + 10]
                b11 = w[b + 11]
                b12 = w[b + 12]
                b13 = w[b + 13]
                b14 = w[b + 14]
                b15 = w[b + 15]
                b16 = w[b + 16]
                b17 = w[b + 17]
                b18 = w[b + 18]
                b19 = w[b + 19]
                c0 = 0
                c1 = 0
                c2 = 0
                c3 = 0
                c4 = 0
                c5 = 0
                c6 = 0
                c7 = 0
                c8 = 0
                c9 = 0
                c10 = 0
                c11 = 0
                c12 = 0
                c13 = 0
                c14 = 0
                c15 = 0
                c16 = 0
                c17 = 0
                c18 = 0
                c19 = 0
                i = 0
                while i < 20:
                    x = w[a + i]
                    c0 += x * b0
                    c1 += x * b1
                    c2 += x * b2
                    c3 += x * b3
                    c4 += x * b4
                    c5 += x * b5
                    c6 += x * b6
                    c7 += x * b7
                    c8 += x * b8
                    c9 += x * b9
                    c10 += x * b10
                    c11 += x * b11
                    c12 += x * b12
                    c13 += x * b13
                    c14 += x * b14
                    c15 += x * b15
                    c16 += x * b16
                    c17 += x * b17
                    c18 += x * b18
                    c19 += x * b19
                    w[d + i] = c0
                    c0 = c1
                    c1 = c2
                    c2 = c3
                    c3 = c4
                    c4 = c5
                    c5 = c6
                    c6 = c7
                    c7 = c8
                    c8 = c9
                    c9 = c10
                    c10 = c11
                    c11 = c12
                    c12 = c13
                    c13 = c14
                    c14 = c15
                    c15 = c16
                    c16 = c17
                    c17 = c18
                    c18 = c19
                    c19 = 0
                    i += 1
                # columns 0..19 -> 13-bit limbs; the carry runs on into columns 20..38 (c0..c18),
                # whose 13-bit limbs fold back times 2**260 mod p = 608
                c = 0
                i = 0
                while i < 20:
                    v = w[d + i] + c
                    w[d + i] = v & m
                    c = v >> 13
                    i += 1
                v = c0 + c
                c = v >> 13
                w[d + 0] = w[d + 0] + (v & m) * 608
                v = c1 + c
                c = v >> 13
                w[d + 1] = w[d + 1] + (v & m) * 608
                v = c2 + c
                c = v >> 13
                w[d + 2] = w[d + 2] + (v & m) * 608
                v = c3 + c
                c = v >> 13
                w[d + 3] = w[d + 3] + (v & m) * 608
                v = c4 + c
                c = v >> 13
                w[d + 4] = w[d + 4] + (v & m) * 608
                v = c5 + c
                c = v >> 13
                w[d + 5] = w[d + 5] + (v & m) * 608
                v = c6 + c
                c = v >> 13
                w[d + 6] = w[d + 6] + (v & m) * 608
                v = c7 + c
                c = v >> 13
                w[d + 7] = w[d + 7] + (v & m) * 608
                v = c8 + c
                c = v >> 13
                w[d + 8] = w[d + 8] + (v & m) * 608
                v = c9 + c
                c = v >> 13
                w[d + 9] = w[d + 9] + (v & m) * 608
                v = c10 + c
                c = v >> 13
                w[d + 10] = w[d + 10] + (v & m) * 608
                v = c11 + c
                c = v >> 13
                w[d + 11] = w[d + 11] + (v & m) * 608
                v = c12 + c
                c = v >> 13
                w[d + 12] = w[d + 12] + (v & m) * 608
                v = c13 + c
                c = v >> 13
                w[d + 13] = w[d + 13] + (v & m) * 608
                v = c14 + c
                c = v >> 13
                w[d + 14] = w[d + 14] + (v & m) * 608
                v = c15 + c
                c = v >> 13
                w[d + 15] = w[d + 15] + (v & m) * 608
                v = c16 + c
                c = v >> 13
                w[d + 16] = w[d + 16] + (v & m) * 608
                v = c17 + c
                c = v >> 13
                w[d + 17] = w[d + 17] + (v & m) * 608
                v = c18 + c
                c = v >> 13
                w[d + 18] = w[d + 18] + (v & m) * 608
                w[d + 19] = w[d + 19] + c * 608
                c = 0
                i = 0
                while i < 20:
                    v = w[d + i] + c
                    w[d + i] = v & m
                    c = v >> 13
                    i += 1
                v = w[d] + c * 608
                w[d] = v & m
                v = w[d + 1] + (v >> 13)
                w[d + 1] = v & m
                w[d + 2] = w[d + 2] + (v >> 13)
                a = d
                b = d
                rep -= 1
        elif op == 6:
            i = 0
            while i < 20:
                w[d + i] = w[a + i]
                i += 1
        else:
            if op == 3:
                i = 0
                while i < 20:
                    w[d + i] = w[a + i] + w[b + i]
                    i += 1
            elif op == 4:
                # + 64p = 2**261 - 1216 as limbs 15168, 16382 * 19 (each above LIMB_MAX)
                w[d] = w[a] + 15168 - w[b]
                i = 1
                while i < 20:
                    w[d + i] = w[a + i] + 16382 - w[b + i]
                    i += 1
            else:
                i = 0
                while i < 20:
                    w[d + i] = w[a + i] * 121665
                    i += 1
            c = 0
            i = 0
            while i < 20:
                v = w[d + i] + c
                w[d + i] = v & m
                c = v >> 13
                i += 1
            v = w[d] + c * 608
            w[d] = v & m
            v = w[d + 1] + (v >> 13)
            w[d + 1] = v & m
            w[d + 2] = w[d + 2] + (v >> 13)


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
def _select(w: ptr32, d: int, tab: ptr16, idx: int):
    """Slots d..d+3 = table entry idx, reading all 16 entries (masked: idx may be secret)."""
    d = d * 20
    k = 0
    while k < 80:
        w[d + k] = 0
        k += 1
    e = 0
    while e < 16:
        mask = 0 - ((((e ^ idx) - 1) >> 8) & 1)
        base = e * 80
        k = 0
        while k < 80:
            w[d + k] = w[d + k] | (tab[base + k] & mask)
            k += 1
        e += 1


@micropython.viper
def _get(w: ptr32, d: int, tab: ptr16, idx: int):
    """Slots d..d+3 = table entry idx (public idx)."""
    d = d * 20
    base = idx * 80
    k = 0
    while k < 80:
        w[d + k] = tab[base + k]
        k += 1


@micropython.viper
def _put(tab: ptr16, idx: int, w: ptr32, s: int):
    """Table entry idx = slots s..s+3."""
    s = s * 20
    base = idx * 80
    k = 0
    while k < 80:
        tab[base + k] = w[s + k]
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
_base_ready = False


def _run_p(prog):
    _run(_w, prog, len(prog))


def _fill_table(tab):
    """tab = cached 0*P .. 15*P for the point P in slots 20..23 (P is overwritten)."""
    w = _w
    _run_p(_P_CACHED_ID)
    _put(tab, 0, w, _CQ)
    _run_p(_P_CACHED)
    _put(tab, 1, w, _CQ)
    _get(w, _Q, tab, 1)
    for j in range(2, 16):
        _run_p(_P_ADD)
        _run_p(_P_CACHED)
        _put(tab, j, w, _CQ)


def _base_table():
    global _base_ready
    if not _base_ready:
        _set(_DX, _BX)
        _set(_DY, _BY)
        _run_p(_P_POINT)
        _fill_table(_btab)
        _base_ready = True
    return _btab


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


def base_mult_encoded(s):
    """Encoding of s*B for the 32-byte little-endian scalar s (secret: masked table lookups)."""
    w = _w
    tab = _base_table()
    _run_p(_P_IDENTITY)
    i = 63
    while i >= 0:
        if i != 63:
            _run_p(_P_DBL4)
        _select(w, _Q, tab, (s[i >> 1] >> ((i & 1) << 2)) & 15)
        _run_p(_P_ADD)
        i -= 1
    out = bytearray(32)
    _encode(out)
    _wipe(w, _SECRET_WORDS)
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
    """encode(s*B - k*A) == r_enc for public 32-byte scalars s, k and point encoding a_enc."""
    w = _w
    btab = _base_table()
    if not _decode(a_enc, True):
        return False
    atab = _atab
    _fill_table(atab)
    _run_p(_P_IDENTITY)
    i = 63
    while i >= 0:
        if i != 63:
            _run_p(_P_DBL4)
        sh = (i & 1) << 2
        _get(w, _Q, btab, (s[i >> 1] >> sh) & 15)
        _run_p(_P_ADD)
        _get(w, _Q, atab, (k[i >> 1] >> sh) & 15)
        _run_p(_P_ADD)
        i -= 1
    _encode(_b1)
    return _b1 == r_enc


def self_test():
    """RFC 7748 6.1 (Alice's key pair) and RFC 8032 test 1's public key and signature check."""
    try:
        pk = x25519(bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
                    b"\x09" + bytes(31))
        if pk != bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"):
            return False
        return _self_test_ed()
    except Exception:
        return False


def _self_test_ed():
    a = bytes.fromhex("7c2cac12e69be96ae9065065462385e8fcff2768d980c0a3a520f006904de90f")
    pub = base_mult_encoded(a)
    return pub == bytes.fromhex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
