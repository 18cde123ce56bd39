# The one crypto interface of microp2p. Call through the module (`from microp2p import crypto;
# crypto.sha256(b)`), never bind the functions at import: a backend swaps them in place.
#
#   sha256(data) sha512(data) hmac_sha256(key, data) hkdf(chaining_key, ikm, n)   (Noise HKDF)
#   x25519(private32, public32) -> shared32   x25519_public(private32) -> public32
#       (AuthError for a low-order peer key, i.e. an all-zero shared secret)
#   ed25519_public(seed32) -> pub32   ed25519_sign(seed32, msg) -> sig64
#   ed25519_verify(pub32, msg, sig64) -> bool   (never raises for a bad signature)
#   aead_encrypt(key32, nonce12, ad, plaintext) -> ciphertext || tag16     (ChaCha20-Poly1305)
#   aead_decrypt(key32, nonce12, ad, ciphertext_and_tag) -> plaintext; AuthError on a bad tag
#   random_bytes(n) -> n bytes from the OS's CSPRNG
#
# The pure backend (microp2p.crypto.pure) runs everywhere and is the default. On CPython the host
# package registers a native backend (cryptography or pycryptodome) with identical results.

backend_name = None

_NAMES = (
    "sha256", "sha512", "hmac_sha256", "hkdf", "x25519", "x25519_public",
    "ed25519_public", "ed25519_sign", "ed25519_verify", "aead_encrypt", "aead_decrypt",
    "random_bytes",
)


def use(backend, name=None):
    """Install a backend: any object (or module) with every function named above."""
    global backend_name
    g = globals()
    for n in _NAMES:
        g[n] = getattr(backend, n)
    backend_name = name or getattr(backend, "NAME", "custom")


def use_pure():
    from microp2p.crypto import pure
    use(pure, "pure")


use_pure()
