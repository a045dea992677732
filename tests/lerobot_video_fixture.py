"""A LeRobot v3.0 video dataset laid out exactly as LeRobot writes it, built without rt2's writer.

What LeRobot (``LeRobotDataset.create(..., use_videos=True)``, v3.0) does and this fixture repeats:

* each episode is encoded on its own with LeRobot's defaults (libsvtav1, yuv420p, g=2, crf=30), then appended to
  the camera's current ``videos/<key>/chunk-000/file-XXX.mp4`` by a stream copy (ffmpeg's concat demuxer,
  here a PyAV remux with the same timestamp shift); a file rolls over past ``video_files_size_in_mb``
  (here: after two episodes);
* ``meta/episodes`` gets ``videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}``, with
  from = the file's duration before the episode and to = from + the episode video's duration;
* the data parquet has no column for the video feature; ``info.json`` ``features[key]`` has ``dtype: video``
  and ``info`` from ``get_video_info`` (``video.codec`` "av1", ``video.pix_fmt``, ``video.fps``, ...);
* ``meta/tasks.parquet`` is a pandas frame indexed by the task string.

Frames carry a large moving square, so every frame differs from its neighbours by far more than the codec's
error: tests can tell whether the decoded frame is the right one, not only a close one.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

KEY = "observation.images.front"
FPS = 10
H, W = 64, 96  # SVT-AV1 needs >= 64 per side
LENGTHS = (6, 9, 7)
TASKS = ("pick up the cube", "open the drawer")
PER_FILE = 2  # episodes per mp4 before LeRobot's size rule would roll over (scaled down)


def frames_for(episode: int, length: int) -> np.ndarray:
    """uint8[T, H, W, 3]: a background colour per episode and a 24 px square moving 8 px per frame."""
    out = np.zeros((length, H, W, 3), np.uint8)
    out[:] = np.array([40 + 50 * episode, 90, 160 - 40 * episode], np.uint8)
    for t in range(length):
        x = 4 + 8 * t
        out[t, 20:44, x : x + 24] = (250, 240, 30)
    return out


def _encode_episode(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libsvtav1", rate=FPS, options={"g": "2", "crf": "30"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _duration_s(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base) if s.duration is not None else float(c.duration / av.time_base)


def _concat(parts: list[Path], dst: Path) -> None:
    """Stream-copy ``parts`` into ``dst`` back to back, each shifted by the durations before it (what ffmpeg's
    concat demuxer with ``-c copy`` does)."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), "w", format="mp4") as out:
        ost, offset = None, Fraction(0)
        for part in parts:
            with av.open(str(part)) as inp:
                ist = inp.streams.video[0]
                if ost is None:
                    ost = out.add_stream_from_template(ist, opaque=True)
                shift = int(offset / ist.time_base)
                for pkt in inp.demux(ist):
                    if pkt.dts is None:
                        continue  # the demuxer's empty flush packet
                    pkt.pts, pkt.dts = pkt.pts + shift, pkt.dts + shift
                    pkt.stream = ost
                    out.mux(pkt)
            offset += Fraction(_duration_s(part)).limit_denominator(100000)


def write_lerobot_video_dataset(root: Path) -> dict[int, np.ndarray]:
    """Write the dataset at ``root``; returns the original frames per episode."""
    root = Path(root)
    tmp = root / "tmp_episodes"
    tmp.mkdir(parents=True)
    originals, ep_rows, data_rows = {}, [], []
    files: dict[int, list[Path]] = {}
    index = 0
    for e, n in enumerate(LENGTHS):
        frames = originals[e] = frames_for(e, n)
        part = tmp / f"episode_{e:06d}.mp4"
        _encode_episode(part, frames)
        file_index = e // PER_FILE
        before = sum(_duration_s(p) for p in files.get(file_index, []))
        files.setdefault(file_index, []).append(part)
        task_index = e % len(TASKS)
        ep_rows.append(
            {
                "episode_index": e,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": index,
                "dataset_to_index": index + n,
                f"videos/{KEY}/chunk_index": 0,
                f"videos/{KEY}/file_index": file_index,
                f"videos/{KEY}/from_timestamp": before,
                f"videos/{KEY}/to_timestamp": before + _duration_s(part),
                "tasks": [TASKS[task_index]],
                "length": n,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
            }
        )
        rng = np.random.default_rng(e)
        for t in range(n):
            data_rows.append(
                {
                    "observation.state": rng.normal(size=3).astype(np.float32).tolist(),
                    "action": rng.normal(size=3).astype(np.float32).tolist(),
                    "timestamp": np.float32(t / FPS),
                    "frame_index": t,
                    "episode_index": e,
                    "index": index + t,
                    "task_index": task_index,
                }
            )
        index += n
    for file_index, parts in files.items():
        _concat(parts, root / f"videos/{KEY}/chunk-000/file-{file_index:03d}.mp4")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()

    vec = pa.list_(pa.float32(), 3)
    data = pa.table(
        {
            "observation.state": pa.array([r["observation.state"] for r in data_rows], vec),
            "action": pa.array([r["action"] for r in data_rows], vec),
            "timestamp": pa.array([r["timestamp"] for r in data_rows], pa.float32()),
            **{
                k: pa.array([r[k] for r in data_rows], pa.int64())
                for k in ("frame_index", "episode_index", "index", "task_index")
            },
        }
    )
    (root / "data/chunk-000").mkdir(parents=True)
    pq.write_table(data, root / "data/chunk-000/file-000.parquet")
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ep_rows), root / "meta/episodes/chunk-000/file-000.parquet")
    tasks = pa.table({"task_index": pa.array([0, 1], pa.int64()), "__index_level_0__": pa.array(list(TASKS))})
    pq.write_table(tasks, root / "meta/tasks.parquet")
    vector = {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]}
    scalar = {"shape": [1], "names": None}
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so101",
        "total_episodes": len(LENGTHS),
        "total_frames": index,
        "total_tasks": len(TASKS),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": FPS,
        "splits": {"train": f"0:{len(LENGTHS)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {
            KEY: {
                "dtype": "video",
                "shape": [H, W, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": H,
                    "video.width": W,
                    "video.codec": "av1",
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "video.fps": FPS,
                    "video.channels": 3,
                    "has_audio": False,
                },
            },
            "observation.state": vector,
            "action": vector,
            "timestamp": {"dtype": "float32", **scalar},
            "frame_index": {"dtype": "int64", **scalar},
            "episode_index": {"dtype": "int64", **scalar},
            "index": {"dtype": "int64", **scalar},
            "task_index": {"dtype": "int64", **scalar},
        },
    }
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return originals
