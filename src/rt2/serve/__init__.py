"""rt2.serve: the policy as a network service (RT-2's robot-queries-the-model deployment).

Robot side (numpy + msgpack + websockets only, never torch)::

    from rt2.serve import PolicyClient, Watchdog

Server side (``rt2 serve --policy CKPT``)::

    from rt2.serve import PolicyServer, ServerConfig, ServerThread

This ``__init__`` must stay light: importing the client imports this file first, so server-side names are
resolved lazily (``__getattr__``) and never pulled in by ``import rt2.serve.client``.
"""

from __future__ import annotations

import importlib
from typing import Any

from rt2.serve.client import PolicyClient
from rt2.serve.errors import (
    DeadlineExceeded,
    InvalidAction,
    MetadataMismatch,
    Overloaded,
    PolicyClientError,
    ServerError,
    ServerUnavailable,
    StaleReply,
    Unauthorized,
)
from rt2.serve.watchdog import Watchdog

_LAZY = {
    "PolicyServer": "rt2.serve.server",
    "ServerConfig": "rt2.serve.server",
    "ServerThread": "rt2.serve.server",
    "PolicyLike": "rt2.serve.server",
    "MicroBatcher": "rt2.serve.batcher",
}

__all__ = [
    "DeadlineExceeded",
    "InvalidAction",
    "MetadataMismatch",
    "Overloaded",
    "PolicyClient",
    "PolicyClientError",
    "ServerError",
    "ServerUnavailable",
    "StaleReply",
    "Unauthorized",
    "Watchdog",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rt2.serve' has no attribute {name!r}")
