"""``rt2 bench learn``: closed-loop learning curves: block-to-block success against training minutes for the
``scratch``, ``finetune`` and ``cofinetune`` regimes (issue 9), plus ``seen`` success at the end of each budget.

    rt2 bench learn --out runs/learn                          # the reported run: 10 min pretrain + 3 x 30 min
    rt2 bench learn --quick --out /tmp/learn_quick            # wiring test (< 1 min)
    rt2 bench learn --minutes 20 --eval-every 5 --episodes 100 --pretrain-minutes 8 --out runs/learn20

What runs (all real rt2 modules):

1. Data: ``--data-episodes`` DART demonstrations (``ScriptedOracle.act_dart``, sigma cycling over ``--noise``) in
   ``TabletopEnv`` on ``--families``, successful ones kept, as :class:`rt2.data.robot.RobotEpisode`; the block
   positions of every frame are kept too, for in-domain pointing.
2. Pointing (the grounding lever, reference/bc-feasibility.md): ``"where is the red moon?" -> "3 -7"`` on the
   same frames, in the pointing grid of ``rt2.data.web.scene`` (the action integers -10..10), half the time about
   a block the frame's instruction names; ``"where is the robot?"`` comes from ``RobotAux`` (``aux_effector``).
3. Pretraining (reported separately): pointing only, ``--pretrain-minutes`` CPU minutes. ``finetune`` and
   ``cofinetune`` start from the same pretrained weights; ``scratch`` from a fresh init with the same seed.
4. Regimes, each ``--minutes`` CPU minutes on :class:`rt2.train.Trainer` (AdamW, warm-up + cosine, bf16 autocast
   where the CPU has it): ``scratch`` and ``finetune`` = robot actions only; ``cofinetune`` = a
   :class:`rt2.data.mixture.MixtureSampler` of robot actions (``--robot-share``) and pointing (the rest).
5. Every ``--eval-every`` training CPU-minutes the training clock stops and ``rt2.eval.runner.run_suite`` runs
   ``--episodes`` seeded block-to-block episodes (greedy ``Policy.predict_action_batch``, ``--max-steps`` cap,
   identical initial states for every regime and checkpoint); at the end the ``seen`` suite
   (``--seen-episodes`` per family, 5 families).

Grounding options (issue 9's auxiliary loss, off by default): ``--grounding-weight 10`` adds ``10 x MSE`` of a linear
head regressing (effector, pushed block, goal) from the action positions' states; with ``--ground-pointing 1`` the
pointing rows train the same head on (effector, block, block), so pre-training already grounds it;
``--grounding-layer k`` reads the input of text block k instead of the final states; ``--film-positional 1`` makes
the FiLM prompt summary order-aware; ``--regime-lr`` sets the three regimes' lr apart from pre-training's;
``--ground-action 1`` also regresses the clean action / 10 (needs ``--ground-pointing 0``). The measured variants
are in issue 9's notes, e.g.::

    rt2 bench learn --regimes cofinetune --pretrain-minutes 8 --minutes 12 --eval-every 4 --episodes 50 \
        --seen-episodes 0 --grounding-weight 10 --regime-lr 1e-3 --film-positional 1 --grounding-layer 2

Model defaults (``pali-nano``, 1.22 M parameters: vision 128 x 2, text 128 x 3, 36 tokens per 72 x 96 frame, conv
stem 32-64, one frame, lr 5e-4, batch 32, ~270 samples per CPU-second with bf16) and the three input-side inits
that ``rt2.models.pali`` / ``rt2 train`` now apply by default: per-channel pixel normalization from the data (``--image-norm data``),
fan-in init of the patchify conv and the projector (``--input-init fanin``) and 2-D sin-cos patch positions
(``--pos-init sincos``). Measured in the issue-9 notes (sin-cos positions in all three): with the backbone's
default init and 0.5/0.5 normalization the model does not even memorise 64 "where is the robot?" examples in 300
steps (loss 1.33 per answer token); with data normalization it reaches 0.60 in 200 steps, with normalization +
fan-in init 0.08 in 200 steps.

Budgets are *process CPU minutes* of training (``time.process_time``, 1 thread by default), because the machine is
shared; wall minutes and samples are reported next to them. Step counts are fixed up front from a short
calibration (CPU seconds per step of this model and batch), so the cosine schedule ends at the budget; the
measured CPU minutes at each evaluation are what the table shows. Output: a table on stdout, ``learn.json``
(every row, the configuration, the calibration) and ``learn.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

REGIMES = ("scratch", "finetune", "cofinetune")


# ---- data -----------------------------------------------------------------------------------------------------
class Demo:
    """One DART demonstration: the RobotEpisode, the block positions of every frame (for pointing) and the blocks
    the instruction names (pushed block, reference block). A plain class: bench modules load outside sys.modules,
    where @dataclass cannot resolve its own module."""

    def __init__(self, episode, blocks: list[dict[str, tuple[float, float]]], named: tuple[str, ...]) -> None:
        self.episode, self.blocks, self.named = episode, blocks, named


def collect_demos(n: int, families: tuple[str, ...], seed: int, noise: tuple[float, ...], image_size) -> list[Demo]:
    """``n`` successful oracle demonstrations, families round-robin, attempt k seeded by ``(seed, k)``."""
    from rt2.data.robot import RobotEpisode
    from rt2.sim import ScriptedOracle, TabletopEnv
    from rt2.sim.env import EnvConfig
    from rt2.sim.tasks import grounding_state

    env = TabletopEnv(EnvConfig(image_size=tuple(image_size), two_frames=False))
    demos: list[Demo] = []
    k = 0
    while len(demos) < n:
        if k > 20 * n + 100:
            raise RuntimeError(f"the oracle kept failing: {len(demos)} of {n} demonstrations after {k} attempts")
        family = families[k % len(families)]
        rng = np.random.default_rng([seed, k])
        sigma = float(noise[k % len(noise)])
        oracle = ScriptedOracle(noise_units=sigma, seed=int(rng.integers(2**31)))
        obs, info = env.reset(seed=int(rng.integers(2**31)), options={"family": family})
        frames, labels, eff, blocks, ground = [], [], [], [], []
        done = False
        while not done:
            executed, label = oracle.act_dart(env)
            scene = env.state.scene
            frames.append(obs["image"])
            labels.append(label)
            eff.append(scene.effector)
            blocks.append({b.name: (b.x, b.y) for b in scene.blocks})
            ground.append(grounding_state(env.state.task, scene))
            obs, _r, terminated, truncated, info = env.step(executed)
            done = terminated or truncated
        k += 1
        if not info["success"]:
            continue
        spec = info["task"]
        ep = RobotEpisode(
            images=np.stack(frames),
            labels=np.stack(labels).astype(np.int64),
            effector=np.asarray(eff, dtype=np.float64),
            instruction=env.state.instruction,
            success=True,
            spec=spec,
            family=family,
            grounding=np.stack(ground),
        )
        named = tuple(x for x in (spec.block, spec.target_block) if x)
        demos.append(Demo(ep, blocks, named))
    return demos


class BlockPointing:
    """In-domain pointing source: item ``i`` (a pure function of ``(seed, i)``) asks where a block is in one frame
    of a demonstration, ``"where is the {colour shape}?" -> "gx gy"``; with probability ``named_share`` the block
    is one the episode's instruction names, else any block on the board."""

    def __init__(
        self,
        demos: list[Demo],
        n_frames: int,
        seed: int = 0,
        named_share: float = 0.5,
        size: int = 10**6,
        grounded: bool = False,
    ) -> None:
        self.demos, self.n_frames, self.seed, self.named_share, self.size = demos, n_frames, seed, named_share, size
        self.grounded = grounded

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        from rt2.data.prompts import Example, vqa_prompt
        from rt2.data.web.scene import grid_text
        from rt2.sim.tasks import board_unit

        rng = np.random.default_rng([self.seed, 3, int(index) % self.size])
        d = self.demos[int(rng.integers(len(self.demos)))]
        ep = d.episode
        t = int(rng.integers(len(ep)))
        names = d.named if (d.named and rng.random() < self.named_share) else tuple(d.blocks[t])
        name = names[int(rng.integers(len(names)))]
        frames = tuple(ep.images[max(0, t - self.n_frames + 1 + i)] for i in range(self.n_frames))
        ex = Example.text(frames, vqa_prompt(f"where is the {name}?"), grid_text(*d.blocks[t][name]), "point")
        if not self.grounded:
            return ex
        # the grounding loss on pointing rows: (effector, block, block), the slots an action row fills with
        # (effector, pushed block, goal); precise positions in the answer's state, not just the 21-cell grid
        eff = ep.grounding[t][:2]
        return dataclasses.replace(ex, grounding=np.concatenate([eff, np.tile(board_unit(d.blocks[t][name]), 2)]))


