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


def ordinary_ids(backbone: Backbone) -> list[int]:
    """Token ids safe to place anywhere in an answer: not special. Trap: HF tokenizers list only the NAMED
    specials in ``all_special_ids``; placeholders like Qwen2-VL's ``<|image_pad|>`` are special added tokens
    (a stray one in an answer makes the model look for an extra image), so added-special ids are excluded too."""
    tok = backbone.tokenizer
    n = len(tok)
    special = {int(i) for i in getattr(tok, "all_special_ids", None) or ()}
    for i, t in (getattr(tok, "added_tokens_decoder", None) or {}).items():
        if getattr(t, "special", False):
            special.add(int(i))
    own = getattr(tok, "special_ids", None)  # rt2's TextTokenizer
    if own is not None:
        special.update(int(i) for i in (own() if callable(own) else own))
    lo = 8 if n > 64 else 0  # also skip the first few ids (special tokens of tokenizers that do not list them)
    return [i for i in range(lo, n) if i not in special]


def sample_targets(backbone: Backbone, batch: int, length: int, seed: int = 0) -> list[list[int]]:
    """Answer ids drawn from ordinary (non-special) tokens, EOS last."""
    rng = np.random.default_rng(seed)
    ids = np.array(ordinary_ids(backbone))
    eos = backbone.tokenizer.eos_token_id
    return [[*rng.choice(ids, length - 1).tolist(), eos] for _ in range(batch)]


def _replace_token(backbone: Backbone, inputs: dict[str, torch.Tensor], row: int, col: int):
    """Copy of ``inputs`` with token (row, col) replaced by a different ordinary token."""
    ids = ordinary_ids(backbone)
    changed = {k: v.clone() for k, v in inputs.items()}
    old = int(changed["input_ids"][row, col])
    changed["input_ids"][row, col] = ids[(ids.index(old) + 1) % len(ids)] if old in ids else ids[0]
    return changed


def check_prefix_lm_causality(backbone: Backbone, atol: float = 1e-5) -> None:
    """Attention pattern, from outputs only, on an unpadded batch of one AND on a padded batch of two (trap:
    HF PaliGemma without ``token_type_ids`` is causal when a padding mask is built but fully bidirectional over
    the answer when nothing is padded, so a padded-only check misses the label leak):

    * changing an answer token leaves every earlier column's logits unchanged (no label leak), changes its own
      and later columns, and leaves the other row of the batch unchanged;
    * changing the last prompt token changes the answer logits, and changes the FIRST prompt column's logits
      iff the backbone is a prefix-LM (``backbone.prefix_lm``, default True: pali, PaliGemma); decoder-only
      backbones (SmolVLM, Qwen2-VL, LLaVA; ``prefix_lm = False``) must stay causal over the prompt too.
    """
    prefix_lm = bool(getattr(backbone, "prefix_lm", True))
    images, targets = sample_images(backbone, 2), sample_targets(backbone, 2, 5)
    for batch in (1, 2):
        inputs = backbone.prepare(images[:batch], list(PROMPTS[:batch]), targets[:batch])
        with torch.no_grad():
            _check_attention_pattern(backbone, inputs, prefix_lm, atol)


def _check_attention_pattern(backbone: Backbone, inputs: dict[str, torch.Tensor], prefix_lm: bool, atol: float) -> None:
    base = backbone(**inputs)
    full = base.shape[1] == inputs["input_ids"].shape[1]  # logits for every column (T == L)?
    tt, am = inputs["token_type_ids"][0], inputs["attention_mask"][0]
    ans = ((tt == 1) & (am == 1)).nonzero().flatten()
    assert len(ans) >= 3, "prepare() did not mark the answer with token_type_ids == 1"
    lab_cols = (inputs["labels"][0] != IGNORE_INDEX).nonzero().flatten()
    # A middle answer token: every column before it is "earlier" (prompt and image included).
    c = int(ans[len(ans) // 2])
    out = backbone(**_replace_token(backbone, inputs, 0, c))
    earlier = torch.arange(c) if full else lab_cols[lab_cols < c]
    diff = (out[0, earlier] - base[0, earlier]).abs().max().item()
    assert diff <= atol, f"answer token leaked backwards: earlier logits moved by {diff:.3g} (causal mask broken)"
    later = torch.arange(c, int(ans[-1]) + 1) if full else lab_cols[lab_cols >= c]
    assert (out[0, later] - base[0, later]).abs().max().item() > atol, "a changed answer token was not seen"
    if base.shape[0] > 1:
        other = (out[1:] - base[1:]).abs().max().item()
        assert other <= atol, f"changing row 0 moved another row's logits by {other:.3g} (rows not independent)"
    # Change the LAST prompt token.
    prompt_cols = ((tt == 0) & (am == 1)).nonzero().flatten()
    out = backbone(**_replace_token(backbone, inputs, 0, int(prompt_cols[-1])))
    assert (out[0, lab_cols] - base[0, lab_cols]).abs().max().item() > atol, "prompt change did not reach answer"
    if full:
        first = int(prompt_cols[0])
        moved = (out[0, first] - base[0, first]).abs().max().item() > atol
        if prefix_lm:
            assert moved, "prefix is not bidirectional: changing a later prompt token left earlier ones unchanged"
        else:
            assert not moved, "decoder-only backbone attends forward within the prompt (mask is not causal)"


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
