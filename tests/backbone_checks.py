"""Reusable contract checks for any ``rt2.models.base.Backbone`` (built-in pali and the HF adapters).

Usage from a test::

    from backbone_checks import run_all_checks
    run_all_checks(backbone)            # raises AssertionError naming the broken property

Each check takes a backbone in eval mode and builds its own inputs (random images, prompts from the
backbone's tokenizer). They test behaviour, not implementation: prefix-LM causality, padding invariance,
KV-cached decoding = teacher forcing, save/load identity.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from rt2.models.base import IGNORE_INDEX, Backbone

PROMPTS = ("Q: what action should the robot take to push the red star left? A:", "Caption:")


def sample_images(backbone: Backbone, batch: int, seed: int = 0, size: tuple[int, int] | None = None):
    rng = np.random.default_rng(seed)
    h, w = size or backbone.image_size
    return [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(backbone.n_frames)] for _ in range(batch)]


def sample_targets(backbone: Backbone, batch: int, length: int, seed: int = 0) -> list[list[int]]:
    """Answer ids drawn from ordinary (non-special) tokens, EOS last."""
    rng = np.random.default_rng(seed)
    n = len(backbone.tokenizer)
    lo = 8 if n > 64 else 0
    eos = backbone.tokenizer.eos_token_id
    return [[*rng.integers(lo, n, length - 1).tolist(), eos] for _ in range(batch)]


def check_prefix_lm_causality(backbone: Backbone, atol: float = 1e-5) -> None:
    """Changing a later answer token leaves earlier logits unchanged; changing a prompt token changes the
    logits at every answer position (bidirectional prefix: even the FIRST prompt token's output moves)."""
    images = sample_images(backbone, 1)
    inputs = backbone.prepare(images, [PROMPTS[0]], sample_targets(backbone, 1, 5))
    with torch.no_grad():
        base = backbone(**inputs)
        tt, am = inputs["token_type_ids"][0], inputs["attention_mask"][0]
        ans = ((tt == 1) & (am == 1)).nonzero().flatten()
        assert len(ans) >= 3, "prepare() did not mark the answer with token_type_ids == 1"
        labels = inputs["labels"][0]
        lab_cols = (labels != IGNORE_INDEX).nonzero().flatten()
        # The last answer token (EOS) is an input only to positions >= itself.
        changed = {k: v.clone() for k, v in inputs.items()}
        last = int(ans[-1])
        changed["input_ids"][0, last] = (int(changed["input_ids"][0, last]) + 1) % len(backbone.tokenizer)
        out = backbone(**changed)
        # logits[t] predicts labels[t]; those before the label of the last token's own position are earlier.
        earlier = lab_cols[:-1]
        diff = (out[0, earlier] - base[0, earlier]).abs().max().item()
        assert diff <= atol, f"answer token leaked backwards: earlier logits moved by {diff:.3g} (causal mask broken)"
        # Bidirectional prefix: change the LAST prompt token; the logits at the first prompt token must move.
        prompt_cols = ((tt == 0) & (am == 1)).nonzero().flatten()
        changed = {k: v.clone() for k, v in inputs.items()}
        p_last = int(prompt_cols[-1])
        changed["input_ids"][0, p_last] = (int(changed["input_ids"][0, p_last]) + 1) % len(backbone.tokenizer)
        out = backbone(**changed)
        assert (out[0, lab_cols] - base[0, lab_cols]).abs().max().item() > atol, "prompt change did not reach answer"
        first_prompt_out = backbone_prompt_logits_moved(base, out, int(prompt_cols[0]), labels.shape[0])
        assert first_prompt_out, (
            "prefix is not bidirectional: changing a later prompt token left earlier ones unchanged"
        )


def backbone_prompt_logits_moved(base: torch.Tensor, out: torch.Tensor, col: int, T: int, atol: float = 1e-5) -> bool:
    """Whether logits at text column ``col`` moved (only meaningful when logits cover the prompt, T == L)."""
    if base.shape[1] != T or col >= base.shape[1]:
        return True  # backbone returns logits only for answer positions; bidirectionality shown via answers
    return (out[0, col] - base[0, col]).abs().max().item() > atol


def check_padding_invariance(backbone: Backbone, atol: float = 1e-4) -> None:
    """A row's teacher-forced logits do not depend on the other rows (right padding is masked)."""
    images = sample_images(backbone, 2, seed=1)
    targets = sample_targets(backbone, 2, 4, seed=1)
    batch = backbone.prepare(images, list(PROMPTS), targets)
    with torch.no_grad():
        both = backbone(**batch)
        for b in range(2):
            one = backbone.prepare(images[b : b + 1], [PROMPTS[b]], targets[b : b + 1])
            single = backbone(**one)
            lb, ls = batch["labels"][b], one["labels"][0]
            got, want = both[b, lb != IGNORE_INDEX], single[0, ls != IGNORE_INDEX]
            diff = (got - want).abs().max().item()
            assert diff <= atol, f"row {b}: batched logits differ from the row alone by {diff:.3g} (padding leaks)"


def greedy_cached(backbone: Backbone, images, prompts, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decode n tokens with prefill/step -> (ids int64[B, n], logits float32[B, n, V])."""
    inputs = backbone.prepare(images, prompts)
    with torch.inference_mode():
        logits, cache = backbone.prefill(inputs, max_new_tokens=n - 1)
        ids, lgs = [], []
        for t in range(n):
            nxt = logits.argmax(-1)
            ids.append(nxt)
            lgs.append(logits)
            if t + 1 < n:
                logits, cache = backbone.step(nxt, cache)
    return torch.stack(ids, 1), torch.stack(lgs, 1)


def check_cached_decode_matches_teacher_forcing(backbone: Backbone, n: int = 5, atol: float = 1e-3) -> None:
    """KV-cached greedy tokens equal the argmax of a teacher-forced pass over prompt + those tokens."""
    images = sample_images(backbone, 1, seed=2)
    ids, cached = greedy_cached(backbone, images, [PROMPTS[0]], n)
    inputs = backbone.prepare(images, [PROMPTS[0]], [ids[0].tolist()])
    with torch.no_grad():
        tf = backbone(**inputs)
    labels = inputs["labels"][0]
    cols = (labels != IGNORE_INDEX).nonzero().flatten()
    # Teacher forcing predicts answer token t from column cols[t]; the first answer token is predicted by the
    # last prompt column, which is cols[0] - 0 because labels are shifted onto the preceding column.
    tf_logits = tf[0, cols]
    assert torch.equal(tf_logits.argmax(-1), ids[0]), "cached greedy decode differs from teacher-forced argmax"
    diff = (tf_logits - cached[0]).abs().max().item()
    assert diff <= atol, f"cached logits differ from teacher-forced logits by {diff:.3g}"


def check_batched_decode_matches_single(backbone: Backbone, n: int = 4, atol: float = 1e-3) -> None:
    """Left-padded batched decoding of prompts with different lengths equals decoding each alone."""
    images = sample_images(backbone, 2, seed=3)
    ids, logits = greedy_cached(backbone, images, list(PROMPTS), n)
    for b in range(2):
        one_ids, one_logits = greedy_cached(backbone, images[b : b + 1], [PROMPTS[b]], n)
        diff = (logits[b] - one_logits[0]).abs().max().item()
        assert diff <= atol, f"row {b}: batched decode logits differ from single by {diff:.3g} (padding mask?)"
        assert torch.equal(ids[b], one_ids[0]), f"row {b}: batched greedy tokens differ from single decoding"


def check_save_load(backbone: Backbone) -> None:
    """save_pretrained -> load_backbone gives identical logits."""
    from rt2.models.registry import load_backbone

    images = sample_images(backbone, 1, seed=4)
    inputs = backbone.prepare(images, [PROMPTS[0]], sample_targets(backbone, 1, 3))
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        backbone.save_pretrained(Path(d) / "bb")
        loaded = load_backbone(Path(d) / "bb").eval()
        assert torch.equal(backbone(**inputs), loaded(**inputs)), "reloaded backbone gives different logits"


def run_all_checks(backbone: Backbone) -> None:
    backbone.eval()
    check_prefix_lm_causality(backbone)
    check_padding_invariance(backbone)
    check_cached_decode_matches_teacher_forcing(backbone)
    check_batched_decode_matches_single(backbone)
    check_save_load(backbone)


# ---- small builders shared by the model/policy tests --------------------------------------------------------
COLORS = ("red", "blue", "green", "yellow", "purple")
SHAPES = ("cube", "star", "moon", "pentagon", "heart")
WHERE = ("left", "right", "top", "bottom", "center")


def tiny_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c, s, w = rng.choice(COLORS), rng.choice(SHAPES), rng.choice(WHERE)
        out.append(f"push the {c} {s} to the {w} of the board")
        out.append(f"Q: what color is the {s}? A: {c}")
    return out


_TOKENIZER = None


def tiny_tokenizer():
    """A TextTokenizer trained on :func:`tiny_corpus` (cached; returns a fresh copy each call)."""
    from rt2.models.text_tokenizer import TextTokenizer

    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = TextTokenizer.train(tiny_corpus(), vocab_size=1024)
    from tokenizers import Tokenizer

    return TextTokenizer(Tokenizer.from_str(_TOKENIZER.to_str()))


def tiny_pali_config(**kw):
    """A pali config small enough for unit tests (12 image tokens, 2 text layers)."""
    from rt2.models.pali import PaliConfig

    base = dict(
        image_size=(24, 32),
        patch_size=(8, 8),
        stem_channels=(8,),
        vision_width=32,
        vision_layers=1,
        vision_heads=2,
        text_width=64,
        text_layers=2,
        text_heads=2,
        max_text_len=80,
    )
    return PaliConfig.tiny(**{**base, **kw})


def spread_weights(module: torch.nn.Module, seed: int = 0, std: float = 0.15) -> torch.nn.Module:
    """Re-draw weights with a larger std so random-init logits are far from ties (argmax comparisons are
    then meaningful and robust to float reassociation)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif "ln" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return module


def tiny_pali(seed: int = 0, **kw):
    from rt2.models.pali import PaliBackbone

    torch.manual_seed(seed)
    return spread_weights(PaliBackbone(tiny_pali_config(**kw), tiny_tokenizer()), seed).eval()


def tiny_vla(space: str = "language_table", vocab: str = "numeric", seed: int = 0, spread: bool = True, **kw):
    """A VLA on a :func:`tiny_pali` backbone (``spread=False`` keeps the trainable default init)."""
    from rt2.models.pali import PaliBackbone
    from rt2.models.vla import VLA

    torch.manual_seed(seed)
    bb = PaliBackbone(tiny_pali_config(**kw), tiny_tokenizer())
    if spread:
        spread_weights(bb, seed)
    return VLA.build(bb, action_space=space, vocab=vocab, corpus=tiny_corpus()).eval()
