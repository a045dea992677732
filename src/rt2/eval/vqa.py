"""``rt2 vqa``: held-out web-corpus question answering of a (pre-trained) VLM, per task type, against chance.

    rt2 vqa --policy runs/pt/final                         # 400 held-out items, all_uniform: ~5-10 s (pali-tiny)
    rt2 vqa --policy runs/pt/final --items 4000 --out runs/vqa_pt   # ~1-2 min; ~170 items per task type
    rt2 vqa --policy CKPT --split train --items 200        # the same measurement on training-stream items

Runtime (measured, 2 busy CPU cores, pali-tiny at 72x96): generating and rendering an item ~1 ms; decoding
dominates; 400 items (greedy, <= 32 new tokens, batches of 16) take 5-10 s including loading the checkpoint.
A test-sized random-init checkpoint answers 24 items in well under a second.

What is measured: items ``0..N-1`` of ``WebCorpus(WebCorpusConfig.preset(PRESET, split=SPLIT, seed=SEED))``,
rendered at the policy's own image size and frame count. Each item's exact training prompt (``Q: ... A:``, or
``Caption:`` / ``Caption in French:`` for captions) is decoded greedily in batches, and the decoded text is scored
with ``rt2.data.web.score_answer``. Per task type (and overall) the table gives n, accuracy with its Wilson 95 %
CI, chance, and whether the CI's lower bound is above chance. Chance is ``rt2.data.web.chance_baseline`` computed
on the same items: the best constant answer per task type, chosen on those very items, which flatters chance (so
"above chance" is a conservative verdict). The flattery grows as the per-task sample shrinks: with 400 items (~17
per type) chance reads ~5-15 points higher than on 4,000 (docs/web_corpus.md), so use ``--items 2000`` or more for
a claim. Overall chance is the item-weighted mean of the per-task chances.

Writes ``vqa_info.json`` atomically to ``--out`` (when given): per_task, overall, every item's prompt, target,
prediction and verdict, the command, the policy path, the corpus config and the rt2 version.

Python::

    from rt2.eval.vqa import evaluate_vqa, vqa_items
    items, config = vqa_items(policy, n=400)          # held-out, all_uniform, at the policy's image size
    result = evaluate_vqa(policy, items)              # {"per_task": {...}, "overall": {...}, "predictions": [...]}
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import rt2
from rt2.data.web import SPLITS, WebCorpus, WebCorpusConfig, WebItem, chance_baseline, score_answer
from rt2.eval.stats import wilson

if TYPE_CHECKING:
    from rt2.policy import Policy

PRESETS = ("all_uniform", "default", "grounding")
CHANCE_METHOD = (
    "rt2.data.web.chance_baseline on the same items: per task type, the best constant answer among the 20 most "
    "frequent targets (plus '0 0' for pointing), scored with score_answer; overall = item-weighted mean"
)


def vqa_items(
    policy: Policy, n: int = 400, split: str = "heldout", preset: str = "all_uniform", seed: int = 0
) -> tuple[list[WebItem], WebCorpusConfig]:
    """Items ``0..n-1`` of the web corpus, rendered at ``policy``'s image size with its number of frames."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"--items must be a positive int, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {tuple(SPLITS)}, got {split!r}")
    config = WebCorpusConfig.preset(
        preset, split=split, seed=seed, image_size=tuple(policy.image_size), n_frames=int(policy.n_frames)
    )
    if n > config.size:
        raise ValueError(f"--items {n} exceeds the corpus size {config.size}")
    return WebCorpus(config).items(range(n)), config


def is_vqa_info(info: Any) -> bool:
    """Whether ``info`` (parsed JSON) is what ``rt2 vqa`` writes. Trap: an eval_info.json also has "per_task" and
    "overall" keys (lists, per policy); "corpus" and a per_task dict tell them apart."""
    return isinstance(info, dict) and "corpus" in info and isinstance(info.get("per_task"), dict) and "overall" in info


def _text_window(policy: Policy) -> int | None:
    """Max prompt + answer tokens of the backbone (learned positions), or None when it has no fixed window."""
    limit = getattr(getattr(policy.vla.backbone, "config", None), "max_text_len", None)
    return int(limit) if limit is not None else None


