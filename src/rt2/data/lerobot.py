"""LeRobotDataset v3.0 on disk: an atomic writer and a validating, lazily-decoding reader.

Layout (identical to LeRobot ``codebase_version`` "v3.0" with images stored in parquet, no videos)::

    meta/info.json                              codebase_version, fps, features, totals, path templates, splits
    meta/stats.json                             per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                          task (str, the pandas index) -> task_index (int64)
    meta/episodes/chunk-000/file-000.parquet    one row per episode: episode_index, tasks, length,
                                                data/chunk_index, data/file_index, dataset_from_index,
                                                dataset_to_index, meta/episodes/{chunk,file}_index,
                                                stats/{feature}/{stat}, plus caller metadata columns
    data/chunk-000/file-000.parquet             one row per frame, one row group per episode; a new file
                                                starts once a file would pass ``data_files_size_in_mb``

Column encodings follow Hugging Face ``datasets`` (which LeRobot's loader uses): a shape-(1,) feature is a
scalar column, a shape-(n,) feature a ``fixed_size_list<n>``, an ``image`` feature a
``struct{bytes: binary (PNG), path: string}``; the ``datasets.Features`` JSON is in the schema metadata under
``huggingface`` so ``datasets.Dataset.from_parquet`` decodes images without being told.

Where we differ from LeRobot, on purpose: dataset-level stats of numeric features are exact over all frames
(LeRobot count-weights per-episode quantiles), and image stats come from exact per-channel histograms of the
same frames LeRobot would sample. Keys and shapes (images: (3, 1, 1), scaled to [0, 1]) are LeRobot's.

    with LeRobotWriter("demo_data", features, fps=10, robot_type="tabletop") as w:  # temp dir, then rename
        w.add_episode(Episode(task="push the red star to the left", frames={...}, metadata={"success": True}))
    ds = LeRobotDatasetReader("demo_data")
    ds[0]  # {"observation.images.top": uint8[H, W, 3], "action": float32[2], ..., "task": str}
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
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
        if dtype == "image":
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"image feature {name!r} needs shape [H, W, 3], got {shape}")
            names = ["height", "width", "channels"]
        elif dtype in NUMERIC_DTYPES:
            if len(shape) != 1 or shape[0] < 1:
                raise ValueError(f"feature {name!r}: only 1-D shapes like [4] are supported, got {shape}")
            names = ft.get("names")
            if names is not None and len(names) != shape[0]:
                raise ValueError(f"feature {name!r}: {len(names)} names for shape {shape}")
        else:
            raise ValueError(f"feature {name!r} has dtype {dtype!r}; use 'image' or one of {NUMERIC_DTYPES}")
        out[name] = {"dtype": dtype, "shape": shape, "names": list(names) if names is not None else None}
    if not out:
        raise ValueError("no features given; pass at least one, e.g. {'action': {'dtype': 'float32', 'shape': [2]}}")
    return out


# ---- statistics (LeRobot's keys and shapes) ---------------------------------------------------------------------
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


def numeric_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """x: [N, D] -> min/max/mean/std/q01..q99 float64[D] and count int64[1] (exact, np.quantile linear)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    q = np.quantile(x, QUANTILES, axis=0)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    out.update({k: q[i] for i, k in enumerate(QUANTILE_KEYS)})
    return out


def sample_indices(n: int) -> np.ndarray:
    """LeRobot's frame sampling for image stats: all frames up to 100, then ~n**0.75, at most 10k."""
    num = max(min(n, 100), min(int(n**0.75), 10_000))
    return np.round(np.linspace(0, n - 1, num)).astype(int)


