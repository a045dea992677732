"""Per-action decode latency of rt2's HF decode loop vs transformers' ``generate()`` on the same weights.

Run::

    rt2 bench decode_hf                                   # tiny random PaliGemma + Idefics3, B 1/8, D 2/8
    rt2 bench decode_hf --families paligemma qwen2_vl llava --reps 20
    rt2 bench decode_hf --path /models/paligemma2-3b-pt-224 --batch 1 --reps 5   # a real local checkpoint

Both sides decode D constrained action tokens (rt1 space for D=8, language_table for D=2; numeric action ids
where the tokenizer spells every integer as one token, else least_used) from the same prepared batch:

* ``loop``: ``rt2.models.decoding.Decoder.actions`` -- the production path: ``HFBackbone.prefill`` + ``step``,
  the text decoder only after the prefill, the ``DynamicCache`` reused, no attention mask when nothing is
  padded, logits only for the legal action rows;
* ``generate``: ``model.generate(max_new_tokens=D, min_new_tokens=D, do_sample=False)`` with a
  ``LogitsProcessor`` masking all but the legal ids at each position.

The emitted tokens must be identical (checked every run). Timing and calibration come from
``bench/_timing.py`` (shared with ``rt2 bench decode``): reps interleaved with alternating order so noise hits
both alike; the ratio reported is the median of per-rep ratios generate/loop (>1 = our loop is faster).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parent))  # bench/ helpers; rt2 bench loads this file by path
from _timing import CALIBRATION, calibrate, interleaved, median_ratio  # noqa: E402

CORPUS = ["Q: what action should the robot take to push the red block to the left? A:"]


def make_mask_processor(transformers, allowed: list[list[int]], start: int):
    class ActionMask(transformers.LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            keep = torch.full_like(scores, float("-inf"))
            keep[:, allowed[input_ids.shape[1] - start]] = 0.0
            return scores + keep

    return ActionMask()


def action_vla(bb, dim: int):
    """A VLA on ``bb`` for D = ``dim``: numeric action ids if the tokenizer has them (tiny BPE), else least_used
    (e.g. Gemma splits digits)."""
    from rt2.models.vla import VLA

    space = "language_table" if dim == 2 else "rt1"
    try:
        return VLA.build(bb, action_space=space, vocab="numeric").eval()
    except ValueError:
        return VLA.build(bb, action_space=space, vocab="least_used", corpus=CORPUS).eval()


def bench_one(bb, batch: int, dim: int, reps: int, rng: np.random.Generator) -> dict[str, float]:
    from rt2.models.decoding import Decoder
    from rt2.models.hf import require

    transformers = require("transformers")
    vla = action_vla(bb, dim)
    decoder = Decoder(vla)
    allowed = [vla.vocab.allowed_ids(t) for t in range(dim)]
    h, w = bb.image_size
    images = [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(bb.n_frames)] for _ in range(batch)]
    inputs = bb.prepare(images, CORPUS * batch)
    gen_kw = bb.fam.model_kwargs(bb.hf_model, inputs, prefill=True)
    gen_kw.pop("position_ids")  # generate() computes its own
    proc = make_mask_processor(transformers, allowed, inputs["input_ids"].shape[1])
    pad = bb.pad_token_id

    def loop() -> torch.Tensor:
        return decoder.actions(inputs)

    def generate() -> torch.Tensor:
        out = bb.hf_model.generate(
            **gen_kw,
            max_new_tokens=dim,
            min_new_tokens=dim,
            do_sample=False,
            logits_processor=[proc],
            eos_token_id=None,
            pad_token_id=pad,
        )
        return out[:, -dim:]

    with torch.inference_mode():
        a, b = loop(), generate()
        if not torch.equal(a, b):
            raise RuntimeError(f"loop and generate() disagree:\n{a}\n{b}")
        times = interleaved({"loop": loop, "generate": generate}, reps, warmup=0)
    return {
        "loop_ms": min(times["loop"]),
        "generate_ms": min(times["generate"]),
        "ratio": median_ratio(times["generate"], times["loop"]),
    }


def main(argv: list[str] | None = None) -> int:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as everywhere under `rt2`

    p = Parser(
        prog="rt2 bench decode_hf",
        description=__doc__.split("\n")[0],
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--families", nargs="+", default=["paligemma", "idefics3"], help="tiny families to build")
    p.add_argument("--path", default=None, help="a local HF checkpoint folder instead of tiny random models")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes to time")
    p.add_argument(
        "--dims", nargs="+", type=int, default=[2, 8], choices=[2, 8], help="action dims: 2 language_table, 8 rt1"
    )
    p.add_argument("--reps", type=int, default=15, help="timed repetitions per variant (interleaved)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from rt2.models.registry import build_backbone

    rng = np.random.default_rng(args.seed)
    if args.path:
        models = {"checkpoint": build_backbone("hf", path=args.path)}
    else:
        from rt2.models.hf_tiny import write_tiny_checkpoint

        tmp = tempfile.mkdtemp(prefix="rt2-bench-hf-")
        models = {f: build_backbone("hf", path=str(write_tiny_checkpoint(f"{tmp}/{f}", f))) for f in args.families}
    print(f"threads={args.threads} reps={args.reps} calibration ({CALIBRATION}): {calibrate():.0f} ms")
    print(f"{'model':<12} {'B':>3} {'D':>3} {'loop ms':>9} {'generate ms':>12} {'generate/loop':>14}")
    worst = float("inf")
    for name, bb in models.items():
        bb.eval()
        for batch in args.batch:
            for dim in args.dims:
                r = bench_one(bb, batch, dim, args.reps, rng)
                worst = min(worst, r["ratio"])
                print(
                    f"{name:<12} {batch:>3} {dim:>3} {r['loop_ms']:>9.1f} {r['generate_ms']:>12.1f} "
                    f"{r['ratio']:>13.2f}x"
                )
    print(f"calibration after: {calibrate():.0f} ms; lowest ratio {worst:.2f}x (goal >= 1.2x)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
