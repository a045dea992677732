"""Training configuration: one frozen dataclass, named presets, command-line overrides.

A run is fully described by a :class:`TrainConfig`. Pick a preset (``--preset NAME``), then override single
fields either with the generated flag (``--lr 3e-4``, ``--batch-size 16``) or with ``--set key=value``; a
mistyped key fails and names the closest valid one::

    cfg = preset("cofinetune")
    cfg = apply_overrides(cfg, ["lr=3e-4", "steps=100"])

Batch sizes are *global* (summed over processes and gradient-accumulation micro-steps), so the same config
gives the same optimization on 1 CPU process, DDP over N processes or N GPUs: each process runs
``batch_size // (num_processes * grad_accum)`` examples per micro-step.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16")
ACTION_FORMATS = ("direct", "plan")


def _f(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run. Frozen: derive variants with :func:`apply_overrides` / ``replace``."""

    model: str = _f(
        "pali-nano",
        "backbone registry name for a fresh model (finetune/cofinetune take it from --init); hf or hf-<family> "
        "with --model-path for a local Hugging Face checkpoint; rt1 / rt1-tiny: the RT-1-style baseline "
        "(--regime scratch, preset rt1)",
    )
    model_path: str = _f(
        "",
        "local Hugging Face checkpoint folder (config.json, weights, tokenizer) for --model hf / hf-<family>: the "
        "pretrained VLM every regime starts from (instead of --init); never a hub id",
    )
    steps: int = _f(2000, "optimizer steps")
    batch_size: int = _f(32, "global batch size (all processes x accumulation micro-steps)")
    grad_accum: int = _f(1, "gradient-accumulation micro-steps per optimizer step")
    lr: float = _f(1e-3, "peak learning rate (AdamW)")
    min_lr_ratio: float = _f(0.1, "cosine floor as a fraction of lr")
    warmup_steps: int = _f(100, "linear warm-up steps from 0 to lr")
    weight_decay: float = _f(0.01, "AdamW weight decay (not applied to biases, norms, 1-D params)")
    beta1: float = _f(0.9, "AdamW beta1")
    beta2: float = _f(0.95, "AdamW beta2")
    eps: float = _f(1e-8, "AdamW epsilon")
    grad_clip: float = _f(1.0, "clip the global gradient norm to this (0 = no clipping, norm still logged)")
    precision: str = _f("auto", "fp32 | bf16 | auto (bf16 when the CPU has avx512_bf16/AMX or the GPU supports it)")
    max_nonfinite: int = _f(10, "abort after this many steps with a non-finite loss or gradient (each one is skipped)")
    seed: int = _f(0, "seed for model init, data order and dropout")
    log_every: int = _f(10, "steps between TensorBoard / metrics.jsonl records")
    ckpt_every: int = _f(500, "steps between checkpoints (the last step is always saved)")
    keep_last: int = _f(3, "checkpoints kept on disk (older ones are deleted)")
    robot_share: float = _f(0.5, "fraction of each batch drawn from robot data (cofinetune)")
    point_share: float = _f(
        0.0,
        "fraction of each batch asking where a block the instruction names is, on robot frames (cofinetune, "
        "tabletop data; taken from the web share)",
    )
    lora_rank: int = _f(0, "LoRA rank for HF backbones through peft (0 = full fine-tuning)")
    lora_alpha: int = _f(16, "LoRA alpha")
    lora_dropout: float = _f(0.0, "LoRA dropout")
    lora_targets: str = _f("q_proj,v_proj", "comma-separated module-name suffixes LoRA adapts")
    freeze_vision: bool = _f(False, "freeze the vision tower (its parameters get no gradient and no optimizer state)")
    grounding_weight: float = _f(
        0.0,
        "auxiliary grounding loss weight: action rows also regress effector, pushed block and goal xy "
        "(the data's observation.environment_state) from the action's hidden state; 0 = off; training only",
    )
    action_format: str = _f(
        "direct",
        "direct: answer with the action tokens; plan: point, then act (a grounded plan of robot, block and goal "
        "grid points, then the action; rt2.data.plan)",
    )
    plan_dropout: float = _f(0.2, "plan format: share of robot rows trained as direct actions (no plan)")
    plan_noise: float = _f(
        0.35, "plan format: round(N(0, plan_noise)) grid cells added to each plan coordinate in training"
    )
    augment: bool = _f(False, "train-time image augmentation (crop, colour jitter) through the shared transform")
    num_threads: int = _f(0, "torch intra-op threads per process (0 = leave torch's default)")

    def __post_init__(self) -> None:
        errors = []
        for name in ("steps", "batch_size", "grad_accum", "log_every", "ckpt_every", "keep_last"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "max_nonfinite", "lora_rank", "num_threads", "seed"):
            if getattr(self, name) < 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            errors.append(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            errors.append(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not self.grounding_weight >= 0:
            errors.append(f"grounding_weight must be >= 0, got {self.grounding_weight}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.eps <= 0:
            errors.append("weight_decay and grad_clip must be >= 0 and eps > 0")
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            errors.append(f"betas must be in [0, 1), got ({self.beta1}, {self.beta2})")
        if self.precision not in PRECISIONS:
            errors.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 < self.robot_share <= 1.0:
            errors.append(f"robot_share must be in (0, 1], got {self.robot_share}")
        if not 0.0 <= self.point_share < 1.0 or self.robot_share + self.point_share > 1.0:
            errors.append(f"point_share must be in [0, 1) with robot_share + point_share <= 1, got {self.point_share}")
        if self.action_format not in ACTION_FORMATS:
            errors.append(f"action_format must be one of {ACTION_FORMATS}, got {self.action_format!r}")
        if not 0.0 <= self.plan_dropout < 1.0 or not self.plan_noise >= 0:
            errors.append(
                f"plan_dropout must be in [0, 1) and plan_noise >= 0, got {self.plan_dropout}, {self.plan_noise}"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            errors.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.batch_size % self.grad_accum:
            errors.append(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")
        if errors:
            raise ValueError("invalid TrainConfig: " + "; ".join(errors))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        _check_keys(d.keys())
        return cls(**d)

    def micro_batch(self, num_processes: int) -> int:
        """Examples per process per micro-step; raises if the global batch does not split evenly."""
        per = num_processes * self.grad_accum
        if self.batch_size % per:
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by num_processes x grad_accum = "
                f"{num_processes} x {self.grad_accum} = {per}"
            )
        return self.batch_size // per


# Named presets. Runtimes are for this machine (2 shared CPU cores); see rt2.train.cli for measured figures.
PRESETS: dict[str, TrainConfig] = {
    # A few steps of a tiny model: tests and smoke runs (seconds).
    "debug": TrainConfig(
        steps=4, batch_size=4, lr=1e-3, warmup_steps=1, log_every=1, ckpt_every=2, keep_last=2, precision="fp32"
    ),
    # lr 5e-4 for the built-in backbones, fine-tuning included. Measured (pali-nano, batch 32, "where is the robot?"
    # pointing, held-out episodes, 300 steps): lr 2e-3 -> 4 % within +-1 grid cell (stuck at chance, in fp32 too),
    # 5e-4 -> 84 %; block pointing after 600 steps: 1e-3 -> 9 %, 5e-4 -> 12 % and still falling. The 3e-3 that
    # helped the small CNN of reference/bc-feasibility.md is far too high for the transformer.
    # Web corpus only: our stand-in for web-scale VLM pre-training. Measured (pali-nano, 1 thread, ~95 min;
    # `rt2 vqa --curve`, docs/results/pretrain/): held-out web VQA stays at chance for the first ~4,000 steps at
    # either lr, then takes off; at 20,000 steps lr 1e-3 beats 5e-4 (pointing especially). 3,000-5,000 steps
    # (the old preset, and `rt2 reproduce`'s pinned budget) leave the VLM at chance: use --steps for a smoke run.
    "pretrain": TrainConfig(steps=20000, batch_size=32, lr=1e-3, warmup_steps=100, ckpt_every=4000, keep_last=6),
    # Robot data only, random init (the "no web knowledge" ablation).
    "scratch": TrainConfig(steps=3000, batch_size=32, lr=5e-4, warmup_steps=100, ckpt_every=500),
    # Robot data only, from the pretrained VLM.
    "finetune": TrainConfig(steps=3000, batch_size=32, lr=5e-4, warmup_steps=100, ckpt_every=500),
    # The RT-2 recipe: pretrained VLM, robot + web mixture (robot_share of each batch from robot data).
    "cofinetune": TrainConfig(steps=3000, batch_size=32, lr=5e-4, warmup_steps=100, ckpt_every=500, robot_share=0.5),
    # The grounded recipe that controls (issue 14): co-fine-tuning with the auxiliary grounding loss and in-domain
    # pointing (robot 0.5 / "where is the robot?" 0.1 / "where is the <named block>?" 0.15 / web 0.25) at lr
    # 1.5e-3. Measured on block2block (reference/point-then-act.md): the action rows sit at the prior (held-out
    # L1 ~2.3) for ~10,000 steps, then fall through a phase transition (0 % -> 84 % success between 33 and 50
    # CPU-min). Shorter runs stop before it: the step count is the recipe. ~5 steps per CPU-second on pali-nano.
    "control": TrainConfig(
        steps=18000,
        batch_size=32,
        lr=1.5e-3,
        warmup_steps=100,
        ckpt_every=2000,
        keep_last=3,
        robot_share=0.5,
        point_share=0.15,
        grounding_weight=10.0,
    ),
    # The RT-1-style baseline (rt2.train.rt1, --regime scratch): robot data only, the grounding loss the control
    # recipe gets from the same data, and the control run's CPU time: `rt2 bench rt1` measured RT-1 at 2.64x the
    # samples per CPU-second of pali-nano (batch 32, 1 thread, bf16), so 18,000 x 2.64 ~ 48,000 steps x 32.
    "rt1": TrainConfig(
        model="rt1",
        steps=48000,
        batch_size=32,
        lr=1e-3,
        warmup_steps=100,
        ckpt_every=4000,
        keep_last=3,
        grounding_weight=10.0,
    ),
    # HF backbone with LoRA adapters and a frozen vision tower.
    "lora": TrainConfig(
        model="hf-paligemma-tiny", steps=2000, batch_size=32, lr=1e-3, warmup_steps=100, lora_rank=8, freeze_vision=True
    ),
}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}{_hint(name, PRESETS)}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


def _hint(word: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _check_keys(keys: Iterable[str]) -> None:
    valid = _field_types()
    for k in keys:
        if k not in valid:
            raise ValueError(f"unknown config key {k!r}{_hint(k, valid)}; valid keys: {', '.join(valid)}")


def _parse_value(key: str, raw: str, typ: type):
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return typ(raw)
    except ValueError:
        raise ValueError(f"config key {key!r} expects {typ.__name__}, got {raw!r}") from None


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str] | dict) -> TrainConfig:
    """Return ``cfg`` with ``["key=value", ...]`` (strings, parsed by field type) or ``{key: value}`` applied."""
    types = _field_types()
    if isinstance(overrides, dict):
        _check_keys(overrides)
        return dataclasses.replace(cfg, **overrides)
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        _check_keys([key])
        changes[key] = _parse_value(key, raw, types[key])
    return dataclasses.replace(cfg, **changes)


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None = None) -> None:
    """Add ``--preset``, ``--set key=value`` and one ``--flag`` per config field (default: the preset's)."""
    g = parser.add_argument_group(
        "training config",
        "start from --preset, then apply these flags, then --set; an omitted flag keeps the preset's value",
    )
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=default_preset or argparse.SUPPRESS,
        help="named config to start from" + ("" if default_preset else " (default: the preset named like --regime)"),
    )
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")
    for f in dataclasses.fields(TrainConfig):
        typ = _field_types()[f.name]
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict = {"default": argparse.SUPPRESS, "help": f.metadata.get("help", "")}
        if typ is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = typ
            kwargs["metavar"] = typ.__name__.upper()
        if f.name == "precision":
            kwargs["choices"] = PRECISIONS
        g.add_argument(flag, dest=f"cfg_{f.name}", **kwargs)


def config_from_args(args: argparse.Namespace, fallback_preset: str = "debug") -> TrainConfig:
    """Preset, then the per-field flags the user gave, then ``--set`` overrides."""
    cfg = preset(getattr(args, "preset", None) or fallback_preset)
    flags = {f.name: getattr(args, f"cfg_{f.name}", None) for f in dataclasses.fields(TrainConfig)}
    cfg = apply_overrides(cfg, {k: v for k, v in flags.items() if v is not None})
    return apply_overrides(cfg, list(getattr(args, "set", None) or []))


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    import json

    Path(path).write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
