# Viper ChaCha20 and Poly1305 for MicroPython (imported by pure.py only when `micropython`
# exists; a port without the viper emitter fails to compile this module and pure.py falls back).
#
# Portable across 32- and 64-bit viper:
#   - no literal >= 2**30 inside viper code (a compile error on 32-bit): the mask is a local
#     `m = uint(0xffffffff)`, and every add/shift is masked because 64-bit viper does not wrap;
#   - Poly1305 uses 13-bit limbs (poly1305-donna-16 layout): every product and column sum stays
#     below 2**32 (26-bit limbs need 64-bit products and give wrong tags on 32-bit ports).
# Buffers below are module-level scratch: the calls are synchronous, so sharing is safe under
# asyncio (not across threads).
import hashlib
import struct
from array import array

import micropython

_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_HIBIT = 1 << 11  # 2**128 inside limb 9 (bits 117..129)
LIMBS = 10

_st = array("I", [0] * 16)  # ChaCha20 input block; word 12 is the counter
_ks = bytearray(64)  # one keystream block
_otk = bytearray(32)  # Poly1305 one-time key
_zero = bytes(64)
_pst = array("I", [0] * 40)  # Poly1305: r[0:10], 5*r[10:20], h[20:30], scratch[30:40]
_pad = bytearray(16)


@micropython.viper
def _chacha_xor(st: ptr32, ks: ptr32, ks8: ptr8, src: ptr8, dst: ptr8, n: int):
    m = uint(0xFFFFFFFF)
    pos = 0
    while pos < n:
        x0 = uint(st[0])
        x1 = uint(st[1])
        x2 = uint(st[2])
        x3 = uint(st[3])
        x4 = uint(st[4])
        x5 = uint(st[5])
        x6 = uint(st[6])
        x7 = uint(st[7])
        x8 = uint(st[8])
        x9 = uint(st[9])
        x10 = uint(st[10])
        x11 = uint(st[11])
        x12 = uint(st[12])
        x13 = uint(st[13])
        x14 = uint(st[14])
        x15 = uint(st[15])
        r = 0
        while r < 10:
            x0 = (x0 + x4) & m
            x12 ^= x0
            x12 = ((x12 << 16) | (x12 >> 16)) & m
            x8 = (x8 + x12) & m
            x4 ^= x8
            x4 = ((x4 << 12) | (x4 >> 20)) & m
            x0 = (x0 + x4) & m
            x12 ^= x0
            x12 = ((x12 << 8) | (x12 >> 24)) & m
            x8 = (x8 + x12) & m
            x4 ^= x8
            x4 = ((x4 << 7) | (x4 >> 25)) & m
            x1 = (x1 + x5) & m
            x13 ^= x1
            x13 = ((x13 << 16) | (x13 >> 16)) & m
            x9 = (x9 + x13) & m
            x5 ^= x9
            x5 = ((x5 << 12) | (x5 >> 20)) & m
            x1 = (x1 + x5) & m
            x13 ^= x1
            x13 = ((x13 << 8) | (x13 >> 24)) & m
            x9 = (x9 + x13) & m
            x5 ^= x9
            x5 = ((x5 << 7) | (x5 >> 25)) & m
            x2 = (x2 + x6) & m
            x14 ^= x2
            x14 = ((x14 << 16) | (x14 >> 16)) & m
            x10 = (x10 + x14) & m
            x6 ^= x10
            x6 = ((x6 << 12) | (x6 >> 20)) & m
            x2 = (x2 + x6) & m
            x14 ^= x2
            x14 = ((x14 << 8) | (x14 >> 24)) & m
            x10 = (x10 + x14) & m
            x6 ^= x10
            x6 = ((x6 << 7) | (x6 >> 25)) & m
            x3 = (x3 + x7) & m
            x15 ^= x3
            x15 = ((x15 << 16) | (x15 >> 16)) & m
            x11 = (x11 + x15) & m
            x7 ^= x11
            x7 = ((x7 << 12) | (x7 >> 20)) & m
            x3 = (x3 + x7) & m
            x15 ^= x3
            x15 = ((x15 << 8) | (x15 >> 24)) & m
            x11 = (x11 + x15) & m
            x7 ^= x11
            x7 = ((x7 << 7) | (x7 >> 25)) & m
            x0 = (x0 + x5) & m
            x15 ^= x0
            x15 = ((x15 << 16) | (x15 >> 16)) & m
            x10 = (x10 + x15) & m
            x5 ^= x10
            x5 = ((x5 << 12) | (x5 >> 20)) & m
            x0 = (x0 + x5) & m
            x15 ^= x0
            x15 = ((x15 << 8) | (x15 >> 24)) & m
            x10 = (x10 + x15) & m
            x5 ^= x10
            x5 = ((x5 << 7) | (x5 >> 25)) & m
            x1 = (x1 + x6) & m
            x12 ^= x1
            x12 = ((x12 << 16) | (x12 >> 16)) & m
            x11 = (x11 + x12) & m
            x6 ^= x11
            x6 = ((x6 << 12) | (x6 >> 20)) & m
            x1 = (x1 + x6) & m
            x12 ^= x1
            x12 = ((x12 << 8) | (x12 >> 24)) & m
            x11 = (x11 + x12) & m
            x6 ^= x11
            x6 = ((x6 << 7) | (x6 >> 25)) & m
            x2 = (x2 + x7) & m
            x13 ^= x2
            x13 = ((x13 << 16) | (x13 >> 16)) & m
            x8 = (x8 + x13) & m
            x7 ^= x8
            x7 = ((x7 << 12) | (x7 >> 20)) & m
            x2 = (x2 + x7) & m
            x13 ^= x2
            x13 = ((x13 << 8) | (x13 >> 24)) & m
            x8 = (x8 + x13) & m
            x7 ^= x8
            x7 = ((x7 << 7) | (x7 >> 25)) & m
            x3 = (x3 + x4) & m
            x14 ^= x3
            x14 = ((x14 << 16) | (x14 >> 16)) & m
            x9 = (x9 + x14) & m
            x4 ^= x9
            x4 = ((x4 << 12) | (x4 >> 20)) & m
            x3 = (x3 + x4) & m
            x14 ^= x3
            x14 = ((x14 << 8) | (x14 >> 24)) & m
            x9 = (x9 + x14) & m
            x4 ^= x9
            x4 = ((x4 << 7) | (x4 >> 25)) & m
            r += 1
        ks[0] = (x0 + uint(st[0])) & m
        ks[1] = (x1 + uint(st[1])) & m
        ks[2] = (x2 + uint(st[2])) & m
        ks[3] = (x3 + uint(st[3])) & m
        ks[4] = (x4 + uint(st[4])) & m
        ks[5] = (x5 + uint(st[5])) & m
        ks[6] = (x6 + uint(st[6])) & m
        ks[7] = (x7 + uint(st[7])) & m
        ks[8] = (x8 + uint(st[8])) & m
        ks[9] = (x9 + uint(st[9])) & m
        ks[10] = (x10 + uint(st[10])) & m
        ks[11] = (x11 + uint(st[11])) & m
        ks[12] = (x12 + uint(st[12])) & m
        ks[13] = (x13 + uint(st[13])) & m
        ks[14] = (x14 + uint(st[14])) & m
        ks[15] = (x15 + uint(st[15])) & m
        st[12] = (uint(st[12]) + 1) & m
        take = n - pos
        if take > 64:
            take = 64
        # Byte-wise XOR: src/dst may be unaligned, and unaligned 32-bit access faults on Xtensa.
        # ks8 aliases ks; all targets are little-endian, so this is the serialized keystream.
        j = 0
        while j < take:
            dst[pos + j] = src[pos + j] ^ ks8[j]
            j += 1
        pos += 64


