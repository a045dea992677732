"""The handshake frame: what a robot must know before its first request (numpy only).

Built from ``Policy.metadata()`` plus the server's limits; sent once per connection, first frame::

    {"server": "rt2", "protocol": 1, "rt2_version": "0.1.0",
     "model_name": "pali-tiny",
     "action_space": {"name": "language_table", "dim": 2, "names": ["x", "y"],
                      "low": [-0.1, -0.1], "high": [0.1, 0.1], "text_format": "X Y", "dims": [...]},
     "image_size": [H, W], "n_frames": 2, "norm_stats_key": "language_table_sim" | None,
     "limits": {"max_message_bytes", "deadline_ms", "max_batch", "max_wait_ms", "max_queue", "max_image_side",
                "max_connections", "send_timeout_ms", "history_mb", "history_idle_s",
                "min_image_side", "max_prompt_len"},     # the model's: prompt tokens incl. BOS (None: no limit)
     "request_keys": {"image": [...], "instruction": [...]},
     "policy": {... the policy's full metadata, JSON-able ...}}

``low``/``high`` are the bounds of the *decoded* action (the floats in ``actions``); the client rejects
anything outside them. The policy's metadata may give the action space as an ``ActionSpace``, its ``to_dict()``
or ``{names, low, high}``; all normalize to the form above.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from rt2.serve.protocol import IMAGE_KEYS, INSTRUCTION_KEYS

PROTOCOL_VERSION = 1
LIMIT_KEYS = (
    "max_message_bytes",
    "deadline_ms",
    "max_batch",
    "max_wait_ms",
    "max_queue",
    "max_image_side",
    "max_connections",
    "send_timeout_ms",
    "history_mb",
    "history_idle_s",
)


def jsonable(x: Any) -> Any:
    """Tuples -> lists, numpy -> python, objects with ``to_dict`` -> dicts; other objects -> ``str``."""
    if hasattr(x, "to_dict") and callable(x.to_dict):
        x = x.to_dict()
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def normalize_action_space(space: Any, text_format: str | None = None) -> dict:
    """Return ``{name, dim, names, low, high, text_format, dims}`` from any supported description."""
    d = jsonable(space)
    if not isinstance(d, dict):
        raise ValueError(f"policy metadata action_space must be a dict or ActionSpace, got {type(space).__name__}")
    if "dims" in d:
        dims = d["dims"]
        names = [x["name"] for x in dims]
        low = [float(x.get("low", -1.0)) for x in dims]
        high = [float(x.get("high", 1.0)) for x in dims]
    elif {"names", "low", "high"} <= set(d):
        names, low, high = list(d["names"]), [float(v) for v in d["low"]], [float(v) for v in d["high"]]
        dims = [{"name": n, "low": lo, "high": hi} for n, lo, hi in zip(names, low, high, strict=True)]
    else:
        raise ValueError("policy metadata action_space needs 'dims' or 'names'/'low'/'high'")
    if not (len(names) == len(low) == len(high)) or not names:
        raise ValueError("action_space names/low/high must have the same non-zero length")
    fmt = d.get("text_format") or text_format or " ".join(n.upper() for n in names)
    return {
        "name": d.get("name", "custom"),
        "dim": len(names),
        "names": names,
        "low": low,
        "high": high,
        "text_format": fmt,
        "dims": dims,
    }


def _first(meta: Mapping, *names: str, default: Any = None) -> Any:
    for n in names:
        if meta.get(n) is not None:
            return meta[n]
    return default


def build_metadata(policy_meta: Mapping[str, Any], config: Mapping[str, Any], *, rt2_version: str) -> dict:
    """The handshake dict. ``config``: the server config (only :data:`LIMIT_KEYS` are published; never the token)."""
    pm = jsonable(dict(policy_meta))
    if isinstance(pm.get("checkpoint"), str):  # do not publish the server's filesystem layout
        pm["checkpoint"] = PurePath(pm["checkpoint"]).name
    space = _first(pm, "action_space")
    if space is None:
        raise ValueError("policy.metadata() has no 'action_space'; the client needs names and bounds")
    size = _first(pm, "image_size", default=[224, 224])
    if isinstance(size, int):
        size = [size, size]
    n_frames = int(_first(pm, "n_frames", "num_frames", default=1))
    if n_frames < 1:
        raise ValueError(f"policy metadata n_frames must be >= 1, got {n_frames}")
    return {
        "server": "rt2",
        "protocol": PROTOCOL_VERSION,
        "rt2_version": rt2_version,
        "model_name": _first(pm, "model_name", "model", "name", default="unknown"),
        "action_space": normalize_action_space(space, _first(pm, "action_text_format", "text_format")),
        "image_size": [int(size[0]), int(size[1])],
        "n_frames": n_frames,
        "norm_stats_key": _first(pm, "norm_stats_key", "norm_stats"),
        "limits": {k: config[k] for k in LIMIT_KEYS if k in config},
        "request_keys": {"image": list(IMAGE_KEYS), "instruction": list(INSTRUCTION_KEYS)},
        "policy": pm,
    }
