"""AdamW with decoupled weight decay groups, linear warm-up + cosine schedule, and precision selection.

``build_optimizer(model, cfg)``: AdamW over the parameters that require grad; weight decay only on matrices
(dim >= 2, excluding embeddings' 1-D companions such as biases and norm scales).
``build_scheduler(opt, cfg)``: lr(t) = lr * t / warmup for t < warmup, then cosine from lr down to
``lr * min_lr_ratio`` at ``cfg.steps``. A ``LambdaLR`` over a module-level function of the step, so its
``state_dict()`` is JSON-able (no closures are saved).
``configure_trainable(model, cfg)``: ``freeze_vision`` and LoRA (``lora_rank > 0``, HF backbones through peft).
``resolve_precision("auto")``: "bf16" where bf16 autocast is faster (measured 1.25-1.6x on a CPU with
avx512_bf16, reference/cpu-measurements.md section 4), else "fp32".
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
from torch import nn

from rt2.train.config import TrainConfig


def _backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "backbone", model)


def configure_trainable(model: nn.Module, cfg: TrainConfig) -> None:
    """Apply ``cfg.freeze_vision`` and ``cfg.lora_rank`` to ``model`` (a VLA or a bare backbone) in place.

    Freezing: the backbone's own ``freeze_vision()`` (HF adapters) or its ``vision`` module (built-in pali).
    LoRA: the backbone's ``enable_lora()`` with rank/alpha/dropout/targets from ``cfg`` (peft; HF backbones
    only: the built-in pali has no LoRA path, full fine-tuning is cheap at its size). A backbone loaded from a
    LoRA checkpoint keeps its adapters.
    """
    bb = _backbone(model)
    if cfg.lora_rank > 0:
        if not callable(getattr(bb, "enable_lora", None)):
            raise ValueError(
                f"lora_rank={cfg.lora_rank}: LoRA is available for Hugging Face backbones (hf-*), not for "
                f"{getattr(bb, 'name', type(bb).__name__)}; set lora_rank=0 for full fine-tuning"
            )
        if not getattr(bb, "is_lora", False):
            bb.config.lora_rank = cfg.lora_rank
            bb.config.lora_alpha = cfg.lora_alpha
            bb.config.lora_dropout = cfg.lora_dropout
            bb.config.lora_target_modules = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
            bb.enable_lora()
    if cfg.freeze_vision:
        if callable(getattr(bb, "freeze_vision", None)):
            bb.freeze_vision()
        elif isinstance(getattr(bb, "vision", None), nn.Module):
            for p in bb.vision.parameters():
                p.requires_grad_(False)
        else:
            raise ValueError(
                f"freeze_vision: {type(bb).__name__} has neither freeze_vision() nor a .vision module to freeze"
            )


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    seen: set[int] = set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (everything frozen?)")
    groups = [
        g
        for g in ({"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0})
        if g["params"]
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=False)


def lr_factor(step: int, *, warmup: int, total: int, floor: float) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    fn = functools.partial(lr_factor, warmup=cfg.warmup_steps, total=cfg.steps, floor=cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(opt, fn)


def cpu_has_bf16() -> bool:
    """True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (native bf16 matmul on this CPU)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in text or "amx_bf16" in text


def resolve_precision(precision: str) -> str:
    if precision in ("fp32", "bf16"):
        return precision
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"
