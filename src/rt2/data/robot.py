"""Robot demonstrations -> training Examples: actions (optionally chain-of-thought) and in-domain auxiliary tasks.

Input is a list of :class:`RobotEpisode` (``load_episodes(path)`` reads a LeRobot v3.0 dataset written by
``rt2 collect`` through ``rt2.data.lerobot``). Two indexable sources come out of it:

``RobotActions`` — one example per frame ``t`` of every kept episode: the frames ``t-n_frames+1 .. t`` (the first
frame repeated before the episode start; two frames is the Language-Table RT-2 setting) with the prompt
``Q: what action should the robot take to {instruction}? A:`` and the integer label ``"X Y"``
(``action.label_int``: the clean oracle action, DART-style). A seeded ``cot_fraction`` of them become
chain-of-thought examples ``Instruction: .. Plan: {plan} Action: X Y``; the plan is the sim's canonical sentence
with the referent resolved (``rt2.sim.plan_text``: "push the blue cube to the top left corner").

``RobotAux`` — the five Language-Table in-domain tasks of RT-2, generated on demand (item ``i`` is a pure function
of ``(seed, i)``):

| task | frames | question | answer |
|---|---|---|---|
| (action)          | t-1, t          | the action prompt                                  | ``X Y`` (that is RobotActions) |
| aux_instruction   | first, last     | ``what instruction was the robot following?``      | the instruction |
| aux_effector      | t-1, t          | ``where is the robot?``                            | effector at t, pointing grid ``gx gy`` |
| aux_timesteps     | t1, t2          | ``how many steps apart are these frames?``         | ``t2 - t1`` (digits) |
| aux_success       | first, t        | ``did the robot {instruction}?``                   | ``yes`` (last frame of a success) / ``no`` |
| aux_point         | t-1, t          | ``where is the {block}?``                          | a block the instruction names at t, ``gx gy`` |

``aux_point`` is not in the default ``AUX_TASKS``: it is the in-domain pointing of the grounded recipe
(``rt2 train --preset control``, source ``robot_point``), asked about the pushed block and, when the goal is a
block (block2block), the target block. It needs the episode's TaskSpec and grounding targets (``rt2 collect``
writes both); its grounding row is (effector, block, block), the slots an action row fills with (effector, pushed
block, goal), so pointing trains the same grounding head the action rows use.

"no" comes from the first half of a successful episode (not yet done) or the last frame of a failed one.
Pointing uses the same grid as the web corpus (``rt2.data.web.scene``), so "where is the robot?" means the same
thing in both. The robot side never teaches a web-only concept: episodes whose instruction or plan contains one
(``rt2.data.web.concepts.find_web_only``) are skipped (``on_web_only="skip"``, counted in ``skipped``) or
rejected (``"error"``). Augmentation (crop, colour jitter) is not done here: the trainer passes these raw frames
through ``rt2.data.transforms.ImageTransform(augment=True)``, the same code path as inference.

Other robots (``rt2.data.robot_columns``): an episode may carry several cameras (``images`` plus
``extra_images``); an observation is then ``n_frames`` history steps, oldest first, each giving one frame per
camera in camera order (so the model sees ``n_frames x cameras`` images). Without board geometry
(``effector=None``) ``aux_effector`` is unavailable; ``on_web_only="keep"`` turns the web-only exclusion off
(it is an experimental control for the tabletop world, meaningless for another robot's instructions).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rt2.actions import ActionSpace, ActionTokenizer
from rt2.data.plan import format_plan, noisy_points, plan_labels, plan_points
from rt2.data.prompts import Example, vqa_prompt
from rt2.data.web.concepts import find_web_only
from rt2.data.web.scene import grid_text
from rt2.sim import board
from rt2.sim.scene import Block, Scene
from rt2.sim.tasks import TaskSpec, board_from_unit

AUX_TASKS: tuple[str, ...] = ("aux_instruction", "aux_effector", "aux_timesteps", "aux_success")
PAIR_TASKS: tuple[str, ...] = ("aux_instruction", "aux_timesteps", "aux_success")  # need two frames
POINT_TASKS: tuple[str, ...] = ("aux_point",)  # opt-in: needs TaskSpec + grounding per episode
VALID_AUX_TASKS: tuple[str, ...] = AUX_TASKS + POINT_TASKS
GEOMETRIC_AUX: frozenset[str] = frozenset({"aux_effector", "aux_point"})  # grid answers: train without random crop


@dataclass(frozen=True)
class RobotEpisode:
    """One demonstration. images uint8[T, H, W, 3] (frame t is seen before action t); labels int64[T, D] the
    training action integers; effector float[T, 2] board metres (None: not a tabletop robot); spec the TaskSpec
    (None if unknown); extra_images: further cameras, each uint8[T, H_k, W_k, 3] (any size); grounding
    float32[T, G] the auxiliary grounding targets per frame (``rt2.sim.tasks.grounding_state``) or None."""

    images: np.ndarray
    labels: np.ndarray
    effector: np.ndarray | None
    instruction: str
    success: bool = True
    spec: TaskSpec | None = None
    family: str = ""
    extra_images: tuple[np.ndarray, ...] = ()
    grounding: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8 or t < 1:
            raise ValueError(
                f"episode images must be uint8[T>=1, H, W, 3], got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.ndim != 2 or len(self.labels) != t or not np.issubdtype(self.labels.dtype, np.integer):
            raise ValueError(f"episode labels must be int[T={t}, D], got {self.labels.dtype} {self.labels.shape}")
        if self.effector is not None and self.effector.shape != (t, 2):
            raise ValueError(f"episode effector must be float[T={t}, 2] or None, got {self.effector.shape}")
        object.__setattr__(self, "extra_images", tuple(self.extra_images))
        for k, cam in enumerate(self.extra_images):
            if cam.ndim != 4 or cam.shape[-1] != 3 or cam.dtype != np.uint8 or len(cam) != t:
                raise ValueError(
                    f"episode extra_images[{k}] must be uint8[T={t}, H, W, 3], got {cam.dtype} {cam.shape}"
                )
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError("episode instruction must be a non-empty str")
        if self.grounding is not None:
            g = np.asarray(self.grounding, dtype=np.float32)
            if g.ndim != 2 or len(g) != t or not g.shape[1] or not np.isfinite(g).all():
                raise ValueError(f"episode grounding must be finite float[T={t}, G>0] or None, got {g.shape}")
            object.__setattr__(self, "grounding", g)

    def __len__(self) -> int:
        return len(self.images)

    def views(self, t: int) -> tuple[np.ndarray, ...]:
        """The frame of every camera at step t, in camera order."""
        return (self.images[t], *(cam[t] for cam in self.extra_images))

    def plan(self) -> str | None:
        """The sim's canonical plan sentence (referents resolved), or None without a TaskSpec."""
        if self.spec is None:
            return None
        from rt2.sim.instructions import plan_text

        # plan_text only reads the names of the blocks the spec mentions; positions do not matter.
        names = [n for n in (self.spec.block, self.spec.target_block, *self.spec.avoid) if n]
        blocks = tuple(Block(*n.split(" ", 1), x=0.2 + 0.05 * i, y=0.0) for i, n in enumerate(dict.fromkeys(names)))
        return plan_text(self.spec, Scene(blocks=blocks))


