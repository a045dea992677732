"""HF VLM backbones (rt2.models.hf) on tiny random-init checkpoints of all four families.

Each family's checkpoint is written to a tmp folder (config.json, safetensors, tokenizer, preprocessor config)
and loaded back through ``build_backbone("hf", path=dir)`` -- the code path a user with a real PaliGemma or
SmolVLM folder takes. The backbone contract (causality, padding, cached decoding, save/load) is the shared one
in tests/backbone_checks.py; the VLA/Decoder/Policy stack on these backbones is in test_models_hf_vla.py.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from backbone_checks import check_prefix_lm_causality, run_all_checks  # noqa: E402
from rt2.actions import ActionSpace, ActionTokenizer  # noqa: E402
from rt2.models.base import IGNORE_INDEX  # noqa: E402
from rt2.models.hf import HFBackbone, require  # noqa: E402
from rt2.models.hf_tiny import write_tiny_checkpoint  # noqa: E402
from rt2.models.registry import build_backbone, list_backbones, load_backbone  # noqa: E402

FAMILIES = ["paligemma", "idefics3", "qwen2_vl", "llava"]
PROMPTS = ["Q: what action should the robot take to push the red block? A:", "Q: slide? A:"]


@pytest.fixture(scope="module")
def ckpt_dirs(tmp_path_factory):
    return {f: write_tiny_checkpoint(tmp_path_factory.mktemp(f), f, seed=0) for f in FAMILIES}


@pytest.fixture(scope="module")
def backbones(ckpt_dirs):
    torch.manual_seed(0)
    return {f: build_backbone("hf", path=str(d)) for f, d in ckpt_dirs.items()}


def frames(n: int = 2, seed: int = 0, hw: tuple[int, int] = (40, 48)) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, 256, (*hw, 3), dtype=np.uint8)] for _ in range(n)]


def test_registry_names_and_autodetect(backbones, ckpt_dirs):
    names = set(list_backbones())
    assert {"hf", "hf-paligemma", "hf-idefics3", "hf-qwen2-vl", "hf-llava", "hf-paligemma-tiny"} <= names
    for fam, bb in backbones.items():
        assert bb.fam.name == fam and bb.family == "hf"
    with pytest.raises(ValueError, match="holds a idefics3 model"):
        build_backbone("hf-paligemma", path=str(ckpt_dirs["idefics3"]))
    with pytest.raises(ValueError, match="path=LOCAL_DIR"):
        build_backbone("hf-paligemma")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        build_backbone("hf", path="google/paligemma2-3b-pt-224")


@pytest.mark.parametrize("family", FAMILIES)
def test_backbone_contract(backbones, family):
    """Causality (prefix-LM for PaliGemma, causal for the rest), padding invariance, cached = teacher-forced
    decoding, batched = single decoding, save/load identity."""
    bb = backbones[family]
    assert bb.prefix_lm == (family == "paligemma")
    run_all_checks(bb)


@pytest.mark.parametrize("family", ["paligemma", "llava"])
def test_causality_check_catches_wrong_masks(ckpt_dirs, family, monkeypatch):
    """The shared check must fail when the attention pattern is wrong, in both directions."""
    bb = build_backbone("hf", path=str(ckpt_dirs[family])).eval()
    if family == "paligemma":  # the SDPA trap: no token_type_ids -> bidirectional over the answer
        real = bb.fam.model_kwargs

        def no_prefix_marker(model, inputs, *, prefill):
            kw = real(model, inputs, prefill=prefill)
            kw.pop("token_type_ids")
            return kw

        monkeypatch.setattr(bb.fam, "model_kwargs", no_prefix_marker)
        with pytest.raises(AssertionError, match="leaked backwards"):
            check_prefix_lm_causality(bb)
    else:  # a causal model declared prefix-LM: the "bidirectional prefix" expectation fails
        monkeypatch.setattr(bb.fam, "prefix_lm", True)
        with pytest.raises(AssertionError, match="not bidirectional"):
            check_prefix_lm_causality(bb)


def test_paligemma_leaks_without_token_type_ids(backbones):
    """The trap the adapter guards against: transformers' PaliGemma without token_type_ids sees the future."""
    bb = backbones["paligemma"]
    inputs = bb.prepare(frames(1), PROMPTS[:1], [[300, 301, 302]])
    kw = bb.fam.model_kwargs(bb.hf_model, inputs, prefill=False)
    kw.pop("token_type_ids")
    changed = dict(kw, input_ids=kw["input_ids"].clone())
    changed["input_ids"][0, -1] = 400
    a = bb.hf_model(**kw).logits
    b = bb.hf_model(**changed).logits
    assert (a[0, :-1] - b[0, :-1]).abs().max() > 1e-4
    assert inputs["token_type_ids"][0].tolist()[-3:] == [1, 1, 1]
    assert inputs["labels"][0].tolist()[-4:] == [300, 301, 302, IGNORE_INDEX]


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_batch_is_left_padded_and_cache_is_bounded(backbones, family):
    bb = backbones[family]
    gen = bb.prepare(frames(2, seed=1), PROMPTS)
    assert gen["attention_mask"][1, 0] == 0 and gen["attention_mask"][:, -1].all()  # left-padded
    logits, cache = bb.prefill(gen, max_new_tokens=1)
    _, cache = bb.step(logits.argmax(-1), cache)
    with pytest.raises(RuntimeError, match="cache is full"):
        bb.step(logits.argmax(-1), cache)


