"""What ``rt2 pointing`` asks: the probes (one pointing question each), on held-out web items and on the initial
frames of the emergent suites' episodes (the seed stream and the episodes are described in
:mod:`rt2.eval.pointing`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rt2.data.web import SPLITS, WebItem
from rt2.data.web.referents import (
    REFERENT_TYPES,
    candidate_cells,
    check_type,
    question_text,
    referent_phrases,
    sample_question,
)
from rt2.data.web.scene import board_to_grid
from rt2.eval.report import FIG7A_SUITES
from rt2.sim import board, lexicon
from rt2.sim.instructions import block_phrases, math_expressions, symbol_phrases
from rt2.sim.lexicon import NP
from rt2.sim.scene import Scene
from rt2.sim.tasks import TaskSpec

if TYPE_CHECKING:
    from rt2.eval.suites import TaskDef

REPORT_STREAM = 1000  # entropy word of type k's held-out items: (seed, heldout split id, REPORT_STREAM + k, i)
EMERGENT_SUITES: tuple[str, ...] = (*FIG7A_SUITES, "cot")  # the suites whose referents web data must teach


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
    """``n`` held-out web questions per type (see the package doc for the seed stream), rendered at ``image_size``."""
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
