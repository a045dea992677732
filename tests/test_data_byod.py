"""Bring your own data: another robot's LeRobot v3.0 dataset (wrist camera, float[7] actions binned with the
dataset's NormStats) and a JSONL VQA folder, each read, validated and trained on through ``rt2 pretrain`` /
``rt2 train``; the policy answers in the robot's own units and the checkpoint carries the NormStats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rt2 import cli
from rt2.data.lerobot import Episode, LeRobotWriter

NAMES = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
TASKS = ["pick up the sponge", "open the top drawer"]


def write_foreign(root, episodes: int = 3, length: int = 10, seed: int = 0) -> np.ndarray:
    """A 'real robot' dataset: wrist + front cameras, 7-D state and float actions. Returns actions float[N, 7]."""
    rng = np.random.default_rng(seed)
    features = {
        "observation.images.wrist": {"dtype": "image", "shape": [48, 64, 3]},
        "observation.images.front": {"dtype": "image", "shape": [40, 40, 3]},
        "observation.state": {"dtype": "float32", "shape": [7], "names": NAMES},
        "action": {"dtype": "float32", "shape": [7], "names": NAMES},
    }
    scale = np.array([0.05, 0.05, 0.05, 0.3, 0.3, 0.3, 1.0])
    actions = []
    with LeRobotWriter(root, features, fps=15, robot_type="my_arm") as w:
        for e in range(episodes):
            act = rng.uniform(-1, 1, (length, 7)) * scale
            act[:, 6] = (rng.random(length) > 0.5).astype(float)  # gripper open/closed
            frames = {
                "observation.images.wrist": rng.integers(0, 256, (length, 48, 64, 3), dtype=np.uint8),
                "observation.images.front": np.full((length, 40, 40, 3), 40 * e, np.uint8),
                "observation.state": rng.normal(size=(length, 7)),
                "action": act,
            }
            w.add_episode(Episode(task=TASKS[e % len(TASKS)], frames=frames))
            actions.append(act.astype(np.float32))
    return np.concatenate(actions)


def write_vqa(root, rows: list[dict] | None = None) -> None:
    """A JSONL folder with a PNG and a JPEG of other sizes than the model's."""
    (root / "img").mkdir(parents=True)
    Image.fromarray(np.full((30, 50, 3), (200, 20, 20), np.uint8)).save(root / "img/red.png")
    Image.fromarray(np.full((64, 64, 3), (20, 20, 200), np.uint8)).save(root / "img/blue.jpg")
    rows = rows or [
        {"images": ["img/red.png"], "prompt": "Q: what colour is the cup? A:", "target": "red"},
        {"images": "img/blue.jpg", "question": "what colour is the cup?", "target": "blue", "id": 7},
        {"images": ["img/blue.jpg"], "prompt": "Caption:", "target": "a blue square"},
    ]
    (root / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    root = tmp_path_factory.mktemp("byod") / "my_arm"
    return root, write_foreign(root)


def test_foreign_dataset_columns_bins_and_clip_rate(foreign):
    from rt2.data.robot import PAIR_TASKS, RobotActions, RobotAux, RobotDataConfig
    from rt2.data.robot_columns import RobotColumns, open_robot_dataset

    root, actions = foreign
    with pytest.raises(ValueError, match=r"2 image features.*observation.images.wrist.*--image-key"):
        open_robot_dataset(root)
    with pytest.raises(ValueError, match=r"'observation.images.top' does not exist.*images.front"):
        open_robot_dataset(root, RobotColumns(image_keys=("observation.images.top",)))
    with pytest.raises(ValueError, match=r"no numeric feature 'act'.*--action-key.*'observation.state'"):
        open_robot_dataset(root, RobotColumns(image_keys=("observation.images.wrist",), action_key="act"))
    with pytest.raises(ValueError, match="not rt2 tabletop data"):
        open_robot_dataset(root, RobotColumns(image_keys=("observation.images.wrist",), state_key="observation.state"))

    data = open_robot_dataset(root, RobotColumns(image_keys=("observation.images.wrist",)))
    tok = data.tokenizer
    assert tok.space.names == tuple(NAMES) and tok.n_bins == 256 and data.norm_stats_key == "my_arm/action"
    q01, q99 = np.quantile(actions.astype(np.float64), [0.01, 0.99], axis=0)
    np.testing.assert_allclose(tok.domain[0], q01, rtol=1e-6)
    np.testing.assert_allclose(tok.domain[1], q99, rtol=1e-6)
    labels = np.concatenate([e.labels for e in data.episodes])
    assert labels.min() >= 0 and labels.max() <= 255
    inside = (actions >= q01) & (actions <= q99)
    err = np.abs(tok.decode(labels) - actions)
    assert (err[inside] <= np.broadcast_to(tok.bin_width, err.shape)[inside] / 2 + 1e-6).all()
    # q01/q99: 1-2 % of the continuous values of each dim fall outside (gripper is 0/1: none)
    outside = int((~inside).sum())
    assert 0 < data.info["clip_rate"] == pytest.approx(outside / actions.size, abs=1e-6)
    assert data.info["clip_rate_per_dim"]["gripper"] == 0.0
    assert [e.instruction for e in data.episodes] == [TASKS[0], TASKS[1], TASKS[0]]
    assert data.episodes[0].effector is None and tok.clip_stats.seen == 0  # counters reset for inference

    two = open_robot_dataset(root, RobotColumns(image_keys=("observation.images.front", "observation.images.wrist")))
    acts = RobotActions(two.episodes, RobotDataConfig(n_frames=2, on_web_only="keep"), action_space=two.tokenizer)
    ex = acts[11]  # episode 1, step 1: (front, wrist) at step 0, then at step 1
    ep = two.episodes[1]
    assert [im.shape for im in ex.images] == [(40, 40, 3), (48, 64, 3)] * 2
    assert np.array_equal(ex.images[1], ep.extra_images[0][0]) and np.array_equal(ex.images[3], ep.extra_images[0][1])
    assert ex.images[0][0, 0, 0] == 40 and ex.target == tok.to_text(ep.labels[1])
    with pytest.raises(ValueError, match="aux_effector needs the effector"):
        RobotAux(two.episodes, RobotDataConfig(n_frames=2))
    aux = RobotAux(two.episodes, RobotDataConfig(n_frames=2, aux_tasks=PAIR_TASKS, on_web_only="keep"))
    assert all([im.shape for im in aux[i].images] == [(40, 40, 3), (48, 64, 3)] * 2 for i in range(20))


def test_jsonl_vqa_reads_and_validates(tmp_path):
    from rt2.data.vqa_files import JsonlVQA

    write_vqa(tmp_path / "cups")
    vqa = JsonlVQA(tmp_path / "cups", n_frames=2)
    assert len(vqa) == 3 and vqa.source == "cups"
    ex = vqa[1]
    assert ex.kind == "text" and ex.source == "cups" and ex.prompt == "Q: what colour is the cup? A:"
    assert len(ex.images) == 2 and ex.images[0].shape == (64, 64, 3) and ex.target == "blue"
    assert tuple(vqa[0].images[0][0, 0]) == (200, 20, 20)  # RGB order kept

    def bad(rows, match, tag):
        folder = tmp_path / tag
        write_vqa(folder, rows)
        with pytest.raises(ValueError, match=match):
            JsonlVQA(folder)

    ok = {"images": ["img/red.png"], "prompt": "Caption:", "target": "red"}
    bad([ok, {**ok, "images": ["img/nope.png"]}], r"line 2: image 'img/nope.png' not found", "missing")
    bad([{**ok, "target": "  "}], r"line 1: 'target' must be a non-empty string", "empty_target")
    bad([{**ok, "prompt": ""}], r"'prompt' must be a non-empty string", "empty_prompt")
    bad([{**ok, "answer": "x"}], r"unknown key\(s\) \['answer'\]", "unknown")
    bad([{**ok, "id": "r9", "images": ["img/red.png"] * 3}], r"\(id 'r9'\): 3 images.*1 frame", "count")
    (tmp_path / "cups/data.jsonl").write_text('{"images": "img/red.png", "prompt": "Caption:", "target": "r"}\n{oops\n')
    with pytest.raises(ValueError, match=r"data.jsonl, line 2: not valid JSON"):
        JsonlVQA(tmp_path / "cups")
    (tmp_path / "cups/img/red.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"line 1: image 'img/red.png' is not a readable image"):
        JsonlVQA(tmp_path / "cups")
    with pytest.raises(FileNotFoundError, match="data.jsonl"):
        JsonlVQA(tmp_path / "nowhere")


def _rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_pretrain_and_cofinetune_on_your_own_data(foreign, tmp_path, capsys):
    """pretrain with a JSONL folder in the mixture, then co-fine-tune a 7-D policy on the foreign dataset."""
    from rt2.policy.policy import Policy

    root, actions = foreign
    write_vqa(tmp_path / "cups")
    common = ["--preset", "debug", "--no-progress", "--tokenizer-corpus", "100", "--steps", "2", "--batch-size", "6"]
    web = ["--web-data", f"{tmp_path / 'cups'}:2"]
    assert cli.main(["pretrain", "--out", str(tmp_path / "pt"), *web, *common]) == 0
    assert all("loss/cups" in r and "loss/web" in r for r in _rows(tmp_path / "pt"))
    info = json.loads((tmp_path / "pt/final/training.json").read_text())["data"]
    assert info["weights"] == pytest.approx({"web": 1 / 3, "cups": 2 / 3})

    argv = ["train", "--regime", "cofinetune", "--init", str(tmp_path / "pt"), "--data", str(root)]
    argv += ["--image-key", "observation.images.wrist", *web, "--out", str(tmp_path / "cft"), *common]
    assert cli.main(argv) == 0
    assert "clip rate" in capsys.readouterr().err
    rows = _rows(tmp_path / "cft")
    assert all("loss/cups" in r and "loss/robot" in r for r in rows) and "action_l1" in rows[0]
    info = json.loads((tmp_path / "cft/final/training.json").read_text())["data"]
    assert info["weights"] == pytest.approx({"robot": 0.5, "web": 0.5 / 3, "cups": 1 / 3})  # no aux at 1 frame
    assert info["action_key"] == "action" and 0 < info["clip_rate"] < 0.1  # >= 2 of 30 values per dim

    policy = Policy.from_pretrained(tmp_path / "cft/final")
    meta = policy.metadata()
    assert meta["norm_stats_key"] == "my_arm/action" and meta["action_space"]["names"] == NAMES
    stats = json.loads((tmp_path / "cft/final/norm_stats.json").read_text())["stats"]
    assert set(stats) == {"my_arm/action"}
    a = policy.predict_action([np.zeros((48, 64, 3), np.uint8)], TASKS[0])
    assert a.dtype == np.float32 and a.shape == (7,)
    assert (a >= actions.min(0)).all() and (a <= actions.max(0)).all()


def test_scratch_on_foreign_data_and_flag_errors(foreign, tmp_path, capsys):
    import re

    from rt2.policy.policy import Policy

    root, actions = foreign
    common = ["--preset", "debug", "--no-progress", "--tokenizer-corpus", "50", "--steps", "1", "--batch-size", "4"]
    base = ["train", "--regime", "scratch", "--data", str(root), "--out", str(tmp_path / "s"), *common]
    cams = ["--image-key", "observation.images.wrist", "--image-key", "observation.images.front"]
    # User errors: one line "rt2 train: error: ..." and exit code 2 (rt2.cli), never an exception or traceback.
    for argv, pattern in (
        (base, "--image-key"),
        ([*base, *cams], r"2 cameras.*multiple of 2.*--frames"),
        ([*base, *cams, "--web-data", str(tmp_path)], "robot-only"),
    ):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "rt2 train: error:" in err and re.search(pattern, err), err
    assert cli.main([*base, *cams, "--frames", "2", "--action-bins", "64", "--action-norm", "min_max"]) == 0
    policy = Policy.from_pretrained(tmp_path / "s/final")
    assert policy.vla.action_tokenizer.value_ranges == ((0, 63),) * 7
    frames = [np.zeros((40, 40, 3), np.uint8), np.zeros((48, 64, 3), np.uint8)]
    a = policy.predict_action(frames, TASKS[1])
    assert a.shape == (7,) and (a >= actions.min(0)).all() and (a <= actions.max(0)).all()
