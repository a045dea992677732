"""Per-family input layouts for the Hugging Face VLM backbones (``rt2.models.hf``).

Each supported ``model_type`` gets a :class:`Family` that knows four things the generic adapter must not guess:

* the **image placeholder block** a prompt carries for one image (count and special tokens),
* the **pixel layout** the model's forward wants (``pixel_values`` shape, extra tensors such as
  ``image_grid_thw``), built from the output of rt2's shared ``rt2.data.transforms.ImageTransform`` (one code
  path for training and serving) with the checkpoint's mean/std -- no HF processor, because several processors
  need torchvision, add hundreds of tokens to the tokenizer, or pad on the wrong side. (Resize filter: OpenCV
  area/linear, not PIL bicubic; fine-tuning absorbs the difference.)
* the **position ids** (from ``attention_mask``, per the backbone contract; 1-based for PaliGemma, 3-D M-RoPE
  for Qwen2-VL),
* which extra forward kwargs are needed (``token_type_ids`` for PaliGemma, ``mm_token_type_ids`` for Qwen2-VL).

Traps handled here (measured in reference/cpu-measurements.md section 2):

* PaliGemma: without ``token_type_ids`` transformers 5.x + SDPA attends bidirectionally over the answer
  (labels leak). We always pass them (0 = prefix, 1 = answer) at training time and at prefill.
* PaliGemma position ids are 1-based.
* Idefics3 drops an image whose pixel values are all exactly 0.0 as "padding"; we nudge such an image by 1e-6.
* Qwen2-VL: the processor needs torchvision, so we patchify by hand (same layout as
  ``Qwen2VLImageProcessorPil``); ``mm_token_type_ids`` (1 on ``<|image_pad|>``) is required whenever
  ``image_grid_thw`` is passed; we compute the 3-D positions ourselves so the model's ``rope_deltas`` state is
  never consulted (stale deltas from an earlier call break a hand-written decode loop).
* LLaVA: ``vision_feature_layer=-2`` / ``vision_feature_select_strategy="default"`` throw away the last ViT layer
  and the first patch token (meant for CLIP's CLS; with SigLIP it is a real patch). We honour what a pretrained
  checkpoint says (its projector was trained that way) but count placeholder tokens correctly and log a warning;
  freshly built configs (``rt2.models.hf_tiny``) use -1 / "full".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

log = logging.getLogger(__name__)

SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _sub(config: Any, name: str) -> Any:
    sub = getattr(config, name, None)
    if sub is None:
        raise ValueError(f"{type(config).__name__} has no {name}; not a vision-language config")
    return sub


def _int(v: Any) -> int:
    return int(v[0] if isinstance(v, (list, tuple)) else v)


def _token_id(tokenizer: Any, token: str) -> int:
    tid = tokenizer.get_vocab().get(token)
    if tid is None:
        raise ValueError(f"the tokenizer has no {token!r} token, which this model family needs in its prompts")
    return int(tid)


class Family:
    """Layout rules of one HF model family. Instances are bound to a loaded config and tokenizer."""

    name: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    #: True for PaliGemma: image + prompt attend bidirectionally (prefix-LM). Decoder-only families are causal.
    prefix_lm: ClassVar[bool] = False
    #: position ids start at this value (PaliGemma: 1)
    position_offset: ClassVar[int] = 0
    default_mean: ClassVar[tuple[float, float, float]] = SIGLIP_MEAN
    default_std: ClassVar[tuple[float, float, float]] = SIGLIP_STD

    def __init__(self, config: Any, tokenizer: Any, preprocessor: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.preprocessor = dict(preprocessor or {})
        self.check()

    # ---- overridable pieces ----------------------------------------------------------------------------
    image_id: int
    n_image_tokens: int

    def check(self) -> None:
        """Validate config/tokenizer compatibility and set ``image_id`` / ``n_image_tokens``."""
        self.image_id = int(self.config.image_token_id)
        vc = _sub(self.config, "vision_config")
        self.n_image_tokens = (_int(vc.image_size) // _int(vc.patch_size)) ** 2

    def image_hw(self) -> tuple[int, int]:
        size = _int(_sub(self.config, "vision_config").image_size)
        return size, size

    def image_block(self) -> list[int]:
        """Token ids standing for one image in the prompt (``check`` sets ``image_id``/``n_image_tokens``)."""
        return [self.image_id] * self.n_image_tokens

    def pixel_inputs(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """float32[B, F, 3, H, W] -> the forward kwargs carrying pixels."""
        b, f = pixels.shape[:2]
        return {"pixel_values": pixels.reshape(b * f, *pixels.shape[2:])}

    def position_ids(self, model: Any, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """int64[B, L] positions from the attention mask (padding-independent)."""
        mask = inputs["attention_mask"]
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return pos + self.position_offset

    def step_position_ids(self, next_pos: torch.Tensor) -> torch.Tensor:
        """next_pos int64[B] -> position ids for one appended token (int64[B, 1] or the family's layout)."""
        return next_pos[:, None]

    def next_positions(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Positions after the last (rightmost) column, int64[B], from the prefill's position ids."""
        return position_ids[:, -1] + 1

    def model_kwargs(self, model: Any, inputs: Mapping[str, torch.Tensor], *, prefill: bool) -> dict[str, Any]:
        """Forward kwargs for the HF model from an rt2 batch dict."""
        kw: dict[str, Any] = {
            "input_ids": inputs["input_ids"],
            "attention_mask": inputs["attention_mask"],
            "position_ids": self.position_ids(model, inputs),
        }
        for k in self.pixel_keys:
            if k in inputs:
                kw[k] = inputs[k]
        return kw

    pixel_keys: ClassVar[tuple[str, ...]] = ("pixel_values",)

    # ---- shared helpers -----------------------------------------------------------------------------------
    def normalization(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(mean, std) of [0, 1] RGB from preprocessor_config.json, else the family's default."""
        p = self.preprocessor
        mean = tuple(float(x) for x in p.get("image_mean", self.default_mean))
        std = tuple(float(x) for x in p.get("image_std", self.default_std))
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"preprocessor image_mean/image_std must be 3 values (std > 0), got {mean} / {std}")
        if p.get("do_normalize", True) is False:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return mean, std  # type: ignore[return-value]

    def prefix(self, prompt_ids: Sequence[int], n_frames: int) -> list[int]:
        """Image blocks + BOS + prompt (the default decoder-only layout)."""
        bos = self.tokenizer.bos_token_id
        head = [] if bos is None else [int(bos)]
        return head + self.image_block() * n_frames + list(prompt_ids)


class PaliGemmaFamily(Family):
    """PaliGemma / PaliGemma 2 (the RT-2-PaLI analogue): ``<image>``*N + BOS + prompt + "\\n" | answer."""

    name = "paligemma"
    model_types = ("paligemma",)
    prefix_lm = True
    position_offset = 1  # trap: PaliGemma positions are 1-based

    def check(self) -> None:
        self.image_id = int(self.config.image_token_id)
        vc = _sub(self.config, "vision_config")
        self.n_image_tokens = (_int(vc.image_size) // _int(vc.patch_size)) ** 2
        newline = self.tokenizer.encode("\n", add_special_tokens=False)
        self.sep = [int(i) for i in newline][:1]

    def image_block(self) -> list[int]:
        return [self.image_id] * self.n_image_tokens

    def prefix(self, prompt_ids: Sequence[int], n_frames: int) -> list[int]:
        # PaliGemma's processor layout: images, then BOS, then the prompt and a "\n" separator.
        bos = self.tokenizer.bos_token_id
        head = [] if bos is None else [int(bos)]
        return self.image_block() * n_frames + head + list(prompt_ids) + self.sep

    def model_kwargs(self, model: Any, inputs: Mapping[str, torch.Tensor], *, prefill: bool) -> dict[str, Any]:
        kw = super().model_kwargs(model, inputs, prefill=prefill)
        # Trap: without token_type_ids the SDPA path attends bidirectionally over the answer (labels leak).
        kw["token_type_ids"] = inputs["token_type_ids"]
        return kw


class Idefics3Family(Family):
    """Idefics3 / SmolVLM (decoder-only): BOS + [<fake><global-img><image>*N<fake>] * F + prompt | answer.

    Images are not split into tiles (``do_image_splitting=False``): one global view per frame.
    """

    name = "idefics3"
    model_types = ("idefics3", "smolvlm")

    def check(self) -> None:
        vc = _sub(self.config, "vision_config")
        scale = int(getattr(self.config, "scale_factor", 1))
        side = _int(vc.image_size) // _int(vc.patch_size)
        if side % scale:
            raise ValueError(f"vision grid {side} is not divisible by scale_factor {scale}")
        self.n_image_tokens = (side // scale) ** 2
        self.image_id = int(self.config.image_token_id)
        self.fake = _token_id(self.tokenizer, "<fake_token_around_image>")
        self.global_img = _token_id(self.tokenizer, "<global-img>")

    def image_block(self) -> list[int]:
        return [self.fake, self.global_img] + [self.image_id] * self.n_image_tokens + [self.fake]

    def pixel_inputs(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        # Trap: an image whose values are all exactly 0.0 is dropped as padding inside the model (the count of
        # <image> tokens in the text then mismatches the features). Such frames can occur (e.g. mean 0 / std 1
        # and a black frame); a 1e-6 offset keeps them without changing the result measurably.
        zero = (pixels == 0).flatten(2).all(-1)
        if bool(zero.any()):
            pixels = pixels + zero[..., None, None, None].to(pixels.dtype) * 1e-6
        return {"pixel_values": pixels}  # 5-D: [B, F, 3, H, W]


class LlavaFamily(Family):
    """LLaVA (decoder-only): BOS + <image>*N * F + prompt | answer."""

    name = "llava"
    model_types = ("llava",)
    default_mean = CLIP_MEAN
    default_std = CLIP_STD

    def check(self) -> None:
        vc = _sub(self.config, "vision_config")
        n = (_int(vc.image_size) // _int(vc.patch_size)) ** 2
        has_cls = getattr(vc, "model_type", "") == "clip_vision_model"
        strategy = getattr(self.config, "vision_feature_select_strategy", "default")
        layer = getattr(self.config, "vision_feature_layer", -2)
        if has_cls:
            n += 1
        if strategy == "default":
            n -= 1  # drops the first token: CLS for CLIP, but a real patch for SigLIP
            if not has_cls:
                log.warning(
                    "LLaVA config uses vision_feature_select_strategy='default' with a %s tower (no CLS token): "
                    "the first image patch is dropped. Use 'full' when training a projector from scratch.",
                    getattr(vc, "model_type", "?"),
                )
        if layer not in (-1, [-1]):
            log.info("LLaVA config reads vision layer %s (the last ViT layer is computed and unused)", layer)
        self.n_image_tokens = n
        self.image_id = int(self.config.image_token_id)
        seq = getattr(self.config, "image_seq_length", None)
        if seq is not None and int(seq) != n:
            log.info("LLaVA image_seq_length=%s but the vision config yields %d tokens; using %d", seq, n, n)

    def image_block(self) -> list[int]:
        return [self.image_id] * self.n_image_tokens


class Qwen2VLFamily(Family):
    """Qwen2-VL (decoder-only, M-RoPE): [<|vision_start|><|image_pad|>*N<|vision_end|>] * F + prompt | answer.

    Image size is free (multiple of patch*merge); rt2 uses a fixed square size so every frame has N tokens.
    """

    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    default_mean = CLIP_MEAN
    default_std = CLIP_STD
    pixel_keys = ("pixel_values", "image_grid_thw")
    default_side = 224

    def check(self) -> None:
        vc = _sub(self.config, "vision_config")
        self.patch = _int(vc.patch_size)
        self.merge = int(vc.spatial_merge_size)
        self.temporal = _int(vc.temporal_patch_size)
        self.image_id = int(self.config.image_token_id)
        self.start_id = int(self.config.vision_start_token_id)
        self.end_id = int(self.config.vision_end_token_id)
        self.side = self.default_side

    def preferred_side(self) -> int:
        """224, or less if the checkpoint's preprocessor caps the pixel count lower (``size.longest_edge`` /
        ``max_pixels`` are pixel counts for Qwen2-VL), rounded down to a multiple of patch*merge."""
        p = self.preprocessor
        cap = (p.get("size") or {}).get("longest_edge") or p.get("max_pixels")
        side = self.default_side if cap is None else min(self.default_side, int(float(cap) ** 0.5))
        unit = self.patch * self.merge
        return max(unit, side // unit * unit)

    def set_side(self, side: int) -> None:
        unit = self.patch * self.merge
        if side <= 0 or side % unit:
            raise ValueError(f"Qwen2-VL image_size must be a positive multiple of patch*merge={unit}, got {side}")
        self.side = side

    def image_hw(self) -> tuple[int, int]:
        return self.side, self.side

    @property
    def n_image_tokens(self) -> int:
        return (self.side // self.patch) ** 2 // self.merge**2

    def image_block(self) -> list[int]:
        return [self.start_id] + [self.image_id] * self.n_image_tokens + [self.end_id]

    def prefix(self, prompt_ids: Sequence[int], n_frames: int) -> list[int]:
        return self.image_block() * n_frames + list(prompt_ids)  # Qwen has no BOS

    def pixel_inputs(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        # Same flattening as Qwen2VLImageProcessorPil.patchify: [n_patches, C * temporal * p * p], patches ordered
        # (merge-row, merge-col, row-in-merge, col-in-merge); each still image is repeated `temporal` times.
        b, f, c, h, w = pixels.shape
        p, m, t = self.patch, self.merge, self.temporal
        gh, gw = h // p, w // p
        x = pixels.reshape(b * f, c, gh // m, m, p, gw // m, m, p)
        x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # [N, gh/m, gw/m, m, m, C, p, p]
        x = x[:, :, :, :, :, :, None].expand(*x.shape[:6], t, p, p)
        flat = x.reshape(b * f * gh * gw, c * t * p * p)
        grid = torch.tensor([[1, gh, gw]], dtype=torch.long).repeat(b * f, 1)
        return {"pixel_values": flat, "image_grid_thw": grid}

    def position_ids(self, model: Any, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # 3-D M-RoPE positions [3, B, L]; get_rope_index skips padding via attention_mask. Computed here (not by
        # the model) so the model's cached `rope_deltas` never leak between calls.
        inner = model.get_base_model().model if hasattr(model, "get_base_model") else model.model
        pos, _ = inner.get_rope_index(
            inputs["input_ids"],
            mm_token_type_ids=self.mm_token_type_ids(inputs["input_ids"]),
            image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"],
        )
        return pos

    def mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return (input_ids == self.image_id).long()

    def next_positions(self, position_ids: torch.Tensor) -> torch.Tensor:
        return position_ids.amax(dim=(0, 2)) + 1

    def step_position_ids(self, next_pos: torch.Tensor) -> torch.Tensor:
        return next_pos[None, :, None].expand(3, -1, 1)

    def model_kwargs(self, model: Any, inputs: Mapping[str, torch.Tensor], *, prefill: bool) -> dict[str, Any]:
        kw = super().model_kwargs(model, inputs, prefill=prefill)
        kw["mm_token_type_ids"] = self.mm_token_type_ids(inputs["input_ids"])  # required with image_grid_thw
        return kw


FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (PaliGemmaFamily, Idefics3Family, Qwen2VLFamily, LlavaFamily)
}


def family_for_model_type(model_type: str) -> type[Family]:
    """Map a config.json ``model_type`` to its :class:`Family` (ValueError listing the supported ones)."""
    for cls in FAMILIES.values():
        if model_type in cls.model_types:
            return cls
    supported = sorted(t for cls in FAMILIES.values() for t in cls.model_types)
    raise ValueError(f"unsupported Hugging Face model_type {model_type!r}; rt2 supports {supported}")
