"""VQA accuracy along a finished training run: ``rt2 vqa --policy RUN/final --curve --out DIR``.

    rt2 vqa --policy runs/pt/final --items 4600 --curve --out runs/pt/vqa   # ~18 s per kept checkpoint (nano, 1 thread)

Every checkpoint the run kept (``RUN/checkpoints/step_N``, see ``--keep-last``) is swapped into the run's export
(:func:`rt2.train.checkpoint.load_weights`) and answers the same held-out items as the export itself. Writes
``vqa_curve.json`` (per step: overall accuracy with its Wilson CI, chance, and per task type accuracy and the
above-chance verdict) and ``vqa_curve.png`` (overall accuracy vs step against chance, and how many task types are
above chance), atomically. Why a curve: one number at the end of pre-training does not say whether more steps would
help, and the pre-training budget is the knob users turn first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rt2.data.web import WebItem
    from rt2.policy import Policy


def run_checkpoints(policy_dir: str | Path) -> list[Path]:
    """The training checkpoints of the run whose export is ``policy_dir`` (``RUN/final`` -> ``RUN/checkpoints``),
    oldest first. Raises ValueError when there are none (an export copied out of its run, or a shipped policy)."""
    from rt2.train.checkpoint import CheckpointManager

    root = Path(policy_dir).resolve().parent / "checkpoints"
    found = CheckpointManager(root).list()
    if not found:
        raise ValueError(
            f"--curve: no training checkpoints in {root} (--policy must be RUN/final of a run that kept its "
            "checkpoints, e.g. runs/pt/final)"
        )
    return found


def swap_weights(policy: Policy, checkpoint: str | Path) -> int:
    """Load a training checkpoint's weights into ``policy`` (see ``load_weights``) -> its step. A checkpoint that
    does not fit raises ValueError, which is what the eval CLIs report (``load_weights`` raises train's
    CheckpointError, a RuntimeError)."""
    from rt2.train.checkpoint import CheckpointError, load_weights

    try:
        return load_weights(policy.vla, checkpoint)
    except CheckpointError as e:
        raise ValueError(str(e)) from None


def evaluate_curve(
    policy: Policy,
    checkpoints: Sequence[Path],
    items: Sequence[WebItem],
    evaluate: Callable[[Policy, Sequence[WebItem]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per checkpoint, in order: {step, checkpoint, overall, per_task: {task: {accuracy, chance,
    above_chance}}}. ``evaluate``: ``(policy, items) -> evaluate_vqa``-shaped dict. The policy's weights are
    replaced in place; reload it afterwards if you need the export's own."""
    rows = []
    for ckpt in checkpoints:
        step = swap_weights(policy, ckpt)
        result = evaluate(policy, items)
        per_task = {t: {k: r[k] for k in ("accuracy", "chance", "above_chance")} for t, r in result["per_task"].items()}
        rows.append({"step": step, "checkpoint": str(ckpt), "overall": result["overall"], "per_task": per_task})
    return rows


def plot_curve(rows: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    """Overall accuracy (with its 95 % CI) and chance vs step; task types above chance vs step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    acc = [100 * r["overall"]["accuracy"] for r in rows]
    lo = [100 * r["overall"]["ci95"][0] for r in rows]
    hi = [100 * r["overall"]["ci95"][1] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(steps, acc, "o-", label="model")
    ax1.fill_between(steps, lo, hi, alpha=0.25)
    ax1.plot(steps, [100 * r["overall"]["chance"] for r in rows], "k--", label="chance (best constant answer)")
    ax1.set(xlabel="training step", ylabel="held-out accuracy %", title="overall")
    ax1.legend(fontsize=8)
    n_types = len(rows[0]["per_task"]) if rows else 0
    ax2.plot(steps, [sum(v["above_chance"] for v in r["per_task"].values()) for r in rows], "o-")
    ax2.set(xlabel="training step", ylabel="task types", title=f"above chance (CI low > chance), of {n_types}")
    ax2.set_ylim(0, max(n_types, 1))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