@pytest.mark.parametrize("family", FAMILIES)
def test_decode_path_has_no_transformers_deprecations(backbones, family):
    """prefill + step pass the cache the current way: transformers neither warns (FutureWarning) nor logs its
    "`past_key_values` ... deprecated" line, which it logs once per process, so the once-cache is cleared."""
    import logging
    import warnings

    bb = backbones[family]
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    hf_log = logging.getLogger("transformers")
    logging.Logger.warning_once.cache_clear()  # transformers' warning_once is an lru_cache on Logger
    hf_log.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logits, cache = bb.prefill(bb.prepare(frames(), PROMPTS), max_new_tokens=2)
            bb.step(logits.argmax(-1), cache)
    finally:
        hf_log.removeHandler(handler)
    said = [str(w.message) for w in caught] + [r.getMessage() for r in records]
    assert not [m for m in said if "deprecat" in m.lower()], said


def test_lora_trains_only_adapters_and_round_trips(ckpt_dirs, tmp_path):
    torch.manual_seed(0)
    bb = build_backbone("hf", path=str(ckpt_dirs["paligemma"]), lora_rank=4, freeze_vision=True)
    names = [n for n, p in bb.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert not any("vision_tower" in n for n in names)  # scope "language": SigLIP's q_proj/v_proj untouched
    frozen = {n: p.detach().clone() for n, p in bb.named_parameters() if not p.requires_grad}
    inputs = bb.prepare(frames(2), PROMPTS, [[300, 301], [302]])
    opt = torch.optim.AdamW(bb.trainable_parameters(), lr=1e-2)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(bb(**inputs).flatten(0, 1), inputs["labels"].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in bb.named_parameters() if n in frozen)
    bb.eval()
    with torch.no_grad():
        before = bb(**inputs)
    bb.save_pretrained(tmp_path / "ck")
    assert (tmp_path / "ck" / "lora" / "adapter_config.json").is_file()
    again = load_backbone(tmp_path / "ck")
    assert again.is_lora and again.config.lora_rank == 4
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs), before, atol=1e-5, rtol=1e-5)
    every = build_backbone("hf", path=str(ckpt_dirs["paligemma"]), lora_rank=2, lora_scope="all")
    assert any("vision_tower" in n and "lora_" in n for n, _ in every.named_parameters())


def test_freeze_vision(ckpt_dirs):
    bb = build_backbone("hf", path=str(ckpt_dirs["idefics3"]), freeze_vision=True)
    assert not any(p.requires_grad for p in bb.vision_module().parameters())
    assert any(p.requires_grad for n, p in bb.named_parameters() if "connector" in n)


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_folder_is_a_plain_hf_checkpoint(backbones, family, tmp_path):
    """Logit identity after reload is in run_all_checks; here: family, image size, and HF loadability."""
    bb = backbones[family]
    bb.save_pretrained(tmp_path)
    again = load_backbone(tmp_path)
    assert isinstance(again, HFBackbone) and again.fam.name == family and again.image_size == bb.image_size
    transformers = require("transformers")
    plain = transformers.AutoModelForImageTextToText.from_pretrained(tmp_path, local_files_only=True)
    assert type(plain) is type(bb.hf_model)