def episode_image_stats(images: np.ndarray) -> tuple[np.ndarray, int]:
    """uint8[T, H, W, 3] -> (uint64[3, 256] per-channel histogram of the sampled frames, frames sampled).

    Histograms, not pixel arrays, so episodes merge exactly and quantiles of uint8 pixels cost O(256)."""
    sub = images[sample_indices(len(images))]
    h, w = sub.shape[1:3]
    if max(h, w) >= 300:  # LeRobot downsamples big frames to ~150 px before computing stats
        f = int(w / 150) if w > h else int(h / 150)
        sub = sub[:, ::f, ::f]
    hist = np.stack([np.bincount(sub[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.uint64)
    return hist, len(sub)


def image_stats_from_histogram(hist: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Per-channel stats of pixels/255 as LeRobot stores them: each float64[3, 1, 1]; count int64[1]."""
    h = hist.astype(np.float64)
    n = h.sum(1)
    v = np.arange(256) / 255.0
    mean = (h * v).sum(1) / n
    std = np.sqrt(np.maximum((h * v**2).sum(1) / n - mean**2, 0.0))
    cum = np.cumsum(h, 1)
    out = {
        "min": np.array([v[np.flatnonzero(r)[0]] for r in h]),
        "max": np.array([v[np.flatnonzero(r)[-1]] for r in h]),
        "mean": mean,
        "std": std,
    }
    for q, key in zip(QUANTILES, QUANTILE_KEYS, strict=True):
        vals = []
        for c in range(3):  # np.quantile "linear": interpolate between the sorted values at floor/ceil rank
            pos = q * (n[c] - 1)
            lo, hi = (np.searchsorted(cum[c], r, side="right") for r in (math.floor(pos), math.ceil(pos)))
            vals.append(v[lo] + (pos - math.floor(pos)) * (v[hi] - v[lo]))
        out[key] = np.array(vals)
    out = {k: a.reshape(3, 1, 1) for k, a in out.items()}
    out["count"] = np.array([int(count)])
    return out


# ---- episodes -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Episode:
    """One episode as the caller has it. ``frames[name]`` is ``[T, *shape]`` (images ``uint8[T, H, W, 3]``).

    ``metadata`` (bool / int / float / str values, same keys in every episode) becomes columns of the episodes
    parquet, e.g. ``{"success": True, "family": "block2block", "task_spec": "{...json...}"}``.
    """

    task: str
    frames: Mapping[str, Any]
    metadata: Mapping[str, bool | int | float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedEpisode:
    """An episode validated, cast, PNG-encoded and with image stats computed: the costly part of writing,
    done by :func:`prepare_episode` (in a worker process if you like) so the writer only appends."""

    task: str
    length: int
    arrays: dict[str, np.ndarray]  # numeric features, [T, *shape], declared dtype
    pngs: dict[str, list[bytes]]  # image features, T PNG files each
    image_hist: dict[str, np.ndarray]  # image features, uint64[3, 256] over the LeRobot-sampled frames
    image_count: dict[str, int]  # how many frames were sampled for image_hist
    metadata: dict[str, bool | int | float | str]


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    )
    if not ok:
        raise RuntimeError(f"PNG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def prepare_episode(episode: Episode, features: Mapping[str, Mapping[str, Any]]) -> PreparedEpisode:
    """Validate ``episode`` against ``features`` (from :func:`validate_features`) and encode it."""
    if not isinstance(episode.task, str) or not episode.task.strip():
        raise ValueError(f"episode task must be a non-empty string, got {episode.task!r}")
    missing = sorted(set(features) - set(episode.frames))
    extra = sorted(set(episode.frames) - set(features))
    if missing or extra:
        raise ValueError(f"episode frames do not match the features: missing {missing}, unexpected {extra}")
    lengths = {name: len(episode.frames[name]) for name in features}
    if len(set(lengths.values())) != 1 or min(lengths.values()) == 0:
        raise ValueError(f"every feature needs the same number (>= 1) of frames; got {lengths}")
    length = next(iter(lengths.values()))
    arrays, pngs, hists, counts = {}, {}, {}, {}
    for name, ft in features.items():
        if ft["dtype"] == "image":
            imgs = np.asarray(episode.frames[name])
            if imgs.dtype != np.uint8 or imgs.shape[1:] != tuple(ft["shape"]):
                raise ValueError(
                    f"feature {name!r}: expected uint8{[length, *ft['shape']]}, got {imgs.dtype}{list(imgs.shape)}"
                )
            pngs[name] = [encode_png(im) for im in imgs]
            hists[name], counts[name] = episode_image_stats(imgs)
            continue
        raw = np.asarray(episode.frames[name])
        if raw.ndim == 1 and ft["shape"] == [1]:
            raw = raw[:, None]
        if raw.shape != (length, *ft["shape"]):
            raise ValueError(f"feature {name!r}: expected shape {[length, *ft['shape']]}, got {list(raw.shape)}")
        arr = raw.astype(ft["dtype"])
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise ValueError(f"feature {name!r} has non-finite values")
        if np.issubdtype(arr.dtype, np.integer) and not np.array_equal(arr, raw):
            raise ValueError(f"feature {name!r} does not fit {ft['dtype']} without loss (got {raw.dtype})")
        arrays[name] = arr
    meta = {}
    for k, v in episode.metadata.items():
        if not isinstance(v, (bool, int, float, str, np.bool_, np.integer, np.floating)):
            raise ValueError(f"episode metadata {k!r} must be bool/int/float/str, got {type(v).__name__}")
        meta[k] = v.item() if isinstance(v, np.generic) else v
    return PreparedEpisode(episode.task, length, arrays, pngs, hists, counts, meta)


_CORE_EPISODE_COLUMNS = (
    "episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
    "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index",
)  # fmt: skip


class LeRobotWriter:
    """Writes a LeRobot v3.0 dataset atomically: everything goes to a hidden temp folder next to ``root``,
    which is renamed to ``root`` only by :meth:`finalize`. Any exception, Ctrl-C included, inside a
    ``with`` block deletes the temp folder and leaves ``root`` as it was.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        features: Mapping[str, Mapping[str, Any]],
        *,
        fps: int = 10,
        robot_type: str | None = None,
        overwrite: bool = False,
        chunks_size: int = DEFAULT_CHUNK_SIZE,
        data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
        extra_meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.overwrite = overwrite
        self._check_destination()
        if fps <= 0 or chunks_size < 1 or data_files_size_in_mb <= 0:
            raise ValueError(
                f"need fps > 0, chunks_size >= 1, data_files_size_in_mb > 0; got {fps}, {chunks_size}, {data_files_size_in_mb}"
            )
        self.user_features = validate_features(features)
        self.features = {**self.user_features, **{k: dict(v) for k, v in DEFAULT_FEATURES.items()}}
        self.fps, self.robot_type, self.chunks_size = int(fps), robot_type, int(chunks_size)
        self.data_files_size_in_mb = data_files_size_in_mb
        self.extra_meta = dict(extra_meta or {})
        self.schema = pa.schema(
            [(k, arrow_type(ft)) for k, ft in self.features.items()],
            metadata={
                "huggingface": json.dumps(
                    {"info": {"features": {k: hf_feature(ft) for k, ft in self.features.items()}}}
                )
            },
        )
        self.root.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp_dirs(self.root)
        self.tmp = self.root.parent / f".{self.root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        self._tasks: dict[str, int] = {}
        self._episodes: list[dict[str, Any]] = []
        self._numeric: dict[str, list[np.ndarray]] = {
            k: [] for k, ft in self.features.items() if ft["dtype"] != "image"
        }
        self._hist = {k: np.zeros((3, 256), np.uint64) for k, ft in self.features.items() if ft["dtype"] == "image"}
        self._hist_count = dict.fromkeys(self._hist, 0)
        self._meta_keys: tuple[str, ...] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._chunk, self._file, self._file_frames = 0, 0, 0
        self._frames = 0
        self._closed = False

    # ---- public ---------------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        return self._frames

    def add_episode(self, episode: Episode | PreparedEpisode) -> int:
        """Append one episode; returns its episode_index."""
        if self._closed:
            raise RuntimeError("this LeRobotWriter is already finalized or aborted")
        ep = episode if isinstance(episode, PreparedEpisode) else prepare_episode(episode, self.user_features)
        keys = tuple(sorted(ep.metadata))
        if self._meta_keys is None:
            clash = set(keys) & set(_CORE_EPISODE_COLUMNS)
            if clash or any(k.startswith("stats/") or k.startswith("videos/") for k in keys):
                raise ValueError(
                    f"episode metadata keys {sorted(clash) or keys} collide with LeRobot's episode columns"
                )
            self._meta_keys = keys
        elif keys != self._meta_keys:
            raise ValueError(
                f"episode metadata keys {list(keys)} differ from the first episode's {list(self._meta_keys)}"
            )
        ep_index, n = len(self._episodes), ep.length
        task_index = self._tasks.setdefault(ep.task, len(self._tasks))
        frame_index = np.arange(n, dtype=np.int64)
        cols = {
            **ep.arrays,
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(n, ep_index, np.int64),
            "index": np.arange(self._frames, self._frames + n, dtype=np.int64),
            "task_index": np.full(n, task_index, np.int64),
        }
        ep_stats = {}
        for name, ft in self.features.items():
            if ft["dtype"] == "image":
                ep_stats[name] = image_stats_from_histogram(ep.image_hist[name], ep.image_count[name])
                self._hist[name] += ep.image_hist[name]
                self._hist_count[name] += ep.image_count[name]
            else:
                arr = cols[name].reshape(n, -1)
                ep_stats[name] = numeric_stats(arr)
                self._numeric[name].append(arr)
        self._write_rows(cols, ep.pngs, n)
        row: dict[str, Any] = {
            "episode_index": ep_index, "tasks": [ep.task], "length": n,
            "data/chunk_index": self._chunk, "data/file_index": self._file,
            "dataset_from_index": self._frames, "dataset_to_index": self._frames + n,
            **{k: ep.metadata[k] for k in self._meta_keys},
            **{f"stats/{k}/{s}": v.tolist() for k, st in ep_stats.items() for s, v in st.items()},
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
        }  # fmt: skip
        self._episodes.append(row)
        self._frames += n
        return ep_index

    def finalize(self) -> Path:
        """Write meta/ and move the dataset into place. Returns ``root``."""
        if self._closed:
            raise RuntimeError("this LeRobotWriter is already finalized or aborted")
        if not self._episodes:
            raise ValueError("no episodes were added; refusing to write an empty dataset")
        self._close_data_file()
        self._write_meta()
        self._check_destination()
        old = None
        if self.root.exists():
            old = self.root.parent / f".{self.root.name}.old-{uuid.uuid4().hex[:8]}"
            self.root.rename(old)
        self.tmp.rename(self.root)
        self._closed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.root

    def abort(self) -> None:
        """Drop everything written so far; ``root`` is untouched. Safe to call twice."""
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        self._closed = True
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()
        return False

    # ---- internals ------------------------------------------------------------------------------------------
    def _check_destination(self) -> None:
        if self.root.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.root} already exists; pass overwrite=True (rt2 collect --overwrite) to replace it"
            )
        if self.root.exists() and not (self.root / INFO_PATH).is_file() and any(self.root.iterdir()):
            raise FileExistsError(f"{self.root} exists and is not a LeRobot dataset (no {INFO_PATH}); not replacing it")

    def _path(self, template: str, chunk: int, file: int) -> Path:
        return self.tmp / template.format(chunk_index=chunk, file_index=file)

    def _write_rows(self, cols: dict[str, np.ndarray], pngs: dict[str, list[bytes]], n: int) -> None:
        arrays = []
        for name, ft in self.features.items():
            typ = self.schema.field(name).type
            if ft["dtype"] == "image":
                paths = [f"frame-{i:06d}.png" for i in range(n)]
                arrays.append(
                    pa.StructArray.from_arrays(
                        [pa.array(pngs[name], pa.binary()), pa.array(paths, pa.string())], fields=list(typ)
                    )
                )
            elif pa.types.is_fixed_size_list(typ):
                arrays.append(
                    pa.FixedSizeListArray.from_arrays(pa.array(cols[name].reshape(-1), typ.value_type), typ.list_size)
                )
            else:
                arrays.append(pa.array(cols[name].reshape(-1), typ))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self._writer is not None:
            # LeRobot's rule: start a new file when this episode would push the current one past the limit.
            size_mb = self._path(DATA_PATH, self._chunk, self._file).stat().st_size / 2**20
            per_frame = size_mb / max(self._file_frames, 1)
            if size_mb + per_frame * n >= self.data_files_size_in_mb:
                self._close_data_file()
                self._file += 1
                if self._file == self.chunks_size:
                    self._chunk, self._file = self._chunk + 1, 0
        if self._writer is None:
            path = self._path(DATA_PATH, self._chunk, self._file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, compression="snappy", use_dictionary=True)
            self._file_frames = 0
        self._writer.write_table(table, row_group_size=max(n, 1))
        self._file_frames += n

    def _close_data_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _write_meta(self) -> None:
        (self.tmp / "meta").mkdir(exist_ok=True)
        tasks = sorted(self._tasks, key=self._tasks.get)
        pandas_meta = {
            "index_columns": ["task"],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
            "columns": [
                {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
                {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
            ],
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.2.3",
        }  # fmt: skip
        # task is the pandas index (as LeRobot's DataFrame writes it), so pd.read_parquet restores it.
        tasks_table = pa.table(
            {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
        ).replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
        pq.write_table(tasks_table, self.tmp / TASKS_PATH)

        ep_path = self._path(EPISODES_PATH, 0, 0)
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(self._episodes[0])
        types = {"tasks": pa.list_(pa.string())}
        for c in columns:
            if c.startswith("stats/"):
                types[c] = None  # inferred: list<double>, list<int64> for count, nested for images
            elif c in _CORE_EPISODE_COLUMNS and c != "tasks":
                types[c] = pa.int64()
        data = {c: pa.array([r[c] for r in self._episodes], types.get(c)) for c in columns}
        pq.write_table(pa.table(data), ep_path, compression="snappy")

        stats: dict[str, dict[str, Any]] = {}
        for name, ft in self.features.items():
            if ft["dtype"] == "image":
                st = image_stats_from_histogram(self._hist[name], self._hist_count[name])
            else:
                st = numeric_stats(np.concatenate(self._numeric[name]))
            stats[name] = {k: v.tolist() for k, v in st.items()}
        _write_json(self.tmp / STATS_PATH, stats)

        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self._episodes),
            "total_frames": self._frames,
            "total_tasks": len(tasks),
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": self.data_files_size_in_mb,
            "video_files_size_in_mb": DEFAULT_VIDEO_FILE_SIZE_IN_MB,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self._episodes)}"},
            "data_path": DATA_PATH,
            "video_path": None,
            "features": self.features,
        }
        _write_json(self.tmp / INFO_PATH, info)
        if self.extra_meta:
            # Our own provenance lives in its own file: LeRobot's newer loaders parse info.json strictly.
            _write_json(self.tmp / "meta" / "rt2.json", self.extra_meta)


def _remove_stale_temp_dirs(root: Path) -> None:
    """Temp folders of writers killed without cleanup (SIGKILL, power loss): their pid is no longer alive."""
    for stale in root.parent.glob(f".{root.name}.tmp-*-*"):
        try:
            pid = int(stale.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except (ValueError, PermissionError):
            continue  # not ours, or another user's live process


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False, allow_nan=False) + "\n")


