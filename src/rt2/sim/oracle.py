"""``ScriptedOracle``: solves every task family from privileged state, emitting legal "X Y" integers.

    oracle = ScriptedOracle()
    obs, info = env.reset(seed=0, options={"family": "block2blockrelative"})
    while not done:
        action = oracle.act(env)                  # int64[2], units of 0.01 m, each in -10..10
        executed, label = oracle.act_dart(env)    # DART: executed = clean + noise, label = clean

It is a reactive push controller (no search), re-planned every step:
1. Goal for the block: the family's goal point (``tasks.goal_point``), pulled inside the reachable board for
   block2absolute corners/edges, and for block2blockrelative aimed at the far end of the success segment; if
   the block's straight path would hit the reference block, it goes via a waypoint beside it.
2. Push when the effector is behind the block (along the block->goal line, laterally within 1.5 cm): advance
   along the line with lateral correction, 1-3 cm per step, slowing down as the block nears the goal.
3. Otherwise approach the pre-push point 1.5 cm behind contact, orbiting the block on a clearance circle when
   the effector is on the wrong side, and detouring around other blocks so references are not knocked.
4. Quantization-aware (reference §1.10): the plan is made in metres, rounded to units, and a non-trivial move
   (> 0.3 units) that rounds to "0 0" emits one unit on the dominant axis, so the oracle never deadlocks.

``python -m rt2.sim.oracle_table --episodes 50`` measures its success per family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rt2.sim import board, tasks
from rt2.sim.scene import Scene

CONTACT_MARGIN = 0.015


@dataclass(frozen=True)
class OracleConfig:
    """Speeds in metres per step (10 Hz); DART noise std in units (0 = clean)."""

    push_step: float = 0.03
    min_push_step: float = 0.01
    approach_step: float = 0.08
    slow_radius: float = 0.06  # start slowing down when the block is this close to its goal
    noise_units: float = 0.0
    seed: int = 0


class ScriptedOracle:
    def __init__(self, config: OracleConfig | None = None, **overrides):
        import dataclasses

        self.config = dataclasses.replace(config or OracleConfig(), **overrides)
        self._rng = np.random.default_rng(self.config.seed)
        self._pushing = False
        self._last_block: np.ndarray | None = None
        self._stuck = 0

    # -- public API ----------------------------------------------------------------------------------------
    def act(self, env_or_state) -> np.ndarray:
        """The clean action, int64[2] in -10..10, from an env (or its ``state``)."""
        state = _state(env_or_state)
        if state.step == 0:
            self._pushing, self._last_block, self._stuck = False, None, 0
        delta = self._plan(state.scene, state.task, np.asarray(state.target, float))
        return quantize(delta)

    def act_dart(self, env_or_state, noise_units: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(executed, label): executed = clean + round(N(0, sigma)) clipped to -10..10; label = clean."""
        clean = self.act(env_or_state)
        sigma = self.config.noise_units if noise_units is None else noise_units
        noise = np.round(self._rng.normal(0.0, sigma, 2)).astype(np.int64) if sigma > 0 else np.zeros(2, np.int64)
        return np.clip(clean + noise, -board.MAX_UNITS, board.MAX_UNITS), clean

    # -- planning ------------------------------------------------------------------------------------------
    def _plan(self, scene: Scene, task: tasks.TaskSpec, e: np.ndarray) -> np.ndarray:
        cfg = self.config
        blk = scene.block(task.block)
        p = blk.xy
        goal = self._block_goal(scene, task, p)
        to_goal = goal - p
        remaining = float(np.hypot(*to_goal))
        if remaining < 1e-6:
            return np.zeros(2)
        d = to_goal / remaining
        n = np.array([-d[1], d[0]])
        contact = blk.radius + board.EFFECTOR_RADIUS
        rel = p - e
        along, lateral = float(rel @ d), float((e - p) @ n)

        # Stuck detection: pushing but the block does not move -> back off and re-approach.
        if self._last_block is not None and self._pushing and np.hypot(*(p - self._last_block)) < 0.002:
            self._stuck += 1
        else:
            self._stuck = 0
        self._last_block = p.copy()

        limit_lat = 0.02 if self._pushing else 0.012
        in_zone = -0.005 < along < contact + CONTACT_MARGIN + 0.012 and abs(lateral) < limit_lat
        if in_zone and self._stuck < 4:
            self._pushing = True
            # Slow down by the margin to the *success test*, not to the aim point: a block that is about to
            # succeed gets 1 cm pushes, so it neither overshoots nor shoves a target block away.
            margin = tasks.evaluate(task, scene)[1] - tasks.success_radius(task)
            slow = np.clip(margin / cfg.slow_radius, 0.0, 1.0)
            step = cfg.min_push_step + (cfg.push_step - cfg.min_push_step) * slow
            nxt = e + d * step - n * lateral * 0.6
            return nxt - e
        self._pushing = False
        self._stuck = 0

        circ = _circumradius(blk) + board.EFFECTOR_RADIUS + 0.012
        pre = p - d * (contact + CONTACT_MARGIN)
        v = e - p
        dist = float(np.hypot(*v))
        behind = float(v @ -d) / max(dist, 1e-9)
        if dist < circ * 0.85 and behind < 0.7:
            waypoint = p + v / max(dist, 1e-9) * circ  # too close and not behind: back out radially first
        elif behind < math.cos(math.radians(45)):
            theta = math.atan2(float(v @ n), float(v @ -d))  # angle from the back direction
            new = theta - math.copysign(min(abs(theta), math.radians(55)), theta)
            back = -d * math.cos(new) + n * math.sin(new)
            waypoint = p + back * max(circ, dist * 0.9 if dist < 0.12 else circ)
        else:
            waypoint = pre
        detoured = self._detour(scene, task, e, waypoint)
        step = detoured - e
        if np.hypot(*step) < 0.006:  # a detour that stalls: accept a nudge to the obstacle over a deadlock
            step = waypoint - e
        size = float(np.hypot(*step))
        if size > cfg.approach_step:
            step *= cfg.approach_step / size
        return step

    def _block_goal(self, scene: Scene, task: tasks.TaskSpec, p: np.ndarray) -> np.ndarray:
        fam = task.scoring_family
        if fam == "block2absolute":
            g = np.asarray(board.LOCATIONS[task.location], float)
            m = 0.05
            return np.array(
                [np.clip(g[0], board.X_MIN + m, board.X_MAX - m), np.clip(g[1], board.Y_MIN + m, board.Y_MAX - m)]
            )
        if fam != "block2blockrelative":
            return tasks.goal_point(task, scene)
        ref = scene.block(task.target_block)
        frac = 1.1 if "_" in task.direction else 0.9
        g = ref.xy + tasks.bbr_offset(task.direction) * frac
        clear = ref.radius + scene.block(task.block).radius + 0.02
        # Route the block around the reference: waypoint beside it, on the block's side of the p->g line.
        t, closest = _closest_on_segment(ref.xy, p, g)
        if 0.0 < t < 1.0 and np.hypot(*(closest - ref.xy)) < clear:
            side = closest - ref.xy
            if np.hypot(*side) < 1e-6:
                side = np.array([-(g - p)[1], (g - p)[0]])
            side /= np.hypot(*side)
            return ref.xy + side * (clear + 0.02)
        return g

    def _detour(self, scene: Scene, task: tasks.TaskSpec, e: np.ndarray, w: np.ndarray) -> np.ndarray:
        """If the effector's straight move e->w would hit another block, go around the first one hit."""
        best, best_t = None, 2.0
        for b in scene.blocks:
            if b.name == task.block:
                continue
            r = _circumradius(b) + board.EFFECTOR_RADIUS + 0.006
            t, c = _closest_on_segment(b.xy, e, w)
            if np.hypot(*(c - b.xy)) < r and t < best_t and np.hypot(*(e - b.xy)) > r * 0.8:
                best, best_t = (b, r, c), t
        if best is None:
            return w
        b, r, c = best
        side = c - b.xy
        if np.hypot(*side) < 1e-6:
            seg = w - e
            side = np.array([-seg[1], seg[0]])
        side /= np.hypot(*side)
        # Slide past the obstacle: beside it, and a bit further along the intended direction (so the detour
        # point is never where the effector already is).
        seg = w - e
        u = seg / max(float(np.hypot(*seg)), 1e-9)
        return b.xy + side * (r + 0.01) + u * 0.02


