"""``rt2 train --preset rt1``: the RT-1-style baseline trained by the same trainer, on the same robot data.

::

    rt2 collect --episodes 4000 --noise 0,1,2,3 --out data/lt4k
    rt2 train --regime scratch --preset rt1 --data data/lt4k --out runs/rt1      # ~90 CPU-min, like --preset control
    rt2 eval --policy runs/rt1/final --suite seen --suite-episodes 100
    rt2 serve --policy runs/rt1/final

``--model rt1`` (or ``rt1-tiny``) with ``--regime scratch`` and no ``--preset`` takes the ``rt1`` preset too.
What the run shares with the VLA regimes: ``rt2.train.Trainer`` (atomic checkpoints, bit-exact ``--resume``,
``metrics.jsonl``, TensorBoard, progress), ``rt2.train.sources.build_sources`` (the ``robot`` source only: no web
data, no VLM, no in-domain questions) and the shared image transform with pixel statistics measured on the
training data (``image_norm.json``). What differs: the instruction tokenizer is trained on the robot instructions
and the simulator's instruction templates only (``OUT/tokenizer.json``, never the web corpus), and the model
classifies the action integers instead of writing them as text.

Compute parity (the ``rt1`` preset's budget). ``rt2 bench rt1`` times trainer steps of both models (collation
included) on the same robot action examples, interleaved, at batch 32, one thread, bf16 autocast as the presets
run them::

    OMP_NUM_THREADS=1 rt2 bench rt1

Measured on this shared 2-core machine (2026-12-07, one run, the machine busy with other training jobs:
calibration 950 ms against ~150 idle, so only the ratio means anything): ``rt1`` (0.73 M parameters) 38.1
samples/s against ``pali-nano`` (1.33 M) 14.9 samples/s in the same interleaved run, **2.64x** (median of 6
per-round ratios; bf16 autocast, batch 32, 1 thread). A ``--preset control`` run is 18,000 steps x 32 of
``pali-nano`` (~88 CPU-min; its web items cost extra rendering the RT-1 run does not pay, so this errs towards
giving RT-1 less compute, not more), hence the ``rt1`` preset's 18,000 x 2.64 ~ **48,000 steps x 32**.
"""

from __future__ import annotations

import argparse
from typing import Any

from rt2.train.config import TrainConfig

TOKENIZER_VOCAB = 1024  # the robot instructions saturate BPE long before this (a few hundred merges)


def check_rt1_run(regime: str, args: argparse.Namespace, cfg: TrainConfig) -> None:
    """Raise one clear ValueError for option combinations the baseline cannot mean anything with."""
    if regime != "scratch":
        raise ValueError(
            f"--model {cfg.model} is the RT-1 baseline: robot data only, from random weights; use --regime scratch "
            f"(not {regime})"
        )
    if getattr(args, "init", None) is not None or cfg.model_path:
        raise ValueError(f"--model {cfg.model} trains from random weights; drop --init / --model-path")
    if getattr(args, "web_data", None):
        raise ValueError(f"--model {cfg.model} is trained on robot data only; drop --web-data")
    if cfg.action_format != "direct":
        raise ValueError(f"--model {cfg.model} classifies actions directly; --action-format plan needs a VLA")
    if cfg.point_share > 0:
        raise ValueError(
            f"--model {cfg.model} has no text output to train pointing questions on; use --set point_share=0 (its "
            "grounding comes from --grounding-weight, on the action rows)"
        )
    if cfg.lora_rank or cfg.freeze_vision:
        raise ValueError(f"--model {cfg.model} has no LoRA adapters or pretrained vision tower to freeze")


def grounding_width(robot: Any, weight: float) -> int:
    """Width G of the grounding targets when the auxiliary loss is on (``weight`` > 0), else 0; the data must
    carry ``observation.environment_state`` (as ``rt2 collect`` writes it)."""
    from rt2.data.robot_columns import GROUNDING_KEY

    if weight <= 0:
        return 0
    dims = {None if e.grounding is None else e.grounding.shape[1] for e in robot.episodes}
    if None in dims:
        raise ValueError(
            f"--grounding-weight {weight}: {robot.info['dataset']} has no {GROUNDING_KEY} column (the grounding "
            "target, written by rt2 collect); re-collect the data with rt2 collect or train with --grounding-weight 0"
        )
    if len(dims) != 1:
        raise ValueError(f"episodes disagree on the grounding width: {sorted(dims)}")
    return int(dims.pop())


def instruction_tokenizer(args: argparse.Namespace, robot: Any, seed: int):
    """The instruction tokenizer: ``OUT/tokenizer.json`` on ``--resume`` (the same vocabulary, bit-exact), else
    trained on the dataset's instructions + the simulator's instruction templates and saved there first."""
    from rt2.models import TextTokenizer
    from rt2.train.sources import instruction_corpus

    path = args.out / "tokenizer.json"
    if args.resume and path.is_file():
        return TextTokenizer.load(path)
    tok = TextTokenizer.train(robot.texts() + instruction_corpus(seed=seed), vocab_size=TOKENIZER_VOCAB)
    args.out.mkdir(parents=True, exist_ok=True)
    tok.save(path)
    return tok


def build_rt1(regime: str, args: argparse.Namespace, cfg: TrainConfig, robot: Any):
    """A fresh :class:`rt2.models.rt1.RT1` for this run (checks, tokenizer, grounding head, action codec)."""
    from rt2.models.rt1 import RT1

    check_rt1_run(regime, args, cfg)
    tok = instruction_tokenizer(args, robot, cfg.seed)
    return RT1.build(
        cfg.model,
        tok,
        robot.tokenizer,
        n_frames=int(args.frames),
        norm_stats_key=robot.norm_stats_key,
        grounding_dim=grounding_width(robot, cfg.grounding_weight),
        grounding_weight=float(cfg.grounding_weight) if cfg.grounding_weight > 0 else 10.0,
    ).train()


def with_rt1_preset(cfg: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """``--model rt1`` without ``--preset``: the ``rt1`` preset's budget with the user's flags on top (the regime's
    VLA preset would silently train the baseline for a VLA's step count at a VLA's learning rate)."""
    from rt2.train.config import config_from_args

    if getattr(args, "preset", None):
        return cfg
    return config_from_args(args, fallback_preset="rt1")