def write_dataset(
    root: str | os.PathLike[str],
    episodes: Iterable[Episode | PreparedEpisode],
    features: Mapping[str, Mapping[str, Any]],
    **kwargs: Any,
) -> Path:
    """Write all ``episodes`` (any iterable, consumed lazily) as one dataset; atomic like :class:`LeRobotWriter`."""
    with LeRobotWriter(root, features, **kwargs) as writer:
        for ep in episodes:
            writer.add_episode(ep)
    return writer.root


# ---- reader -------------------------------------------------------------------------------------------------------
class DatasetFormatError(ValueError):
    """A dataset on disk is not a valid LeRobot v3.0 dataset; the message names the file and the field."""


_REQUIRED_INFO = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks", "data_path")
_REQUIRED_EPISODE_COLUMNS = _CORE_EPISODE_COLUMNS[:7]


class LeRobotDatasetReader:
    """Reads a LeRobot v3.0 dataset with image (not video) features, validating it on open.

    Numeric columns are read once into read-only numpy arrays (``[N, *shape]``; shape-(1,) features ``[N]``);
    PNG bytes stay in the memory-mapped parquet buffers and are decoded on access, or all at once into
    ``uint8[N, H, W, 3]`` by :meth:`cache_images` (``cache_images=True``) when training speed matters more
    than memory.

        ds = LeRobotDatasetReader("demo_data")
        len(ds), ds.num_episodes, ds.fps, ds.features, ds.stats, ds.tasks
        item = ds[i]          # {feature: np scalar | float32[D] | uint8[H, W, 3], "task": str}
        ep = ds.episode(e)    # {feature: [T, ...] arrays, images uint8[T, H, W, 3], "task": str}
        ds.episodes()         # per-episode metadata dicts (length, tasks, success, ...)
    """

    def __init__(self, root: str | os.PathLike[str], *, cache_images: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"dataset folder {self.root} does not exist; create one with `rt2 collect --out {self.root}`"
            )
        self.info = self._load_info()
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        self.fps = int(self.info["fps"])
        self.image_keys = [k for k, ft in self.features.items() if ft["dtype"] == "image"]
        self.tasks = self._load_tasks()
        self._episodes_table = self._load_episodes()
        self._episodes = [
            {k: v for k, v in row.items() if not k.startswith("stats/")} for row in self._episodes_table.to_pylist()
        ]
        self.stats = self._load_stats()
        self._arrays: dict[str, np.ndarray] = {}
        self._images: dict[str, list[pa.BinaryArray]] = {k: [] for k in self.image_keys}
        self._file_starts: list[int] = []
        self._files: list[Path] = []
        self._load_data()
        self._cache: dict[str, np.ndarray] = {}
        if cache_images:
            self.cache_images()

    # ---- access ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.info["total_frames"])

    @property
    def num_frames(self) -> int:
        return len(self)

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = self._check_index(i, len(self), "frame")
        item: dict[str, Any] = {
            k: (self.image(k, i) if k in self._images else self._arrays[k][i]) for k in self.features
        }
        item["task"] = self.tasks[int(self._arrays["task_index"][i])]
        return item

    def column(self, name: str) -> np.ndarray:
        """Read-only numeric column: ``[N, *shape]`` (``[N]`` for shape-(1,) features)."""
        if name not in self._arrays:
            raise KeyError(f"no numeric feature {name!r}; numeric features: {sorted(self._arrays)}")
        return self._arrays[name]

    def image(self, key: str, i: int) -> np.ndarray:
        """uint8[H, W, 3] frame ``i`` of image feature ``key`` (decoded now unless cached)."""
        if key in self._cache:
            return self._cache[key][i]
        f = int(np.searchsorted(self._file_starts, i, side="right")) - 1
        data = self._images[key][f][i - self._file_starts[f]].as_py()
        where = f"{self._files[f]}: column {key!r}, row {i - self._file_starts[f]}"
        if data is None:
            raise DatasetFormatError(f"{where}: image bytes are null (externally stored images are not supported)")
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetFormatError(f"{where}: bytes are not a decodable image")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if list(img.shape) != list(self.features[key]["shape"]):
            raise DatasetFormatError(
                f"{where}: image has shape {list(img.shape)} but meta/info.json declares {self.features[key]['shape']}"
            )
        return img

    def cache_images(self, keys: Iterable[str] | None = None) -> None:
        """Decode every frame of ``keys`` (default: all image features) into one read-only uint8 array."""
        for key in self.image_keys if keys is None else keys:
            if key not in self._images:
                raise KeyError(f"no image feature {key!r}; image features: {self.image_keys}")
            if key not in self._cache:
                arr = np.empty((len(self), *self.features[key]["shape"]), np.uint8)
                for i in range(len(self)):
                    arr[i] = self.image(key, i)
                arr.flags.writeable = False
                self._cache[key] = arr

    def episodes(self) -> list[dict[str, Any]]:
        """Per-episode metadata (episodes parquet without ``stats/*``): one dict per episode, in order."""
        return [dict(e) for e in self._episodes]

    def episode_range(self, e: int) -> range:
        ep = self._episodes[self._check_index(e, self.num_episodes, "episode")]
        return range(ep["dataset_from_index"], ep["dataset_to_index"])

    def episode(self, e: int) -> dict[str, Any]:
        """All frames of episode ``e``: ``{feature: [T, ...] array, image: uint8[T, H, W, 3], "task": str}``."""
        r = self.episode_range(e)
        out: dict[str, Any] = {}
        for k in self.features:
            if k in self._images:
                out[k] = (
                    self._cache[k][r.start : r.stop] if k in self._cache else np.stack([self.image(k, i) for i in r])
                )
            else:
                out[k] = self._arrays[k][r.start : r.stop]
        out["task"] = self._episodes[e]["tasks"][0]
        return out

    def episode_stats(self, e: int) -> dict[str, dict[str, np.ndarray]]:
        """The per-episode stats stored in the episodes parquet, as numpy arrays."""
        row = self._episodes_table.slice(self._check_index(e, self.num_episodes, "episode"), 1).to_pylist()[0]
        out: dict[str, dict[str, np.ndarray]] = {}
        for k, v in row.items():
            if k.startswith("stats/"):
                feat, stat = k[len("stats/") :].rsplit("/", 1)
                out.setdefault(feat, {})[stat] = np.asarray(v)
        return out

    def norm_stats(self, key: str = "action"):
        """``rt2.actions.NormStats`` of a numeric feature over all frames (exact), for action normalization."""
        from rt2.actions.stats import NormStats

        col = self.column(key)
        return NormStats.from_actions(col.reshape(len(col), -1), names=self.features[key].get("names"))

    def __repr__(self) -> str:
        return f"LeRobotDatasetReader({str(self.root)!r}, episodes={self.num_episodes}, frames={len(self)}, features={list(self.features)})"

    # ---- loading and validation -----------------------------------------------------------------------------
    @staticmethod
    def _check_index(i: int, n: int, what: str) -> int:
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"{what} index {i} out of range for {n} {what}s")
        return i % n

    def _err(self, rel: str, msg: str) -> DatasetFormatError:
        return DatasetFormatError(f"{self.root / rel}: {msg}")

    def _load_info(self) -> dict[str, Any]:
        path = self.root / INFO_PATH
        if not path.is_file():
            raise self._err(
                INFO_PATH, f"missing; {self.root} is not a LeRobot v3.0 dataset (write one with `rt2 collect`)"
            )
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise self._err(INFO_PATH, f"not valid JSON ({e})") from None
        missing = [k for k in _REQUIRED_INFO if k not in info]
        if missing:
            raise self._err(INFO_PATH, f"missing field(s) {missing}")
        if not str(info["codebase_version"]).startswith("v3."):
            raise self._err(INFO_PATH, f"field 'codebase_version' is {info['codebase_version']!r}; this reader needs "
                            "'v3.0' (convert older datasets with LeRobot's convert_dataset_v21_to_v30)")  # fmt: skip
        if not isinstance(info["fps"], (int, float)) or info["fps"] <= 0:
            raise self._err(INFO_PATH, f"field 'fps' must be a positive number, got {info['fps']!r}")
        feats = info["features"]
        if not isinstance(feats, dict):
            raise self._err(INFO_PATH, "field 'features' must be an object")
        for name, ft in feats.items():
            if not isinstance(ft, dict) or "dtype" not in ft or not isinstance(ft.get("shape"), list):
                raise self._err(INFO_PATH, f"features[{name!r}] needs 'dtype' and a 'shape' list, got {ft!r}")
            if ft["dtype"] == "video":
                raise self._err(
                    INFO_PATH, f"features[{name!r}] is a video; only image features (PNG in parquet) are supported"
                )
            if ft["dtype"] != "image" and (ft["dtype"] not in NUMERIC_DTYPES or len(ft["shape"]) != 1):
                raise self._err(INFO_PATH, f"features[{name!r}]: unsupported dtype/shape {ft['dtype']}{ft['shape']}")
            if ft["dtype"] == "image" and (len(ft["shape"]) != 3 or ft["shape"][2] != 3):
                raise self._err(INFO_PATH, f"features[{name!r}]: image shape must be [H, W, 3], got {ft['shape']}")
        missing = [k for k in DEFAULT_FEATURES if k not in feats]
        if missing:
            raise self._err(INFO_PATH, f"field 'features' lacks the required LeRobot feature(s) {missing}")
        return info

    def _load_tasks(self) -> list[str]:
        path = self.root / TASKS_PATH
        if not path.is_file():
            raise self._err(TASKS_PATH, "missing (task strings -> task_index)")
        t = pq.read_table(path)
        name = "task" if "task" in t.column_names else "__index_level_0__"
        if name not in t.column_names or "task_index" not in t.column_names:
            raise self._err(TASKS_PATH, f"needs columns 'task' and 'task_index', has {t.column_names}")
        tasks, idx = t.column(name).to_pylist(), t.column("task_index").to_pylist()
        if sorted(idx) != list(range(len(idx))):
            raise self._err(
                TASKS_PATH, f"field 'task_index' must be 0..{len(idx) - 1} without gaps, got {sorted(idx)[:10]}"
            )
        if len(tasks) != self.info["total_tasks"]:
            raise self._err(
                TASKS_PATH, f"has {len(tasks)} tasks but meta/info.json total_tasks is {self.info['total_tasks']}"
            )
        out = [""] * len(tasks)
        for task, i in zip(tasks, idx, strict=True):
            out[i] = task
        return out

    def _load_episodes(self) -> pa.Table:
        paths = sorted((self.root / "meta" / "episodes").glob("*/*.parquet"))
        if not paths:
            raise self._err("meta/episodes", "no episode metadata files (expected chunk-000/file-000.parquet)")
        tables = []
        for p in paths:
            t = pq.read_table(p)
            missing = [c for c in _REQUIRED_EPISODE_COLUMNS if c not in t.column_names]
            if missing:
                raise DatasetFormatError(f"{p}: missing column(s) {missing}")
            tables.append(t)
        table = pa.concat_tables(tables, promote_options="permissive")
        rel = "meta/episodes"
        ep_idx = table.column("episode_index").to_pylist()
        if ep_idx != list(range(len(ep_idx))):
            raise self._err(rel, f"field 'episode_index' must be 0..{len(ep_idx) - 1} in order, got {ep_idx[:10]}...")
        if len(ep_idx) != self.info["total_episodes"]:
            raise self._err(
                rel, f"{len(ep_idx)} episodes but meta/info.json total_episodes is {self.info['total_episodes']}"
            )
        start = 0
        for e, fr, to, n in zip(
            ep_idx,
            *(table.column(c).to_pylist() for c in ("dataset_from_index", "dataset_to_index", "length")),
            strict=True,
        ):
            if fr != start or to - fr != n or n < 1:
                raise self._err(rel, f"episode {e}: dataset_from_index={fr}, dataset_to_index={to}, length={n}; "
                                f"expected from={start} and to-from=length>=1 (index gap or overlap)")  # fmt: skip
            start = to
        if start != self.info["total_frames"]:
            raise self._err(
                rel, f"episodes cover {start} frames but meta/info.json total_frames is {self.info['total_frames']}"
            )
        return table

    def _load_stats(self) -> dict[str, dict[str, np.ndarray]] | None:
        path = self.root / STATS_PATH
        if not path.is_file():
            return None  # optional in LeRobot too
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise self._err(STATS_PATH, f"not valid JSON ({e})") from None
        return {k: {s: np.asarray(v) for s, v in st.items()} for k, st in raw.items()}

    def _load_data(self) -> None:
        files: list[tuple[int, int]] = []
        for ep in self._episodes:
            key = (ep["data/chunk_index"], ep["data/file_index"])
            if not files or files[-1] != key:
                if key in files:
                    raise self._err(
                        "meta/episodes", f"episode {ep['episode_index']}: data file {key} is not contiguous"
                    )
                files.append(key)
        rels = [self.info["data_path"].format(chunk_index=c, file_index=f) for c, f in files]
        on_disk = {p.relative_to(self.root).as_posix() for p in (self.root / "data").glob("*/*.parquet")}
        extra = sorted(on_disk - set(rels))
        if extra:
            raise self._err(
                extra[0], "data file not referenced by any episode in meta/episodes (LeRobot would load it)"
            )
        parts: dict[str, list[np.ndarray]] = {k: [] for k in self.features if k not in self._images}
        n = 0
        for rel in rels:
            path = self.root / rel
            if not path.is_file():
                raise self._err(rel, "missing (referenced by meta/episodes data/chunk_index, data/file_index)")
            table = pq.read_table(path, memory_map=True)
            self._files.append(path)
            self._file_starts.append(n)
            for name, ft in self.features.items():
                if name not in table.column_names:
                    raise self._err(rel, f"missing column {name!r} declared in meta/info.json features")
                col = table.column(name)
                if col.null_count:
                    raise self._err(rel, f"column {name!r} has {col.null_count} null value(s)")
                arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
                if name in self._images:
                    if not pa.types.is_struct(arr.type) or arr.type.get_field_index("bytes") < 0:
                        raise self._err(
                            rel, f"column {name!r} must be struct{{bytes, path}} (HF Image), got {arr.type}"
                        )
                    self._images[name].append(arr.field("bytes"))
                else:
                    parts[name].append(self._numeric(rel, name, ft, arr))
            n += table.num_rows
        if n != len(self):
            raise self._err(rels[-1], f"data files hold {n} rows but meta/info.json total_frames is {len(self)}")
        self._file_starts.append(n)
        for name, ps in parts.items():
            a = np.concatenate(ps)
            a.flags.writeable = False
            self._arrays[name] = a
        self._check_rows(rels)

    def _numeric(self, rel: str, name: str, ft: dict[str, Any], arr: pa.Array) -> np.ndarray:
        size = int(ft["shape"][0])
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
            lengths = (
                np.unique(arr.value_lengths().to_numpy(zero_copy_only=False))
                if not pa.types.is_fixed_size_list(arr.type)
                else [arr.type.list_size]
            )
            if list(lengths) != [size]:
                raise self._err(
                    rel, f"column {name!r} has rows of length {list(lengths)} but meta/info.json shape is {ft['shape']}"
                )
            values = arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), size)
        elif size == 1:
            values = arr.to_numpy(zero_copy_only=False)
        else:
            raise self._err(rel, f"column {name!r} holds scalars but meta/info.json shape is {ft['shape']}")
        want = np.dtype(ft["dtype"])
        if values.dtype != want and not np.can_cast(values.dtype, want, casting="same_kind"):
            raise self._err(rel, f"column {name!r} has dtype {values.dtype}, meta/info.json declares {ft['dtype']}")
        return values.astype(want, copy=False)

    def _check_rows(self, rels: list[str]) -> None:
        a = self._arrays
        if not np.array_equal(a["index"], np.arange(len(self))):
            bad = int(np.flatnonzero(a["index"] != np.arange(len(self)))[0])
            raise self._err(
                self._rel_of(bad, rels),
                f"field 'index' must be 0..{len(self) - 1}; row {bad} holds {a['index'][bad]} (gap or reorder)",
            )
        ep_of_row = np.repeat(np.arange(self.num_episodes), [e["length"] for e in self._episodes])
        frame_of_row = np.arange(len(self)) - np.repeat(
            [e["dataset_from_index"] for e in self._episodes], [e["length"] for e in self._episodes]
        )
        for field_name, want in (("episode_index", ep_of_row), ("frame_index", frame_of_row)):
            if not np.array_equal(a[field_name], want):
                bad = int(np.flatnonzero(a[field_name] != want)[0])
                raise self._err(
                    self._rel_of(bad, rels),
                    f"field {field_name!r} at row {bad} is {a[field_name][bad]}, expected {want[bad]} from meta/episodes",
                )
        if np.abs(a["timestamp"] - frame_of_row / self.fps).max() > 1e-4:
            bad = int(np.argmax(np.abs(a["timestamp"] - frame_of_row / self.fps)))
            raise self._err(
                self._rel_of(bad, rels),
                f"field 'timestamp' at row {bad} is {a['timestamp'][bad]}, expected frame_index/fps = {frame_of_row[bad] / self.fps}",
            )
        if a["task_index"].min() < 0 or a["task_index"].max() >= len(self.tasks):
            raise self._err(rels[0], f"field 'task_index' outside 0..{len(self.tasks) - 1} of meta/tasks.parquet")
        for e in self._episodes:
            rel = self.info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
            f = rels.index(rel)
            if not self._file_starts[f] <= e["dataset_from_index"] < e["dataset_to_index"] <= self._file_starts[f + 1]:
                raise self._err(
                    "meta/episodes",
                    f"episode {e['episode_index']}: rows are not in {rel} as data/chunk_index, data/file_index say",
                )

    def _rel_of(self, row: int, rels: list[str]) -> str:
        return rels[int(np.searchsorted(self._file_starts, row, side="right")) - 1]


__all__ = [
    "CODEBASE_VERSION",
    "DEFAULT_FEATURES",
    "QUANTILE_KEYS",
    "DatasetFormatError",
    "Episode",
    "LeRobotDatasetReader",
    "LeRobotWriter",
    "PreparedEpisode",
    "prepare_episode",
    "validate_features",
    "write_dataset",
]
