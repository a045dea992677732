"""Vectorised batch codec between int64[B, D] and canonical action strings ``"v0 v1 ... v{D-1}"``.

Used by ``ActionTokenizer.to_text`` / ``from_text_batch``; per-value Python loops (``int(tok)``, range checks,
``str(v)``) dominate a serving batch or a dataset export. Both directions go through one table of the
canonical value strings, so parse accepts exactly what render writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class RowFormatter:
    """Renders int64[B, D] (already range-checked) to B strings with one ``str.join`` over all values."""

    def __init__(self, vmin: int, vmax: int) -> None:
        self.vmin = vmin
        self.strs = [str(v) for v in range(vmin, vmax + 1)]
        # Each value string pre-joined with the separator that follows it: " " inside a row, "\n" at its end.
        self._sp = np.array([s + " " for s in self.strs], dtype=object)
        self._nl = np.array([s + "\n" for s in self.strs], dtype=object)

    def one(self, row: Sequence[int]) -> str:
        return " ".join([self.strs[v - self.vmin] for v in row])

    def rows(self, bins: np.ndarray) -> list[str]:
        """int64[B, D] -> list of B strings."""
        if bins.shape[0] == 0:
            return []
        idx = bins - self.vmin
        parts = np.empty(bins.shape, dtype=object)
        parts[:, :-1] = self._sp[idx[:, :-1]]
        parts[:, -1] = self._nl[idx[:, -1]]
        return "".join(parts.ravel().tolist()).split("\n")[:-1]


def parse_batch(texts: Sequence[str], d: int, lut: Mapping[str, int]) -> np.ndarray | None:
    """B strings -> int64[B, D], or None if any string is not exactly D canonical tokens joined by single spaces.

    ``lut`` maps each canonical value string (``"-7"``, ``"128"``) to its int, so a token is accepted only if it
    is spelled exactly as ``to_text`` spells it: no '+', '07', '-0', tabs or empty tokens (double spaces) can
    slip through. Per-position ranges are the caller's check. None means "fall back to the per-row parser",
    which names the bad row and the reason.
    """
    b = len(texts)
    if b == 0:
        return np.zeros((0, d), np.int64)
    if not all(isinstance(t, str) and t.count(" ") == d - 1 for t in texts):
        return None
    joined = "\n".join(texts)
    if joined.count("\n") != b - 1:  # a newline inside some text would shift rows
        return None
    tokens = joined.replace("\n", " ").split(" ")  # exactly B * D tokens now
    try:
        vals = list(map(lut.__getitem__, tokens))
    except KeyError:
        return None
    return np.array(vals, dtype=np.int64).reshape(b, d)
