"""The reproduction's training curves: each trained model's ``metrics.jsonl`` -> a table and ``curves.png``.

Why in the report: the controlling recipe passes a phase transition (block-to-block 4 % at step 4,000, 93 % at
14,000 of the 18,000-step schedule, docs/results/control/curve_direct), so a regime's closed-loop number means
little without the curve that says whether it got past it. The x axis is the share of each run's own schedule:
the RT-1-style baseline takes 2.64x the steps of a pali-nano regime in the same CPU time, so "50 %" is the same
CPU budget for every row.

The trap: a resumed run appends to ``metrics.jsonl`` again from its checkpoint, so a step can appear twice; the
last line for a step wins (it is the run that went on).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

# The curve's quantity: mean |predicted - true| action bin of the training batches (teacher-forced), in the
# action's own units (X Y in -10..10 for Language-Table); ~2.4 is the median-action prior, ~0.9 controls.
METRIC = "action_bin_l1"
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def read_curve(metrics: str | Path, metric: str = METRIC) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` sorted by step from a ``metrics.jsonl``; a step logged twice keeps its last value.
    Lines without ``metric`` (eval or throughput lines) are skipped; a torn last line (a run killed mid-write) is
    ignored, any other unparsable line is an error."""
    lines = Path(metrics).read_text().splitlines()
    by_step: dict[int, float] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{metrics}: line {i + 1} is not JSON") from None
        if metric in row and "step" in row:
            by_step[int(row["step"])] = float(row[metric])
    return sorted(by_step.items())


def _at(curve: Sequence[tuple[int, float]], step: float, window: int = 20) -> float | None:
    """Mean of the ``window`` logged values nearest to ``step`` at or before it (the batch metric is noisy)."""
    before = [v for s, v in curve if s <= step]
    return sum(before[-window:]) / len(before[-window:]) if before else None


def curve_rows(models: Mapping[str, tuple[Path, int]]) -> dict[str, dict]:
    """{model: {"steps": total, "logged_to": last step, "at": {fraction: value}}} for ``{model: (metrics, total)}``
    (models without a metrics file are left out)."""
    out: dict[str, dict] = {}
    for name, (path, total) in models.items():
        if not Path(path).is_file():
            continue
        curve = read_curve(path)
        if not curve:
            continue
        last = curve[-1][0]
        at = {f: (_at(curve, f * total) if f * total <= last + 1 else None) for f in FRACTIONS}
        out[name] = {"steps": total, "logged_to": last, "at": at, "curve": curve}
    return out


def curve_lines(rows: Mapping[str, dict]) -> list[str]:
    """The report's section: train action error at 25/50/75/100 % of each schedule."""
    if not rows:
        return []
    head = " | ".join(f"{int(f * 100)} %" for f in FRACTIONS)
    lines = [
        "## Training curves",
        "",
        f"Train action error (`{METRIC}`, teacher-forced on the training batches, mean of the 20 logged values up to "
        "the point; the median-action prior is ~2.4, the shipped policy controls at ~0.9) at a share of each run's "
        "schedule (equal CPU time across rows). A run that has not reached a point shows –.",
        "",
        f"| model | steps | logged to | {head} |",
        "|---|---|---|" + "---|" * len(FRACTIONS),
    ]
    for name, r in rows.items():
        cells = ["–" if r["at"][f] is None else f"{r['at'][f]:.2f}" for f in FRACTIONS]
        lines.append(f"| {name} | {r['steps']:,} | {r['logged_to']:,} | " + " | ".join(cells) + " |")
    return [*lines, "", "![training curves](curves.png)", ""]


def plot_curves(rows: Mapping[str, dict], path: str | Path) -> Path:
    """One line per model: train action error vs the share of its schedule (smoothed over 25 logged points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for name, r in rows.items():
        steps = np.array([s for s, _ in r["curve"]], dtype=float)
        vals = np.array([v for _, v in r["curve"]], dtype=float)
        k = min(25, len(vals))
        smooth = np.convolve(vals, np.ones(k) / k, mode="valid")
        ax.plot(100 * steps[k - 1 :] / r["steps"], smooth, label=f"{name} ({r['steps']:,} steps)")
    ax.axhline(2.4, color="k", ls="--", lw=0.8, label="median-action prior")
    ax.set(xlabel="share of the run's schedule (%; equal CPU time)", ylabel=f"train {METRIC}", xlim=(0, 100))
    ax.set_title("Training curves of the reproduction's models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
