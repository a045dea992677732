"""``rt2 bench action_ceiling``: how well can one frame's *geometry* predict the oracle's action, against the prior?

    rt2 bench action_ceiling                      # 1,500 DART demos, 60 s of MLP training: ~1.5 min
    rt2 bench action_ceiling --quick              # wiring test (~5 s)

Why: a pixel VLA's action rows must beat two numbers to have learned control at all. The *prior* (always predict
the median action, "0 0") and the *state ceiling* (a 2x256 MLP on the true effector, pushed-block and target-block
positions, the reference/bc-feasibility.md baseline). Both are scored as the training metric ``action_bin_l1``
(mean |predicted - label| per axis in X Y units, i.e. cm) on held-out clean block-to-block demonstrations, so a
VLA's logged ``action_bin_l1`` can be read against them directly (a VLA above the prior has learned nothing about
control, however well it points). The labels are the clean oracle actions of DART-noised episodes, as in
``rt2 bench learn``.

Measured 2026-12-02 (1 thread): prior 2.41, state MLP 0.51 (both axes exact 54 %) after 60 s on 34k frames; the
pali-nano VLAs of ``rt2 bench learn`` logged 2.7-2.76 after 10 CPU-minutes.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np


def _learn_module():
    """bench/learn.py (the same demonstrations as the learning curves), loaded by path like ``rt2 bench`` does."""
    spec = importlib.util.spec_from_file_location("rt2_bench_learn_for_ceiling", Path(__file__).with_name("learn.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def geometry(demos) -> tuple[np.ndarray, np.ndarray]:
    """(float32[N, 6] effector, pushed block, target block xy in metres; int64[N, 2] clean action labels)."""
    xs, ys = [], []
    for d in demos:
        if len(d.named) < 2:
            raise ValueError("action_ceiling needs block-to-block demonstrations (a pushed and a target block)")
        src, tgt = d.named[0], d.named[1]
        for t in range(len(d.episode)):
            b = d.blocks[t]
            xs.append([*d.episode.effector[t][:2], *b[src], *b[tgt]])
            ys.append(d.episode.labels[t])
    return np.asarray(xs, np.float32), np.asarray(ys, np.int64)


def fit_mlp(x: np.ndarray, y: np.ndarray, seconds: float, seed: int = 0):
    """A 2x256 GELU MLP, two 21-way heads, Adam 1e-3, batch 512, for ``seconds`` of CPU time. -> predict(x)."""
    import torch

    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.from_numpy((x - mu) / sd), torch.from_numpy(y + 10)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(), torch.nn.Linear(256, 256), torch.nn.GELU(),
        torch.nn.Linear(256, 42),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    t0, steps = time.process_time(), 0
    while time.process_time() - t0 < seconds:
        i = torch.randint(0, len(xt), (512,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(xt[i]).view(-1, 2, 21).transpose(1, 2), yt[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1

    def predict(q: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy((q - mu) / sd)).view(-1, 2, 21).argmax(-1).numpy() - 10

    return predict, steps


def main(argv: list[str] | None = None) -> int:
    from rt2.cli import DefaultsFormatter, Parser

    p = Parser(prog="rt2 bench action_ceiling", description=__doc__.split("\n\n")[0], formatter_class=DefaultsFormatter)
    p.add_argument("--train-episodes", type=int, default=1500, help="DART demonstrations to fit on")
    p.add_argument("--test-episodes", type=int, default=200, help="clean held-out demonstrations to score on")
    p.add_argument("--seconds", type=float, default=60.0, help="CPU seconds of MLP training")
    p.add_argument("--noise", default="0,1,2,3", help="DART sigmas of the training demos (X Y units)")
    p.add_argument(
        "--position-noise-cm",
        default="",
        help="also fit MLPs on positions with this Gaussian error (cm, comma-separated, train and test): how "
        "precise a VLA's grounding must be for its action rows to beat the prior",
    )
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    p.add_argument("--quick", action="store_true", help="wiring test: 20/10 episodes, 2 s")
    args = p.parse_args(list(argv or []))
    if args.quick:
        args.train_episodes, args.test_episodes, args.seconds = 20, 10, 2.0
    if args.train_episodes < 1 or args.test_episodes < 1 or args.seconds <= 0:
        p.error("--train-episodes and --test-episodes must be >= 1 and --seconds > 0")
    import torch

    torch.set_num_threads(1)
    learn = _learn_module()
    noise = tuple(float(s) for s in args.noise.split(","))
    x, y = geometry(learn.collect_demos(args.train_episodes, ("block2block",), 0, noise, (72, 96)))
    xq, yq = geometry(learn.collect_demos(args.test_episodes, ("block2block",), 7, (0.0,), (72, 96)))
    prior = np.median(y, 0).round().astype(np.int64)
    predict, steps = fit_mlp(x, y, args.seconds)
    pred = predict(xq)
    out = {
        "train_frames": len(x),
        "test_frames": len(xq),
        "prior_action": prior.tolist(),
        "prior_bin_l1": float(np.abs(yq - prior).mean()),
        "state_mlp_bin_l1": float(np.abs(yq - pred).mean()),
        "state_mlp_exact": float((yq == pred).all(1).mean()),
        "state_mlp_steps": steps,
        "seconds": args.seconds,
    }
    print(
        f"held-out action_bin_l1 (X Y units, lower is better) on {len(xq)} frames of {args.test_episodes} clean "
        f"block2block demos:\n  prior (always {prior[0]} {prior[1]}): {out['prior_bin_l1']:.2f}\n"
        f"  state MLP ({args.seconds:.0f} CPU-s, {len(x)} frames): {out['state_mlp_bin_l1']:.2f} "
        f"(both axes exact {100 * out['state_mlp_exact']:.0f} %)\n"
        f"  ratio prior / state MLP: {out['prior_bin_l1'] / max(out['state_mlp_bin_l1'], 1e-9):.1f}x"
    )
    sigmas = [float(v) for v in args.position_noise_cm.split(",") if v.strip()]
    if sigmas:
        rng = np.random.default_rng(0)
        out["noisy_state_mlp_bin_l1"] = {}
        for cm in sigmas:
            xn = x + rng.normal(0, cm / 100, x.shape).astype(np.float32)
            xqn = xq + rng.normal(0, cm / 100, xq.shape).astype(np.float32)
            pred_n, _ = fit_mlp(xn, y, args.seconds)
            out["noisy_state_mlp_bin_l1"][str(cm)] = l1 = float(np.abs(yq - pred_n(xqn)).mean())
            print(f"  state MLP on positions with {cm:g} cm error: {l1:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