class Answers(NamedTuple):
    """Decoded answers aligned with the items; ``clamped``/``too_long`` count items hit by the text window."""

    predictions: list[str]
    clamped: int
    too_long: int


def generate_answers(
    policy: Policy,
    items: Sequence[WebItem],
    batch_size: int = 16,
    max_new_tokens: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> Answers:
    """Greedy free-text answers to each item's own prompt, decoded in batches of similar prompt length.

    The prompt is the item's exact training prompt (``Q: {question} A:`` for questions, which is what
    ``Policy.answer`` sends, and ``Caption:`` / ``Caption in Spanish:`` for captions). When the backbone has a
    fixed text window (pali: ``max_text_len`` learned positions), an item whose prompt alone does not fit is not
    decoded: its prediction is "" (scored wrong) and it is counted in ``too_long``; a batch whose longest prompt
    leaves less room than ``max_new_tokens`` decodes with the room left (the longest answer training could have
    used) and its items are counted in ``clamped``. Batching by length only reduces padding: greedy answers do
    not depend on which items share a batch.
    """
    from rt2.models.decoding import GREEDY

    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    tok = policy.vla.backbone.tokenizer
    window = _text_window(policy)
    lengths = [1 + len(tok.encode(it.prompt)) for it in items]  # + BOS
    order = sorted(range(len(items)), key=lambda i: lengths[i])
    fits = [i for i in order if window is None or lengths[i] <= window]
    predictions = [""] * len(items)
    clamped = 0
    if len(fits) < len(items) and on_batch is not None:
        on_batch(len(items) - len(fits))
    for start in range(0, len(fits), batch_size):
        idx = fits[start : start + batch_size]
        budget = max_new_tokens
        if window is not None:
            room = window + 1 - max(lengths[i] for i in idx)  # the last generated token (EOS) needs no position
            if room < max_new_tokens:
                budget, clamped = room, clamped + len(idx)
        inputs = policy._inputs([list(items[i].images) for i in idx], [items[i].prompt for i in idx])
        outs = policy.decoder.text(inputs, budget, GREEDY, policy.generator)
        for i, o in zip(idx, outs, strict=True):
            predictions[i] = tok.decode(o, skip_special_tokens=True).strip()
        if on_batch is not None:
            on_batch(len(idx))
    return Answers(predictions, clamped, len(items) - len(fits))


def accuracy_row(n: int, correct: int, chance: float) -> dict[str, Any]:
    """{n, correct, accuracy, ci95 (Wilson 95 %), chance, above_chance (CI lower bound > chance)}."""
    lo, hi = wilson(correct, n)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "ci95": [lo, hi],
        "chance": chance,
        "above_chance": lo > chance,
    }


def summarize_vqa(items: Sequence[WebItem], predictions: Sequence[str]) -> dict[str, Any]:
    """Score ``predictions`` (aligned with ``items``) -> {per_task: {task: row}, overall: row, correct: [bool]}.

    A row is {n, correct, accuracy, ci95 (Wilson 95 %), chance, above_chance (CI lower bound > chance)}."""
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions")
    if not items:
        raise ValueError("no items to score")
    verdicts = [score_answer(it.task, p, it.target) for it, p in zip(items, predictions, strict=True)]
    chance = chance_baseline(items)
    per_task: dict[str, dict[str, Any]] = {}
    for task in sorted(chance):
        hits = [v for it, v in zip(items, verdicts, strict=True) if it.task == task]
        per_task[task] = accuracy_row(len(hits), sum(hits), chance[task])
    overall_chance = sum(r["chance"] * r["n"] for r in per_task.values()) / len(items)
    return {
        "per_task": per_task,
        "overall": accuracy_row(len(items), sum(verdicts), overall_chance),
        "correct": verdicts,
    }


