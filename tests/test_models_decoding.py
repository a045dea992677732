"""Decoding: constrained actions are always legal, batched = single, cached = teacher forced, CoT, text."""

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backbone_checks import sample_images, spread_weights, tiny_vla
from rt2.data.prompts import action_prompt, cot_prompt
from rt2.models.decoding import Decoder, Sampling

INSTR = ["push the red star left", "go", "push the blue moon to the top of the board please"]


@functools.cache
def _vla(space, vocab):
    return tiny_vla(space, vocab)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    space=st.sampled_from(["language_table", "rt1"]),
    vocab=st.sampled_from(["numeric", "least_used"]),
    seed=st.integers(0, 2**16),
    temperature=st.sampled_from([0.0, 1.0, 10.0]),
    top_k=st.sampled_from([None, 1, 5]),
    batch=st.integers(1, 3),
)
def test_constrained_actions_always_legal(space, vocab, seed, temperature, top_k, batch):
    vla = _vla(space, vocab)
    spread_weights(vla.backbone, seed, std=float(np.random.default_rng(seed).choice([0.05, 0.3, 1.0])))
    dec = Decoder(vla)
    obs = sample_images(vla.backbone, batch, seed=seed)
    inputs = vla.backbone.prepare(obs, [action_prompt(INSTR[b % 3]) for b in range(batch)])
    ids = dec.actions(inputs, Sampling(temperature, top_k), torch.Generator().manual_seed(seed)).numpy()
    assert ids.shape == (batch, vla.action_dim)
    for d in range(vla.action_dim):
        assert set(ids[:, d].tolist()) <= set(vla.vocab.allowed_ids(d))
    bins = vla.vocab.bins_for_ids(ids)  # raises ActionParseError on anything illegal
    vla.action_tokenizer.check_bins(bins)


@pytest.mark.parametrize("space", ["language_table", "rt1"])
def test_cached_constrained_decode_equals_teacher_forced_argmax(space):
    vla = tiny_vla(space, seed=1)
    dec = Decoder(vla)
    obs = sample_images(vla.backbone, 1, seed=1)
    ids = dec.actions(vla.backbone.prepare(obs, [action_prompt(INSTR[0])]))[0]
    from rt2.data.prompts import Example

    bins = vla.vocab.bins_for_ids(ids.numpy())
    batch = vla.encode_examples([Example.action(obs[0], INSTR[0], bins, vla.action_tokenizer.to_text(bins))])
    with torch.no_grad():
        logits = vla(batch)[0]
    sel = batch.action_pos[0] >= 0
    masked = logits[sel].masked_fill(~vla.allowed_mask[batch.action_pos[0][sel]], float("-inf"))
    assert torch.equal(masked.argmax(-1), ids)


@pytest.mark.parametrize("space", ["language_table", "rt1"])
def test_batched_actions_equal_single(space):
    vla = tiny_vla(space, seed=2)
    dec = Decoder(vla)
    obs = sample_images(vla.backbone, 3, seed=2)
    prompts = [action_prompt(i) for i in INSTR]  # three different prompt lengths -> left padding
    both = dec.actions(vla.backbone.prepare(obs, prompts))
    for b in range(3):
        assert torch.equal(both[b], dec.actions(vla.backbone.prepare(obs[b : b + 1], prompts[b : b + 1]))[0])


@pytest.mark.parametrize("vocab", ["numeric", "least_used"])
def test_plan_and_act_legal_and_batched(vocab):
    vla = tiny_vla("rt1", vocab, seed=3)
    dec = Decoder(vla)
    obs = sample_images(vla.backbone, 2, seed=3)
    inputs = vla.backbone.prepare(obs, [cot_prompt(INSTR[0]), cot_prompt(INSTR[2])])
    plans, ids = dec.plan_and_act(inputs, max_plan_tokens=6)
    vla.vocab.bins_for_ids(ids.numpy())
    M = len(vla.marker_ids)
    for b in range(2):
        assert len(plans[b]) <= 6 + M and vla.eos_id not in plans[b]
        one_plans, one_ids = dec.plan_and_act(
            vla.backbone.prepare(obs[b : b + 1], [cot_prompt(INSTR[2 * b])]), max_plan_tokens=6
        )
        assert one_plans[0] == plans[b] and torch.equal(one_ids[0], ids[b])
    plans0, ids0 = dec.plan_and_act(inputs, max_plan_tokens=0)  # marker forced at once
    assert plans0 == [[], []]
    vla.vocab.bins_for_ids(ids0.numpy())


def test_text_decoding_limits_and_stop():
    vla = tiny_vla(seed=4)
    dec = Decoder(vla)
    inputs = vla.backbone.prepare(sample_images(vla.backbone, 1, seed=4), ["Caption:"])
    out = dec.text(inputs, max_new_tokens=6)[0]
    assert len(out) <= 6 and vla.eos_id not in out
    assert all(0 <= i < len(vla.backbone.tokenizer) for i in out)
    if len(out) >= 2:
        assert dec.text(inputs, max_new_tokens=6, stop=[out[:2]])[0] == out[:2]
    with pytest.raises(ValueError, match="max_new_tokens"):
        dec.text(inputs, max_new_tokens=0)


def test_sampling_is_seeded():
    vla = tiny_vla("rt1", seed=5)
    dec = Decoder(vla)
    inputs = vla.backbone.prepare(sample_images(vla.backbone, 2, seed=5), [action_prompt("go")] * 2)
    s = Sampling(temperature=2.0, top_k=50)
    a = dec.actions(inputs, s, torch.Generator().manual_seed(7))
    b = dec.actions(inputs, s, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        Sampling(temperature=-1.0)
