"""``RT1Policy``: the RT-1 baseline behind the :class:`rt2.policy.Policy` interface, so ``rt2 eval`` and
``rt2 serve`` take it unchanged.

::

    policy = Policy.from_pretrained("runs/rt1/final")   # recognises rt1.json and returns an RT1Policy
    policy.predict_action([frame], "push the red moon to the blue cube")          # float32[D], in metres
    policy.predict_action_batch([[f1], [f2]], [instr1, instr2])                   # (float32[B, D], B texts)

Inputs are checked exactly like the VLA policy's (the same frame validation, front padding to ``n_frames`` with
the oldest frame, the same ``rt2.data.transforms`` pixels as training); an instruction longer than the model's
text window is a ValueError naming the limit, which the server turns into ``bad_request`` when it parses the
request. The action texts are the ``ActionTokenizer``'s (``"3 -7"``), so replies and eval reports read like
the VLA's. What the baseline cannot do, by construction (no language output): ``answer`` / ``answer_batch``
(VQA), ``plan_and_act`` (chain of thought) and the ``plan`` action format raise one ValueError line each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rt2
from rt2.data.transforms import MIN_IMAGE_SIDE
from rt2.models.decoding import GREEDY, Sampling
from rt2.models.rt1 import RT1
from rt2.policy.policy import Policy

NO_LANGUAGE = "the RT-1 baseline has no language output"


class RT1Policy(Policy):
    """Inference wrapper around an :class:`rt2.models.rt1.RT1` (see module docstring).

    ``seed`` is accepted for signature compatibility (greedy decoding uses no randomness). A subclass of
    :class:`Policy` so every ``isinstance`` check and type hint holds; it overrides every public
    method (the VLA-specific decoder is never built). ``vla`` names the network too, so tools that swap a training
    checkpoint's weights into a loaded policy (``rt2 eval --weights``) work on the baseline's runs as well."""

    has_language = False

    def __init__(
        self,
        model: RT1,
        *,
        num_threads: int | None = None,
        quantize: str | None = None,
        action_format: str | None = None,
        corrupt_plan: float = 0.0,
        sampling: Sampling | None = None,
        seed: int = 0,
    ) -> None:
        if action_format not in (None, "direct"):
            raise ValueError(f"action_format {action_format!r}: {NO_LANGUAGE}, it only predicts actions directly")
        if corrupt_plan:
            raise ValueError(f"corrupt_plan: {NO_LANGUAGE} and writes no plan to corrupt")
        if sampling is not None and sampling != GREEDY:
            raise ValueError("the RT-1 baseline decodes greedily (argmax per action dimension); drop sampling")
        if quantize is not None:
            # Not supported, on purpose: torch's dynamic int8 Linear breaks nn.TransformerEncoderLayer's inference
            # fast path (it reads .weight.device), and this model's time is in its convolutions anyway.
            raise ValueError(f"quantize={quantize!r}: the RT-1 baseline runs in fp32 only; drop --quantize")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(int(num_threads))
        model = model.eval()
        self.model, self.quantize = model, quantize
        self.action_format = "direct"
        self.corrupt_plan = 0.0
        self.source: str | None = None
        self.last_plans: list[str | None] = []

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, trust_remote_code: bool = False, **kwargs: Any) -> RT1Policy:
        """Load an ``RT1.save_pretrained`` export (``rt1.json`` + safetensors). ``trust_remote_code`` is accepted
        and ignored: the export holds no code."""
        policy = cls(RT1.from_pretrained(directory), **kwargs)
        policy.source = str(directory)
        return policy

    # ---- properties ---------------------------------------------------------------------------------------
    @property
    def vla(self) -> RT1:  # type: ignore[override]
        return self.model

    @property
    def action_dim(self) -> int:
        return self.model.action_dim

    @property
    def n_frames(self) -> int:
        return self.model.n_frames

    @property
    def image_size(self) -> tuple[int, int]:
        return self.model.image_size

    @property
    def max_prompt_tokens(self) -> int | None:
        """Most instruction tokens the text encoder reads (no prompt template: RT-1 reads the instruction)."""
        return int(self.model.config.max_text_len)

    def input_limits(self) -> dict[str, Any]:
        return {
            "min_image_side": MIN_IMAGE_SIDE,
            "n_frames": self.n_frames,
            "dtype": "uint8",
            "max_prompt_tokens": self.max_prompt_tokens,
        }

    def check_instruction(self, instruction: str) -> None:
        """Raise ValueError (saying the limit) if ``instruction`` does not fit the text encoder."""
        self.model.tokenize([instruction])

    # ---- actions ------------------------------------------------------------------------------------------
    def _bins(self, images: Sequence[Any], instructions: list[str]) -> np.ndarray:
        if len(images) != len(instructions):
            raise ValueError(f"got {len(images)} observations but {len(instructions)} instructions; pass one each")
        if not instructions:
            raise ValueError("predict_action_batch needs at least one observation")
        obs = [self._frames(im, f"observation {b}") for b, im in enumerate(images)]
        pixels = self.model.transform(obs)
        ids, mask = self.model.tokenize(instructions)
        device = self.model.device
        return self.model.predict_bins(pixels.to(device), ids.to(device), mask.to(device)).cpu().numpy()

    def predict_action_batch(
        self, images: Sequence[Sequence[np.ndarray]], instructions: Sequence[str]
    ) -> tuple[np.ndarray, list[str]]:
        """B observations + B instructions -> (float32[B, D] actions in the space's units, B action texts)."""
        bins = self._bins(images, self._texts(instructions, "instructions"))
        self.last_plans = [None] * len(bins)
        atok = self.model.action_tokenizer
        return atok.decode(bins), atok.to_text(bins)

    def predict_bins(self, images: Sequence[np.ndarray] | np.ndarray, instruction: str) -> np.ndarray:
        """One observation -> int64[D] action integers (what the env's integer interface takes)."""
        if not isinstance(instruction, str):
            raise ValueError(f"instruction must be a str, got {type(instruction).__name__}")
        return self._bins([images], [instruction])[0]

    # ---- what it cannot do --------------------------------------------------------------------------------
    def answer(self, images: Any, question: str, max_new_tokens: int = 32) -> str:
        raise ValueError(f"answer: {NO_LANGUAGE} (it classifies actions); ask a VLA policy")

    def answer_batch(self, images: Any, questions: Sequence[str], max_new_tokens: int = 32) -> list[str]:
        raise ValueError(f"answer: {NO_LANGUAGE} (it classifies actions); ask a VLA policy")

    def plan_and_act(self, images: Any, instruction: str, max_plan_tokens: int | None = None) -> tuple[str, np.ndarray]:
        raise ValueError(f"plan_and_act: {NO_LANGUAGE}, so no chain of thought; use predict_action")

    # ---- handshake ----------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """JSON-able description (the same keys as the VLA policy's; ``action_vocab`` is ``"classes"``)."""
        atok, cfg = self.model.action_tokenizer, self.model.config
        space = atok.space
        return {
            "rt2_version": rt2.__version__,
            "model": cfg.name,
            "backbone_family": "rt1",
            "checkpoint": self.source,
            "num_parameters": int(sum(p.numel() for p in self.model.parameters())) if self.quantize is None else None,
            "action_space": {
                **space.to_dict(),
                "dim": space.dim,
                "names": list(space.names),
                "low": space.low.tolist(),
                "high": space.high.tolist(),
                "value_ranges": [list(r) for r in atok.value_ranges],
                "text_format": " ".join(n.upper() for n in space.names),
            },
            "action_vocab": "classes",
            "image_size": list(cfg.image_size),
            "n_frames": int(cfg.n_frames),
            "norm_stats_key": cfg.norm_stats_key,
            "quantize": self.quantize,
            "prompt_format": "{instruction}",
            "action_format": "direct",
            "input_limits": self.input_limits(),
        }
