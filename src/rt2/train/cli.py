"""``rt2 pretrain`` and ``rt2 train``: the training commands (one module, two entry points).

``rt2 pretrain`` trains the VLM on the synthetic web corpus only (our stand-in for web-scale pre-training). It
first trains and saves the local text tokenizer on the web corpus + every instruction template + the prompt
formats, then writes ``OUT/final/`` (a ``VLA.save_pretrained`` / ``Policy.from_pretrained`` directory)::

    rt2 pretrain --out runs/pretrain                                 # preset pretrain: 20,000 x 32, ~95 min
    rt2 vqa --policy runs/pretrain/final --items 2300 --curve --out runs/pretrain/vqa   # did it learn?
    rt2 pretrain --out runs/pt-smoke --preset debug                  # ~12 s on this machine (2 shared cores)

``rt2 train`` turns a VLM into a robot policy::

    rt2 collect --episodes 200 --out data/lt                         # a LeRobot v3 dataset first
    rt2 train --regime cofinetune --init runs/pretrain --data data/lt --out runs/cft   # robot_share 0.5
    rt2 train --regime finetune   --init runs/pretrain --data data/lt --out runs/ft
    rt2 train --regime scratch    --data data/lt --out runs/scratch
    rt2 train ... --resume                                           # continue OUT bit-exactly

The recipe that controls (the shipped policy; docs/results/control): grounding loss, in-domain block pointing and
18,000 steps, ~90 min on one core; ``--action-format plan`` for point, then act::

    rt2 collect --episodes 4000 --noise 0,1,2,3 --out data/lt4k      # ~1 min
    rt2 train --regime cofinetune --preset control --init runs/pretrain --data data/lt4k --out runs/control

The RT-1-style baseline (RT-2's main comparison; ``rt2.train.rt1``): robot data only, random init, the same
trainer, checkpoints and ``--resume``; its export loads with ``Policy.from_pretrained`` like any policy::

    rt2 train --regime scratch --preset rt1 --data data/lt4k --out runs/rt1   # 48,000 x 32: the control run's CPU

A local Hugging Face checkpoint folder (PaliGemma, SmolVLM/Idefics3, Qwen2-VL, LLaVA; ``pip install "rt2[hf]"``)
is the starting VLM in place of ``--init``; the family comes from its config.json (``--model hf-paligemma`` also
works and checks it)::

    rt2 train --regime cofinetune --model hf --model-path ~/models/paligemma2-3b --data data/lt --out runs/pg \
        --lora-rank 16 --freeze-vision

Bring your own data (see ``rt2.train.sources`` for how the mixture weights combine)::

    rt2 train --regime cofinetune --init runs/pretrain --data data/my_arm --out runs/arm \
        --image-key observation.images.wrist --action-key action --frames 2 --web-data data/my_vqa:1
    rt2 pretrain --out runs/pt --web-data data/my_vqa:2 --web-data data/captions   # + the built-in corpus

``--data`` is any LeRobot v3.0 dataset with image or video features (``rt2.data.robot_columns``: float actions are
binned over q01..q99, the NormStats go into the checkpoint); ``--web-data`` is a ``data.jsonl`` folder
(``rt2.data.vqa_files``).

Expected runtime on this machine (2 shared CPU cores, bf16 autocast, batch 32, 1 thread), measured Dec 2026:
``pali-nano`` (the default) ~0.19 s/step on robot data and ~0.25 s/step with the web corpus (its images are
rendered per item), so the ``cofinetune`` preset (3000 steps) takes ~12-15 min and ``pretrain`` (20,000 steps,
measured at 112 samples/s with a second job on the other core) ~95 min; ``pali-tiny``
~0.85 s/step under load (39 samples/s) or ~0.35 s/step on 2 idle threads; ``--preset debug`` ~12 s.
With 2 threads during contention OpenMP spin-waiting makes
steps 3-10x slower; these commands therefore default ``OMP_WAIT_POLICY=PASSIVE`` (override it in the
environment).

Multi-process (DDP over gloo on CPU, or GPUs; ``accelerate launch --cpu`` alone starts N processes only
through mpirun, so on CPU use the torchrun path ``--multi_gpu``: the trainer selects gloo when CUDA is absent)::

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \\
        -m rt2.cli train --regime cofinetune --init runs/pretrain --data data/lt --out runs/cft2

Config: ``--preset NAME`` then one flag per field (``--lr 3e-4``) then ``--set key=value``; see
``rt2.train.config``. Outputs in ``OUT``: ``checkpoints/`` (atomic, ``latest`` pointer, last ``keep_last``),
``final/`` (export), ``metrics.jsonl``, ``tb/`` (TensorBoard), ``config.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from rt2.train.config import add_config_arguments, config_from_args

REGIME_CHOICES = ("scratch", "finetune", "cofinetune")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, logs, final export)")
    parser.add_argument("--resume", action="store_true", help="continue OUT from checkpoints/latest (bit-exact)")
    parser.add_argument(
        "--frames",
        type=int,
        default=1,
        help="frames per observation for a fresh model (2 = LT RT-2; 2x the image tokens)",
    )
    parser.add_argument(
        "--tokenizer-corpus",
        type=int,
        default=5000,
        help="web items the fresh tokenizer is trained on (+ instructions)",
    )
    parser.add_argument(
        "--stop-after", type=int, help="stop after this step with a checkpoint (time-boxed sessions; --resume later)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    parser.add_argument(
        "--web-data",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="your own VQA/caption folder (data.jsonl + images, see rt2.data.vqa_files), a mixture source named "
        "after the folder; repeatable. WEIGHT (default 1) is relative to --synthetic-web-weight: together they "
        "split the web share of each batch (pretrain: all of it; cofinetune: 1 - robot_share - 0.1 aux)",
    )
    parser.add_argument(
        "--synthetic-web-weight",
        type=float,
        default=1.0,
        help="weight of rt2's built-in synthetic web corpus within the web share (0 = only --web-data)",
    )


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Pre-train the VLM on the synthetic web corpus only (trains + saves the text tokenizer first). "
        "Example: rt2 pretrain --out runs/pretrain  (preset pretrain, pali-nano, 20,000 steps x 32 at lr 1e-3: "
        "~95 min on one core of this machine (112 samples/s); held-out web VQA is at chance until ~4,000 steps, then well above "
        "it, see rt2 vqa --curve); a shorter run: --steps 5000 (~20 min, near chance); smoke: rt2 pretrain --out "
        "runs/pt --preset debug (~12 s)."
    )
    _common(parser)
    add_config_arguments(parser, default_preset="pretrain")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train a robot policy. Example: rt2 train --regime cofinetune --init runs/pretrain --data data/lt "
        "--out runs/cft  (preset cofinetune, 2000 steps x 32: ~12-30 min on this machine); smoke: add "
        "--preset debug (~12 s). --resume continues OUT bit-exactly. The RT-1-style baseline: rt2 train --regime "
        "scratch --preset rt1 --data data/lt --out runs/rt1 (robot data only; 48,000 x 32, the CPU time of --preset "
        "control)."
    )
    parser.add_argument("--regime", choices=REGIME_CHOICES, required=True, help="what to start from and train on")
    parser.add_argument(
        "--init", type=Path, help="pretrained VLM: `rt2 pretrain` run dir or its final/ (finetune, cofinetune)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="LeRobot v3.0 dataset folder: from `rt2 collect`, or any robot's (see --image-key, --action-key)",
    )
    g = parser.add_argument_group("robot dataset columns (rt2.data.robot_columns)")
    g.add_argument(
        "--image-key",
        action="append",
        metavar="KEY",
        help="camera feature, e.g. observation.images.wrist; repeat for several cameras, in order (then --frames "
        "= cameras x history). None: the dataset's only image feature (an error lists them if several)",
    )
    g.add_argument(
        "--action-key",
        metavar="KEY",
        help="numeric action feature; None: action (action.label_int, written verbatim, for `rt2 collect` data)",
    )
    g.add_argument(
        "--action-bins",
        type=int,
        default=256,
        help="uniform bins per float action dimension, written as the integers 0..N-1 (at most 256)",
    )
    g.add_argument(
        "--action-norm",
        choices=("q01_q99", "min_max"),
        default="q01_q99",
        help="range the bins span per dimension, from the dataset's stats (q01_q99: OpenVLA/RT-2 style; values "
        "outside are clipped to the edge bins and the clip rate is reported)",
    )
    _common(parser)
    add_config_arguments(parser, default_preset=None)


# The top-level CLI calls add_arguments/run of the module named in COMMANDS; these two entry points share
# this module and are told apart by the subcommand name.
def add_arguments(parser: argparse.ArgumentParser) -> None:
    if parser.prog.split()[-1] == "pretrain":
        add_pretrain_arguments(parser)
    else:
        add_train_arguments(parser)


def _check_hf_model(regime: str, cfg, init: Path | None) -> bool:
    """True when the run starts from a local Hugging Face folder (``--model hf[-family] --model-path DIR``);
    raises one clear line for the combinations that cannot mean anything."""
    hf_folder = cfg.model.startswith("hf") and not cfg.model.endswith("-tiny")
    if cfg.model_path:
        if not cfg.model.startswith("hf"):
            raise ValueError(
                f"--model-path is a Hugging Face checkpoint folder; use it with --model hf (family read from its "
                f"config.json) or --model hf-paligemma / hf-idefics3 / hf-qwen2-vl / hf-llava, not --model {cfg.model}"
            )
        if not hf_folder:
            raise ValueError(
                f"--model {cfg.model} is a random tiny model built in memory; drop --model-path, or use --model hf "
                "to load the folder"
            )
        if init is not None:
            raise ValueError(
                "--init and --model-path both name the model to start from; give one: --init RUN (an rt2 run) or "
                "--model-path DIR (a Hugging Face checkpoint folder)"
            )
        if regime == "scratch":
            raise ValueError(
                "--regime scratch trains from random weights, but --model-path is a pretrained checkpoint; use "
                "--regime finetune or cofinetune with it"
            )
        return True
    if hf_folder and init is None:
        raise ValueError(
            f"--model {cfg.model} loads a local checkpoint folder: add --model-path DIR (a folder with config.json, "
            "weights and tokenizer, e.g. from `hf download google/paligemma2-3b-pt-224 --local-dir DIR`)"
        )
    return False


def _hf_model(cfg, n_frames: int, atok, key: str | None, corpus):
    """A VLA on the HF checkpoint at ``cfg.model_path``. Action integers are the tokenizer's own number tokens when
    every one is a single token (``numeric``, RT-2 / PaLI-X style); otherwise (Gemma splits digits) the least used
    tokens of ``corpus()`` -- the training text -- are taken over (``least_used``, PaLM-E style)."""
    from rt2.actions import ActionTokenizer, ActionVocab
    from rt2.models import VLA
    from rt2.models.registry import build_backbone

    path = Path(cfg.model_path).expanduser()
    bb = build_backbone(cfg.model, None, path=str(path), n_frames=n_frames)
    tok = atok if isinstance(atok, ActionTokenizer) else ActionTokenizer(atok)
    try:
        ActionVocab.numeric(bb.tokenizer, tok)
        vocab, texts = "numeric", None
    except ValueError:
        vocab, texts = "least_used", corpus()
    return VLA.build(bb, None, action_space=tok, norm_stats_key=key, vocab=vocab, corpus=texts), str(path)


def _build_model(regime: str, args: argparse.Namespace, cfg, robot):
    """(vla, --init / --model-path or None, [(JsonlVQA, weight)]). ``robot``: the RobotData (None for pretrain),
    whose ActionTokenizer the model writes actions with; the web folders are opened once the frame count is known."""
    from rt2.data.prompts import action_prompt
    from rt2.models import VLA, TextTokenizer
    from rt2.train.sources import adapt_action_codec, build_fresh_model, open_web_data, resolve_init, tokenizer_corpus

    atok = robot.tokenizer if robot is not None else "language_table"
    key = robot.norm_stats_key if robot is not None else None
    if _check_hf_model(regime, cfg, args.init):
        web = open_web_data(args.web_data, args.frames)

        def corpus() -> list[str]:  # the text the model trains on, for the least_used action vocab
            extra = [t for vqa, _ in web for t in vqa.texts()]
            extra += [action_prompt(t) for t in (robot.texts() if robot is not None else [])]
            return tokenizer_corpus(args.tokenizer_corpus, seed=cfg.seed) + extra

        vla, path = _hf_model(cfg, args.frames, atok, key, corpus)
        return vla.train(), path, web
    if regime in ("pretrain", "scratch"):
        if args.init is not None:
            raise ValueError(f"--regime {regime} starts from random weights; drop --init (or use finetune/cofinetune)")
        web = open_web_data(args.web_data, args.frames)
        if cfg.model.startswith("hf"):
            return build_fresh_model(cfg.model, None, args.frames, atok, key), None, web
        # The tokenizer is saved in OUT at the start, so --resume rebuilds exactly the same vocabulary.
        tok_path = args.out / "tokenizer.json"
        if args.resume and tok_path.is_file():
            tok = TextTokenizer.load(tok_path)
        else:  # your own instructions and web text are part of the tokenizer corpus
            extra = [t for vqa, _ in web for t in vqa.texts()]
            extra += [action_prompt(t) for t in (robot.texts() if robot is not None else [])]
            tok = TextTokenizer.train(tokenizer_corpus(args.tokenizer_corpus, seed=cfg.seed) + extra, vocab_size=2048)
            args.out.mkdir(parents=True, exist_ok=True)
            tok.save(tok_path)
        return build_fresh_model(cfg.model, tok, args.frames, atok, key), None, web
    if args.init is None:
        raise ValueError(f"--regime {regime} needs --init (the output of `rt2 pretrain`)")
    init = resolve_init(args.init)
    vla = VLA.from_pretrained(init).train()
    if robot is not None:
        vla = adapt_action_codec(vla, robot.tokenizer, robot.norm_stats_key)
    return vla, str(init), open_web_data(args.web_data, int(vla.backbone.n_frames))


def _set_grounding(vla, weight: float, robot) -> None:
    """Turn the auxiliary grounding loss on (``weight`` > 0) or off for this run; the data must carry targets."""
    from rt2.data.robot_columns import GROUNDING_KEY

    if weight <= 0:
        vla.set_grounding(0)
        return
    dims = {None if e.grounding is None else e.grounding.shape[1] for e in robot.episodes}
    if None in dims:
        raise ValueError(
            f"--grounding-weight {weight}: {robot.info['dataset']} has no {GROUNDING_KEY} column (the grounding "
            "target, written by rt2 collect since issue 9); re-collect the data with rt2 collect or train with "
            "--grounding-weight 0"
        )
    if len(dims) != 1:
        raise ValueError(f"episodes disagree on the grounding width: {sorted(dims)}")
    vla.set_grounding(dims.pop(), weight)  # ValueError for backbones without hidden states


def _train(regime: str, args: argparse.Namespace) -> int:
    import torch

    from rt2.data.mixture import MixtureSampler
    from rt2.models.rt1 import is_rt1_model
    from rt2.train.batches import ExampleBatches
    from rt2.train.rt1 import build_rt1, with_rt1_preset
    from rt2.train.sources import build_sources, pixel_stats
    from rt2.train.trainer import Trainer

    preset_for_regime = "pretrain" if regime == "pretrain" else regime
    cfg = config_from_args(args, fallback_preset=preset_for_regime)
    if is_rt1_model(cfg.model):
        cfg = with_rt1_preset(cfg, args)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    args.init = getattr(args, "init", None)
    if regime in ("scratch", "finetune") and args.web_data:
        raise ValueError(f"--web-data mixes web data into training; --regime {regime} is robot-only (use cofinetune)")
    robot = None
    if regime != "pretrain":
        from rt2.data.robot_columns import RobotColumns
        from rt2.train.sources import load_robot_data

        columns = RobotColumns(tuple(args.image_key or ()), args.action_key, None, args.action_bins, args.action_norm)
        robot = load_robot_data(args.data, regime, columns)
    if is_rt1_model(cfg.model):  # the RT-1 baseline (rt2.train.rt1): the same trainer, robot data only
        model, init, web = build_rt1(regime, args, cfg, robot), None, []
        bb = model  # the network itself has image_size, n_frames and set_image_norm
    else:
        model, init, web = _build_model(regime, args, cfg, robot)
        if regime != "pretrain":
            _set_grounding(model, cfg.grounding_weight, robot)
        if regime != "pretrain":  # the answer format travels with the checkpoint: Policy decodes what was trained
            model.config = dataclasses.replace(model.config, action_format=cfg.action_format)
        if init is not None and not cfg.model_path:  # the architecture comes from --init; config.json tells the truth
            cfg = dataclasses.replace(cfg, model=model.config.backbone)
        bb = model.backbone
    sources, weights, info = build_sources(
        regime,
        image_size=tuple(bb.image_size),
        n_frames=int(bb.n_frames),
        data=getattr(args, "data", None),
        robot_share=cfg.robot_share,
        point_share=cfg.point_share,
        plan=(cfg.plan_dropout, cfg.plan_noise) if cfg.action_format == "plan" and regime != "pretrain" else None,
        seed=cfg.seed,
        robot=robot,
        web_data=web,
        synthetic_web_weight=args.synthetic_web_weight,
    )
    if init is None and hasattr(bb, "set_image_norm"):
        # A fresh built-in model normalizes pixels with its own training data's statistics (kept in its config, so
        # eval and serving use the same). Like the tokenizer, they are saved in OUT first: --resume must rebuild
        # exactly the same transform, and the checkpoint's tensors do not hold it.
        norm_path = args.out / "image_norm.json"
        if args.resume and norm_path.is_file():
            norm = json.loads(norm_path.read_text())
        else:
            norm = pixel_stats(sources, weights, cfg.seed)
            args.out.mkdir(parents=True, exist_ok=True)
            tmp = norm_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(norm, indent=2) + "\n")
            tmp.replace(norm_path)
        bb.set_image_norm(norm["image_mean"], norm["image_std"])
        info["image_norm"] = norm
    info.update(
        init=init, model=cfg.model, params=sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    )

    def batches(micro: int, rank: int, world: int) -> ExampleBatches:
        sampler = MixtureSampler(sources, weights, seed=cfg.seed, batch_size=micro * world)
        if cfg.augment:
            return ExampleBatches(
                sampler, lambda ex, rng: model.encode_examples(ex, augment=True, rng=rng), micro, rank, world, cfg.seed
            )
        return ExampleBatches(sampler, model.encode_examples, micro, rank, world)

    trainer = Trainer(model, cfg, batches, args.out, progress=not args.no_progress, data_info=info)
    if trainer.acc.is_main_process:
        print(
            f"rt2 {regime}: {info['params'] / 1e6:.2f} M params, sources {weights}, {cfg.steps} steps x "
            f"{cfg.batch_size} ({trainer.acc.num_processes} process(es), {trainer.precision}) -> {args.out}",
            file=sys.stderr,
        )
        if "clip_rate" in info:
            print(
                f"rt2 {regime}: cameras {info['image_keys']}, actions {info['action_tokens']} "
                f"(clip rate {info['clip_rate']:.2%}, per dimension {info['clip_rate_per_dim']})",
                file=sys.stderr,
            )
        if "robot_aux" in info:
            print(f"rt2 {regime}: robot_aux {info['robot_aux']}", file=sys.stderr)
    try:
        result = trainer.fit(resume=args.resume, until=args.stop_after)
    finally:
        trainer.close()
    if trainer.acc.is_main_process:
        summary = {
            "regime": regime,
            "final_step": result.final_step,
            "last_loss": result.losses[-1] if result.losses else None,
            "nonfinite_steps": result.nonfinite_steps,
            "samples_per_s": round(result.samples_per_s, 1),
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "export": str(result.export_dir) if result.export_dir else None,
        }
        print(json.dumps(summary))
    return 0


def run(args: argparse.Namespace) -> int:
    import os

    # Before torch (and its OpenMP runtime) is imported: spin-waiting threads collapse on a shared machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    regime = "pretrain" if args.command == "pretrain" else args.regime
    return _train(regime, args)
