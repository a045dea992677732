"""Dataset and per-episode statistics in LeRobot's keys and shapes (min max mean std count q01 q10 q50 q90 q99).

Numeric stats are exact over all frames; image stats come from exact per-channel histograms of the frames
LeRobot would sample, so per-episode histograms merge exactly into the dataset's stats.
"""

from __future__ import annotations

import math

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


def numeric_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """x: [N, D] -> min/max/mean/std/q01..q99 float64[D] and count int64[1] (exact, np.quantile linear)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    q = np.quantile(x, QUANTILES, axis=0)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    out.update({k: q[i] for i, k in enumerate(QUANTILE_KEYS)})
    return out


def sample_indices(n: int) -> np.ndarray:
    """LeRobot's frame sampling for image stats: all frames up to 100, then ~n**0.75, at most 10k."""
    num = max(min(n, 100), min(int(n**0.75), 10_000))
    return np.round(np.linspace(0, n - 1, num)).astype(int)


def episode_image_stats(images: np.ndarray) -> tuple[np.ndarray, int]:
    """uint8[T, H, W, 3] -> (uint64[3, 256] per-channel histogram of the sampled frames, frames sampled).

    Histograms, not pixel arrays, so episodes merge exactly and quantiles of uint8 pixels cost O(256)."""
    sub = images[sample_indices(len(images))]
    h, w = sub.shape[1:3]
    if max(h, w) >= 300:  # LeRobot downsamples big frames to ~150 px before computing stats
        f = int(w / 150) if w > h else int(h / 150)
        sub = sub[:, ::f, ::f]
    hist = np.stack([np.bincount(sub[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.uint64)
    return hist, len(sub)


def image_stats_from_histogram(hist: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Per-channel stats of pixels/255 as LeRobot stores them: each float64[3, 1, 1]; count int64[1]."""
    h = hist.astype(np.float64)
    n = h.sum(1)
    v = np.arange(256) / 255.0
    mean = (h * v).sum(1) / n
    std = np.sqrt(np.maximum((h * v**2).sum(1) / n - mean**2, 0.0))
    cum = np.cumsum(h, 1)
    out = {
        "min": np.array([v[np.flatnonzero(r)[0]] for r in h]),
        "max": np.array([v[np.flatnonzero(r)[-1]] for r in h]),
        "mean": mean,
        "std": std,
    }
    for q, key in zip(QUANTILES, QUANTILE_KEYS, strict=True):
        vals = []
        for c in range(3):  # np.quantile "linear": interpolate between the sorted values at floor/ceil rank
            pos = q * (n[c] - 1)
            lo, hi = (np.searchsorted(cum[c], r, side="right") for r in (math.floor(pos), math.ceil(pos)))
            vals.append(v[lo] + (pos - math.floor(pos)) * (v[hi] - v[lo]))
        out[key] = np.array(vals)
    out = {k: a.reshape(3, 1, 1) for k, a in out.items()}
    out["count"] = np.array([int(count)])
    return out
