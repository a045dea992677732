"""The backbone interface: what every VLM behind ``rt2.models.VLA`` implements.

Two kinds of backbone implement it: the built-in plain-PyTorch ``pali`` prefix-LM (``rt2.models.pali``) and the
Hugging Face adapters (``rt2.models.hf``: PaliGemma, SmolVLM/Idefics3, Qwen2-VL, LLaVA from local folders). The
VLA wrapper, the decoding loop (``rt2.models.decoding``) and the Policy are written against this file only, so
an adapter that follows it plugs in unchanged.

A backbone owns three things: the network, its text tokenizer, and its input preparation (image transform and
prompt layout). Everything else (action vocabularies, prompt wording, losses, decoding strategy) lives above it.

The batch dictionary (``prepare`` output)
-----------------------------------------
Keys that generic code relies on (a backbone may add its own, e.g. ``image_grid_thw``):

``input_ids``       int64[B, L]   text token ids (prompt, then answer when training); pad = ``pad_token_id``
``attention_mask``  int64[B, L]   1 on real tokens, 0 on padding
``token_type_ids``  int64[B, L]   the prefix marker: 0 on the prompt (bidirectional prefix), 1 on the answer
                                  (causal suffix), 0 on padding. PaliGemma's convention; see trap below.
``pixel_values``    float32[B, F, 3, H, W] (or the family's own layout) from ``rt2.data.transforms``
``labels``          int64[B, T]   only when ``targets`` were given; ``labels[b, t]`` is the target of
                                  ``forward(...)[b, t]`` (already shifted), -100 where there is no loss
                                  (image, prompt, padding). T is the backbone's choice (usually L).

Padding side. With ``targets`` (teacher forcing) rows are RIGHT-padded: ``[prompt][answer][pad]``. Without
``targets`` (generation) rows are LEFT-padded: ``[pad][prompt]``, so that the last column is every row's last
prompt token and a decode step appends one column for all rows at once. Position ids must be computed from
``attention_mask`` (cumulative sum), never from the column index, or a padded row decodes differently from the
same row alone.

Trap (measured, reference/cpu-measurements.md section 2): HF PaliGemma with SDPA silently runs fully
bidirectional attention over the answer when ``token_type_ids`` is missing, so training learns to copy the
labels. Adapters must pass the prefix marker through; ``tests/backbone_checks.py`` catches a leak.

Decoding
--------
``prefill(inputs, max_new_tokens=N)`` runs the (left-padded) prompt once and returns the logits at the last
column plus a cache with room for N more tokens; ``step(token_ids, cache)`` appends one token per row and
returns the next logits. Both accept ``logits_ids`` (int64[K]): compute logits only for those vocabulary rows
and return float32[B, K]. Constrained action decoding uses it to score the 256-ish legal ids instead of the
whole vocabulary (the "action-only head"); an adapter that cannot do better may compute full logits and index.
The cache object is opaque to callers: they only pass it back to ``step`` of the same backbone.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

# Version of the on-disk layout written by ``save_pretrained``; bump on an incompatible change.
BACKBONE_FORMAT_VERSION = 1
# Every backbone directory holds this JSON ({"family", "name", "format_version", ...}); the registry reads
# ``family`` to pick the class whose ``from_pretrained`` loads the rest.
BACKBONE_META_FILE = "backbone.json"

IGNORE_INDEX = -100  # label value without loss (PyTorch cross_entropy's default ignore_index)


@runtime_checkable
class TextTokenizerLike(Protocol):
    """The text-tokenizer surface rt2 uses. ``rt2.models.TextTokenizer`` implements it; an HF tokenizer
    (``PreTrainedTokenizerFast``) does too once its ``encode`` is called with ``add_special_tokens=False``.

    ``encode`` never adds BOS/EOS when ``add_special_tokens=False``: the backbone's ``prepare`` places them.
    """

    def encode(self, text: str, add_special_tokens: bool = ...) -> Any: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...

    def get_vocab(self) -> dict[str, int]: ...

    def add_tokens(self, tokens: Sequence[str]) -> int: ...

    def __len__(self) -> int: ...

    @property
    def bos_token_id(self) -> int | None: ...

    @property
    def eos_token_id(self) -> int | None: ...

    @property
    def pad_token_id(self) -> int | None: ...


Cache = Any  # opaque decode state; only the backbone that made it reads it


class Backbone(nn.Module, abc.ABC):
    """Abstract VLM backbone: images + prompt -> next-token logits, prefix-LM attention, KV-cached decoding.

    Attributes every implementation sets in ``__init__``:
      ``family``     (class attribute) registry family, e.g. ``"pali"``, ``"paligemma"``
      ``name``       the preset/registry name it was built from, e.g. ``"pali-tiny"``
      ``config``     a JSON-able config object (``config.to_dict()``) or dict
      ``tokenizer``  a :class:`TextTokenizerLike`
      ``n_frames``   frames per observation F (oldest first); ``prepare`` rejects any other count
      ``image_size`` (H, W) the network sees; ``rt2.data.transforms`` resizes any input to it
    """

    family: ClassVar[str] = "abstract"
    name: str
    config: Any
    tokenizer: TextTokenizerLike
    n_frames: int
    image_size: tuple[int, int]

    # ---- sizes ------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Rows of the output head (>= ``len(tokenizer)``); logits have this last dimension."""

    @abc.abstractmethod
    def resize_token_embeddings(self, n: int) -> None:
        """Grow the (tied) embedding/output head to ``n`` rows, e.g. after ``ActionVocab.added`` added tokens.
        New rows get the family's init; existing rows are kept. Shrinking raises ValueError."""

    @property
    def num_parameters(self) -> int:
        """Unique parameters (tied weights counted once)."""
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- inputs -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare(
        self,
        images: Sequence[Sequence[np.ndarray]],
        prompts: Sequence[str],
        targets: Sequence[Sequence[int]] | None = None,
        *,
        augment: bool = False,
        generator: np.random.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Build the batch dictionary (module docstring) from raw observations.

        ``images[b]``: exactly ``n_frames`` uint8[H, W, 3] arrays of any size (resized by the shared transform).
        ``prompts[b]``: the full prompt text (``rt2.data.prompts`` formats it); BOS is added here.
        ``targets[b]``: answer token ids, EOS included if wanted (the caller decides; actions end with EOS).
        ``augment``: train-time image augmentation (random crop, colour jitter), drawn from ``generator``.
        Raises ValueError naming the bad input (frame count, dtype, channels, empty batch, length mismatch).
        """

    # ---- networks ---------------------------------------------------------------------------------------
    def forward_hidden(self, layer: int = -1, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits float32[B, T, V], hidden states float[B, T, hidden_size]) for the same positions: what an
        auxiliary head (``VLAConfig.grounding_dim``) reads. ``layer`` -1: the final (normed) states; k >= 0: the
        (layer-normed) input of text block k, so the blocks above can still compute from what the head asks for.
        Backbones that cannot expose them raise ValueError."""
        raise ValueError(
            f"backbone family {self.family!r} does not expose hidden states, so the auxiliary grounding loss is "
            "unavailable; train with grounding_dim=0 (rt2 train --grounding-weight 0)"
        )

    @property
    def hidden_size(self) -> int:
        """Width of the states :meth:`forward_hidden` returns."""
        raise ValueError(f"backbone family {self.family!r} does not report its hidden size")

    @abc.abstractmethod
    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits float32[B, T, V] aligned with ``inputs["labels"]`` (prefix-LM attention:
        full over image + prompt, causal over the answer). A ``labels`` key in ``inputs`` is accepted and not
        used for anything but the output length."""

    @abc.abstractmethod
    def prefill(
        self, inputs: Mapping[str, torch.Tensor], *, max_new_tokens: int, logits_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Cache]:
        """Run the left-padded prompt batch once. Returns (logits at the last column float32[B, V] or
        float32[B, K] with ``logits_ids``, cache with room for ``max_new_tokens`` steps)."""

    @abc.abstractmethod
    def step(
        self, token_ids: torch.Tensor, cache: Cache, *, logits_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Cache]:
        """Append ``token_ids`` int64[B] (one per row) and return (next logits float32[B, V | K], cache).
        Raises RuntimeError when the cache is full (more steps than ``max_new_tokens``)."""

    # ---- persistence ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def save_pretrained(self, directory: str | Path) -> None:
        """Write weights (safetensors), config and tokenizer into ``directory`` (which exists and is empty or
        a temp dir the caller renames atomically), plus ``backbone.json`` via :meth:`write_meta`."""

    @classmethod
    @abc.abstractmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> Backbone:
        """Load what ``save_pretrained`` wrote; a shape/dtype mismatch raises ValueError naming the tensor."""

    # ---- helpers shared by implementations ---------------------------------------------------------------
    def write_meta(self, directory: str | Path, **extra: Any) -> None:
        """Write ``backbone.json`` (family, name, format version, n_frames, image size, + ``extra``)."""
        meta = {
            "family": self.family,
            "name": self.name,
            "format_version": BACKBONE_FORMAT_VERSION,
            "n_frames": int(self.n_frames),
            "image_size": [int(s) for s in self.image_size],
            **extra,
        }
        (Path(directory) / BACKBONE_META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    def check_batch(self, images: Sequence[Sequence[np.ndarray]], prompts: Sequence[str]) -> None:
        """Validate raw observations against this backbone (shared by ``prepare`` implementations)."""
        if isinstance(prompts, str):
            raise ValueError("prompts must be a sequence of strings, one per observation, not a single string")
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} observations but {len(prompts)} prompts; pass one prompt each")
        if len(images) == 0:
            raise ValueError("empty batch: pass at least one observation")
        for b, frames in enumerate(images):
            if isinstance(frames, np.ndarray):
                raise ValueError(
                    f"observation {b}: expected a sequence of {self.n_frames} frame(s) (oldest first), got a bare "
                    f"array of shape {frames.shape}; wrap a single frame as [frame]"
                )
            if len(frames) != self.n_frames:
                raise ValueError(
                    f"observation {b}: {self.name} takes {self.n_frames} frame(s) per observation, got "
                    f"{len(frames)} (rt2.policy.Policy repeats the first frame at episode start)"
                )
            if not isinstance(prompts[b], str):
                raise ValueError(f"prompt {b} must be a str, got {type(prompts[b]).__name__}")


def read_meta(directory: str | Path) -> dict[str, Any]:
    """Read and check ``backbone.json`` in ``directory``."""
    path = Path(directory) / BACKBONE_META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} is not a backbone directory written by save_pretrained")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the checkpoint is corrupt") from e
    if not isinstance(meta, dict) or "family" not in meta:
        raise ValueError(f"{path} lacks 'family'; the checkpoint is corrupt or from another program")
    version = meta.get("format_version")
    if version != BACKBONE_FORMAT_VERSION:
        raise ValueError(
            f"{path}: backbone format_version {version!r}, this rt2 reads {BACKBONE_FORMAT_VERSION}; "
            "re-export the checkpoint with a matching rt2 version"
        )
    return meta
