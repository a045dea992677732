"""The wire format: msgpack with numpy arrays, compatible with openpi's ``msgpack_numpy``, never pickle.

An array travels as a msgpack map (openpi's convention, byte-string keys)::

    {b"__ndarray__": True, b"data": <raw bytes, C order>, b"dtype": "<f4", b"shape": [H, W, 3]}

and a numpy scalar as ``{b"__npgeneric__": True, b"data": <python value>, b"dtype": "<f4"}``.
We *write* byte-string keys because openpi's unpacker only looks for ``b"__ndarray__"``; we *read* both byte and
text keys (``"__ndarray__"``) so clients in other languages can use plain strings.

Decoding is hostile-input safe:

- only bool / signed int / unsigned int / float dtypes are accepted (object, void, structured, sub-array,
  complex, datetime, string dtypes are refused: object arrays are how msgpack-numpy falls back to pickle);
- ``len(data)`` must equal ``prod(shape) * itemsize`` (a short buffer must not read past its end);
- shapes have at most ``MAX_NDIM`` non-negative int dimensions;
- the whole message is bounded by the transport (websockets ``max_size``) *before* it reaches us.

Decoded arrays are read-only views of the message bytes (no copy); copy before writing into them.
This module imports only numpy and msgpack: it is shared by the server and the light robot-side client.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

MAX_NDIM = 8
# bool, signed int, unsigned int, float. Everything else is refused on both ends.
ALLOWED_KINDS = frozenset("biuf")

_ND_KEYS = (b"__ndarray__", "__ndarray__")
_NG_KEYS = (b"__npgeneric__", "__npgeneric__")


class WireError(ValueError):
    """A message is not valid rt2 wire format (the reason is short and safe to send back to a client)."""


def _check_dtype(dtype: np.dtype) -> np.dtype:
    # Trap: np.dtype("(2,)f4") is a sub-array dtype whose kind is "V"; "i4,i4" is structured ("V" too);
    # checking `kind` (plus no fields / no sub-array) refuses all of them.
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise WireError(f"unsupported dtype {dtype.str!r}: only bool, int, uint and float arrays are accepted")
    return dtype


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype)
        return {
            b"__ndarray__": True,
            b"data": np.ascontiguousarray(obj).tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": list(obj.shape),
        }
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype)
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot encode {type(obj).__name__} on the rt2 wire (numpy arrays, str, bytes, numbers only)")


def _get(d: dict, key: str) -> Any:
    if key.encode() in d:
        return d[key.encode()]
    if key in d:
        return d[key]
    raise WireError(f"array map is missing {key!r}")


def _parse_dtype(raw: Any) -> np.dtype:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if not isinstance(raw, str) or not raw or len(raw) > 16:
        raise WireError("array dtype must be a short string such as '|u1' or '<f4'")
    try:
        dtype = np.dtype(raw)
    except (TypeError, ValueError, SyntaxError):
        raise WireError(f"unknown dtype {raw[:16]!r}") from None
    return _check_dtype(dtype)


def _decode_array(d: dict) -> np.ndarray:
    dtype = _parse_dtype(_get(d, "dtype"))
    shape = _get(d, "shape")
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_NDIM:
        raise WireError(f"array shape must be a list of at most {MAX_NDIM} ints")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise WireError("array shape entries must be non-negative ints")
    data = _get(d, "data")
    if not isinstance(data, bytes):
        raise WireError("array data must be bytes (msgpack bin)")
    # math.prod on python ints cannot overflow, unlike np.prod: a shape like [2**40, 2**40] must not wrap to a
    # small number that happens to match len(data).
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(data):
        raise WireError(f"array data has {len(data)} bytes but shape {list(shape)} x {dtype.str} needs {expected}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _decode_generic(d: dict) -> np.generic:
    dtype = _parse_dtype(_get(d, "dtype"))
    value = _get(d, "data")
    if not isinstance(value, (bool, int, float)):
        raise WireError("numpy scalar data must be a number")
    try:
        return dtype.type(value)
    except (OverflowError, ValueError, TypeError):
        raise WireError(f"numpy scalar {value!r} does not fit {dtype.str}") from None


def _object_hook(d: dict) -> Any:
    if any(k in d for k in _ND_KEYS):
        return _decode_array(d)
    if any(k in d for k in _NG_KEYS):
        return _decode_generic(d)
    return d


def packb(obj: Any) -> bytes:
    """Encode ``obj`` (dicts, lists, str, numbers, bytes, numpy arrays/scalars) to msgpack bytes."""
    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpackb(data: bytes | bytearray | memoryview, *, max_bytes: int | None = None) -> Any:
    """Decode msgpack bytes; arrays come back as read-only numpy views. Raises :class:`WireError`.

    ``max_bytes`` bounds the input (the server also bounds it at the transport). Any malformed input raises
    WireError with a one-line reason; never another exception type.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError("expected a binary msgpack frame")
    if max_bytes is not None and len(data) > max_bytes:
        raise WireError(f"message of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        # strict_map_key=True (the default) limits map keys to str/bytes: no unhashable or float keys.
        return msgpack.unpackb(bytes(data), object_hook=_object_hook, raw=False, strict_map_key=True)
    except WireError:
        raise
    except UnicodeDecodeError:
        raise WireError("invalid UTF-8 in a msgpack string") from None
    except msgpack.ExtraData:
        raise WireError("trailing bytes after the msgpack message") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError, OverflowError, MemoryError) as e:
        raise WireError(f"malformed msgpack ({type(e).__name__})") from None


def key(d: dict, name: str) -> Any:
    """``d[name]`` accepting a text or byte-string key (openpi packs str keys, some clients send bytes)."""
    if name in d:
        return d[name]
    return d.get(name.encode())