@dataclass(frozen=True)
class RobotDataConfig:
    """n_frames: frames per action example (2 = Language-Table RT-2). cot_fraction: share of action examples
    written as chain of thought. success_only: keep only successful episodes for actions (failed ones still feed
    aux_success). aux_tasks/aux_size: which in-domain tasks, and the virtual length of RobotAux.
    max_gap: the largest step gap asked in aux_timesteps. on_web_only: "skip" | "error" | "keep" (no check: for
    other robots' data, where the tabletop's web-only concepts are no experimental control). With several
    cameras n_frames counts history steps; each step shows every camera."""

    n_frames: int = 2
    seed: int = 0
    cot_fraction: float = 0.0
    success_only: bool = True
    aux_tasks: tuple[str, ...] = AUX_TASKS
    aux_size: int = 1_000_000
    max_gap: int = 10
    on_web_only: str = "skip"
    # "sentence": the sim's canonical plan sentence; "grounded": point, then act (rt2.data.plan), whose points
    # get round(N(0, plan_noise)) extra cells per coordinate in training
    plan_format: str = "sentence"
    plan_noise: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.n_frames, int) or self.n_frames < 1:
            raise ValueError(f"n_frames must be a positive int, got {self.n_frames!r}")
        if not 0.0 <= self.cot_fraction <= 1.0:
            raise ValueError(f"cot_fraction must be in [0, 1], got {self.cot_fraction}")
        for t in self.aux_tasks:
            board.check_name("robot aux task", t, VALID_AUX_TASKS)
        if self.n_frames < 2 and any(t in PAIR_TASKS for t in self.aux_tasks):
            raise ValueError(f"aux tasks {PAIR_TASKS} show two frames; with n_frames=1 use aux_tasks=('aux_effector',)")
        if self.aux_size < 1 or self.max_gap < 1:
            raise ValueError("aux_size and max_gap must be >= 1")
        board.check_name("on_web_only policy", self.on_web_only, ("skip", "error", "keep"))
        board.check_name("plan format", self.plan_format, ("sentence", "grounded"))
        if not (np.isfinite(self.plan_noise) and self.plan_noise >= 0):
            raise ValueError(f"plan_noise must be >= 0 (grid cells), got {self.plan_noise}")

    @staticmethod
    def preset(name: str) -> RobotDataConfig:
        """``language_table`` (2 frames, no CoT), ``cot`` (2 frames, 25 % chain of thought), ``single_frame``."""
        presets = {
            "language_table": RobotDataConfig(),
            "cot": RobotDataConfig(cot_fraction=0.25),
            "single_frame": RobotDataConfig(n_frames=1, aux_tasks=("aux_effector",)),
        }
        return presets[board.check_name("robot data preset", name, tuple(presets))]


