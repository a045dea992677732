"""The ``rt2 pointing`` command: its arguments and ``run`` (build the probes, decode, score, write the outputs)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import rt2
from rt2.data.web import SPLITS
from rt2.data.web.referents import REFERENT_TYPES
from rt2.eval.pointing.probes import EMERGENT_SUITES, REPORT_STREAM, parse_types, robot_probes, web_probes
from rt2.eval.pointing.report import markdown, plot
from rt2.eval.pointing.scoring import CHANCE_METHOD, evaluate_pointing, per_type_rows, robot_task_rows
from rt2.eval.vqa import check_decoding, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default=None, help="checkpoint dir (default: the policy shipped with rt2)")
    parser.add_argument(
        "--weights", default=None, help="a training checkpoint of the same run whose weights replace --policy's"
    )
    parser.add_argument("--items", type=int, default=100, help="held-out web questions per referent type")
    parser.add_argument(
        "--robot-episodes",
        type=int,
        default=20,
        help="initial frames of episodes 0..N-1 of every emergent suite task (0: web items only)",
    )
    parser.add_argument("--types", default="all", help=f"'all' or comma-separated: {', '.join(REFERENT_TYPES)}")
    parser.add_argument("--seed", type=int, default=0, help="web item seed (the held-out stream of that seed)")
    parser.add_argument("--episode-seed", type=int, default=0, help="base seed of the suites' episodes (rt2 eval)")
    parser.add_argument("--batch-size", type=int, default=32, help="questions decoded per forward pass")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="answer length cap (a point is ~3 tokens)")
    parser.add_argument("--out", default=None, help="folder for pointing_info.json, .md and .png (none if omitted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rt2.eval.report import atomic_write_bytes, atomic_write_json

    t0 = time.perf_counter()
    console = Console()
    try:
        check_decoding(args.batch_size, args.max_new_tokens)
        if args.items < 1:
            raise ValueError(f"--items must be a positive int, got {args.items}")
        if args.robot_episodes < 0:
            raise ValueError(f"--robot-episodes must be >= 0, got {args.robot_episodes}")
        types = parse_types(args.types)
        with console.status(f"loading {args.policy or 'the shipped policy'}"):
            spec, policy, weights_step = load_model("rt2 pointing", args.policy, args.weights)
    except (ValueError, OSError) as e:  # includes CheckpointError and DefaultPolicyError
        print(f"rt2 pointing: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    with console.status("building questions"):
        web = web_probes(types, args.items, policy.image_size, policy.n_frames, args.seed)
        robot = [p for p in robot_probes(args.robot_episodes, args.episode_seed, policy.n_frames) if p.rtype in types]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=args.quiet, transient=True) as progress:
        bar = progress.add_task("pointing", total=len(web) + len(robot))
        result = evaluate_pointing(
            policy,
            web + robot,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            on_batch=lambda k: progress.advance(bar, k),
        )
    rows = result["rows"]
    web_rows, robot_rows = rows[: len(web)], rows[len(web) :]
    command = (
        f"rt2 pointing --policy {spec}"
        + (f" --weights {args.weights}" if args.weights else "")
        + f" --items {args.items} --robot-episodes {args.robot_episodes} --types {args.types} --seed {args.seed}"
        f" --episode-seed {args.episode_seed} --batch-size {args.batch_size} --max-new-tokens {args.max_new_tokens}"
        + (f" --out {args.out}" if args.out else "")
    )
    from rt2.eval.cli import git_commit

    info: dict[str, Any] = {
        "command": command,
        "policy": spec,
        "weights": args.weights,
        "weights_step": weights_step,
        "rt2_version": rt2.__version__,
        "git_commit": git_commit(),
        "types": list(types),
        "items_per_type": args.items,
        "seed": args.seed,
        "held_out": f"web item i of type k: np.random.default_rng([seed, {SPLITS['heldout']}, {REPORT_STREAM} + k, "
        "i]); training streams are (seed, 0, i)",
        "robot_episodes_per_task": args.robot_episodes,
        "robot_suites": list(EMERGENT_SUITES),
        "episode_seed": args.episode_seed,
        "decoding": "greedy",
        "max_new_tokens": args.max_new_tokens,
        "chance_method": CHANCE_METHOD,
        "prompt_too_long": result["prompt_too_long"],
        "web": {"per_type": per_type_rows(web_rows, web)},
        "robot_frames": {"per_type": per_type_rows(robot_rows, robot), "per_task": robot_task_rows(robot_rows)},
        "referent_types": {t: dataclasses.asdict(REFERENT_TYPES[t]) for t in types},
        "items": {"web": web_rows, "robot": robot_rows},
        "wall_time_s": time.perf_counter() - t0,
    }
    text = markdown(info)
    print(text)  # plain: a rich console would wrap the markdown table
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "pointing_info.json", info)
        atomic_write_bytes(out / "pointing_report.md", text.encode())
        png = plot(info, out / "pointing.png")
        console.print(f"wrote {out / 'pointing_info.json'}, {out / 'pointing_report.md'} and {png}")
    console.print(f"elapsed: {time.perf_counter() - t0:.1f} s")
    return 0
