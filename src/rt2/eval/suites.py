"""Evaluation suites as data, mirroring RT-2's generalization and emergent-skill evaluations.

A :class:`Suite` is a named list of :class:`TaskDef` (family + scene config + instruction settings + filters)
and a decoding mode. Every (suite, task, episode index, base seed) maps to one fixed seed, so an episode's initial
state and instruction depend on nothing else: not on the policy, the batch size, or which other suites run.
That makes paired A/B comparisons exact (both policies see identical initial states)::

    from rt2.eval.suites import get_suite, list_suites, register_suite, Suite, TaskDef
    suite = get_suite("emergent_math")
    obs, info = reset_episode(env, suite.tasks[0], episode_seed(0, suite.name, suite.tasks[0].name, 3))
    register_suite(Suite("my_suite", "red moon only", (TaskDef("b2b", "block2block"),)))

| suite | tasks (each ``episodes`` times) | what it tests |
|---|---|---|
| seen | 5 Language-Table families, BLOCK_8, training templates | the in-distribution benchmark |
| unseen_objects | easy: a familiar block pushed among held-out ones; hard: the pushed block has a held-out colour or shape (x 5 families) | new objects |
| unseen_backgrounds | easy: plain new boards (white, green felt); hard: textured (wood, checker, cloth) (x 5 families) | new backgrounds |
| unseen_environments | clutter; colour+lighting jitter; both with new backgrounds (x 5 families) | new environments |
| paraphrase | 5 families, held-out instruction templates (different verbs) | language generalization |
| emergent_symbols | push a block onto a digit; onto an icon | symbol understanding |
| emergent_math | the digit is named by arithmetic ("the sum of two plus one") | math |
| emergent_multilingual | 5 families in Spanish; in French | multilingual |
| emergent_reasoning | "same colour as", "smallest", "closest to" referents | relations |
| emergent_people | onto the face with glasses / the face, among icons | human recognition analogue |
| cot | property referents decoded with ``plan_and_act`` | plan correctness + success |

A task's filters (``symbols``, ``referents``, ``block``) are applied by rejection: the episode seed is re-derived
(``seed, attempt``) until the env's sampled task passes, deterministically.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from rt2.sim import board, instructions, tasks
from rt2.sim.scene import SceneConfig

MODES = ("act", "plan_and_act")
BLOCK_FILTERS = ("seen", "heldout")
MAX_ATTEMPTS = 400


@dataclass(frozen=True)
class TaskDef:
    """One evaluated task: a family on a scene distribution with an instruction style.

    ``scene``: a SceneConfig or preset name. ``symbols``: accept only these goal symbols. ``referents``: accept
    only these property-referent kinds ("colour_of", "smallest", ...). ``block``: "seen" / "heldout" requires the
    pushed block's colour and shape to be both familiar / at least one held out. ``math``: name the digit goal
    by arithmetic.
    """

    name: str
    family: str
    scene: SceneConfig | str = "language_table"
    language: str = "en"
    split: str = "train"
    symbols: tuple[str, ...] | None = None
    referents: tuple[str, ...] | None = None
    block: str | None = None
    math: bool = False

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"task name must be non-empty without '/', got {self.name!r}")
        board.check_name("family", self.family, tasks.FAMILIES)
        board.check_name("language", self.language, instructions.LANGUAGES)
        board.check_name("split", self.split, instructions.SPLITS)
        if isinstance(self.scene, str):
            SceneConfig.preset(self.scene)
        for s in self.symbols or ():
            board.check_symbol(s)
        for r in self.referents or ():
            board.check_name("referent kind", r, tasks.REFERENT_KINDS)
        if self.block is not None:
            board.check_name("block filter", self.block, BLOCK_FILTERS)
        if self.math and not set(self.symbols or ()) <= set(board.DIGITS):
            raise ValueError(f"task {self.name!r}: math phrasing needs digit symbols only, got {self.symbols}")
        if self.math and self.family != "block2symbol":
            raise ValueError(f"task {self.name!r}: math phrasing needs family block2symbol, got {self.family}")

    @property
    def scene_config(self) -> SceneConfig:
        return SceneConfig.preset(self.scene) if isinstance(self.scene, str) else self.scene

    def accepts(self, spec: tasks.TaskSpec) -> bool:
        """Whether a sampled task satisfies this definition's filters."""
        if self.symbols is not None and spec.symbol not in self.symbols:
            return False
        if self.referents is not None and (spec.referent or "").split(":")[0] not in self.referents:
            return False
        if self.block is not None:
            colour, shape = spec.block.split(" ")
            novel = colour in board.HELDOUT_COLOURS or shape in board.HELDOUT_SHAPES
            if novel != (self.block == "heldout"):
                return False
        return True


