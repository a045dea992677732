"""``RT1Config``: every size and shape of the RT-1-style baseline, as one frozen, JSON-able dataclass.

Named presets (``RT1_PRESETS``) are what ``rt2 train --model NAME`` builds; ``rt1`` is the default size, chosen so
that one ``rt2 train --preset rt1`` run costs about the CPU time of a ``--preset control`` ``pali-nano`` run
(see ``rt2.train.rt1`` for the measured ratio), and ``rt1-tiny`` is for tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FORMAT = "rt2.rt1"  # rt1.json's "format": how Policy.from_pretrained recognises an RT-1 export folder
VERSION = 1
CONFIG_FILE = "rt1.json"


@dataclass(frozen=True)
class RT1Config:
    """Architecture of :class:`rt2.models.rt1.RT1`.

    Image encoder: a conv stem then one FiLM residual block per entry of ``channels`` (stride 2 for the first
    ``n_downsample`` blocks after the stem), each FiLM-conditioned on the instruction embedding. TokenLearner
    turns the final feature map into ``n_tokens`` tokens per frame; a transformer of ``layers`` x ``d_model``
    reads the ``n_frames * n_tokens`` tokens plus one learned readout token per action dimension and classifies
    each dimension's action integer. The text encoder embeds up to ``max_text_len`` instruction tokens (width
    ``text_dim``) and pools them into one ``text_dim`` vector.
    """

    name: str = "rt1"
    image_size: tuple[int, int] = (72, 96)
    n_frames: int = 1
    stem_channels: int = 32
    channels: tuple[int, ...] = (48, 64, 64)
    n_downsample: int = 2  # stem (stride 2) + 2 strided blocks: 72x96 -> 9x12 feature map
    n_tokens: int = 8  # TokenLearner tokens per frame (RT-1: 8)
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.0
    text_dim: int = 64
    text_layers: int = 1
    max_text_len: int = 48
    vocab_size: int = 1024  # rows of the instruction embedding (>= the tokenizer's length)
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    grounding_dim: int = 0  # > 0: a training-only head regresses observation.environment_state (see RT1.loss)
    grounding_weight: float = 10.0
    norm_stats_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))
        errors = []
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            errors.append(f"image_size must be (H, W) with sides >= 8, got {self.image_size}")
        if not self.channels or not 0 <= self.n_downsample <= len(self.channels):
            errors.append(f"need >= 1 block and 0 <= n_downsample <= {len(self.channels)}, got {self.n_downsample}")
        for name in ("n_frames", "stem_channels", "n_tokens", "d_model", "layers", "heads", "ff_mult", "text_dim"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.heads:
            errors.append(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        if self.text_layers < 0 or self.max_text_len < 2 or self.vocab_size < 8:
            errors.append("text_layers must be >= 0, max_text_len >= 2 and vocab_size >= 8")
        if not 0.0 <= self.dropout < 1.0 or self.grounding_dim < 0 or not self.grounding_weight >= 0:
            errors.append("dropout must be in [0, 1), grounding_dim >= 0 and grounding_weight >= 0")
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            errors.append(f"image_mean/std must be 3 values with std > 0, got {self.image_mean} {self.image_std}")
        if errors:
            raise ValueError("invalid RT1Config: " + "; ".join(errors))

    @property
    def feature_hw(self) -> tuple[int, int]:
        """(h, w) of the final feature map: the stem and each strided block halve (ceil) both sides."""
        h, w = self.image_size
        for _ in range(1 + self.n_downsample):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("image_size", "channels", "image_mean", "image_std"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RT1Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"RT1Config has no fields {unknown}; this export was written by a newer rt2?")
        return cls(**d)


RT1_PRESETS: dict[str, RT1Config] = {
    # The baseline (~0.4 M parameters): sized by measured CPU cost against pali-nano, see rt2.train.rt1.
    "rt1": RT1Config(),
    # Tests and smoke runs: seconds on one core.
    "rt1-tiny": RT1Config(
        name="rt1-tiny", stem_channels=8, channels=(12, 16), n_downsample=2, n_tokens=4, d_model=32, layers=1,
        heads=2, text_dim=16, vocab_size=1024,
    ),
}  # fmt: skip


def is_rt1_model(name: str | None) -> bool:
    """True for the names ``rt2 train --model`` builds as the RT-1 baseline (``rt1``, ``rt1-tiny``)."""
    return isinstance(name, str) and name in RT1_PRESETS


def rt1_preset(name: str, **overrides: Any) -> RT1Config:
    """The named preset with ``overrides`` applied (e.g. ``n_frames=2``, ``vocab_size=len(tokenizer)``)."""
    if name not in RT1_PRESETS:
        raise ValueError(f"unknown RT-1 model {name!r}; choose from {sorted(RT1_PRESETS)}")
    return dataclasses.replace(RT1_PRESETS[name], **overrides)
