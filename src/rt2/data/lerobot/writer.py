"""The atomic LeRobot v3.0 writer: episodes go to a hidden temp folder that :meth:`LeRobotWriter.finalize`
renames into place, so a crash or Ctrl-C never leaves a half-written dataset at ``root``.

Data files roll over by LeRobot's size rule; ``meta/`` (info, stats, tasks, episodes) is written last.
Video features (dtype "video") are encoded into ``videos/<key>/chunk-XXX/file-XXX.mp4`` as episodes arrive,
several episodes per file, rolling over by ``video_files_size_in_mb`` (``rt2.data.lerobot.video``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rt2.data.lerobot.episode import Episode, PreparedEpisode, prepare_episode
from rt2.data.lerobot.format import (
    CODEBASE_VERSION,
    CORE_EPISODE_COLUMNS,
    DATA_PATH,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_FEATURES,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    arrow_type,
    hf_feature,
    validate_features,
)
from rt2.data.lerobot.stats import image_stats_from_histogram, numeric_stats


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
        video: Any = None,
        video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    ) -> None:
        """``video``: a ``rt2.data.lerobot.video.VideoOptions`` for the features of dtype "video" (None: its
        defaults, h264 near-lossless); ignored when there are none."""
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
        self.video_keys = [k for k, ft in self.features.items() if ft["dtype"] == "video"]
        self.video_files_size_in_mb = float(video_files_size_in_mb)
        self.video_options = None
        if self.video_keys:
            from rt2.data.lerobot.video import VideoOptions, require_av

            require_av()  # fail before any rollout, with the install hint
            self.video_options = video if video is not None else VideoOptions()
            for k in self.video_keys:
                self.video_options.check_size(k, *self.features[k]["shape"][:2])
        # Video features are not columns of the data parquet (LeRobot v3.0): their frames live in videos/.
        self.data_features = {k: ft for k, ft in self.features.items() if ft["dtype"] != "video"}
        self.schema = pa.schema(
            [(k, arrow_type(ft)) for k, ft in self.data_features.items()],
            metadata={
                "huggingface": json.dumps(
                    {"info": {"features": {k: hf_feature(ft) for k, ft in self.data_features.items()}}}
                )
            },
        )
        self.root.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp_dirs(self.root)
        self.tmp = self.root.parent / f".{self.root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        self._tasks: dict[str, int] = {}
        self._episodes: list[dict[str, Any]] = []
        cameras = [k for k, ft in self.features.items() if ft["dtype"] in ("image", "video")]
        self._numeric: dict[str, list[np.ndarray]] = {k: [] for k in self.features if k not in cameras}
        self._hist = {k: np.zeros((3, 256), np.uint64) for k in cameras}
        self._videos: dict[str, Any] = {}  # key -> the open VideoFileWriter
        self._video_at: dict[str, tuple[int, int]] = dict.fromkeys(self.video_keys, (0, 0))  # (chunk, file)
        self._video_info: dict[str, dict[str, Any]] = {}
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
            clash = set(keys) & set(CORE_EPISODE_COLUMNS)
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
            if ft["dtype"] in ("image", "video"):
                ep_stats[name] = image_stats_from_histogram(ep.image_hist[name], ep.image_count[name])
                self._hist[name] += ep.image_hist[name]
                self._hist_count[name] += ep.image_count[name]
            else:
                arr = cols[name].reshape(n, -1)
                ep_stats[name] = numeric_stats(arr)
                self._numeric[name].append(arr)
        self._write_rows(cols, ep.pngs, n)
        videos = {k: v for key in self.video_keys for k, v in self._write_video(key, ep.videos[key]).items()}
        row: dict[str, Any] = {
            "episode_index": ep_index, "tasks": [ep.task], "length": n,
            "data/chunk_index": self._chunk, "data/file_index": self._file,
            "dataset_from_index": self._frames, "dataset_to_index": self._frames + n, **videos,
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
        self._close_videos()
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
        try:
            if self._writer is not None:
                try:
                    self._writer.close()
                finally:
                    self._writer = None
            self._close_videos()
        except Exception:  # noqa: BLE001 - cleanup of files that are deleted next; the original error matters
            pass
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
        # Runs in __init__, i.e. before `rt2 collect` starts any rollout, and again in finalize. A regular file at
        # root (or on its parent path) used to surface as a bare NotADirectoryError from iterdir/mkdir; it is never
        # replaced, --overwrite or not, because it is not a dataset.
        for p in (self.root, *self.root.parents):
            if p.exists() and not p.is_dir():
                where = "" if p == self.root else f" (on the path to {self.root})"
                raise FileExistsError(
                    f"{p} exists and is not a directory{where}; choose another output folder "
                    "or move that file away (--overwrite only replaces an existing dataset folder)"
                )
        if self.root.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.root} already exists; pass overwrite=True (rt2 collect --overwrite) to replace it"
            )
        if self.root.exists() and not (self.root / INFO_PATH).is_file() and any(self.root.iterdir()):
            raise FileExistsError(f"{self.root} exists and is not a LeRobot dataset (no {INFO_PATH}); not replacing it")

    def _path(self, template: str, chunk: int, file: int) -> Path:
        return self.tmp / template.format(chunk_index=chunk, file_index=file)

    def _write_video(self, key: str, frames: np.ndarray) -> dict[str, Any]:
        """Append one episode's frames to ``key``'s current mp4 (rolling over by size, like the data files);
        returns its ``videos/<key>/...`` episode columns."""
        from rt2.data.lerobot.video import VideoFileWriter

        chunk, file = self._video_at[key]
        w = self._videos.get(key)
        if w is not None and w.size_mb() >= self.video_files_size_in_mb:
            self._close_video(key)
            file += 1
            if file == self.chunks_size:
                chunk, file = chunk + 1, 0
            self._video_at[key], w = (chunk, file), None
        if w is None:
            path = self.tmp / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            h, wd = self.features[key]["shape"][:2]
            w = self._videos[key] = VideoFileWriter(path, self.fps, h, wd, self.video_options)
        start, stop = w.add_episode(frames)
        return {
            f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
            f"videos/{key}/from_timestamp": start, f"videos/{key}/to_timestamp": stop,
        }  # fmt: skip

    def _close_video(self, key: str) -> None:
        from rt2.data.lerobot.video import video_info

        w = self._videos.pop(key)
        w.close()
        self._video_info.setdefault(key, video_info(w.path))  # info.json records the first file's codec

    def _close_videos(self) -> None:
        for key in list(self._videos):
            self._close_video(key)

    def _write_rows(self, cols: dict[str, np.ndarray], pngs: dict[str, list[bytes]], n: int) -> None:
        arrays = []
        for name, ft in self.data_features.items():
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
            elif (c in CORE_EPISODE_COLUMNS and c != "tasks") or c.endswith(("/chunk_index", "/file_index")):
                types[c] = pa.int64()
            elif c.startswith("videos/"):
                types[c] = pa.float64()
        data = {c: pa.array([r[c] for r in self._episodes], types.get(c)) for c in columns}
        pq.write_table(pa.table(data), ep_path, compression="snappy")

        stats: dict[str, dict[str, Any]] = {}
        for name, ft in self.features.items():
            if ft["dtype"] in ("image", "video"):
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
            "video_files_size_in_mb": self.video_files_size_in_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self._episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.video_keys else None,
            "features": {
                k: {**ft, "info": self._video_info[k]} if k in self._video_info else ft
                for k, ft in self.features.items()
            },
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
