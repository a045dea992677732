"""Action tokenizer throughput: encode -> text -> parse -> decode, vectorised vs naive pure Python.

Run::

    rt2 bench tokenizer                          # rt1 space, 20k actions, 5 interleaved repeats
    rt2 bench tokenizer --space language_table --n 50000 --repeats 7

Both pipelines run in the same process on the same random actions, alternating which goes first each repeat,
so machine noise hits both alike; the reported speedup is the median of per-repeat ratios. The naive baseline
below (per-value loops, the way one would write it first) must produce identical integers and texts, which is
checked every run, so the comparison is like for like.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from rt2.actions import ActionParseError, ActionSpace, ActionTokenizer


class NaiveTokenizer:
    """Per-value pure-Python reference with the same semantics as ActionTokenizer (no normalization stats)."""

    def __init__(self, space: ActionSpace, n_bins: int = 256) -> None:
        self.dims = space.dims
        self.n_bins = n_bins

    def _range(self, j: int) -> tuple[int, int]:
        d = self.dims[j]
        if d.discrete:
            return 0, d.n - 1
        return d.grid if d.grid is not None else (0, self.n_bins - 1)

    def encode(self, actions: list[list[float]]) -> list[list[int]]:
        out = []
        for row in actions:
            bins = []
            for j, v in enumerate(row):
                d = self.dims[j]
                if math.isnan(v) or math.isinf(v):
                    raise ValueError("non-finite action")
                if d.discrete:
                    bins.append(int(round(v)))
                    continue
                u = min(max((v - d.low) / (d.high - d.low), 0.0), 1.0)
                if d.grid is not None:
                    g0, g1 = d.grid
                    bins.append(int(round(g0 + u * (g1 - g0))))
                else:
                    bins.append(min(int(math.floor(u * self.n_bins)), self.n_bins - 1))
            out.append(bins)
        return out

    def to_text(self, bins: list[list[int]]) -> list[str]:
        return [" ".join(str(b) for b in row) for row in bins]

    def from_text(self, texts: list[str]) -> list[list[int]]:
        out = []
        for t in texts:
            parts = t.strip().split(" ")
            if len(parts) != len(self.dims):
                raise ActionParseError(f"wrong count in {t!r}")
            row = []
            for j, p in enumerate(parts):
                if not p.lstrip("-").isdigit():
                    raise ActionParseError(f"not an integer: {p!r}")
                v = int(p)
                lo, hi = self._range(j)
                if not lo <= v <= hi:
                    raise ActionParseError(f"out of range: {v}")
                row.append(v)
            out.append(row)
        return out

    def decode(self, bins: list[list[int]]) -> list[list[float]]:
        out = []
        for row in bins:
            vals = []
            for j, b in enumerate(row):
                d = self.dims[j]
                if d.discrete:
                    vals.append(float(b))
                elif d.grid is not None:
                    g0, g1 = d.grid
                    vals.append(d.low + (b - g0) / (g1 - g0) * (d.high - d.low))
                else:
                    vals.append(d.low + (b + 0.5) / self.n_bins * (d.high - d.low))
            out.append(vals)
        return out


def random_actions(space: ActionSpace, n: int, seed: int) -> np.ndarray:
    """float64[n, D]: uniform inside the bounds (discrete dims: random legal integers), 2% outside to clip."""
    rng = np.random.default_rng(seed)
    lo, hi = space.low, space.high
    a = rng.uniform(lo - 0.01 * (hi - lo), hi + 0.01 * (hi - lo), size=(n, space.dim))
    for j, d in enumerate(space.dims):
        if d.discrete:
            a[:, j] = rng.integers(0, d.n, size=n)
    return a


def _fast(tok: ActionTokenizer, a: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray, dict[str, float]]:
    t = [time.perf_counter()]
    b = tok.encode(a)
    t.append(time.perf_counter())
    texts = tok.to_text(b)
    t.append(time.perf_counter())
    b2 = tok.from_text_batch(texts)
    t.append(time.perf_counter())
    out = tok.decode(b2)
    t.append(time.perf_counter())
    stages = dict(zip(("encode", "to_text", "parse", "decode"), np.diff(t), strict=True))
    return b, texts, out, stages


def _naive(nt: NaiveTokenizer, rows: list[list[float]]) -> tuple[list[list[int]], list[str], list[list[float]]]:
    b = nt.encode(rows)
    texts = nt.to_text(b)
    return b, texts, nt.decode(nt.from_text(texts))


def main(argv: list[str]) -> int:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as everywhere under `rt2`

    p = Parser(
        prog="rt2 bench tokenizer",
        # runtime measured with the defaults at 1 thread on a 2-core CPU under load ~2
        description=__doc__.split("\n")[0] + " (~1-2 s with the defaults)",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--n", type=int, default=20_000, help="actions per batch")
    p.add_argument("--space", choices=["rt1", "language_table"], default="rt1", help="action space preset")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (median reported)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random actions")
    args = p.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        p.error("--n and --repeats must be >= 1")

    space = ActionSpace.preset(args.space)
    tok, nt = ActionTokenizer(space), NaiveTokenizer(space)
    a = random_actions(space, args.n, args.seed)
    rows = a.tolist()

    fast_s, naive_s, ratios, stage_acc = [], [], [], {}
    for r in range(args.repeats):
        order = ("fast", "naive") if r % 2 == 0 else ("naive", "fast")
        times = {}
        for which in order:
            t0 = time.perf_counter()
            if which == "fast":
                fb, ftexts, fout, stages = _fast(tok, a)
            else:
                nb, ntexts, nout = _naive(nt, rows)
            times[which] = time.perf_counter() - t0
        fast_s.append(times["fast"])
        naive_s.append(times["naive"])
        ratios.append(times["naive"] / times["fast"])
        for k, v in stages.items():
            stage_acc.setdefault(k, []).append(v)
        # Like-for-like guard: the baseline must compute the very same integers, texts and values.
        if fb.tolist() != nb or ftexts != ntexts or not np.allclose(fout, np.asarray(nout), atol=1e-6):
            print("error: naive and vectorised tokenizers disagree; the comparison is invalid")
            return 1

    n = args.n
    med_fast, med_naive = statistics.median(fast_s), statistics.median(naive_s)
    print(f"action tokenizer round trip (encode -> text -> parse -> decode), space={args.space} D={space.dim}")
    print(f"n={n} actions, {args.repeats} interleaved repeats, clip rate {tok.clip_stats.rate:.2%}")
    print(f"{'pipeline':<22}{'median s':>12}{'actions/s':>14}")
    print(f"{'naive pure Python':<22}{med_naive:>12.4f}{n / med_naive:>14,.0f}")
    print(f"{'rt2 vectorised':<22}{med_fast:>12.4f}{n / med_fast:>14,.0f}")
    for k, v in stage_acc.items():
        m = statistics.median(v)
        print(f"{'  ' + k:<22}{m:>12.4f}{n / m:>14,.0f}")
    print(f"speedup ratio (naive / vectorised, median of per-repeat ratios): {statistics.median(ratios):.2f}x")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    raise SystemExit(main(sys.argv[1:]))
