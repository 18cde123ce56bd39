# ChaCha20 and Poly1305 (RFC 8439) in plain Python: the fallback where viper is unavailable.
# Fast enough on 64-bit builds (32-bit words are small ints there); on 32-bit MicroPython every
# word is a heap big int, which is why accel_viper exists.
import struct

_M = 0xFFFFFFFF
SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
POLY_P = (1 << 130) - 5
_M130 = (1 << 130) - 1
_HIBIT = 1 << 128
_R_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF


def state(key, counter, nonce):
    """The 16-word ChaCha20 input block as a list; word 12 is the block counter."""
    return list(SIGMA + struct.unpack("<8I", key) + (counter,) + struct.unpack("<3I", nonce))


def block(st):
    """64 bytes of keystream for the state st (st is not modified)."""
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = st
    M = _M
    for _ in range(10):
        x0 = (x0 + x4) & M
        x12 ^= x0
        x12 = ((x12 << 16) & M) | (x12 >> 16)
        x8 = (x8 + x12) & M
        x4 ^= x8
        x4 = ((x4 << 12) & M) | (x4 >> 20)
        x0 = (x0 + x4) & M
        x12 ^= x0
        x12 = ((x12 << 8) & M) | (x12 >> 24)
        x8 = (x8 + x12) & M
        x4 ^= x8
        x4 = ((x4 << 7) & M) | (x4 >> 25)
        x1 = (x1 + x5) & M
        x13 ^= x1
        x13 = ((x13 << 16) & M) | (x13 >> 16)
        x9 = (x9 + x13) & M
        x5 ^= x9
        x5 = ((x5 << 12) & M) | (x5 >> 20)
        x1 = (x1 + x5) & M
        x13 ^= x1
        x13 = ((x13 << 8) & M) | (x13 >> 24)
        x9 = (x9 + x13) & M
        x5 ^= x9
        x5 = ((x5 << 7) & M) | (x5 >> 25)
        x2 = (x2 + x6) & M
        x14 ^= x2
        x14 = ((x14 << 16) & M) | (x14 >> 16)
        x10 = (x10 + x14) & M
        x6 ^= x10
        x6 = ((x6 << 12) & M) | (x6 >> 20)
        x2 = (x2 + x6) & M
        x14 ^= x2
        x14 = ((x14 << 8) & M) | (x14 >> 24)
        x10 = (x10 + x14) & M
        x6 ^= x10
        x6 = ((x6 << 7) & M) | (x6 >> 25)
        x3 = (x3 + x7) & M
        x15 ^= x3
        x15 = ((x15 << 16) & M) | (x15 >> 16)
        x11 = (x11 + x15) & M
        x7 ^= x11
        x7 = ((x7 << 12) & M) | (x7 >> 20)
        x3 = (x3 + x7) & M
        x15 ^= x3
        x15 = ((x15 << 8) & M) | (x15 >> 24)
        x11 = (x11 + x15) & M
        x7 ^= x11
        x7 = ((x7 << 7) & M) | (x7 >> 25)
        x0 = (x0 + x5) & M
        x15 ^= x0
        x15 = ((x15 << 16) & M) | (x15 >> 16)
        x10 = (x10 + x15) & M
        x5 ^= x10
        x5 = ((x5 << 12) & M) | (x5 >> 20)
        x0 = (x0 + x5) & M
        x15 ^= x0
        x15 = ((x15 << 8) & M) | (x15 >> 24)
        x10 = (x10 + x15) & M
        x5 ^= x10
        x5 = ((x5 << 7) & M) | (x5 >> 25)
        x1 = (x1 + x6) & M
        x12 ^= x1
        x12 = ((x12 << 16) & M) | (x12 >> 16)
        x11 = (x11 + x12) & M
        x6 ^= x11
        x6 = ((x6 << 12) & M) | (x6 >> 20)
        x1 = (x1 + x6) & M
        x12 ^= x1
        x12 = ((x12 << 8) & M) | (x12 >> 24)
        x11 = (x11 + x12) & M
        x6 ^= x11
        x6 = ((x6 << 7) & M) | (x6 >> 25)
        x2 = (x2 + x7) & M
        x13 ^= x2
        x13 = ((x13 << 16) & M) | (x13 >> 16)
        x8 = (x8 + x13) & M
        x7 ^= x8
        x7 = ((x7 << 12) & M) | (x7 >> 20)
        x2 = (x2 + x7) & M
        x13 ^= x2
        x13 = ((x13 << 8) & M) | (x13 >> 24)
        x8 = (x8 + x13) & M
        x7 ^= x8
        x7 = ((x7 << 7) & M) | (x7 >> 25)
        x3 = (x3 + x4) & M
        x14 ^= x3
        x14 = ((x14 << 16) & M) | (x14 >> 16)
        x9 = (x9 + x14) & M
        x4 ^= x9
        x4 = ((x4 << 12) & M) | (x4 >> 20)
        x3 = (x3 + x4) & M
        x14 ^= x3
        x14 = ((x14 << 8) & M) | (x14 >> 24)
        x9 = (x9 + x14) & M
        x4 ^= x9
        x4 = ((x4 << 7) & M) | (x4 >> 25)
    return struct.pack(
        "<16I",
        (x0 + st[0]) & M, (x1 + st[1]) & M, (x2 + st[2]) & M, (x3 + st[3]) & M,
        (x4 + st[4]) & M, (x5 + st[5]) & M, (x6 + st[6]) & M, (x7 + st[7]) & M,
        (x8 + st[8]) & M, (x9 + st[9]) & M, (x10 + st[10]) & M, (x11 + st[11]) & M,
        (x12 + st[12]) & M, (x13 + st[13]) & M, (x14 + st[14]) & M, (x15 + st[15]) & M,
    )


def xor(st, src, dst, n):
    """dst[0:n] = src[0:n] ^ keystream, advancing the counter in st. src/dst: buffers (mv ok).

    One big-int XOR per 64-byte block instead of 64 byte XORs.
    """
    pos = 0
    while pos < n:
        ks = block(st)
        st[12] = (st[12] + 1) & _M
        take = n - pos
        if take >= 64:
            take = 64
        else:
            ks = ks[:take]
        x = int.from_bytes(ks, "little") ^ int.from_bytes(src[pos:pos + take], "little")
        dst[pos:pos + take] = x.to_bytes(take, "little")
        pos += take


def poly_key(otk):
    """(r, s) from the 32-byte one-time key."""
    r = int.from_bytes(otk[0:16], "little") & _R_CLAMP
    return r, int.from_bytes(otk[16:32], "little")


def poly_blocks(acc, r, buf, n):
    """Absorb buf[0:n]; a short last block is zero-padded to 16 bytes, as RFC 8439 AEAD pads
    both the AD and the ciphertext. One fold per block keeps acc below 2**131."""
    pos = 0
    while pos < n:
        acc = (acc + int.from_bytes(buf[pos:pos + 16], "little") + _HIBIT) * r
        acc = (acc & _M130) + 5 * (acc >> 130)
        pos += 16
    return acc


def poly_finish(acc, s):
    return ((acc % POLY_P + s) & ((1 << 128) - 1)).to_bytes(16, "little")
