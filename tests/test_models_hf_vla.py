"""The generic VLA stack (VLA, Decoder, Policy) end to end on every HF family (tiny random checkpoints).

Same code path as a real PaliGemma/SmolVLM/Qwen2-VL/LLaVA folder: ``write_tiny_checkpoint`` -> ``build_backbone
("hf", path=dir)`` -> ``VLA.build`` -> ``encode_examples``/``loss`` -> ``Decoder`` -> ``save_pretrained`` ->
``Policy.from_pretrained``. The backbone contract itself (causality, padding, cache) is in test_models_hf.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from backbone_checks import sample_images  # noqa: E402
from rt2.data.prompts import Example, action_prompt, cot_prompt, vqa_prompt  # noqa: E402
from rt2.models.base import IGNORE_INDEX  # noqa: E402
from rt2.models.decoding import Decoder, Sampling  # noqa: E402
from rt2.models.hf import HFBackbone  # noqa: E402
from rt2.models.hf_tiny import write_tiny_checkpoint  # noqa: E402
from rt2.models.registry import build_backbone  # noqa: E402
from rt2.models.vla import VLA  # noqa: E402
from rt2.policy import Policy  # noqa: E402

FAMILIES = ["paligemma", "idefics3", "qwen2_vl", "llava"]
VOCABS = ["least_used", "added", "numeric"]  # numeric: the tiny BPE spells every integer -255..255 as one token
CORPUS = [
    "Q: what action should the robot take to push the red star left? A: 3 -7",
    "Instruction: push the fruit Plan: move the red star left Action: 3 -7",
    "Q: what is on the board? A: a red star",
] * 4
INSTR, PLAN, QUESTION, ANSWER = (
    "push the red star left",
    "move the red star left",
    "what is on the board?",
    "a red star",
)


@pytest.fixture(scope="module")
def ckpt_dirs(tmp_path_factory):
    return {f: write_tiny_checkpoint(tmp_path_factory.mktemp(f), f, seed=0) for f in FAMILIES}


def make_vla(ckpt_dir, vocab: str = "least_used", space: str = "language_table", seed: int = 0, **opts) -> VLA:
    torch.manual_seed(seed)
    bb = build_backbone("hf", path=str(ckpt_dir), **opts)
    return VLA.build(bb, action_space=space, vocab=vocab, corpus=CORPUS)


def examples(vla: VLA) -> tuple[np.ndarray, np.ndarray, list[Example]]:
    img = sample_images(vla.backbone, 1, seed=7)[0]
    atok = vla.action_tokenizer
    bins = np.array([lo + (hi - lo) // 3 + d for d, (lo, hi) in enumerate(atok.value_ranges)])
    text = atok.to_text(bins)
    return (
        img,
        bins,
        [
            Example.action(img, INSTR, bins, text),
            Example.cot(img, "push the fruit", PLAN, bins, text),
            Example.text(img, vqa_prompt(QUESTION), ANSWER),
        ],
    )


def train(vla: VLA, batch, steps: int, lr: float) -> list[float]:
    vla.train()
    opt = torch.optim.AdamW([p for p in vla.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss, metrics = vla.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    vla.eval()
    assert np.isfinite(losses).all() and {"loss/robot", "loss/web", "action_exact"} <= set(metrics)
    return losses


@pytest.mark.parametrize("family", FAMILIES)
def test_overfit_then_decode_and_round_trip(ckpt_dirs, family, tmp_path):
    """Train on an action, a CoT and a VQA example; the policy (and its reloaded copy) must reproduce all three:
    constrained action decoding, plan_and_act (plan text + action), free-text answer."""
    vla = make_vla(ckpt_dirs[family])
    assert vla.vocab.strategy == "least_used" and vla.backbone.tokenizer.decode(vla.marker_ids).strip() == "Action:"
    img, bins, exs = examples(vla)
    batch = vla.encode_examples(exs)
    cot_labels = batch.inputs["labels"][1][batch.inputs["labels"][1] != IGNORE_INDEX].tolist()
    D, M = vla.action_dim, len(vla.marker_ids)
    assert cot_labels[-D - 1 - M : -D - 1] == vla.marker_ids  # the marker the decoder looks for is what trains
    losses = train(vla, batch, steps=60, lr=5e-3)
    assert losses[-1] < 0.02 * losses[0], losses
    want = vla.action_tokenizer.decode(bins[None])[0]
    for pol in (Policy(vla), None):
        if pol is None:
            vla.save_pretrained(tmp_path / "ck")
            pol = Policy.from_pretrained(tmp_path / "ck")
            assert isinstance(pol.vla.backbone, HFBackbone) and pol.vla.backbone.fam.name == family
        np.testing.assert_array_equal(pol.predict_bins(img, INSTR), bins)
        np.testing.assert_allclose(pol.predict_action(img, INSTR), want)
        plan, action = pol.plan_and_act(img, "push the fruit")
        assert plan == PLAN
        np.testing.assert_allclose(action, want)
        assert pol.answer(img, QUESTION) == ANSWER
        assert pol.metadata()["backbone_family"] == "hf" and pol.metadata()["action_vocab"] == "least_used"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("vocab", VOCABS)
def test_every_vocab_trains_and_round_trips(ckpt_dirs, family, vocab, tmp_path):
    vla = make_vla(ckpt_dirs[family], vocab)
    assert vla.vocab.strategy == vocab
    if vocab == "added":  # new <act_v> tokens; the tiny head (1024 rows) is padded past the tokenizer
        assert all(t.startswith("<act_") for t in vla.vocab.tokens.values())
        assert vla.backbone.vocab_size == 1024 >= vla.vocab.min_vocab_size
    _, _, exs = examples(vla)
    batch = vla.encode_examples(exs)
    losses = train(vla, batch, steps=4, lr=5e-3)
    assert losses[-1] < losses[0], losses
    obs = sample_images(vla.backbone, 3, seed=1)
    instr = [INSTR, "slide the blue moon to the top", "move the green cube"]
    acts, texts = Policy(vla).predict_action_batch(obs, instr)
    with torch.no_grad():
        logits = vla(batch)
    vla.save_pretrained(tmp_path / "ck")
    again = Policy.from_pretrained(tmp_path / "ck")
    assert again.vla.vocab.to_dict() == vla.vocab.to_dict()
    with torch.no_grad():
        torch.testing.assert_close(again.vla(again.vla.encode_examples(exs)), logits, atol=1e-5, rtol=1e-5)
    acts2, texts2 = again.predict_action_batch(obs, instr)
    np.testing.assert_array_equal(acts2, acts)
    assert texts2 == texts


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_vla_round_trip(ckpt_dirs, family, tmp_path):
    """LoRA adapters (language model only) train, save unmerged next to the base weights, and reload as LoRA."""
    vla = make_vla(ckpt_dirs[family], lora_rank=4, freeze_vision=True)
    trainable = [n for n, p in vla.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    _, _, exs = examples(vla)
    batch = vla.encode_examples(exs)
    with torch.no_grad():
        untrained = vla(batch)
    train(vla, batch, steps=2, lr=1e-2)  # LoRA B starts at 0: train so the adapter changes the outputs
    obs = sample_images(vla.backbone, 2, seed=3)
    acts, _ = Policy(vla).predict_action_batch(obs, [INSTR, "move the green cube"])
    with torch.no_grad():
        logits = vla(batch)
    assert not torch.allclose(logits, untrained, atol=1e-3)
    vla.save_pretrained(tmp_path / "ck")
    assert (tmp_path / "ck" / "backbone" / "lora" / "adapter_config.json").is_file()
    again = Policy.from_pretrained(tmp_path / "ck")
    assert again.vla.backbone.is_lora
    with torch.no_grad():
        torch.testing.assert_close(again.vla(batch), logits, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(again.predict_action_batch(obs, [INSTR, "move the green cube"])[0], acts)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("space", ["language_table", "rt1"])  # D = 2 and D = 8
def test_constrained_decoding_only_legal_ids(ckpt_dirs, family, space):
    vla = make_vla(ckpt_dirs[family], space=space).eval()
    dec, bb, D = Decoder(vla), vla.backbone, vla.action_dim
    assert {"language_table": 2, "rt1": 8}[space] == D
    prompts = [action_prompt(INSTR), action_prompt("slide the blue moon to the top"), action_prompt("go")]
    inputs = bb.prepare(sample_images(bb, 3, seed=D), prompts)
    greedy = dec.actions(inputs)
    sampled = dec.actions(inputs, Sampling(temperature=5.0), torch.Generator().manual_seed(0))
    for ids in (greedy, sampled):
        assert ids.shape == (3, D)
        for d in range(D):
            assert set(ids[:, d].tolist()) <= set(vla.vocab.allowed_ids(d))
        vla.vocab.bins_for_ids(ids.numpy())  # parses (raises ActionParseError otherwise)
    # Batched (left-padded) rows decode exactly as each row alone.
    for b in range(3):
        alone = dec.actions(bb.prepare(sample_images(bb, 3, seed=D)[b : b + 1], prompts[b : b + 1]))
        assert torch.equal(alone[0], greedy[b])
    # Untrained CoT: the plan never contains EOS, hits the cap, gets the marker forced, then a legal action.
    plans, acts = dec.plan_and_act(bb.prepare(sample_images(bb, 2), [cot_prompt(INSTR)] * 2), max_plan_tokens=3)
    assert all(0 < len(p) <= 3 and vla.eos_id not in p for p in plans)
    for d in range(D):
        assert set(acts[:, d].tolist()) <= set(vla.vocab.allowed_ids(d))


def test_decoder_matches_hf_generate(ckpt_dirs):
    """Decoder.actions over the HF backbone emits exactly what HF generate() does with an action-mask processor."""
    from rt2.models.hf import require

    transformers = require("transformers")
    vla = make_vla(ckpt_dirs["paligemma"], space="rt1").eval()
    bb = vla.backbone
    inputs = bb.prepare(sample_images(bb, 2, seed=5), [action_prompt(INSTR), action_prompt("go")])
    ours = Decoder(vla).actions(inputs)
    allowed = [vla.vocab.allowed_ids(d) for d in range(vla.action_dim)]
    start = inputs["input_ids"].shape[1]

    class Mask(transformers.LogitsProcessor):
        def __call__(self, input_ids, scores):
            keep = torch.full_like(scores, float("-inf"))
            keep[:, allowed[input_ids.shape[1] - start]] = 0
            return scores + keep

    kw = bb.fam.model_kwargs(bb.hf_model, inputs, prefill=True)
    kw.pop("position_ids")  # generate() derives its own
    out = bb.hf_model.generate(**kw, max_new_tokens=8, do_sample=False, logits_processor=[Mask()])
    assert torch.equal(out[:, -8:], ours)


def test_added_vocab_grows_the_head_when_needed(ckpt_dirs):
    """The tiny head has 1024 rows; 256-bin rt1 tokens past it force a resize (and only a grow)."""
    vla = make_vla(ckpt_dirs["llava"], "added", space="rt1")
    assert vla.backbone.vocab_size >= vla.vocab.min_vocab_size > 1024
    assert vla.backbone.vocab_size == len(vla.backbone.tokenizer)
