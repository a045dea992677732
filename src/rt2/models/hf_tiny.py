"""Tiny random-initialized checkpoints of the four HF VLM families, built fully offline.

Used by the tests and the docs: ``write_tiny_checkpoint(dir, "paligemma")`` writes exactly what a downloaded
Hub snapshot holds (config.json, model.safetensors, tokenizer files, preprocessor_config.json), so the folder
goes through the same ``HFBackbone.load`` path as a real PaliGemma/SmolVLM checkpoint.

Sizes (~0.2-0.4 M params): vision 64 wide x 2 layers on 32x32 images with patch 8; text 64 wide x 2 layers,
4 heads, 1 KV head, vocab 1024. The tokenizer is a byte-level BPE trained in ~10 ms on synthetic robot
instructions with every special token the four families need (reference/cpu-measurements.md section 1).

Traps: ``from_config`` mutates the config it is given (we pass a copy); configs accept unknown kwargs silently
(field names here were checked against transformers 5.23); Qwen2-VL's ``mrope_section`` must sum to head_dim/2.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from rt2.models.hf import require
from rt2.models.hf_families import FAMILIES

SPECIAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<image>",
    "<fake_token_around_image>",
    "<global-img>",
    "<end_of_utterance>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
TINY_VOCAB = 1024
TINY_IMAGE = 32
_COLORS = ("red", "blue", "green", "yellow", "purple", "orange")
_VERBS = ("push", "move", "slide", "put")


def _corpus() -> list[str]:
    # Integers -255..255 appear often so BPE learns them as single tokens (for the "numeric" action vocab).
    lines = []
    for i in range(-255, 256):
        c, c2, v = _COLORS[i % 6], _COLORS[(i * 7 + 3) % 6], _VERBS[i % 4]
        lines.append(f"Q: what action should the robot take to {v} the {c} block to the {c2} cube? A: {i} {-i}")
        lines.append(f"Instruction: {v} the {c} star near the {c2} moon Plan: {v} {c} Action: {i} {i // 2} {i}")
    return lines * 3


def build_tiny_tokenizer() -> Any:
    """A local ``PreTrainedTokenizerFast`` (byte-level BPE, ``TINY_VOCAB`` or fewer entries) with BOS/EOS/PAD,
    ``image_token`` and the Idefics3 / Qwen2-VL special tokens."""
    transformers = require("transformers")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # Split at whitespace keeping the leading space (" -7" stays one piece, unlike GPT-2's regex that splits
    # "-" from "7"), then map bytes; so " v" can become a single token for every action integer v.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r" ?[^\s]+|\s+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )


def tiny_config(family: str, tokenizer: Any = None) -> Any:
    """A tiny transformers config of ``family`` ("paligemma", "idefics3", "qwen2_vl", "llava")."""
    transformers = require("transformers")
    if family not in FAMILIES:
        raise ValueError(f"unknown HF family {family!r}; choose from {sorted(FAMILIES)}")
    tok = tokenizer if tokenizer is not None else build_tiny_tokenizer()
    ids = tok.get_vocab()
    vocab = max(TINY_VOCAB, len(tok))
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    vision.update(image_size=TINY_IMAGE, patch_size=8)
    text = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        vocab_size=vocab,
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<bos>"],
        eos_token_id=ids["<eos>"],
    )
    specials = dict(pad_token_id=ids["<pad>"], bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"])
    if family == "paligemma":
        return transformers.PaliGemmaConfig(
            vision_config=dict(model_type="siglip_vision_model", vision_use_head=False, **vision),
            text_config=dict(model_type="gemma", **text),
            image_token_index=ids["<image>"],
            vocab_size=vocab,
            projection_dim=64,
            hidden_size=64,
            **specials,
        )
    if family == "idefics3":
        return transformers.Idefics3Config(
            vision_config=dict(model_type="idefics3_vision", **vision),
            text_config=dict(model_type="llama", **text),
            image_token_id=ids["<image>"],
            scale_factor=2,
            **specials,
        )
    if family == "llava":
        # Not LLaVA's defaults (-2 / "default"): those discard the last ViT layer and a SigLIP patch.
        return transformers.LlavaConfig(
            vision_config=dict(model_type="siglip_vision_model", vision_use_head=False, **vision),
            text_config=dict(model_type="llama", **text),
            image_token_index=ids["<image>"],
            image_seq_length=(TINY_IMAGE // 8) ** 2,
            vision_feature_layer=-1,
            vision_feature_select_strategy="full",
            **specials,
        )
    return transformers.Qwen2VLConfig(
        vision_config=dict(
            depth=2,
            embed_dim=64,
            hidden_size=64,
            num_heads=2,
            patch_size=8,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        text_config=dict(
            model_type="qwen2_vl_text",
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            **text,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        **specials,
    )


def write_tiny_checkpoint(directory: str | Path, family: str, *, seed: int = 0) -> Path:
    """Write a tiny random-init ``family`` checkpoint folder (what ``hf download --local-dir`` would give)."""
    transformers = require("transformers")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer()
    cfg = tiny_config(family, tok)
    torch.manual_seed(seed)
    model = transformers.AutoModelForImageTextToText.from_config(copy.deepcopy(cfg))  # trap: mutates its config
    model.save_pretrained(d)
    tok.save_pretrained(d)
    preproc: dict[str, Any] = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    if family == "qwen2_vl":  # CLIP normalization; size is a pixel-count range for Qwen2-VL
        preproc = {
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "size": {"shortest_edge": 16 * 16, "longest_edge": TINY_IMAGE * TINY_IMAGE},
        }
    (d / "preprocessor_config.json").write_text(json.dumps(preproc, indent=2) + "\n")
    return d