@dataclass(frozen=True)
class Suite:
    """A named list of tasks. ``mode``: "act" (predict_action_batch) or "plan_and_act" (chain of thought).
    ``category`` groups suites in plots ("generalization", "emergent", "seen", "cot")."""

    name: str
    description: str
    tasks: tuple[TaskDef, ...]
    mode: str = "act"
    category: str = "generalization"

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"suite name must be alphanumeric with _ or -, got {self.name!r}")
        if not self.tasks:
            raise ValueError(f"suite {self.name!r} has no tasks")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {self.name!r} has duplicate task names {names}")
        board.check_name("mode", self.mode, MODES)


def _lt(prefix: str = "", **kw) -> tuple[TaskDef, ...]:
    return tuple(TaskDef(f"{prefix}{f}", f, **kw) for f in tasks.LT_FAMILIES)


_BG_EASY = dataclasses.replace(SceneConfig(), backgrounds=("white", "green_felt"))
_BG_HARD = dataclasses.replace(SceneConfig(), backgrounds=("wood", "checker", "blue_cloth"))
_ENV_HARD = dataclasses.replace(SceneConfig.preset("hard"))
_DIGITS = SceneConfig(n_blocks=6, n_symbols=4, symbol_kinds=board.DIGITS)
_ICONS = ("heart", "arrow", "cross")
_FACES = ("face", "face_glasses")
_PEOPLE = SceneConfig(n_blocks=6, n_symbols=4, symbol_kinds=_FACES + ("heart", "arrow"))

BUILTIN: tuple[Suite, ...] = (
    Suite("seen", "the 5 Language-Table families, BLOCK_8, training templates", _lt(), category="seen"),
    Suite(
        "unseen_objects",
        "held-out colours (purple, orange) and shapes (triangle, heart); easy: a familiar block is pushed among "
        "new ones; hard: the pushed block is new",
        _lt("easy:", scene="heldout_objects", block="seen") + _lt("hard:", scene="heldout_objects", block="heldout"),
    ),
    Suite(
        "unseen_backgrounds",
        "new boards; easy: plain (white, green felt); hard: textured (wood, checker, blue cloth)",
        _lt("easy:", scene=_BG_EASY) + _lt("hard:", scene=_BG_HARD),
    ),
    Suite(
        "unseen_environments",
        "flat clutter; colour and lighting jitter; both on new backgrounds",
        _lt("clutter:", scene="clutter") + _lt("jitter:", scene="jitter") + _lt("hard:", scene=_ENV_HARD),
    ),
    Suite("paraphrase", "held-out instruction templates (verbs never seen in training)", _lt(split="heldout")),
    Suite(
        "emergent_symbols",
        "push a block onto a printed digit or icon",
        (
            TaskDef("digit", "block2symbol", scene=_DIGITS),
            TaskDef("icon", "block2symbol", scene=SceneConfig(n_blocks=6, n_symbols=3, symbol_kinds=_ICONS)),
        ),
        category="emergent",
    ),
    Suite(
        "emergent_math",
        "the target digit is the result of arithmetic ('the sum of two plus one')",
        (TaskDef("arithmetic", "block2symbol", scene=_DIGITS, symbols=board.DIGITS, math=True),),
        category="emergent",
    ),
    Suite(
        "emergent_multilingual",
        "the 5 families instructed in Spanish and in French",
        _lt("es:", language="es") + _lt("fr:", language="fr"),
        category="emergent",
    ),
    Suite(
        "emergent_reasoning",
        "blocks named by relations: same colour as a symbol, the smallest, closest to a symbol",
        (
            TaskDef("same_colour", "property_referent", scene="emergent", referents=("colour_of",)),
            TaskDef("smallest", "property_referent", scene="emergent", referents=("smallest",)),
            TaskDef("closest_to", "property_referent", scene="emergent", referents=("closest_to",)),
        ),
        category="emergent",
    ),
    Suite(
        "emergent_people",
        "push a block to the face with glasses / the face without, among other icons (RT-2's people analogue)",
        (
            TaskDef("face_glasses", "block2symbol", scene=_PEOPLE, symbols=("face_glasses",)),
            TaskDef("face", "block2symbol", scene=_PEOPLE, symbols=("face",)),
        ),
        category="emergent",
    ),
    Suite(
        "cot",
        "property-referent tasks decoded with plan_and_act: plan correctness and success",
        (TaskDef("property_referent", "property_referent", scene="emergent"),),
        mode="plan_and_act",
        category="cot",
    ),
    # block2block alone: the family the learning curves of reference/point-then-act.md were measured on, so
    # >= 100 episodes of it do not need 500 of `seen`
    Suite(
        "block2block", "block-to-block only (seen templates)", (TaskDef("block2block", "block2block"),), category="seen"
    ),
)

