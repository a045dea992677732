"""The built-in pali backbone against the shared backbone contract (tests/backbone_checks.py)."""

import numpy as np
import pytest
import torch

from backbone_checks import (
    check_batched_decode_matches_single,
    check_cached_decode_matches_teacher_forcing,
    check_padding_invariance,
    check_prefix_lm_causality,
    check_save_load,
    sample_images,
    tiny_pali,
    tiny_tokenizer,
)
from rt2.models import PaliConfig, build_backbone, list_backbones
from rt2.models.checkpoint import CheckpointError


@pytest.fixture(
    scope="module",
    params=[(1, 0, False, False), (2, 0, False, False), (2, 4, True, False), (1, 4, True, True)],
    ids=["1frame", "2frames", "2frames-film-keypoints", "film-positional"],
)
def backbone(request):
    frames, keypoints, film, positional = request.param
    return tiny_pali(n_frames=frames, keypoints=keypoints, keypoint_film=film, film_positional=positional)


def test_causality(backbone):
    check_prefix_lm_causality(backbone)


def test_padding_invariance(backbone):
    check_padding_invariance(backbone)


def test_cached_decode_equals_teacher_forcing(backbone):
    check_cached_decode_matches_teacher_forcing(backbone)


def test_batched_decode_equals_single(backbone):
    check_batched_decode_matches_single(backbone)


def test_save_load(backbone):
    check_save_load(backbone)


def test_causality_check_catches_a_leak():
    """The helper must fail on a model whose answer is bidirectional (the PaliGemma SDPA trap)."""
    bb = tiny_pali()
    real_forward = bb.forward

    def leaky(**inputs):
        inputs = dict(inputs)
        inputs["token_type_ids"] = torch.zeros_like(inputs["token_type_ids"])  # everything "prefix"
        return real_forward(**inputs)

    bb.forward = leaky
    with pytest.raises(AssertionError, match="leaked"):
        check_prefix_lm_causality(bb)


def test_frames_change_output_and_frame_order_matters():
    bb = tiny_pali(n_frames=2)
    a, b = sample_images(bb, 1, seed=0)[0], sample_images(bb, 1, seed=1)[0]
    with torch.inference_mode():
        l1, _ = bb.prefill(bb.prepare([[a[0], b[0]]], ["Caption:"]), max_new_tokens=1)
        l2, _ = bb.prefill(bb.prepare([[b[0], a[0]]], ["Caption:"]), max_new_tokens=1)
    assert (l1 - l2).abs().max() > 1e-4, "learned frame embeddings should make frame order matter"


def test_presets_sizes_and_tokens():
    tok = tiny_tokenizer()
    assert {"pali-nano", "pali-tiny", "pali-small"} <= set(list_backbones())
    tiny = PaliConfig.tiny()
    assert 16 <= tiny.tokens_per_frame <= 36
    n_tiny = build_backbone("pali-tiny", tok, vocab_size=2048).num_parameters
    n_small = build_backbone("pali-small", tok, vocab_size=2048).num_parameters
    n_nano = build_backbone("pali-nano", tok, vocab_size=2048).num_parameters
    assert 1.0e6 < n_nano < 2.0e6, n_nano
    assert PaliConfig.nano().tokens_per_frame == tiny.tokens_per_frame
    assert 3.5e6 < n_tiny < 6.5e6, n_tiny
    assert 15e6 < n_small < 25e6, n_small


