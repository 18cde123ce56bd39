# SHA-512 (FIPS 180-4) in viper for MicroPython ports whose hashlib lacks it: each 64-bit word
# is a (hi, lo) pair of 32-bit uint halves in preallocated buffers; no big-int temporaries.
# pure.py imports it only when `micropython` exists and uses it only if self_test() passes;
# a port without the viper emitter fails to compile it and keeps sha512_impl (big ints).
#
# 32/64-bit portability (checked on CPython by tests/host/test_viper_bounds.py):
#   - + - << & | ^ may run past 32 bits on 64-bit viper and wrap on 32-bit viper: both give the
#     same low word, and every such result is masked with m = uint(0xffffffff) before anything
#     that sees the high bits (>>, comparisons) uses it;
#   - a 64-bit sum adds the low halves as 16-bit pieces so the carry into the high half is exact
#     on both word sizes; no comparison-based carries, no literal >= 2**30 in viper code.
import struct
from array import array

import micropython

BLOCK_SIZE = 128
DIGEST_SIZE = 64

_K = array("I", [
    0x428a2f98, 0xd728ae22, 0x71374491, 0x23ef65cd, 0xb5c0fbcf, 0xec4d3b2f, 0xe9b5dba5, 0x8189dbbc,
    0x3956c25b, 0xf348b538, 0x59f111f1, 0xb605d019, 0x923f82a4, 0xaf194f9b, 0xab1c5ed5, 0xda6d8118,
    0xd807aa98, 0xa3030242, 0x12835b01, 0x45706fbe, 0x243185be, 0x4ee4b28c, 0x550c7dc3, 0xd5ffb4e2,
    0x72be5d74, 0xf27b896f, 0x80deb1fe, 0x3b1696b1, 0x9bdc06a7, 0x25c71235, 0xc19bf174, 0xcf692694,
    0xe49b69c1, 0x9ef14ad2, 0xefbe4786, 0x384f25e3, 0x0fc19dc6, 0x8b8cd5b5, 0x240ca1cc, 0x77ac9c65,
    0x2de92c6f, 0x592b0275, 0x4a7484aa, 0x6ea6e483, 0x5cb0a9dc, 0xbd41fbd4, 0x76f988da, 0x831153b5,
    0x983e5152, 0xee66dfab, 0xa831c66d, 0x2db43210, 0xb00327c8, 0x98fb213f, 0xbf597fc7, 0xbeef0ee4,
    0xc6e00bf3, 0x3da88fc2, 0xd5a79147, 0x930aa725, 0x06ca6351, 0xe003826f, 0x14292967, 0x0a0e6e70,
    0x27b70a85, 0x46d22ffc, 0x2e1b2138, 0x5c26c926, 0x4d2c6dfc, 0x5ac42aed, 0x53380d13, 0x9d95b3df,
    0x650a7354, 0x8baf63de, 0x766a0abb, 0x3c77b2a8, 0x81c2c92e, 0x47edaee6, 0x92722c85, 0x1482353b,
    0xa2bfe8a1, 0x4cf10364, 0xa81a664b, 0xbc423001, 0xc24b8b70, 0xd0f89791, 0xc76c51a3, 0x0654be30,
    0xd192e819, 0xd6ef5218, 0xd6990624, 0x5565a910, 0xf40e3585, 0x5771202a, 0x106aa070, 0x32bbd1b8,
    0x19a4c116, 0xb8d2d0c8, 0x1e376c08, 0x5141ab53, 0x2748774c, 0xdf8eeb99, 0x34b0bcb5, 0xe19b48a8,
    0x391c0cb3, 0xc5c95a63, 0x4ed8aa4a, 0xe3418acb, 0x5b9cca4f, 0x7763e373, 0x682e6ff3, 0xd6b2b8a3,
    0x748f82ee, 0x5defb2fc, 0x78a5636f, 0x43172f60, 0x84c87814, 0xa1f0ab72, 0x8cc70208, 0x1a6439ec,
    0x90befffa, 0x23631e28, 0xa4506ceb, 0xde82bde9, 0xbef9a3f7, 0xb2c67915, 0xc67178f2, 0xe372532b,
    0xca273ece, 0xea26619c, 0xd186b8c7, 0x21c0c207, 0xeada7dd6, 0xcde0eb1e, 0xf57d4f7f, 0xee6ed178,
    0x06f067aa, 0x72176fba, 0x0a637dc5, 0xa2c898a6, 0x113f9804, 0xbef90dae, 0x1b710b35, 0x131c471b,
    0x28db77f5, 0x23047d84, 0x32caab7b, 0x40c72493, 0x3c9ebe0a, 0x15c9bebc, 0x431d67c4, 0x9c100d4c,
    0x4cc5d4be, 0xcb3e42b6, 0x597f299c, 0xfc657e2a, 0x5fcb6fab, 0x3ad6faec, 0x6c44198c, 0x4a475817,
])
_H0 = (0x6a09e667, 0xf3bcc908, 0xbb67ae85, 0x84caa73b, 0x3c6ef372, 0xfe94f82b, 0xa54ff53a,
       0x5f1d36f1, 0x510e527f, 0xade682d1, 0x9b05688c, 0x2b3e6c1f, 0x1f83d9ab, 0xfb41bd6b,
       0x5be0cd19, 0x137e2179)
