"""Timing helpers shared by the benchmarks (``_``-prefixed files are helpers, not listed by ``rt2 bench``).

This machine is shared and noisy, so every benchmark (a) prints a calibration figure next to its results and
(b) interleaves the variants it compares within each repetition, reversing the order every other repetition,
so that a slow phase of the machine hits all variants alike. Report ratios measured in the same run.

Import from a benchmark module (``rt2 bench`` loads benchmarks by file path, so ``bench/`` is not on
``sys.path`` by itself)::

    sys.path.append(str(Path(__file__).resolve().parent))
    from _timing import calibrate, interleaved
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

CALIBRATION = "50 fp32 512^3 matmuls"


def calibrate(n: int = 50, size: int = 512) -> float:
    """Milliseconds for ``n`` fp32 ``size``^3 matmuls at the current thread count (~70 idle at 2 threads,
    ~150 at 1 on the reference machine). Compare benchmark runs only at similar calibration."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    t = time.perf_counter()
    for _ in range(n):
        a @ b
    return (time.perf_counter() - t) * 1e3


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 2) -> dict[str, list[float]]:
    """Run each callable ``warmup`` times, then ``reps`` rounds of all of them (order reversed on odd rounds).
    Returns milliseconds per call, ``{name: [ms per round]}`` in round order (so per-round ratios pair up)."""
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    for r in range(reps):
        for name, f in order if r % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            f()
            times[name].append((time.perf_counter() - t) * 1e3)
    return times


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of ``num[r] / den[r]`` (robust to a noisy round hitting both sides)."""
    return statistics.median(n / max(d, 1e-9) for n, d in zip(num, den, strict=True))


def fmt(ts: list[float]) -> str:
    """``"min / median"`` milliseconds."""
    return f"{min(ts):7.2f} / {statistics.median(ts):7.2f}"
