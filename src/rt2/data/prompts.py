"""Training/serving examples and the prompt formats: the one place where prompt wording is defined.

Training (``rt2.models.VLA``), the Policy and the server all format prompts through these functions, so a model
is always queried with exactly the text it was trained on. Formats (RT-2 paper, section 3.2 and appendix):

* action:  ``Q: what action should the robot take to {instruction}? A:``  -> target ``"{action text}"``
* VQA:     ``Q: {question} A:``                                            -> target free text
* caption: ``Caption:`` (or any prompt)                                   -> target free text
* chain of thought: ``Instruction: {instruction} Plan:`` -> target ``"{plan} Action: {action text}"``;
  the loss covers plan + action, and decoding switches to constrained action tokens after ``Action:``.

Instructions are normalized (whitespace collapsed, trailing ``.!?`` dropped) so "Push the red cube." and
"Push the red cube" produce the same prompt; case is kept (it can carry meaning, e.g. letters on blocks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["action", "text", "cot"]
KINDS: tuple[str, ...] = ("action", "text", "cot")

ACTION_PROMPT = "Q: what action should the robot take to {instruction}? A:"
VQA_PROMPT = "Q: {question} A:"
CAPTION_PROMPT = "Caption:"
COT_PROMPT = "Instruction: {instruction} Plan:"
# The words that end the plan in a chain-of-thought answer; decoding stops free text when it emits them.
COT_ACTION_MARKER = "Action:"


def normalize_instruction(instruction: str) -> str:
    """Collapse whitespace and drop trailing sentence punctuation. Raises ValueError on empty/non-str."""
    if not isinstance(instruction, str):
        raise ValueError(f"instruction must be a str, got {type(instruction).__name__}")
    text = re.sub(r"\s+", " ", instruction).strip().rstrip(".!?").strip()
    if not text:
        raise ValueError(f"instruction is empty after normalization ({instruction!r}); pass a task description")
    return text


def action_prompt(instruction: str) -> str:
    """``Q: what action should the robot take to {instruction}? A:``"""
    return ACTION_PROMPT.format(instruction=normalize_instruction(instruction))


def vqa_prompt(question: str) -> str:
    """``Q: {question} A:`` (a trailing ``?`` is kept once)."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty str, got {question!r}")
    q = re.sub(r"\s+", " ", question).strip()
    return VQA_PROMPT.format(question=q)


def cot_prompt(instruction: str) -> str:
    """``Instruction: {instruction} Plan:``"""
    return COT_PROMPT.format(instruction=normalize_instruction(instruction))


def cot_target(plan: str, action_text: str) -> str:
    """``"{plan} Action: {action_text}"``; the plan must not itself contain the marker."""
    plan = re.sub(r"\s+", " ", plan).strip()
    if not plan:
        raise ValueError("chain-of-thought plan is empty; pass a short plan such as 'move the red cube left'")
    if COT_ACTION_MARKER in plan:
        raise ValueError(f"plan {plan!r} contains {COT_ACTION_MARKER!r}, which would end the plan early")
    return f"{plan} {COT_ACTION_MARKER} {action_text.strip()}"


def split_cot_target(target: str) -> tuple[str, str]:
    """Inverse of :func:`cot_target`: ``(plan, action_text)``. Raises ValueError without the marker."""
    head, sep, tail = target.rpartition(COT_ACTION_MARKER)
    if not sep:
        raise ValueError(f"chain-of-thought target {target!r} lacks {COT_ACTION_MARKER!r}")
    return head.strip(), tail.strip()


