"""Success-rate statistics: Wilson score intervals, Newcombe's paired difference, and result aggregation.

    wilson(5, 10)                  # (0.2366, 0.7634): 95 % Wilson score interval for 5/10
    paired_difference(a, b)        # PairedDiff: rate_a - rate_b with Newcombe's (1998) method-10 CI
    summarize(rows)                # n, successes, rate, ci95, mean_steps, invalid_actions, control_hz, ...

**Why Wilson**: at the sample sizes of robot evaluation (10-50 episodes, rates near 0 or 1) the normal
approximation gives intervals outside [0, 1] or of zero width; Wilson's interval does neither.

**Paired A/B**: both policies run on identical seeds, so their outcomes are paired per episode. The
difference of two independent intervals would ignore that pairing (too wide when outcomes are correlated).
Newcombe's method 10 ("square-and-add" of the two Wilson intervals with the phi correlation correction,
Newcombe 1998, Stat. Med. 17:2635) is the standard interval for a paired difference of proportions: with the
2x2 table ``a`` (both succeed), ``b`` (A only), ``c`` (B only), ``d`` (neither), ``n = a+b+c+d``::

    theta = (b - c) / n;  p1 = (a+b)/n, p2 = (a+c)/n with Wilson intervals (l1, u1), (l2, u2)
    phi = A / sqrt((a+b)(c+d)(a+c)(b+d))   (0 if any margin is 0), A = ad - bc, continuity-corrected to
          max(ad - bc - n/2, 0) when ad > bc (Newcombe's phi-hat; without it, no discordant pairs at p = 0.5
          would give a zero-width interval)
    lower = theta - sqrt((p1-l1)^2 - 2 phi (p1-l1)(u2-p2) + (u2-p2)^2)
    upper = theta + sqrt((u1-p1)^2 - 2 phi (u1-p1)(p2-l2) + (p2-l2)^2)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` (95 % by default). n = 0 gives (0, 1)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, min(p, centre - half))  # exact ends: no 1e-16 round-off past p
    hi = 1.0 if successes == n else min(1.0, max(p, centre + half))
    return lo, hi


@dataclass(frozen=True)
class PairedDiff:
    """rate_a - rate_b over n paired episodes with its 95 % CI; ``a_only``/``b_only`` are discordant pairs."""

    n: int
    rate_a: float
    rate_b: float
    diff: float
    ci95: tuple[float, float]
    both: int
    a_only: int
    b_only: int
    neither: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d


def paired_difference(a: Sequence[bool], b: Sequence[bool], z: float = Z95) -> PairedDiff:
    """Newcombe method-10 CI for P(A succeeds) - P(B succeeds) from paired outcomes (same episodes)."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    n = len(a)
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    neither = n - both - a_only - b_only
    if n == 0:
        return PairedDiff(0, 0.0, 0.0, 0.0, (-1.0, 1.0), 0, 0, 0, 0)
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson(both + a_only, n, z)
    l2, u2 = wilson(both + b_only, n, z)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    ad_bc = both * neither - a_only * b_only
    if ad_bc > 0:  # Newcombe's continuity correction of phi (positive association only)
        ad_bc = max(ad_bc - n / 2, 0.0)
    phi = ad_bc / math.sqrt(margins) if margins > 0 else 0.0
    theta = p1 - p2
    dl = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    lo = max(-1.0, theta - math.sqrt(max(dl, 0.0)))
    hi = min(1.0, theta + math.sqrt(max(du, 0.0)))
    return PairedDiff(n, p1, p2, theta, (lo, hi), both, a_only, b_only, neither)


def _mean(xs: Iterable[float]) -> float | None:
    xs = [float(x) for x in xs if x is not None and math.isfinite(float(x))]
    return sum(xs) / len(xs) if xs else None