@micropython.viper
def _poly_blocks(st: ptr32, msg: ptr8, n: int, hibit: int):
    # n is a multiple of 16. h += block (13-bit limbs from eight little-endian 16-bit words);
    # h *= r mod 2**130 - 5, with the column carry split after 5 terms so sums stay < 2**32.
    pos = 0
    while pos < n:
        t0 = uint(msg[pos]) | (uint(msg[pos + 1]) << 8)
        t1 = uint(msg[pos + 2]) | (uint(msg[pos + 3]) << 8)
        t2 = uint(msg[pos + 4]) | (uint(msg[pos + 5]) << 8)
        t3 = uint(msg[pos + 6]) | (uint(msg[pos + 7]) << 8)
        t4 = uint(msg[pos + 8]) | (uint(msg[pos + 9]) << 8)
        t5 = uint(msg[pos + 10]) | (uint(msg[pos + 11]) << 8)
        t6 = uint(msg[pos + 12]) | (uint(msg[pos + 13]) << 8)
        t7 = uint(msg[pos + 14]) | (uint(msg[pos + 15]) << 8)
        st[20] = uint(st[20]) + (t0 & 0x1FFF)
        st[21] = uint(st[21]) + (((t0 >> 13) | (t1 << 3)) & 0x1FFF)
        st[22] = uint(st[22]) + (((t1 >> 10) | (t2 << 6)) & 0x1FFF)
        st[23] = uint(st[23]) + (((t2 >> 7) | (t3 << 9)) & 0x1FFF)
        st[24] = uint(st[24]) + (((t3 >> 4) | (t4 << 12)) & 0x1FFF)
        st[25] = uint(st[25]) + ((t4 >> 1) & 0x1FFF)
        st[26] = uint(st[26]) + (((t4 >> 14) | (t5 << 2)) & 0x1FFF)
        st[27] = uint(st[27]) + (((t5 >> 11) | (t6 << 5)) & 0x1FFF)
        st[28] = uint(st[28]) + (((t6 >> 8) | (t7 << 8)) & 0x1FFF)
        st[29] = uint(st[29]) + ((t7 >> 5) | uint(hibit))
        c = uint(0)
        i = 0
        while i < 10:
            d = c
            j = 0
            while j < 10:
                if j <= i:
                    d += uint(st[20 + j]) * uint(st[i - j])
                else:
                    d += uint(st[20 + j]) * uint(st[20 + i - j])  # 5*r[i + 10 - j]
                if j == 4:
                    c = d >> 13
                    d &= 0x1FFF
                j += 1
            c += d >> 13
            st[30 + i] = d & 0x1FFF
            i += 1
        c = (c << 2) + c + uint(st[30])
        st[20] = c & 0x1FFF
        st[21] = uint(st[31]) + (c >> 13)
        i = 2
        while i < 10:
            st[20 + i] = st[30 + i]
            i += 1
        pos += 16