def quantize(delta: np.ndarray) -> np.ndarray:
    """Metres float[2] -> int64[2] units in -10..10; a move > 0.3 units never rounds to "0 0"."""
    u = np.asarray(delta, float) / board.UNIT_M
    big = float(np.max(np.abs(u)))
    if big > board.MAX_UNITS:
        u = u * board.MAX_UNITS / big  # keep the direction when capping the step
    q = np.clip(np.round(u), -board.MAX_UNITS, board.MAX_UNITS).astype(np.int64)
    if not q.any() and float(np.hypot(*u)) > 0.3:
        k = int(np.argmax(np.abs(u)))
        q[k] = 1 if u[k] > 0 else -1
    return q


def _state(env_or_state):
    if hasattr(env_or_state, "scene") and hasattr(env_or_state, "task"):
        return env_or_state
    env = getattr(env_or_state, "unwrapped", env_or_state)
    if not hasattr(env, "state"):
        raise TypeError(f"ScriptedOracle.act needs a TabletopEnv or its .state, got {type(env_or_state).__name__}")
    return env.state


def _circumradius(b) -> float:
    return float(np.max(np.hypot(*board.outline(b.shape, b.scale).T)))


def _closest_on_segment(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom < 1e-12 else float(np.clip((q - a) @ ab / denom, 0.0, 1.0))
    return t, a + ab * t