def _filter(episodes: Sequence[RobotEpisode], policy: str) -> tuple[list[RobotEpisode], int]:
    if policy == "keep":
        return list(episodes), 0
    kept, skipped = [], 0
    for i, ep in enumerate(episodes):
        found = find_web_only(ep.instruction) + find_web_only(ep.plan() or "")
        if found:
            if policy == "error":
                raise ValueError(
                    f"episode {i} ({ep.instruction!r}) uses web-only concepts {found}; robot training data must not "
                    "teach them (see docs/web_corpus.md), or pass on_web_only='skip'"
                )
            skipped += 1
            continue
        kept.append(ep)
    if skipped:
        warnings.warn(f"skipped {skipped} robot episodes whose instruction uses web-only concepts", stacklevel=3)
    return kept, skipped


def _frames(ep: RobotEpisode, t: int, n: int) -> tuple[np.ndarray, ...]:
    """The n steps ending at t, oldest first (every camera per step); the first step repeats before the start."""
    return tuple(f for k in range(n - 1, -1, -1) for f in ep.views(max(0, t - k)))


def _pair(ep: RobotEpisode, a: int, b: int, n: int) -> tuple[np.ndarray, ...]:
    """n steps for a two-frame question: step a repeated n-1 times, then step b (every camera per step)."""
    return ep.views(a) * (n - 1) + ep.views(b)


