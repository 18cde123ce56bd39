# Identity files and the one error type every host command reports as a one-line message.
import os

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
