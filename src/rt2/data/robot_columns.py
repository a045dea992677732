"""Any robot's LeRobot v3.0 dataset -> :class:`rt2.data.robot.RobotEpisode` s and the ActionTokenizer they need.

``rt2 collect`` datasets (``info.json`` ``robot_type`` "rt2_tabletop") keep their exact path: camera
``observation.images.top``, the integer labels ``action.label_int`` written verbatim as ``"X Y"`` (Language-Table
space, -10..10; ``n_bins``/``norm`` do not apply), the effector from ``observation.state`` and the TaskSpec from the episode metadata. Any other
dataset is mapped by :class:`RobotColumns`::

    data = open_robot_dataset("data/my_arm", RobotColumns(image_keys=("observation.images.wrist",)))
    data.episodes        # list[RobotEpisode], labels = the action bins
    data.tokenizer       # ActionTokenizer: 256 uniform bins between each dimension's q01 and q99 (OpenVLA style)
    data.info            # JSON: cameras, action key, clip rate per dimension, norm-stats key, ...

How a foreign action becomes text (RT-2 / OpenVLA): the ``action_key`` column float[N, D] gives an
:class:`ActionSpace` (dimension names from ``info.json`` ``features[action_key].names`` when present, else ``a0``
.. ``a{D-1}``; bounds = the column's min/max) and exact :class:`NormStats` over all frames; each dimension is
cut into ``n_bins`` uniform bins between its q01 and q99 (``norm="min_max"``: min and max), so an action is D
integers ``0..n_bins-1``. Values outside q01..q99 are clipped to the edge bin; the tokenizer counts them and the
rates go into ``info`` (``clip_rate`` ~0.02 is what q01/q99 means; much more says the stats do not fit).
The NormStats travel inside the checkpoint, so ``Policy.predict_action`` returns the robot's own units.

Cameras: ``image_keys=()`` picks the dataset's only image feature; with several, name them (the error lists
them). With K cameras an observation is ``history x K`` images (see ``rt2.data.robot``). The instruction is each
episode's task string from ``meta/tasks.parquet``; ``success`` comes from the episode metadata when present.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rt2.actions import ActionSpace, ActionTokenizer, Dim, NormStats
from rt2.data.robot import RobotEpisode

TABLETOP_ROBOT_TYPE = "rt2_tabletop"  # rt2.data.collect.ROBOT_TYPE (not imported: that pulls in the simulator)
TABLETOP_LABEL_KEY = "action.label_int"
TABLETOP_STATE_KEY = "observation.state"
GROUNDING_KEY = "observation.environment_state"  # float32[6] grounding target (rt2.sim.tasks.grounding_state)
NORMS: tuple[str, ...] = ("q01_q99", "min_max")
# q01/q99 clips ~2 % by construction (at least 2 of N values per dimension: the min and the max); past this
# the stats do not describe the actions.
CLIP_WARN_RATE = 0.05


@dataclass(frozen=True)
class RobotColumns:
    """Which columns of a LeRobot dataset are the robot's cameras and actions, and how actions become integers.

    image_keys: image features, in camera order (``()``: the dataset's only image feature).
    action_key: numeric feature float[D] (``None``: ``action.label_int`` for ``rt2 collect`` data, else
    ``action``). On tabletop data integer columns (``action.label_int``, ``action.executed_int``) are the
    ``"X Y"`` integers, written verbatim; every other action column is binned.
    state_key: tabletop only, the column whose first two values are the effector's board position in metres
    (the ``aux_effector`` question); ``None`` picks ``observation.state`` there. Other robots' state is not a
    model input (RT-2 policies see images and text), so it must stay ``None`` for them.
    n_bins / norm: bins per continuous dimension and the range they span ("q01_q99" or "min_max").
    """

    image_keys: tuple[str, ...] = ()
    action_key: str | None = None
    state_key: str | None = None
    n_bins: int = 256
    norm: str = "q01_q99"

    def __post_init__(self) -> None:
        keys = (self.image_keys,) if isinstance(self.image_keys, str) else tuple(self.image_keys)
        if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
            raise ValueError(f"image_keys must be distinct non-empty feature names, got {self.image_keys!r}")
        object.__setattr__(self, "image_keys", keys)
        for name in ("action_key", "state_key"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v):
                raise ValueError(f"{name} must be a feature name or None, got {v!r}")
        if not isinstance(self.n_bins, int) or isinstance(self.n_bins, bool) or not 2 <= self.n_bins <= 256:
            raise ValueError(f"n_bins must be an int in 2..256 (one text token per bin), got {self.n_bins!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")


@dataclass(frozen=True)
class RobotData:
    """Episodes ready for ``RobotActions`` / ``RobotAux``, the ActionTokenizer their labels were made with, the
    resolved columns, the NormStats key for the checkpoint (None on the tabletop path) and a JSON ``info``."""

    episodes: list[RobotEpisode]
    tokenizer: ActionTokenizer
    columns: RobotColumns
    norm_stats_key: str | None
    tabletop: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_cameras(self) -> int:
        return len(self.columns.image_keys)

    def texts(self) -> list[str]:
        """Every distinct instruction (for training a fresh text tokenizer)."""
        return sorted({e.instruction for e in self.episodes})


def _dim_names(key: str, ft: dict[str, Any], d: int) -> tuple[str, ...]:
    """Names from ``features[key].names`` (a list, or LeRobot v2's ``{"motors": [...]}``), made token-safe."""
    raw = ft.get("names")
    if isinstance(raw, dict) and len(raw) == 1:
        raw = next(iter(raw.values()))
    if not isinstance(raw, (list, tuple)) or len(raw) != d or not all(isinstance(n, str) and n.strip() for n in raw):
        return tuple(f"a{j}" for j in range(d))
    names = [re.sub(r"\s+", "_", n.strip()) for n in raw]
    return tuple(n if names.count(n) == 1 else f"{n}_{j}" for j, n in enumerate(names))


def action_tokenizer_for(
    values: np.ndarray, names: tuple[str, ...], n_bins: int = 256, norm: str = "q01_q99", name: str = "custom"
) -> ActionTokenizer:
    """ActionTokenizer for actions float[N, D]: continuous dims bounded by min/max, bins over q01..q99."""
    stats = NormStats.from_actions(values, names=names)
    dims = []
    for j, n in enumerate(names):
        lo, hi = stats.min[j], stats.max[j]
        if hi - lo < 1e-9:  # a constant dimension (e.g. an unused gripper): any small interval around it
            eps = max(1e-3, 1e-3 * abs(lo))
            lo, hi = lo - eps, hi + eps
        dims.append(Dim(n, low=lo, high=hi))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant dimensions fall back to the Dim bounds; reported in info
        return ActionTokenizer(ActionSpace(tuple(dims), name=name), stats=stats, n_bins=n_bins, mode=norm)


def _resolve_images(ds: Any, cols: RobotColumns, tabletop: bool) -> tuple[str, ...]:
    where = f"{ds.root}/meta/info.json"
    if not cols.image_keys:
        if len(ds.image_keys) == 1:
            return (ds.image_keys[0],)
        if tabletop and "observation.images.top" in ds.image_keys:
            return ("observation.images.top",)
        if not ds.image_keys:
            raise ValueError(
                f"{where} declares no image feature (features: {sorted(ds.features)}); RT-2 needs a camera"
            )
        raise ValueError(
            f"{where} has {len(ds.image_keys)} image features {ds.image_keys}; choose the camera(s) with "
            "--image-key KEY (repeat it for several cameras, in the order the model should see them)"
        )
    for k in cols.image_keys:
        if k not in ds.image_keys:
            what = f"is a {ds.features[k]['dtype']} feature, not an image" if k in ds.features else "does not exist"
            raise ValueError(f"{where}: image key {k!r} {what}; the dataset's image features are {ds.image_keys}")
    return cols.image_keys


def _resolve_action(ds: Any, cols: RobotColumns, tabletop: bool, label_key: str) -> str:
    key = cols.action_key or (label_key if tabletop else "action")
    numeric = sorted(k for k, ft in ds.features.items() if ft["dtype"] not in ("image", "video"))
    if key not in ds.features or key not in numeric:
        raise ValueError(
            f"{ds.root}/meta/info.json has no numeric feature {key!r} to use as the action; choose one with "
            f"--action-key KEY (numeric features: {numeric})"
        )
    return key


def _read_rt2_meta(root: Path) -> dict[str, Any]:
    path = root / "meta" / "rt2.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def open_robot_dataset(path: str | os.PathLike[str], columns: RobotColumns | None = None) -> RobotData:
    """Read a LeRobot v3.0 dataset into episodes + ActionTokenizer (images decoded once). See the module doc."""
    from rt2.data.lerobot import LeRobotDatasetReader

    cols = columns or RobotColumns()
    ds = LeRobotDatasetReader(path)
    tabletop = ds.info.get("robot_type") == TABLETOP_ROBOT_TYPE
    label_key = str(_read_rt2_meta(ds.root).get("training_label", TABLETOP_LABEL_KEY))
    image_keys = _resolve_images(ds, cols, tabletop)
    action_key = _resolve_action(ds, cols, tabletop, label_key)
    verbatim = tabletop and ds.features[action_key]["dtype"].startswith(("int", "uint"))  # "X Y" integers
    state_key = cols.state_key or (TABLETOP_STATE_KEY if tabletop else None)
    if state_key is not None and not tabletop:
        raise ValueError(
            f"state_key={state_key!r}: {ds.root} is not rt2 tabletop data, and only the tabletop's effector is used "
            "(RT-2 policies see images and text, not proprioception); leave state_key None"
        )
    if state_key is not None and (state_key not in ds.features or ds.features[state_key]["shape"][0] < 2):
        raise ValueError(f"{ds.root}/meta/info.json: state key {state_key!r} is missing or has fewer than 2 values")
    # The auxiliary grounding target (rt2 collect writes it; older tabletop data and other robots lack it).
    has_ground = tabletop and GROUNDING_KEY in ds.features
    ds_name = ds.root.resolve().name
    values = np.asarray(ds.column(action_key), dtype=np.float64).reshape(len(ds), -1)
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise ValueError(f"{ds.root}: action column {action_key!r} has non-finite values (first at frame {row})")
    info: dict[str, Any] = {
        "dataset": str(ds.root),
        "robot_type": ds.info.get("robot_type"),
        "image_keys": list(image_keys),
        "action_key": action_key,
        "episodes_in_dataset": ds.num_episodes,
        "grounding": GROUNDING_KEY if has_ground else None,
    }
    if verbatim:
        tok, stats_key = ActionTokenizer(ActionSpace.language_table()), None
        try:
            labels_all = tok.check_bins(ds.column(action_key).astype(np.int64).reshape(len(ds), -1))
        except ValueError as e:
            raise ValueError(f"{ds.root}: integer action column {action_key!r}: {e}") from None
        info["action_tokens"] = f"{action_key} integers verbatim (Language-Table space -10..10)"
    else:
        names = _dim_names(action_key, ds.features[action_key], values.shape[1])
        tok = action_tokenizer_for(values, names, cols.n_bins, cols.norm, name=f"{ds_name}:{action_key}")
        stats_key = f"{ds_name}/{action_key}"
        labels_all = tok.encode(values)
        clip = tok.clip_stats
        info.update(
            action_tokens=f"{cols.n_bins} uniform bins over {cols.norm} of {action_key}",
            action_names=list(names),
            norm_stats_key=stats_key,
            clip_rate=round(clip.rate, 6),
            clip_rate_per_dim={k: round(v, 6) for k, v in clip.per_dim().items()},
            constant_dims=list(tok.fallback_dims),
        )
        if clip.rate > max(CLIP_WARN_RATE, 2.5 / len(values)):
            warnings.warn(
                f"{clip.rate:.1%} of {ds.root}'s {action_key!r} values fall outside {cols.norm} and are clipped to "
                f"the edge bins (per dimension: {info['clip_rate_per_dim']}); consider norm='min_max'",
                stacklevel=2,
            )
        tok.reset_clip_stats()  # the counters now describe inference only
    if tabletop:
        from rt2.data.collect import task_spec_from_json  # imports the simulator: tabletop data only
    episodes: list[RobotEpisode] = []
    task_index = ds.column("task_index")
    for e, meta in enumerate(ds.episodes()):
        spec_json = meta.get("task_spec") if tabletop else None
        # An episode whose task changes mid-way (LeRobot allows it) becomes one segment per task.
        r = ds.episode_range(e)
        cuts = [r.start, *(r.start + 1 + np.flatnonzero(np.diff(task_index[r.start : r.stop]))), r.stop]
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            # episode_frames decodes a video feature's episode once (one seek, one pass), PNGs frame by frame.
            cams = [ds.episode_frames(k, e)[a - r.start : b - r.start] for k in image_keys]
            eff = np.asarray(ds.column(state_key)[a:b], dtype=np.float64)[:, :2] if state_key else None
            ground = np.asarray(ds.column(GROUNDING_KEY)[a:b], dtype=np.float32) if has_ground else None
            episodes.append(
                RobotEpisode(
                    images=cams[0],
                    labels=labels_all[a:b],
                    effector=eff,
                    instruction=ds.tasks[int(task_index[a])],
                    success=bool(meta.get("success", True)),
                    spec=task_spec_from_json(spec_json) if spec_json else None,
                    family=str(meta.get("family", "")),
                    extra_images=tuple(cams[1:]),
                    grounding=ground,
                )
            )
    ds.close()
    info["episodes"] = len(episodes)  # > episodes_in_dataset when tasks change inside an episode
    resolved = RobotColumns(image_keys, action_key, state_key, cols.n_bins, cols.norm)
    return RobotData(episodes, tok, resolved, stats_key, tabletop, info)