def evaluate_vqa(
    policy: Policy,
    items: Sequence[WebItem],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Decode every item with ``policy`` (greedy) and score it -> summarize_vqa's dict plus ``predictions``,
    ``budget_clamped`` and ``prompt_too_long`` (see :func:`generate_answers`)."""
    ans = generate_answers(policy, items, batch_size, max_new_tokens, on_batch)
    return {
        **summarize_vqa(items, ans.predictions),
        "predictions": ans.predictions,
        "budget_clamped": ans.clamped,
        "prompt_too_long": ans.too_long,
    }


def _fmt_row(name: str, r: dict[str, Any]) -> list[str]:
    verdict = "[green]yes[/]" if r["above_chance"] else "[red]no[/]"
    return [
        name,
        str(r["n"]),
        f"{100 * r['accuracy']:.1f}",
        f"[{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]",
        f"{100 * r['chance']:.1f}",
        verdict,
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default=None, help="checkpoint dir (default: the policy shipped with rt2)")
    parser.add_argument(
        "--weights",
        default=None,
        help="a training checkpoint of the same run (RUN/checkpoints/step_N) whose weights replace --policy's "
        "(e.g. --policy RUN/final): evaluate an earlier step of a finished run",
    )
    parser.add_argument(
        "--curve",
        action="store_true",
        help="also evaluate every checkpoint the run kept (--policy RUN/final -> RUN/checkpoints/step_N) on the "
        "same items: vqa_curve.json + vqa_curve.png in --out (rt2.eval.vqa_curve)",
    )
    parser.add_argument("--items", type=int, default=400, help="number of web items (indices 0..N-1)")
    parser.add_argument("--split", default="heldout", choices=tuple(SPLITS), help="web corpus seed stream")
    parser.add_argument("--preset", default="all_uniform", choices=PRESETS, help="task mixture (uniform: per type)")
    parser.add_argument("--batch-size", type=int, default=16, help="questions decoded per forward pass")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="answer length cap (greedy, stops at EOS)")
    parser.add_argument("--out", default=None, help="folder for vqa_info.json (nothing written when omitted)")
    parser.add_argument("--seed", type=int, default=0, help="web corpus seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _curve(policy, checkpoints, items, args, command: str, console, columns) -> None:
    """--curve: every kept checkpoint of the run on the same items -> vqa_curve.json/.png in --out."""
    from rich.progress import Progress

    from rt2.eval.report import atomic_write_json
    from rt2.eval.vqa_curve import evaluate_curve, plot_curve

    with Progress(*columns, console=console, disable=args.quiet, transient=True) as progress:
        bar = progress.add_task("checkpoints", total=len(checkpoints) * len(items))

        def one(pol, its):
            return evaluate_vqa(
                pol,
                its,
                batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens,
                on_batch=lambda k: progress.advance(bar, k),
            )

        rows = evaluate_curve(policy, checkpoints, items, one)
    for r in rows:
        above = sum(v["above_chance"] for v in r["per_task"].values())
        console.print(
            f"step {r['step']:>7}: {100 * r['overall']['accuracy']:.1f} % (chance {100 * r['overall']['chance']:.1f} %),"
            f" {above}/{len(r['per_task'])} task types above chance"
        )
    out = Path(args.out)
    atomic_write_json(out / "vqa_curve.json", {"command": command, "items": len(items), "steps": rows})
    title = f"{Path(args.policy or '').parent.name or 'run'}: {len(items)} held-out web items ({args.preset})"
    console.print(f"wrote {out / 'vqa_curve.json'} and {plot_curve(rows, out / 'vqa_curve.png', title)}")


def check_decoding(batch_size: int, max_new_tokens: int) -> None:
    """The decoding flags ``rt2 vqa`` and ``rt2 pointing`` share; ValueError with the one line to show."""
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"--batch-size and --max-new-tokens must be >= 1, got {batch_size}, {max_new_tokens}")


def load_model(command: str, policy: str | None, weights: str | None):
    """(checkpoint dir, Policy, swapped-in checkpoint step or None) for the commands that question a saved model
    (``rt2 vqa``, ``rt2 pointing``); ValueError naming ``command`` when ``policy`` is not a checkpoint folder."""
    from rt2.policy import Policy
    from rt2.policy.default import resolve_policy

    spec = resolve_policy(policy)
    if spec == "oracle" or not Path(spec).is_dir():
        raise ValueError(f"--policy {spec!r}: not a checkpoint directory ({command} needs a saved model)")
    model = Policy.from_pretrained(spec)
    step = None
    if weights is not None:
        from rt2.eval.vqa_curve import swap_weights

        step = swap_weights(model, weights)
    return spec, model, step


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from rt2.eval.report import atomic_write_json

    t0 = time.perf_counter()
    console = Console()
    try:
        check_decoding(args.batch_size, args.max_new_tokens)
        with console.status(f"loading {args.policy or 'the shipped policy'}"):
            spec, policy, weights_step = load_model("rt2 vqa", args.policy, args.weights)
        items, config = vqa_items(policy, args.items, args.split, args.preset, args.seed)
        checkpoints = []
        if args.curve:
            from rt2.eval.vqa_curve import run_checkpoints

            if args.weights is not None or not args.out:
                raise ValueError("--curve needs --out and evaluates the run's own checkpoints (drop --weights)")
            checkpoints = run_checkpoints(spec)
    except ValueError as e:  # includes CheckpointError and DefaultPolicyError
        print(f"rt2 vqa: error: {e}", file=sys.stderr)
        return 2
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=args.quiet, transient=True) as progress:
        bar = progress.add_task("answering", total=len(items))
        try:
            result = evaluate_vqa(
                policy,
                items,
                batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens,
                on_batch=lambda k: progress.advance(bar, k),
            )
        except ValueError as e:
            print(f"rt2 vqa: error: {e}", file=sys.stderr)
            return 2
    command = (
        f"rt2 vqa --policy {spec}"
        + (f" --weights {args.weights}" if args.weights else "")
        + f" --items {len(items)} --split {args.split} --preset {args.preset} "
        f"--batch-size {args.batch_size} --max-new-tokens {args.max_new_tokens} --seed {args.seed}"
        + (f" --out {args.out}" if args.out else "")
        + (" --curve" if args.curve else "")
    )
    table = Table(title=f"rt2 vqa: {Path(spec).name or spec} on {len(items)} {args.split} web items ({args.preset})")
    for col in ("task", "n", "accuracy %", "95% CI", "chance %", "CI low > chance"):
        table.add_column(col, justify="left" if col == "task" else "right", no_wrap=col == "task")
    for task, r in result["per_task"].items():
        table.add_row(*_fmt_row(task, r))
    table.add_section()
    table.add_row(*_fmt_row("overall", result["overall"]))
    console.print(table)
    above = [t for t, r in result["per_task"].items() if r["above_chance"]]
    console.print(f"above chance (95 % CI lower bound): {len(above)}/{len(result['per_task'])} task types")
    window = _text_window(policy)
    if result["budget_clamped"]:
        console.print(
            f"note: {result['budget_clamped']} items decoded with < {args.max_new_tokens} new tokens "
            f"(the model's text window is {window} tokens)"
        )
    if result["prompt_too_long"]:
        console.print(
            f"[yellow]note: {result['prompt_too_long']} items have prompts longer than the model's text window "
            f"({window} tokens): not decoded, scored wrong[/]"
        )
    if args.out:
        from rt2.eval.cli import git_commit

        info = {
            "command": command,
            "policy": spec,
            "weights": args.weights,
            "weights_step": weights_step,
            "rt2_version": rt2.__version__,
            "git_commit": git_commit(),
            "corpus": config.to_dict(),
            "items": len(items),
            "batch_size": args.batch_size,
            "max_new_tokens": args.max_new_tokens,
            "decoding": "greedy",
            "scoring": "rt2.data.web.score_answer",
            "chance_method": CHANCE_METHOD,
            "budget_clamped": result["budget_clamped"],
            "prompt_too_long": result["prompt_too_long"],
            "per_task": result["per_task"],
            "overall": result["overall"],
            "predictions": [
                {"index": i, "task": it.task, "prompt": it.prompt, "target": it.target, "prediction": p, "correct": c}
                for i, (it, p, c) in enumerate(zip(items, result["predictions"], result["correct"], strict=True))
            ],
            "wall_time_s": time.perf_counter() - t0,
        }
        path = atomic_write_json(Path(args.out) / "vqa_info.json", info)
        console.print(f"wrote {path}")
    if checkpoints:
        _curve(policy, checkpoints, items, args, command, console, columns)
    console.print(f"elapsed: {time.perf_counter() - t0:.1f} s")
    return 0
