"""``Policy``: the inference API every consumer uses (rollouts, the evaluator, the server).

::

    policy = Policy.from_pretrained("runs/lt/checkpoint")
    action = policy.predict_action([frame], "push the red star to the left")      # float32[D], in metres etc.
    actions, texts = policy.predict_action_batch([[f1], [f2]], [instr1, instr2])  # the fast batched path
    policy.answer([frame], "what color is the star?")                            # free text
    plan, action = policy.plan_and_act([frame], "push the block that is a fruit")  # chain of thought

Observations are raw RGB frames ``uint8[H, W, 3]`` of any size (resized by the one shared transform), oldest
first. Frame count: a model with ``n_frames = F`` takes 1..F frames; fewer than F are padded at the front by
repeating the OLDEST given frame (at episode start the history is the first frame, which is how the datasets
pad it too). More than F frames is an error, not a silent crop. A bare ``uint8[H, W, 3]`` array is accepted
as a one-frame observation.

Threads: ``num_threads`` calls ``torch.set_num_threads`` (process-wide; torch has no per-model setting).
``quantize="int8"``: dynamic int8 of every ``nn.Linear`` (torch.ao ``quantize_dynamic``; 1.3-2.3x faster on
this CPU, reference/cpu-measurements.md section 5). Check action agreement on your trained checkpoint first.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import rt2
from rt2.data.prompts import action_prompt, cot_prompt, vqa_prompt
from rt2.data.transforms import MIN_IMAGE_SIDE, check_frame
from rt2.models.decoding import GREEDY, Decoder, Sampling
from rt2.models.vla import VLA

QUANTIZE_MODES = (None, "int8")


def _quantize_int8(module: nn.Module) -> nn.Module:
    """Dynamic int8 of nn.Linear (weights int8, activations quantized per call)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao quantization in favour of torchao (not installed here); the kernels
        # still work and are measured in bench/decode.py.
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)


