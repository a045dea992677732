"""LeRobotDataset v3.0 on disk: paths, features and their arrow/``datasets`` encodings, and the checks of meta/.

Layout (identical to LeRobot ``codebase_version`` "v3.0"; image features are PNG in the data parquet, video
features mp4 files under ``videos/``, see ``rt2.data.lerobot.video``)::

    meta/info.json                              codebase_version, fps, features, totals, path templates, splits
    meta/stats.json                             per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                          task (str, the pandas index) -> task_index (int64)
    meta/episodes/chunk-000/file-000.parquet    one row per episode: episode_index, tasks, length,
                                                data/chunk_index, data/file_index, dataset_from_index,
                                                dataset_to_index, meta/episodes/{chunk,file}_index,
                                                stats/{feature}/{stat}, plus caller metadata columns
    data/chunk-000/file-000.parquet             one row per frame, one row group per episode; a new file
                                                starts once a file would pass ``data_files_size_in_mb``
    videos/<key>/chunk-000/file-000.mp4         video features only (not parquet columns): episodes back to
                                                back; meta/episodes has videos/<key>/{chunk_index, file_index,
                                                from_timestamp, to_timestamp}; info.json features[key].info
                                                the codec

Column encodings follow Hugging Face ``datasets`` (which LeRobot's loader uses): a shape-(1,) feature is a
scalar column, a shape-(n,) feature a ``fixed_size_list<n>``, an ``image`` feature a
``struct{bytes: binary (PNG), path: string}``; the ``datasets.Features`` JSON is in the schema metadata under
``huggingface`` so ``datasets.Dataset.from_parquet`` decodes images without being told.

The writer (``rt2.data.lerobot.writer``) and the reader (``rt2.data.lerobot.reader``) share this module, so what
one writes is exactly what the other checks; ``rt2.data.lerobot`` is the public import path for all of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNK_SIZE = 1000  # max files per chunk directory (LeRobot's default)
DEFAULT_DATA_FILE_SIZE_IN_MB = 100  # a data parquet file rolls over past this size (LeRobot's default)
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"
# Added to every dataset by the writer, after the caller's features (LeRobot's DEFAULT_FEATURES, same order).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
NUMERIC_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
PNG_COMPRESSION = 3  # cv2 level 0-9: 3 is ~2x faster than 9 for a few % more bytes on rendered scenes
CORE_EPISODE_COLUMNS = (
    "episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
    "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index",
)  # fmt: skip
REQUIRED_INFO = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks", "data_path")
REQUIRED_EPISODE_COLUMNS = CORE_EPISODE_COLUMNS[:7]
CAMERA_DTYPES = ("image", "video")  # uint8[H, W, 3] frames: PNG in parquet, or mp4 under videos/
VIDEO_EPISODE_FIELDS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


def video_columns(key: str) -> list[str]:
    """The ``meta/episodes`` columns that locate video feature ``key``: ``videos/<key>/chunk_index`` etc."""
    return [f"videos/{key}/{f}" for f in VIDEO_EPISODE_FIELDS]


def arrow_type(ft: Mapping[str, Any]) -> pa.DataType:
    """The arrow type ``datasets`` uses for a LeRobot feature (image struct, scalar, or fixed-size list)."""
    if ft["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    scalar = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    shape = list(ft["shape"])
    return scalar if shape == [1] else pa.list_(scalar, int(shape[0]))


def hf_feature(ft: Mapping[str, Any]) -> dict[str, Any]:
    """``datasets.Features`` JSON of one feature ("Sequence" is read by datasets 3.x and 4.x alike)."""
    if ft["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": ft["dtype"], "_type": "Value"}
    if list(ft["shape"]) == [1]:
        return value
    return {"feature": value, "length": int(ft["shape"][0]), "_type": "Sequence"}


def validate_features(features: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Normalize a caller's feature dict (``name -> {dtype, shape, names}``); raise on what we cannot store."""
    out: dict[str, dict[str, Any]] = {}
    for name, ft in features.items():
        if "/" in name:
            raise ValueError(f"feature name {name!r} contains '/', which LeRobot reserves for stats keys")
        if name in DEFAULT_FEATURES:
            raise ValueError(f"feature {name!r} is added by the writer; do not pass it")
        dtype, shape = ft.get("dtype"), [int(s) for s in ft.get("shape", ())]
        if dtype in CAMERA_DTYPES:
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"{dtype} feature {name!r} needs shape [H, W, 3], got {shape}")
            names = ["height", "width", "channels"]
        elif dtype in NUMERIC_DTYPES:
            if len(shape) != 1 or shape[0] < 1:
                raise ValueError(f"feature {name!r}: only 1-D shapes like [4] are supported, got {shape}")
            names = ft.get("names")
            if names is not None and len(names) != shape[0]:
                raise ValueError(f"feature {name!r}: {len(names)} names for shape {shape}")
        else:
            raise ValueError(f"feature {name!r} has dtype {dtype!r}; use 'image', 'video' or one of {NUMERIC_DTYPES}")
        out[name] = {"dtype": dtype, "shape": shape, "names": list(names) if names is not None else None}
    if not out:
        raise ValueError("no features given; pass at least one, e.g. {'action': {'dtype': 'float32', 'shape': [2]}}")
    return out


