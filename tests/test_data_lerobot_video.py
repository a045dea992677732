"""LeRobot v3.0 video features: rt2's writer, a dataset in LeRobot's own layout, ``rt2 collect --video``, and
training on both; frame-exact decoding and the codecs' measured pixel error."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from lerobot_video_fixture import KEY, LENGTHS, write_lerobot_video_dataset
from rt2 import cli
from rt2.data.lerobot import (
    DatasetFormatError,
    Episode,
    LeRobotDatasetReader,
    LeRobotWriter,
    VideoDecodeError,
    VideoOptions,
)
from rt2.data.robot_columns import RobotColumns, open_robot_dataset
from rt2.sim import EnvConfig, TabletopEnv

pytest.importorskip("av")  # the optional extra rt2[video]; rt2's modules import it only when decoding

FEATURES = {"cam": {"dtype": "video", "shape": [72, 96, 3]}, "action": {"dtype": "float32", "shape": [2]}}


def _tabletop_episodes(n: int = 4) -> list[np.ndarray]:
    """Rendered 72x96 tabletop frames (blocks a few pixels wide: the hard case for chroma subsampling)."""
    env = TabletopEnv(EnvConfig(image_size=(72, 96), two_frames=False))
    rng = np.random.default_rng(0)
    out = []
    for s in range(n):
        obs, _ = env.reset(seed=s)
        frames = []
        for _ in range(6 + s):
            frames.append(obs["image"])
            obs, *_ = env.step(rng.integers(-10, 11, 2))
        out.append(np.stack(frames))
    return out


def _write(root, episodes, **kw):
    with LeRobotWriter(root, FEATURES, fps=10, **kw) as w:
        for e, frames in enumerate(episodes):
            w.add_episode(Episode(task=f"task {e % 2}", frames={"cam": frames, "action": np.zeros((len(frames), 2))}))
    return LeRobotDatasetReader(root)


def _frame_exact(decoded: np.ndarray, original: np.ndarray) -> bool:
    """Each decoded frame is closer to its own original than to any other frame of the episode."""
    d = np.abs(decoded.astype(np.int16)[:, None] - original.astype(np.int16)[None]).mean(axis=(2, 3, 4))
    return bool((d.argmin(axis=1) == np.arange(len(original))).all())


def test_writer_layout_and_h264_error(tmp_path):
    episodes = _tabletop_episodes()
    ds = _write(tmp_path / "ds", episodes)
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    vinfo = info["features"]["cam"]["info"]
    assert (vinfo["video.codec"], vinfo["video.pix_fmt"], vinfo["video.fps"]) == ("h264", "yuv444p", 10)
    assert (tmp_path / "ds/videos/cam/chunk-000/file-000.mp4").is_file()
    assert "cam" not in pq.read_table(tmp_path / "ds/data/chunk-000/file-000.parquet").column_names
    eps = ds.episodes()
    lengths = [len(f) for f in episodes]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) / 10
    np.testing.assert_allclose([e["videos/cam/from_timestamp"] for e in eps], starts)
    np.testing.assert_allclose([e["videos/cam/to_timestamp"] for e in eps], starts + np.array(lengths) / 10)
    assert ds.stats["cam"]["mean"].shape == (3, 1, 1)  # image stats in LeRobot's shape, from the raw frames
    worst = 0
    for e, frames in enumerate(episodes):
        decoded = ds.episode(e)["cam"]
        assert decoded.shape == frames.shape and _frame_exact(decoded, frames)
        worst = max(worst, int(np.abs(decoded.astype(int) - frames).max()))
    # Measured: max 2 of 255 (h264, yuv444p, crf 0: only the RGB <-> YUV rounding is lost).
    assert worst <= 2, worst
    i = lengths[0] + 3  # random access by frame index goes through the same episode decode
    np.testing.assert_array_equal(ds[i]["cam"], ds.episode(1)["cam"][3])
    ds.cache_images()
    np.testing.assert_array_equal(ds.image("cam", i), ds.episode(1)["cam"][3])


def test_libsvtav1_is_lossy_on_small_frames(tmp_path):
    episodes = _tabletop_episodes(3)
    ds = _write(tmp_path / "ds", episodes, video=VideoOptions("libsvtav1"))
    assert ds.features["cam"]["info"]["video.codec"] == "av1"
    errs = [np.abs(ds.episode(e)["cam"].astype(int) - f) for e, f in enumerate(episodes)]
    assert all(_frame_exact(ds.episode(e)["cam"], f) for e, f in enumerate(episodes))
    # Measured: mean ~1.3, max up to ~175 of 255 at block edges (4:2:0 halves the colour resolution).
    assert np.mean([x.mean() for x in errs]) < 3 and max(x.max() for x in errs) > 20


def test_video_files_roll_over_by_size(tmp_path):
    episodes = _tabletop_episodes(3)
    ds = _write(tmp_path / "ds", episodes, video_files_size_in_mb=1e-4)
    eps = ds.episodes()
    assert [e["videos/cam/file_index"] for e in eps] == [0, 1, 2]  # each episode past the (tiny) size limit
    assert all(e["videos/cam/from_timestamp"] == 0 for e in eps)
    assert all(_frame_exact(ds.episode(e)["cam"], f) for e, f in enumerate(episodes))


def test_dataset_in_lerobots_own_layout(tmp_path):
    originals = write_lerobot_video_dataset(tmp_path / "lr")
    ds = LeRobotDatasetReader(tmp_path / "lr")
    assert ds.image_keys == ds.video_keys == [KEY]
    eps = ds.episodes()
    assert [e[f"videos/{KEY}/file_index"] for e in eps] == [0, 0, 1]
    assert eps[1][f"videos/{KEY}/from_timestamp"] == pytest.approx(LENGTHS[0] / 10)
    for e, frames in originals.items():
        decoded = ds.episode(e)[KEY]
        assert _frame_exact(decoded, frames)
        # Measured: max 34 of 255 (libsvtav1 crf 30, yuv420p: LeRobot's defaults, at the square's edges).
        assert np.abs(decoded.astype(int) - frames).max() <= 48
    data = open_robot_dataset(tmp_path / "lr", RobotColumns(action_key="action"))
    assert [len(e.images) for e in data.episodes] == list(LENGTHS)
    assert data.columns.image_keys == (KEY,)


def test_video_defects_are_named(tmp_path, monkeypatch):
    write_lerobot_video_dataset(tmp_path / "lr")
    ep_path = tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(ep_path)
    col = f"videos/{KEY}/from_timestamp"
    shifted = table.set_column(table.schema.get_field_index(col), col, [[0.0, 0.65, 0.0]])
    pq.write_table(shifted, ep_path)
    ds = LeRobotDatasetReader(tmp_path / "lr")
    with pytest.raises(VideoDecodeError, match=r"file-000\.mp4: no frame at t=0\.65"):
        ds.episode(1)
    pq.write_table(table, ep_path)
    (tmp_path / "lr/videos" / KEY / "chunk-000/file-001.mp4").unlink()
    with pytest.raises(DatasetFormatError, match=r"file-001\.mp4: missing"):
        LeRobotDatasetReader(tmp_path / "lr")
    import rt2.data.lerobot.video as video

    def no_av(name):
        raise ImportError(name)

    monkeypatch.setattr(video.importlib, "import_module", no_av)
    with pytest.raises(ImportError, match=r'pip install "rt2\[video\]"'):
        LeRobotDatasetReader(tmp_path / "lr")


def test_collect_video_matches_png_and_both_layouts_train(tmp_path):
    common = ["--episodes", "3", "--no-progress", "--seed", "3"]
    assert cli.main(["collect", *common, "--out", str(tmp_path / "png")]) == 0
    assert cli.main(["collect", *common, "--video", "--out", str(tmp_path / "vid")]) == 0
    png, vid = LeRobotDatasetReader(tmp_path / "png"), LeRobotDatasetReader(tmp_path / "vid")
    assert vid.features["observation.images.top"]["dtype"] == "video" and not list((tmp_path / "png").glob("videos"))
    assert len(png) == len(vid)
    for e in range(png.num_episodes):
        a, b = png.episode(e)["observation.images.top"], vid.episode(e)["observation.images.top"]
        assert np.abs(a.astype(int) - b).max() <= 2  # the same rollouts; h264 yuv444p crf 0
    train = ["train", "--regime", "scratch", "--preset", "debug", "--steps", "2", "--no-progress"]
    train += ["--tokenizer-corpus", "100"]
    assert cli.main([*train, "--data", str(tmp_path / "vid"), "--out", str(tmp_path / "run_vid")]) == 0
    write_lerobot_video_dataset(tmp_path / "lr")
    assert cli.main([*train, "--data", str(tmp_path / "lr"), "--out", str(tmp_path / "run_lr")]) == 0
    for run in ("run_vid", "run_lr"):
        assert (tmp_path / run / "final").is_dir()
