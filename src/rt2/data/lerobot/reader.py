"""The validating LeRobot v3.0 reader: checks a dataset on open, naming the file and field of any defect.

Reads datasets with image (PNG in parquet) and video (mp4, ``rt2.data.lerobot.video``) features, whoever wrote
them (``rt2 collect`` or LeRobot itself); ``meta/`` is read and checked by ``rt2.data.lerobot.format``, the data
files here. Both kinds of camera read the same way: ``image(key, i)``, ``episode(e)[key]``, ``cache_images``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from rt2.data.lerobot.format import (
    DatasetFormatError,
    format_error,
    frame_hw,
    read_episodes,
    read_info,
    read_parquet,
    read_stats,
    read_tasks,
)


class LeRobotDatasetReader:
    """Reads a LeRobot v3.0 dataset with image and/or video features, validating it on open.

    Numeric columns are read once into read-only numpy arrays (``[N, *shape]``; shape-(1,) features ``[N]``);
    PNG bytes stay in the memory-mapped parquet buffers and are decoded on access, or all at once into
    ``uint8[N, H, W, 3]`` by :meth:`cache_images` (``cache_images=True``) when training speed matters more
    than memory. Video frames are decoded one episode range at a time (one seek and one pass per episode, the
    last episode kept per camera), each frame at ``from_timestamp + timestamp`` within ``tolerance_s``.
    ``image_keys`` lists every camera (image and video features); ``video_keys`` the video ones.

        ds = LeRobotDatasetReader("demo_data")
        len(ds), ds.num_episodes, ds.fps, ds.features, ds.stats, ds.tasks
        item = ds[i]          # {feature: np scalar | float32[D] | uint8[H, W, 3], "task": str}
        ep = ds.episode(e)    # {feature: [T, ...] arrays, images uint8[T, H, W, 3], "task": str}
        ds.episodes()         # per-episode metadata dicts (length, tasks, success, ...)
    """

    def __init__(
        self, root: str | os.PathLike[str], *, cache_images: bool = False, tolerance_s: float | None = None
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"dataset folder {self.root} does not exist; create one with `rt2 collect --out {self.root}`"
            )
        self.info = read_info(self.root)
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        self.fps = int(self.info["fps"])
        self.image_keys = [k for k, ft in self.features.items() if ft["dtype"] in ("image", "video")]
        self.video_keys = [k for k, ft in self.features.items() if ft["dtype"] == "video"]
        self.tolerance_s = tolerance_s
        self.tasks = read_tasks(self.root, self.info)
        self._episodes_table = read_episodes(self.root, self.info)
        self._episodes = [
            {k: v for k, v in row.items() if not k.startswith("stats/")} for row in self._episodes_table.to_pylist()
        ]
        self.stats = read_stats(self.root)
        self._arrays: dict[str, np.ndarray] = {}
        self._images: dict[str, list[pa.BinaryArray]] = {k: [] for k in self.image_keys if k not in self.video_keys}
        self._file_starts: list[int] = []
        self._files: list[Path] = []
        self._load_data()
        self._check_videos()
        self._video_readers: dict[str, Any] = {}  # key -> (path, open VideoReader)
        self._video_last: dict[str, tuple[int, np.ndarray]] = {}  # key -> (episode, its frames)
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
            k: (self.image(k, i) if k in self.image_keys else self._arrays[k][i]) for k in self.features
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
        if key in self.video_keys:
            e = int(np.searchsorted(self._episode_starts, i, side="right")) - 1
            return self.episode_frames(key, e)[i - self._episode_starts[e]]
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
            if key not in self.image_keys:
                raise KeyError(f"no image feature {key!r}; image features: {self.image_keys}")
            if key not in self._cache:
                arr = np.empty((len(self), *self._hw(key), 3), np.uint8)
                if key in self.video_keys:
                    for e in range(self.num_episodes):
                        r = self.episode_range(e)
                        arr[r.start : r.stop] = self.episode_frames(key, e)
                    self._video_last.pop(key, None)
                else:
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
            if k in self._cache:
                out[k] = self._cache[k][r.start : r.stop]
            elif k in self.video_keys:
                out[k] = self.episode_frames(k, e)
            elif k in self._images:
                out[k] = np.stack([self.image(k, i) for i in r])
            else:
                out[k] = self._arrays[k][r.start : r.stop]
        out["task"] = self._episodes[e]["tasks"][0]
        return out

    def episode_frames(self, key: str, e: int) -> np.ndarray:
        """Read-only uint8[T, H, W, 3]: every frame of camera ``key`` in episode ``e`` (a video feature is decoded
        in one pass over the episode's range; the last episode per camera is kept, so frame-by-frame access
        through :meth:`image` decodes each episode once)."""
        e = self._check_index(e, self.num_episodes, "episode")
        if key in self._cache:
            r = self.episode_range(e)
            return self._cache[key][r.start : r.stop]
        if key not in self.video_keys:
            if key not in self.image_keys:
                raise KeyError(f"no image feature {key!r}; image features: {self.image_keys}")
            return np.stack([self.image(key, i) for i in self.episode_range(e)])
        last = self._video_last.get(key)
        if last is not None and last[0] == e:
            return last[1]
        from rt2.data.lerobot.video import DEFAULT_TOLERANCE_S, VideoReader

        ep, r = self._episodes[e], self.episode_range(e)
        rel = self._video_rel(key, ep)
        path = self.root / rel
        open_ = self._video_readers.get(key)
        if open_ is None or open_[0] != path:
            if open_ is not None:
                open_[1].close()
            tol = DEFAULT_TOLERANCE_S if self.tolerance_s is None else self.tolerance_s
            open_ = self._video_readers[key] = (path, VideoReader(path, tolerance_s=tol))
        # LeRobot's rule: frame t of the episode is shown at from_timestamp + timestamp[t] in the episode's file.
        ts = float(ep[f"videos/{key}/from_timestamp"]) + self._arrays["timestamp"][r.start : r.stop].astype(np.float64)
        frames = open_[1].frames(ts)
        if frames.shape[1:3] != self._hw(key):
            raise DatasetFormatError(
                f"{path}: frames are {frames.shape[2]}x{frames.shape[1]} (WxH) but meta/info.json declares "
                f"features[{key!r}] shape {self.features[key]['shape']}"
            )
        frames.flags.writeable = False
        self._video_last[key] = (e, frames)
        return frames

    def close(self) -> None:
        """Close the open video files (a reader with image features only holds none)."""
        for _, reader in self._video_readers.values():
            reader.close()
        self._video_readers.clear()
        self._video_last.clear()

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
        return format_error(self.root, rel, msg)

    def _hw(self, key: str) -> tuple[int, int]:
        return frame_hw(self.features[key])

    def _video_rel(self, key: str, ep: dict[str, Any]) -> str:
        return self.info["video_path"].format(
            video_key=key,
            chunk_index=int(ep[f"videos/{key}/chunk_index"]),
            file_index=int(ep[f"videos/{key}/file_index"]),
        )

    def _check_videos(self) -> None:
        self._episode_starts = np.array([e["dataset_from_index"] for e in self._episodes], np.int64)
        if not self.video_keys:
            return
        from rt2.data.lerobot.video import require_av

        require_av()  # a video dataset is unreadable without it: say so at open, with the install command
        for key in self.video_keys:
            for ep in self._episodes:
                rel = self._video_rel(key, ep)
                start, stop = ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"]
                if start is None or stop is None or not 0 <= start < stop:
                    raise self._err(
                        "meta/episodes",
                        f"episode {ep['episode_index']}: videos/{key}/from_timestamp={start}, to_timestamp={stop}; "
                        "expected 0 <= from < to",
                    )
                if not (self.root / rel).is_file():
                    raise self._err(rel, f"missing (video of {key!r} for episode {ep['episode_index']}, meta/episodes)")

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
        parts: dict[str, list[np.ndarray]] = {
            k: [] for k in self.features if k not in self._images and k not in self.video_keys
        }
        n = 0
        for rel in rels:
            path = self.root / rel
            if not path.is_file():
                raise self._err(rel, "missing (referenced by meta/episodes data/chunk_index, data/file_index)")
            table = read_parquet(path, memory_map=True)
            self._files.append(path)
            self._file_starts.append(n)
            # Undeclared columns are an error, not ignored: LeRobot casts each file to the info.json features and
            # fails on them, and a column we silently skip is usually a feature someone forgot to declare.
            extra = [c for c in table.column_names if c not in self.features and not c.startswith("__index_level_")]
            if extra:
                raise self._err(
                    rel,
                    f"column(s) {extra} are not declared in meta/info.json features; declare them there "
                    "(dtype, shape) or drop them from the data files",
                )
            for name, ft in self.features.items():
                if name in self.video_keys:
                    if name in table.column_names:
                        raise self._err(
                            rel, f"column {name!r} is a video feature, whose frames belong in videos/, not in data/"
                        )
                    continue
                if name not in table.column_names:
                    raise self._err(
                        rel,
                        f"missing column {name!r} declared in meta/info.json features; re-collect or re-convert the "
                        "dataset, or remove the feature from meta/info.json if it was never recorded",
                    )
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
