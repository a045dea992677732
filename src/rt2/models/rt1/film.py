"""The instruction-conditioned image encoder of the RT-1 baseline: a small ResNet whose blocks are FiLM-modulated.

RT-1 (Brohan et al. 2022) puts a FiLM layer (Perez et al. 2018) after every MBConv block of an ImageNet
EfficientNet-B3, conditioned on the instruction's sentence embedding, so the image features are already about the
instruction before any token reduction. We keep that structure at CPU scale: a strided conv stem, then
``len(channels)`` residual blocks (the first ``n_downsample`` strided), each followed by
``x * (1 + gamma(e)) + beta(e)`` per channel.

Why not EfficientNet: no pretrained weights are reachable here and the model trains from scratch on ~100 k
frames at 72x96, where a few 3x3 residual blocks are the cost-effective choice (reference/bc-feasibility.md:
small FiLM CNNs learn this task on one core). Why CoordConv (two extra input channels holding the pixel's x and
y in [-1, 1]): a push needs *where* things are, and the TokenLearner pools over space; with explicit coordinates
a token's features say where its attention looked.
"""

from __future__ import annotations

import torch
from torch import nn


class FiLM(nn.Module):
    """Feature-wise affine modulation: float[B, C, H, W] x float[B, E] -> float[B, C, H, W].

    ``gamma`` is predicted as an offset from 1 so a zero offset is the identity. Unlike RT-1 (which zero-inits
    the projection so a pretrained EfficientNet starts unchanged) we keep PyTorch's default init: training from
    scratch, a zero init would hide the instruction from the network until the first gradients flow back to it.
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)  # [B, C, 1, 1] each
        return x * (1.0 + gamma) + beta


class FiLMResBlock(nn.Module):
    """conv3x3(stride) -> GN -> ReLU -> conv3x3 -> GN, + a (projected) skip, ReLU, then FiLM.

    GroupNorm rather than BatchNorm: inference runs at batch 1 on a robot and micro-batches mix robots in the
    server, so no statistic may depend on the other rows (and the trainer's resume must not depend on running
    stats)."""

    def __init__(self, c_in: int, c_out: int, stride: int, cond_dim: int) -> None:
        super().__init__()
        groups = _groups(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.GroupNorm(groups, c_out))
        )
        self.film = FiLM(c_out, cond_dim)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return self.film(self.act(h + self.skip(x)), cond)


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 channels per group where possible."""
    for g in (channels // 8, 4, 2, 1):
        if g >= 1 and channels % g == 0:
            return g
    return 1


def coord_channels(batch: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """float[B, 2, H, W]: the row (y) and column (x) coordinate of every pixel, in [-1, 1]."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype).view(1, 1, h, 1).expand(batch, 1, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype).view(1, 1, 1, w).expand(batch, 1, h, w)
    return torch.cat([ys, xs], dim=1)


class FiLMImageEncoder(nn.Module):
    """float[N, 3, H, W] normalized frames + float[N, E] instruction embeddings -> float[N, C, h, w] features.

    ``N`` is batch x frames (each frame is encoded on its own, with its observation's instruction)."""

    def __init__(self, stem_channels: int, channels: tuple[int, ...], n_downsample: int, cond_dim: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3 + 2, stem_channels, 3, stride=2, padding=1, bias=False),  # + CoordConv channels
            nn.GroupNorm(_groups(stem_channels), stem_channels),
            nn.ReLU(),
        )
        blocks, c = [], stem_channels
        for i, c_out in enumerate(channels):
            blocks.append(FiLMResBlock(c, c_out, 2 if i < n_downsample else 1, cond_dim))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = c

    def forward(self, pixels: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        n, _, h, w = pixels.shape
        x = self.stem(torch.cat([pixels, coord_channels(n, h, w, pixels.device, pixels.dtype)], dim=1))
        for block in self.blocks:
            x = block(x, cond)
        return x