def test_input_side_init_defaults_and_opt_out():
    """sincos positions: distinct per patch and the same for every seed (a fixed code, not noise); fan-in patchify
    and projector: unit gain, ~25x the N(0, 0.02) default. "learned"/"default" restore the old init."""
    from rt2.models.pali import PaliBackbone, sincos_2d

    tok = tiny_tokenizer()
    cfg = PaliConfig.nano(vocab_size=0)
    a, b = PaliBackbone(cfg, tok), PaliBackbone(cfg, tok)
    pos = a.vision.pos.detach()
    assert torch.equal(pos, b.vision.pos.detach())
    assert torch.equal(pos[:, : 4 * (cfg.vision_width // 4)], sincos_2d(cfg.grid, cfg.vision_width))
    assert torch.cdist(pos, pos).add(torch.eye(len(pos)) * 1e3).min() > 0.1  # every patch position is distinct
    for w in (a.vision.proj.weight, a.vision.patch.weight):  # unit gain: std = fan_in ** -0.5
        assert float(w.detach().std()) == pytest.approx(w[0].numel() ** -0.5, rel=0.1)
    old = PaliBackbone(cfg.replace(pos_init="learned", input_init="default"), tok)
    assert old.vision.proj.weight.std() < 0.02 and old.vision.pos.std() < 0.05
    with pytest.raises(ValueError, match="pos_init"):
        PaliConfig(pos_init="rope")


def test_keypoint_tokens_follow_the_object():
    """Keypoint tokens are appended per frame; their expected coordinates stay on the frame and depend on where
    things are (a bright square in two places)."""
    bb = tiny_pali(keypoints=4)
    assert bb.config.num_image_tokens == bb.config.tokens_per_frame + 4
    frames = np.zeros((2, 24, 32, 3), np.uint8)
    frames[0, 4:8, 2:6] = 255
    frames[1, 16:20, 24:28] = 255
    with torch.no_grad():
        pix = bb.prepare([[f] for f in frames], ["a", "a"])["pixel_values"]
        xy = bb.vision.kp_logits(bb.vision.stem(pix.flatten(0, 1))).flatten(2).softmax(-1) @ bb.vision.kp_grid
        tokens = bb.vision(pix)
    assert xy.shape == (2, 4, 2) and xy.abs().max() <= 1.0  # expected coordinates stay on the frame
    assert (xy[1] - xy[0]).abs().max() > 1e-3 and (tokens[1, -4:] - tokens[0, -4:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="keypoints"):
        PaliConfig(keypoints=-1)


def test_film_keypoints_depend_on_the_prompt_not_the_answer():
    """With keypoint_film the image tokens change with the question asked, but never with the answer tokens
    (that would leak the label into the prefix during training)."""
    bb = tiny_pali(keypoints=4, keypoint_film=True)
    img = sample_images(bb, 1)[0]
    with torch.no_grad():
        for w in (bb.vision.kp_film.weight, bb.vision.kp_film.bias):
            w.normal_(std=0.5)  # away from the identity init
        a = bb.prepare([img], ["where is the red moon?"], targets=[[5, 6]])
        b = bb.prepare([img], ["where is the blue cube?"], targets=[[5, 6]])
        c = bb.prepare([img], ["where is the red moon?"], targets=[[7, 8]])
        la, lb, lc = bb(**a), bb(**b), bb(**c)
    n = a["input_ids"].shape[1] - 2  # the prompt's positions; answers differ only after them
    assert (la[:, :n] - lb[:, :n]).abs().max() > 1e-4
    torch.testing.assert_close(la[:, :n], lc[:, :n])


def test_film_positional_knows_word_order():
    """The plain FiLM summary (a mean of embeddings) cannot tell "push a to b" from "push b to a"; the positional
    one starts as that mean and can."""
    bb = tiny_pali(keypoints=4, keypoint_film=True, film_positional=True)
    tok = bb.tokenizer
    ids = torch.tensor(
        [tok.encode("push the red moon to the blue cube"), tok.encode("push the blue cube to the red moon")]
    )
    assert not torch.equal(ids[0], ids[1])  # same tokens, different order
    prompt = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        bb.film_pos.fill_(1.0)
        plain = bb._prompt_summary(ids, prompt)
        torch.testing.assert_close(plain[0], plain[1])  # order-blind at init, exactly the mean
        bb.film_pos.normal_(1.0, 0.5)
        ordered = bb._prompt_summary(ids, prompt)
    assert (ordered[0] - ordered[1]).abs().max() > 1e-4


def test_image_norm_is_saved_and_validated(tmp_path):
    from rt2.models.pali import PaliBackbone

    bb = tiny_pali()
    img = sample_images(bb, 1)[0]
    before = bb.prepare([img], ["Caption:"])["pixel_values"]
    bb.set_image_norm((0.2, 0.25, 0.3), (0.1, 0.1, 0.1))
    after = bb.prepare([img], ["Caption:"])["pixel_values"]
    assert not torch.allclose(before, after)
    bb.save_pretrained(tmp_path / "bb")
    back = PaliBackbone.from_pretrained(tmp_path / "bb")
    assert back.config.image_mean == (0.2, 0.25, 0.3)
    assert torch.equal(back.prepare([img], ["Caption:"])["pixel_values"], after)
    with pytest.raises(ValueError, match="positive stds"):
        bb.set_image_norm((0.2, 0.2, 0.2), (0.1, 0.0, 0.1))


def test_config_validation():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        PaliConfig(image_size=(70, 96))
    with pytest.raises(ValueError, match="stride"):
        PaliConfig(patch_size=(6, 16), image_size=(72, 96))
    with pytest.raises(ValueError, match="unknown PaliConfig"):
        PaliConfig.from_dict({"nope": 1})


def test_prepare_errors():
    bb = tiny_pali(n_frames=2)
    img = sample_images(bb, 1)[0]
    with pytest.raises(ValueError, match="takes 2 frame"):
        bb.prepare([img[:1]], ["Caption:"])
    with pytest.raises(ValueError, match="observations but"):
        bb.prepare([img], ["a", "b"])
    with pytest.raises(ValueError, match="uint8"):
        bb.prepare([[f.astype(np.float32) for f in img]], ["Caption:"])
    with pytest.raises(ValueError, match="max_text_len"):
        bb.prepare([img], ["word " * 200])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bb.prepare([img], ["Caption:"], [[10**6]])
    with pytest.raises(ValueError, match="token_type_ids"):
        inputs = bb.prepare([img], ["Caption:"], [[5, 2]])
        del inputs["token_type_ids"]
        bb(**inputs)


def test_step_past_capacity_raises():
    bb = tiny_pali()
    with torch.inference_mode():
        logits, cache = bb.prefill(bb.prepare(sample_images(bb, 1), ["Caption:"]), max_new_tokens=1)
        logits, cache = bb.step(logits.argmax(-1), cache)
        with pytest.raises(RuntimeError, match="cache full"):
            bb.step(logits.argmax(-1), cache)


def test_logits_ids_subset_matches_full():
    bb = tiny_pali()
    ids = torch.tensor([7, 3, 40, 11])
    inputs = bb.prepare(sample_images(bb, 2), ["Caption:", "Q: what color is the star? A:"])
    with torch.inference_mode():
        full, c1 = bb.prefill(inputs, max_new_tokens=1)
        sub, c2 = bb.prefill(inputs, max_new_tokens=1, logits_ids=ids)
        torch.testing.assert_close(sub, full[:, ids])
        nxt = full.argmax(-1)
        f2, _ = bb.step(nxt, c1)
        s2, _ = bb.step(nxt, c2, logits_ids=ids)
        torch.testing.assert_close(s2, f2[:, ids])


def test_resize_embeddings_keeps_rows():
    bb = tiny_pali()
    old = bb.embed.weight.detach().clone()
    bb.resize_token_embeddings(bb.vocab_size + 10)
    assert torch.equal(bb.embed.weight[: old.shape[0]], old) and bb.config.vocab_size == old.shape[0] + 10
    with pytest.raises(ValueError, match="shrink"):
        bb.resize_token_embeddings(3)


def test_corrupt_backbone_files(tmp_path):
    from rt2.models.registry import load_backbone

    bb = tiny_pali()
    bb.save_pretrained(tmp_path / "bb")
    (tmp_path / "bb" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_backbone(tmp_path / "bb")
    bb.save_pretrained(tmp_path / "bb2")
    other = tiny_pali(text_width=32)
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "bb2" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"tensor '.*' has shape"):
        load_backbone(tmp_path / "bb2")
