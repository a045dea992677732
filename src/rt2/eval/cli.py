"""``rt2 eval``: closed-loop evaluation of one policy, or a paired A/B of two, on RT-2's suites.

    rt2 eval --policy oracle --suite seen --episodes 10 --out runs/eval_oracle          # ~5 s
    rt2 eval --suite seen,emergent_symbols --episodes 5 --out runs/eval_default        # the shipped policy, ~2 min
    rt2 eval --policy CKPT --quantize int8 --suite seen --out runs/eval_int8           # dynamic int8 on CPU
    rt2 eval --policy runs/repro/models/cofinetune-pali-tiny --suite all --episodes 50 --videos 2 --out runs/eval
    rt2 eval --policy A_DIR --policy B_DIR --suite unseen_objects,emergent_math --out runs/ab

Runtime: the oracle runs ~100-200 env steps/s per env (``--suite all --episodes 50``, 4,650 episodes: ~10 min);
a pali-tiny model is bound by inference, ~0.2-0.5 s per batched step of 8 envs on 2 busy cores, so 50 episodes
of one 5-family suite (250 episodes, up to 200 steps) take ~1-3 hours: lower ``--episodes`` for quick looks.

Writes to ``--out``: ``eval_info.json`` (per task, per suite and overall success with Wilson 95 % CIs, mean
steps, invalid actions, control Hz; run metadata; every episode's seed, initial-state hash and outcome; with two
policies also the paired differences, Newcombe 95 % CIs), ``videos/`` (first ``--videos`` episodes of each
suite, instruction overlaid), ``fig4_generalization.png`` / ``fig7a_emergent.png``, and ``report.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import rt2
from rt2.data.progress import eta_progress
from rt2.eval import report
from rt2.eval.runner import PolicyAdapter, RunConfig, load_policy, run_suite
from rt2.eval.stats import paired_tables, result_tables
from rt2.eval.suites import Suite, list_suites, resolve_suites


def git_commit() -> str | None:
    """The commit of the source tree rt2 is imported from, or None (not a git checkout, git missing)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(rt2.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _labels(specs: Sequence[str]) -> list[str]:
    if len(specs) == 1:
        return [Path(specs[0]).name or specs[0]]
    return ["A", "B"] if len(specs) == 2 else [f"P{i}" for i in range(len(specs))]


def evaluate(
    policies: Sequence[str | PolicyAdapter],
    suites: Sequence[Suite],
    config: RunConfig,
    out: str | Path,
    command: str | None = None,
    quiet: bool = False,
    policy_kwargs: dict | None = None,
) -> dict:
    """Run every policy on every suite (identical seeds), write all outputs to ``out``; -> the eval_info dict.
    ``policy_kwargs`` go to ``Policy.from_pretrained`` for checkpoint specs (e.g. ``{"quantize": "int8"}``)."""
    if not 1 <= len(policies) <= 2:
        raise ValueError(f"give one policy, or two for a paired A/B comparison; got {len(policies)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = [p if isinstance(p, str) else p.name for p in policies]
    labels = _labels(specs)
    t0 = time.perf_counter()
    rows: dict[str, list[dict]] = {}
    videos: list[dict] = []
    described = {}
    total = sum(len(s.tasks) * config.episodes_for(len(s.tasks)) for s in suites)
    with eta_progress("{task.description}", disable=quiet, transient=False) as progress:
        for label, spec in zip(labels, policies, strict=True):
            adapter = load_policy(spec, **(policy_kwargs or {})) if isinstance(spec, str) else spec
            described[label] = {"spec": spec if isinstance(spec, str) else adapter.name, **adapter.describe()}
            bar = progress.add_task(f"{label}", total=total)
            rows[label] = []
            for suite in suites:
                progress.update(bar, description=f"{label} {suite.name}")
                res = run_suite(adapter, suite, config, on_episode=lambda _r, b=bar: progress.advance(b))
                rows[label] += res.rows
                videos += report.write_videos(out / "videos", res, label if len(labels) > 1 else "")
    results = {label: result_tables(r) for label, r in rows.items()}
    info: dict = {
        "meta": {
            "command": command or " ".join(["rt2", "eval"] + sys.argv[2:]),
            "policies": specs,
            "policy_info": described,
            "suites": [s.name for s in suites],
            "seed": config.seed,
            "episodes_per_task": config.episodes,
            "suite_episodes": config.suite_episodes,
            "episodes_per_task_by_suite": {s.name: config.episodes_for(len(s.tasks)) for s in suites},
            "max_steps": config.max_steps,
            "num_envs": config.num_envs,
            "control_hz_target": 10,
            "invalid_action_handling": "counted; a zero action is executed and the episode continues"
            + (" (stop_on_invalid: the episode ends as a failure)" if config.stop_on_invalid else ""),
            "rt2_version": rt2.__version__,
            "git_commit": git_commit(),
            "wall_time_s": time.perf_counter() - t0,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "results": results,
    }
    if len(labels) == 1:
        info.update(results[labels[0]])  # LeRobot-style top level: per_task / per_suite / overall
    if len(labels) == 2:
        info["paired"] = {"a": specs[0], "b": specs[1], **paired_tables(rows[labels[0]], rows[labels[1]])}
    plots = []
    for name, suite_names, avg, title in (
        ("fig4_generalization.png", report.FIG4_SUITES, "unseen_average", "Generalization (RT-2 Fig. 4 shape)"),
        ("fig7a_emergent.png", report.FIG7A_SUITES, "emergent_average", "Emergent skills (RT-2 Fig. 7a shape)"),
    ):
        cats, series = report.figure_rows(rows, suite_names, avg)
        if cats:
            plots.append({"title": title, "path": str(report.plot_bars(out / name, cats, series, title))})
    info["plots"] = plots
    info["videos"] = videos
    info["episodes"] = {label: r for label, r in rows.items()}
    report.atomic_write_json(out / "eval_info.json", info)
    report.write_report(out, info)
    return info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        action="append",
        default=None,
        help="checkpoint dir or 'oracle'; give it twice for a paired A/B (default: the policy shipped with rt2)",
    )
    parser.add_argument("--suite", default="seen", help=f"'all' or comma-separated names: {', '.join(list_suites())}")
    parser.add_argument("--episodes", type=int, default=50, help="episodes per task (Language-Table: 50 per family)")
    parser.add_argument(
        "--suite-episodes",
        type=int,
        default=0,
        help="at least this many episodes per suite, split over its tasks (100 gives +-5 points per suite)",
    )
    parser.add_argument("--out", default="runs/eval", help="output folder")
    parser.add_argument("--videos", type=int, default=2, help="record the first K episodes of each suite")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every episode's initial state")
    parser.add_argument("--num-envs", type=int, default=8, help="parallel envs stepped in lockstep (batch size)")
    parser.add_argument("--max-steps", type=int, default=200, help="step cap per episode (protocol: 200)")
    parser.add_argument("--stop-on-invalid", action="store_true", help="end an episode as failed on an invalid action")
    parser.add_argument(
        "--quantize", choices=("none", "int8"), default="none", help="dynamic int8 nn.Linear for checkpoint policies"
    )
    parser.add_argument(
        "--action-format",
        choices=("checkpoint", "direct", "plan"),
        default="checkpoint",
        help="answer format: the checkpoint's, or direct actions / point-then-act plans (a plan-trained checkpoint "
        "also learned direct rows)",
    )
    parser.add_argument(
        "--corrupt-plan",
        type=float,
        default=0.0,
        metavar="P",
        help="ablation for plan policies: each plan coordinate the model writes is replaced by a random grid "
        "integer with probability P before the action is decoded (how much control relies on the pointing)",
    )
    parser.add_argument(
        "--weights",
        metavar="CKPT",
        help="evaluate a training checkpoint of the run: --policy RUN/final with CKPT's weights swapped in "
        "(e.g. RUN/checkpoints/step_00004000), for closed-loop learning curves",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let an HF checkpoint run Python code shipped in its folder (never on unless you pass this)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="pair two finished `rt2 eval` folders on the episodes both played (same seeded initial states) and "
        "write OUT/paired.json + paired.md; runs no episode. A or B may be DIR,DIR: one policy's runs joined",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _compare(args: argparse.Namespace) -> int:
    from rt2.eval.compare import compare, table

    try:
        info = compare(args.compare[0], args.compare[1], args.out)
    except ValueError as e:
        print(f"rt2 eval: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(table(info)))
    print(f"wrote {Path(args.out) / 'paired.json'} and {Path(args.out) / 'paired.md'}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.compare:
        if args.policy:
            print("rt2 eval: error: --compare pairs two finished runs; drop --policy", file=sys.stderr)
            return 2
        return _compare(args)
    try:
        if not args.policy:
            from rt2.policy.default import resolve_policy

            args.policy = [resolve_policy(None)]
        suites = resolve_suites(args.suite)
        config = RunConfig(
            episodes=args.episodes,
            suite_episodes=args.suite_episodes,
            num_envs=args.num_envs,
            seed=args.seed,
            max_steps=args.max_steps,
            videos=args.videos,
            stop_on_invalid=args.stop_on_invalid,
        )
        if len(args.policy) > 2:
            raise ValueError(f"give --policy once, or twice for a paired A/B; got {len(args.policy)}")
        if args.weights and len(args.policy) != 1:
            raise ValueError("--weights swaps one checkpoint into one --policy; give --policy once")
        if not 0.0 <= args.corrupt_plan <= 1.0:
            raise ValueError(f"--corrupt-plan is a probability in [0, 1], got {args.corrupt_plan}")
    except ValueError as e:
        print(f"rt2 eval: error: {e}", file=sys.stderr)
        return 2
    kwargs: dict = {} if args.quantize == "none" else {"quantize": args.quantize}
    if args.action_format != "checkpoint":
        kwargs["action_format"] = args.action_format
    if args.corrupt_plan > 0:
        kwargs["corrupt_plan"] = args.corrupt_plan
    if args.trust_remote_code:
        kwargs["trust_remote_code"] = True
    policies = args.policy
    if args.weights:
        from rt2.eval.vqa_curve import swap_weights

        try:
            adapter = load_policy(args.policy[0], **kwargs)
            step = swap_weights(adapter.policy, args.weights)
        except (ValueError, FileNotFoundError) as e:
            print(f"rt2 eval: error: --weights {args.weights}: {e}", file=sys.stderr)
            return 2
        adapter.name = f"{args.policy[0]}@step{step}"
        policies = [adapter]
    info = evaluate(policies, suites, config, args.out, quiet=args.quiet, policy_kwargs=kwargs)
    for label, tables in info["results"].items():
        o = tables["overall"]
        print(
            f"{label}: {100 * o['success_rate']:.1f}% [{100 * o['ci95'][0]:.1f}, {100 * o['ci95'][1]:.1f}] (n={o['n']})"
        )
    if "paired" in info:
        d = info["paired"]["overall"]
        print(f"A - B: {100 * d['diff']:+.1f} pp, 95% CI [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]")
    print(f"wrote {Path(args.out) / 'eval_info.json'} and {Path(args.out) / 'report.md'}")
    return 0
