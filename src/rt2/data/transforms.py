"""The image transform: raw uint8 HWC frames -> normalized float tensors. ONE code path for training and inference.

Training batches, the Policy and the server all call :class:`ImageTransform`, so the model never sees pixels
prepared differently at test time (a classic silent failure: e.g. RGB vs BGR, or a resize filter that differs).
Steps, in order:

1. validate: each frame uint8[H, W, 3] RGB (any H, W); the error says what was received and how to fix it;
2. (``augment=True`` only) one random crop box per observation, the SAME box for all its frames (the frames are
   one moment in time; different crops would fake motion), area fraction in ``crop_scale``;
3. resize to the model's (H, W) with OpenCV: INTER_AREA when shrinking (anti-aliased, keeps 4-6 px blocks
   visible), INTER_LINEAR when growing; skipped when the size already matches (the sim renders at the model's
   default size, so the common path costs one copy);
4. to float in [0, 1];
5. (``augment=True`` only) colour jitter: brightness, contrast, saturation factors drawn once per observation;
6. normalize ``(x - mean) / std`` and lay out channels first.

No horizontal flips, ever: a flip mirrors "left"/"right" in the scene but not in the instruction or the action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class TransformConfig:
    """size: (H, W) the network sees. mean/std: per-channel normalization of [0, 1] RGB.
    crop_scale: (min, max) area fraction of the random crop. brightness/contrast/saturation: max relative change.
    """

    size: tuple[int, int] = (72, 96)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    crop_scale: tuple[float, float] = (0.85, 1.0)
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.15

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.size)
        if h < 8 or w < 8:
            raise ValueError(f"image size must be at least 8x8 (H, W), got {self.size}")
        object.__setattr__(self, "size", (h, w))
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean/std must be 3 values with std > 0, got mean={self.mean} std={self.std}")
        lo, hi = self.crop_scale
        if not 0.1 <= lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0.1 <= min <= max <= 1, got {self.crop_scale}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} jitter must be in [0, 1), got {getattr(self, name)}")


MIN_IMAGE_SIDE = 2  # the resize needs 2 pixels per side; the server refuses smaller frames when it parses them


def resize_frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8[h, w, 3] -> uint8[H, W, 3] with the transform's filter (a no-op when the size already matches).

    The server stores a robot's previous frame at the model's size with this, so the model sees the same pixels
    as if it had resized the client's frame itself.
    """
    h, w = (int(v) for v in size)
    if img.shape[:2] == (h, w):
        return img
    shrink = img.shape[0] * img.shape[1] > h * w
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def check_frame(frame: object, where: str = "frame") -> np.ndarray:
    """Return ``frame`` as a C-contiguous uint8[H, W, 3] array or raise ValueError saying what is wrong."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{where}: expected a numpy uint8[H, W, 3] RGB image, got {type(frame).__name__}")
    if frame.ndim != 3:
        hint = " (grayscale? stack it to 3 channels)" if frame.ndim == 2 else ""
        raise ValueError(f"{where}: expected uint8[H, W, 3], got {frame.ndim}-D shape {frame.shape}{hint}")
    if frame.shape[2] != 3:
        hint = " (drop the alpha channel: img[..., :3])" if frame.shape[2] == 4 else ""
        hint = hint or (" (channels-first? use img.transpose(1, 2, 0))" if frame.shape[0] == 3 else "")
        raise ValueError(f"{where}: expected 3 RGB channels last, got shape {frame.shape}{hint}")
    if frame.dtype != np.uint8:
        hint = " (float in [0, 1]? use (img * 255).round().astype(np.uint8))" if frame.dtype.kind == "f" else ""
        raise ValueError(f"{where}: expected dtype uint8, got {frame.dtype}{hint}")
    if frame.shape[0] < MIN_IMAGE_SIDE or frame.shape[1] < MIN_IMAGE_SIDE:
        raise ValueError(
            f"{where}: image is too small ({frame.shape[0]}x{frame.shape[1]}); each side needs >= {MIN_IMAGE_SIDE} px"
        )
    return np.ascontiguousarray(frame)


class ImageTransform:
    """Callable: observations -> float32[B, F, 3, H, W] (see module docstring for the steps)."""

    def __init__(self, config: TransformConfig | None = None) -> None:
        self.config = config or TransformConfig()
        self._mean = np.asarray(self.config.mean, dtype=np.float32)
        self._inv_std = 1.0 / np.asarray(self.config.std, dtype=np.float32)

    @property
    def size(self) -> tuple[int, int]:
        return self.config.size

    def _resize(self, img: np.ndarray) -> np.ndarray:
        return resize_frame(img, self.config.size)

    def _crop_box(self, shape: tuple[int, ...], rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, height, width) keeping the frame's aspect ratio, area fraction in crop_scale."""
        H, W = shape[:2]
        frac = rng.uniform(*self.config.crop_scale)
        ch, cw = max(2, round(H * frac**0.5)), max(2, round(W * frac**0.5))
        top = int(rng.integers(0, H - ch + 1))
        left = int(rng.integers(0, W - cw + 1))
        return top, left, ch, cw

    def observation(
        self, frames: Sequence[np.ndarray], *, augment: bool = False, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """One observation (F frames, oldest first) -> float32[F, 3, H, W]."""
        frames = [check_frame(f, f"frame {i}") for i, f in enumerate(frames)]
        if not frames:
            raise ValueError("an observation needs at least one frame")
        if augment:
            rng = rng if rng is not None else np.random.default_rng()
            shapes = {f.shape for f in frames}
            if len(shapes) > 1:
                raise ValueError(f"frames of one observation must share a size for augmentation, got {shapes}")
            t, left, ch, cw = self._crop_box(frames[0].shape, rng)
            frames = [f[t : t + ch, left : left + cw] for f in frames]
        out = np.stack([self._resize(f) for f in frames]).astype(np.float32) * (1.0 / 255.0)  # [F, H, W, 3]
        if augment:
            c = self.config
            b = rng.uniform(1 - c.brightness, 1 + c.brightness)
            k = rng.uniform(1 - c.contrast, 1 + c.contrast)
            s = rng.uniform(1 - c.saturation, 1 + c.saturation)
            gray = out @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)  # [F, H, W]
            out = gray[..., None] + s * (out - gray[..., None])  # saturation around per-pixel gray
            out = (out - gray.mean()) * k + gray.mean()  # contrast around the mean luminance
            out = np.clip(out * b, 0.0, 1.0)
        out = (out - self._mean) * self._inv_std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def __call__(
        self,
        images: Sequence[Sequence[np.ndarray]],
        *,
        augment: bool = False,
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """B observations of F frames each -> float32[B, F, 3, H, W]. All observations need the same F."""
        if len(images) == 0:
            raise ValueError("no observations given")
        obs = [self.observation(frames, augment=augment, rng=rng) for frames in images]
        counts = {o.shape[0] for o in obs}
        if len(counts) > 1:
            raise ValueError(f"observations have different frame counts {sorted(counts)}; pass the same number each")
        return torch.from_numpy(np.stack(obs))

    def __repr__(self) -> str:
        return f"ImageTransform(size={self.config.size})"
