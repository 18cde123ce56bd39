# CPython host package. Importing it swaps a native crypto backend into microp2p.crypto
# (env MICROP2P_CRYPTO = cryptography | pycryptodome | pure; default cryptography).
from microp2p_host.crypto_native import install as _install_crypto

_install_crypto()
