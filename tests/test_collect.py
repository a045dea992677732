"""`rt2 collect`: end to end through the CLI, determinism across worker counts, DART labels, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rt2.data.collect as collect_mod
from rt2.cli import main
from rt2.data.collect import CollectConfig, collect, task_spec_from_json
from rt2.data.lerobot import LeRobotDatasetReader
from rt2.sim import LT_FAMILIES, EnvConfig, SceneConfig, TabletopEnv


def test_collect_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["collect", "--episodes", "3", "--out", str(out), "--no-progress", "--image-size", "48x64"]) == 0
    assert "wrote 3 episodes" in capsys.readouterr().out
    ds = LeRobotDatasetReader(out)
    assert ds.num_episodes == 3 and ds.fps == 10
    assert ds.info["robot_type"] == "rt2_tabletop"
    eps = ds.episodes()
    assert sorted(e["family"] for e in eps) == sorted(LT_FAMILIES[:3])  # an even split over families
    assert all(e["success"] for e in eps)
    env = TabletopEnv(EnvConfig(image_size=(48, 64), two_frames=False, scene=SceneConfig.preset("language_table")))
    for e, meta in enumerate(eps):
        frames = ds.episode(e)
        assert frames["observation.images.top"].shape == (meta["length"], 48, 64, 3)
        assert frames["next.success"][-1] and frames["next.done"][-1] and not frames["next.done"][:-1].any()
        np.testing.assert_allclose(frames["action"], frames["action.executed_int"] * 0.01, atol=1e-7)
        np.testing.assert_array_equal(frames["action.executed_int"], frames["action.label_int"])  # --noise 0
        assert np.abs(frames["action.label_int"]).max() <= 10
        spec = task_spec_from_json(meta["task_spec"])
        assert spec.family == meta["family"]
        # The recorded seed rebuilds the exact layout, task and instruction (in-domain evaluation).
        obs, info = env.reset(seed=meta["env_seed"], options={"family": meta["family"]})
        assert info["task"] == spec and obs["instruction"] == frames["task"] == meta["tasks"][0]
        np.testing.assert_array_equal(obs["image"], frames["observation.images.top"][0])
        np.testing.assert_allclose(frames["observation.state"][0], np.concatenate([obs["effector"], obs["target"]]))
    rt2_meta = json.loads((out / "meta/rt2.json").read_text())
    assert rt2_meta["training_label"] == "action.label_int" and rt2_meta["config"]["episodes"] == 3


def test_identical_for_any_worker_count_and_dart_labels(tmp_path):
    cfg = CollectConfig(episodes=4, families=("block2block", "separate"), seed=5, image_size=(32, 48), noise=(0.0, 2.0))
    a = collect(cfg, tmp_path / "w1", workers=1, progress=False)
    b = collect(cfg, tmp_path / "w2", workers=2, progress=False)
    assert (a.episodes, a.frames) == (b.episodes, b.frames)
    for rel in (
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/tasks.parquet",
        "meta/stats.json",
    ):
        assert (tmp_path / "w1" / rel).read_bytes() == (tmp_path / "w2" / rel).read_bytes(), rel
    ds = LeRobotDatasetReader(tmp_path / "w1")
    noisy = [e for e in ds.episodes() if e["noise_units"] == 2.0]
    assert noisy and all(e["attempt"] % 2 == 1 for e in noisy)
    ex = np.concatenate([ds.episode(e["episode_index"])["action.executed_int"] for e in noisy])
    lab = np.concatenate([ds.episode(e["episode_index"])["action.label_int"] for e in noisy])
    assert (ex != lab).any()  # DART: executed = label + noise, the label stays clean
    # a different seed gives different data
    c = collect(CollectConfig(**{**cfg.__dict__, "seed": 6}), tmp_path / "s6", progress=False)
    assert (tmp_path / "s6/data/chunk-000/file-000.parquet").read_bytes() != (
        tmp_path / "w1/data/chunk-000/file-000.parquet"
    ).read_bytes()
    assert c.episodes == 4


def test_keep_failures_and_impossible_quota(tmp_path):
    cfg = CollectConfig(episodes=2, families=("block2block",), max_steps=1, only_success=False, image_size=(32, 48))
    collect(cfg, tmp_path / "fails", progress=False)
    ds = LeRobotDatasetReader(tmp_path / "fails")
    assert [e["success"] for e in ds.episodes()] == [False, False] and len(ds) == 2
    with pytest.raises(RuntimeError, match="oracle keeps failing"):
        collect(
            CollectConfig(**{**cfg.__dict__, "only_success": True, "episodes": 1}), tmp_path / "never", progress=False
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fails"]


def test_bad_arguments_and_overwrite(tmp_path, capsys):
    out = str(tmp_path / "d")
    assert main(["collect", "--episodes", "1", "--out", out, "--families", "block2block,flying", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown task family ['flying']" in err and "block2blockrelative" in err
    with pytest.raises(SystemExit):
        main(["collect", "--episodes", "1", "--out", out, "--image-size", "big"])
    assert "HxW" in capsys.readouterr().err
    args = [
        "collect",
        "--episodes",
        "1",
        "--out",
        out,
        "--families",
        "block2absolute",
        "--no-progress",
        "--image-size",
        "32x48",
    ]
    assert main(args) == 0
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--seed", "3"]) == 0
    assert json.loads((tmp_path / "d/meta/rt2.json").read_text())["config"]["seed"] == 3


def test_out_is_a_regular_file_rejected_before_rollouts(tmp_path, capsys, monkeypatch):
    # Before: a raw NotADirectoryError traceback. The check must come before any rollout is spent.
    def no_rollouts(job):
        raise AssertionError(f"rollout {job} ran although --out is unusable")

    monkeypatch.setattr(collect_mod, "_rollout", no_rollouts)
    f = tmp_path / "results.csv"
    f.write_text("keep me")
    args = ["collect", "--episodes", "2", "--out", str(f), "--overwrite", "--no-progress", "--image-size", "32x48"]
    assert main(args) == 2
    assert "results.csv exists and is not a directory" in capsys.readouterr().err
    assert f.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_ctrl_c_leaves_no_dataset(tmp_path, monkeypatch):
    real, calls = collect_mod._rollout, []

    def interrupt_on_third(job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(collect_mod, "_rollout", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        collect(CollectConfig(episodes=5, image_size=(32, 48)), tmp_path / "d", progress=False)
    assert list(tmp_path.iterdir()) == []