def tokenizer_corpus(demos: list[Demo]) -> list[str]:
    from rt2.data.prompts import action_prompt, vqa_prompt

    names = sorted({n for d in demos for n in d.blocks[0]})
    lines = [action_prompt(d.episode.instruction) for d in demos]
    lines += [vqa_prompt(f"where is the {n}?") for n in names] * 10
    lines += [vqa_prompt(q) for q in ("where is the robot?", "what instruction was the robot following?")] * 10
    return lines


# ---- model / training -----------------------------------------------------------------------------------------
def pixel_stats(demos: list[Demo], n: int = 200) -> dict:
    """Per-channel mean/std of the demonstrations' frames in [0, 1] (every 5th frame of the first ``n`` episodes).
    Tabletop frames are dark and low-contrast (mean ~0.22, std ~0.09), so the default (0.5, 0.5) normalization
    feeds the network inputs of std ~0.18 and the image-dependent part of the tokens is tiny. (``rt2 train`` does the
    same for a fresh model with ``rt2.train.sources.pixel_stats`` over its mixture.)"""
    px = np.concatenate([d.episode.images[::5].reshape(-1, 3) for d in demos[:n]]).astype(np.float64) / 255.0
    return {"image_mean": tuple(px.mean(0).tolist()), "image_std": tuple(np.maximum(px.std(0), 1e-3).tolist())}