@dataclass(frozen=True)
class Example:
    """One training example (or an inference query when ``target`` is empty).

    images:      tuple of uint8[H, W, 3] frames, oldest first (any size; the model's transform resizes)
    prompt:      the full prompt text, made with the functions above
    target:      the answer text (action text "3 -7", free text, or "{plan} Action: 3 -7")
    kind:        "action" | "text" | "cot"
    source:      which data source it came from (the mixture trainer logs loss per source)
    action_bins: int64[D] the action integers for kind "action"/"cot" (what the action tokens encode); None
                 for "text". The model's targets come from these via ``ActionVocab.ids_for_bins``, not from
                 re-tokenizing ``target``, so ``least_used`` vocabularies work the same as ``numeric``.
    grounding:   float32[G] optional regression target of the auxiliary grounding loss (action rows:
                 ``rt2.sim.tasks.grounding_state``, effector, pushed block and goal in [-1, 1]; pointing rows: the
                 effector and the object asked about, twice); None = no target.
    """

    images: tuple[np.ndarray, ...]
    prompt: str
    target: str
    kind: Kind = "action"
    source: str = "robot"
    action_bins: np.ndarray | None = None
    grounding: np.ndarray | None = None

    def __post_init__(self) -> None:
        frames = self.images
        if isinstance(frames, np.ndarray):
            frames = (frames,) if frames.ndim == 3 else tuple(frames)
        frames = tuple(frames)
        if not frames:
            raise ValueError("Example needs at least one image frame")
        for i, f in enumerate(frames):
            if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
                desc = f"{f.dtype} {f.shape}" if isinstance(f, np.ndarray) else type(f).__name__
                raise ValueError(f"Example frame {i} must be uint8[H, W, 3] (RGB), got {desc}")
        object.__setattr__(self, "images", frames)
        if self.kind not in KINDS:
            raise ValueError(f"Example kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError("Example prompt must be a non-empty str")
        if not isinstance(self.target, str):
            raise ValueError(f"Example target must be a str, got {type(self.target).__name__}")
        if self.kind == "text":
            if self.action_bins is not None:
                raise ValueError("a 'text' Example takes no action_bins; use kind='action' or 'cot'")
        else:
            if self.action_bins is None:
                raise ValueError(f"a {self.kind!r} Example needs action_bins (int64[D])")
            bins = np.asarray(self.action_bins)
            if bins.ndim != 1 or not np.issubdtype(bins.dtype, np.integer):
                raise ValueError(f"action_bins must be int[D], got {bins.dtype} {bins.shape}")
            object.__setattr__(self, "action_bins", bins.astype(np.int64))
        if self.kind == "cot":
            split_cot_target(self.target)
        if self.grounding is not None:
            g = np.asarray(self.grounding, dtype=np.float32)
            if g.ndim != 1 or not len(g) or not np.isfinite(g).all():
                raise ValueError(f"Example grounding must be finite float[G>0], got {g.shape} {g[:6]}")
            object.__setattr__(self, "grounding", g)

    # ---- constructors --------------------------------------------------------------------------------------
    @classmethod
    def action(
        cls,
        images: Sequence[np.ndarray],
        instruction: str,
        bins: Sequence[int],
        action_text: str,
        source: str = "robot",
    ) -> Example:
        """An action example: prompt from :func:`action_prompt`, target = the action text."""
        return cls(tuple(images), action_prompt(instruction), action_text, "action", source, np.asarray(bins))

    @classmethod
    def text(cls, images: Sequence[np.ndarray], prompt: str, target: str, source: str = "web") -> Example:
        """A VQA/caption example (build the prompt with :func:`vqa_prompt` or :data:`CAPTION_PROMPT`)."""
        return cls(tuple(images), prompt, target, "text", source, None)

    @classmethod
    def cot(
        cls,
        images: Sequence[np.ndarray],
        instruction: str,
        plan: str,
        bins: Sequence[int],
        action_text: str,
        source: str = "robot_cot",
    ) -> Example:
        """A chain-of-thought example: ``Instruction: .. Plan:`` -> ``{plan} Action: {action}``."""
        return cls(
            tuple(images), cot_prompt(instruction), cot_target(plan, action_text), "cot", source, np.asarray(bins)
        )

    @property
    def plan(self) -> str | None:
        """The plan of a "cot" example, else None."""
        return split_cot_target(self.target)[0] if self.kind == "cot" else None
