"""``rt2 demo``: the shipped policy, closed loop, on seen Language-Table tasks and on emergent ones, in ~1 minute.

    rt2 demo                                  # shipped policy, 9 tasks x 2 episodes, <= 100 steps: ~20-60 s
    rt2 demo --quick                          # 4 tasks, <= 25 steps: ~10-20 s
    rt2 demo --policy runs/cft/final --episodes 2 --out my_demo
    rt2 demo --policy oracle                  # the scripted expert: what success looks like (~10 s)

Runtime budget: at most 2 minutes on 2 CPU cores. All episodes run in ONE batched lockstep runner
(``rt2.eval.runner.run_suite``; one ``predict_action_batch`` call per step for every live episode), the step cap is
100 (the Language-Table protocol's 200 is for ``rt2 eval``; the oracle needs 4-21 steps), and the video renders
only the first episode of each task.

Tasks: the 5 Language-Table families as in the robot data ("seen"), and 4 skills the robot data never taught
(RT-2's "emergent" evaluations, taken from ``rt2.eval.suites``): push a block onto a printed digit, onto an icon,
an instruction in Spanish, and a block named by a property ("the block with the same colour as the heart").
The same model is then asked held-out web questions, one per skill in ``WEB_TASKS`` (RT-2's point: one network is
both the VLM and the policy; ``Policy.answer``, free decoding, ~1 s; skipped for the oracle).
Prints a success table, writes ``OUT/demo.mp4`` (gif if ffmpeg is missing: a grid, one tile per task, the
instruction in a band on top, a green/red border once the episode ends) and ``OUT/demo.json`` (every episode).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rt2.eval import report
from rt2.eval.runner import Decision, Observation, PolicyAdapter, RunConfig, load_policy, run_suite
from rt2.eval.stats import result_tables
from rt2.eval.suites import Suite, TaskDef, get_suite

# (label, category, suite in rt2.eval.suites, task name in that suite)
DEMO_TASKS: tuple[tuple[str, str, str, str], ...] = (
    ("block2block", "seen", "seen", "block2block"),
    ("block2absolute", "seen", "seen", "block2absolute"),
    ("block2relative", "seen", "seen", "block2relative"),
    ("block2blockrelative", "seen", "seen", "block2blockrelative"),
    ("separate", "seen", "seen", "separate"),
    ("digit", "emergent: symbols", "emergent_symbols", "digit"),
    ("icon", "emergent: symbols", "emergent_symbols", "icon"),
    ("spanish", "emergent: multilingual", "emergent_multilingual", "es:block2block"),
    ("same_colour", "emergent: reasoning", "emergent_reasoning", "same_colour"),
)
QUICK_TASKS = ("block2block", "block2absolute", "digit", "spanish")
# Held-out web questions the demo asks the policy: one of each type, the first of its type in the held-out split.
WEB_TASKS = ("vqa_colour", "vqa_count", "point_block", "math_text", "translate", "read_symbol")
TILE = (240, 320)  # (h, w) of one task's tile in the grid video
BORDER = 5  # px of outcome-coloured margin around a tile
FPS = 10


def demo_suite(labels: Sequence[str]) -> tuple[Suite, dict[str, str]]:
    """The demo's tasks as one Suite (so one batched runner serves all of them); -> (suite, {task: category})."""
    table = {t[0]: t for t in DEMO_TASKS}
    unknown = [x for x in labels if x not in table]
    if unknown:
        raise ValueError(f"unknown demo task(s) {unknown}; valid: {', '.join(table)}")
    tasks, category = [], {}
    for label in labels:
        _, cat, suite_name, task_name = table[label]
        src: TaskDef = next(t for t in get_suite(suite_name).tasks if t.name == task_name)
        tasks.append(dataclasses.replace(src, name=label))
        category[label] = cat
    return Suite("demo", "rt2 demo: seen Language-Table tasks and emergent skills", tuple(tasks)), category


