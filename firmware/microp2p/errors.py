# One small hierarchy for everything that can go wrong with input from outside.
#
#   MicroP2PError
#     ProtocolError        the remote broke a protocol rule; .scope says what to close
#       DecodeError        bytes that do not parse (truncated, overlong, over a cap, wrong type)
#       LimitError         a named bound was exceeded (buffer, queue, count)
#       AuthError          a signature, AEAD tag, key or peer ID did not check out
#   UsageError             our own code called an API wrongly (a bug here, not a remote's fault)
#
# Drivers catch ProtocolError and close exactly .scope: the stream or the connection.

SCOPE_STREAM = 1
SCOPE_CONNECTION = 2


class MicroP2PError(Exception):
    pass


class ProtocolError(MicroP2PError):
    scope = SCOPE_CONNECTION

    def __init__(self, msg="", scope=None):
        super().__init__(msg)  # MicroPython: Exception subclasses have no __init__ attribute
        if scope is not None:
            self.scope = scope


class DecodeError(ProtocolError):
    pass


class LimitError(ProtocolError):
    pass


class AuthError(ProtocolError):
    pass


class UsageError(MicroP2PError):
    pass
