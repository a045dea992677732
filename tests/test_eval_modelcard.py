"""MODEL_CARD.md from real eval_info.json files (scripted oracle, a random-init checkpoint, an always-invalid policy):
numbers, Wilson CIs, training budget and failure modes come from the data."""

from __future__ import annotations

import hashlib

import pytest

from rt2.eval import Decision, PolicyAdapter, RunConfig, evaluate, get_suite
from rt2.eval.modelcard import main, write_model_card
from rt2.eval.stats import wilson

CORPUS = ["Q: what action should the robot take to push the red moon to the blue cube? A: 3 -7"] * 20
TRAINING = {
    "step": 300,
    "config": {"model": "pali-tiny", "steps": 300, "batch_size": 16, "grad_accum": 2, "lr": 0.001, "seed": 7},
    "data": {"regime": "cofinetune", "weights": {"robot": 0.5, "web": 0.5}, "init": "runs/pretrain/final"},
}


class _Invalid(PolicyAdapter):
    name = "invalid"

    def act(self, batch):
        return [Decision(None, "nan nan") for _ in batch]


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    root = tmp_path_factory.mktemp("card")
    ckpt = root / "ckpt"
    VLA.build("pali-tiny", TextTokenizer.train(CORPUS, vocab_size=256)).save_pretrained(ckpt)
    suites = [get_suite("seen"), get_suite("emergent_symbols")]
    cfg = RunConfig(episodes=2, max_steps=30)
    evaluate(["oracle"], suites + [get_suite("cot")], cfg, root / "oracle", quiet=True)
    evaluate([str(ckpt)], suites, RunConfig(episodes=1, max_steps=4), root / "model", quiet=True)
    evaluate(
        [_Invalid()], [get_suite("emergent_symbols")], RunConfig(episodes=1, max_steps=5), root / "bad", quiet=True
    )
    return ckpt, root


def test_card_numbers_come_from_the_data(evals):
    import json

    ckpt, root = evals
    infos = [root / n / "eval_info.json" for n in ("oracle", "model", "bad")]
    path = write_model_card(ckpt, infos, TRAINING)
    assert path == ckpt / "MODEL_CARD.md"
    card = path.read_text()
    sha = hashlib.sha256((ckpt / "backbone" / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert sha in card and "`pali-tiny`" in card and "`X Y`" in card
    assert "| regime | cofinetune |" in card and "300 steps x 32 examples = 9,600 examples" in card
    assert "robot 0.5, web 0.5" in card and "runs/pretrain/final" in card
    oracle = json.loads(infos[0].read_text())["results"]["oracle"]["per_suite"]["seen"]
    lo, hi = wilson(oracle["successes"], oracle["n"])
    assert f"| seen tasks | {100 * oracle['success_rate']:.1f} | [{100 * lo:.0f}, {100 * hi:.0f}] | 10 |" in card
    assert "Chain of thought (chain of thought): plan correct in 100.0 %" in card
    # the untrained model solves nothing in 4 steps: every task is listed as never solved
    assert "Never solved (7 of 7 tasks)" in card
    # the always-invalid policy: 2 tasks x 5 steps, every one invalid
    assert "Invalid actions: 10 of 10 steps (100.00 %)" in card
    assert "median final distance to the goal" in card


def test_card_defaults_to_training_json_and_cli(evals, tmp_path, capsys):
    import json
    import shutil

    ckpt, root = evals
    d = tmp_path / "ckpt"
    shutil.copytree(ckpt, d)
    (d / "training.json").write_text(json.dumps(TRAINING))
    assert main([str(d), "--eval-info", str(root / "oracle" / "eval_info.json")]) == 0
    assert "| regime | cofinetune |" in (d / "MODEL_CARD.md").read_text()
    assert main([str(d), "--eval-info", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not an rt2 eval_info.json"):
        write_model_card(d, [tmp_path / "x.json"])


def test_card_web_knowledge_section_comes_from_vqa_info(evals, tmp_path, capsys):
    """`rt2 vqa`'s vqa_info.json -> the "Web knowledge" section: overall and per-task rows with CIs vs chance."""
    import json

    from rt2.cli import main as rt2_main

    ckpt, root = evals
    vqa = tmp_path / "vqa"
    assert rt2_main(["vqa", "--policy", str(ckpt), "--items", "12", "--max-new-tokens", "4", "--out", str(vqa),
                     "--quiet"]) == 0  # fmt: skip
    info = json.loads((vqa / "vqa_info.json").read_text())
    card_path = tmp_path / "card.md"
    argv = [str(ckpt), "--eval-info", str(root / "oracle" / "eval_info.json"), "--out", str(card_path)]
    assert main([*argv, "--vqa-info", str(vqa / "vqa_info.json")]) == 0
    card = card_path.read_text()
    o = info["overall"]
    lo, hi = wilson(o["correct"], o["n"])
    above = sum(r["above_chance"] for r in info["per_task"].values())
    assert "## Web knowledge (held-out VQA)" in card and info["command"] in card
    assert f"overall **{100 * o['accuracy']:.1f} %** [{100 * lo:.0f}, {100 * hi:.0f}] of 12 held-out items" in card
    assert f"on {above} of {len(info['per_task'])} task types" in card
    for task, r in info["per_task"].items():
        assert f"| {task} | {r['n']} | {100 * r['accuracy']:.1f} |" in card
    # without --vqa-info the section is absent; an eval_info.json given as --vqa-info is refused with the reason
    assert main(argv) == 0 and "Web knowledge" not in card_path.read_text()
    assert main([*argv, "--vqa-info", str(root / "oracle" / "eval_info.json")]) == 2
    assert "not an rt2 vqa_info.json" in capsys.readouterr().err
