"""Per-dimension action statistics for normalization, stored as JSON keyed by dataset name.

Exact from an in-memory array, or streamed over a dataset of any size::

    stats = NormStats.from_actions(actions, names=space.names)      # actions: float[N, D]
    acc = NormStatsAccumulator(space.names)
    for chunk in chunks: acc.update(chunk)                            # float[n, D] each
    stats = acc.finalize()
    stats.save("ckpt/norm_stats.json", key="language_table_sim")     # atomic; other keys in the file are kept
    NormStats.load("ckpt/norm_stats.json", "language_table_sim")

Streaming quantiles use a uniform reservoir sample of rows (Vitter's algorithm R, seeded): exact when the
dataset has at most ``capacity`` rows, otherwise q01/q99 are quantiles of a uniform random sample, whose rank
error is about sqrt(q(1-q)/capacity) (0.03 percentile points for q01 with the default 100k rows). min, max,
mean and std are always exact (Chan et al. parallel merge in float64).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "rt2.norm_stats"
VERSION = 1
FIELDS = ("min", "max", "q01", "q99", "mean", "std")


def _as_2d(actions: Any, d: int | None) -> np.ndarray:
    arr = np.asarray(actions, dtype=np.float64)
    if arr.ndim == 1 and d is not None and arr.shape[0] == d:
        arr = arr[None]
    if arr.ndim != 2 or (d is not None and arr.shape[1] != d):
        raise ValueError(f"norm stats need actions float[N, D{'=' + str(d) if d else ''}], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"norm stats input has {int((~np.isfinite(arr)).sum())} non-finite value(s); clean the data")
    return arr


@dataclass(frozen=True)
class NormStats:
    """float statistics per dimension, each a tuple of length D in ``names`` order; ``count`` rows seen."""

    names: tuple[str, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]
    q01: tuple[float, ...]
    q99: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        d = len(self.names)
        for f in FIELDS:
            vals = tuple(float(v) for v in getattr(self, f))
            if len(vals) != d:
                raise ValueError(f"NormStats.{f} has {len(vals)} values for {d} dimensions {list(self.names)}")
            if not all(math.isfinite(v) for v in vals):
                raise ValueError(f"NormStats.{f} must be finite, got {vals}")
            object.__setattr__(self, f, vals)
        for j, n in enumerate(self.names):
            if not (self.min[j] <= self.q01[j] <= self.q99[j] <= self.max[j]):
                raise ValueError(
                    f"NormStats for {n!r} violate min <= q01 <= q99 <= max: "
                    f"{self.min[j]}, {self.q01[j]}, {self.q99[j]}, {self.max[j]}"
                )
        if int(self.count) < 1:
            raise ValueError(f"NormStats.count must be >= 1, got {self.count}")

    @property
    def dim(self) -> int:
        return len(self.names)

    def array(self, field: str) -> np.ndarray:
        """float64[D] of one field: ``stats.array("q01")``."""
        if field not in FIELDS:
            raise ValueError(f"unknown NormStats field {field!r}; choose one of {FIELDS}")
        return np.array(getattr(self, field), dtype=np.float64)

    @classmethod
    def from_actions(cls, actions: Any, names: Sequence[str] | None = None) -> NormStats:
        """Exact statistics of float[N, D] (np.quantile, linear interpolation)."""
        arr = _as_2d(actions, len(names) if names is not None else None)
        if arr.shape[0] == 0:
            raise ValueError("norm stats need at least one action row, got 0")
        names = tuple(names) if names is not None else tuple(f"a{j}" for j in range(arr.shape[1]))
        q = np.quantile(arr, [0.01, 0.99], axis=0)
        return cls(
            names=names,
            min=tuple(arr.min(0)),
            max=tuple(arr.max(0)),
            q01=tuple(q[0]),
            q99=tuple(q[1]),
            mean=tuple(arr.mean(0)),
            std=tuple(arr.std(0)),
            count=int(arr.shape[0]),
        )

    # ---- JSON ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"names": list(self.names), "count": int(self.count)}
        for f in FIELDS:
            out[f] = list(getattr(self, f))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NormStats:
        missing = [f for f in ("names", "count", *FIELDS) if f not in d]
        if missing:
            raise ValueError(f"NormStats dict is missing {missing}; was it written by NormStats.to_dict()?")
        return cls(names=tuple(d["names"]), count=int(d["count"]), **{f: tuple(d[f]) for f in FIELDS})

    def save(self, path: str | os.PathLike[str], key: str) -> None:
        """Write under ``key`` into the JSON file at ``path``, keeping its other keys. Atomic (temp + rename).

        Not safe against two processes saving *different* keys to one file at the same instant (last rename
        wins); write stats from one process, as ``rt2 collect`` does.
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"NormStats key must be a non-empty string (the dataset name), got {key!r}")
        path = Path(path)
        all_stats = NormStats.load_all(path) if path.exists() else {}
        all_stats[key] = self
        save_all(path, all_stats)

    @staticmethod
    def load_all(path: str | os.PathLike[str]) -> dict[str, NormStats]:
        """Every key in the file: ``{dataset_name: NormStats}``."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no norm stats file at {path}; compute one with NormStats.save()") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); it is not a norm stats file") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or "stats" not in doc:
            raise ValueError(f"{path} is not an rt2 norm stats file (expected 'format': {FORMAT!r})")
        if doc.get("version", 0) > VERSION:
            raise ValueError(f"{path} has norm stats version {doc['version']}; this rt2 reads up to {VERSION}")
        return {k: NormStats.from_dict(v) for k, v in doc["stats"].items()}

    @classmethod
    def load(cls, path: str | os.PathLike[str], key: str) -> NormStats:
        all_stats = cls.load_all(path)
        if key not in all_stats:
            raise KeyError(f"no norm stats for dataset {key!r} in {path}; available: {sorted(all_stats) or 'none'}")
        return all_stats[key]


def save_all(path: str | os.PathLike[str], stats: Mapping[str, NormStats]) -> None:
    """Replace the file at ``path`` with exactly ``stats`` (atomic: temp file in the same directory + rename)."""
    path = Path(path)
    doc = {"format": FORMAT, "version": VERSION, "stats": {k: stats[k].to_dict() for k in sorted(stats)}}
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class NormStatsAccumulator:
    """Streaming NormStats: ``update(float[n, D])`` any number of times, then ``finalize()``.

    Memory is O(capacity * D). Deterministic for a given ``seed`` and chunking.
    """

    def __init__(self, names: Sequence[str], capacity: int = 100_000, seed: int = 0) -> None:
        if capacity < 100:
            raise ValueError(f"capacity must be >= 100 rows to estimate q01/q99, got {capacity}")
        self.names = tuple(names)
        self.capacity = int(capacity)
        d = len(self.names)
        self._rng = np.random.default_rng(seed)
        self._n = 0
        self._mean = np.zeros(d)
        self._m2 = np.zeros(d)
        self._min = np.full(d, np.inf)
        self._max = np.full(d, -np.inf)
        self._res = np.empty((self.capacity, d))

    @property
    def count(self) -> int:
        return self._n

    def update(self, actions: Any) -> None:
        x = _as_2d(actions, len(self.names))
        m = x.shape[0]
        if m == 0:
            return
        # Chan et al. merge of (count, mean, M2): stable in float64 for any chunking.
        bm = x.mean(0)
        bm2 = ((x - bm) ** 2).sum(0)
        n = self._n + m
        delta = bm - self._mean
        self._mean = self._mean + delta * (m / n)
        self._m2 = self._m2 + bm2 + delta**2 * (self._n * m / n)
        np.minimum(self._min, x.min(0), out=self._min)
        np.maximum(self._max, x.max(0), out=self._max)
        # Reservoir (algorithm R), vectorised per chunk: first fill, then row with global index t replaces a
        # random slot with probability capacity/(t+1).
        fill = min(max(self.capacity - self._n, 0), m)
        if fill:
            self._res[self._n : self._n + fill] = x[:fill]
        if fill < m:
            t = np.arange(self._n + fill, n)
            slot = (self._rng.random(t.shape[0]) * (t + 1)).astype(np.int64)
            keep = slot < self.capacity
            rows, slots = x[fill:][keep], slot[keep]
            # Trap: with duplicate slots in one chunk the *last* row must win (sequential semantics); numpy
            # fancy assignment does not promise an order, so keep only each slot's last occurrence.
            _, last = np.unique(slots[::-1], return_index=True)
            last = len(slots) - 1 - last
            self._res[slots[last]] = rows[last]
        self._n = n

    def finalize(self) -> NormStats:
        if self._n == 0:
            raise ValueError("NormStatsAccumulator.finalize() before any update(): no actions seen")
        sample = self._res[: min(self._n, self.capacity)]
        q = np.quantile(sample, [0.01, 0.99], axis=0)
        # Sample quantiles can fall outside the exact [min, max] only by float error; keep the invariant.
        q = np.clip(q, self._min, self._max)
        return NormStats(
            names=self.names,
            min=tuple(self._min),
            max=tuple(self._max),
            q01=tuple(q[0]),
            q99=tuple(q[1]),
            mean=tuple(self._mean),
            std=tuple(np.sqrt(np.maximum(self._m2 / self._n, 0.0))),
            count=self._n,
        )