class Policy:
    """Inference wrapper around a :class:`VLA` (see module docstring)."""

    # answer / plan_and_act work (a VLM); False for policies without language output (the RT-1 baseline)
    has_language: bool = True

    def __init__(
        self,
        vla: VLA,
        *,
        num_threads: int | None = None,
        quantize: str | None = None,
        sampling: Sampling = GREEDY,
        seed: int = 0,
        action_format: str | None = None,
        corrupt_plan: float = 0.0,
    ) -> None:
        if action_format not in (None, "direct", "plan"):
            raise ValueError(
                f"action_format must be 'direct', 'plan' or None (the checkpoint's), got {action_format!r}"
            )
        if quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(int(num_threads))
        vla = vla.eval()
        if quantize == "int8":
            vla.backbone = _quantize_int8(vla.backbone)
        self.vla, self.quantize, self.sampling = vla, quantize, sampling
        self.decoder = Decoder(vla)
        self.generator = torch.Generator().manual_seed(seed)
        self.source: str | None = None
        # "plan": predict_action* write a grounded plan first (rt2.data.plan); "direct" skips it (a plan-trained
        # checkpoint also learned direct rows through plan dropout, so both are selectable)
        self.action_format = action_format or vla.config.action_format
        if not 0.0 <= corrupt_plan <= 1.0:
            raise ValueError(f"corrupt_plan is a probability in [0, 1], got {corrupt_plan}")
        self.corrupt_plan = float(corrupt_plan)  # ablation only (Decoder.plan_and_act corrupt_points)
        self.last_plans: list[str | None] = []  # the plans of the last predict_action* call (None: direct)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, trust_remote_code: bool = False, **kwargs: Any) -> Policy:
        """Load a checkpoint written by ``VLA.save_pretrained``; kwargs go to :class:`Policy`.

        ``trust_remote_code=True`` lets an HF backbone run code shipped in its folder; only the caller can turn
        it on (a checkpoint that asks for it is refused without it). An RT-1 baseline export (``rt1.json``,
        ``rt2 train --preset rt1``) loads as :class:`rt2.policy.rt1.RT1Policy`, a Policy subclass, so every
        consumer (``rt2 eval``, ``rt2 serve``) takes it unchanged."""
        from rt2.models.rt1.config import CONFIG_FILE

        if (Path(directory) / CONFIG_FILE).is_file() and not (Path(directory) / "vla.json").is_file():
            from rt2.policy.rt1 import RT1Policy

            if cls is Policy or issubclass(cls, RT1Policy):
                return RT1Policy.from_pretrained(directory, trust_remote_code=trust_remote_code, **kwargs)
        backbone_kwargs = {"trust_remote_code": True} if trust_remote_code else {}  # pali takes no such option
        policy = cls(VLA.from_pretrained(directory, **backbone_kwargs), **kwargs)
        policy.source = str(directory)
        return policy

    # ---- properties ---------------------------------------------------------------------------------------
    @property
    def action_dim(self) -> int:
        return self.vla.action_dim

    @property
    def n_frames(self) -> int:
        return self.vla.backbone.n_frames

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.vla.backbone.image_size)

    # ---- input limits (the server checks them when it parses a request) ------------------------------------
    @property
    def max_prompt_tokens(self) -> int | None:
        """Most prompt tokens (BOS included) an action request may have, or None when the backbone has no fixed
        text window. Trap: pali's window (``max_text_len`` learned positions) also holds the D action tokens
        the decoder feeds back, all but the last: prompt + D - 1 <= max_text_len."""
        window = getattr(getattr(self.vla.backbone, "config", None), "max_text_len", None)
        return None if window is None else int(window) - self.action_dim + 1

    def input_limits(self) -> dict[str, Any]:
        """Every limit one observation must meet for ``predict_action_batch`` not to raise (JSON-able)."""
        return {
            "min_image_side": MIN_IMAGE_SIDE,
            "n_frames": self.n_frames,
            "dtype": "uint8",
            "max_prompt_tokens": self.max_prompt_tokens,
        }

    def check_instruction(self, instruction: str) -> None:
        """Raise ValueError (saying the limit) if the action prompt of ``instruction`` does not fit the model."""
        limit = self.max_prompt_tokens
        if limit is None:
            return
        n = 1 + len(self.vla.backbone.tokenizer.encode(action_prompt(instruction)))  # + BOS, as prepare() adds
        if n > limit:
            overhead = len(self.vla.backbone.tokenizer.encode(action_prompt("x")))  # + BOS - the "x"
            raise ValueError(
                f"instruction too long for this model: its prompt is {n} tokens, the limit is {limit} "
                f"(about {max(limit - overhead, 0)} tokens of instruction); shorten it"
            )

    # ---- inputs -------------------------------------------------------------------------------------------
    def _frames(self, images: Any, where: str) -> list[np.ndarray]:
        """One observation -> exactly n_frames validated frames (front-padded with the oldest frame)."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
            raise ValueError(
                f"{where}: expected a list of uint8[H, W, 3] frames (oldest first) or one frame, "
                f"got {type(images).__name__}"
            )
        frames = [check_frame(f, f"{where} frame {i}") for i, f in enumerate(images)]
        F = self.n_frames
        if not frames:
            raise ValueError(f"{where}: no frames given; pass at least the current camera image")
        if len(frames) > F:
            raise ValueError(
                f"{where}: this model takes at most {F} frame(s) (oldest first), got {len(frames)}; pass the last {F}"
            )
        return [frames[0]] * (F - len(frames)) + frames

    def _inputs(self, images: Sequence[Any], prompts: list[str]) -> dict[str, torch.Tensor]:
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} observations but {len(prompts)} instructions; pass one each")
        obs = [self._frames(im, f"observation {b}") for b, im in enumerate(images)]
        inputs = self.vla.backbone.prepare(obs, prompts)
        device = self.vla.backbone.device
        return {k: v.to(device) for k, v in inputs.items()}

    @staticmethod
    def _texts(xs: Any, what: str) -> list[str]:
        if isinstance(xs, str):
            raise ValueError(f"{what} must be a list of strings (one per observation), not a single string")
        xs = list(xs)
        for i, x in enumerate(xs):
            if not isinstance(x, str):
                raise ValueError(f"{what}[{i}] must be a str, got {type(x).__name__}")
        return xs

    # ---- actions ------------------------------------------------------------------------------------------
    def predict_action_batch(
        self, images: Sequence[Sequence[np.ndarray]], instructions: Sequence[str]
    ) -> tuple[np.ndarray, list[str]]:
        """B observations + B instructions -> (float32[B, D] actions in the space's units, B action texts).
        A point-then-act policy (``action_format == "plan"``) writes a grounded plan before each action; the plans
        of this call are in ``self.last_plans`` (None per row for direct decoding)."""
        instructions = self._texts(instructions, "instructions")
        if not instructions:
            raise ValueError("predict_action_batch needs at least one observation")
        if self.action_format == "plan":
            plans, ids = self._plan_ids(images, instructions, None)
        else:
            inputs = self._inputs(images, [action_prompt(i) for i in instructions])
            ids = self.decoder.actions(inputs, self.sampling, self.generator).cpu().numpy()
            plans = [None] * len(instructions)
        self.last_plans = plans
        bins = self.vla.vocab.bins_for_ids(ids)  # cannot fail: decoding was constrained to legal ids
        atok = self.vla.action_tokenizer
        return atok.decode(bins), atok.to_text(bins)

    def _plan_ids(
        self, images: Sequence[Any], instructions: list[str], max_plan_tokens: int | None
    ) -> tuple[list[str], np.ndarray]:
        """(plan texts, action ids int64[B, D]); grounded-plan checkpoints decode their points slot by slot."""
        inputs = self._inputs(images, [cot_prompt(i) for i in instructions])
        slots = self.vla.config.action_format == "plan"
        plans, ids = self.decoder.plan_and_act(
            inputs, max_plan_tokens, self.sampling, self.generator, slots=slots, corrupt_points=self.corrupt_plan
        )
        tok = self.vla.backbone.tokenizer
        return [tok.decode(p, skip_special_tokens=True).strip() for p in plans], ids.cpu().numpy()

    def predict_action(self, images: Sequence[np.ndarray] | np.ndarray, instruction: str) -> np.ndarray:
        """One observation -> float32[D]."""
        if not isinstance(instruction, str):
            raise ValueError(f"instruction must be a str, got {type(instruction).__name__}")
        actions, _ = self.predict_action_batch([images], [instruction])
        return actions[0]

    def predict_bins(self, images: Sequence[np.ndarray] | np.ndarray, instruction: str) -> np.ndarray:
        """One observation -> int64[D] action integers (what the env's integer interface takes)."""
        inputs = self._inputs([images], [action_prompt(instruction)])
        return self.vla.vocab.bins_for_ids(self.decoder.actions(inputs, self.sampling, self.generator).cpu().numpy())[0]

    # ---- language -----------------------------------------------------------------------------------------
    def answer(self, images: Sequence[np.ndarray] | np.ndarray, question: str, max_new_tokens: int = 32) -> str:
        """Free-text answer to ``Q: {question} A:`` (stops at EOS or ``max_new_tokens``)."""
        return self.answer_batch([images], [question], max_new_tokens)[0]

    def answer_batch(self, images: Sequence[Any], questions: Sequence[str], max_new_tokens: int = 32) -> list[str]:
        questions = self._texts(questions, "questions")
        inputs = self._inputs(images, [vqa_prompt(q) for q in questions])
        outs = self.decoder.text(inputs, max_new_tokens, self.sampling, self.generator)
        tok = self.vla.backbone.tokenizer
        return [tok.decode(o, skip_special_tokens=True).strip() for o in outs]

    def plan_and_act(
        self, images: Sequence[np.ndarray] | np.ndarray, instruction: str, max_plan_tokens: int | None = None
    ) -> tuple[str, np.ndarray]:
        """Chain of thought: (plan text, float32[D] action). The action is constrained like predict_action."""
        if not isinstance(instruction, str):
            raise ValueError(f"instruction must be a str, got {type(instruction).__name__}")
        plans, ids = self._plan_ids([images], [instruction], max_plan_tokens)
        return plans[0], self.vla.action_tokenizer.decode(self.vla.vocab.bins_for_ids(ids))[0]

    # ---- handshake ----------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """JSON-able description the server sends on handshake."""
        atok, bb = self.vla.action_tokenizer, self.vla.backbone
        space = atok.space
        return {
            "rt2_version": rt2.__version__,
            "model": bb.name,
            "backbone_family": bb.family,
            "checkpoint": self.source,
            "num_parameters": int(bb.num_parameters) if self.quantize is None else None,
            "action_space": {
                **space.to_dict(),
                "dim": space.dim,
                "names": list(space.names),
                "low": space.low.tolist(),
                "high": space.high.tolist(),
                "value_ranges": [list(r) for r in atok.value_ranges],
                "text_format": " ".join(n.upper() for n in space.names),
            },
            "action_vocab": self.vla.vocab.strategy,
            "image_size": list(bb.image_size),
            "n_frames": int(bb.n_frames),
            "norm_stats_key": self.vla.config.norm_stats_key,
            "quantize": self.quantize,
            "prompt_format": action_prompt("{instruction}"),
            # "plan": replies carry the grounded plan (robot, block, goal grid points) written before the action
            "action_format": self.action_format,
            **({"plan_format": cot_prompt("{instruction}")} if self.action_format == "plan" else {}),
            **({"corrupt_plan": self.corrupt_plan} if self.corrupt_plan else {}),
            "input_limits": self.input_limits(),
        }
