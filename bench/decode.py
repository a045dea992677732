"""``rt2 bench decode``: per-action decode latency of the built-in backbone, as ratios measured in one run.

For D = 2 (language_table) and D = 8 (rt1), batch 1 and 8, a random-init built-in preset (``--backbone``, default
``pali-nano``; ``pali-tiny`` and ``pali-small`` also exist), it times (interleaved
round-robin, min and median over reps):

* ``floor``   raw backbone calls on prepared inputs: prefill + (D-1) single-token steps with a full-vocabulary
              argmax (the bare forward-pass cost of producing D tokens);
* ``decoder`` rt2.models.decoding.Decoder.actions on the same prepared inputs (constrained, action-only head);
* ``policy``  Policy.predict_action_batch end to end (image transform, prompt, tokenize, decode, bins -> floats);
* ``int8``    the same Policy call with quantize="int8".

Ratios: decoder/floor and policy/floor (goal <= 1.15), int8/policy (speed-up). Hugging Face backbones (our
loop vs ``generate()``): ``rt2 bench decode_hf``. Timing and calibration come from ``bench/_timing.py`` (shared
with decode_hf); compare runs only at similar calibration.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parent))  # bench/ helpers; rt2 bench loads this file by path
from _timing import CALIBRATION, calibrate, fmt, interleaved  # noqa: E402


def _corpus() -> list[str]:
    rng = np.random.default_rng(0)
    colors, shapes = ["red", "blue", "green", "yellow"], ["cube", "star", "moon", "pentagon", "heart"]
    return [
        f"push the {rng.choice(colors)} {rng.choice(shapes)} to the {rng.choice(['left', 'right', 'top'])} of the board"
        for _ in range(2000)
    ]


def _floor(backbone, inputs, D: int) -> Callable[[], object]:
    @torch.inference_mode()
    def run():
        logits, cache = backbone.prefill(inputs, max_new_tokens=D - 1)
        for d in range(D):
            nxt = logits.argmax(-1)
            if d + 1 < D:
                logits, cache = backbone.step(nxt, cache)
        return nxt

    return run


def _bench_checkpoint(args) -> int:
    """Time a trained checkpoint as it answers: direct actions (floor = prefill + D - 1 steps) or a grounded plan
    then the action (floor = prefill + T - 1 steps, T = the longest answer in the batch, measured first)."""
    from rt2.data.prompts import action_prompt, cot_prompt
    from rt2.policy import Policy

    pol = Policy.from_pretrained(args.policy)
    vla, bb, dec = pol.vla, pol.vla.backbone, pol.decoder
    fmt_ = pol.action_format
    print(
        f"rt2 bench decode: {args.policy} ({bb.name}, action_format {fmt_}), threads={args.threads}, reps={args.reps}"
    )
    print(f"calibration ({CALIBRATION}): {calibrate():.1f} ms  (~70 idle at 2 threads, ~150 at 1)")
    rng = np.random.default_rng(0)
    names = ["red moon", "blue cube", "green star", "yellow pentagon"]
    for B in args.batches:
        h, w = bb.image_size
        obs = [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8)] for _ in range(B)]
        instr = [f"push the {names[b % 4]} to the {names[(b + 1) % 4]}" for b in range(B)]
        if fmt_ == "plan":
            inputs = bb.prepare(obs, [cot_prompt(i) for i in instr])
            plans, _ = dec.plan_and_act(inputs, slots=True)
            T = max(len(p) for p in plans) + len(dec.marker) + vla.action_dim
            fns = {
                "floor": _floor(bb, inputs, T),
                "decoder": lambda inputs=inputs: dec.plan_and_act(inputs, slots=True),
            }
        else:
            inputs = bb.prepare(obs, [action_prompt(i) for i in instr])
            T = vla.action_dim
            fns = {"floor": _floor(bb, inputs, T), "decoder": lambda inputs=inputs: dec.actions(inputs)}
        fns["policy"] = lambda obs=obs, instr=instr: pol.predict_action_batch(obs, instr)
        t = interleaved(fns, args.reps)
        mins = {k: min(v) for k, v in t.items()}
        print(f"  B={B}: {T} answer tokens; ms per call (min / median)")
        for k, v in t.items():
            print(f"    {k:8s} {fmt(v)}   per action {min(v) / B:6.2f} ms")
        print(
            f"    ratios (min): decoder/floor {mins['decoder'] / mins['floor']:.3f}, "
            f"policy/floor {mins['policy'] / mins['floor']:.3f}; policy {1e3 * B / mins['policy']:.0f} actions/s"
        )
    print(f"calibration after: {calibrate():.1f} ms")
    return 0


def main(argv: list[str]) -> int:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as everywhere under `rt2`

    p = Parser(
        prog="rt2 bench decode",
        # runtime measured with the defaults (pali-nano, 1 thread) on a 2-core CPU under load ~2
        description=__doc__.split("\n")[0] + " (~8 s with the defaults)",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--reps", type=int, default=15, help="timed repetitions per variant (interleaved)")
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS", "1")),
        help="torch threads (from $OMP_NUM_THREADS)",
    )
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes to time")
    p.add_argument(
        "--backbone", default="pali-nano", choices=("pali-nano", "pali-tiny", "pali-small"), help="built-in preset"
    )
    p.add_argument("--no-int8", action="store_true", help="skip the dynamic int8 comparison")
    p.add_argument(
        "--policy",
        help="a checkpoint (e.g. the shipped one: src/rt2/assets/default_policy) timed in its own action format; "
        "a plan policy's floor is the forward passes of the whole answer it writes (plan, marker, action)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.policy:
        return _bench_checkpoint(args)

    from rt2.data.prompts import action_prompt
    from rt2.models import VLA, TextTokenizer
    from rt2.models.decoding import Decoder
    from rt2.policy import Policy

    tok = TextTokenizer.train(_corpus(), vocab_size=2048)
    print(f"rt2 bench decode: {args.backbone}, threads={args.threads}, reps={args.reps}, torch {torch.__version__}")
    print(f"calibration ({CALIBRATION}): {calibrate():.1f} ms  (~70 idle at 2 threads, ~150 at 1)")
    rng = np.random.default_rng(0)
    rows = []
    for space in ("language_table", "rt1"):
        vla = VLA.build(args.backbone, tok, action_space=space, vocab="numeric").eval()
        D = vla.action_dim
        bb = vla.backbone
        print(f"\n{space}: D={D}, {bb.num_parameters / 1e6:.2f} M params, {bb.config.num_image_tokens} image tokens")
        pol = Policy(vla)
        polq = None if args.no_int8 else Policy(VLA.build(bb, action_space=space, vocab="numeric"), quantize="int8")
        dec = Decoder(vla)
        for B in args.batches:
            h, w = bb.image_size
            obs = [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8)] for _ in range(B)]
            instr = [f"push the red star to the {['left', 'right', 'top of the board'][b % 3]}" for b in range(B)]
            inputs = bb.prepare(obs, [action_prompt(i) for i in instr])
            fns = {
                "floor": _floor(bb, inputs, D),
                "decoder": lambda inputs=inputs, dec=dec: dec.actions(inputs),
                "policy": lambda obs=obs, instr=instr, pol=pol: pol.predict_action_batch(obs, instr),
            }
            if polq is not None:
                fns["int8"] = lambda obs=obs, instr=instr, polq=polq: polq.predict_action_batch(obs, instr)
            t = interleaved(fns, args.reps)
            mins = {k: min(v) for k, v in t.items()}
            print(f"  B={B}: ms per call (min / median)")
            for k, v in t.items():
                print(f"    {k:8s} {fmt(v)}   per action {min(v) / B:6.2f} ms")
            line = (
                f"    ratios (min): decoder/floor {mins['decoder'] / mins['floor']:.3f}, "
                f"policy/floor {mins['policy'] / mins['floor']:.3f}"
            )
            if "int8" in mins:
                line += f", int8 speed-up policy/int8 {mins['policy'] / mins['int8']:.2f}x"
            print(line)
            rows.append((space, B, mins))

    print(f"calibration after: {calibrate():.1f} ms")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