class _StepProgress(PolicyAdapter):
    """Delegates to ``inner``; advances a progress bar once per lockstep step (the runner's only per-step hook)."""

    def __init__(self, inner: PolicyAdapter, advance) -> None:
        self.inner, self.advance = inner, advance
        self.name, self.n_frames = inner.name, inner.n_frames

    def act(self, batch: Sequence[Observation]) -> list[Decision]:
        out = self.inner.act(batch)
        self.advance(len(batch))
        return out

    def end_episode(self, key: tuple) -> None:
        self.inner.end_episode(key)

    def describe(self) -> dict:
        return self.inner.describe()


def _tile(frame: np.ndarray, outcome: bool | None) -> np.ndarray:
    import cv2

    m = BORDER
    img = cv2.resize(np.asarray(frame, np.uint8), (TILE[1] - 2 * m, TILE[0] - 2 * m), interpolation=cv2.INTER_AREA)
    # a white margin while the episode runs; green (success) or red (failure) once it is over
    colour = (255, 255, 255) if outcome is None else (40, 170, 60) if outcome else (210, 40, 40)
    return np.pad(img, ((m, m), (m, m), (0, 0)), constant_values=0) + _margin(colour)


def _margin(colour: tuple[int, int, int]) -> np.ndarray:
    m = BORDER
    out = np.zeros((*TILE, 3), np.uint8)
    out[:m], out[-m:], out[:, :m], out[:, -m:] = colour, colour, colour, colour
    return out


def grid_frames(videos: Sequence[Sequence[np.ndarray]], outcomes: Sequence[bool], cols: int = 3) -> list[np.ndarray]:
    """Per-episode frame lists -> grid frames (episodes that ended hold their last frame, framed by outcome)."""
    if not videos:
        raise ValueError("no episode videos to put in a grid")
    cols = min(cols, len(videos))
    rows = -(-len(videos) // cols)
    length = max(len(v) for v in videos) + FPS  # one extra second showing every final outcome
    blank = np.full((*TILE, 3), 255, np.uint8)
    out = []
    for t in range(length):
        tiles = [
            _tile(v[min(t, len(v) - 1)], ok if t >= len(v) - 1 else None)
            for v, ok in zip(videos, outcomes, strict=True)
        ]
        tiles += [blank] * (rows * cols - len(tiles))
        out.append(np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)]))
    return out


