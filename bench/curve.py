"""``rt2 bench curve``: closed-loop learning curves of one training run: every checkpoint on a suite, plotted
against training steps next to the run's own teacher-forced action error.

    rt2 bench curve --policy runs/control/final --checkpoints runs/control/checkpoints --out runs/control/curve
    rt2 bench curve --policy runs/control/final --checkpoints DIR --suite seen --episodes 100   # per family too

Why: the grounded recipe learns control through a phase transition (reference/point-then-act.md: the action
error sits at the prior for ~10,000 steps, then falls), so one number at the end cannot say whether a run was
long enough. Each checkpoint is ``rt2 eval --policy FINAL --weights CKPT`` (the final export's architecture with
the checkpoint's weights; identical seeded episodes for every point) into ``OUT/step_N/``; a point whose
``eval_info.json`` exists is read, not re-run, so the command resumes and can plot evaluations made elsewhere.
Keep the checkpoints: ``rt2 train --keep-last`` deletes older ones (``--set keep_last=20``).

Runtime: one ``rt2 eval`` per checkpoint (a direct-action ``pali-nano`` policy: ~1 CPU-min per 100 episodes; a
plan policy writes ~20 tokens per step, ~3-5x that). Output: a table on stdout, ``curve.json``, ``curve.png``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _step(path: Path) -> int:
    return int(path.name.split("_")[-1])


def training_l1(run_dir: Path) -> list[tuple[int, float]]:
    """(step, train-batch action bin L1) from the run's metrics.jsonl, or [] if there is none."""
    f = run_dir / "metrics.jsonl"
    if not f.is_file():
        return []
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return [(int(r["step"]), float(r["action_bin_l1"])) for r in rows if "action_bin_l1" in r]


def plot(points: list[dict], l1: list[tuple[int, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    xs = [p["step"] for p in points]
    ax.plot(xs, [100 * p["success"] for p in points], "o-", color="C0", label="closed-loop success")
    lo = [100 * (p["success"] - p["ci95"][0]) for p in points]
    hi = [100 * (p["ci95"][1] - p["success"]) for p in points]
    ax.errorbar(xs, [100 * p["success"] for p in points], yerr=[lo, hi], fmt="none", color="C0", alpha=0.5)
    ax.set_xlabel("training step")
    ax.set_ylabel("success % (Wilson 95 % CI)", color="C0")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    if l1:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in l1], [v for _, v in l1], color="C1", alpha=0.6, lw=1, label="train action bin L1")
        ax2.set_ylabel("train-batch action bin L1 (prior ~2.4)", color="C1")
        ax2.set_ylim(0, max(3.0, max(v for _, v in l1)))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> int:
    from rt2.cli import DefaultsFormatter, Parser

    p = Parser(prog="rt2 bench curve", description=__doc__.split("\n\n")[0], formatter_class=DefaultsFormatter)
    p.add_argument("--policy", required=True, help="the run's final export (architecture and config)")
    p.add_argument("--checkpoints", required=True, help="folder of step_* training checkpoints")
    p.add_argument("--out", required=True, help="output folder (OUT/step_N/ per point, curve.json, curve.png)")
    p.add_argument("--suite", default="block2block", help="suite name (rt2 eval --suite)")
    p.add_argument("--episodes", type=int, default=100, help="episodes per point (rt2 eval --suite-episodes)")
    p.add_argument("--num-envs", type=int, default=50, help="parallel envs per batched policy call")
    p.add_argument("--max-steps", type=int, default=200, help="step cap per episode (protocol: 200)")
    p.add_argument("--run", help="the run folder whose metrics.jsonl gives the training curve (default: policy/..)")
    args = p.parse_args(argv)

    from rt2 import cli

    ckpts = sorted((c for c in Path(args.checkpoints).glob("step_*") if c.is_dir() and "." not in c.name), key=_step)
    if not ckpts:
        p.error(f"--checkpoints {args.checkpoints}: no step_* checkpoint folders")
    out = Path(args.out)
    points = []
    for c in ckpts:
        dest = out / c.name
        if not (dest / "eval_info.json").is_file():
            argv_eval = ["eval", "--policy", args.policy, "--weights", str(c), "--suite", args.suite, "--episodes", "1"]
            argv_eval += ["--suite-episodes", str(args.episodes), "--num-envs", str(args.num_envs), "--videos", "0"]
            argv_eval += ["--max-steps", str(args.max_steps)]
            if cli.main(argv_eval + ["--out", str(dest), "--quiet"]) != 0:
                return 2
        info = json.loads((dest / "eval_info.json").read_text())
        o = info["overall"]
        points.append({"step": _step(c), "success": o["success_rate"], "ci95": o["ci95"], "n": o["n"], **{
            k: o[k] for k in ("plan_slot_exact", "plan_slot_within1") if k in o
        }})  # fmt: skip
    run_dir = Path(args.run) if args.run else Path(args.policy).resolve().parent
    l1 = training_l1(run_dir)
    print(f"rt2 bench curve: {args.policy} on {args.suite}, {points[0]['n']} episodes per point")
    print("| step | success % | 95 % CI | plan slots exact (robot / block / goal) |\n|---|---|---|---|")
    for q in points:
        slots = " / ".join(f"{100 * v:.0f}" for v in q["plan_slot_exact"].values()) if "plan_slot_exact" in q else "-"
        print(
            f"| {q['step']} | {100 * q['success']:.1f} | [{100 * q['ci95'][0]:.0f}, {100 * q['ci95'][1]:.0f}] | {slots} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(
        json.dumps({"policy": args.policy, "suite": args.suite, "points": points}, indent=2)
    )
    plot(points, l1, out / "curve.png", f"{args.policy} on {args.suite} ({points[0]['n']} episodes per point)")
    print(f"wrote {out / 'curve.json'} and {out / 'curve.png'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
