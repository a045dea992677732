"""``rt2 bench decode``: per-action decode latency of the built-in backbone, as ratios measured in one run.

For D = 2 (language_table) and D = 8 (rt1), batch 1 and 8, random-init pali-tiny, it times (interleaved
round-robin, min and median over reps):

* ``floor``   raw backbone calls on prepared inputs: prefill + (D-1) single-token steps with a full-vocabulary
              argmax (the bare forward-pass cost of producing D tokens);
* ``decoder`` rt2.models.decoding.Decoder.actions on the same prepared inputs (constrained, action-only head);
* ``policy``  Policy.predict_action_batch end to end (image transform, prompt, tokenize, decode, bins -> floats);
* ``int8``    the same Policy call with quantize="int8".

Ratios: decoder/floor and policy/floor (goal <= 1.15), int8/policy (speed-up). With ``--hf`` (default: the
tiny random PaliGemma if transformers is installed) it also compares our loop over the HF backbone to
``generate()`` with an action-id logits processor. A calibration figure (50 fp32 512^3 matmuls) is printed
because this machine is shared: compare runs only at similar calibration.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def _calibration() -> float:
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    t = time.perf_counter()
    for _ in range(50):
        a @ b
    return (time.perf_counter() - t) * 1e3


def _interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 2) -> dict[str, list[float]]:
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t) * 1e3)
    return times


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


def _hf_generate(backbone, inputs, allowed: list[int], D: int) -> Callable[[], object]:
    from transformers import LogitsProcessor, LogitsProcessorList

    class OnlyActions(LogitsProcessor):
        def __init__(self) -> None:
            self.mask = None

        def __call__(self, input_ids, scores):
            if self.mask is None or self.mask.shape[-1] != scores.shape[-1]:
                self.mask = torch.full((scores.shape[-1],), float("-inf"))
                self.mask[allowed] = 0.0
            return scores + self.mask

    kw = {k: v for k, v in inputs.items() if k != "labels"}
    procs = LogitsProcessorList([OnlyActions()])
    model = backbone.hf_model

    @torch.inference_mode()
    def run():
        return model.generate(
            **kw, max_new_tokens=D, min_new_tokens=D, do_sample=False, logits_processor=procs, eos_token_id=None
        )

    return run


def _fmt(ts: list[float]) -> str:
    return f"{min(ts):7.2f} / {statistics.median(ts):7.2f}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rt2 bench decode", description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=15, help="timed repetitions per variant (interleaved)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--backbone", default="pali-tiny", help="pali-tiny or pali-small")
    p.add_argument("--no-int8", action="store_true", help="skip the dynamic int8 comparison")
    p.add_argument(
        "--hf",
        default="auto",
        help="HF backbone for the generate() comparison ('auto' = hf-paligemma-tiny if transformers is installed, 'none' to skip)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from rt2.data.prompts import action_prompt
    from rt2.models import VLA, TextTokenizer
    from rt2.models.decoding import Decoder
    from rt2.policy import Policy

    tok = TextTokenizer.train(_corpus(), vocab_size=2048)
    print(f"rt2 bench decode: {args.backbone}, threads={args.threads}, reps={args.reps}, torch {torch.__version__}")
    print(f"calibration (50 fp32 512^3 matmuls): {_calibration():.1f} ms  (~70 idle at 2 threads, ~150 at 1)")
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
            t = _interleaved(fns, args.reps)
            mins = {k: min(v) for k, v in t.items()}
            print(f"  B={B}: ms per call (min / median)")
            for k, v in t.items():
                print(f"    {k:8s} {_fmt(v)}   per action {min(v) / B:6.2f} ms")
            line = (
                f"    ratios (min): decoder/floor {mins['decoder'] / mins['floor']:.3f}, "
                f"policy/floor {mins['policy'] / mins['floor']:.3f}"
            )
            if "int8" in mins:
                line += f", int8 speed-up policy/int8 {mins['policy'] / mins['int8']:.2f}x"
            print(line)
            rows.append((space, B, mins))

    if args.hf != "none":
        _hf_section(args, rng)
    return 0


def _hf_section(args, rng) -> None:
    name = "hf-paligemma-tiny" if args.hf == "auto" else args.hf
    try:
        from rt2.models import VLA, VLAConfig, build_backbone
        from rt2.models.decoding import Decoder

        bb = build_backbone(name).eval()
    except (ImportError, ValueError) as e:
        print(f"\nHF generate() comparison skipped ({name}): {e}")
        return
    from rt2.actions import ActionTokenizer
    from rt2.data.prompts import action_prompt

    print(f"\nHF {name}: {bb.num_parameters / 1e6:.2f} M params; our loop vs generate() with an action-id processor")
    for space in ("language_table", "rt1"):
        atok = ActionTokenizer(space)
        try:
            vocab = bb.make_action_vocab(atok, _corpus())
            vla = VLA(bb, atok, vocab, VLAConfig(backbone=name))
        except Exception as e:  # report, do not crash the pali results above
            print(f"  {space}: could not build an action vocab for {name}: {type(e).__name__}: {e}")
            continue
        dec, D = Decoder(vla), vla.action_dim
        for B in args.batches:
            h, w = bb.image_size
            obs = [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(bb.n_frames)] for _ in range(B)]
            inputs = bb.prepare(obs, [action_prompt("push the red star left")] * B)
            fns = {
                "floor": _floor(bb, inputs, D),
                "decoder": lambda inputs=inputs, dec=dec: dec.actions(inputs),
                "generate": _hf_generate(bb, inputs, vocab.action_ids, D),
            }
            try:
                t = _interleaved(fns, args.reps)
            except Exception as e:  # report, do not hide: generate() kwargs differ per family
                print(f"  {space} B={B}: generate() failed: {type(e).__name__}: {e}")
                continue
            m = {k: min(v) for k, v in t.items()}
            print(
                f"  {space} D={D} B={B}: floor {_fmt(t['floor'])}, decoder {_fmt(t['decoder'])}, generate "
                f"{_fmt(t['generate'])} ms; generate/decoder {m['generate'] / m['decoder']:.2f}x, "
                f"decoder/floor {m['decoder'] / m['floor']:.3f}"
            )


if __name__ == "__main__":  # pragma: no cover
    import sys

    raise SystemExit(main(sys.argv[1:]))
