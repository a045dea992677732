"""Action spaces: named dimensions, each continuous with bounds or discrete with ``n`` values.

An :class:`ActionSpace` says *what* an action is (names, units, bounds, legal integers); how values become
integers is :class:`rt2.actions.ActionTokenizer`'s job. Two presets match the paper::

    >>> from rt2.actions import ActionSpace
    >>> ActionSpace.rt1().names
    ('terminate', 'x', 'y', 'z', 'roll', 'pitch', 'yaw', 'gripper')
    >>> ActionSpace.language_table().names
    ('x', 'y')

A continuous dimension is written as one integer. By default that integer is one of the tokenizer's ``n_bins``
uniform bins (0..n_bins-1). A dimension with an explicit integer ``grid=(lo, hi)`` instead maps ``lo`` to
``low`` and ``hi`` to ``high`` linearly and rounds to the nearest integer, so the integer keeps a physical
meaning (Language-Table: 1 unit = 0.01 m, ``grid=(-10, 10)`` for +-0.1 m).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["continuous", "discrete"]

# Discrete values arrive as floats from datasets (terminate 0.0/1.0). Anything further than this from an
# integer is a bug upstream (e.g. a normalized value fed in by mistake) and must not be rounded away.
DISCRETE_TOL = 1e-6


@dataclass(frozen=True)
class Dim:
    """One action dimension.

    ``kind="continuous"``: values in ``[low, high]`` (``unit`` documents them, e.g. ``"m"``, ``"rad"``);
    ``grid=(lo, hi)`` optionally fixes the written integers to ``lo..hi`` (overrides the tokenizer's n_bins).
    ``kind="discrete"``: values are the integers ``0..n-1`` and are written as themselves; never normalized.
    """

    name: str
    kind: Kind = "continuous"
    low: float = -1.0
    high: float = 1.0
    n: int | None = None
    grid: tuple[int, int] | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or any(c.isspace() for c in self.name):
            raise ValueError(f"Dim name must be a non-empty string without whitespace, got {self.name!r}")
        if self.kind == "discrete":
            if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 2:
                raise ValueError(f"discrete Dim {self.name!r} needs an int n >= 2 (number of values), got {self.n!r}")
            if self.grid is not None:
                raise ValueError(f"discrete Dim {self.name!r} cannot have a grid; its values are 0..n-1")
            # Bounds of a discrete dim are its value range, so low/high/validate agree with the tokens.
            object.__setattr__(self, "low", 0.0)
            object.__setattr__(self, "high", float(self.n - 1))
        elif self.kind == "continuous":
            if self.n is not None:
                raise ValueError(
                    f"continuous Dim {self.name!r} takes no n (bins come from the tokenizer or from grid=(lo, hi))"
                )
            low, high = float(self.low), float(self.high)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"Dim {self.name!r} needs finite low < high, got low={self.low!r} high={self.high!r}")
            object.__setattr__(self, "low", low)
            object.__setattr__(self, "high", high)
            if self.grid is not None:
                g = tuple(self.grid)
                if len(g) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in g) or g[0] >= g[1]:
                    raise ValueError(
                        f"Dim {self.name!r} grid must be two ints (lo, hi) with lo < hi, got {self.grid!r}"
                    )
                object.__setattr__(self, "grid", g)
        else:
            raise ValueError(f"Dim {self.name!r} kind must be 'continuous' or 'discrete', got {self.kind!r}")

    @property
    def discrete(self) -> bool:
        return self.kind == "discrete"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "grid": list(self.grid) if self.grid is not None else None,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dim:
        unknown = set(d) - {"name", "kind", "low", "high", "n", "grid", "unit"}
        if unknown:
            raise ValueError(f"unknown Dim fields {sorted(unknown)}; expected name, kind, low, high, n, grid, unit")
        grid = d.get("grid")
        return cls(
            name=d["name"],
            kind=d.get("kind", "continuous"),
            low=d.get("low", -1.0),
            high=d.get("high", 1.0),
            n=d.get("n"),
            grid=tuple(grid) if grid is not None else None,
            unit=d.get("unit", ""),
        )


@dataclass(frozen=True)
class ActionSpace:
    """An ordered tuple of :class:`Dim`; the order is the order of integers in the action text."""

    dims: tuple[Dim, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        dims = tuple(self.dims)
        if not dims or not all(isinstance(d, Dim) for d in dims):
            raise ValueError("ActionSpace needs at least one Dim (a tuple of rt2.actions.Dim)")
        names = [d.name for d in dims]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ActionSpace dimension names must be unique; repeated: {dupes}")
        object.__setattr__(self, "dims", dims)

    # ---- presets -------------------------------------------------------------------------------------------
    @classmethod
    def rt1(cls) -> ActionSpace:
        """RT-1/RT-2's 8-D action, in the paper's text order ``terminate x y z roll pitch yaw gripper``.

        Bounds (per 3 Hz step, end-effector frame deltas): position +-0.1 m, rotation +-pi/2 rad (RT-1's
        ``rotation_delta`` spec), gripper extension in [0, 1] (0 = open, 1 = closed). terminate is discrete
        {0, 1}. Real datasets rarely fill these bounds: pass NormStats to the tokenizer so 256 bins cover the
        data, not the spec.
        """
        half_pi = math.pi / 2
        return cls(
            dims=(
                Dim("terminate", "discrete", n=2),
                Dim("x", low=-0.1, high=0.1, unit="m"),
                Dim("y", low=-0.1, high=0.1, unit="m"),
                Dim("z", low=-0.1, high=0.1, unit="m"),
                Dim("roll", low=-half_pi, high=half_pi, unit="rad"),
                Dim("pitch", low=-half_pi, high=half_pi, unit="rad"),
                Dim("yaw", low=-half_pi, high=half_pi, unit="rad"),
                Dim("gripper", low=0.0, high=1.0, unit="fraction closed"),
            ),
            name="rt1",
        )

    @classmethod
    def language_table(cls) -> ActionSpace:
        """Language-Table's 2-D end-effector delta, text ``"X Y"`` with integers -10..10, 1 unit = 0.01 m.

        Robot-base frame: x points down the image (away from the robot base), y to the image right. +-10 units
        is the environment's +-0.1 m action bound, so the integers are exactly what ``TabletopEnv.step`` takes.
        """
        return cls(
            dims=(
                Dim("x", low=-0.1, high=0.1, grid=(-10, 10), unit="m"),
                Dim("y", low=-0.1, high=0.1, grid=(-10, 10), unit="m"),
            ),
            name="language_table",
        )

    @classmethod
    def preset(cls, name: str) -> ActionSpace:
        """``ActionSpace.preset("rt1")`` / ``("language_table")``; the names used on the command line."""
        presets = {"rt1": cls.rt1, "language_table": cls.language_table}
        if name not in presets:
            raise ValueError(f"unknown action space {name!r}; choose one of {sorted(presets)}")
        return presets[name]()

    # ---- properties ----------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """D, the number of integers in one action's text."""
        return len(self.dims)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    @property
    def low(self) -> np.ndarray:
        """float64[D] lower bounds (discrete dims: 0)."""
        return np.array([d.low for d in self.dims], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        """float64[D] upper bounds (discrete dims: n-1)."""
        return np.array([d.high for d in self.dims], dtype=np.float64)

    @property
    def discrete_mask(self) -> np.ndarray:
        """bool[D], True where the dimension is discrete."""
        return np.array([d.discrete for d in self.dims], dtype=bool)

    # ---- validation ----------------------------------------------------------------------------------------
    def validate(self, actions: Any) -> np.ndarray:
        """Check ``actions`` (float[..., D]) and return them as float64[..., D].

        Raises ValueError for non-numeric input, a last axis that is not D, NaN/inf, or a discrete value that is
        not one of its integers 0..n-1. Continuous values outside ``[low, high]`` are *not* an error here: the
        tokenizer clips them and counts the clip (see ``ActionTokenizer.clip_stats``).
        """
        try:
            arr = np.asarray(actions)
        except (ValueError, TypeError) as e:  # ragged nested lists
            raise ValueError(f"{self.name} actions must be a numeric array float[..., {self.dim}]: {e}") from e
        if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(
                f"{self.name} actions must be a numeric array float[..., {self.dim}], got dtype {arr.dtype} "
                f"(convert strings with ActionTokenizer.from_text)"
            )
        if arr.ndim == 0 or arr.shape[-1] != self.dim:
            raise ValueError(
                f"{self.name} actions must have shape [..., {self.dim}] ({' '.join(self.names)}), got {arr.shape}"
            )
        arr = arr.astype(np.float64, copy=False)
        finite = np.isfinite(arr)
        if not finite.all():
            idx = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(
                f"{self.name} actions contain {int((~finite).sum())} non-finite value(s); first {arr[idx]} at index "
                f"{idx} (dimension {self.names[idx[-1]]!r})"
            )
        for j, d in enumerate(self.dims):
            if not d.discrete:
                continue
            col = arr[..., j]
            r = np.rint(col)
            bad = (np.abs(col - r) > DISCRETE_TOL) | (r < 0) | (r > d.n - 1)
            if bad.any():
                first = col[bad].flat[0]
                raise ValueError(
                    f"discrete dimension {d.name!r} takes the integers 0..{d.n - 1}, got {first!r} "
                    f"({int(bad.sum())} bad value(s)); discrete values are never normalized or clipped"
                )
        return arr

    # ---- (de)serialization ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dims": [d.to_dict() for d in self.dims]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionSpace:
        if "dims" not in d:
            raise ValueError("ActionSpace dict needs 'dims' (a list of Dim dicts); was it written by to_dict()?")
        return cls(dims=tuple(Dim.from_dict(x) for x in d["dims"]), name=d.get("name", "custom"))

    def __repr__(self) -> str:
        return f"ActionSpace({self.name!r}, dims={list(self.names)})"


def as_space(space: ActionSpace | str | Sequence[Dim]) -> ActionSpace:
    """Accept a space, a preset name, or a sequence of Dim."""
    if isinstance(space, ActionSpace):
        return space
    if isinstance(space, str):
        return ActionSpace.preset(space)
    return ActionSpace(dims=tuple(space))
