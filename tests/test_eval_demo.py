"""``rt2 demo``: the closed-loop demo on seen + emergent tasks (table, grid video, JSON), with a random-init tiny
checkpoint (works whether or not the shipped policy exists) and with the scripted oracle (real successes)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from rt2.cli import main
from rt2.eval import demo

CORPUS = ["Q: what action should the robot take to push the red moon to the blue cube? A: 3 -7"] * 20


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    d = tmp_path_factory.mktemp("tiny") / "ckpt"
    VLA.build("pali-tiny", TextTokenizer.train(CORPUS, vocab_size=256), n_frames=2).save_pretrained(d)
    return d


def _video(out):
    paths = [p for p in out.iterdir() if p.name.startswith("demo.") and p.suffix in (".mp4", ".gif")]
    assert len(paths) == 1, list(out.iterdir())
    return paths[0]


def test_demo_quick_with_a_checkpoint(tiny_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--policy", str(tiny_dir), "--quick", "--episodes", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    info = json.loads((out / "demo.json").read_text())
    tasks = [t["task"] for t in info["per_task"]]
    assert tasks == list(demo.QUICK_TASKS)
    cats = {r["category"] for r in info["episodes"]}
    assert "seen" in cats and any(c.startswith("emergent") for c in cats)
    assert any("desliza" in r["instruction"] or "empuja" in r["instruction"] or "mueve" in r["instruction"]
               for r in info["episodes"] if r["task"] == "spanish")  # fmt: skip
    assert all(r["steps"] <= 25 for r in info["episodes"]) and info["max_steps"] == 25
    video = _video(out)
    assert str(video) in printed.replace("\n", "") and "elapsed:" in printed
    frames = iio.imread(video)
    longest = max(r["steps"] for r in info["episodes"])
    assert frames.shape[0] == longest + 1 + demo.FPS  # reset frame + one per step + one second of outcome
    assert frames.shape[1:] == (2 * demo.TILE[0], 3 * demo.TILE[1], 3)  # 4 tasks -> a 2 x 3 grid
    # the same model answers one held-out web question per skill, scored like rt2 vqa
    from rt2.data.web import score_answer

    web = info["web_questions"]
    assert [q["task"] for q in web] == list(demo.WEB_TASKS)
    assert all(q["question"].startswith("Q: ") and q["expected"] for q in web)
    assert [q["correct"] for q in web] == [score_answer(q["task"], q["answer"], q["expected"]) for q in web]
    assert "held-out web questions" in printed


def test_demo_oracle_solves_seen_and_emergent(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--policy", "oracle", "--episodes", "1", "--out", str(out)]) == 0
    info = json.loads((out / "demo.json").read_text())
    assert len(info["per_task"]) == len(demo.DEMO_TASKS)
    by_cat = {}
    for r in info["episodes"]:
        by_cat.setdefault(r["category"].split(":")[0], []).append(r["success"])
    assert sum(by_cat["seen"]) >= 4 and sum(by_cat["emergent"]) >= 3, by_cat  # the oracle is an upper bound
    assert "web_questions" not in info  # a scripted expert has no language model to ask


def test_grid_frames_hold_last_frame_and_mark_outcomes():
    a = [np.full((360, 480, 3), 10, np.uint8)] * 3
    b = [np.full((360, 480, 3), 200, np.uint8)] * 6
    frames = demo.grid_frames([a, b], [True, False], cols=3)
    assert len(frames) == 6 + demo.FPS and frames[0].shape == (demo.TILE[0], 2 * demo.TILE[1], 3)
    last = frames[-1]
    assert last[0, 0].tolist() == [40, 170, 60]  # tile 1 ended: success border
    assert last[0, demo.TILE[1]].tolist() == [210, 40, 40]  # tile 2 ended: failure border
    assert frames[0][0, 0].tolist() == [255, 255, 255]  # still running: neutral margin
    assert frames[3][demo.TILE[0] // 2, demo.TILE[1] // 2].tolist() == [10, 10, 10]  # held last frame


def test_unknown_demo_task_is_refused():
    with pytest.raises(ValueError, match="unknown demo task"):
        demo.demo_suite(["block2block", "juggle"])


def test_web_questions_are_fixed_and_match_policy_answer(tiny_dir):
    """The demo's questions do not depend on the model (first of each type in the held-out split), and the answer
    shown is what Policy.answer decodes for that question."""
    from rt2.policy import Policy

    policy = Policy.from_pretrained(tiny_dir)
    a, b = demo.web_questions(policy, ("vqa_colour", "math_text")), demo.web_questions(policy, ("vqa_colour",))
    assert a[0]["question"] == b[0]["question"] and a[0]["expected"] == b[0]["expected"]
    question = a[1]["question"].removeprefix("Q: ").removesuffix(" A:")
    from rt2.data.web import WebCorpus
    from rt2.eval.vqa import vqa_items

    _, config = vqa_items(policy, 1)
    item = next(it for it in (WebCorpus(config).item(i) for i in range(400)) if it.task == "math_text")
    assert policy.answer(list(item.images), question, max_new_tokens=16) == a[1]["answer"]
    with pytest.raises(ValueError, match="no held-out web item of type"):
        demo.web_questions(policy, ("juggling",))