class RobotActions:
    """Indexable action (and CoT) examples, one per frame of every kept episode. ``len`` = number of frames."""

    def __init__(
        self,
        episodes: Sequence[RobotEpisode],
        config: RobotDataConfig | None = None,
        action_space: ActionSpace | ActionTokenizer | None = None,
        source: str = "robot",
    ) -> None:
        self.config = config or RobotDataConfig()
        eps = [e for e in episodes if e.success or not self.config.success_only]
        self.episodes, self.skipped = _filter(eps, self.config.on_web_only)
        if not self.episodes:
            raise ValueError(f"no usable robot episodes (of {len(episodes)}: failures dropped, web-only skipped)")
        if isinstance(action_space, ActionTokenizer):
            self.tokenizer = action_space  # e.g. from rt2.data.robot_columns (bins with NormStats)
        else:
            self.tokenizer = ActionTokenizer(action_space or ActionSpace.language_table())
        self.source = source
        self._starts = np.cumsum([0] + [len(e) for e in self.episodes])
        if self.config.plan_format == "grounded":  # labels now, points per frame from the grounding targets
            self._plans = [
                None if e.spec is None or e.grounding is None else plan_labels(e.spec) for e in self.episodes
            ]
            if self.config.cot_fraction > 0 and all(p is None for p in self._plans):
                raise ValueError(
                    "grounded plans need episodes with a task_spec and observation.environment_state; re-collect "
                    "the data with `rt2 collect`, or train the direct action format"
                )
        else:
            self._plans = [e.plan() for e in self.episodes]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(episode, frame) of example ``index``."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        i = int(index) + len(self) if index < 0 else int(index)
        if not 0 <= i < len(self):
            raise IndexError(f"robot action index {index} out of range for {len(self)} frames")
        e = int(np.searchsorted(self._starts, i, side="right")) - 1
        return e, i - int(self._starts[e])

    def is_cot(self, index: int) -> bool:
        e, _ = self.locate(index)
        if self.config.cot_fraction <= 0 or self._plans[e] is None:
            return False
        u = np.random.default_rng([self.config.seed, 1, int(index) % len(self)]).random()
        return bool(u < self.config.cot_fraction)

    def __getitem__(self, index: int) -> Example:
        e, t = self.locate(index)
        ep = self.episodes[e]
        bins = np.asarray(ep.labels[t], dtype=np.int64)
        text = self.tokenizer.to_text(bins)
        frames = _frames(ep, t, self.config.n_frames)
        if self.is_cot(index):
            plan = self._plans[e]
            if self.config.plan_format == "grounded":
                rng = np.random.default_rng([self.config.seed, 4, int(index) % len(self)])
                plan = format_plan(plan, noisy_points(plan_points(ep.grounding[t]), self.config.plan_noise, rng))
            ex = Example.cot(frames, ep.instruction, plan, bins, text, source=self.source)
        else:
            ex = Example.action(frames, ep.instruction, bins, text, source=self.source)
        return ex if ep.grounding is None else dataclasses.replace(ex, grounding=ep.grounding[t])


