"""VLA: examples -> labels on the answer only, loss/metrics, overfitting, checkpoints."""

import json

import numpy as np
import pytest
import torch

from backbone_checks import sample_images, tiny_vla
from rt2.data.prompts import Example
from rt2.models import VLA
from rt2.models.base import IGNORE_INDEX
from rt2.models.checkpoint import CheckpointError
from rt2.policy import Policy


def _examples(vla, seed=0):
    img = sample_images(vla.backbone, 1, seed=seed)[0]
    atok = vla.action_tokenizer
    bins = np.array([lo + (hi - lo) // 3 for lo, hi in atok.value_ranges])
    return (
        img,
        bins,
        [
            Example.action(img, "push the red star left", bins, atok.to_text(bins)),
            Example.text(img, "Caption:", "a red star and a blue moon"),
            Example.cot(img, "push the fruit", "move the red star left", bins, atok.to_text(bins)),
        ],
    )


@pytest.mark.parametrize("space", ["language_table", "rt1"])
def test_labels_cover_answer_only(space):
    vla = tiny_vla(space)
    _, bins, exs = _examples(vla)
    batch = vla.encode_examples(exs)
    labels, D = batch.inputs["labels"], vla.action_dim
    tok = vla.backbone.tokenizer
    want0 = [*vla.vocab.ids_for_bins(bins).tolist(), tok.eos_token_id]
    assert labels[0][labels[0] != IGNORE_INDEX].tolist() == want0
    assert labels[1][labels[1] != IGNORE_INDEX].tolist() == [
        *tok.encode(" a red star and a blue moon"),
        tok.eos_token_id,
    ]
    cot = labels[2][labels[2] != IGNORE_INDEX].tolist()
    assert cot[-D - 1 : -1] == want0[:-1] and cot[-D - 1 - len(vla.marker_ids) : -D - 1] == vla.marker_ids
    assert tok.decode(cot[: -D - 1]) == "move the red star left Action:"
    assert (batch.action_pos[0] >= 0).sum() == D and (batch.action_pos[1] >= 0).sum() == 0
    assert batch.has_action.tolist() == [True, False, True]


def test_loss_metrics_and_overfit_one_example():
    torch.manual_seed(0)
    vla = tiny_vla(spread=False).train()
    img, bins, exs = _examples(vla)
    batch = vla.encode_examples(exs)
    opt = torch.optim.AdamW(vla.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, m = vla.loss(batch)
        first = first if first is not None else m
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert {"loss", "loss/robot", "loss/web", "loss/robot_cot", "action_token_acc", "action_l1"} <= set(m)
    assert m["loss"] < 0.3 * first["loss"]
    assert m["action_token_acc"] == 1.0 and m["action_exact"] == 1.0 and m["action_l1"] == 0.0
    pol = Policy(vla.eval())
    np.testing.assert_allclose(pol.predict_action(img, "push the red star left"), vla.action_tokenizer.decode(bins))
    plan, action = pol.plan_and_act(img, "push the fruit")
    assert plan == "move the red star left"
    np.testing.assert_allclose(action, vla.action_tokenizer.decode(bins))


def test_token_vs_example_reduction():
    vla = tiny_vla()
    _, _, exs = _examples(vla)
    batch = vla.encode_examples(exs)
    per_ex, count = vla.per_example_loss(batch)
    with torch.no_grad():
        loss_ex, _ = vla.loss(batch)
        vla.config = vla.config.__class__(loss_reduction="token")
        loss_tok, _ = vla.loss(batch)
    torch.testing.assert_close(loss_ex, per_ex.mean())
    torch.testing.assert_close(loss_tok, (per_ex * count).sum() / count.sum())


@pytest.mark.parametrize("vocab", ["numeric", "least_used", "added"])
def test_save_load_roundtrip_identical_actions(tmp_path, vocab):
    vla = tiny_vla("rt1", vocab)
    obs = sample_images(vla.backbone, 3, seed=5)
    instr = ["push the red star left", "push the blue moon to the top", "go"]
    before = Policy(vla).predict_action_batch(obs, instr)
    vla.save_pretrained(tmp_path / "ckpt")
    assert not list(tmp_path.glob(".ckpt.tmp-*")), "temporary directory left behind"
    loaded = Policy.from_pretrained(tmp_path / "ckpt")
    after = loaded.predict_action_batch(obs, instr)
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1] == after[1]
    assert loaded.vla.vocab == vla.vocab


def test_checkpoint_errors(tmp_path):
    vla = tiny_vla()
    ck = tmp_path / "ckpt"
    vla.save_pretrained(ck)
    with pytest.raises(CheckpointError, match="not empty"):
        vla.save_pretrained(ck, overwrite=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        VLA.from_pretrained(tmp_path / "nope")
    # vocab that no longer matches the tokenizer
    d = json.loads((ck / "action_vocab.json").read_text())
    d["ids"] = [i + 1 for i in d["ids"]]
    (ck / "action_vocab.json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="does not match"):
        VLA.from_pretrained(ck)
    vla.save_pretrained(ck)
    (ck / "vla.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        VLA.from_pretrained(ck)
    vla.save_pretrained(ck)
    from safetensors.torch import load_file, save_file

    w = load_file(str(ck / "backbone" / "model.safetensors"))
    w["embed.weight"] = w["embed.weight"].half()
    save_file(w, str(ck / "backbone" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="'embed.weight' has dtype"):
        VLA.from_pretrained(ck)
    vla.save_pretrained(ck)
    (ck / "backbone" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        VLA.from_pretrained(ck)


def test_least_used_needs_corpus():
    from backbone_checks import tiny_pali

    with pytest.raises(ValueError, match="corpus"):
        VLA.build(tiny_pali(), vocab="least_used")


def test_grounding_head_regresses_positions_from_action_states():
    """The auxiliary grounding loss (issue 9): only action rows with a target contribute, it trains the head and
    the backbone, it is not exported, and bad targets are refused."""
    import dataclasses

    torch.manual_seed(0)
    vla = tiny_vla(spread=False).train()
    img, bins, (act, text, cot) = _examples(vla)
    target = np.array([0.5, -0.25, 0.1, 0.2, -0.6, 0.3], np.float32)
    act = dataclasses.replace(act, grounding=target)
    with pytest.raises(ValueError, match="finite"):
        dataclasses.replace(act, grounding=np.array([np.nan, 0.0], np.float32))
    # off: no head, batches carry no targets, loss is the token loss alone
    batch = vla.encode_examples([act, text, cot])
    assert vla.grounding_head is None and batch.grounding is None
    plain, m = vla.loss(batch)
    assert "grounding_mse" not in m
    vla.set_grounding(6, weight=10.0)
    batch = vla.encode_examples([act, text, cot])
    D = vla.action_dim
    assert batch.ground_mask.sum(1).tolist() == [D, 0, 0]
    assert torch.equal(batch.ground_mask[0], batch.action_pos[0] >= 0)
    # a text row (pointing) is grounded on its answer positions
    point = dataclasses.replace(text, grounding=target)
    b2 = vla.encode_examples([point])
    assert torch.equal(b2.ground_mask[0], b2.inputs["labels"][0] != IGNORE_INDEX)
    loss, m = vla.loss(batch)
    assert loss.item() == pytest.approx(plain.item() + 10.0 * m["grounding_mse"], rel=1e-5)
    opt = torch.optim.AdamW(vla.parameters(), lr=3e-3)
    first = m["grounding_mse"]
    for _ in range(40):
        loss, m = vla.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m["grounding_mse"] < 0.2 * first
    with pytest.raises(ValueError, match="grounding head 6"):
        vla.encode_examples([dataclasses.replace(act, grounding=target[:4])])


def test_grounding_head_is_training_only(tmp_path):
    torch.manual_seed(0)
    vla = tiny_vla(spread=False).set_grounding(6)
    vla.save_pretrained(tmp_path / "m")
    back = VLA.from_pretrained(tmp_path / "m")
    assert back.config.grounding_dim == 6  # the head travels with the export, so fine-tuning continues it
    for a, b in zip(vla.grounding_head.parameters(), back.grounding_head.parameters(), strict=True):
        assert torch.equal(a, b)
    img, bins, (act, _, _) = _examples(vla)
    p1, p2 = Policy(vla.eval()), Policy(back)
    q = img, "push the red star left"
    assert np.array_equal(p1.predict_action(*q), p2.predict_action(*q))
