"""``rt2 bench quantize [--policy DIR]``: dynamic int8 vs fp32 for CPU serving, in ONE table from ONE run.

    rt2 bench quantize                                   # the shipped policy; ~3-8 min (episodes 2 per task)
    rt2 bench quantize --policy runs/cft/final --episodes 10
    rt2 bench quantize --policy DIR --quick              # ~20 s: B=1 only, 3 reps, 16 observations, 1 short episode

Rows of the table:

* **latency** of ``Policy.predict_action_batch`` per call at B=1 and B=8 (real rendered tabletop frames),
  fp32 and int8 interleaved round by round (``bench/_timing.py``); ratio = median over rounds of fp32/int8.
* **action agreement**: the fraction of identical action tokens (and of identical whole actions) between the two
  on a fixed set of observations (seeded resets of the ``seen`` and emergent suites, plus a few oracle steps).
* **success** on the ``seen`` suite and the emergent suites, both policies on identical seeds
  (``rt2.eval.run_suite``), paired difference int8 - fp32 with Newcombe's 95 % CI (``rt2.eval.stats``).

Goal (issue "Ship it"): >= 1.8x faster, <= 2 points of success lost. int8 is ``torch.ao`` dynamic quantization
of every ``nn.Linear`` (``Policy(quantize="int8")``); it speeds up only the Linear layers, so the ceiling of the
end-to-end ratio is set by the share of time outside them (GELU, attention, the conv stem), which the table shows
as "fp32 time in nn.Linear" from the torch profiler.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parent))  # bench/ helpers; rt2 bench loads this file by path
from _timing import CALIBRATION, calibrate, fmt, interleaved, median_ratio  # noqa: E402

EMERGENT = ("emergent_symbols", "emergent_multilingual", "emergent_reasoning")


def observations(n: int, n_frames: int, seed: int = 0) -> tuple[list[list[np.ndarray]], list[str]]:
    """``n`` fixed observations: seeded episode starts of the seen + emergent suites, then 3 oracle steps in."""
    from rt2.eval.suites import get_suite, reset_episode
    from rt2.sim.env import TabletopEnv
    from rt2.sim.oracle import ScriptedOracle

    tasks = [(s, t) for s in ("seen", *EMERGENT) for t in get_suite(s).tasks]
    env = TabletopEnv()
    images, instructions = [], []
    for i in range(n):
        suite, task = tasks[i % len(tasks)]
        obs, _info, _seed = reset_episode(env, suite, task, seed, i // len(tasks))
        frames = [obs["image"]]
        oracle = ScriptedOracle()
        for _ in range(3 if i % 2 else 0):  # half at the start, half a few steps in (block already moving)
            obs, *_ = env.step(oracle.act(env.state))
            frames.append(obs["image"])
        images.append(frames[-n_frames:])
        instructions.append(obs["instruction"])
    env.close()
    return images, instructions


def linear_share(policy, images, instructions) -> float:
    """Fraction of profiled CPU time in Linear kernels (addmm/mm/linear) for one batched call."""
    from torch.profiler import profile

    policy.predict_action_batch(images, instructions)
    with profile() as prof:
        policy.predict_action_batch(images, instructions)
    ev = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ev)
    lin = sum(e.self_cpu_time_total for e in ev if e.key in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul"))
    return lin / max(total, 1e-9)


def agreement(p32, p8, images, instructions, batch: int = 8) -> tuple[float, float, int]:
    """-> (fraction of identical action tokens, fraction of identical actions, number of observations)."""
    same_tok = same_act = 0
    D = p32.action_dim
    for i in range(0, len(images), batch):
        ims, ins = images[i : i + batch], instructions[i : i + batch]
        _, t32 = p32.predict_action_batch(ims, ins)
        _, t8 = p8.predict_action_batch(ims, ins)
        for a, b in zip(t32, t8, strict=True):
            ta, tb = a.split(), b.split()
            same_tok += sum(x == y for x, y in zip(ta, tb, strict=True))
            same_act += int(ta == tb)
    n = len(images)
    return same_tok / (n * D), same_act / n, n


def main(argv: list[str]) -> int:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as everywhere under `rt2`

    p = Parser(
        prog="rt2 bench quantize",
        description=__doc__.split("\n")[0] + " (~3-8 min with the defaults; --quick ~20 s)",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--policy", default=None, help="checkpoint dir (default: the policy shipped with rt2)")
    p.add_argument("--episodes", type=int, default=2, help="episodes per task for the success rows")
    p.add_argument("--max-steps", type=int, default=200, help="step cap per episode (protocol: 200)")
    p.add_argument("--suites", default="seen," + ",".join(EMERGENT), help="suites for the success rows")
    p.add_argument("--reps", type=int, default=15, help="timed rounds per variant (interleaved)")
    p.add_argument("--observations", type=int, default=64, help="observations for the agreement row")
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS", "1")),
        help="torch threads (from $OMP_NUM_THREADS)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: B=1, 3 reps, 16 observations, 1 short episode")
    p.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.observations, args.episodes, args.max_steps, args.suites = 3, 16, 1, 5, "seen"
    torch.set_num_threads(args.threads)

    from rich.console import Console
    from rich.table import Table

    from rt2.eval.report import atomic_write_json
    from rt2.eval.runner import ModelAdapter, RunConfig, run_suite
    from rt2.eval.stats import paired_tables, summarize
    from rt2.eval.suites import resolve_suites
    from rt2.policy import Policy
    from rt2.policy.default import resolve_policy

    console = Console()
    try:
        spec = resolve_policy(args.policy)
        suites = resolve_suites(args.suites)
    except ValueError as e:
        print(f"rt2 bench quantize: error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    p32, p8 = Policy.from_pretrained(spec), Policy.from_pretrained(spec, quantize="int8")
    images, instructions = observations(args.observations, p32.n_frames)
    table = Table(title=f"fp32 vs dynamic int8 (torch.ao): {spec}")
    for col in ("measure", "fp32", "int8", "int8 vs fp32", "goal"):
        table.add_column(col)
    cal = calibrate()
    result: dict = {"policy": spec, "threads": args.threads, "calibration_ms": cal, "latency": {}, "success": {}}
    for B in (1,) if args.quick else (1, 8):
        ims, ins = images[:B], instructions[:B]
        t = interleaved(
            {
                "fp32": lambda i=ims, s=ins: p32.predict_action_batch(i, s),
                "int8": lambda i=ims, s=ins: p8.predict_action_batch(i, s),
            },
            reps=args.reps,
        )
        ratio = median_ratio(t["fp32"], t["int8"])
        result["latency"][f"B{B}"] = {"fp32_ms": t["fp32"], "int8_ms": t["int8"], "speedup": ratio}
        table.add_row(f"ms per call, B={B} (min / median)", fmt(t["fp32"]), fmt(t["int8"]), f"{ratio:.2f}x faster",
                      ">= 1.8x")  # fmt: skip
    share = linear_share(p32, images[:8], instructions[:8])
    table.add_row(
        "fp32 time in nn.Linear (B=8)", f"{100 * share:.0f} %", "", f"{1 / (1 - share):.2f}x if Linear were free", ""
    )
    tok, act, n = agreement(p32, p8, images, instructions)
    result.update(linear_share=share, token_agreement=tok, action_agreement=act, observations=n)
    table.add_row(f"identical action tokens ({n} obs.)", "", "", f"{100 * tok:.1f} %", "")
    table.add_row(f"identical actions ({n} obs.)", "", "", f"{100 * act:.1f} %", "")
    cfg = RunConfig(episodes=args.episodes, num_envs=8, seed=0, max_steps=args.max_steps)
    rows: dict[str, list[dict]] = {"fp32": [], "int8": []}
    with console.status("closed-loop episodes") as status:
        for suite in suites:
            for name, pol in (("fp32", p32), ("int8", p8)):
                status.update(f"closed-loop episodes: {suite.name} {name}")
                rows[name] += run_suite(ModelAdapter(pol, name=name), suite, cfg).rows
    groups = [("seen", ["seen"]), ("emergent", [s.name for s in suites if s.name.startswith("emergent")])]
    for label, names in groups:
        a = [r for r in rows["int8"] if r["suite"] in names]
        b = [r for r in rows["fp32"] if r["suite"] in names]
        if not a:
            continue
        d = paired_tables(a, b)["overall"]
        s32, s8 = summarize(b), summarize(a)
        result["success"][label] = {"fp32": s32, "int8": s8, "paired_int8_minus_fp32": d}
        table.add_row(
            f"success, {label} ({len(a)} paired episodes)", f"{100 * s32['success_rate']:.1f} %",
            f"{100 * s8['success_rate']:.1f} %",
            f"{100 * d['diff']:+.1f} pp [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]", ">= -2 pp",
        )  # fmt: skip
    console.print(table)
    result["wall_time_s"] = time.perf_counter() - t0
    if args.json:
        console.print(f"wrote {atomic_write_json(args.json, result)}")
    console.print(
        f"threads {args.threads}; calibration {CALIBRATION}: {cal:.0f} ms; {args.episodes} episode(s) per task, "
        f"{args.max_steps}-step cap; wall time {time.perf_counter() - t0:.0f} s"
    )
    return 0
