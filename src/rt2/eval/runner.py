"""Closed-loop evaluation: policies behind one adapter interface, run batched across parallel environments.

    from rt2.eval.runner import RunConfig, load_policy, run_suite
    policy = load_policy("oracle")                      # or a checkpoint directory (rt2.policy.Policy)
    result = run_suite(policy, get_suite("seen"), RunConfig(episodes=50, num_envs=8, seed=0))
    result.rows                                         # one dict per episode (success, steps, invalid_actions, ...)

**Protocol** (Language-Table, reference §1.7): 10 Hz, at most ``max_steps`` = 200 policy steps per episode,
success = the task's success test at the end of the episode (the env terminates as soon as it holds), seeded
initial states (``rt2.eval.suites.reset_episode``; identical for every policy, so A/B comparisons are paired).

**Batching**: ``num_envs`` envs step in lockstep; one ``act`` call (``Policy.predict_action_batch``) serves every
active episode; a finished episode's env takes the next queued episode. Each episode's outcome depends only on
its seed and the policy, not on the batch it was in (the oracle is exactly batch-invariant; a model is, up to
float summation order in batched matmuls). Frame history: an adapter with ``n_frames = F`` gets the last F
frames, oldest first, the first frame repeated at episode start (two-frame models get (prev, current)).

**Invalid actions** (non-finite values, a wrong shape, |a| > 0.1 m, or an ``ActionParseError``/ValueError from a
chain-of-thought decode) are *counted*, never silently repaired: the env executes a zero action ("0 0": the arm
holds its setpoint, as a robot controller does on a rejected command) and the episode goes on, so the count shows
up per episode and the failure shows up in the success rate. ``stop_on_invalid=True`` ends the episode as a
failure instead.

**Control Hz**: per episode, steps / (wall time of the policy call + env steps of the lockstep iterations it took
part in); rendering video frames is excluded. This is the rate one robot would see with this batch size.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rt2.eval.suites import Suite, initial_state_hash, reset_episode
from rt2.sim import board, instructions
from rt2.sim.env import EnvConfig, SimState, TabletopEnv
from rt2.sim.oracle import ScriptedOracle

ZERO_ACTION = np.zeros(2, np.float64)


@dataclass(frozen=True)
class Observation:
    """What a policy adapter sees for one env: frames uint8[H, W, 3] (oldest first, length n_frames), the
    instruction, and privileged state (only the scripted oracle may read ``state``)."""

    frames: tuple[np.ndarray, ...]
    instruction: str
    state: SimState
    key: tuple  # (suite, task, index): unique per episode


@dataclass(frozen=True)
class Decision:
    """A policy's output for one env: float64[2] metres (None when invalid), its text, and a plan (CoT)."""

    action: np.ndarray | None
    text: str
    plan: str | None = None


class PolicyAdapter(ABC):
    """The interface the runner drives. ``act`` must return one Decision per observation, in order."""

    name: str = "policy"
    n_frames: int = 1

    @abstractmethod
    def act(self, batch: Sequence[Observation]) -> list[Decision]: ...

    def plan_and_act(self, batch: Sequence[Observation]) -> list[Decision]:
        raise ValueError(f"policy {self.name!r} cannot decode a chain of thought (plan_and_act)")

    def end_episode(self, key: tuple) -> None:  # noqa: B027 - optional hook
        """Called when an episode finishes (adapters with per-episode state free it here)."""

    def describe(self) -> dict:
        return {"name": self.name, "n_frames": self.n_frames}


