"""Request schema: turn a decoded message into a validated :class:`Request`, or a short ``bad_request`` reason.

Accepted request (a msgpack map; every key may be a text or byte string)::

    images | image | observation/image | observation.image | observation/images/image
                       uint8[H, W, 3]             one frame (the newest)
                       uint8[k, H, W, 3]          k <= n_frames frames, oldest first
                       [uint8[H, W, 3], ...]      same, as a list
                       uint8[3, H, W] (CHW) is transposed to HWC (LeRobot/torch layout)
    instruction | prompt   str                    (openpi clients send "prompt")
    robot_id               str | int              history key; default: the connection
    reset                  bool                   forget this robot's previous frame first
    timestamp              float | int            echoed verbatim in the reply
    state                  float[S]               accepted and ignored (RT-2 is vision + language only)

The first matching image key wins. Images of ``min_side``..``max_side`` pixels per side are accepted (the model's
resize needs at least 2); the server resizes them to the model's input (``metadata()["image_size"]``) with the
training transform's filter. Limits that need the model (prompt tokens) are checked by the server right after
parsing, through the policy's ``check_instruction``: every request the model cannot take is a ``bad_request``
naming the limit, before it can reach a batch shared with other robots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rt2.serve.errors import BAD_REQUEST, RequestError

IMAGE_KEYS = ("images", "image", "observation/image", "observation.image", "observation/images/image")
INSTRUCTION_KEYS = ("instruction", "prompt")
MAX_INSTRUCTION_CHARS = 1000
MAX_ROBOT_ID_CHARS = 128
MIN_IMAGE_SIDE = 2  # = rt2.data.transforms.MIN_IMAGE_SIDE (not imported: that module pulls in torch and cv2)


@dataclass
class Request:
    """One validated observation. ``frames``: tuple of uint8[H, W, 3] C-contiguous, oldest first (1..n_frames)."""

    frames: tuple[np.ndarray, ...]
    instruction: str
    robot_id: str | None = None
    reset: bool = False
    timestamp: float | int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _bad(msg: str) -> RequestError:
    return RequestError(BAD_REQUEST, msg)


def _get(msg: dict, names: tuple[str, ...]) -> tuple[str | None, Any]:
    for n in names:
        if n in msg:
            return n, msg[n]
        b = n.encode()
        if b in msg:
            return n, msg[b]
    return None, None


def _frame(a: Any, name: str, min_side: int, max_side: int) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise _bad(f"{name} must be a uint8 array [H, W, 3] (msgpack-numpy), got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise _bad(f"{name} must have dtype uint8, got {a.dtype}")
    if a.ndim != 3:
        raise _bad(f"{name} must be [H, W, 3], got shape {list(a.shape)}")
    if a.shape[-1] != 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)  # CHW -> HWC
    h, w, c = a.shape
    if c != 3:
        raise _bad(f"{name} must be RGB [H, W, 3], got shape {list(a.shape)}")
    if not (min_side <= h <= max_side and min_side <= w <= max_side):
        raise _bad(f"{name} size {h}x{w} is outside {min_side}..{max_side} pixels per side")
    # Trap: decoded arrays are read-only views into the message buffer; the policy and the per-robot history
    # keep frames after the message is gone, so own a contiguous copy.
    return np.array(a, dtype=np.uint8, order="C", copy=True)


def parse_request(msg: Any, *, n_frames: int, max_side: int = 2048, min_side: int = MIN_IMAGE_SIDE) -> Request:
    """Validate a decoded message. Raises :class:`RequestError` (``bad_request``) with a one-line reason."""
    if not isinstance(msg, dict):
        raise _bad(f"request must be a msgpack map, got {type(msg).__name__}")
    name, raw = _get(msg, IMAGE_KEYS)
    if name is None:
        raise _bad(f"missing image: send one of {', '.join(IMAGE_KEYS)}")
    if isinstance(raw, (list, tuple)) or isinstance(raw, np.ndarray) and raw.ndim == 4:
        items = list(raw)
    else:
        items = [raw]
    if not 1 <= len(items) <= n_frames:
        raise _bad(f"{name} has {len(items)} frames; this model takes 1..{n_frames} (oldest first)")
    frames = tuple(_frame(a, name, min_side, max_side) for a in items)
    if len({f.shape for f in frames}) != 1:
        raise _bad(f"{name} frames differ in size: {[list(f.shape) for f in frames]}")

    iname, instruction = _get(msg, INSTRUCTION_KEYS)
    if iname is None:
        raise _bad("missing instruction: send 'instruction' (or openpi's 'prompt') as a string")
    if isinstance(instruction, bytes):
        try:
            instruction = instruction.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(f"{iname} is not valid UTF-8") from None
    if not isinstance(instruction, str):
        raise _bad(f"{iname} must be a string, got {type(instruction).__name__}")
    instruction = instruction.strip()
    if not instruction or len(instruction) > MAX_INSTRUCTION_CHARS:
        raise _bad(f"{iname} must be 1..{MAX_INSTRUCTION_CHARS} characters")

    _, robot_id = _get(msg, ("robot_id",))
    if robot_id is not None:
        if isinstance(robot_id, bool) or not isinstance(robot_id, (str, int)):
            raise _bad("robot_id must be a string or an int")
        robot_id = str(robot_id)
        if not robot_id or len(robot_id) > MAX_ROBOT_ID_CHARS:
            raise _bad(f"robot_id must be 1..{MAX_ROBOT_ID_CHARS} characters")

    _, reset = _get(msg, ("reset",))
    if reset is None:
        reset = False
    if not isinstance(reset, (bool, np.bool_)):
        raise _bad("reset must be a bool")

    _, ts = _get(msg, ("timestamp",))
    if ts is not None:
        if isinstance(ts, np.generic):
            ts = ts.item()
        if (
            isinstance(ts, bool)
            or not isinstance(ts, (int, float))
            or (isinstance(ts, float) and not math.isfinite(ts))
        ):
            raise _bad("timestamp must be a finite number")
    return Request(frames=frames, instruction=instruction, robot_id=robot_id, reset=bool(reset), timestamp=ts)