def test_action_vocab_choice(ckpt_dirs):
    at = ActionTokenizer(ActionSpace.rt1())
    bb = build_backbone("hf", path=str(ckpt_dirs["llava"]), action_vocab="added")
    vocab = bb.make_action_vocab(at)
    assert vocab.strategy == "added" and bb.vocab_size >= vocab.min_vocab_size > 1024
    bb2 = build_backbone("hf", path=str(ckpt_dirs["llava"]))
    assert bb2.make_action_vocab(at, corpus=PROMPTS).strategy == "least_used"
    with pytest.raises(ValueError, match="action_vocab"):
        build_backbone("hf", path=str(ckpt_dirs["llava"]), action_vocab="digits")


def test_qwen_pixels_match_hf_image_processor(backbones):
    transformers = require("transformers")
    bb = backbones["qwen2_vl"]
    img = frames(1, seed=3, hw=bb.image_size)[0]
    ours = bb.prepare([img], ["Q: x? A:"])
    tc = bb.transform.config
    proc = transformers.Qwen2VLImageProcessorPil(
        image_mean=list(tc.mean),
        image_std=list(tc.std),
        patch_size=8,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": 16 * 16, "longest_edge": 32 * 32},
    )
    ref = proc(images=[img[0]], return_tensors="pt")
    assert torch.equal(ours["image_grid_thw"], ref["image_grid_thw"])
    torch.testing.assert_close(ours["pixel_values"], ref["pixel_values"].float(), atol=1e-5, rtol=1e-5)


def test_idefics3_black_frame_is_not_dropped(ckpt_dirs):
    bb = build_backbone("hf", path=str(ckpt_dirs["idefics3"]))
    from rt2.data.transforms import ImageTransform, TransformConfig

    bb.transform = ImageTransform(TransformConfig(size=bb.image_size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
    black = [[np.zeros((32, 32, 3), np.uint8)]]
    inputs = bb.prepare(black, ["Q: x? A:"], [[300]])
    assert bb(**inputs).shape[:2] == inputs["input_ids"].shape  # the 1e-6 nudge keeps the frame
    kw = bb.fam.model_kwargs(bb.hf_model, inputs, prefill=False)
    kw["pixel_values"] = torch.zeros_like(kw["pixel_values"])
    with pytest.raises((ValueError, RuntimeError)):  # what happens without it: the image is dropped as padding
        bb.hf_model(**kw)


def test_llava_default_strategy_counts_tokens(tmp_path):
    transformers = require("transformers")
    d = write_tiny_checkpoint(tmp_path, "llava")
    cfg = transformers.AutoConfig.from_pretrained(d)
    cfg.vision_feature_select_strategy, cfg.vision_feature_layer = "default", -2
    cfg.save_pretrained(d)
    bb = build_backbone("hf-llava", path=str(d))
    assert bb.fam.n_image_tokens == 15  # 16 SigLIP patches, "default" drops the first one
    inputs = bb.prepare(frames(1), PROMPTS[:1], [[300]])
    assert bb(**inputs).shape[1] == inputs["input_ids"].shape[1]


def test_bad_inputs(backbones):
    bb = backbones["paligemma"]
    with pytest.raises(ValueError, match="frame"):
        bb.prepare([[]], ["x"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bb.prepare(frames(1), ["x"], [[10**6]])
    with pytest.raises(ValueError, match="uint8"):
        bb.prepare([[np.zeros((8, 8, 3), np.float32)]], ["x"])
    with pytest.raises(ValueError, match="prefill takes"):
        bb.prefill(bb.prepare(frames(1), ["x"], [[300]]), max_new_tokens=1)


def test_missing_transformers_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r'pip install "rt2\[hf\]"'):
        require("transformers")
