"""``TabletopEnv``: a fast Language-Table re-implementation (gymnasium id ``rt2/Tabletop-v0``).

    import gymnasium as gym, numpy as np, rt2.sim
    env = gym.make("rt2/Tabletop-v0")                      # or rt2.sim.TabletopEnv(EnvConfig.preset("emergent"))
    obs, info = env.reset(seed=0, options={"family": "block2block"})
    obs, reward, terminated, truncated, info = env.step(np.array([3, -2]))   # "3 -2": +3 cm in x, -2 cm in y

One ``step`` (10 physics substeps + a 72x96 render) takes ~0.2-0.4 ms on one core; see ``rt2 bench sim``.

Actions: an integer array is "X Y" units (-10..10, 1 unit = 0.01 m); a float array is metres (|a| <= 0.1).
The delta is added to the effector *target* (not the measured position), then the target is clipped to the board
and ``info["clipped"]`` says so. Out-of-range, NaN, wrongly shaped or non-numeric actions raise.

Observation: ``image`` uint8[H, W, 3] (top-down, row 0 = x 0.15 m "top", col 0 = y -0.3048 m "left"),
``prev_image`` uint8[H, W, 3] (the previous frame; the first frame at reset) when ``two_frames``, ``effector``
f32[2] (measured), ``target`` f32[2] (commanded setpoint), ``instruction`` str.

Reset options: ``family`` (a name in ``FAMILIES``), or ``task`` (a ``TaskSpec``) with optional ``instruction``
(a non-empty string; omitted or None = generated from the task); ``scene`` (an exact ``Scene`` layout) or
``scene_config`` (a ``SceneConfig`` or preset name); ``language`` ("en" | "es" | "fr"), ``split`` ("train" |
"heldout"). As in Language-Table, a layout with no valid task, or whose goal is already satisfied, is re-sampled.
Families that need symbols (block2symbol) get 4 symbols added to a scene config that has none.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from rt2.sim import board, instructions, tasks
from rt2.sim.physics import PhysicsWorld
from rt2.sim.render import DEFAULT_SIZE, VIDEO_SIZE, Renderer, overlay_text
from rt2.sim.scene import Scene, SceneConfig, sample_scene
from rt2.sim.tasks import TaskSpec

RESET_OPTIONS = ("family", "task", "instruction", "scene", "scene_config", "language", "split")
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.'-?!:;()" + "áéíóúñüçàèêâîôûëïœÁÉÍÓÚÑÇÀÈÊ¿¡"


@dataclass(frozen=True)
class EnvConfig:
    """Env settings. ``EnvConfig.preset(name)``; any field can be overridden via ``TabletopEnv(**overrides)``."""

    image_size: tuple[int, int] = DEFAULT_SIZE  # (H, W) policy image; 72x96 keeps the board's aspect
    video_size: tuple[int, int] = VIDEO_SIZE  # env.render() frame before the text band
    max_steps: int = 200
    substeps: int = 10
    two_frames: bool = True
    walls: bool = True  # a rim at the board edge keeps blocks reachable (see rt2.sim.physics)
    families: tuple[str, ...] = tasks.LT_FAMILIES  # sampled uniformly when reset gives no family/task
    scene: SceneConfig = field(default_factory=SceneConfig)
    language: str = "en"
    split: str = "train"

    def __post_init__(self) -> None:
        for f in self.families:
            board.check_name("family", f, tasks.FAMILIES)
        board.check_name("language", self.language, instructions.LANGUAGES)
        board.check_name("split", self.split, instructions.SPLITS)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")

    @staticmethod
    def preset(name: str) -> EnvConfig:
        return ENV_PRESETS[board.check_name("env preset", name, tuple(ENV_PRESETS))]


ENV_PRESETS: dict[str, EnvConfig] = {
    "language_table": EnvConfig(),
    "emergent": EnvConfig(families=tasks.FAMILIES, scene=SceneConfig.preset("emergent")),
    "large_image": EnvConfig(image_size=(144, 192)),
}


@dataclass(frozen=True)
class SimState:
    """Privileged state for oracles and evaluators (``env.state``)."""

    scene: Scene  # current block poses and measured effector
    task: TaskSpec
    target: np.ndarray  # float64[2] effector setpoint
    step: int
    instruction: str


def parse_action(action) -> np.ndarray:
    """Action -> float64[2] delta in metres. Integers are "X Y" units (-10..10); floats are metres (|a| <= 0.1)."""
    if isinstance(action, (str, bytes)):
        raise TypeError(
            f"action must be numeric, shape (2,), got the string {action!r}; parse text with "
            "rt2.actions.ActionTokenizer.from_text or pass np.array([x, y])"
        )
    try:
        a = np.asarray(action)
    except Exception as e:  # ragged sequences and the like
        raise TypeError(f"action must be a numeric array of shape (2,), got {action!r}") from e
    if a.dtype.kind not in "iuf":
        raise TypeError(f"action must be integers (units) or floats (metres) of shape (2,), got dtype {a.dtype}")
    if a.shape != (2,):
        raise ValueError(f"action must have shape (2,) (dx, dy), got shape {a.shape}")
    if a.dtype.kind in "iu":
        if np.any(np.abs(a) > board.MAX_UNITS):
            raise ValueError(
                f"integer action {a.tolist()} out of range: 'X Y' units must be in -10..10 (1 unit = 0.01 m)"
            )
        return a.astype(np.float64) * board.UNIT_M
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action contains NaN or inf: {a.tolist()}")
    if np.any(np.abs(a) > board.MAX_DELTA_M + 1e-9):
        raise ValueError(
            f"float action {a.tolist()} exceeds 0.1 m per step: floats are metres. For 'X Y' units pass an integer "
            f"array, e.g. np.array({np.round(a).astype(int).tolist()})"
        )
    return a.astype(np.float64)


class TabletopEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": board.CONTROL_HZ}

    def __init__(self, config: EnvConfig | str | None = None, render_mode: str | None = None, **overrides):
        if isinstance(config, str):
            config = EnvConfig.preset(config)
        config = config or EnvConfig()
        if overrides:
            valid = {f.name for f in dataclasses.fields(EnvConfig)}
            bad = sorted(set(overrides) - valid)
            if bad:
                raise TypeError(f"unknown TabletopEnv option(s) {bad}; valid: {', '.join(sorted(valid))}")
            if isinstance(overrides.get("scene"), str):
                overrides["scene"] = SceneConfig.preset(overrides["scene"])
            config = dataclasses.replace(config, **overrides)
        if render_mode is not None:
            board.check_name("render mode", render_mode, tuple(self.metadata["render_modes"]))
        self.config = config
        self.render_mode = render_mode
        self._renderer = Renderer(config.image_size)
        self._video = None
        h, w = config.image_size
        img = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        lo = np.array([board.X_MIN, board.Y_MIN], np.float32)
        hi = np.array([board.X_MAX, board.Y_MAX], np.float32)
        spaces = {
            "image": img,
            "effector": gym.spaces.Box(lo - 0.05, hi + 0.05, dtype=np.float32),
            "target": gym.spaces.Box(lo, hi, dtype=np.float32),
            "instruction": gym.spaces.Text(max_length=512, charset=INSTRUCTION_CHARSET),
        }
        if config.two_frames:
            spaces["prev_image"] = img
        self.observation_space = gym.spaces.Dict(spaces)
        # Integer "X Y" units; float metres are accepted too (see parse_action).
        self.action_space = gym.spaces.Box(-board.MAX_UNITS, board.MAX_UNITS, (2,), np.int64)
        self._scene: Scene | None = None
        self._task: TaskSpec | None = None
        self._phys: PhysicsWorld | None = None

    # -- reset ---------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        bad = sorted(set(options) - set(RESET_OPTIONS))
        if bad:
            raise ValueError(f"unknown reset option(s) {bad}; valid: {', '.join(RESET_OPTIONS)}")
        _check_instruction(options.get("instruction"))
        rng = self.np_random
        language = board.check_name("language", options.get("language", self.config.language), instructions.LANGUAGES)
        split = board.check_name("split", options.get("split", self.config.split), instructions.SPLITS)
        spec: TaskSpec | None = options.get("task")
        if spec is not None and not isinstance(spec, TaskSpec):
            raise TypeError(f"options['task'] must be a rt2.sim.TaskSpec, got {type(spec).__name__}")
        family = spec.family if spec is not None else options.get("family")
        if family is None:
            family = self.config.families[int(rng.integers(len(self.config.families)))]
        board.check_name("family", family, tasks.FAMILIES)
        scene_cfg = options.get("scene_config", self.config.scene)
        if isinstance(scene_cfg, str):
            scene_cfg = SceneConfig.preset(scene_cfg)
        scene_cfg = _config_for(family, scene_cfg, spec)
        fixed: Scene | None = options.get("scene")

        for _attempt in range(100):
            if fixed is not None:
                scene = fixed
            else:
                required = () if spec is None else tuple(n for n in (spec.block, spec.target_block, *spec.avoid) if n)
                syms = tuple(s for s in (spec.symbol,) if s) if spec is not None else ()
                if spec is not None and spec.referent and ":" in spec.referent:
                    syms += (spec.referent.split(":")[1],)
                scene = sample_scene(scene_cfg, rng, required=required, required_symbols=syms)
            phys = PhysicsWorld(scene, self.config.substeps, walls=self.config.walls)
            if fixed is None:
                phys.settle()
                xy, yaw = phys.block_poses()
                scene = scene.moved(xy, yaw, scene.effector)
            if spec is not None:
                task = tasks.bind(spec, scene)
                if fixed is None and tasks.evaluate(task, scene)[0]:
                    continue
            else:
                task = tasks.sample_task(family, scene, rng)
                if task is None:
                    if fixed is not None:
                        raise ValueError(f"no valid {family} task on the given scene")
                    continue
            break
        else:
            raise RuntimeError(f"could not sample a valid {family} layout in 100 attempts; check the scene config")

        self._phys, self._scene, self._task = phys, scene, task
        self._target = np.asarray(scene.effector, np.float64)
        self._steps = 0
        instruction = options.get("instruction")
        # `is None`, not falsiness: an empty string is a caller's mistake, rejected in _check_instruction
        # rather than silently swapped for a generated instruction.
        if instruction is None:
            instruction = instructions.generate(task, scene, rng, language, split)
        self._instruction = instruction
        self._image = self._renderer.render(scene)
        self._prev = self._image
        success, dist = tasks.evaluate(task, scene)
        return self._obs(), self._info(success, dist, False)

    # -- step ----------------------------------------------------------------------------------------------
    def step(self, action):
        if self._phys is None:
            raise RuntimeError("call env.reset() before env.step()")
        delta = parse_action(action)
        want = self._target + delta
        target = np.array([np.clip(want[0], board.X_MIN, board.X_MAX), np.clip(want[1], board.Y_MIN, board.Y_MAX)])
        clipped = bool(np.any(target != want))
        self._target = target
        self._phys.step(target)
        xy, yaw = self._phys.block_poses()
        eff = self._phys.effector_xy()
        self._scene = self._scene.moved(xy, yaw, (float(eff[0]), float(eff[1])))
        self._steps += 1
        success, dist = tasks.evaluate(self._task, self._scene)
        self._prev = self._image
        self._image = self._renderer.render(self._scene)
        truncated = self._steps >= self.config.max_steps and not success
        return self._obs(), float(success), success, truncated, self._info(success, dist, clipped)

    def _obs(self) -> dict:
        obs = {
            "image": self._image,
            "effector": np.asarray(self._scene.effector, np.float32),
            "target": self._target.astype(np.float32),
            "instruction": self._instruction,
        }
        if self.config.two_frames:
            obs["prev_image"] = self._prev.copy()  # never alias an array returned by the previous call
        return obs

    def _info(self, success: bool, dist: float, clipped: bool) -> dict:
        return {
            "success": bool(success),
            "clipped": clipped,
            "task": self._task,
            "family": self._task.family,
            "distance": dist,
            "steps": self._steps,
            "instruction": self._instruction,
        }

    # -- privileged access and video -----------------------------------------------------------------------
    def world_state(self) -> Scene:
        """The current ``Scene`` (block poses, measured effector, symbols, background)."""
        if self._scene is None:
            raise RuntimeError("call env.reset() first")
        return self._scene

    @property
    def state(self) -> SimState:
        scene = self.world_state()
        return SimState(scene, self._task, self._target.copy(), self._steps, self._instruction)

    def render(self):
        """uint8[H+band, W, 3]: a large frame (``video_size``) with the instruction in a white band on top."""
        if self._video is None:
            self._video = Renderer(self.config.video_size)
        return overlay_text(self._video.render(self.world_state()), self._instruction)


def _check_instruction(instruction: object) -> None:
    """Reject a reset ``instruction`` that is not a non-empty string (None means "generate one")."""
    if instruction is None:
        return
    if not isinstance(instruction, str):
        raise ValueError(
            f"options['instruction'] must be a str, got {type(instruction).__name__} {instruction!r}; "
            "pass the text, or leave it out to have one generated from the task"
        )
    if not instruction.strip():
        raise ValueError(
            f"options['instruction'] is empty or whitespace ({instruction!r}); "
            "pass the text, or leave it out (or None) to have one generated from the task"
        )


def _config_for(family: str, cfg: SceneConfig, spec: TaskSpec | None) -> SceneConfig:
    """Families that need symbols get 4 (a config that already has symbols is kept)."""
    needs_symbols = family == "block2symbol" or (spec is not None and spec.goal == "block2symbol")
    if needs_symbols and cfg.n_symbols == 0:
        n_blocks = cfg.n_blocks if cfg.n_blocks is not None else min(6, len(board.check_block_set(cfg.block_set)))
        return dataclasses.replace(cfg, n_symbols=4, n_blocks=n_blocks)
    return cfg