def _chacha_setup(key, counter, nonce):
    st = _st
    k = struct.unpack("<8I", key)
    w = struct.unpack("<3I", nonce)
    for i in range(4):
        st[i] = _SIGMA[i]
    for i in range(8):
        st[4 + i] = k[i]
    st[12] = counter
    st[13] = w[0]
    st[14] = w[1]
    st[15] = w[2]


def _poly_setup(key):
    r = int.from_bytes(key[0:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    p = _pst
    for i in range(LIMBS):
        limb = (r >> (13 * i)) & 0x1FFF
        p[i] = limb
        p[10 + i] = 5 * limb
        p[20 + i] = 0


def _poly_absorb_padded(data, n):
    """AEAD-style: the short last block is zero-padded and still carries 2**128."""
    full = n & ~15
    if full:
        _poly_blocks(_pst, data, full, _HIBIT)
    if full < n:
        pad = _pad
        for i in range(16):
            pad[i] = 0
        pad[0:n - full] = data[full:n]
        _poly_blocks(_pst, pad, 16, _HIBIT)


def _poly_finish(s_bytes):
    h = 0
    for i in range(LIMBS - 1, -1, -1):
        h = (h << 13) + _pst[20 + i]
    h %= (1 << 130) - 5
    return ((h + int.from_bytes(s_bytes, "little")) & ((1 << 128) - 1)).to_bytes(16, "little")


def _aead_tag(key, nonce, ad, ct, n):
    # Counter 0 gives the one-time Poly1305 key; leaves the counter at 1 for the payload.
    _chacha_setup(key, 0, nonce)
    _chacha_xor(_st, _ks, _ks, _zero, _otk, 32)
    otk = _otk
    _poly_setup(otk)
    _poly_absorb_padded(ad, len(ad))
    _poly_absorb_padded(ct, n)
    struct.pack_into("<QQ", _pad, 0, len(ad), n)
    _poly_blocks(_pst, _pad, 16, _HIBIT)
    return _poly_finish(otk[16:32])


def aead_seal(key, nonce, ad, plaintext, out, n):
    """out[0:n] = ciphertext, out[n:n+16] = tag."""
    _chacha_setup(key, 1, nonce)
    _chacha_xor(_st, _ks, _ks, plaintext, out, n)
    out[n:n + 16] = _aead_tag(key, nonce, ad, out, n)


def aead_open(key, nonce, ad, ct, out, n):
    """Check the tag over ct[0:n] first; on success out[0:n] = plaintext. Returns the verdict."""
    tag = _aead_tag(key, nonce, ad, ct, n)
    if int.from_bytes(tag, "big") ^ int.from_bytes(ct[n:n + 16], "big"):
        return False
    _chacha_xor(_st, _ks, _ks, ct, out, n)  # the counter is at 1 after _aead_tag
    return True


def chacha20_xor(key, counter, nonce, data, out, n):
    _chacha_setup(key, counter, nonce)
    _chacha_xor(_st, _ks, _ks, data, out, n)


def poly1305(key, msg):
    """Raw Poly1305: a short last block gets a 0x01 byte and no 2**128 bit."""
    _poly_setup(key)
    n = len(msg)
    full = n & ~15
    if full:
        _poly_blocks(_pst, msg, full, _HIBIT)
    if full < n:
        pad = _pad
        for i in range(16):
            pad[i] = 0
        pad[0:n - full] = msg[full:n]
        pad[n - full] = 1
        _poly_blocks(_pst, pad, 16, 0)
    return _poly_finish(key[16:32])


# SHA-256 of aead_seal(bytes(range(32)), bytes(range(12)), b"self-test", bytes(range(70))),
# computed with three independent implementations. A port whose viper miscompiles any of the
# arithmetic above fails this at import, and pure.py then uses plain Python.
_SELF_TEST_SHA256 = bytes.fromhex("a37f2e381574f17da948a81de719f86101102fcad8a87a6d86234bc21a57c00c")


def self_test():
    out = bytearray(70 + 16)
    aead_seal(bytes(range(32)), bytes(range(12)), b"self-test", bytes(range(70)), out, 70)
    return hashlib.sha256(out).digest() == _SELF_TEST_SHA256
