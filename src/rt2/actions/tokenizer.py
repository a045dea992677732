"""ActionTokenizer: continuous actions <-> the integers RT-2 writes as text ("bins") <-> strings.

::

    tok = ActionTokenizer(ActionSpace.language_table())
    tok.encode([0.03, -0.07])         # array([ 3, -7])
    tok.to_text([3, -7])              # '3 -7'
    tok.from_text("3 -7")             # array([ 3, -7])
    tok.decode([3, -7])               # array([ 0.03, -0.07], dtype=float32)

    tok = ActionTokenizer(ActionSpace.rt1(), stats=NormStats.load(p, "bridge"), mode="q01_q99")

Binning of a continuous dimension, after mapping its *domain* ``[lo, hi]`` to u in [0, 1]:

- uniform (default): ``n_bins`` equal-width bins, ``b = min(floor(u * n_bins), n_bins - 1)``; decode returns the
  bin centre ``lo + (b + 0.5) / n_bins * (hi - lo)``. Error <= half a bin width inside the domain.
- explicit grid ``(g0, g1)`` on the Dim: ``b = round(g0 + u * (g1 - g0))``, decode ``lo + (b - g0) / (g1 - g0) *
  (hi - lo)``; the endpoints are exact (Language-Table's 10 units decode to exactly 0.1 m).

The domain is the Dim's ``[low, high]`` for mode ``none``, the stats' ``[min, max]`` for ``min_max`` and
``[q01, q99]`` for ``q01_q99``. Values outside the domain are clipped to it and *counted* (``clip_stats``);
with ``q01_q99`` about 2% of training values clip by construction. Discrete dimensions are written as
themselves and never normalized or clipped (a bad discrete value raises).

Text form (strict, canonical): the D integers in decimal, separated by exactly one ASCII space, e.g.
``"1 128 91 241 5 101 127 217"``. Leading/trailing whitespace (``str.strip``) is ignored; anything else that
``to_text`` would not have written is an ``ActionParseError``: double spaces, tabs between values, ``+3``,
``07``, ``-0``, non-ASCII digits (Python's ``int("٣")`` accepts them: trap), extra or missing values, values
outside the position's legal range. Hence ``to_text(from_text(s)) == s.strip()`` for every accepted ``s``.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rt2.actions.errors import ActionParseError
from rt2.actions.space import ActionSpace, as_space
from rt2.actions.stats import NormStats
from rt2.actions.textcodec import RowFormatter, parse_batch

Mode = Literal["min_max", "q01_q99", "none"]
MODES: tuple[str, ...] = ("min_max", "q01_q99", "none")
_UNIFORM, _GRID, _DISCRETE = 0, 1, 2

# Used only to explain a rejection. [0-9], not \d: \d matches Arabic-Indic and other Unicode digits.
_CANON = re.compile(r"0|-?[1-9][0-9]*")
_LOOSE = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class ClipStats:
    """Counts of continuous values clipped to the normalization domain since the last reset.

    ``seen`` is the number of actions encoded; ``below``/``above`` are per-dimension counts (0 for discrete
    dimensions, which never clip). ``rate`` = clipped values / continuous values seen.
    """

    names: tuple[str, ...]
    seen: int
    below: tuple[int, ...]
    above: tuple[int, ...]
    n_continuous: int

    @property
    def clipped(self) -> int:
        return int(sum(self.below) + sum(self.above))

    @property
    def rate(self) -> float:
        denom = self.seen * self.n_continuous
        return self.clipped / denom if denom else 0.0

    def per_dim(self) -> dict[str, float]:
        """Clip rate of each dimension."""
        return {
            n: (b + a) / self.seen if self.seen else 0.0
            for n, b, a in zip(self.names, self.below, self.above, strict=True)
        }


def _resolve_modes(space: ActionSpace, stats: NormStats | None, mode: Any) -> tuple[str, ...]:
    if mode is None:
        mode = "q01_q99" if stats is not None else "none"
    if isinstance(mode, str):
        if mode not in MODES:
            raise ValueError(f"unknown normalization mode {mode!r}; choose one of {MODES}")
        modes = tuple("none" if d.discrete else mode for d in space.dims)
    elif isinstance(mode, Mapping):
        unknown = set(mode) - set(space.names)
        if unknown:
            raise ValueError(f"mode names unknown dimensions {sorted(unknown)}; dimensions are {list(space.names)}")
        modes = tuple(mode.get(n, "none") for n in space.names)
    else:
        modes = tuple(mode)
        if len(modes) != space.dim:
            raise ValueError(f"mode needs one entry per dimension ({space.dim}), got {len(modes)}")
    for d, m in zip(space.dims, modes, strict=True):
        if m not in MODES:
            raise ValueError(f"unknown normalization mode {m!r} for {d.name!r}; choose one of {MODES}")
        if d.discrete and m != "none":
            raise ValueError(f"discrete dimension {d.name!r} is never normalized; give it mode 'none', not {m!r}")
    if stats is None and any(m != "none" for m in modes):
        raise ValueError(
            f"modes {modes} need NormStats: pass stats=NormStats.from_actions(actions, names=space.names) "
            "or NormStats.load(path, key)"
        )
    return modes


class ActionTokenizer:
    """Vectorised, strict action tokenizer for one :class:`ActionSpace` (see module docstring)."""

    def __init__(
        self,
        space: ActionSpace | str,
        stats: NormStats | None = None,
        n_bins: int = 256,
        mode: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> None:
        self.space = as_space(space)
        if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 2:
            raise ValueError(f"n_bins must be an int >= 2, got {n_bins!r}")
        if stats is not None and tuple(stats.names) != self.space.names:
            raise ValueError(
                f"NormStats dimensions {list(stats.names)} do not match the action space {list(self.space.names)}"
            )
        self.n_bins = n_bins
        self.stats = stats
        self.modes = _resolve_modes(self.space, stats, mode)
        d = self.space.dim
        kind = np.empty(d, np.int64)
        lo, hi = self.space.low.copy(), self.space.high.copy()
        g0, g1 = np.zeros(d), np.ones(d)
        vlo, vhi = np.zeros(d, np.int64), np.zeros(d, np.int64)
        fallback = []
        for j, (dim, m) in enumerate(zip(self.space.dims, self.modes, strict=True)):
            if dim.discrete:
                kind[j], vhi[j] = _DISCRETE, dim.n - 1
                continue
            if m != "none":
                a, b = (stats.min[j], stats.max[j]) if m == "min_max" else (stats.q01[j], stats.q99[j])
                # A (near-)constant dimension has no scale to normalize by, and float32 decode would not resolve
                # bins that are narrow relative to the values. Fall back to the Dim's bounds, loudly.
                if b - a < max(1e-6, 1e-3 * max(abs(a), abs(b))):
                    fallback.append(dim.name)
                else:
                    lo[j], hi[j] = a, b
            if dim.grid is not None:
                kind[j] = _GRID
                g0[j], g1[j] = dim.grid
                vlo[j], vhi[j] = dim.grid
            else:
                kind[j], vhi[j] = _UNIFORM, n_bins - 1
        if fallback:
            warnings.warn(
                f"NormStats range of {fallback} is (near) zero; those dimensions use the action space bounds",
                stacklevel=2,
            )
        self.fallback_dims: tuple[str, ...] = tuple(fallback)
        self._kind, self._lo, self._hi, self._g0, self._g1 = kind, lo, hi, g0, g1
        self._vlo, self._vhi = vlo, vhi
        self._cont = kind != _DISCRETE
        self._inv = 1.0 / (hi - lo)
        self._uni, self._grd, self._dis = kind == _UNIFORM, kind == _GRID, kind == _DISCRETE
        vmin, vmax = int(vlo.min()), int(vhi.max())
        self._fmt = RowFormatter(vmin, vmax)
        self._lut = {s: v for v, s in enumerate(self._fmt.strs, start=vmin)}
        self._lock = threading.Lock()
        self.reset_clip_stats()

    # ---- properties ----------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.space.dim

    @property
    def domain(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64[D], float64[D]): the raw-unit interval each continuous dimension is binned over."""
        return self._lo.copy(), self._hi.copy()

    @property
    def bin_width(self) -> np.ndarray:
        """float64[D] width of one integer step in raw units (0 for discrete dims)."""
        span = self._hi - self._lo
        w = np.where(self._uni, span / self.n_bins, span / np.maximum(self._g1 - self._g0, 1))
        return np.where(self._dis, 0.0, w)

    def values(self, position: int) -> list[int]:
        """The legal integers at ``position`` (0 <= position < D), ascending."""
        if not isinstance(position, (int, np.integer)) or not 0 <= position < self.dim:
            raise IndexError(f"position must be an int in 0..{self.dim - 1}, got {position!r}")
        return list(range(int(self._vlo[position]), int(self._vhi[position]) + 1))

    @property
    def value_ranges(self) -> tuple[tuple[int, int], ...]:
        """(lo, hi) inclusive legal integers per position."""
        return tuple((int(a), int(b)) for a, b in zip(self._vlo, self._vhi, strict=True))

    # ---- clip accounting -----------------------------------------------------------------------------------
    def reset_clip_stats(self) -> None:
        with self._lock:
            self._seen = 0
            self._below = np.zeros(self.dim, np.int64)
            self._above = np.zeros(self.dim, np.int64)

    @property
    def clip_stats(self) -> ClipStats:
        with self._lock:
            return ClipStats(
                names=self.space.names,
                seen=self._seen,
                below=tuple(int(x) for x in self._below),
                above=tuple(int(x) for x in self._above),
                n_continuous=int(self._cont.sum()),
            )

    # ---- numbers -------------------------------------------------------------------------------------------
    def encode(self, actions: Any) -> np.ndarray:
        """float[..., D] raw actions -> int64[..., D] integers. Clips continuous values to the domain (counted)."""
        a = self.space.validate(actions)
        u = (a - self._lo) * self._inv
        below = (u < 0.0) & self._cont
        above = (u > 1.0) & self._cont
        flat = a.reshape(-1, self.dim)
        with self._lock:
            self._seen += flat.shape[0]
            self._below += below.reshape(-1, self.dim).sum(0)
            self._above += above.reshape(-1, self.dim).sum(0)
        u = np.clip(u, 0.0, 1.0)
        out = np.minimum(np.floor(u * self.n_bins), self.n_bins - 1)
        if self._grd.any():
            out = np.where(self._grd, np.rint(self._g0 + u * (self._g1 - self._g0)), out)
        if self._dis.any():
            out = np.where(self._dis, np.rint(a), out)
        return out.astype(np.int64)

    def check_bins(self, bins: Any) -> np.ndarray:
        """Return ``bins`` as int64[..., D] or raise ValueError naming the first illegal value."""
        b = np.asarray(bins)
        if b.dtype == np.bool_ or not np.issubdtype(b.dtype, np.integer):
            raise ValueError(f"bins must be integers int[..., {self.dim}], got dtype {b.dtype}; use encode() on floats")
        if b.ndim == 0 or b.shape[-1] != self.dim:
            raise ValueError(f"bins must have shape [..., {self.dim}] ({' '.join(self.space.names)}), got {b.shape}")
        b = b.astype(np.int64, copy=False)
        bad = (b < self._vlo) | (b > self._vhi)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            j = idx[-1]
            raise ValueError(
                f"bin {int(b[idx])} at index {idx} is outside {self.space.names[j]!r}'s legal range "
                f"{int(self._vlo[j])}..{int(self._vhi[j])}"
            )
        return b

    def decode(self, bins: Any) -> np.ndarray:
        """int[..., D] integers -> float32[..., D] bin centres in raw (un-normalized) units."""
        b = self.check_bins(bins).astype(np.float64)
        span = self._hi - self._lo
        out = self._lo + (b + 0.5) * (span / self.n_bins)
        if self._grd.any():
            out = np.where(self._grd, self._lo + (b - self._g0) * (span / (self._g1 - self._g0)), out)
        if self._dis.any():
            out = np.where(self._dis, b, out)
        return out.astype(np.float32)

    # ---- text ----------------------------------------------------------------------------------------------
    def to_text(self, bins: Any) -> str | list[str]:
        """int[D] -> ``"3 -7"``; int[B, D] -> list of B strings."""
        b = self.check_bins(bins)
        if b.ndim == 1:
            return self._fmt.one(b.tolist())
        if b.ndim != 2:
            raise ValueError(f"to_text takes int[D] or int[B, D], got shape {b.shape}")
        return self._fmt.rows(b)

    def from_text(self, text: str) -> np.ndarray:
        """Strictly parse one action string -> int64[D]; raises ActionParseError with the reason."""
        if not isinstance(text, str):
            raise ActionParseError(f"action text must be a str, got {type(text).__name__}")
        parts = text.strip().split(" ")
        if len(parts) == self.dim:
            lut = self._lut  # canonical spellings only: '+3', '07', '-0', '' (double space) are not keys
            vals = [lut.get(p) for p in parts]
            if None not in vals:
                b = np.array(vals, dtype=np.int64)
                if not ((b < self._vlo) | (b > self._vhi)).any():
                    return b
        raise self._explain(text)

    def from_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Parse B strings -> int64[B, D]; the first bad string raises ActionParseError (which one and why)."""
        texts = list(texts)
        for attempt in (texts, [t.strip() if isinstance(t, str) else t for t in texts]):
            b = parse_batch(attempt, self.dim, self._lut)
            if b is not None and not ((b < self._vlo) | (b > self._vhi)).any():
                return b
        for i, t in enumerate(texts):
            try:
                self.from_text(t)
            except ActionParseError as e:
                raise ActionParseError(f"action text #{i}: {e}") from None
        raise AssertionError("unreachable: a fast-path failure must have a failing row")  # pragma: no cover

    def _explain(self, text: str) -> ActionParseError:
        """The slow path: say exactly why ``text`` is not a legal action."""
        d = self.dim
        example = self.to_text(np.array([lo for lo, _ in self.value_ranges]))
        want = f"{d} integer(s) separated by single spaces, like {example!r}"
        s = text.strip()
        if not s:
            return ActionParseError(f"empty action text; expected {want}")
        parts = s.split(" ")
        if "" in parts:
            return ActionParseError(f"double space in {text!r}; expected {want}")
        for p in parts:
            if any(c.isspace() for c in p):
                return ActionParseError(f"whitespace other than single spaces in {text!r}; expected {want}")
        if len(parts) != d:
            kind = "extra" if len(parts) > d else "missing"
            return ActionParseError(f"{kind} values: got {len(parts)} token(s) in {text!r}; expected {want}")
        for j, p in enumerate(parts):
            name = self.space.names[j]
            if not (p.isascii() and _LOOSE.fullmatch(p)):
                return ActionParseError(f"token {p!r} for {name!r} (position {j}) is not an integer in {text!r}")
            if not _CANON.fullmatch(p):
                return ActionParseError(
                    f"token {p!r} for {name!r} (position {j}) is not canonical: no '+', '-0' or leading zeros"
                )
            v = int(p)
            if not self._vlo[j] <= v <= self._vhi[j]:
                return ActionParseError(
                    f"value {v} for {name!r} (position {j}) is outside its legal range "
                    f"{int(self._vlo[j])}..{int(self._vhi[j])} in {text!r}"
                )
        return ActionParseError(f"cannot parse {text!r}; expected {want}")  # pragma: no cover

    # ---- (de)serialization ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``ActionTokenizer.from_dict(tok.to_dict())`` encodes identically."""
        return {
            "space": self.space.to_dict(),
            "stats": self.stats.to_dict() if self.stats is not None else None,
            "n_bins": self.n_bins,
            "mode": list(self.modes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionTokenizer:
        missing = [k for k in ("space", "n_bins", "mode") if k not in d]
        if missing:
            raise ValueError(f"ActionTokenizer dict is missing {missing}; was it written by to_dict()?")
        stats = NormStats.from_dict(d["stats"]) if d.get("stats") is not None else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback warning was shown when the checkpoint was made
            return cls(ActionSpace.from_dict(d["space"]), stats=stats, n_bins=int(d["n_bins"]), mode=list(d["mode"]))

    def __repr__(self) -> str:
        modes = sorted(set(m for m, dis in zip(self.modes, self._dis, strict=True) if not dis)) or ["none"]
        return f"ActionTokenizer({self.space.name!r}, D={self.dim}, n_bins={self.n_bins}, mode={'/'.join(modes)})"