def build_model(tokenizer, args, norm: dict | None = None):
    import torch

    from rt2.models.vla import VLA

    torch.manual_seed(args.seed)
    over = dict(
        **(norm or {}),
        n_frames=args.frames,
        vision_width=args.vision_width,
        vision_layers=args.vision_layers,
        vision_heads=max(1, args.vision_width // 32),
        text_width=args.text_width,
        text_layers=args.text_layers,
        text_heads=max(1, args.text_width // 64),
        stem_channels=tuple(args.stem),
        keypoints=args.keypoints,
        keypoint_film=bool(args.keypoint_film and args.keypoints),
        film_positional=bool(args.film_positional and args.keypoint_film and args.keypoints),
        patch_size=tuple(args.patch),
        image_size=tuple(args.image_size),
        max_text_len=64,
    )
    over.update(pos_init=args.pos_init, input_init=args.input_init)  # rt2.models.pali applies both at init
    return VLA.build(args.model, tokenizer, **over, **_grounding(args))


def _grounding(args) -> dict:
    from rt2.sim.tasks import GROUNDING_DIM

    w = float(args.grounding_weight)
    dim = GROUNDING_DIM + 2 * bool(args.ground_action)
    return {"grounding_dim": dim if w > 0 else 0, "grounding_weight": w, "grounding_layer": args.grounding_layer}


class _Budget:
    """Fixed step count from a CPU-time calibration, then trained in segments of ``eval_every`` CPU minutes."""

    def __init__(self, sec_per_step: float, minutes: float, eval_every: float) -> None:
        self.sec_per_step = sec_per_step
        self.total = max(1, int(minutes * 60 / sec_per_step))
        n_seg = max(1, int(round(minutes / eval_every)))
        self.marks = sorted({max(1, int(round(self.total * (i + 1) / n_seg))) for i in range(n_seg)})


def calibrate(vla, batches, precision: str, steps: int = 6) -> float:
    """CPU seconds per optimizer step (forward + backward + AdamW on this model and batch); the weights are restored
    afterwards, so calibration does not train the model."""
    import torch

    snapshot = {k: v.detach().clone() for k, v in vla.state_dict().items()}
    model = vla.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps):
        t0 = time.process_time()
        batch = batches.next_batch()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = model.loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.process_time() - t0)
    vla.load_state_dict(snapshot)
    del opt
    return float(np.median(times[1:]))


