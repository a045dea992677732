"""The RT-1 baseline's instruction encoder: token ids -> one embedding per instruction, learned from robot data.

RT-1 conditions on a frozen Universal Sentence Encoder embedding of the instruction. We have no pretrained text
model and no hub access, and a pretrained one would also carry web knowledge into a baseline that must have none:
so the embedding is *learned* from the robot instructions alone, over the project's own BPE tokenizer
(``rt2.models.TextTokenizer``, trained on the robot dataset's instructions and the simulator's instruction
templates; never on the web corpus). Consequence, on purpose: a word the robot data never used (a digit, a
Spanish block name) reaches the policy only as an untrained embedding row, which is what "no web knowledge"
means for RT-1's row in RT-2's tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from rt2.data.prompts import ACTION_PROMPT, normalize_instruction

_PREFIX, _SUFFIX = ACTION_PROMPT.split("{instruction}")
_ACTION_PROMPT_RE = re.compile(re.escape(_PREFIX) + r"(.*)" + re.escape(_SUFFIX), re.DOTALL)


def instruction_from_prompt(prompt: str) -> str:
    """The instruction inside an action prompt (``rt2.data.prompts.action_prompt``); training Examples carry only
    the prompt, and RT-1 reads the bare instruction. Raises ValueError for any other prompt."""
    m = _ACTION_PROMPT_RE.fullmatch(prompt)
    if m is None:
        raise ValueError(f"not an action prompt ({ACTION_PROMPT!r}): {prompt!r}")
    return normalize_instruction(m.group(1))


def tokenize_instructions(
    tokenizer, instructions: Sequence[str], max_len: int, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """B instructions -> (ids int64[B, L], mask bool[B, L]), right-padded with 0; L = the longest (>= 1).

    Instructions are normalized like every action prompt (``normalize_instruction``). Raises ValueError naming the
    limit when one has more than ``max_len`` tokens (never a silent crop: the tail may be the goal)."""
    rows = []
    for i, text in enumerate(instructions):
        ids = tokenizer.encode(normalize_instruction(text), add_special_tokens=False)
        if len(ids) > max_len:
            raise ValueError(
                f"instruction {i} is {len(ids)} tokens, this RT-1 model reads at most {max_len}; shorten it"
            )
        if ids and max(ids) >= vocab_size:
            raise ValueError(f"token id {max(ids)} is outside the model's {vocab_size}-row embedding")
        rows.append(ids or [tokenizer.unk_token_id])
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.as_tensor(r)
        mask[b, : len(r)] = True
    return ids, mask


class InstructionEncoder(nn.Module):
    """(ids int64[B, L], mask bool[B, L]) -> float[B, E]: embeddings + positions, ``layers`` transformer layers,
    then the masked mean over tokens (a sentence embedding, the shape of USE's output)."""

    def __init__(self, vocab_size: int, dim: int, max_len: int, layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        heads = 4 if dim % 4 == 0 else 1
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers else None
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        if self.layers is not None:
            x = self.layers(x, src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return self.norm((x * m).sum(1) / m.sum(1).clamp(min=1.0))
