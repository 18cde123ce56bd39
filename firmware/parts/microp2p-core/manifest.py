# microp2p-core: errors, clock, asyncio shim, event names, codecs, identities, crypto (pure + viper).
metadata(version="0.1.0", description="microp2p core: codecs, identity, crypto", license="MIT")
package("microp2p", files=(
    "__init__.py", "errors.py", "clock.py", "aio.py", "events.py",
    "codec/__init__.py", "codec/varint.py", "codec/pb.py", "codec/cbor.py", "codec/base58.py",
    "codec/multibase.py", "codec/multihash.py", "codec/cid.py", "codec/multiaddr.py", "codec/multiaddr_ext.py",
    "identity/__init__.py", "identity/keys.py", "identity/peerid.py", "identity/envelope.py",
    "crypto/__init__.py", "crypto/pure.py", "crypto/curve25519.py", "crypto/sha512_impl.py",
    "crypto/chacha.py", "crypto/accel_viper.py", "crypto/accel_ec.py",
    "crypto/accel_sha512.py",
), base_path="../..")