# ---- reading meta/ back ----------------------------------------------------------------------------------------
class DatasetFormatError(ValueError):
    """A dataset on disk is not a valid LeRobot v3.0 dataset; the message names the file and the field."""


def format_error(root: Path, rel: str, msg: str) -> DatasetFormatError:
    """The error for file ``rel`` of the dataset at ``root``: the message starts with the file's path."""
    return DatasetFormatError(f"{root / rel}: {msg}")


def read_parquet(path: Path, **kwargs: Any) -> pa.Table:
    """``pq.read_table(path)``, with an unreadable file reported as a DatasetFormatError that names it.

    The trap: a truncated or corrupt parquet (an interrupted copy, a full disk) raises a bare
    ``pyarrow.ArrowInvalid`` ("magic bytes not found") that says neither which file nor what to do.
    """
    try:
        return pq.read_table(path, **kwargs)
    except (FileNotFoundError, PermissionError):
        raise  # the file system's own message is the right one; the bytes were never read
    except (pa.ArrowException, OSError) as e:
        # ArrowInvalid for a lost footer; corrupt pages ("Couldn't deserialize thrift", bad snappy data) come as a
        # plain OSError, which is what pyarrow's ArrowIOError is.
        raise DatasetFormatError(
            f"{path}: not a readable parquet file ({e}); it is truncated or corrupt. Re-collect the dataset "
            "(`rt2 collect --out <dir> --overwrite`) or re-convert it from its source"
        ) from None


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json``, checked: the fields a v3.0 reader needs, image/numeric features only, LeRobot's defaults."""
    path = root / INFO_PATH
    if not path.is_file():
        raise format_error(
            root, INFO_PATH, f"missing; {root} is not a LeRobot v3.0 dataset (write one with `rt2 collect`)"
        )
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise format_error(root, INFO_PATH, f"not valid JSON ({e})") from None
    missing = [k for k in REQUIRED_INFO if k not in info]
    if missing:
        raise format_error(root, INFO_PATH, f"missing field(s) {missing}")
    if not str(info["codebase_version"]).startswith("v3."):
        raise format_error(
            root,
            INFO_PATH,
            f"field 'codebase_version' is {info['codebase_version']!r}; this reader needs "
            "'v3.0' (convert older datasets with LeRobot's convert_dataset_v21_to_v30)",
        )
    if not isinstance(info["fps"], (int, float)) or info["fps"] <= 0:
        raise format_error(root, INFO_PATH, f"field 'fps' must be a positive number, got {info['fps']!r}")
    feats = info["features"]
    if not isinstance(feats, dict):
        raise format_error(root, INFO_PATH, "field 'features' must be an object")
    for name, ft in feats.items():
        if not isinstance(ft, dict) or "dtype" not in ft or not isinstance(ft.get("shape"), list):
            raise format_error(root, INFO_PATH, f"features[{name!r}] needs 'dtype' and a 'shape' list, got {ft!r}")
        if ft["dtype"] not in CAMERA_DTYPES and (ft["dtype"] not in NUMERIC_DTYPES or len(ft["shape"]) != 1):
            raise format_error(
                root, INFO_PATH, f"features[{name!r}]: unsupported dtype/shape {ft['dtype']}{ft['shape']}"
            )
        if ft["dtype"] in CAMERA_DTYPES:
            frame_hw(ft, lambda msg, name=name: format_error(root, INFO_PATH, f"features[{name!r}]: {msg}"))
    missing = [k for k in DEFAULT_FEATURES if k not in feats]
    if missing:
        raise format_error(root, INFO_PATH, f"field 'features' lacks the required LeRobot feature(s) {missing}")
    try:  # a template with other placeholders would otherwise fail later as a bare KeyError
        str(info["data_path"]).format(chunk_index=0, file_index=0)
    except (KeyError, IndexError, ValueError) as e:
        raise format_error(
            root,
            INFO_PATH,
            f"field 'data_path' {info['data_path']!r} is not a template over {{chunk_index}} and {{file_index}} "
            f"({type(e).__name__}: {e}); LeRobot v3.0 uses {DATA_PATH!r}",
        ) from None
    if any(ft["dtype"] == "video" for ft in feats.values()):
        try:
            str(info.get("video_path")).format(video_key="k", chunk_index=0, file_index=0)
            ok = isinstance(info.get("video_path"), str)
        except (KeyError, IndexError, ValueError):
            ok = False
        if not ok:
            raise format_error(
                root,
                INFO_PATH,
                f"field 'video_path' {info.get('video_path')!r} must be a template over {{video_key}}, "
                f"{{chunk_index}} and {{file_index}} when there are video features; LeRobot v3.0 uses {VIDEO_PATH!r}",
            )
    return info


