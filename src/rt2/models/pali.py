"""``pali``: the built-in plain-PyTorch prefix-LM VLM (PaLI/PaliGemma-shaped), our default backbone.

Architecture (reference/cpu-measurements.md section 6 and 8):

* vision: an optional conv stem (3x3 stride-2 convs) so every token sees 2-4 px detail (the 4-6 px blocks are
  the known bottleneck, bc-feasibility.md), then a conv patchify to ``(H/ph) x (W/pw)`` tokens, learned patch
  positions, pre-LN ViT blocks, a linear projector to the text width, and a learned frame embedding per frame;
* text decoder: tied token embedding (the output head is the embedding matrix), learned text positions, pre-LN
  blocks with fused QKV, GELU MLP and ``F.scaled_dot_product_attention``;
* sequence ``[image tokens of all F frames][text]``; attention is full over image + prompt and causal over the
  answer (prefix-LM), built from ``attention_mask`` and ``token_type_ids``.

Decoding keeps a preallocated static KV cache (``PaliCache``). The prefill needs no mask at all when no row is
padded (the whole prefix is bidirectional); left padding (batched prompts of different lengths) is masked by a
key-padding mask carried in the cache. Text position ids come from the attention mask, so a padded row decodes
exactly like the same row alone. ``logits_ids`` restricts the head to a few rows (the action-only head).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rt2.data.transforms import ImageTransform, TransformConfig
from rt2.models.base import IGNORE_INDEX, Backbone, read_meta
from rt2.models.checkpoint import WEIGHTS_FILE, CheckpointError, load_weights, read_json, save_weights, write_json
from rt2.models.registry import register_backbone
from rt2.models.text_tokenizer import TextTokenizer


@dataclass(frozen=True)
class PaliConfig:
    """Hyper-parameters of the built-in backbone. ``vocab_size`` 0 means "take ``len(tokenizer)``"."""

    name: str = "pali-tiny"
    image_size: tuple[int, int] = (72, 96)  # (H, W); the sim renders 72x96 by default
    patch_size: tuple[int, int] = (12, 16)  # (ph, pw) -> 6 x 6 = 36 tokens per frame at 72x96
    n_frames: int = 1
    stem_channels: tuple[int, ...] = (32, 64)  # 3x3 stride-2 convs before patchify; () = plain patchify
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_width: int = 256
    text_layers: int = 4
    text_heads: int = 4
    mlp_ratio: float = 4.0
    max_text_len: int = 128  # prompt + answer tokens (learned positions)
    vocab_size: int = 0
    dropout: float = 0.0
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # Input-side init (issue 9, measured in bench/learn.py's notes): "sincos" 2-D patch positions and "fanin"
    # patchify/projector weights let a fresh model leave the pointing plateau in ~150 steps; with "learned" /
    # "default" (N(0, 0.02) everywhere) it does not even memorise 64 pointing examples in 300 steps.
    pos_init: str = "sincos"  # "sincos" | "learned" (zeros + N(0, 0.02))
    input_init: str = "fanin"  # "fanin" | "default"
    # Spatial-softmax keypoint tokens per frame (0 = none): K 1x1-conv heat maps over the stem's features, each
    # turned into its expected (x, y) and the features there, and appended as K extra image tokens. Why: 36 patch
    # tokens are ~7 x 10 cm each, while a block is 4 cm and the pointing/action grid is 2-3 cm; keypoints give
    # sub-patch coordinates directly (the spatial-softmax prior of reference/bc-feasibility.md).
    keypoints: int = 0
    # FiLM the keypoint heat maps with the prompt (RT-1's instruction-conditioned image features): the masked mean of
    # the prompt's token embeddings scales and shifts the stem features the heat maps read, so "where is the red
    # moon?" can put a keypoint on the red moon. Instruction-agnostic keypoints split over look-alike blocks.
    keypoint_film: bool = False
    # Word order in the FiLM summary: each prompt token's embedding gets a learned per-position, per-channel gain
    # before the mean (init 1 = the plain mean). Why: a mean of embeddings cannot tell "push the red moon to the
    # blue cube" from "push the blue cube to the red moon", so no keypoint can mean "the block to push".
    # Measured (issue 9 notes, bench learn, 8.6 CPU-min grounded pointing pre-training): it *hurt*, pointing loss
    # 1.23 vs 0.54 without it; kept off, as an ablation switch.
    film_positional: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the config

    def __post_init__(self) -> None:
        for k in ("image_size", "patch_size", "stem_channels", "image_mean", "image_std"):
            v = getattr(self, k)
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):  # trap: tuple("72x96") has 5 items
                raise ValueError(f"{k} must be a list of numbers, e.g. [72, 96], got {v!r}")
            object.__setattr__(self, k, tuple(v))
        for k in ("image_size", "patch_size"):
            v = getattr(self, k)
            if len(v) != 2 or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and x > 0 for x in v):
                raise ValueError(f"{k} must be two positive integers [H, W], got {list(v)!r}")
            object.__setattr__(self, k, tuple(int(x) for x in v))
        (H, W), (ph, pw) = self.image_size, self.patch_size
        if H % ph or W % pw:
            raise ValueError(f"image_size {self.image_size} must be divisible by patch_size {self.patch_size}")
        s = 2 ** len(self.stem_channels)
        if ph % s or pw % s:
            raise ValueError(
                f"patch_size {self.patch_size} must be divisible by the stem's stride {s} "
                f"({len(self.stem_channels)} stride-2 convs); shorten stem_channels or grow the patch"
            )
        if self.vision_width % self.vision_heads or self.text_width % self.text_heads:
            raise ValueError("vision_width/text_width must be divisible by vision_heads/text_heads")
        if self.pos_init not in ("sincos", "learned") or self.input_init not in ("fanin", "default"):
            raise ValueError(
                f"pos_init must be 'sincos' or 'learned' and input_init 'fanin' or 'default', "
                f"got {self.pos_init!r}, {self.input_init!r}"
            )
        if self.keypoints < 0:
            raise ValueError(f"keypoints must be >= 0, got {self.keypoints}")
        if self.n_frames < 1 or self.max_text_len < 8:
            raise ValueError(f"need n_frames >= 1 and max_text_len >= 8, got {self.n_frames}, {self.max_text_len}")

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1]

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_image_tokens(self) -> int:
        return self.n_frames * (self.tokens_per_frame + self.keypoints)

    def replace(self, **kw: Any) -> PaliConfig:
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PaliConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown PaliConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(d))

    # ---- presets (the paper's size ablation, scaled to this machine) ----------------------------------------
    @classmethod
    def nano(cls, **kw: Any) -> PaliConfig:
        """~1.2 M params: vision 128x2, text 128x3, same 36 tokens per frame. The CPU recipe's default: it trains
        at ~6x the samples/s of pali-tiny on one core, and grounding needs samples (reference/bc-feasibility.md)."""
        base = dict(
            vision_width=128,
            vision_layers=2,
            vision_heads=4,
            text_width=128,
            text_layers=3,
            text_heads=2,
            keypoints=32,
            keypoint_film=True,
        )
        return cls(name="pali-nano", **{**base, **kw})

    @classmethod
    def tiny(cls, **kw: Any) -> PaliConfig:
        """~5 M params: vision 128x4, text 256x4, 36 image tokens per 72x96 frame."""
        return cls(name="pali-tiny", **kw)

    @classmethod
    def small(cls, **kw: Any) -> PaliConfig:
        """~20 M params: vision 256x6, text 384x8 (6 heads), same tokens per frame."""
        base = dict(vision_width=256, vision_layers=6, vision_heads=4, text_width=384, text_layers=8, text_heads=6)
        return cls(name="pali-small", **{**base, **kw})


def sincos_2d(grid: tuple[int, int], width: int) -> torch.Tensor:
    """float32[gh * gw, 4 * (width // 4)]: 2-D sin-cos patch positions (rows in the first half of the channels,
    columns in the second; MAE-style, base 100 over the small grid). Why: the stem and patchify are translation
    equivariant, so "where" can only come from the positions; learned-from-zero positions cost a long plateau at
    chance on pointing before anything else is learned (measured, bench/learn.py notes)."""
    gh, gw = grid
    q = width // 4
    omega = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float32) / q))
    rows, cols = torch.meshgrid(
        torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32), indexing="ij"
    )
    r, k = rows.flatten()[:, None] * omega, cols.flatten()[:, None] * omega
    return torch.cat([r.sin(), r.cos(), k.sin(), k.cos()], 1)


class Block(nn.Module):
    """Pre-LN transformer block; attention through SDPA, optionally reading/writing a static KV cache."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.ln1 = nn.LayerNorm(width, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """x: float[B, T, C]; mask: bool broadcastable to [B, 1, T, S] (True = attend) or None.
        kv: per-layer cache float[B, heads, cap, hd] x2; this call writes columns start..start+T-1 and attends
        to columns 0..start+T-1."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if kv is not None:
            kc, vc = kv
            kc[:, :, start : start + T] = k
            vc[:, :, start : start + T] = v
            k, v = kc[:, :, : start + T], vc[:, :, : start + T]
        p = self.drop.p if self.training else 0.0
        if torch.is_autocast_enabled("cpu") and q.dtype == torch.bfloat16:
            # Trap: under CPU bf16 autocast, SDPA's backward is ~4x slower than in fp32 and took ~40 % of a
            # training step (measured by `rt2 bench train`); attention is a small share of the FLOPs here, so
            # doing it in fp32 costs little and made a step 1.44x faster in a same-run A/B.
            with torch.autocast("cpu", enabled=False):
                a = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=p)
            a = a.to(q.dtype)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, C)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh")))


