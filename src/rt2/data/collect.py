"""``rt2 collect``: scripted-oracle demonstrations in the tabletop world, written as a LeRobot v3.0 dataset.

    rt2 collect --episodes 20 --out demo_data                 # ~2-3 s wall (1.6 s collecting), 0.8 MB, 260 frames
    rt2 collect --episodes 200 --noise 0,1 --out lt_oracle    # ~13 s, 7.2 MB (2 shared cores, load ~6)
    rt2 collect --episodes 2000 --workers 2 --noise 0,1 --out lt_oracle_2k
    rt2 collect --episodes 500 --families all --scene emergent --language fr --out emergent_fr
    rt2 collect --episodes 20 --video --out demo_video         # camera as mp4 (LeRobot's default), needs rt2[video]

What each frame (row) holds, t = 0..T-1:

| column | type | meaning |
|---|---|---|
| observation.images.top | image uint8[H, W, 3] | the camera frame before action t (previous frame = previous row); with ``--video`` a video feature (mp4 under ``videos/``, not a column) |
| observation.state | float32[4] | effector x, y (measured) and target x, y (commanded setpoint), metres |
| observation.environment_state | float32[6] | effector, pushed block and goal x, y scaled to [-1, 1] over the board (``rt2.sim.tasks.grounding_state``): the auxiliary grounding target |
| action | float32[2] | the delta actually sent to the env, metres (= action.executed_int * 0.01) |
| action.executed_int | int64[2] | the executed "X Y" integers: oracle + DART noise |
| action.label_int | int64[2] | **the training label**: the clean oracle "X Y" for this state |
| next.reward / next.done / next.success | float32 / bool / bool | after executing action t |

With ``--noise 0`` the label equals the executed action. With DART noise (sigma in "X Y" units) the robot executes
the noisy action, so the data visits off-policy states, but the label stays the oracle's correction for the state
seen (Laskey et al. 2017); train on ``action.label_int``, not on ``action``.

Per episode (``meta/episodes``): ``success``, ``family``, ``task_spec`` (TaskSpec JSON; ``task_spec_from_json``),
``env_seed`` (``env.reset(seed=env_seed, options={"family": family})`` with the recorded env config rebuilds the
exact layout and task), ``attempt``, ``noise_units``. ``meta/rt2.json`` records the command's configuration.

Episodes are kept only when the oracle succeeds (``--keep-failures`` to keep all), like Language-Table's oracle
data: a failed demonstration is a bad label. Families are balanced: N episodes are split evenly across
``--families``. Attempt ``k`` of family ``f`` is seeded from ``(--seed, f, k)`` alone and kept episodes are taken
in attempt order, so the dataset is byte-for-byte the same for any ``--workers``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rt2.data.lerobot import Episode as LeRobotEpisode
from rt2.data.lerobot import LeRobotWriter, PreparedEpisode, VideoOptions, prepare_episode
from rt2.data.lerobot.video import CODECS
from rt2.data.progress import eta_progress
from rt2.data.robot_columns import GROUNDING_KEY
from rt2.sim import FAMILIES, LANGUAGES, LT_FAMILIES, SCENE_PRESETS, SPLITS, TaskSpec
from rt2.sim.board import MAX_UNITS, UNIT_M
from rt2.sim.tasks import grounding_state

ROBOT_TYPE = "rt2_tabletop"
FPS = 10


@dataclass(frozen=True)
class CollectConfig:
    """What to collect. Everything that changes the data is here (and in meta/rt2.json); workers are not."""

    episodes: int
    families: tuple[str, ...] = LT_FAMILIES
    seed: int = 0
    image_size: tuple[int, int] = (72, 96)
    noise: tuple[float, ...] = (0.0,)  # DART sigma in "X Y" units; attempt k uses noise[k % len(noise)]
    only_success: bool = True
    scene: str = "language_table"
    language: str = "en"
    split: str = "train"
    max_steps: int = 200
    video: str | None = None  # None: PNG images in the parquet; a codec name (rt2.data.lerobot.video.CODECS): mp4

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {self.episodes}")
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ValueError(
                f"unknown task famil{'y' if len(bad) == 1 else 'ies'} {bad}; valid: {', '.join(FAMILIES)} (or 'all')"
            )
        if len(set(self.families)) != len(self.families):
            raise ValueError(f"--families lists a family twice: {list(self.families)}")
        if len(self.image_size) != 2 or min(self.image_size) < 16 or max(self.image_size) > 1024:
            raise ValueError(f"--image-size must be HxW with sides in 16..1024, got {self.image_size}")
        if not self.noise or any(not 0.0 <= s <= MAX_UNITS for s in self.noise):
            raise ValueError(f"--noise sigmas must be in 0..{MAX_UNITS} 'X Y' units, got {list(self.noise)}")
        if self.scene not in SCENE_PRESETS:
            raise ValueError(f"unknown --scene {self.scene!r}; valid: {', '.join(SCENE_PRESETS)}")
        if self.language not in LANGUAGES or self.split not in SPLITS:
            raise ValueError(f"--language must be one of {LANGUAGES} and --split one of {SPLITS}")
        if self.max_steps < 1:
            raise ValueError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.video is not None:
            VideoOptions(self.video)  # ValueError naming the valid codecs

    def quotas(self) -> dict[str, int]:
        """Episodes per family: an even split, the first families taking the remainder."""
        q, r = divmod(self.episodes, len(self.families))
        return {f: q + (i < r) for i, f in enumerate(self.families)}


def features(image_size: tuple[int, int], video: bool = False) -> dict[str, dict[str, Any]]:
    """The dataset's features; ``video``: the camera as a video feature (LeRobot's default) instead of PNGs."""
    xy = ["x", "y"]
    return {
        "observation.images.top": {"dtype": "video" if video else "image", "shape": [*image_size, 3]},
        "observation.state": {
            "dtype": "float32",
            "shape": [4],
            "names": ["effector_x", "effector_y", "target_x", "target_y"],
        },
        GROUNDING_KEY: {
            "dtype": "float32",
            "shape": [6],
            "names": ["effector_x", "effector_y", "block_x", "block_y", "goal_x", "goal_y"],
        },
        "action": {"dtype": "float32", "shape": [2], "names": xy},
        "action.executed_int": {"dtype": "int64", "shape": [2], "names": xy},
        "action.label_int": {"dtype": "int64", "shape": [2], "names": xy},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
    }


def task_spec_to_json(spec: TaskSpec) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


def task_spec_from_json(text: str) -> TaskSpec:
    """Inverse of the ``task_spec`` episode column."""
    d = json.loads(text)
    return TaskSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def attempt_seeds(seed: int, family: str, k: int) -> tuple[int, int]:
    """(env seed, oracle noise seed) of attempt k of a family: independent of worker count and other families."""
    s = np.random.SeedSequence([seed, FAMILIES.index(family), k]).generate_state(2)
    return int(s[0]), int(s[1])


@dataclass(frozen=True)
class Attempt:
    family: str
    k: int
    success: bool
    length: int
    episode: PreparedEpisode | None  # None for a failure we are not keeping


# ---- one rollout (runs in a worker process when --workers > 1) ---------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(config: CollectConfig) -> None:
    from rt2.sim import EnvConfig, SceneConfig, TabletopEnv

    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts the pool down
    env_cfg = EnvConfig(
        image_size=tuple(config.image_size),
        max_steps=config.max_steps,
        two_frames=False,
        scene=SceneConfig.preset(config.scene),
        language=config.language,
        split=config.split,
    )
    feats = features(config.image_size, config.video is not None)
    _WORKER.update(config=config, env=TabletopEnv(env_cfg), features=feats)


def _rollout(job: tuple[str, int]) -> Attempt:
    from rt2.sim import ScriptedOracle

    family, k = job
    cfg: CollectConfig = _WORKER["config"]
    env = _WORKER["env"]
    env_seed, noise_seed = attempt_seeds(cfg.seed, family, k)
    sigma = cfg.noise[k % len(cfg.noise)]
    oracle = ScriptedOracle(noise_units=sigma, seed=noise_seed)
    obs, info = env.reset(seed=env_seed, options={"family": family})
    rows: dict[str, list] = {name: [] for name in _WORKER["features"]}
    done = False
    while not done:
        executed, label = oracle.act_dart(env)
        rows["observation.images.top"].append(obs["image"])
        rows["observation.state"].append(np.concatenate([obs["effector"], obs["target"]]))
        rows[GROUNDING_KEY].append(grounding_state(env.state.task, env.state.scene))
        obs, reward, terminated, truncated, info = env.step(executed)
        done = terminated or truncated
        rows["action"].append(executed * UNIT_M)
        rows["action.executed_int"].append(executed)
        rows["action.label_int"].append(label)
        rows["next.reward"].append(reward)
        rows["next.done"].append(done)
        rows["next.success"].append(info["success"])
    success, length = bool(info["success"]), len(rows["action"])
    if cfg.only_success and not success:
        return Attempt(family, k, False, length, None)
    meta = {
        "success": success,
        "family": family,
        "task_spec": task_spec_to_json(info["task"]),
        "env_seed": env_seed,
        "attempt": k,
        "noise_units": float(sigma),
    }
    ep = LeRobotEpisode(task=info["instruction"], frames={n: np.stack(v) for n, v in rows.items()}, metadata=meta)
    # PNG encoding and image stats happen here, in the worker, so the parent only appends bytes.
    return Attempt(family, k, success, length, prepare_episode(ep, _WORKER["features"]))


# ---- scheduling --------------------------------------------------------------------------------------------------
def _waves(config: CollectConfig, kept: dict[str, int], next_k: dict[str, int]) -> list[tuple[str, int]]:
    """The next wave of attempts: as many per family as it still needs, interleaved across families."""
    need = {f: q - kept[f] for f, q in config.quotas().items() if q > kept[f]}
    jobs = []
    for i in range(max(need.values(), default=0)):
        for f in config.families:
            if need.get(f, 0) > i:
                jobs.append((f, next_k[f] + i))
    for f, n in need.items():
        next_k[f] += n
    return jobs


def iter_attempts(config: CollectConfig, workers: int = 1) -> Iterator[Attempt]:
    """Every attempt, in the deterministic order episodes are kept; stops once every family has its quota."""
    kept = dict.fromkeys(config.families, 0)
    next_k = dict.fromkeys(config.families, 0)
    max_attempts = 20 * config.episodes + 100
    pool = None
    if workers > 1:
        # spawn, not fork: the parent runs rich's refresh thread. The executor (unlike multiprocessing.Pool)
        # raises BrokenProcessPool when a worker dies instead of respawning it forever.
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config,))
    else:
        _init_worker(config)
    try:
        while jobs := _waves(config, kept, next_k):
            if sum(next_k.values()) > max_attempts:
                raise RuntimeError(f"the oracle keeps failing (kept per family {kept} of {config.quotas()} after "
                                   f"{sum(next_k.values()) - len(jobs)} attempts); lower --noise, raise --max-steps, "
                                   "or pass --keep-failures")  # fmt: skip
            results = pool.map(_rollout, jobs) if pool else map(_rollout, jobs)  # both yield in job order
            for attempt in results:
                if attempt.episode is not None and kept[attempt.family] < config.quotas()[attempt.family]:
                    kept[attempt.family] += 1
                yield attempt
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # running rollouts take < 1 s; queued ones are dropped


# ---- the command ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CollectSummary:
    path: Path
    episodes: int
    frames: int
    attempts: dict[str, int]
    successes: dict[str, int]
    seconds: float
    bytes_on_disk: int


def collect(
    config: CollectConfig,
    out: str | Path,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    data_files_size_in_mb: float = 100,
) -> CollectSummary:
    """Collect ``config.episodes`` oracle episodes into a LeRobot v3.0 dataset at ``out`` (atomic)."""
    from rich.console import Console

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    t0 = time.perf_counter()
    quotas = config.quotas()
    kept = dict.fromkeys(config.families, 0)
    attempts, successes = dict.fromkeys(config.families, 0), dict.fromkeys(config.families, 0)
    extra = {"generator": "rt2 collect", "config": dataclasses.asdict(config), "quotas": quotas,
             "training_label": "action.label_int", "action_units_m": UNIT_M}  # fmt: skip
    with (
        eta_progress(
            "[bold]collect", note="{task.fields[note]}", console=Console(stderr=True), disable=not progress
        ) as bar,
        LeRobotWriter(
            out,
            features(config.image_size, config.video is not None),
            fps=FPS,
            robot_type=ROBOT_TYPE,
            overwrite=overwrite,
            data_files_size_in_mb=data_files_size_in_mb,
            extra_meta=extra,
            video=VideoOptions(config.video) if config.video is not None else None,
        ) as writer,  # fmt: skip
    ):
        bar_task = bar.add_task("collect", total=config.episodes, note="")
        for a in iter_attempts(config, workers):
            attempts[a.family] += 1
            successes[a.family] += a.success
            if a.episode is not None and kept[a.family] < quotas[a.family]:
                kept[a.family] += 1
                writer.add_episode(a.episode)
            n_att = sum(attempts.values())
            note = f"{n_att} attempts, {sum(successes.values()) / n_att:.0%} success, {writer.num_frames} frames"
            bar.update(bar_task, completed=writer.num_episodes, note=note)
        writer.extra_meta.update(attempts=attempts, successes=successes)
        frames = writer.num_frames
    path = Path(out)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return CollectSummary(path, config.episodes, frames, attempts, successes, time.perf_counter() - t0, size)


def _image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 72x96 (HxW), got {text!r}") from None
    return h, w


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0,1.5, got {text!r}") from None


def _families(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return FAMILIES
    return tuple(f.strip() for f in text.split(",") if f.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--episodes", type=int, required=True, help="episodes in the dataset (split evenly over families)"
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create (LeRobot v3.0)")
    parser.add_argument(
        "--families",
        type=_families,
        default=",".join(LT_FAMILIES),
        help=f"comma list or 'all'; valid: {','.join(FAMILIES)}",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="base seed; attempt k of a family is seeded from (seed, family, k)"
    )
    parser.add_argument("--image-size", type=_image_size, default="72x96", help="HxW of observation.images.top")
    parser.add_argument(
        "--noise",
        type=_floats,
        default=(0.0,),
        help="DART noise sigma(s) in 'X Y' units, e.g. 0,1 (cycled over attempts)",
    )
    parser.add_argument(
        "--keep-failures", action="store_true", help="also keep episodes the oracle failed (default: successes only)"
    )
    parser.add_argument("--scene", default="language_table", choices=SCENE_PRESETS, help="scene preset")
    parser.add_argument("--language", default="en", choices=LANGUAGES, help="instruction language")
    parser.add_argument("--split", default="train", choices=SPLITS, help="instruction phrasing set")
    parser.add_argument("--max-steps", type=int, default=200, help="episode step cap (10 Hz)")
    parser.add_argument("--workers", type=int, default=1, help="rollout processes (result is identical for any value)")
    parser.add_argument("--file-size-mb", type=float, default=100, help="start a new data parquet file past this size")
    parser.add_argument(
        "--video",
        nargs="?",
        const="h264",
        choices=sorted(CODECS),
        help="store the camera as video (mp4 under videos/, LeRobot's default) instead of PNGs in the parquet; "
        "h264 (default): near-lossless (max pixel error 2/255); libsvtav1: LeRobot's codec, 4:2:0 (blurs small "
        'blocks\' colour edges). Needs PyAV: pip install "rt2[video]"',
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so `kill` cleans up like Ctrl-C: temp folder removed, workers stopped


def run(args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        config = CollectConfig(
            episodes=args.episodes, families=tuple(args.families), seed=args.seed, image_size=args.image_size,
            noise=tuple(args.noise), only_success=not args.keep_failures, scene=args.scene, language=args.language,
            split=args.split, max_steps=args.max_steps, video=args.video,
        )  # fmt: skip
        s = collect(config, args.out, workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress,
                    data_files_size_in_mb=args.file_size_mb)  # fmt: skip
    except (ValueError, FileExistsError, ImportError) as e:
        print(f"rt2 collect: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rt2 collect: interrupted; nothing was written to {args.out}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    rates = ", ".join(f"{f} {s.successes[f]}/{s.attempts[f]}" for f in config.families)
    print(
        f"wrote {s.episodes} episodes, {s.frames} frames to {s.path} ({s.bytes_on_disk / 2**20:.1f} MB) in {s.seconds:.1f} s"
    )
    print(f"oracle success (successes/attempts): {rates}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - `python -m rt2.data.collect`
    parser = argparse.ArgumentParser(prog="rt2 collect", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