def summarize(rows: Sequence[Mapping]) -> dict:
    """Aggregate episode rows (dicts with success, steps, invalid_actions, control_hz, plan_correct?).

    -> {n, successes, success_rate, ci95, mean_steps, invalid_actions, invalid_rate, control_hz,
        plan_accuracy (None unless rows carry plan_correct), plan_ci95; with grounded plans also
        plan_slot_exact / plan_slot_within1 {slot: share of steps}, plan_parsed}
    """
    n = len(rows)
    k = sum(1 for r in rows if r["success"])
    steps = sum(int(r["steps"]) for r in rows)
    invalid = sum(int(r["invalid_actions"]) for r in rows)
    out = {
        "n": n,
        "successes": k,
        "success_rate": k / n if n else 0.0,
        "ci95": list(wilson(k, n)),
        "mean_steps": steps / n if n else 0.0,
        "invalid_actions": invalid,
        "invalid_rate": invalid / steps if steps else 0.0,
        "control_hz": _mean(r.get("control_hz") for r in rows),
    }
    plans = [r["plan_correct"] for r in rows if r.get("plan_correct") is not None]
    if plans:
        pk = sum(1 for p in plans if p)
        out["plan_accuracy"] = pk / len(plans)
        out["plan_ci95"] = list(wilson(pk, len(plans)))
    slotted = [r for r in rows if r.get("plan_slot_exact") and r["steps"]]
    if slotted:  # grounded plans: step-weighted share of steps per slot (exact cell, within one cell)
        total = sum(int(r["steps"]) for r in slotted)
        for key in ("plan_slot_exact", "plan_slot_within1"):
            slots = list(slotted[0][key])
            out[key] = {k: sum(r[key][k] * int(r["steps"]) for r in slotted) / total for k in slots}
        out["plan_parsed"] = sum(r["plan_parsed"] * int(r["steps"]) for r in slotted) / total
    return out


def group_rows(rows: Sequence[Mapping], *keys: str) -> dict[tuple, list[Mapping]]:
    """Rows grouped by the values of ``keys`` (insertion order kept)."""
    out: dict[tuple, list[Mapping]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def paired_tables(rows_a: Sequence[Mapping], rows_b: Sequence[Mapping]) -> dict:
    """Pair two runs episode by episode (suite, task, index) -> per_task / per_suite / overall PairedDiff dicts.

    Raises ValueError if the runs cover different episodes or a pair started from different initial states
    (which would make the comparison unpaired).
    """
    key = ("suite", "task", "index")
    ia = {tuple(r[k] for k in key): r for r in rows_a}
    ib = {tuple(r[k] for k in key): r for r in rows_b}
    if set(ia) != set(ib):
        raise ValueError(f"A and B cover different episodes ({len(set(ia) ^ set(ib))} unmatched)")
    pairs = []
    for k, ra in ia.items():
        rb = ib[k]
        if ra["init_hash"] != rb["init_hash"]:
            raise ValueError(
                f"episode {k}: A and B started from different states ({ra['init_hash']} != {rb['init_hash']})"
            )
        pairs.append({"suite": k[0], "task": k[1], "a": bool(ra["success"]), "b": bool(rb["success"])})

    def diff(ps: list[dict]) -> dict:
        return paired_difference([p["a"] for p in ps], [p["b"] for p in ps]).to_dict()

    return {
        "method": "Newcombe (1998) method 10, 95 %",
        "per_task": [{"suite": s, "task": t, **diff(ps)} for (s, t), ps in group_rows(pairs, "suite", "task").items()],
        "per_suite": {s: diff(ps) for (s,), ps in group_rows(pairs, "suite").items()},
        "overall": diff(pairs),
    }


def result_tables(rows: Sequence[Mapping]) -> dict:
    """per_task (list), per_suite (dict) and overall summaries of one policy's episode rows."""
    return {
        "per_task": [
            {"suite": s, "task": t, **summarize(rs)} for (s, t), rs in group_rows(rows, "suite", "task").items()
        ],
        "per_suite": {s: summarize(rs) for (s,), rs in group_rows(rows, "suite").items()},
        "overall": summarize(rows),
    }