def web_questions(policy, tasks: Sequence[str] = WEB_TASKS, seed: int = 0, scan: int = 400) -> list[dict]:
    """Ask ``policy`` (an ``rt2.policy.Policy``) one held-out web question per task type -> rows {task, question,
    answer, expected, correct}, scored like ``rt2 vqa``. The question of each type is the first of that type among
    the held-out items ``0..scan-1``, so the demo shows the same questions on every run, chosen blind to the
    answers."""
    from rt2.data.web import WebCorpus, score_answer
    from rt2.eval.vqa import generate_answers, vqa_items

    _, config = vqa_items(policy, 1, seed=seed)
    corpus, picked = WebCorpus(config), {}
    for i in range(scan):
        item = corpus.item(i)
        if item.task in tasks and item.task not in picked:
            picked[item.task] = item
        if len(picked) == len(tasks):
            break
    missing = [t for t in tasks if t not in picked]
    if missing:
        raise ValueError(f"no held-out web item of type {missing} among the first {scan}; valid types: rt2.data.web")
    items = [picked[t] for t in tasks]
    answers = generate_answers(policy, items, batch_size=len(items), max_new_tokens=16).predictions
    return [
        {"task": it.task, "question": it.prompt, "answer": a, "expected": it.target,
         "correct": bool(score_answer(it.task, a, it.target))}
        for it, a in zip(items, answers, strict=True)
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default=None, help="checkpoint dir or 'oracle' (default: the shipped policy)")
    parser.add_argument("--out", default="rt2_demo", help="output folder (demo.mp4, demo.json)")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per task (the video shows the first)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the episodes' initial states")
    parser.add_argument("--max-steps", type=int, default=None, help="step cap per episode (default 100; quick 25)")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_TASKS)}, 25 steps")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none", help="dynamic int8 (CPU)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    t0 = time.perf_counter()
    console = Console()
    labels = list(QUICK_TASKS) if args.quick else [t[0] for t in DEMO_TASKS]
    max_steps = args.max_steps or (25 if args.quick else 100)
    try:
        from rt2.policy.default import resolve_policy

        spec = resolve_policy(args.policy)
        suite, category = demo_suite(labels)
        config = RunConfig(
            episodes=args.episodes, num_envs=min(len(labels) * args.episodes, 10), seed=args.seed,
            max_steps=max_steps, videos=len(labels),
        )  # fmt: skip
        kwargs = {} if args.quantize == "none" else {"quantize": args.quantize}
        with console.status(f"loading {spec}"):
            policy = load_policy(spec, **kwargs)
    except ValueError as e:
        print(f"rt2 demo: error: {e}", file=sys.stderr)
        return 2
    n_eps = len(labels) * args.episodes
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("policy steps", total=None, done=f"0/{n_eps} episodes")
        finished = [0]

        def on_episode(_row: dict) -> None:
            finished[0] += 1
            progress.update(bar, done=f"{finished[0]}/{n_eps} episodes")

        adapter = _StepProgress(policy, lambda n: progress.advance(bar, n))
        result = run_suite(adapter, suite, config, on_episode=on_episode)
    out = Path(args.out)
    rows = result.rows
    firsts = {r["task"]: r for r in rows if r["index"] == 0}
    keys = [("demo", label, 0) for label in labels if ("demo", label, 0) in result.videos]
    with console.status("writing the video"):
        frames = grid_frames([result.videos[k] for k in keys], [firsts[k[1]]["success"] for k in keys])
        video = report.write_video(out / "demo.mp4", frames, fps=FPS)
    for r in rows:
        r["category"] = category[r["task"]]
    tables = result_tables(rows)
    info = {
        "policy": spec,
        "policy_info": policy.describe(),
        "seed": args.seed,
        "episodes_per_task": args.episodes,
        "max_steps": max_steps,
        "video": str(video),
        "per_task": tables["per_task"],
        "overall": tables["overall"],
        "episodes": rows,
        "wall_time_s": time.perf_counter() - t0,
    }
    inner = getattr(policy, "policy", None)  # the oracle has no language model to ask
    if inner is not None and getattr(inner, "has_language", True):  # nor has the RT-1 baseline
        with console.status("asking the same model web questions"):
            info["web_questions"] = web_questions(inner, seed=args.seed)
    report.atomic_write_json(out / "demo.json", info)

    table = Table(
        title=f"rt2 demo: {Path(spec).name or spec} ({args.episodes} episode(s) per task, <= {max_steps} steps)"
    )
    for col in ("task", "category", "instruction (first episode)", "success", "steps", "invalid"):
        table.add_column(col, justify="right" if col in ("steps", "invalid") else "left")
    for t in tables["per_task"]:
        first = firsts[t["task"]]
        ok = f"{t['successes']}/{t['n']}"
        style = "green" if t["successes"] == t["n"] else ("red" if t["successes"] == 0 else "yellow")
        table.add_row(
            t["task"], category[t["task"]], first["instruction"], f"[{style}]{ok}[/]",
            f"{t['mean_steps']:.0f}", str(t["invalid_actions"]),
        )  # fmt: skip
    console.print(table)
    for cat_name, pick in (("seen", lambda c: c == "seen"), ("emergent", lambda c: c.startswith("emergent"))):
        sel = [r for r in rows if pick(r["category"])]
        if sel:
            k = sum(r["success"] for r in sel)
            console.print(f"{cat_name}: {k}/{len(sel)} episodes succeeded")
    if "web_questions" in info:
        web = Table(title="the same model, asked held-out web questions (Policy.answer)")
        for col in ("skill", "question", "answer", "expected", ""):
            web.add_column(col)
        for q in info["web_questions"]:
            mark = "[green]right[/]" if q["correct"] else "[red]wrong[/]"
            web.add_row(q["task"], q["question"], q["answer"] or "(empty)", q["expected"], mark)
        console.print(web)
        console.print("web accuracy per skill on 4,600 held-out questions: rt2 vqa --items 4600")
    console.print(f"video: [bold]{video}[/]   episodes: {out / 'demo.json'}")
    console.print(f"elapsed: {time.perf_counter() - t0:.1f} s")
    console.print("next: rt2 eval --suite all --episodes 20   |   rt2 serve   |   rt2 run-robot")
    return 0