class VisionEncoder(nn.Module):
    """float32[B, F, 3, H, W] -> float32[B, F * N, text_width] image tokens."""

    def __init__(self, c: PaliConfig) -> None:
        super().__init__()
        stem: list[nn.Module] = []
        ch = 3
        for out in c.stem_channels:
            stem += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.GELU()]
            ch = out
        self.stem = nn.Sequential(*stem)
        s = 2 ** len(c.stem_channels)
        k = (c.patch_size[0] // s, c.patch_size[1] // s)
        self.patch = nn.Conv2d(ch, c.vision_width, kernel_size=k, stride=k)
        self.pos = nn.Parameter(torch.zeros(c.tokens_per_frame, c.vision_width))
        self.blocks = nn.ModuleList(
            Block(c.vision_width, c.vision_heads, c.mlp_ratio, c.dropout) for _ in range(c.vision_layers)
        )
        self.ln = nn.LayerNorm(c.vision_width, eps=1e-6)
        self.proj = nn.Linear(c.vision_width, c.text_width)
        self.frame = nn.Parameter(torch.zeros(c.n_frames, c.text_width))
        self.keypoints = c.keypoints
        if c.keypoints:
            fh, fw = c.image_size[0] // s, c.image_size[1] // s  # the stem's feature map
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, fh), torch.linspace(-1, 1, fw), indexing="ij")
            self.register_buffer("kp_grid", torch.stack([xs.flatten(), ys.flatten()], 1), persistent=False)
            # Fourier code of (x, y): the decoder must turn a coordinate into one of 21 grid classes, which a sin/
            # cos code makes near-linear; the top frequency resolves ~1/16 of the board.
            self.register_buffer("kp_freqs", math.pi / 2 * 2.0 ** torch.arange(6.0), persistent=False)
            self.kp_logits = nn.Conv2d(ch, c.keypoints, 1)
            self.kp_xy = nn.Linear(4 * 6, c.text_width)
            self.kp_feat = nn.Linear(ch, c.text_width)
            self.kp_embed = nn.Parameter(torch.zeros(c.keypoints, c.text_width))
            # zero-init: FiLM starts as the identity, so the unconditioned keypoints are where training begins
            self.kp_film = nn.Linear(c.text_width, 2 * ch) if c.keypoint_film else None

    def _keypoint_tokens(self, feat: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """float[B*F, C, h, w] stem features, float[B*F, text_width] prompt summary -> float[B*F, K, text_width]."""
        if self.kp_film is not None:
            if cond is None:
                raise ValueError("keypoint_film needs the prompt: call vision(pixels, cond) with the prompt summary")
            # layer-normed: raw embeddings are N(0, 0.02), too small for FiLM to get a useful gradient
            cond = F.layer_norm(cond.float(), cond.shape[-1:])
            gamma, beta = self.kp_film(cond).to(feat.dtype).chunk(2, -1)
            feat = feat * (1 + gamma[..., None, None]) + beta[..., None, None]
        heat = self.kp_logits(feat).flatten(2).float().softmax(-1)  # [B*F, K, h*w]; fp32 under autocast
        xy = heat @ self.kp_grid  # [B*F, K, 2] expected coordinates in [-1, 1]
        ang = xy[..., None] * self.kp_freqs  # [B*F, K, 2, 6]
        code = torch.cat([ang.sin(), ang.cos()], -1).flatten(2)  # [B*F, K, 24]
        what = heat @ feat.flatten(2).transpose(1, 2).float()  # [B*F, K, C]: the features under each keypoint
        return self.kp_xy(code) + self.kp_feat(what) + self.kp_embed

    def forward(self, pixels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``cond``: float[B, text_width] prompt summary (needed with ``keypoint_film``)."""
        B, Fr = pixels.shape[:2]
        feat = self.stem(pixels.flatten(0, 1))
        x = self.patch(feat)  # [B*F, Cv, gh, gw]
        x = x.flatten(2).transpose(1, 2) + self.pos  # [B*F, N, Cv]
        for blk in self.blocks:
            x = blk(x)
        x = self.proj(self.ln(x))  # [B*F, N, Ct]
        if self.keypoints:
            c = None if cond is None else cond.repeat_interleave(Fr, 0)  # [B*F, Ct]: same prompt for every frame
            x = torch.cat([x, self._keypoint_tokens(feat, c).to(x.dtype)], 1)  # [B*F, N + K, Ct]
        x = x.view(B, Fr, -1, self.frame.shape[1]) + self.frame[None, :, None]
        return x.flatten(1, 2)


@dataclass
class PaliCache:
    """Static KV cache. ``keys/values[i]``: float[B, heads, capacity, hd]; ``length``: filled columns;
    ``key_mask``: bool[B, 1, 1, capacity] (False on left padding) or None when no row is padded;
    ``next_pos``: int64[B] text position id of the next token per row."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: int
    capacity: int
    key_mask: torch.Tensor | None
    next_pos: torch.Tensor


class PaliBackbone(Backbone):
    """The built-in backbone. Build with ``build_backbone("pali-tiny", tokenizer)`` or ``PaliBackbone(config,
    tokenizer)``; see the module docstring for the architecture and ``rt2.models.base`` for the contract."""

    family = "pali"

    def __init__(self, config: PaliConfig, tokenizer: TextTokenizer) -> None:
        super().__init__()
        if not isinstance(tokenizer, TextTokenizer):
            raise TypeError(
                f"pali needs an rt2.models.TextTokenizer (TextTokenizer.train(corpus)), got {type(tokenizer).__name__}"
            )
        vocab = config.vocab_size or len(tokenizer)
        if vocab < len(tokenizer):
            raise ValueError(f"config vocab_size {vocab} is smaller than the tokenizer ({len(tokenizer)} tokens)")
        config = config.replace(vocab_size=vocab)
        self.config, self.tokenizer, self.name = config, tokenizer, config.name
        self.n_frames, self.image_size = config.n_frames, config.image_size
        self.transform = ImageTransform(TransformConfig(config.image_size, config.image_mean, config.image_std))
        self.vision = VisionEncoder(config)
        self.embed = nn.Embedding(vocab, config.text_width)
        self.pos = nn.Parameter(torch.zeros(config.max_text_len, config.text_width))
        self.blocks = nn.ModuleList(
            Block(config.text_width, config.text_heads, config.mlp_ratio, config.dropout)
            for _ in range(config.text_layers)
        )
        self.ln_f = nn.LayerNorm(config.text_width, eps=1e-6)
        self.film_pos = (
            nn.Parameter(torch.ones(config.max_text_len, config.text_width))
            if config.keypoint_film and config.film_positional
            else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        n_layers = self.config.text_layers + self.config.vision_layers
        for name, p in self.named_parameters():
            if p.dim() >= 2 and "ln" not in name:
                std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("proj.weight", "fc2.weight")) else 0.02
                nn.init.normal_(p, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        # conv stem: fan-in init keeps activations O(1) through the GELUs (0.02 would make them vanish)
        for m in self.vision.stem:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        vis = self.vision
        if self.config.input_init == "fanin":
            # Trap: with N(0, 0.02) the image-dependent part of each image token is ~1/13 of its size at init, so
            # the decoder first learns to ignore the image; unit-gain patchify + projector keep it O(1).
            nn.init.kaiming_normal_(vis.patch.weight, nonlinearity="linear")
            nn.init.normal_(vis.proj.weight, std=vis.proj.in_features**-0.5)
            if vis.keypoints:  # peaked heat maps and O(1) keypoint tokens from the first step, for the same reason
                nn.init.kaiming_normal_(vis.kp_logits.weight, nonlinearity="linear")
                nn.init.normal_(vis.kp_xy.weight, std=vis.kp_xy.in_features**-0.5)
                nn.init.normal_(vis.kp_feat.weight, std=vis.kp_feat.in_features**-0.5)
        if getattr(vis, "kp_film", None) is not None:  # FiLM starts as the identity
            nn.init.zeros_(vis.kp_film.weight)
        with torch.no_grad():
            vis.pos.zero_()
            if self.config.pos_init == "sincos":
                code = sincos_2d(self.config.grid, self.config.vision_width)
                vis.pos[:, : code.shape[1]] = code
            else:
                nn.init.normal_(vis.pos, std=0.02)
        if self.film_pos is not None:
            nn.init.ones_(self.film_pos)  # start as the plain mean

    def set_image_norm(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Per-channel pixel normalization (in [0, 1] units), stored in the config so every later load, the
        evaluator and the server normalize the same way. Meant for a fresh model before training: the tabletop's
        frames are dark and low-contrast (mean ~0.22, std ~0.09), so the fixed 0.5/0.5 feeds the stem inputs of
        std ~0.18 and the image-dependent part of the tokens is tiny."""
        mean, std = tuple(float(x) for x in mean), tuple(float(x) for x in std)
        if len(mean) != 3 or len(std) != 3 or not all(math.isfinite(x) for x in mean + std) or min(std) <= 0:
            raise ValueError(f"image norm needs 3 finite means and 3 positive stds, got {mean}, {std}")
        self.config = self.config.replace(image_mean=mean, image_std=std)
        self.transform = ImageTransform(TransformConfig(self.config.image_size, mean, std))

    # ---- sizes ----------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.embed.num_embeddings

    def resize_token_embeddings(self, n: int) -> None:
        old = self.embed
        if n < old.num_embeddings:
            raise ValueError(f"cannot shrink the vocabulary from {old.num_embeddings} to {n} rows")
        if n == old.num_embeddings:
            return
        new = nn.Embedding(n, old.embedding_dim).to(old.weight.device, old.weight.dtype)
        nn.init.normal_(new.weight, std=0.02)
        with torch.no_grad():
            new.weight[: old.num_embeddings] = old.weight
        self.embed = new
        self.config = self.config.replace(vocab_size=n)

    # ---- inputs ---------------------------------------------------------------------------------------------
    def prepare(
        self,
        images: Sequence[Sequence[np.ndarray]],
        prompts: Sequence[str],
        targets: Sequence[Sequence[int]] | None = None,
        *,
        augment: bool = False,
        generator: np.random.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        self.check_batch(images, prompts)
        pixel_values = self.transform(images, augment=augment, rng=generator)
        bos = self.tokenizer.bos_token_id
        prompt_ids = [[bos, *self.tokenizer.encode(p)] for p in prompts]
        if targets is not None and len(targets) != len(prompts):
            raise ValueError(f"got {len(targets)} targets for {len(prompts)} prompts")
        answers = [[int(t) for t in tg] for tg in targets] if targets is not None else [[] for _ in prompts]
        for b, (p, a) in enumerate(zip(prompt_ids, answers, strict=True)):
            if len(p) + len(a) > self.config.max_text_len:
                raise ValueError(
                    f"example {b}: prompt ({len(p)} tokens) + answer ({len(a)}) exceeds max_text_len "
                    f"{self.config.max_text_len}; shorten the text or build the backbone with a larger max_text_len"
                )
            bad = [t for t in a if not 0 <= t < self.vocab_size]
            if bad:
                raise ValueError(
                    f"example {b}: target ids {bad[:5]} are outside the vocabulary 0..{self.vocab_size - 1}"
                )
        B, L = len(prompts), max(len(p) + len(a) for p, a in zip(prompt_ids, answers, strict=True))
        ids = torch.full((B, L), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        types = torch.zeros((B, L), dtype=torch.long)
        for b, (p, a) in enumerate(zip(prompt_ids, answers, strict=True)):
            n = len(p) + len(a)
            s = 0 if targets is not None else L - n  # right-pad for training, left-pad for generation
            ids[b, s : s + n] = torch.tensor(p + a)
            mask[b, s : s + n] = 1
            types[b, s + len(p) : s + n] = 1
        out = {"pixel_values": pixel_values, "input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        if targets is not None:
            # labels[t] = the token at t + 1 when that token is part of an answer: logits[t] predict it.
            labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
            nxt = types[:, 1:].bool() & mask[:, 1:].bool()
            labels[:, :-1] = torch.where(nxt, ids[:, 1:], torch.full_like(ids[:, 1:], IGNORE_INDEX))
            out["labels"] = labels
        return out

    # ---- network pieces -------------------------------------------------------------------------------------
    def _prompt_summary(self, input_ids: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor | None:
        """float[B, text_width]: mean token embedding over the prompt (bool[B, T] ``prompt``: real, not answer).
        Answer tokens are excluded, or training would condition the image on the label it must predict."""
        if not self.config.keypoint_film:
            return None
        w = prompt.to(self.embed.weight.dtype)[..., None]
        e = self.embed(input_ids)
        if self.film_pos is not None:  # position within the prompt (left padding skipped), so batching is exact
            e = e * self.film_pos[(prompt.long().cumsum(1) - 1).clamp(min=0)]
        return (e * w).sum(1) / w.sum(1).clamp(min=1.0)

    def _embed_text(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if int(positions.max()) >= self.config.max_text_len:
            raise ValueError(f"text longer than max_text_len {self.config.max_text_len}")
        return self.embed(input_ids) + self.pos[positions]

    def _head(self, h: torch.Tensor, logits_ids: torch.Tensor | None) -> torch.Tensor:
        w = self.embed.weight if logits_ids is None else self.embed.weight.index_select(0, logits_ids)
        return F.linear(h, w).float()

    @staticmethod
    def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
        return (attention_mask.long().cumsum(1) - 1).clamp_(min=0)

    @property
    def hidden_size(self) -> int:
        return self.config.text_width

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.forward_hidden(**inputs)[0]

    def forward_hidden(self, layer: int = -1, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixel_values, input_ids = inputs["pixel_values"], inputs["input_ids"]
        n_blocks = len(self.blocks)
        if not -1 <= layer <= n_blocks:
            raise ValueError(f"layer must be -1 (final, normed) or 0..{n_blocks} (after that many blocks), got {layer}")
        am = inputs.get("attention_mask")
        am = torch.ones_like(input_ids) if am is None else am
        tt = inputs.get("token_type_ids")
        if tt is None:
            # Trap (PaliGemma's): without the prefix marker we would not know where causality starts. Refuse
            # rather than silently run bidirectional over the answer (labels would leak).
            raise ValueError("pali forward needs token_type_ids (0 = prompt, 1 = answer); build inputs with prepare()")
        img = self.vision(pixel_values, self._prompt_summary(input_ids, am.bool() & (tt == 0)))
        x = torch.cat([img, self._embed_text(input_ids, self._positions(am))], dim=1)
        B, S = x.shape[:2]
        n_img = img.shape[1]
        ones = torch.ones(B, n_img, dtype=torch.bool, device=x.device)
        valid = torch.cat([ones, am.bool()], 1)
        prefix = torch.cat([ones, am.bool() & (tt == 0)], 1)
        causal = torch.ones(S, S, dtype=torch.bool, device=x.device).tril()
        mask = (valid[:, None, :] & (prefix[:, None, :] | causal[None]))[:, None]  # [B, 1, S, S]
        mid = None
        for i, blk in enumerate(self.blocks):
            if i == layer:
                mid = x[:, n_img:]  # the input of block ``layer``
            x = blk(x, mask)
        h = self.ln_f(x[:, n_img:])
        if layer == -1:
            return self._head(h, None), h
        if mid is None:  # layer == n_blocks: after the last block, before ln_f
            mid = x[:, n_img:]
        return self._head(h, None), F.layer_norm(mid, mid.shape[-1:])

    # ---- decoding -------------------------------------------------------------------------------------------
    def prefill(
        self, inputs: Mapping[str, torch.Tensor], *, max_new_tokens: int, logits_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, PaliCache]:
        input_ids = inputs["input_ids"]
        am = inputs.get("attention_mask")
        am = torch.ones_like(input_ids) if am is None else am
        if not bool(am[:, -1].all()):
            raise ValueError(
                "prefill needs LEFT-padded prompts (last column real for every row): prepare(targets=None)"
            )
        tt = inputs.get("token_type_ids")
        prompt = am.bool() if tt is None else am.bool() & (tt == 0)
        img = self.vision(inputs["pixel_values"], self._prompt_summary(input_ids, prompt))
        positions = self._positions(am)
        x = torch.cat([img, self._embed_text(input_ids, positions)], dim=1)
        B, S, _ = x.shape
        cap = S + int(max_new_tokens)
        key_mask = None
        if not bool(am.all()):
            key_mask = torch.ones(B, 1, 1, cap, dtype=torch.bool, device=x.device)
            key_mask[:, 0, 0, img.shape[1] : S] = am.bool()
        c = self.config
        hd = c.text_width // c.text_heads
        keys = [x.new_empty(B, c.text_heads, cap, hd) for _ in self.blocks]
        values = [x.new_empty(B, c.text_heads, cap, hd) for _ in self.blocks]
        mask = None if key_mask is None else key_mask[..., :S]
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, (keys[i], values[i]), 0)
        logits = self._head(self.ln_f(x[:, -1]), logits_ids)
        cache = PaliCache(keys, values, S, cap, key_mask, positions[:, -1] + 1)
        return logits, cache

    def step(
        self, token_ids: torch.Tensor, cache: PaliCache, *, logits_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, PaliCache]:
        if cache.length >= cache.capacity:
            raise RuntimeError(f"KV cache full ({cache.capacity} columns); pass a larger max_new_tokens to prefill")
        x = self._embed_text(token_ids.view(-1, 1), cache.next_pos.view(-1, 1))
        start = cache.length
        mask = None if cache.key_mask is None else cache.key_mask[..., : start + 1]
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, (cache.keys[i], cache.values[i]), start)
        cache.length += 1
        cache.next_pos = cache.next_pos + 1
        return self._head(self.ln_f(x[:, 0]), logits_ids), cache

    # ---- persistence ----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "config.json", self.config.to_dict())
        self.tokenizer.save(d / "tokenizer.json")
        save_weights(self, d / WEIGHTS_FILE, {"format": "pt", "family": self.family})
        self.write_meta(d, num_parameters=self.num_parameters)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> PaliBackbone:
        d = Path(directory)
        meta = read_meta(d)
        if meta["family"] != cls.family:
            raise CheckpointError(f"{d} holds a {meta['family']!r} backbone, not {cls.family!r}")
        try:
            config = PaliConfig.from_dict(read_json(d / "config.json", "backbone config"))
        except (TypeError, ValueError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"{d / 'config.json'} is not a valid PaliConfig: {e}") from e
        if kwargs:
            config = config.replace(**kwargs)
        tokenizer = TextTokenizer.load(d / "tokenizer.json")
        if len(tokenizer) > config.vocab_size:
            raise CheckpointError(
                f"{d}: tokenizer.json has {len(tokenizer)} tokens but the config's vocab_size is {config.vocab_size}"
            )
        model = cls(config, tokenizer)
        load_weights(model, d / WEIGHTS_FILE)
        return model.eval()


def _factory(preset: str):
    def build(tokenizer: TextTokenizer | None, config: PaliConfig | None = None, **overrides: Any) -> PaliBackbone:
        if tokenizer is None:
            raise ValueError(
                f"{preset} needs a text tokenizer: TextTokenizer.train(corpus) (the web corpus + instructions)"
            )
        presets = {"pali-nano": PaliConfig.nano, "pali-tiny": PaliConfig.tiny, "pali-small": PaliConfig.small}
        cfg = config if config is not None else presets[preset]()
        return PaliBackbone(cfg.replace(**overrides) if overrides else cfg, tokenizer)

    return build


register_backbone("pali-nano", _factory("pali-nano"), cls=PaliBackbone, description="built-in ~1.2M prefix-LM VLM")
register_backbone("pali-tiny", _factory("pali-tiny"), cls=PaliBackbone, description="built-in ~5M prefix-LM VLM")
register_backbone("pali-small", _factory("pali-small"), cls=PaliBackbone, description="built-in ~20M prefix-LM VLM")