_wsched = array("I", [0] * 32)  # rolling 16-word message schedule (hi, lo); shared scratch


@micropython.viper
def _compress(hs: ptr32, ws: ptr32, k: ptr32, blk: ptr8, off: int):
    m = uint(0xFFFFFFFF)
    i = 0
    while i < 32:
        o = off + i * 4
        ws[i] = (uint(blk[o]) << 24) | (uint(blk[o + 1]) << 16) | (uint(blk[o + 2]) << 8) | \
            uint(blk[o + 3])
        i += 1
    ah = uint(hs[0])
    al = uint(hs[1])
    bh = uint(hs[2])
    bl = uint(hs[3])
    ch = uint(hs[4])
    cl = uint(hs[5])
    dh = uint(hs[6])
    dl = uint(hs[7])
    eh = uint(hs[8])
    el = uint(hs[9])
    fh = uint(hs[10])
    fl = uint(hs[11])
    gh = uint(hs[12])
    gl = uint(hs[13])
    hh = uint(hs[14])
    hl = uint(hs[15])
    t = 0
    while t < 80:
        j = (t & 15) * 2
        if t >= 16:
            # w[t] = s1(w[t-2]) + w[t-7] + s0(w[t-15]) + w[t-16]   (w[t-16] is ws[j] itself)
            q = ((t - 15) & 15) * 2
            xh = uint(ws[q])
            xl = uint(ws[q + 1])
            s0h = ((xh >> 1) | (xl << 31)) ^ ((xh >> 8) | (xl << 24)) ^ (xh >> 7)
            s0l = ((xl >> 1) | (xh << 31)) ^ ((xl >> 8) | (xh << 24)) ^ ((xl >> 7) | (xh << 25))
            s0h = s0h & m
            s0l = s0l & m
            q = ((t - 2) & 15) * 2
            xh = uint(ws[q])
            xl = uint(ws[q + 1])
            s1h = ((xh >> 19) | (xl << 13)) ^ ((xl >> 29) | (xh << 3)) ^ (xh >> 6)
            s1l = ((xl >> 19) | (xh << 13)) ^ ((xh >> 29) | (xl << 3)) ^ ((xl >> 6) | (xh << 26))
            s1h = s1h & m
            s1l = s1l & m
            q = ((t - 7) & 15) * 2
            xh = uint(ws[q])
            xl = uint(ws[q + 1])
            yh = uint(ws[j])
            yl = uint(ws[j + 1])
            lo = (s0l & 0xFFFF) + (s1l & 0xFFFF) + (xl & 0xFFFF) + (yl & 0xFFFF)
            hi = (s0l >> 16) + (s1l >> 16) + (xl >> 16) + (yl >> 16) + (lo >> 16)
            ws[j + 1] = ((hi << 16) | (lo & 0xFFFF)) & m
            ws[j] = (s0h + s1h + xh + yh + (hi >> 16)) & m
        wh = uint(ws[j])
        wl = uint(ws[j + 1])
        kh = uint(k[t * 2])
        kl = uint(k[t * 2 + 1])
        # S1(e) = rotr14 ^ rotr18 ^ rotr41;  Ch(e, f, g) = g ^ (e & (f ^ g))
        sh = ((eh >> 14) | (el << 18)) ^ ((eh >> 18) | (el << 14)) ^ ((el >> 9) | (eh << 23))
        sl = ((el >> 14) | (eh << 18)) ^ ((el >> 18) | (eh << 14)) ^ ((eh >> 9) | (el << 23))
        sh = sh & m
        sl = sl & m
        xh = gh ^ (eh & (fh ^ gh))
        xl = gl ^ (el & (fl ^ gl))
        # T1 = h + S1 + Ch + K[t] + W[t]
        lo = (hl & 0xFFFF) + (sl & 0xFFFF) + (xl & 0xFFFF) + (kl & 0xFFFF) + (wl & 0xFFFF)
        hi = (hl >> 16) + (sl >> 16) + (xl >> 16) + (kl >> 16) + (wl >> 16) + (lo >> 16)
        t1l = ((hi << 16) | (lo & 0xFFFF)) & m
        t1h = (hh + sh + xh + kh + wh + (hi >> 16)) & m
        # S0(a) = rotr28 ^ rotr34 ^ rotr39;  Maj(a, b, c) = (a & b) | (c & (a | b))
        sh = ((ah >> 28) | (al << 4)) ^ ((al >> 2) | (ah << 30)) ^ ((al >> 7) | (ah << 25))
        sl = ((al >> 28) | (ah << 4)) ^ ((ah >> 2) | (al << 30)) ^ ((ah >> 7) | (al << 25))
        sh = sh & m
        sl = sl & m
        xh = (ah & bh) | (ch & (ah | bh))
        xl = (al & bl) | (cl & (al | bl))
        hh = gh
        hl = gl
        gh = fh
        gl = fl
        fh = eh
        fl = el
        # e = d + T1
        lo = (dl & 0xFFFF) + (t1l & 0xFFFF)
        hi = (dl >> 16) + (t1l >> 16) + (lo >> 16)
        el = ((hi << 16) | (lo & 0xFFFF)) & m
        eh = (dh + t1h + (hi >> 16)) & m
        dh = ch
        dl = cl
        ch = bh
        cl = bl
        bh = ah
        bl = al
        # a = T1 + S0 + Maj
        lo = (t1l & 0xFFFF) + (sl & 0xFFFF) + (xl & 0xFFFF)
        hi = (t1l >> 16) + (sl >> 16) + (xl >> 16) + (lo >> 16)
        al = ((hi << 16) | (lo & 0xFFFF)) & m
        ah = (t1h + sh + xh + (hi >> 16)) & m
        t += 1
    ws[0] = ah
    ws[1] = al
    ws[2] = bh
    ws[3] = bl
    ws[4] = ch
    ws[5] = cl
    ws[6] = dh
    ws[7] = dl
    ws[8] = eh
    ws[9] = el
    ws[10] = fh
    ws[11] = fl
    ws[12] = gh
    ws[13] = gl
    ws[14] = hh
    ws[15] = hl
    i = 0
    while i < 16:  # h += (a..h), 64-bit each
        xl = uint(hs[i + 1])
        yl = uint(ws[i + 1])
        lo = (xl & 0xFFFF) + (yl & 0xFFFF)
        hi = (xl >> 16) + (yl >> 16) + (lo >> 16)
        hs[i + 1] = ((hi << 16) | (lo & 0xFFFF)) & m
        hs[i] = (uint(hs[i]) + uint(ws[i]) + (hi >> 16)) & m
        i += 2
    i = 0
    while i < 32:
        ws[i] = 0
        i += 1


