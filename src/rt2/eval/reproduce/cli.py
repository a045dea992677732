"""``rt2 reproduce`` command line: budget, overrides, ``--jobs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rt2.eval.reproduce.schedule import reproduce


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/reproduce", help="output folder (re-run the same command to resume)")
    parser.add_argument("--quick", action="store_true", help="minutes-long wiring check (budget 'quick')")
    parser.add_argument("--budget", choices=("default", "full"), default="default", help="compute budget")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="stages side by side, each a one-thread child process with its log in OUT/logs/ (2 = this "
        "machine's two cores: two regimes train at once)",
    )
    parser.add_argument(
        "--stages",
        default="",
        help="comma-separated stage names: run only these and what they need (e.g. "
        "train-scratch-pali-nano,eval-scratch-pali-nano while the pre-trained VLM is not ready)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--report",
        action="store_true",
        help="run nothing: write OUT/report.md now from the stages that have finished (the rest read 'not run'); "
        "for a run that spans sessions. The report stage rewrites it when everything is done",
    )
    parser.add_argument(
        "--grounding-weight", type=float, default=None, help="override the budget's auxiliary grounding loss weight"
    )
    parser.add_argument(
        "--suite-episodes", type=int, default=None, help="override: at least this many eval episodes per suite"
    )
    parser.add_argument("--train-steps", type=int, default=None, help="override every regime's training steps")
    parser.add_argument(
        "--pretrain-steps", type=int, default=None, help="override the budget's pre-training steps (20,000)"
    )
    parser.add_argument("--pretrain-lr", type=float, default=None, help="override the budget's pre-training lr")
    parser.add_argument(
        "--pretrained",
        default=None,
        help="start finetune/cofinetune from this `rt2 pretrain` output instead of pre-training here: DIR (the "
        "first size) or SIZE=DIR,SIZE=DIR; its size must be the one it stands for",
    )
    parser.add_argument(
        "--action-format",
        choices=("direct", "plan"),
        default=None,
        help="answer format of every VLA regime (default direct, the shipped format)",
    )
    parser.add_argument(
        "--vqa-items", type=int, default=None, help="override: held-out web questions per model (default 4,600)"
    )


OVERRIDE_FLAGS = (
    "grounding_weight",
    "suite_episodes",
    "train_steps",
    "pretrain_steps",
    "pretrain_lr",
    "vqa_items",
    "pretrained",
    "action_format",
)


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The Budget fields the command line sets (flags left at None keep the budget's value)."""
    return {k: getattr(args, k) for k in OVERRIDE_FLAGS if getattr(args, k, None) is not None}


def report_now(out: str | Path, budget: str, overrides: dict) -> list[str]:
    """Write the partial report of the run in ``out`` (nothing runs) -> the stages it is missing."""
    import dataclasses
    import json

    from rt2.eval.reproduce.budget import BUDGETS
    from rt2.eval.reproduce.stages import policies, vlms
    from rt2.eval.reproduce.summary import write_summary

    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"{out} does not exist: start the reproduction first (the same command without --report)")
    b = dataclasses.replace(BUDGETS[budget], **overrides)
    write_summary(out, policies(b), b, vlms(b), partial=True)
    return json.loads((out / "results.json").read_text())["partial"]


def run(args: argparse.Namespace) -> int:
    over = overrides_from_args(args)
    if args.report:
        try:
            missing = report_now(args.out, "quick" if args.quick else args.budget, over)
        except ValueError as e:
            print(f"rt2 reproduce: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {Path(args.out) / 'report.md'} (not finished yet: {', '.join(missing) or 'nothing'})")
        return 0
    try:
        status = reproduce(
            args.out,
            "quick" if args.quick else args.budget,
            quiet=args.quiet,
            overrides=over,
            jobs=args.jobs,
            only=[n for n in args.stages.split(",") if n],
        )
    except ValueError as e:  # bad input: nothing ran
        print(f"rt2 reproduce: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a stage failed; what finished is kept and a re-run resumes
        print(f"rt2 reproduce: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rt2 reproduce: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    where = f"; see {Path(args.out) / 'report.md'}" if "report" in status else " (the report was not selected)"
    print(
        f"{sum(v == 'ran' for v in status.values())} stages ran, {sum(v == 'skipped' for v in status.values())} "
        f"skipped{where}"
    )
    return 0
