# X25519 (RFC 7748) and Ed25519 (RFC 8032) on Python big ints; runs on MicroPython and CPython.
#
# Not constant-time: big-int arithmetic in an interpreter cannot be. The code avoids
# secret-dependent table *shapes* (every window does the same work) but that is all it can do.
# Inverses use pow(x, P - 2, P): MicroPython's pow(x, -1, m) silently returns 0.

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point
_M255 = (1 << 255) - 1
_P2 = 2 * P
_A24 = 121665


# ---------------------------------------------------------------------------------- X25519

def x25519_int(k, u):
    """Montgomery ladder: u-coordinate of k*u. k is the clamped scalar, u < 2**255.

    Products are reduced by folding (2**255 = 19 mod P) twice instead of `% P`: cheaper, and it
    keeps every folded value below 2**255 + 2**33, so `a - b + 2P` stays non-negative.
    """
    M = _M255
    P2 = _P2
    x1 = u
    x2 = 1
    z2 = 0
    x3 = u
    z3 = 1
    swap = 0
    t = 254
    while t >= 0:
        bit = (k >> t) & 1
        if swap ^ bit:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = x2 + z2
        b = x2 - z2 + P2
        c = x3 + z3
        d = x3 - z3 + P2
        aa = a * a
        aa = (aa & M) + 19 * (aa >> 255)
        aa = (aa & M) + 19 * (aa >> 255)
        bb = b * b
        bb = (bb & M) + 19 * (bb >> 255)
        bb = (bb & M) + 19 * (bb >> 255)
        e = aa - bb + P2
        da = d * a
        da = (da & M) + 19 * (da >> 255)
        da = (da & M) + 19 * (da >> 255)
        cb = c * b
        cb = (cb & M) + 19 * (cb >> 255)
        cb = (cb & M) + 19 * (cb >> 255)
        x3 = da + cb
        x3 = x3 * x3
        x3 = (x3 & M) + 19 * (x3 >> 255)
        x3 = (x3 & M) + 19 * (x3 >> 255)
        z3 = da - cb + P2
        z3 = z3 * z3
        z3 = (z3 & M) + 19 * (z3 >> 255)
        z3 = (z3 & M) + 19 * (z3 >> 255)
        z3 = x1 * z3
        z3 = (z3 & M) + 19 * (z3 >> 255)
        z3 = (z3 & M) + 19 * (z3 >> 255)
        x2 = aa * bb
        x2 = (x2 & M) + 19 * (x2 >> 255)
        x2 = (x2 & M) + 19 * (x2 >> 255)
        z2 = e * (aa + _A24 * e)
        z2 = (z2 & M) + 19 * (z2 >> 255)
        z2 = (z2 & M) + 19 * (z2 >> 255)
        t -= 1
    if swap:
        x2 = x3
        z2 = z3
    return x2 * pow(z2, P - 2, P) % P


def x25519(private, public):
    k = int.from_bytes(private, "little")
    k = (k & ((1 << 254) - 8)) | (1 << 254)
    u = int.from_bytes(public, "little") & _M255
    return x25519_int(k, u).to_bytes(32, "little")


# --------------------------------------------------------------------------------- Ed25519
# Points are extended twisted-Edwards coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z.
# Table entries are "cached" (Y-X, Y+X, 2d*T, 2Z), which saves two products per addition.

D = -121665 * pow(121666, P - 2, P) % P
D2 = 2 * D % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
WINDOW_BITS = 4
WINDOW_SIZE = 1 << WINDOW_BITS
WINDOWS = 64  # 64 * 4 = 256 bits covers every scalar below 2**256

_base_table = None  # WINDOW_SIZE cached multiples 0*B .. 15*B, built on first use


def _double(p):
    X, Y, Z, _ = p
    a = X * X % P
    b = Y * Y % P
    c = 2 * Z * Z % P
    h = a + b
    e = X + Y
    e = (h - e * e) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _add(p, q):
    """p extended + q cached."""
    X, Y, Z, T = p
    a = (Y - X) * q[0] % P
    b = (Y + X) * q[1] % P
    c = T * q[2] % P
    d = Z * q[3] % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _cached(p):
    X, Y, Z, T = p
    return ((Y - X) % P, (Y + X) % P, D2 * T % P, 2 * Z % P)


_IDENTITY = (0, 1, 1, 0)


def _multiples(p):
    """Cached 0*p .. 15*p for a 4-bit window."""
    out = [_cached(_IDENTITY), _cached(p)]
    acc = p
    cp = out[1]
    for _ in range(WINDOW_SIZE - 2):
        acc = _add(acc, cp)
        out.append(_cached(acc))
    return out


def encode_point(p):
    X, Y, Z, _ = p
    zi = pow(Z, P - 2, P)
    x = X * zi % P
    y = Y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode_point(b):
    """RFC 8032 5.1.3; None for a non-canonical y or an x that does not exist."""
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= _M255
    if y >= P:
        return None
    yy = y * y % P
    u = (yy - 1) % P
    v = (D * yy + 1) % P
    v3 = v * v * v % P
    uv3 = u * v3 % P
    x = uv3 * pow(uv3 * v3 * v % P, (P - 5) // 8, P) % P
    vxx = v * x * x % P
    if vxx != u:
        if vxx != P - u:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _base():
    global _base_table
    if _base_table is None:
        y = 4 * pow(5, P - 2, P) % P
        _base_table = _multiples(decode_point(y.to_bytes(32, "little")))
    return _base_table


def base_mult(s):
    """s*B with a fixed 4-bit window: 252 doublings and 64 table additions for any s < 2**256."""
    tab = _base()
    i = WINDOWS - 1
    p = _add(_IDENTITY, tab[(s >> (4 * i)) & 15])
    while i > 0:
        i -= 1
        p = _double(_double(_double(_double(p))))
        p = _add(p, tab[(s >> (4 * i)) & 15])
    return p


def double_mult(s, k, a):
    """s*B + k*a (Straus): one shared run of doublings over both scalars' windows."""
    tb = _base()
    ta = _multiples(a)
    i = WINDOWS - 1
    p = _add(_add(_IDENTITY, tb[(s >> (4 * i)) & 15]), ta[(k >> (4 * i)) & 15])
    while i > 0:
        i -= 1
        p = _double(_double(_double(_double(p))))
        p = _add(p, tb[(s >> (4 * i)) & 15])
        p = _add(p, ta[(k >> (4 * i)) & 15])
    return p


def negate(p):
    X, Y, Z, T = p
    return ((P - X) % P, Y, Z, (P - T) % P)


def clamp_scalar(h32):
    a = int.from_bytes(h32, "little")
    return (a & ((1 << 254) - 8)) | (1 << 254)
