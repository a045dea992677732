"""``rt2 pointing``: held-out pointing accuracy per emergent referent type, on web images and on the suites' frames.

    rt2 pointing --policy runs/control/final --out runs/pointing                      # 100 per type: ~1 min
    rt2 pointing --items 300 --robot-episodes 100 --out runs/pointing_shipped         # the shipped policy, ~5 min
    rt2 pointing --policy RUN/final --types digit,math,colour_of --robot-episodes 0   # web items only

Why: an emergent suite can fail because the policy did not *find* its referent ("the sum of two plus one", "la
luna roja", "the smallest block") or because it found it and did not push there. This command measures the first
half, per referent type (``rt2.data.web.referents.REFERENT_TYPES``), two ways:

- **web**: ``--items`` held-out questions per type, "where is <referent>?" in the suites' own words on web images
  (``sample_question``), rendered at the policy's image size. Held out: item ``i`` of type number ``k`` is drawn
  from the generator seeded ``(seed, 1, 1000 + k, i)``: the held-out split's id (1) and an entropy length that no
  training stream uses (training items are ``(seed, 0, i)``, ``rt2 vqa``'s ``(seed, 1, i)``), so no training item
  is repeated here.
- **robot frames**: the initial frame of episodes ``0..--robot-episodes-1`` of every task of the emergent suites
  (``emergent_symbols``, ``emergent_math``, ``emergent_multilingual``, ``emergent_reasoning``, ``emergent_people``,
  ``cot``), reset exactly as ``rt2 eval`` resets them (``rt2.eval.suites.reset_episode``, same base seed), so these
  are the very episodes the suite's success rate was measured on. Each episode asks for the pushed block and, when
  it is an object, the goal (a symbol, a digit named by arithmetic, a target block), each with the phrase the
  episode's instruction used; the truth is that object's position in the reset state.

Per type and source: n, exact-cell and within-one-cell (|dx|, |dy| <= 1, ``score_answer``'s rule) accuracy with
Wilson 95 % CIs; ``chance`` = the best constant answer on the same items (the 20 most frequent targets plus "0 0",
as ``rt2 vqa``); ``random_object`` = the expected accuracy of pointing at a uniformly random object of the
referent's class in that scene (any block for block referents, any symbol on the board for symbols): a
model that finds *a* block but not *the* block scores about this. Greedy decoding, ``Q: where is ...? A:``.

Writes to ``--out``: ``pointing_info.json`` (every row, every item's question, target and prediction, the command),
``pointing_report.md`` (the table) and ``pointing.png`` (bars with CIs). Runtime (2 busy CPU cores, one thread,
``pali-nano``): ~20 ms per question, ~1.5 ms to draw and render a web item, ~25-250 ms per suite reset (the
reasoning suite rejects many layouts).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import rt2
from rt2.data.web import SPLITS, WebItem
from rt2.data.web.referents import (
    REFERENT_TYPES,
    candidate_cells,
    check_type,
    question_text,
    referent_phrases,
    sample_question,
)
from rt2.data.web.scene import board_to_grid, parse_grid
from rt2.eval.stats import wilson
from rt2.eval.vqa import accuracy_row, generate_answers, load_model
from rt2.sim import board, lexicon
from rt2.sim.instructions import block_phrases, math_expressions, symbol_phrases
from rt2.sim.lexicon import NP
from rt2.sim.scene import Scene
from rt2.sim.tasks import TaskSpec

if TYPE_CHECKING:
    from rt2.eval.suites import TaskDef
    from rt2.policy import Policy

REPORT_STREAM = 1000  # entropy word of type k's held-out items: (seed, heldout split id, REPORT_STREAM + k, i)
EMERGENT_SUITES: tuple[str, ...] = (
    "emergent_symbols",
    "emergent_math",
    "emergent_multilingual",
    "emergent_reasoning",
    "emergent_people",
    "cot",
)
CHANCE_METHOD = (
    "best constant answer on the same items (20 most frequent targets plus '0 0'); random_object: expected "
    "accuracy of a uniformly random object of the referent's class (any block, or any symbol on the board)"
)


@dataclass(frozen=True)
class Probe:
    """One pointing question. ``images``: the policy's frames (uint8[H, W, 3] x n_frames); ``cell``: the truth
    (grid ``gx, gy``); ``candidates``: the cells of the random-object baseline; ``meta``: where it came from."""

    rtype: str
    source: str  # "web" | "robot"
    images: tuple[np.ndarray, ...]
    question: str
    cell: tuple[int, int]
    candidates: tuple[tuple[int, int], ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def web_item(self) -> WebItem:
        """As a WebItem (what ``rt2.eval.vqa.generate_answers`` decodes)."""
        target = f"{self.cell[0]} {self.cell[1]}"
        return WebItem(check_type(self.rtype).web_task, self.images, f"Q: {self.question} A:", target, "point")


def parse_types(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """'all' / None, a comma list, or names -> referent type names (unknown ones raise ValueError)."""
    if spec is None or spec == "all":
        return tuple(REFERENT_TYPES)
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"--types names no type; valid types: {', '.join(REFERENT_TYPES)} (or 'all')")
    return tuple(check_type(n).name for n in dict.fromkeys(names))


def web_probes(
    types: Sequence[str], n: int, image_size: tuple[int, int], n_frames: int = 1, seed: int = 0
) -> list[Probe]:
    """``n`` held-out web questions per type (see module doc for the seed stream), rendered at ``image_size``."""
    from rt2.sim.render import Renderer

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"--items must be a positive int, got {n!r}")
    renderer = Renderer(tuple(image_size))
    order = list(REFERENT_TYPES)
    out = []
    for t in types:
        k = order.index(check_type(t).name)
        for i in range(n):
            q = sample_question(t, np.random.default_rng([seed, SPLITS["heldout"], REPORT_STREAM + k, i]))
            img = renderer.render(q.scene)
            out.append(
                Probe(t, "web", (img,) * n_frames, q.question, q.cell, tuple(candidate_cells(t, q.scene)), {"i": i})
            )
    return out


def _used(nps: Sequence[NP], text: str) -> NP | None:
    """The longest of ``nps`` whose text occurs in ``text`` as whole words (what the instruction said), or None."""
    hits = [p for p in nps if re.search(rf"(?<!\w){re.escape(p.text)}(?![\w])", text)]
    return max(hits, key=lambda p: len(p.text)) if hits else None


def _symbol_type(kind: str, lang: str, math: bool) -> str:
    if math:
        return "math"
    if lang != "en":
        return f"symbol_{lang}"
    if kind in board.DIGITS:
        return "digit"
    return kind if kind in ("face", "face_glasses") else "icon"


def episode_referents(
    task: TaskDef, spec: TaskSpec, scene: Scene, instruction: str
) -> list[tuple[str, str, str, tuple[float, float], bool]]:
    """The pointable referents of one suite episode -> ``(slot, type, phrase, xy, phrase_in_instruction)``.

    ``block``: the pushed block, named as the instruction names it (a property referent, a block name in the
    episode's language); ``goal``: a symbol goal (by arithmetic for math tasks) or a target block. Goals that are
    board locations, directions or groups are not objects and are not asked. The phrase is the one of the sim's
    phrases for that object that occurs in the instruction (the longest); ``phrase_in_instruction`` is False when
    none does (an article contraction such as "al"/"du" can hide the article, so phrases are matched without it).
    """
    lang = task.language
    out = []

    def add(slot: str, rtype: str, nps: Sequence[NP], xy) -> None:
        used = _used(nps, instruction)
        phrase = lexicon.the(used or nps[0], lang)
        out.append((slot, rtype, phrase, (float(xy[0]), float(xy[1])), used is not None))

    if spec.family == "property_referent":
        kind, _, arg = spec.referent.partition(":")
        add("block", kind, referent_phrases(kind, arg or None, lang), scene.block(spec.block).xy)
    else:
        add("block", f"block_{lang}", block_phrases(spec.block, scene, lang), scene.block(spec.block).xy)
    fam = spec.scoring_family
    if fam == "block2symbol":
        nps = math_expressions(int(spec.symbol), lang) if task.math else symbol_phrases(spec.symbol, lang)
        add("goal", _symbol_type(spec.symbol, lang, task.math), nps, scene.symbol(spec.symbol).xy)
    elif fam in ("block2block", "block2blockrelative"):
        add("goal", f"block_{lang}", block_phrases(spec.target_block, scene, lang), scene.block(spec.target_block).xy)
    return out


def robot_probes(
    episodes: int, base_seed: int = 0, n_frames: int = 1, suites: Sequence[str] = EMERGENT_SUITES
) -> list[Probe]:
    """Questions on the initial frames of episodes ``0..episodes-1`` of every task of ``suites``, reset exactly as
    ``rt2 eval --seed base_seed`` resets them (the env renders at its default size, as in the eval)."""
    from rt2.eval.suites import get_suite, reset_episode
    from rt2.sim import TabletopEnv
    from rt2.sim.env import EnvConfig

    if not isinstance(episodes, int) or episodes < 0:
        raise ValueError(f"--robot-episodes must be an int >= 0, got {episodes!r}")
    env = TabletopEnv(EnvConfig(two_frames=False))  # the eval's env config (rt2.eval.runner.run_suite)
    out = []
    for name in suites:
        suite = get_suite(name)
        for task in suite.tasks:
            for index in range(episodes):
                obs, info, seed = reset_episode(env, suite.name, task, base_seed, index)
                scene, spec = env.state.scene, info["task"]
                for slot, rtype, phrase, xy, found in episode_referents(task, spec, scene, obs["instruction"]):
                    meta = {"suite": suite.name, "task": task.name, "index": index, "seed": seed, "slot": slot}
                    meta.update(instruction=obs["instruction"], phrase_in_instruction=found)
                    out.append(
                        Probe(
                            rtype, "robot", (obs["image"],) * n_frames, question_text(phrase, task.language),
                            board_to_grid(*xy), tuple(candidate_cells(rtype, scene)), meta,
                        )
                    )  # fmt: skip
    return out


def _hits(cell: tuple[int, int], pred: tuple[int, int] | None) -> tuple[bool, bool]:
    if pred is None:
        return False, False
    return pred == cell, abs(pred[0] - cell[0]) <= 1 and abs(pred[1] - cell[1]) <= 1


def _parse(text: str) -> tuple[int, int] | None:
    try:
        return parse_grid(text)
    except ValueError:
        return None


def _constant_chance(cells: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """(exact, within-one) accuracy of the best constant answer among the 20 most frequent cells and 0 0."""
    cands = [c for c, _ in Counter(cells).most_common(20)] + [(0, 0)]
    exact = max(float(np.mean([c == t for t in cells])) for c in cands)
    within = max(float(np.mean([_hits(t, c)[1] for t in cells])) for c in cands)
    return exact, within


def summarize(probes: Sequence[Probe], predictions: Sequence[str]) -> dict[str, Any]:
    """Score ``predictions`` (aligned with ``probes``) -> {"rows": [per-probe dicts], "per_type": {type: row}}.

    A type's row: n, exact and within1 (``accuracy_row``: n, correct, accuracy, ci95, chance, above_chance),
    random_object {exact, within1}, unparsed (answers that are not a grid point)."""
    if len(probes) != len(predictions):
        raise ValueError(f"{len(probes)} probes but {len(predictions)} predictions")
    rows = []
    for p, text in zip(probes, predictions, strict=True):
        pred = _parse(text)
        exact, within = _hits(p.cell, pred)
        base = [_hits(p.cell, c) for c in p.candidates] or [(False, False)]
        rows.append(
            {
                "type": p.rtype,
                "question": p.question,
                "target": f"{p.cell[0]} {p.cell[1]}",
                "prediction": text,
                "exact": exact,
                "within1": within,
                "parsed": pred is not None,
                "random_exact": float(np.mean([b[0] for b in base])),
                "random_within1": float(np.mean([b[1] for b in base])),
                **p.meta,
            }
        )
    return {"rows": rows, "per_type": per_type_rows(rows, probes)}


def per_type_rows(rows: Sequence[dict], probes: Sequence[Probe]) -> dict[str, Any]:
    """Scored rows (aligned with ``probes``) -> {type: row}, in ``REFERENT_TYPES`` order."""
    out = {}
    for t in REFERENT_TYPES:
        rs = [r for r in rows if r["type"] == t]
        if rs:
            out[t] = _type_row(rs, [p.cell for p in probes if p.rtype == t])
    return out


def _type_row(rows: Sequence[dict], cells: Sequence[tuple[int, int]]) -> dict[str, Any]:
    n = len(rows)
    c_exact, c_within = _constant_chance(cells)
    return {
        "n": n,
        "exact": accuracy_row(n, sum(r["exact"] for r in rows), c_exact),
        "within1": accuracy_row(n, sum(r["within1"] for r in rows), c_within),
        "random_object": {
            "exact": float(np.mean([r["random_exact"] for r in rows])),
            "within1": float(np.mean([r["random_within1"] for r in rows])),
        },
        "unparsed": sum(not r["parsed"] for r in rows),
    }


def robot_task_rows(rows: Sequence[dict]) -> list[dict[str, Any]]:
    """Robot-frame rows grouped by (suite, task, slot, type): where in which suite the pointing fails."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["suite"], r["task"], r["slot"], r["type"]), []).append(r)
    out = []
    for (suite, task, slot, rtype), rs in groups.items():
        n = len(rs)
        ex, w1 = sum(r["exact"] for r in rs), sum(r["within1"] for r in rs)
        out.append(
            {"suite": suite, "task": task, "slot": slot, "type": rtype, "n": n,
             "exact": ex / n, "exact_ci95": list(wilson(ex, n)), "within1": w1 / n, "within1_ci95": list(wilson(w1, n)),
             "random_within1": float(np.mean([r["random_within1"] for r in rs]))}
        )  # fmt: skip
    return out


def evaluate_pointing(
    policy: Policy,
    probes: Sequence[Probe],
    *,
    batch_size: int = 32,
    max_new_tokens: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Decode every probe's question with ``policy`` (greedy, ``rt2.eval.vqa.generate_answers``) and score it."""
    items = [p.web_item() for p in probes]
    ans = generate_answers(policy, items, batch_size, max_new_tokens, on_batch)
    return {**summarize(probes, ans.predictions), "prompt_too_long": ans.too_long}


# ---- report -----------------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _acc(r: dict) -> str:
    return f"{_pct(r['accuracy'])} [{_pct(r['ci95'][0])}, {_pct(r['ci95'][1])}]"


def markdown(info: dict[str, Any]) -> str:
    """The per-type table (web and robot frames side by side) and the per-suite-task robot table."""
    web, robot = info["web"]["per_type"], info["robot_frames"]["per_type"]
    lines = [
        f"# Pointing per referent type: `{info['policy']}`",
        "",
        f"`{info['command']}`",
        "",
        f"Web: {info['items_per_type']} held-out items per type. Robot frames: initial frames of "
        f"{info['robot_episodes_per_task']} episodes per task of {', '.join(info['robot_suites'])} (base seed "
        f"{info['episode_seed']}). Accuracy % with Wilson 95 % CI; chance = best constant answer; random = a random "
        "object of the referent's class.",
        "",
        "| referent | suites | web n | web exact % | web within one % | chance exact / within one | random object "
        "within one | robot n | robot exact % | robot within one % | robot random within one |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t, spec in REFERENT_TYPES.items():
        w, r = web.get(t), robot.get(t)
        if w is None and r is None:
            continue
        cells = [t, ", ".join(spec.suites) or "–"]
        if w:
            cells += [str(w["n"]), _acc(w["exact"]), _acc(w["within1"])]
            cells += [f"{_pct(w['exact']['chance'])} / {_pct(w['within1']['chance'])}"]
            cells += [_pct(w["random_object"]["within1"])]
        else:
            cells += ["–"] * 5
        if r:
            cells += [str(r["n"]), _acc(r["exact"]), _acc(r["within1"]), _pct(r["random_object"]["within1"])]
        else:
            cells += ["–"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    tasks = info["robot_frames"]["per_task"]
    if tasks:
        lines += [
            "",
            "Robot frames by suite task and slot (block = the pushed block, goal = the symbol or target block):",
            "",
            "| suite | task | slot | referent | n | exact % | within one % | random within one % |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in tasks:
            lines.append(
                f"| {r['suite']} | {r['task']} | {r['slot']} | {r['type']} | {r['n']} | {_pct(r['exact'])} | "
                f"{_pct(r['within1'])} | {_pct(r['random_within1'])} |"
            )
    return "\n".join(lines) + "\n"


def plot(info: dict[str, Any], path: str | Path) -> Path:
    """Bars per referent type: web exact, web within one, robot-frame within one (Wilson CIs)."""
    from rt2.eval.report import plot_bars

    web, robot = info["web"]["per_type"], info["robot_frames"]["per_type"]
    cats = [t for t in REFERENT_TYPES if t in web or t in robot]

    def bar(table: dict, key: str) -> list:
        return [(table[t][key]["accuracy"], *table[t][key]["ci95"]) if t in table else None for t in cats]

    series = {"web exact": bar(web, "exact"), "web within one": bar(web, "within1")}
    if robot:
        series["robot frames exact"] = bar(robot, "exact")
        series["robot frames within one"] = bar(robot, "within1")
    title = f"Pointing per referent type: {Path(info['policy']).name or info['policy']}"
    return plot_bars(path, cats, series, title, ylabel="pointing accuracy (%)")


# ---- CLI --------------------------------------------------------------------------------------------------------
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
        if args.batch_size < 1 or args.max_new_tokens < 1:
            raise ValueError(
                f"--batch-size and --max-new-tokens must be >= 1, got {args.batch_size}, {args.max_new_tokens}"
            )
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