def check_action(a) -> np.ndarray | None:
    """A model's action row -> float64[2] metres, or None if it is not a valid Language-Table action."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (2,) or not np.all(np.isfinite(a)) or np.any(np.abs(a) > board.MAX_DELTA_M * (1 + 1e-5)):
        return None
    return np.clip(a, -board.MAX_DELTA_M, board.MAX_DELTA_M)


class OracleAdapter(PolicyAdapter):
    """The ScriptedOracle as a policy: reads privileged state; one oracle instance per episode."""

    name = "oracle"
    n_frames = 1

    def __init__(self, **oracle_overrides) -> None:
        self._overrides = oracle_overrides
        self._oracles: dict[tuple, ScriptedOracle] = {}

    def _decide(self, ob: Observation) -> Decision:
        oracle = self._oracles.setdefault(ob.key, ScriptedOracle(**self._overrides))
        units = oracle.act(ob.state)
        return Decision(units.astype(np.float64) * board.UNIT_M, f"{int(units[0])} {int(units[1])}")

    def act(self, batch: Sequence[Observation]) -> list[Decision]:
        return [self._decide(ob) for ob in batch]

    def plan_and_act(self, batch: Sequence[Observation]) -> list[Decision]:
        out = []
        for ob in batch:
            d = self._decide(ob)
            out.append(Decision(d.action, d.text, instructions.plan_text(ob.state.task, ob.state.scene)))
        return out

    def end_episode(self, key: tuple) -> None:
        self._oracles.pop(key, None)

    def describe(self) -> dict:
        return {"name": self.name, "kind": "scripted_oracle", "n_frames": 1, "privileged_state": True}


class ModelAdapter(PolicyAdapter):
    """An ``rt2.policy.Policy`` (or anything with ``predict_action_batch``/``plan_and_act``/``metadata``)."""

    def __init__(self, policy, name: str | None = None) -> None:
        meta = policy.metadata()
        space = meta.get("action_space", {})
        names = list(space.get("names") or [d["name"] for d in space.get("dims", [])])
        if names != ["x", "y"]:
            raise ValueError(f"the tabletop eval needs a Language-Table action space (x, y); this policy has {names}")
        self.policy, self.meta = policy, meta
        self.n_frames = int(meta.get("n_frames", 1))
        self.name = name or str(meta.get("checkpoint") or meta.get("model") or "policy")

    def act(self, batch: Sequence[Observation]) -> list[Decision]:
        actions, texts = self.policy.predict_action_batch(
            [list(o.frames) for o in batch], [o.instruction for o in batch]
        )
        actions = np.asarray(actions)
        if actions.shape[0] != len(batch):
            raise RuntimeError(f"policy returned {actions.shape[0]} actions for {len(batch)} observations")
        # a grounded-plan policy (action_format "plan") exposes the plan it wrote before each action
        plans = list(getattr(self.policy, "last_plans", None) or [None] * len(batch))
        return [Decision(check_action(a), str(t), p) for a, t, p in zip(actions, texts, plans, strict=True)]

    def plan_and_act(self, batch: Sequence[Observation]) -> list[Decision]:
        out = []
        for o in batch:
            try:
                plan, a = self.policy.plan_and_act(list(o.frames), o.instruction)
            except ValueError as e:  # ActionParseError is a ValueError: an invalid output, counted
                out.append(Decision(None, f"<invalid: {e}>"))
                continue
            out.append(Decision(check_action(a), " ".join(str(v) for v in np.asarray(a).tolist()), str(plan)))
        return out

    def describe(self) -> dict:
        keep = ("model", "checkpoint", "num_parameters", "n_frames", "image_size", "action_vocab", "quantize")
        keep += ("action_format", "corrupt_plan")
        return {"name": self.name, "kind": "rt2.policy.Policy", **{k: self.meta.get(k) for k in keep}}


def load_policy(spec: str, **policy_kwargs) -> PolicyAdapter:
    """ "oracle" -> OracleAdapter; otherwise a checkpoint directory -> ModelAdapter(Policy.from_pretrained)."""
    if spec == "oracle":
        return OracleAdapter()
    from pathlib import Path

    if not Path(spec).is_dir():
        raise ValueError(f"--policy {spec!r}: not a checkpoint directory; give a saved model dir or 'oracle'")
    from rt2.policy import Policy

    return ModelAdapter(Policy.from_pretrained(spec, **policy_kwargs), name=str(spec))


@dataclass(frozen=True)
class RunConfig:
    """``episodes`` per task; ``suite_episodes``: at least this many per suite, split over its tasks (a 1-task
    suite such as ``emergent_math`` then runs ``suite_episodes`` of its one task; issue 9's headline numbers use
    >= 100 per suite, +-5 points); ``videos``: record the first K episodes of each suite; ``max_steps`` 200 is the
    protocol (lower it only for smoke tests)."""

    episodes: int = 50
    num_envs: int = 8
    seed: int = 0
    max_steps: int = 200
    videos: int = 0
    stop_on_invalid: bool = False
    suite_episodes: int = 0

    def __post_init__(self) -> None:
        for f in ("episodes", "num_envs", "max_steps"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f} must be >= 1, got {getattr(self, f)}")
        if self.videos < 0 or self.suite_episodes < 0:
            raise ValueError(f"videos and suite_episodes must be >= 0, got {self.videos}, {self.suite_episodes}")

    def episodes_for(self, n_tasks: int) -> int:
        """Episodes per task of a suite with ``n_tasks`` tasks."""
        return max(self.episodes, -(-self.suite_episodes // max(1, n_tasks)))


@dataclass
class SuiteResult:
    suite: str
    rows: list[dict]
    videos: dict[tuple, list[np.ndarray]] = field(default_factory=dict)  # key -> frames uint8[h, w, 3]
    wall_time_s: float = 0.0


@dataclass
class _Slot:
    env: TabletopEnv
    key: tuple | None = None
    frames: deque = field(default_factory=deque)
    row: dict = field(default_factory=dict)
    busy_s: float = 0.0
    video: list | None = None
    digest: object = None  # hashlib sha256 of the episode's decisions (texts, plans, actions)


def _score_grounded_plan(row: dict, plan: str, state: SimState) -> None:
    """Count, per slot (robot, block, goal), whether the plan's point is the true grid cell (and within one).
    The truth is the task's grounding (``rt2.sim.tasks.grounding_state``) at the step the plan was written for;
    a plan that does not parse counts as wrong in every slot."""
    from rt2.data.plan import SLOTS, parse_plan, plan_points, slot_errors
    from rt2.sim.tasks import grounding_state

    parsed = parse_plan(plan)
    errs = slot_errors(parsed, plan_points(grounding_state(state.task, state.scene)))
    counts = row.setdefault("_slots", {k: [0, 0] for k in SLOTS})
    row["_plan_parsed"] = row.get("_plan_parsed", 0) + int(parsed is not None)
    for k, e in zip(SLOTS, errs, strict=True):
        counts[k][0] += int(e == 0)
        counts[k][1] += int(e is not None and e <= 1)


def _draw_plan(frame: np.ndarray, plan: str, video_size: tuple[int, int]) -> None:
    from rt2.data.plan import parse_plan
    from rt2.data.web.scene import grid_to_board
    from rt2.sim.render import draw_points

    parsed = parse_plan(plan)
    if parsed:
        pts = [grid_to_board(p.gx, p.gy) for p in parsed]
        draw_points(frame, pts, video_size, top=frame.shape[0] - video_size[0])


def _normalize_plan(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").split())


def run_suite(
    policy: PolicyAdapter,
    suite: Suite,
    config: RunConfig = RunConfig(),
    on_episode: Callable[[dict], None] | None = None,
) -> SuiteResult:
    """Run every task of ``suite`` ``config.episodes_for(len(suite.tasks))`` times. ``on_episode(row)`` is called
    as each one ends."""
    n = config.episodes_for(len(suite.tasks))
    queue = deque((t, i) for i in range(n) for t in suite.tasks)  # index-major: videos span tasks
    video_budget = config.videos
    env_cfg = EnvConfig(max_steps=config.max_steps, two_frames=False)
    slots = [_Slot(TabletopEnv(env_cfg, render_mode="rgb_array")) for _ in range(min(config.num_envs, len(queue)))]
    result = SuiteResult(suite.name, [])
    decide = policy.plan_and_act if suite.mode == "plan_and_act" else policy.act
    t_start = time.perf_counter()

    def start(slot: _Slot) -> None:
        nonlocal video_budget
        task, index = queue.popleft()
        obs, info, seed = reset_episode(slot.env, suite.name, task, config.seed, index)
        slot.key = (suite.name, task.name, index)
        slot.frames = deque([obs["image"]] * policy.n_frames, maxlen=policy.n_frames)
        slot.busy_s = 0.0
        slot.row = {
            "suite": suite.name,
            "task": task.name,
            "family": task.family,
            "index": index,
            "seed": seed,
            "init_hash": initial_state_hash(slot.env),
            "instruction": obs["instruction"],
            "success": False,
            "steps": 0,
            "invalid_actions": 0,
            "final_distance": float(info["distance"]),
        }
        slot.digest = hashlib.sha256()
        if suite.mode == "plan_and_act":
            slot.row["expected_plan"] = instructions.plan_text(slot.env.state.task, slot.env.state.scene)
            slot.row.update(plan=None, plan_correct=None, plan_step_accuracy=0.0)
        slot.video = None
        if video_budget > 0:
            video_budget -= 1
            slot.video = [slot.env.render()]

    def finish(slot: _Slot) -> None:
        row = slot.row
        row["control_hz"] = row["steps"] / slot.busy_s if slot.busy_s > 0 else None
        row["action_digest"] = slot.digest.hexdigest()[:16]
        if suite.mode == "plan_and_act" and row["steps"]:
            row["plan_step_accuracy"] = row.pop("_plan_hits", 0) / row["steps"]
        row.pop("_plan_hits", None)
        if "_slots" in row:  # grounded plans: per-slot share of steps whose point was the exact cell / within one
            counts, n = row.pop("_slots"), max(1, row["steps"])
            row["plan_slot_exact"] = {k: c[0] / n for k, c in counts.items()}
            row["plan_slot_within1"] = {k: c[1] / n for k, c in counts.items()}
            row["plan_parsed"] = row.pop("_plan_parsed") / n
        result.rows.append(row)
        if slot.video is not None:
            result.videos[slot.key] = slot.video
        policy.end_episode(slot.key)
        if on_episode is not None:
            on_episode(row)
        slot.key = None

    for slot in slots:
        start(slot)
    while True:
        active = [s for s in slots if s.key is not None]
        if not active:
            break
        t0 = time.perf_counter()
        obs = [Observation(tuple(s.frames), s.row["instruction"], s.env.state, s.key) for s in active]
        decisions = decide(obs)
        if len(decisions) != len(active):
            raise RuntimeError(f"policy {policy.name!r} returned {len(decisions)} decisions for {len(active)} envs")
        done = []
        for s, d in zip(active, decisions, strict=True):
            row = s.row
            if suite.mode == "plan_and_act":
                ok = d.plan is not None and _normalize_plan(d.plan) == _normalize_plan(row["expected_plan"])
                if row["steps"] == 0:
                    row["plan"], row["plan_correct"] = d.plan, ok
                row["_plan_hits"] = row.get("_plan_hits", 0) + int(ok)
            if suite.mode != "plan_and_act" and d.plan is not None:
                _score_grounded_plan(row, d.plan, s.env.state)
                if s.video is not None:  # the points the policy wrote, on the frame it wrote them for
                    _draw_plan(s.video[-1], d.plan, s.env.config.video_size)
            action = d.action
            s.digest.update(f"{d.text}|{d.plan}|{None if action is None else action.tolist()};".encode())
            if action is None:
                row["invalid_actions"] += 1
                if config.stop_on_invalid:
                    row["steps"] += 1
                    done.append(s)
                    continue
                action = ZERO_ACTION
            ob, _r, terminated, truncated, info = s.env.step(action)
            s.frames.append(ob["image"])
            row["steps"] += 1
            row["success"] = bool(info["success"])
            row["final_distance"] = float(info["distance"])
            if terminated or truncated or row["steps"] >= config.max_steps:
                done.append(s)
        dt = time.perf_counter() - t0
        for s in active:
            s.busy_s += dt
            if s.video is not None:
                s.video.append(s.env.render())
        for s in done:
            finish(s)
            if queue:
                start(s)
    order = {t.name: i for i, t in enumerate(suite.tasks)}
    result.rows.sort(key=lambda r: (order[r["task"]], r["index"]))
    result.wall_time_s = time.perf_counter() - t_start
    return result