class RobotAux:
    """The in-domain auxiliary tasks, generated on demand; ``item(i)`` returns ``(task, Example)``."""

    def __init__(
        self, episodes: Sequence[RobotEpisode], config: RobotDataConfig | None = None, source: str = "robot_aux"
    ):
        self.config = config or RobotDataConfig()
        self.episodes, self.skipped = _filter(episodes, self.config.on_web_only)
        self.source = source
        self._success = [i for i, e in enumerate(self.episodes) if e.success]
        self._long = [i for i, e in enumerate(self.episodes) if len(e) >= 2]
        if "aux_effector" in self.config.aux_tasks and any(e.effector is None for e in self.episodes):
            raise ValueError(
                "aux_effector needs the effector's board position, which these episodes lack (not tabletop data); "
                f"use aux_tasks from {PAIR_TASKS} (n_frames >= 2)"
            )
        # aux_point asks about the blocks the instruction names; their positions come from the grounding targets
        self._pointable = [i for i, e in enumerate(self.episodes) if e.spec is not None and e.grounding is not None]
        if "aux_point" in self.config.aux_tasks and not self._pointable:
            raise ValueError(
                "aux_point needs episodes with a task_spec and observation.environment_state (grounding targets); "
                "re-collect the data with `rt2 collect`, or drop the pointing share (--set point_share=0)"
            )
        self._tasks = [t for t in self.config.aux_tasks if t in GEOMETRIC_AUX or self._long]
        if t_missing := [t for t in ("aux_instruction",) if t in self._tasks and not self._success]:
            self._tasks = [t for t in self._tasks if t not in t_missing]
        if not self.episodes or not self._tasks:
            raise ValueError("no robot episodes usable for the requested aux tasks (need episodes of >= 2 frames)")

    def __len__(self) -> int:
        return self.config.aux_size

    def __getitem__(self, index: int) -> Example:
        return self.item(index)[1]

    def item(self, index: int) -> tuple[str, Example]:
        if not isinstance(index, (int, np.integer)) or not -len(self) <= int(index) < len(self):
            raise IndexError(f"robot aux index {index!r} out of range for length {len(self)}")
        i = int(index) % len(self)
        rng = np.random.default_rng([self.config.seed, 2, i])
        task = self._tasks[int(rng.integers(len(self._tasks)))]
        n = self.config.n_frames
        if task == "aux_effector":
            ep = self.episodes[int(rng.integers(len(self.episodes)))]
            t = int(rng.integers(len(ep)))
            q, a, frames = "where is the robot?", grid_text(*ep.effector[t]), _frames(ep, t, n)
            if ep.grounding is not None:  # the pointing row's grounding: the effector, in every slot
                ex = Example.text(frames, vqa_prompt(q), a, source=self.source)
                return task, dataclasses.replace(ex, grounding=np.tile(ep.grounding[t][:2], 3))
        elif task == "aux_point":
            ep = self.episodes[self._pointable[int(rng.integers(len(self._pointable)))]]
            t = int(rng.integers(len(ep)))
            name, unit = _named_block(ep, t, rng)
            q, a, frames = f"where is the {name}?", grid_text(*board_from_unit(unit)), _frames(ep, t, n)
            ex = Example.text(frames, vqa_prompt(q), a, source=self.source)
            return task, dataclasses.replace(ex, grounding=np.concatenate([ep.grounding[t][:2], unit, unit]))
        elif task == "aux_instruction":
            ep = self.episodes[self._success[int(rng.integers(len(self._success)))]]
            q, a, frames = "what instruction was the robot following?", ep.instruction, _pair(ep, 0, len(ep) - 1, n)
        elif task == "aux_timesteps":
            ep = self.episodes[self._long[int(rng.integers(len(self._long)))]]
            gap = int(rng.integers(1, min(self.config.max_gap, len(ep) - 1) + 1))
            t1 = int(rng.integers(0, len(ep) - gap))
            q, a, frames = "how many steps apart are these frames?", str(gap), _pair(ep, t1, t1 + gap, n)
        else:  # aux_success
            ep = self.episodes[self._long[int(rng.integers(len(self._long)))]]
            last = len(ep) - 1
            if ep.success and bool(rng.integers(2)):
                t, a = last, "yes"
            elif ep.success:
                t, a = int(rng.integers(0, max(1, len(ep) // 2))), "no"  # first half: not done yet
            else:
                t, a = last, "no"
            q, frames = f"did the robot {ep.instruction.rstrip('.!?')}?", _pair(ep, 0, t, n)
        return task, Example.text(frames, vqa_prompt(q), a, source=self.source)


def _named_block(ep: RobotEpisode, t: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """(name, float32[2] board-unit position) of a block the instruction names at frame t: the pushed block, or
    the target block when the goal *is* that block. Why only block2block's target: in block2blockrelative the goal
    slot holds the target plus an offset, and the grounding targets carry no other block's position."""
    spec, g = ep.spec, ep.grounding[t]
    names = [(spec.block, g[2:4])]
    if spec.target_block and spec.scoring_family == "block2block":
        names.append((spec.target_block, g[4:6]))
    name, unit = names[int(rng.integers(len(names)))]
    return name, np.asarray(unit, dtype=np.float32)


def load_episodes(path: str | os.PathLike, label_key: str = "action.label_int") -> list[RobotEpisode]:
    """Read a LeRobot v3.0 dataset written by ``rt2 collect`` into RobotEpisodes (images decoded once).

    Other robots' datasets (cameras, float actions binned with NormStats): ``rt2.data.robot_columns``."""
    from rt2.data.robot_columns import RobotColumns, open_robot_dataset

    return open_robot_dataset(path, RobotColumns(action_key=label_key)).episodes
