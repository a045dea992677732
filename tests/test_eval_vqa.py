"""``rt2 vqa``: held-out web VQA accuracy per task type vs chance, on a tiny random-init checkpoint (~3-6 s)."""

from __future__ import annotations

import json

import pytest

from backbone_checks import tiny_vla
from rt2.cli import main
from rt2.data.web import WebCorpus, WebCorpusConfig, chance_baseline, score_answer
from rt2.eval.stats import wilson
from rt2.eval.vqa import evaluate_vqa, generate_answers, summarize_vqa, vqa_items
from rt2.policy import Policy

ROW_KEYS = {"n", "correct", "accuracy", "ci95", "chance", "above_chance"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("vqa") / "ckpt"
    tiny_vla("language_table", n_frames=2, seed=3).save_pretrained(d)  # spread weights: no near-tie argmaxes
    return d


@pytest.fixture(scope="module")
def policy(tiny_dir):
    return Policy.from_pretrained(tiny_dir)


def _check_row(r: dict) -> None:
    assert set(r) == ROW_KEYS
    assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["chance"] <= 1.0
    assert r["accuracy"] == pytest.approx(r["correct"] / r["n"])
    assert list(wilson(r["correct"], r["n"])) == r["ci95"]
    assert r["above_chance"] == (r["ci95"][0] > r["chance"])


def test_vqa_cli_writes_per_task_accuracy_and_chance(tiny_dir, policy, tmp_path, capsys):
    out = tmp_path / "vqa"
    argv = ["vqa", "--policy", str(tiny_dir), "--items", "24", "--batch-size", "8", "--max-new-tokens", "6"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    info = json.loads((out / "vqa_info.json").read_text())
    assert info["command"].startswith(f"rt2 vqa --policy {tiny_dir} --items 24 --split heldout --preset all_uniform")
    assert info["policy"] == str(tiny_dir) and info["rt2_version"] and info["decoding"] == "greedy"
    # the corpus was rendered for this policy: its image size and frame count, held-out split
    cfg = WebCorpusConfig.from_dict(info["corpus"])
    assert cfg.image_size == policy.image_size and cfg.n_frames == 2 and cfg.split == "heldout"
    items = WebCorpus(cfg).items(range(24))
    preds = info["predictions"]
    assert [(p["task"], p["prompt"], p["target"]) for p in preds] == [(i.task, i.prompt, i.target) for i in items]
    # every verdict is score_answer's on the decoded text; per-task counts add up to the items
    assert [p["correct"] for p in preds] == [
        score_answer(i.task, p["prediction"], i.target) for i, p in zip(items, preds, strict=True)
    ]
    per_task = info["per_task"]
    assert set(per_task) == {i.task for i in items}
    assert sum(r["n"] for r in per_task.values()) == 24 == info["overall"]["n"]
    for task, r in per_task.items():
        _check_row(r)
        assert r["correct"] == sum(p["correct"] for p in preds if p["task"] == task)
    _check_row(info["overall"])
    # chance comes from the same items
    chance = chance_baseline(items)
    assert {t: r["chance"] for t, r in per_task.items()} == chance
    assert info["overall"]["chance"] == pytest.approx(sum(chance[i.task] for i in items) / 24)
    assert "overall" in printed and "chance" in printed and all(t[:8] in printed for t in per_task)


def test_predictions_are_what_policy_answer_decodes(policy):
    items, _ = vqa_items(policy, n=16, seed=5)
    questions = [(k, it) for k, it in enumerate(items) if it.prompt.startswith("Q: ") and it.prompt.endswith(" A:")]
    assert len(questions) >= 3  # captions are the only other prompt form
    ans = generate_answers(policy, items, batch_size=1, max_new_tokens=5)
    assert ans.too_long == 0 and any(ans.predictions)
    for k, it in questions[:3]:
        assert ans.predictions[k] == policy.answer(list(it.images), it.prompt[3:-3], max_new_tokens=5)
    # batching by length pads prompts; spread weights keep argmaxes far from ties, so the answers are unchanged
    batched = evaluate_vqa(policy, items, batch_size=16, max_new_tokens=5)
    assert batched["predictions"] == ans.predictions


def test_prompts_longer_than_the_text_window_are_scored_wrong_not_decoded(tmp_path):
    small = Policy(tiny_vla("language_table", seed=3, max_text_len=24))
    items, _ = vqa_items(small, n=24, seed=1)
    lengths = [1 + len(small.vla.backbone.tokenizer.encode(it.prompt)) for it in items]
    ans = generate_answers(small, items, batch_size=8, max_new_tokens=6)
    assert ans.too_long == sum(n > 24 for n in lengths) > 0
    assert all(ans.predictions[k] == "" for k, n in enumerate(lengths) if n > 24)
    assert any(ans.predictions[k] for k, n in enumerate(lengths) if n <= 24)  # the others were decoded
    assert ans.clamped >= sum(24 - 6 + 1 < n <= 24 for n in lengths)  # prompts leaving < 6 tokens of room


def test_summarize_scores_given_predictions():
    cfg = WebCorpusConfig.preset("all_uniform", split="heldout", image_size=(24, 32))
    items = WebCorpus(cfg).items(range(46))
    perfect = summarize_vqa(items, [it.target for it in items])
    assert all(perfect["correct"]) and perfect["overall"]["accuracy"] == 1.0
    assert all(r["accuracy"] == 1.0 for r in perfect["per_task"].values())
    empty = summarize_vqa(items, [""] * len(items))
    assert not any(empty["correct"]) and empty["overall"]["accuracy"] == 0.0
    assert not any(r["above_chance"] for r in empty["per_task"].values())
    # wrong only on one task type: only that row drops
    task = items[0].task
    mixed = summarize_vqa(items, ["" if it.task == task else it.target for it in items])
    assert mixed["per_task"][task]["accuracy"] == 0.0
    assert all(r["accuracy"] == 1.0 for t, r in mixed["per_task"].items() if t != task)
    with pytest.raises(ValueError, match="predictions"):
        summarize_vqa(items, ["x"])


def test_bad_arguments_are_clear_errors(tiny_dir, tmp_path, capsys):
    assert main(["vqa", "--policy", str(tmp_path / "missing"), "--items", "4"]) == 2
    assert "not a checkpoint directory" in capsys.readouterr().err
    assert main(["vqa", "--policy", str(tiny_dir), "--items", "0"]) == 2
    assert "--items must be a positive int" in capsys.readouterr().err
