# Identity files and the one error type every host command reports as a one-line message.
import argparse
import os

from microp2p.errors import MicroP2PError
from microp2p.identity import keys

KEY_FILE_MODE = 0o600


class CliError(Exception):
    """A failure to report on stderr as `microp2p: <message>` with exit status EXIT_FAIL."""


def write_key_file(path, key):
    """Create path (never overwrite) with mode 0600 and the raw PrivateKey protobuf."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        raise CliError("%s already exists; refusing to overwrite an identity" % path)
    except OSError as e:
        raise CliError("cannot create %s: %s" % (path, e.strerror or e))
    try:
        os.fchmod(fd, KEY_FILE_MODE)  # the umask may have narrowed it; never widen beyond 0600
        data = key.to_protobuf()
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _seed_arg(text):
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("seed must be 64 hex digits")
    if len(seed) != 32:
        raise argparse.ArgumentTypeError("seed must be 64 hex digits (32 bytes)")
    return seed


def add_identity_args(p, required=False):
    """--seed HEX64 | --key FILE, shared by every command that needs an identity."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--seed", type=_seed_arg, metavar="HEX64", help="Ed25519 seed, 64 hex digits")
    g.add_argument("--key", metavar="FILE", help="key file written by `microp2p keygen`")


def load_identity(args):
    """The Ed25519PrivateKey chosen by --seed/--key, a new random one when neither is given."""
    if getattr(args, "seed", None) is not None:
        return keys.Ed25519PrivateKey.from_seed(args.seed)
    if getattr(args, "key", None):
        try:
            return keys.load_private_key(args.key)
        except OSError as e:
            raise CliError("cannot read key file %s: %s" % (args.key, e.strerror or e))
        except MicroP2PError as e:
            raise CliError("%s is not a usable key file: %s" % (args.key, e))
    return keys.Ed25519PrivateKey.generate()
