"""rt2.train: co-fine-tuning on accelerate (CPU / DDP / multi-GPU / FSDP) with atomic, pickle-free checkpoints.

Public API (import torch lazily: the submodules import it)::

    from rt2.train.config import TrainConfig, PRESETS, preset, apply_overrides
    from rt2.train.trainer import Trainer, TrainResult, NonFiniteLossError
    from rt2.train.checkpoint import CheckpointManager, CheckpointError
    from rt2.train.batches import ExampleBatches
    from rt2.train.optim import configure_trainable, resolve_precision   # freeze_vision / LoRA, auto bf16
    from rt2.train.sources import build_sources, tokenizer_corpus        # what each regime reads

Commands: ``rt2 pretrain`` and ``rt2 train`` (``rt2.train.cli``).
"""
