"""Wire format: openpi msgpack_numpy compatibility and hostile-input safety (no network)."""

from __future__ import annotations

import contextlib

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt2.serve import wire


def test_roundtrip_and_openpi_compat():
    from openpi_client import msgpack_numpy as opm

    obj = {"a": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "s": np.int16(-3), "t": "x", "n": [1, 2.5, None]}
    for enc, dec in ((wire.packb, wire.unpackb), (wire.packb, opm.unpackb), (opm.packb, wire.unpackb)):
        out = dec(enc(obj))
        np.testing.assert_array_equal(out["a"], obj["a"])
        assert out["a"].dtype == np.float32 and out["s"] == -3 and out["t"] == "x" and out["n"] == [1, 2.5, None]


def test_text_keys_accepted():
    raw = msgpack.packb({"x": {"__ndarray__": True, "data": b"\x01\x02", "dtype": "|u1", "shape": [2]}})
    np.testing.assert_array_equal(wire.unpackb(raw)["x"], [1, 2])


@pytest.mark.parametrize("dtype", ["|O", "<c8", "|V8", "(2,)<f4", "<i4,<i4", "<M8[s]", "<U4", "|S4", "bogus", 7])
def test_refuses_unsafe_or_unknown_dtypes(dtype):
    raw = msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": dtype, b"shape": [1]})
    with pytest.raises(wire.WireError):
        wire.unpackb(raw)


def test_refuses_encoding_object_arrays():
    with pytest.raises(wire.WireError):
        wire.packb({"a": np.array([object()])})


@pytest.mark.parametrize(
    "shape,data",
    [
        ([3], b"\0" * 8),
        ([2**40, 2**40], b"\0" * 4),
        ([-1], b""),
        ([1.5], b"\0" * 4),
        ("3", b"\0" * 12),
        ([1] * 9, b"\0" * 4),
    ],
)
def test_refuses_bad_shapes_and_lengths(shape, data):
    raw = msgpack.packb({b"__ndarray__": True, b"data": data, b"dtype": "<f4", b"shape": shape})
    with pytest.raises(wire.WireError):
        wire.unpackb(raw)


def test_size_limit_and_non_bytes():
    with pytest.raises(wire.WireError):
        wire.unpackb(b"\x90" * 100, max_bytes=10)
    with pytest.raises(wire.WireError):
        wire.unpackb("text")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_wire_error(data):
    with contextlib.suppress(wire.WireError):
        wire.unpackb(data)


_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=5), st.binary(max_size=8)
)
_keys = st.sampled_from(["__ndarray__", b"__ndarray__", "data", b"data", "dtype", b"dtype", "shape", b"shape", "x"])
_tree = st.recursive(
    _leaf, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(_keys, c, max_size=5)), max_leaves=12
)


@settings(max_examples=300, deadline=None)
@given(_tree)
def test_random_structures_only_raise_wire_error(tree):
    with contextlib.suppress(wire.WireError):
        wire.unpackb(msgpack.packb(tree, use_bin_type=True))
