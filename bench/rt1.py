"""``rt2 bench rt1``: training cost of the RT-1 baseline against ``pali-nano``, the compute-parity measurement
behind the ``rt1`` preset's step count.

    OMP_NUM_THREADS=1 rt2 bench rt1                  # ~1-2 min on one core
    OMP_NUM_THREADS=1 rt2 bench rt1 --rt1 rt1 --frames 2 --rounds 8

What is measured: full trainer steps (``rt2.train.Trainer._train_step``: collate + forward, loss, backward,
clipping, AdamW) of both models on the same 32 Language-Table action examples with grounding targets, each model
with its grounding head on (as ``--preset control`` and ``--preset rt1`` train them), at the precision the
presets resolve to (bf16 autocast on CPUs with avx512_bf16, else fp32). Collation is inside the timed step
(``encode_examples`` every step: the shared image transform, tokenization), as in a real run; sampling examples
from the dataset is not (it is the same ``RobotActions`` for both). Steps alternate between the models in every
round, order reversed every other round; the figure is the median over rounds of the per-round ratio, so a slow
phase of the shared machine hits both alike.

Printed: samples/s of each, the ratio RT-1 / pali-nano, and the RT-1 step count whose CPU time equals a
``--preset control`` run (18,000 steps x 32 of pali-nano). The control run also draws web items (rendered per
item) and pointing questions, which makes its real steps somewhat slower than these action-only ones: the parity
figure is therefore conservative (it gives RT-1 no more compute than the VLA had).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

CONTROL_STEPS = 18000  # rt2.train.config.PRESETS["control"].steps


def _examples(n: int, image_size: tuple[int, int], n_frames: int, seed: int = 0):
    import numpy as np

    from rt2.data.prompts import Example
    from rt2.sim.env import EnvConfig, TabletopEnv

    env = TabletopEnv(EnvConfig(image_size=tuple(image_size)))
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        bins = rng.integers(-10, 11, size=2).astype(np.int64)
        ex = Example.action([obs["image"]] * n_frames, obs["instruction"], bins, f"{bins[0]} {bins[1]}")
        out.append(dataclasses.replace(ex, grounding=rng.uniform(-1, 1, 6).astype(np.float32)))
    return out


def main(argv: list[str]) -> int:
    from rt2.cli import DefaultsFormatter, Parser

    p = Parser(
        prog="rt2 bench rt1",
        description=__doc__.split("\n\n")[0] + " Runtime: ~1-2 min at OMP_NUM_THREADS=1.",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--rt1", default="rt1", help="RT-1 preset (rt2.models.rt1.RT1_PRESETS)")
    p.add_argument("--vla", default="pali-nano", help="VLA backbone it is compared with")
    p.add_argument("--batch", type=int, default=32, help="examples per training step (both models)")
    p.add_argument("--frames", type=int, default=1, help="frames per observation (both models)")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    p.add_argument("--steps", type=int, default=3, help="timed steps per model per round")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the presets' runs use 1)")
    args = p.parse_args(argv)

    import torch

    sys.path.append(str(Path(__file__).resolve().parent))
    from _timing import CALIBRATION, calibrate, interleaved, median_ratio
    from rt2.actions import ActionSpace, ActionTokenizer
    from rt2.models import VLA, TextTokenizer
    from rt2.models.rt1 import RT1
    from rt2.train.config import apply_overrides, preset
    from rt2.train.sources import instruction_corpus
    from rt2.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tok = TextTokenizer.train(instruction_corpus(n_scenes=20), vocab_size=1024)
    torch.manual_seed(0)
    atok = ActionTokenizer(ActionSpace.language_table())
    vla = VLA.build(args.vla, tok, action_space=atok, n_frames=args.frames, grounding_dim=6)
    rt1 = RT1.build(args.rt1, tok, atok, n_frames=args.frames, grounding_dim=6)
    examples = _examples(args.batch, rt1.image_size, args.frames)
    models = {args.vla: vla, args.rt1: rt1}

    class Collate:  # encodes the same examples every step, as a run's ExampleBatches does
        def __init__(self, model):
            self.model = model

        def next_batch(self):
            return self.model.encode_examples(examples)

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    trainers = {}
    for name, model in models.items():
        cfg = apply_overrides(preset("debug"), {"batch_size": args.batch, "precision": "auto", "steps": 10**6})
        trainers[name] = Trainer(model, cfg, Collate(model), tempfile.mkdtemp(prefix="rt2-bench-rt1-"), progress=False)
    params = {n: sum(p.numel() for p in {id(p): p for p in m.parameters()}.values()) for n, m in models.items()}
    precision = trainers[args.rt1].precision
    print(
        f"threads {torch.get_num_threads()}, batch {args.batch}, frames {args.frames}, precision {precision}; "
        + ", ".join(f"{n} {v / 1e6:.2f} M params" for n, v in params.items())
        + f"; setup {time.perf_counter() - t0:.1f} s; calibration ({CALIBRATION}) {calibrate():.0f} ms"
    )

    def steps(tr):
        return lambda: [tr._train_step() for _ in range(args.steps)]

    ms = interleaved({n: steps(tr) for n, tr in trainers.items()}, reps=args.rounds, warmup=1)
    per_step = {n: [t / args.steps for t in v] for n, v in ms.items()}
    sps = {n: args.batch / (statistics.median(v) / 1e3) for n, v in per_step.items()}
    ratio = median_ratio(per_step[args.vla], per_step[args.rt1])  # > 1: RT-1 trains more samples per second
    print(f"\n{'model':>10} {'ms/step (min / median)':>24} {'samples/s':>10}")
    for n, v in per_step.items():
        print(f"{n:>10} {min(v):10.0f} / {statistics.median(v):8.0f} {sps[n]:10.1f}")
    print(f"calibration after: {calibrate():.0f} ms")
    print(
        f"\nRT-1 / {args.vla} samples per CPU-second: {ratio:.2f}x (median of {args.rounds} per-round ratios). "
        f"Compute parity with --preset control ({CONTROL_STEPS} steps x 32 of {args.vla}): "
        f"~{round(CONTROL_STEPS * ratio, -2):.0f} {args.rt1} steps x {args.batch}."
    )
    return 0