_REGISTRY: dict[str, Suite] = {s.name: s for s in BUILTIN}


def register_suite(suite: Suite, overwrite: bool = False) -> Suite:
    """Add a suite to the registry (``rt2 eval --suite NAME`` then finds it). A taken name raises unless
    ``overwrite``."""
    if not isinstance(suite, Suite):
        raise TypeError(f"register_suite needs a rt2.eval.Suite, got {type(suite).__name__}")
    if suite.name == "all":
        raise ValueError("'all' is reserved (it selects every suite)")
    if suite.name in _REGISTRY and not overwrite:
        raise ValueError(f"suite {suite.name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[suite.name] = suite
    return suite


def list_suites() -> list[str]:
    return list(_REGISTRY)


def get_suite(name: str) -> Suite:
    if name not in _REGISTRY:
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(_REGISTRY)} (or 'all')")
    return _REGISTRY[name]


def resolve_suites(names: str | list[str]) -> list[Suite]:
    """'all', one name, a comma-separated list, or a list of names -> suites (unknown names raise)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no suite given; valid suites: {', '.join(_REGISTRY)} (or 'all')")
    if "all" in names:
        return [_REGISTRY[n] for n in _REGISTRY]
    return [get_suite(n) for n in dict.fromkeys(names)]


def episode_seed(base_seed: int, suite: str, task: str, index: int, attempt: int = 0) -> int:
    """A 31-bit seed that depends only on (base seed, suite, task, episode index, rejection attempt)."""
    key = f"{int(base_seed)}/{suite}/{task}/{int(index)}/{int(attempt)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF


def reset_episode(env, suite: str, task: TaskDef, base_seed: int, index: int):
    """Reset ``env`` to episode ``index`` of ``task``: -> (obs, info, seed actually used).

    Deterministic in its arguments. Raises RuntimeError if no accepted task is found in MAX_ATTEMPTS seeds.
    """
    options = {
        "family": task.family,
        "scene_config": task.scene_config,
        "language": task.language,
        "split": task.split,
    }
    for attempt in range(MAX_ATTEMPTS):
        seed = episode_seed(base_seed, suite, task.name, index, attempt)
        obs, info = env.reset(seed=seed, options=options)
        spec = info["task"]
        if not task.accepts(spec):
            continue
        if task.math:
            scene = env.world_state()
            rng = np.random.default_rng(seed)
            text = instructions.generate(spec, scene, rng, task.language, task.split, math=True)
            obs, info = env.reset(seed=seed, options={"scene": scene, "task": spec, "instruction": text})
        return obs, info, seed
    raise RuntimeError(
        f"suite {suite!r} task {task.name!r}: no episode passed the task's filters in {MAX_ATTEMPTS} seeds; "
        "loosen its symbols/referents/block filter or its scene config"
    )


def initial_state_hash(env) -> str:
    """sha256 (16 hex) of the reset state: block poses, symbols, effector, task and instruction."""
    st = env.state
    key = repr((st.scene, st.task, st.instruction, np.round(st.target, 9).tolist()))
    return hashlib.sha256(key.encode()).hexdigest()[:16]