def make_batches(vla, sources: dict, weights: dict, batch_size: int, seed: int):
    from rt2.data.mixture import MixtureSampler
    from rt2.train.batches import ExampleBatches

    sampler = MixtureSampler(sources, weights, seed=seed, batch_size=batch_size)
    return ExampleBatches(sampler, lambda exs: vla.encode_examples(exs), batch_size)


def heldout_actions(vla, examples: list, batch_size: int = 64) -> dict:
    """Teacher-forced action metrics on held-out clean demonstrations: the mean ``action_bin_l1`` (X Y units per
    axis) and ``action_exact`` of the constrained argmax, the numbers ``rt2 bench action_ceiling`` puts a prior
    (~2.4) and a state MLP (~0.5) on. Why: closed-loop success stays at 0-2 % long before the action rows stop
    learning, so success alone cannot say whether a change helped."""
    import torch

    was_training = vla.training
    vla.eval()
    l1 = exact = n = 0.0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = vla.encode_examples(examples[i : i + batch_size])
            m = vla.action_metrics(vla(batch), batch)
            k = int(batch.has_action.sum())
            l1, exact, n = l1 + m["action_bin_l1"] * k, exact + m["action_exact"] * k, n + k
    vla.train(was_training)
    return {"heldout_bin_l1": l1 / n, "heldout_exact": exact / n, "heldout_frames": int(n)}


def evaluate(vla, suite, args, episodes: int) -> dict:
    from rt2.eval.runner import ModelAdapter, RunConfig, run_suite
    from rt2.policy import Policy

    c0, w0 = time.process_time(), time.perf_counter()
    policy = Policy(vla)
    cfg = RunConfig(episodes=episodes, num_envs=args.num_envs, seed=args.eval_seed, max_steps=args.max_steps)
    rows = run_suite(ModelAdapter(policy, name="learn"), suite, cfg).rows
    vla.train()
    succ = [bool(r["success"]) for r in rows]
    by_family: dict[str, list[bool]] = {}
    for r in rows:
        by_family.setdefault(r["family"], []).append(bool(r["success"]))
    return {
        "success": float(np.mean(succ)),
        "n": len(rows),
        "by_family": {k: float(np.mean(v)) for k, v in by_family.items()},
        "invalid_actions": int(sum(r["invalid_actions"] for r in rows)),
        "eval_cpu_min": (time.process_time() - c0) / 60,
        "eval_wall_min": (time.perf_counter() - w0) / 60,
    }


