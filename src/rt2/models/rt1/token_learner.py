"""TokenLearner (Ryoo et al. 2021), the token-reducing step of RT-1: a feature map -> K learned tokens per frame.

Each of the K tokens is a weighted average of the feature map under its own spatial attention map; the maps come
from the features themselves (a small conv net ending in K channels, softmax over the h*w positions). RT-1 uses
it to shrink 81 EfficientNet tokens per frame to 8, which is what makes its transformer cheap enough to run at
3 Hz on a robot; here it takes the 9x12 = 108 positions of a 72x96 frame down to ``n_tokens``. We use a softmax
over space (each map sums to 1) instead of the paper's sigmoid so a token is a proper expectation: with the
CoordConv channels of the encoder, a token's coordinates are the expected position its map attends to, the
spatial-softmax keypoint that reference/bc-feasibility.md found to ground this task.
"""

from __future__ import annotations

import torch
from torch import nn


class TokenLearner(nn.Module):
    """float[N, C, h, w] -> (tokens float[N, K, C], attention maps float[N, K, h*w] that sum to 1 over space)."""

    def __init__(self, channels: int, n_tokens: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or max(channels // 2, n_tokens)
        self.n_tokens = n_tokens
        self.attention = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),  # a little spatial context per map
            nn.GELU(),
            nn.Conv2d(hidden, n_tokens, 1),
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = features.shape
        maps = self.attention(features).flatten(2).float().softmax(dim=-1)  # [N, K, h*w], softmax in fp32
        tokens = torch.einsum("nkp,ncp->nkc", maps.to(features.dtype), features.flatten(2))
        return tokens, maps