def frame_hw(ft: Mapping[str, Any], error: Any = ValueError) -> tuple[int, int]:
    """(H, W) of an image/video feature: shape [H, W, 3], or [3, H, W] with names channels-first (older LeRobot
    conversions write video shapes that way). ``error(msg)`` builds the exception."""
    shape, names = list(ft["shape"]), ft.get("names")
    if len(shape) == 3 and shape[2] == 3:
        return int(shape[0]), int(shape[1])
    channels_first = isinstance(names, list) and bool(names) and names[0] in ("channels", "channel")
    if ft["dtype"] == "video" and len(shape) == 3 and shape[0] == 3 and channels_first:
        return int(shape[1]), int(shape[2])
    raise error(f"{ft['dtype']} shape must be [H, W, 3], got {shape}")


def read_tasks(root: Path, info: Mapping[str, Any]) -> list[str]:
    """``meta/tasks.parquet`` as a list indexed by task_index, checked against ``info``."""
    path = root / TASKS_PATH
    if not path.is_file():
        raise format_error(root, TASKS_PATH, "missing (task strings -> task_index)")
    t = read_parquet(path)
    name = "task" if "task" in t.column_names else "__index_level_0__"
    if name not in t.column_names or "task_index" not in t.column_names:
        raise format_error(root, TASKS_PATH, f"needs columns 'task' and 'task_index', has {t.column_names}")
    tasks, idx = t.column(name).to_pylist(), t.column("task_index").to_pylist()
    if sorted(idx) != list(range(len(idx))):
        raise format_error(
            root, TASKS_PATH, f"field 'task_index' must be 0..{len(idx) - 1} without gaps, got {sorted(idx)[:10]}"
        )
    if len(tasks) != info["total_tasks"]:
        raise format_error(
            root, TASKS_PATH, f"has {len(tasks)} tasks but meta/info.json total_tasks is {info['total_tasks']}"
        )
    out = [""] * len(tasks)
    for task, i in zip(tasks, idx, strict=True):
        out[i] = task
    return out


def read_episodes(root: Path, info: Mapping[str, Any]) -> pa.Table:
    """All ``meta/episodes`` parquet files as one table; episodes in order, covering every frame exactly once."""
    paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not paths:
        raise format_error(root, "meta/episodes", "no episode metadata files (expected chunk-000/file-000.parquet)")
    tables = []
    for p in paths:
        t = read_parquet(p)
        videos = [c for k, ft in info["features"].items() if ft["dtype"] == "video" for c in video_columns(k)]
        missing = [c for c in (*REQUIRED_EPISODE_COLUMNS, *videos) if c not in t.column_names]
        if missing:
            raise DatasetFormatError(f"{p}: missing column(s) {missing}")
        tables.append(t)
    table = pa.concat_tables(tables, promote_options="permissive")
    rel = "meta/episodes"
    ep_idx = table.column("episode_index").to_pylist()
    if ep_idx != list(range(len(ep_idx))):
        raise format_error(
            root, rel, f"field 'episode_index' must be 0..{len(ep_idx) - 1} in order, got {ep_idx[:10]}..."
        )
    if len(ep_idx) != info["total_episodes"]:
        raise format_error(
            root, rel, f"{len(ep_idx)} episodes but meta/info.json total_episodes is {info['total_episodes']}"
        )
    start = 0
    for e, fr, to, n in zip(
        ep_idx,
        *(table.column(c).to_pylist() for c in ("dataset_from_index", "dataset_to_index", "length")),
        strict=True,
    ):
        if fr != start or to - fr != n or n < 1:
            raise format_error(
                root,
                rel,
                f"episode {e}: dataset_from_index={fr}, dataset_to_index={to}, length={n}; "
                f"expected from={start} and to-from=length>=1 (index gap or overlap)",
            )
        start = to
    if start != info["total_frames"]:
        raise format_error(
            root, rel, f"episodes cover {start} frames but meta/info.json total_frames is {info['total_frames']}"
        )
    return table


def read_stats(root: Path) -> dict[str, dict[str, np.ndarray]] | None:
    """``meta/stats.json`` as numpy arrays, or None when the dataset has none (optional in LeRobot too)."""
    path = root / STATS_PATH
    if not path.is_file():
        return None  # optional in LeRobot too
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise format_error(root, STATS_PATH, f"not valid JSON ({e})") from None
    return {k: {s: np.asarray(v) for s, v in st.items()} for k, st in raw.items()}