def train_curve(
    name, vla, sources, weights, minutes, args, run_dir, b2b, log, stop_at_eval=True, heldout=None
) -> list[dict]:
    """Train ``vla`` for ``minutes`` CPU minutes on the mixture, evaluating block-to-block at every segment end."""
    from rt2.train.config import TrainConfig
    from rt2.train.trainer import Trainer

    precision = args.precision
    if precision == "auto":
        from rt2.train.optim import resolve_precision

        precision = resolve_precision("auto")
    probe = make_batches(vla, sources, weights, args.batch_size, args.seed + 99)
    sps = calibrate(vla, probe, precision)
    budget = _Budget(sps, minutes, args.eval_every if stop_at_eval else minutes)
    cfg = TrainConfig(
        model=args.model,
        steps=budget.total,
        batch_size=args.batch_size,
        lr=args.lr if name == "pretrain" else (args.regime_lr or args.lr),
        warmup_steps=min(args.warmup, max(1, budget.total // 10)),
        min_lr_ratio=0.1,
        precision=precision,
        seed=args.seed,
        log_every=max(1, min(50, budget.total)),
        ckpt_every=budget.total,
        keep_last=1,
        num_threads=args.threads,
    )
    batches = make_batches(vla, sources, weights, args.batch_size, args.seed)
    shutil.rmtree(run_dir, ignore_errors=True)
    trainer = Trainer(vla, cfg, batches, run_dir, progress=False, export=lambda d: None)
    log(f"[{name}] {budget.total} steps ({sps:.2f} CPU-s/step calibrated), evaluations after steps {budget.marks}")
    rows: list[dict] = []
    cpu = wall = 0.0
    resume = False
    for mark in budget.marks:
        c0, w0 = time.process_time(), time.perf_counter()
        res = trainer.fit(resume=resume, until=mark)
        resume = True
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        row = {
            "regime": name,
            "step": mark,
            "samples": mark * args.batch_size,
            "cpu_min": cpu / 60,
            "wall_min": wall / 60,
            "loss": float(np.mean(res.losses[-20:])) if res.losses else float("nan"),
        }
        if stop_at_eval:
            ev = evaluate(vla, b2b, args, args.episodes)
            row.update(success=ev["success"], n=ev["n"], eval_cpu_min=ev["eval_cpu_min"])
            if heldout:
                row.update(heldout_actions(vla, heldout))
        rows.append(row)
        log(_fmt_row(row))
    shutil.rmtree(Path(run_dir) / "checkpoints", ignore_errors=True)
    return rows


def _fmt_row(r: dict) -> str:
    s = f"  {r['regime']:<10} step {r['step']:>6}  samples {r['samples']:>8}  cpu {r['cpu_min']:6.2f} min  "
    s += f"wall {r['wall_min']:6.2f} min  loss {r['loss']:.3f}"
    if "success" in r:
        s += f"  b2b {100 * r['success']:5.1f}% of {r['n']}"
    if "heldout_bin_l1" in r:
        s += f"  held-out bin L1 {r['heldout_bin_l1']:.2f}"
    return s


# ---- report ---------------------------------------------------------------------------------------------------
def table(curves: dict[str, list[dict]], seen: dict[str, dict]) -> str:
    lines = [
        "| regime | CPU min | wall min | samples | train loss | held-out bin L1 | block2block success |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in curves.items():
        for r in rows:
            ok = f"{100 * r['success']:.1f}% ({round(r['success'] * r['n'])}/{r['n']})" if "success" in r else "-"
            l1 = f"{r['heldout_bin_l1']:.2f}" if "heldout_bin_l1" in r else "-"
            lines.append(
                f"| {name} | {r['cpu_min']:.1f} | {r['wall_min']:.1f} | {r['samples']} | {r['loss']:.3f} | {l1} | {ok} |"
            )
    if seen:
        lines += ["", "| regime | seen success | per family |", "|---|---|---|"]
        for name, ev in seen.items():
            fam = ", ".join(f"{k} {100 * v:.0f}%" for k, v in ev["by_family"].items())
            lines.append(f"| {name} | {100 * ev['success']:.1f}% of {ev['n']} | {fam} |")
    return "\n".join(lines)


def plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in curves.items():
        xs = [0.0] + [r["cpu_min"] for r in rows if "success" in r]
        ys = [0.0] + [100 * r["success"] for r in rows if "success" in r]
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("training CPU minutes (after pretraining)")
    ax.set_ylabel("block-to-block success (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- command --------------------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as everywhere under `rt2`

    p = Parser(
        prog="rt2 bench learn",
        # runtime from the defaults below: the clocks count training CPU time, evaluations come on top
        description=__doc__.split("\n\n")[0]
        + " Runtime: 10 + 3 x 30 training CPU minutes plus the evaluations; --quick < 1 min.",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--out", default="runs/learn", help="output directory (learn.json, learn.png, run dirs)")
    p.add_argument("--minutes", type=float, default=30.0, help="training CPU minutes per regime")
    p.add_argument("--eval-every", type=float, default=5.0, help="CPU minutes between block-to-block evaluations")
    p.add_argument("--episodes", type=int, default=100, help="block-to-block episodes per evaluation")
    p.add_argument("--seen-episodes", type=int, default=20, help="episodes per family in the final seen suite")
    p.add_argument("--pretrain-minutes", type=float, default=10.0, help="pointing pretraining CPU minutes")
    p.add_argument("--regimes", default=",".join(REGIMES), help="comma-separated subset of " + ", ".join(REGIMES))
    p.add_argument("--quick", action="store_true", help="wiring test: seconds of training, 2 episodes, 10 steps")
    g = p.add_argument_group("data")
    g.add_argument("--data-episodes", type=int, default=2000, help="oracle demonstrations (kept successes)")
    g.add_argument("--families", default="block2block", help="comma-separated families of the demonstrations")
    g.add_argument("--noise", default="0,1,2,3", help="DART sigmas in X Y units, cycled over attempts")
    g.add_argument("--robot-share", type=float, default=0.5, help="cofinetune: robot-action share of each batch")
    g.add_argument("--named-share", type=float, default=0.5, help="pointing: share asking for an instructed block")
    g.add_argument("--robot-point-share", type=float, default=0.25, help="pointing: share of 'where is the robot?'")
    g = p.add_argument_group("model and optimization")
    g.add_argument("--model", default="pali-nano", help="backbone preset (sizes below override it)")
    g.add_argument("--image-size", type=int, nargs=2, default=[72, 96], metavar=("H", "W"), help="frame size")
    g.add_argument("--patch", type=int, nargs=2, default=[12, 16], metavar=("PH", "PW"), help="vision patch size")
    g.add_argument("--stem", type=int, nargs="*", default=[32, 64], help="conv stem channels (stride 2 each)")
    g.add_argument("--frames", type=int, default=1, help="frames per example (1 = current, 2 = previous+current)")
    g.add_argument("--vision-width", type=int, default=128, help="vision encoder width")
    g.add_argument("--vision-layers", type=int, default=2, help="vision encoder layers")
    g.add_argument("--text-width", type=int, default=128, help="text decoder width")
    g.add_argument("--text-layers", type=int, default=3, help="text decoder layers")
    g.add_argument("--keypoints", type=int, default=32, help="spatial-softmax keypoint tokens per frame (0 = none)")
    g.add_argument(
        "--keypoint-film", type=int, default=1, choices=(0, 1), help="1: FiLM the keypoint heat maps with the prompt"
    )
    g.add_argument("--film-positional", type=int, default=0, help="1: word order in the FiLM prompt summary")
    g.add_argument("--pos-init", default="sincos", choices=("sincos", "learned"), help="vision patch positions init")
    g.add_argument("--input-init", default="fanin", choices=("fanin", "default"), help="patchify/projector init")
    g.add_argument("--image-norm", default="data", choices=("data", "fixed"), help="per-channel stats or 0.5/0.5")
    g.add_argument("--lr", type=float, default=5e-4, help="AdamW peak learning rate")
    g.add_argument(
        "--ground-pointing",
        type=int,
        default=1,
        help="1: pointing rows carry grounding targets too (effector, block, block), so pretraining trains the head",
    )
    g.add_argument(
        "--ground-action", type=int, default=0, help="1: action rows also regress the clean action / 10 (8-D head)"
    )
    g.add_argument(
        "--grounding-layer", type=int, default=-1, help="text block whose input the grounding head reads (-1: final)"
    )
    g.add_argument("--regime-lr", type=float, default=0.0, help="peak lr of the three regimes (0 = --lr)")
    g.add_argument(
        "--grounding-weight",
        type=float,
        default=0.0,
        help="weight of the auxiliary grounding loss on action rows (effector, pushed block, goal xy); 0 = off "
        "(the README table); 10 = the issue-9 experiments",
    )
    g.add_argument("--warmup", type=int, default=100, help="linear warm-up steps before the cosine decay")
    g.add_argument("--batch-size", type=int, default=32, help="examples per training step")
    g.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16"), help="auto: bf16 autocast where the CPU has it"
    )
    g.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU minutes stay comparable)")
    g.add_argument("--seed", type=int, default=0, help="data, init and training seed")
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--heldout-episodes",
        type=int,
        default=150,
        help="clean held-out demos for the teacher-forced action error at every evaluation (0 = skip)",
    )
    g.add_argument("--max-steps", type=int, default=200, help="episode cap (protocol: 200)")
    g.add_argument("--num-envs", type=int, default=50, help="parallel envs per batched policy call")
    g.add_argument("--eval-seed", type=int, default=0, help="seed of the evaluation episodes (same for all regimes)")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.eval_every, args.pretrain_minutes = 0.015, 0.015, 0.01
        args.episodes, args.seen_episodes, args.max_steps, args.data_episodes = 2, 1, 5, 4
        args.num_envs, args.warmup, args.batch_size, args.heldout_episodes = 8, 2, 8, min(args.heldout_episodes, 3)
        args.vision_width, args.vision_layers, args.text_width, args.text_layers = 32, 1, 64, 1
        args.stem, args.patch, args.keypoints = [8], [12, 16], 4
    regimes = tuple(r.strip() for r in args.regimes.split(",") if r.strip())
    bad = [r for r in regimes if r not in REGIMES]
    if bad or not regimes:
        p.error(f"--regimes: unknown {bad}; choose from {', '.join(REGIMES)}")
    args.regimes = regimes
    if not 0.0 < args.robot_share <= 1.0:
        p.error("--robot-share must be in (0, 1]")
    if args.minutes <= 0 or args.eval_every <= 0 or args.pretrain_minutes < 0:
        p.error("--minutes and --eval-every must be > 0, --pretrain-minutes >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from rt2.data.robot import RobotActions, RobotAux, RobotDataConfig
    from rt2.eval.suites import Suite, TaskDef, get_suite
    from rt2.models import TextTokenizer
    from rt2.models.vla import VLA

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    noise = tuple(float(s) for s in args.noise.split(","))
    t0, c0 = time.perf_counter(), time.process_time()
    demos = collect_demos(args.data_episodes, families, args.seed, noise, args.image_size)
    if args.ground_action:
        if args.ground_pointing:
            raise SystemExit("--ground-action 1 needs --ground-pointing 0 (pointing rows have no action to regress)")
        for d in demos:  # the clean action / 10 joins the regression targets: a dense signal for the control law
            g = np.concatenate([d.episode.grounding, d.episode.labels / 10.0], 1)
            d.episode = dataclasses.replace(d.episode, grounding=g)
    episodes = [d.episode for d in demos]
    n_frames_data = sum(len(e) for e in episodes)
    collect_info = {
        "episodes": len(demos),
        "frames": n_frames_data,
        "cpu_min": (time.process_time() - c0) / 60,
        "wall_min": (time.perf_counter() - t0) / 60,
    }
    log(f"data: {len(demos)} demonstrations, {n_frames_data} frames ({collect_info['wall_min']:.2f} wall min)")

    tokenizer = TextTokenizer.train(tokenizer_corpus(demos), vocab_size=512)
    rcfg = RobotDataConfig(n_frames=args.frames, seed=args.seed, aux_tasks=("aux_effector",))
    actions = RobotActions(episodes, rcfg)
    # "where is the robot?" -> effector grid cell (grounded like block pointing, or not at all)
    ground_pt = args.grounding_weight > 0 and args.ground_pointing
    robot_point = RobotAux(episodes if ground_pt else [dataclasses.replace(e, grounding=None) for e in episodes], rcfg)
    block_point = BlockPointing(
        demos, args.frames, args.seed, args.named_share, grounded=args.grounding_weight > 0 and args.ground_pointing
    )
    rp = args.robot_point_share
    pointing = {"point": 1.0 - rp, "robot_aux": rp}
    sources = {"robot": actions, "robot_aux": robot_point, "point": block_point}
    mixes = {
        "pretrain": pointing,
        "scratch": {"robot": 1.0},
        "finetune": {"robot": 1.0},
        "cofinetune": {"robot": args.robot_share, **{k: v * (1 - args.robot_share) for k, v in pointing.items()}},
    }
    b2b = Suite("learn_b2b", "block2block only", (TaskDef("block2block", "block2block"),), category="seen")
    seen_suite = get_suite("seen")

    report: dict = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
        "data": collect_info,
        "mixtures": mixes,
        "torch_threads": torch.get_num_threads(),
    }
    norm = pixel_stats(demos) if args.image_norm == "data" else None
    report["image_norm"] = norm
    vla0 = build_model(tokenizer, args, norm)
    report["num_parameters"] = sum(p.numel() for p in vla0.parameters())
    log(f"model: {args.model} overrides -> {report['num_parameters'] / 1e6:.2f} M params")

    heldout: list = []
    if args.heldout_episodes > 0:  # clean demonstrations from other seeds: teacher-forced action error per point
        test = collect_demos(args.heldout_episodes, families, args.seed + 7, (0.0,), args.image_size)
        test_eps = [dataclasses.replace(d.episode, grounding=None) for d in test]
        heldout = [RobotActions(test_eps, rcfg)[i] for i in range(sum(len(e) for e in test_eps))]
        labels = np.concatenate([e.labels for e in episodes])
        prior = np.median(labels, 0).round()
        report["heldout"] = {
            "episodes": len(test),
            "frames": len(heldout),
            "prior_action": prior.tolist(),
            "prior_bin_l1": float(np.abs(np.concatenate([e.labels for e in test_eps]) - prior).mean()),
        }
        log(f"held-out: {len(heldout)} clean frames; always answering the median action gives bin L1 "
            f"{report['heldout']['prior_bin_l1']:.2f}")  # fmt: skip

    pre_dir = out / "pretrained"
    needs_pre = any(r in ("finetune", "cofinetune") for r in args.regimes)
    if needs_pre:
        if args.pretrain_minutes > 0:
            rows = train_curve(
                "pretrain", vla0, sources, mixes["pretrain"], args.pretrain_minutes, args, out / "run_pretrain",
                b2b, log, stop_at_eval=False,
            )  # fmt: skip
            report["pretrain"] = rows[-1]
        vla0.save_pretrained(pre_dir)

    curves: dict[str, list[dict]] = {}
    seen: dict[str, dict] = {}
    for regime in args.regimes:
        if regime == "scratch":
            vla = build_model(tokenizer, args, norm)
        else:
            g = _grounding(args)
            vla = VLA.from_pretrained(pre_dir).set_grounding(*g.values()).train()
        curves[regime] = train_curve(
            regime, vla, sources, mixes[regime], args.minutes, args, out / f"run_{regime}", b2b, log, heldout=heldout
        )
        if args.seen_episodes > 0:
            seen[regime] = evaluate(vla, seen_suite, args, args.seen_episodes)
            log(f"  [{regime}] seen: {100 * seen[regime]['success']:.1f}% of {seen[regime]['n']}")
        if regime == "cofinetune" or len(args.regimes) == 1:
            vla.save_pretrained(out / f"final_{regime}")

    report["curves"] = curves
    report["seen"] = seen
    text = table(curves, seen)
    pre = report.get("pretrain")
    head = (
        f"rt2 bench learn: {report['num_parameters'] / 1e6:.2f} M params, batch {args.batch_size}, lr {args.lr}, "
        f"{args.threads} thread(s); block2block on {args.episodes} seeded episodes (max {args.max_steps} steps)"
    )
    if report.get("heldout"):
        h = report["heldout"]
        head += f"\nheld-out bin L1: teacher-forced on {h['frames']} frames of {h['episodes']} clean demos; the median "
        head += f"action scores {h['prior_bin_l1']:.2f} (rt2 bench action_ceiling: a state MLP ~0.5)"
    if pre:
        head += f"\npretraining (pointing): {pre['cpu_min']:.1f} CPU min, {pre['wall_min']:.1f} wall min, "
        head += f"{pre['samples']} samples, final loss {pre['loss']:.3f} (not included below)"
    log("\n" + head + "\n\n" + text)
    (out / "learn.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    title = f"{report['num_parameters'] / 1e6:.2f} M params, lr {args.lr}, {args.episodes} episodes per point"
    plot(curves, out / "learn.png", title)
    log(f"\nwrote {out / 'learn.json'} and {out / 'learn.png'}")
    return 0


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)
