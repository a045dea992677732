"""HF VLM backbones (rt2.models.hf) on tiny random-init checkpoints of all four families.

Each family's checkpoint is written to a tmp folder (config.json, safetensors, tokenizer, preprocessor config)
and loaded back through ``build_backbone("hf", path=dir)`` -- the code path a user with a real PaliGemma or
SmolVLM folder takes.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from rt2.actions import ActionSpace, ActionTokenizer, ActionVocab  # noqa: E402
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


def vocab_for(bb: HFBackbone, dim: int) -> tuple[ActionTokenizer, ActionVocab]:
    space = ActionSpace.language_table() if dim == 2 else ActionSpace.rt1()
    at = ActionTokenizer(space)
    return at, ActionVocab.numeric(bb.tokenizer, at)


def constrained_decode(bb: HFBackbone, inputs: dict, vocab: ActionVocab) -> torch.Tensor:
    """Greedy action decoding with the action-only head: position t scores only vocab.allowed_ids(t)."""
    allowed = [torch.tensor(vocab.allowed_ids(t)) for t in range(vocab.dim)]
    logits, cache = bb.prefill(inputs, max_new_tokens=vocab.dim, logits_ids=allowed[0])
    out = []
    for t in range(vocab.dim):
        tok = allowed[t][logits.argmax(-1)]
        out.append(tok)
        if t + 1 < vocab.dim:
            logits, cache = bb.step(tok, cache, logits_ids=allowed[t + 1])
    return torch.stack(out, 1)


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
def test_causality_answer_tokens(backbones, family):
    """Changing a later answer token leaves every earlier logit unchanged (prefix-LM / causal suffix)."""
    bb = backbones[family]
    eos = bb.tokenizer.eos_token_id
    inputs = bb.prepare(frames(), PROMPTS, [[300, 301, 302, eos], [303, eos]])
    base = bb(**inputs)
    n = int(inputs["attention_mask"][0].sum())
    changed = {k: v.clone() for k, v in inputs.items()}
    changed["input_ids"][0, n - 2] = 400  # second-to-last answer token of row 0
    other = bb(**changed)
    assert torch.equal(base[0, : n - 2], other[0, : n - 2])
    assert not torch.allclose(base[0, n - 2 :], other[0, n - 2 :])  # the change is seen afterwards
    assert torch.equal(base[1], other[1])


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
def test_greedy_decode_matches_teacher_forcing_and_padding(backbones, family):
    bb = backbones[family]
    obs = frames(2, seed=1)
    gen = bb.prepare(obs, PROMPTS)
    assert gen["attention_mask"][1, 0] == 0 and gen["attention_mask"][:, -1].all()  # left-padded
    logits, cache = bb.prefill(gen, max_new_tokens=3)
    toks = []
    for _ in range(3):
        toks.append(logits.argmax(-1))
        logits, cache = bb.step(toks[-1], cache)
    toks = torch.stack(toks, 1)
    tf_inputs = bb.prepare(obs, PROMPTS, toks.tolist())
    tf = bb(**tf_inputs)
    for b in range(2):
        assert torch.equal(tf[b][tf_inputs["labels"][b] != IGNORE_INDEX].argmax(-1), toks[b])
    alone, _ = bb.prefill(bb.prepare(obs[1:], PROMPTS[1:]), max_new_tokens=1)
    padded, _ = bb.prefill(gen, max_new_tokens=1)
    torch.testing.assert_close(alone[0], padded[1], atol=1e-4, rtol=1e-4)
    with pytest.raises(RuntimeError, match="cache is full"):
        bb.step(toks[:, 0], cache)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dim", [2, 8])
def test_constrained_decoding_only_allowed_ids(backbones, family, dim):
    bb = backbones[family]
    at, vocab = vocab_for(bb, dim)
    ids = constrained_decode(bb, bb.prepare(frames(3, seed=dim), PROMPTS + ["Q: go? A:"]), vocab)
    assert ids.shape == (3, dim)
    for t in range(dim):
        assert set(ids[:, t].tolist()) <= set(vocab.allowed_ids(t))
    assert at.decode(vocab.bins_for_ids(ids.numpy())).shape == (3, dim)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_steps_reduce_loss(backbones, ckpt_dirs, family):
    torch.manual_seed(0)
    bb = build_backbone("hf", path=str(ckpt_dirs[family]))  # fresh copy: training mutates it
    at, vocab = vocab_for(bb, 2)
    targets = [vocab.ids_for_bins(at.encode(np.array(a, np.float32))).tolist() for a in ([0.03, -0.07], [0.1, 0.0])]
    inputs = bb.prepare(frames(2, seed=2), PROMPTS, targets)
    opt = torch.optim.AdamW(bb.trainable_parameters(), lr=5e-3)
    bb.train()
    losses = []
    for _ in range(12):
        logits = bb(**inputs)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), inputs["labels"].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


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
def test_save_load_round_trip(backbones, family, tmp_path):
    bb = backbones[family]
    inputs = bb.prepare(frames(2), PROMPTS, [[300, 301], [302]])
    with torch.no_grad():
        ref = bb(**inputs)
    bb.save_pretrained(tmp_path)
    again = load_backbone(tmp_path)
    assert isinstance(again, HFBackbone) and again.fam.name == family and again.image_size == bb.image_size
    with torch.no_grad():
        torch.testing.assert_close(again(**again.prepare(frames(2), PROMPTS, [[300, 301], [302]])), ref)
    transformers = require("transformers")  # the folder is also a plain HF checkpoint
    plain = transformers.AutoModelForImageTextToText.from_pretrained(tmp_path, local_files_only=True)
    assert type(plain) is type(bb.hf_model)


def test_loop_matches_generate(backbones):
    """Our prefill/step loop emits exactly what HF generate() does with an action-mask LogitsProcessor."""
    transformers = require("transformers")
    bb = backbones["paligemma"]
    _, vocab = vocab_for(bb, 8)
    inputs = bb.prepare(frames(2, seed=5), PROMPTS)
    ours = constrained_decode(bb, inputs, vocab)
    allowed = [vocab.allowed_ids(t) for t in range(8)]

    class Mask(transformers.LogitsProcessor):
        def __init__(self, start: int) -> None:
            self.start = start

        def __call__(self, input_ids, scores):
            keep = torch.full_like(scores, float("-inf"))
            keep[:, allowed[input_ids.shape[1] - self.start]] = 0
            return scores + keep

    kw = bb.fam.model_kwargs(bb.hf_model, inputs, prefill=True)
    kw.pop("position_ids")
    out = bb.hf_model.generate(
        **kw, max_new_tokens=8, do_sample=False, logits_processor=[Mask(inputs["input_ids"].shape[1])]
    )
    assert torch.equal(out[:, -8:], ours)


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
