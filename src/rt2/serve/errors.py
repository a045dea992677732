"""Error codes on the wire and the exceptions the robot-side client raises (stdlib only).

Every error reply is ``{"error": {"code": CODE, "message": short reason}}``; ``CODE`` is one of
:data:`ERROR_CODES`. A message is one line written for the robot operator, never a traceback.
"""

from __future__ import annotations

BAD_REQUEST = "bad_request"
OVERLOADED = "overloaded"
DEADLINE_EXCEEDED = "deadline_exceeded"
INTERNAL = "internal"
UNAUTHORIZED = "unauthorized"
ERROR_CODES = (BAD_REQUEST, OVERLOADED, DEADLINE_EXCEEDED, INTERNAL, UNAUTHORIZED)

MAX_MESSAGE_CHARS = 300


def error_body(code: str, message: str) -> dict:
    """The ``error`` reply payload; the message is cut to one short line."""
    assert code in ERROR_CODES, code
    line = " ".join(str(message).split())
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 3] + "..."
    return {"error": {"code": code, "message": line}}


class RequestError(Exception):
    """Server side: a request is rejected with ``code`` and a short ``message`` (sent to the client)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- client side --------------------------------------------------------------------------------------------
class PolicyClientError(Exception):
    """Base class of everything :class:`rt2.serve.client.PolicyClient` raises."""


class ServerUnavailable(PolicyClientError, ConnectionError):
    """The server cannot be reached (refused, closed mid-request, or still in reconnect backoff)."""


class DeadlineExceeded(PolicyClientError, TimeoutError):
    """No reply arrived within the call's deadline (client side), or the server gave up on the request."""


class MetadataMismatch(PolicyClientError):
    """The server's handshake metadata disagrees with what the robot expects (action dim, image size...)."""


class InvalidAction(PolicyClientError):
    """The reply's action is NaN/inf, has the wrong shape, or lies outside the advertised bounds."""


class StaleReply(PolicyClientError):
    """The reply does not answer the request just sent (its echoed timestamp differs or is too old)."""


class ServerError(PolicyClientError):
    """The server answered with an error reply; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Overloaded(ServerError):
    """The server's queue is full (or it is shutting down); back off and retry."""


class Unauthorized(ServerError, PermissionError):
    """Missing or wrong token (HTTP 401 on the handshake)."""


def server_error(code: str, message: str) -> ServerError:
    """The most specific exception for an error reply."""
    if code == OVERLOADED:
        return Overloaded(code, message)
    if code == UNAUTHORIZED:
        return Unauthorized(code, message)
    if code == DEADLINE_EXCEEDED:
        # A server-side deadline is still a deadline for the caller: catchable as DeadlineExceeded too.
        return ServerDeadlineExceeded(code, message)
    return ServerError(code, message)


class ServerDeadlineExceeded(ServerError, DeadlineExceeded):
    """The server dropped the request because it could not start it before its deadline."""
