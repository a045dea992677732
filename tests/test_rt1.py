"""The RT-1-style baseline (issue 15 item 3): the network's pieces and shapes, that it learns, and that it is a
first-class policy: ``rt2 train --model rt1-tiny`` -> export -> ``Policy.from_pretrained`` -> ``rt2 eval`` and
``rt2 serve``, bit-exact ``--resume``, and clear one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from rt2 import cli
from rt2.actions import ActionSpace, ActionTokenizer
from rt2.data.prompts import Example
from rt2.models import TextTokenizer
from rt2.models.rt1 import RT1, RT1Config
from rt2.models.rt1.film import FiLM, FiLMImageEncoder
from rt2.models.rt1.text import instruction_from_prompt
from rt2.models.rt1.token_learner import TokenLearner

INSTRUCTIONS = ["push the red moon to the blue cube", "push the green star to the top left corner"]


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer.train(INSTRUCTIONS * 4 + ["move the yellow pentagon left"], vocab_size=256)


def _model(tok, **kw) -> RT1:
    torch.manual_seed(0)
    return RT1.build("rt1-tiny", tok, ActionTokenizer(ActionSpace.language_table()), **kw)


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (72, 96, 3), dtype=np.uint8)


def test_shapes_of_every_stage(tok):
    """float[B, F, 3, H, W] -> FiLM encoder float[B*F, C, h, w] -> TokenLearner float[B*F, K, C] -> readouts
    float[B, D, d] -> logits float[B, D, V] with only the legal integers finite."""
    m = _model(tok, n_frames=2)
    c = m.config
    B = 3
    pixels = m.transform([[_frame(b), _frame(b + 10)] for b in range(B)])
    assert pixels.shape == (B, 2, 3, 72, 96)
    ids, mask = m.tokenize(INSTRUCTIONS + INSTRUCTIONS[:1])
    fmap = m.encoder(pixels.flatten(0, 1), m.text(ids, mask).repeat_interleave(2, 0))
    assert fmap.shape == (B * 2, c.channels[-1], *c.feature_hw) == (6, 16, 9, 12)
    tokens, maps = m.token_learner(fmap)
    assert tokens.shape == (6, c.n_tokens, 16) and maps.shape == (6, c.n_tokens, 9 * 12)
    assert m.features(pixels, ids, mask).shape == (B, 2, c.d_model)
    logits = m(pixels, ids, mask)
    assert logits.shape == (B, 2, 21) and torch.isfinite(logits).all()  # Language-Table: -10..10 per dimension
    bins = m.predict_bins(pixels, ids, mask)
    assert bins.shape == (B, 2) and bins.min() >= -10 and bins.max() <= 10


def test_token_learner_reduces_tokens_with_spatial_attention():
    tl = TokenLearner(channels=16, n_tokens=4)
    tokens, maps = tl(torch.randn(2, 16, 9, 12))
    assert tokens.shape == (2, 4, 16)  # 108 positions -> 4 tokens
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4), atol=1e-5)  # each token is a spatial expectation
    # a token is the feature map averaged under its map
    f = torch.randn(1, 16, 9, 12)
    t, mp = tl(f)
    assert torch.allclose(t[0, 1], (f[0].flatten(1) * mp[0, 1]).sum(-1), atol=1e-5)


def test_film_conditioning_changes_the_output(tok):
    """The instruction reaches the image features (FiLM) and the action logits; an identical instruction gives an
    identical output, so the change is the conditioning, not noise."""
    film = FiLM(channels=8, cond_dim=4)
    x = torch.randn(2, 8, 5, 5)
    assert not torch.allclose(film(x, torch.zeros(2, 4)), film(x, torch.ones(2, 4)))
    m = _model(tok).eval()
    pixels = m.transform([[_frame(0)], [_frame(0)]])
    ids, mask = m.tokenize(INSTRUCTIONS)
    with torch.no_grad():
        enc = FiLMImageEncoder(8, (12, 16), 2, m.config.text_dim)
        e = m.text(ids, mask)
        f = enc(pixels.flatten(0, 1), e)
        assert (f[0] - f[1]).abs().max() > 1e-3  # same frame, two instructions
        logits = m(pixels, ids, mask)
        assert (logits[0] - logits[1]).abs().max() > 1e-4
        same = m(pixels, *m.tokenize([INSTRUCTIONS[0]] * 2))
        assert torch.equal(same[0], same[1])


def test_a_few_steps_reduce_the_loss_on_a_tiny_dataset(tiny_data, tok):
    from rt2.data.robot import RobotActions, RobotDataConfig, load_episodes

    acts = RobotActions(load_episodes(tiny_data), RobotDataConfig(n_frames=1, aux_tasks=("aux_effector",)))
    examples = [acts[i] for i in range(0, len(acts), max(1, len(acts) // 16))][:16]
    tok = TextTokenizer.train([instruction_from_prompt(e.prompt) for e in examples] * 2, vocab_size=256)
    m = _model(tok, grounding_dim=6).train()
    batch = m.encode_examples(examples)
    assert batch.grounding is not None and bool(batch.ground_mask.all())
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss, metrics = m.loss(batch)
        first = metrics["loss"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, metrics = m.loss(batch)
    assert metrics["loss"] < 0.7 * first, (first, metrics["loss"])
    assert {"loss/robot", "action_token_acc", "action_exact", "action_l1", "grounding_mse"} <= set(metrics)


def test_only_action_examples_and_short_instructions(tok):
    m = _model(tok)
    text = Example.text([_frame(0)], "Q: what colour is the moon? A:", "red")
    with pytest.raises(ValueError, match="robot action examples only"):
        m.encode_examples([text])
    with pytest.raises(ValueError, match="reads at most 48"):
        m.tokenize(["push " * 60])
    with pytest.raises(ValueError, match="not an action prompt"):
        instruction_from_prompt("Q: where is the robot? A:")
    assert instruction_from_prompt(Example.action([_frame(0)], "Push the red moon.", [1, 2], "1 2").prompt) == (
        "Push the red moon"
    )
    with pytest.raises(ValueError, match="n_frames must be >= 1"):
        RT1Config(n_frames=0)


# ---- the CLI route: train -> export -> Policy -> eval / serve --------------------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rt1data")
    assert cli.main(["collect", "--episodes", "4", "--out", str(root / "data"), "--no-progress"]) == 0
    return root / "data"


TRAIN = ["train", "--regime", "scratch", "--model", "rt1-tiny", "--no-progress", "--batch-size", "8"]


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("rt1run") / "run"
    assert cli.main([*TRAIN, "--data", str(tiny_data), "--out", str(out), "--steps", "4", "--ckpt-every", "2"]) == 0
    return out


def test_train_uses_the_rt1_preset_and_writes_a_policy_export(run):
    from rt2.policy import Policy
    from rt2.policy.rt1 import RT1Policy

    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "rt1-tiny" and cfg["grounding_weight"] == 10.0 and cfg["lr"] == 1e-3  # preset rt1
    assert sorted(p.name for p in (run / "final").iterdir()) == [
        "action_tokenizer.json", "model.safetensors", "rt1.json", "tokenizer.json", "training.json"
    ]  # fmt: skip
    info = json.loads((run / "final/training.json").read_text())
    assert info["data"]["weights"] == {"robot": 1.0} and "image_norm" in info["data"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(k in rows[0] for k in ("loss", "loss/robot", "action_token_acc", "grounding_mse", "samples_per_s"))

    policy = Policy.from_pretrained(run / "final")
    assert isinstance(policy, RT1Policy) and isinstance(policy, Policy)
    frame = _frame(3)
    action = policy.predict_action([frame], "push the red moon to the blue cube")
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 0.1)
    bins = policy.predict_bins(frame, "push the red moon to the blue cube")
    assert np.allclose(action, bins * 0.01)  # decoded by the same ActionTokenizer as the VLA's "X Y"
    actions, texts = policy.predict_action_batch(
        [[frame], [_frame(4)]], ["push the red moon to the blue cube", "push the green star left"]
    )
    assert actions.shape == (2, 2) and np.allclose(actions[0], action) and texts[0] == f"{bins[0]} {bins[1]}"
    big = np.asarray(np.kron(frame, np.ones((2, 2, 1))), dtype=np.uint8)  # any size: the shared transform resizes
    assert policy.predict_action(big, "push the red moon").shape == (2,)
    meta = policy.metadata()
    assert meta["model"] == "rt1-tiny" and meta["image_size"] == [72, 96] and meta["action_space"]["dim"] == 2
    assert meta["input_limits"]["max_prompt_tokens"] == 48 and meta["action_format"] == "direct"
    for call in (lambda: policy.answer([frame], "what colour?"), lambda: policy.plan_and_act([frame], "push it")):
        with pytest.raises(ValueError, match="no language output"):
            call()
    with pytest.raises(ValueError, match="at most 1 frame"):
        policy.predict_action([frame, frame], "push the red moon")
    with pytest.raises(ValueError, match="expected dtype uint8"):
        policy.predict_action(frame.astype(np.float32), "push the red moon")
    with pytest.raises(ValueError, match="fp32 only"):
        Policy.from_pretrained(run / "final", quantize="int8")


def test_resume_is_bit_exact(tiny_data, tmp_path):
    argv = [*TRAIN, "--data", str(tiny_data), "--steps", "4", "--ckpt-every", "2", "--log-every", "1", "--augment"]
    assert cli.main([*argv, "--out", str(tmp_path / "straight")]) == 0
    assert cli.main([*argv, "--out", str(tmp_path / "split"), "--stop-after", "2"]) == 0
    assert not (tmp_path / "split/final").exists()
    assert cli.main([*argv, "--out", str(tmp_path / "split"), "--resume"]) == 0

    def losses(d):
        return [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]

    assert len(losses(tmp_path / "straight")) == 4 and losses(tmp_path / "straight") == losses(tmp_path / "split")
    a = (tmp_path / "straight/final/model.safetensors").read_bytes()
    assert a == (tmp_path / "split/final/model.safetensors").read_bytes()


def test_rt2_eval_takes_the_export(run, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--policy", str(run / "final"), "--suite", "seen", "--episodes", "1", "--max-steps", "3"]
    assert cli.main([*argv, "--videos", "0", "--quiet", "--out", str(out)]) == 0
    info = json.loads((out / "eval_info.json").read_text())
    assert info["overall"]["n"] == 5 and info["meta"]["policy_info"]["final"]["model"] == "rt1-tiny"
    assert all(r["invalid_actions"] == 0 for r in info["episodes"]["final"])
    # a training checkpoint of the run, swapped into its export (closed-loop learning curves)
    step2 = run / "checkpoints/step_00000002"
    assert cli.main([*argv, "--weights", str(step2), "--videos", "0", "--quiet", "--out", str(tmp_path / "e2")]) == 0
    info2 = json.loads((tmp_path / "e2/eval_info.json").read_text())
    assert info2["meta"]["policies"] == [f"{run / 'final'}@step2"]


def test_rt2_demo_runs_it_and_skips_the_web_questions(run, tmp_path):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--policy", str(run / "final"), "--quick", "--episodes", "1", "--out", str(out)]) == 0
    info = json.loads((out / "demo.json").read_text())
    assert info["overall"]["n"] >= 1 and "web_questions" not in info


def test_rt2_serve_takes_the_export(run):
    from rt2.policy import Policy
    from rt2.serve.client import PolicyClient
    from rt2.serve.errors import ServerError
    from rt2.serve.server import ServerConfig, ServerThread

    policy = Policy.from_pretrained(run / "final")
    with ServerThread(policy, ServerConfig(port=0)) as srv, PolicyClient(srv.url) as client:
        meta = client.connect()
        assert meta["model_name"] == "rt1-tiny" and meta["limits"]["max_prompt_len"] == 48
        reply = client.infer({"image": _frame(5), "instruction": "push the red moon to the blue cube"})
        assert np.asarray(reply["actions"]).shape == (2,)
        assert np.allclose(reply["actions"], policy.predict_action([_frame(5)], "push the red moon to the blue cube"))
        with pytest.raises(ServerError, match="at most 48") as err:  # refused when parsed, as the VLA's limit
            client.infer({"image": _frame(5), "instruction": "push " * 60})
        assert err.value.code == "bad_request"


def test_user_errors_are_one_line(tiny_data, run, tmp_path, capsys):
    base = ["--data", str(tiny_data), "--out", str(tmp_path / "x"), "--no-progress"]
    cases = [
        (["train", "--regime", "finetune", "--model", "rt1", *base], "use --regime scratch"),
        (["train", "--regime", "scratch", "--preset", "rt1", "--action-format", "plan", *base], "needs a VLA"),
        (["eval", "--policy", str(run / "final"), "--quantize", "int8", "--out", str(tmp_path / "e")], "fp32 only"),
        (["train", "--regime", "scratch", "--preset", "rt1", "--set", "point_share=0.15", *base], "point_share=0"),
    ]
    old, corrupt = tmp_path / "old", tmp_path / "corrupt"
    shutil.copytree(run / "final", old)
    shutil.copytree(run / "final", corrupt)
    meta = json.loads((old / "rt1.json").read_text())
    (old / "rt1.json").write_text(json.dumps({**meta, "version": 99}))
    (corrupt / "model.safetensors").write_bytes(b"not weights")
    cases += [
        (["eval", "--policy", str(old), "--out", str(tmp_path / "e")], "RT-1 export version 99"),
        (["serve", "--policy", str(corrupt), "--port", "0"], "corrupt or not safetensors"),
    ]
    for argv, msg in cases:
        capsys.readouterr()
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and "Traceback" not in err and len(err.splitlines()) == 1, err