class Sha512:
    """Incremental SHA-512 with the hashlib shape (update/digest). digest() does not finalize."""

    def __init__(self, data=None):
        self._h = array("I", _H0)
        self._buf = bytearray(BLOCK_SIZE)
        self._fill = 0
        self._length = 0
        if data is not None:
            self.update(data)

    def update(self, data):
        n = len(data)
        self._length += n
        pos = 0
        fill = self._fill
        if fill:
            take = BLOCK_SIZE - fill
            if take > n:
                take = n
            self._buf[fill:fill + take] = memoryview(data)[:take]
            fill += take
            pos = take
            if fill < BLOCK_SIZE:
                self._fill = fill
                return
            _compress(self._h, _wsched, _K, self._buf, 0)
            fill = 0
        while n - pos >= BLOCK_SIZE:
            _compress(self._h, _wsched, _K, data, pos)
            pos += BLOCK_SIZE
        if pos < n:
            self._buf[0:n - pos] = memoryview(data)[pos:]
            fill = n - pos
        self._fill = fill

    def digest(self):
        h = array("I", self._h)
        fill = self._fill
        # Padding: 0x80, zeros, then the bit length as 128-bit big-endian, in one or two blocks.
        tail = bytearray(BLOCK_SIZE * 2)
        tail[0:fill] = self._buf[0:fill]
        tail[fill] = 0x80
        end = BLOCK_SIZE if fill < BLOCK_SIZE - 16 else BLOCK_SIZE * 2
        struct.pack_into(">II", tail, end - 8, (self._length >> 29) & 0xFFFFFFFF,
                         (self._length << 3) & 0xFFFFFFFF)
        _compress(h, _wsched, _K, tail, 0)
        if end > BLOCK_SIZE:
            _compress(h, _wsched, _K, tail, BLOCK_SIZE)
        return struct.pack(">16I", *h)


def sha512(data):
    return Sha512(data).digest()


def self_test():
    """FIPS 180-2 "abc" and a two-block message (112 bytes: the padding spills)."""
    if sha512(b"abc") != bytes.fromhex(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"):
        return False
    return sha512(b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
                  b"pqklmnopqrlmnopqrsmnopqrstnopqrstu") == bytes.fromhex(
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")
