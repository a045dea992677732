"""Measure the scripted oracle per task family and print a markdown table.

    python -m rt2.sim.oracle_table --episodes 50          # or: rt2 oracle-table --episodes 50
    rt2 oracle-table --episodes 20 --noise 2              # with DART noise (executed = clean + N(0, 2 units))

Language-Table families run on BLOCK_8 (the eval setting, scene preset "language_table"); block2symbol and
property_referent run on the "emergent" preset (6 blocks, 4 symbols, mixed sizes). Episode i of a family uses
env seed ``seed + i``, 200-step cap. 50 episodes x 7 families take ~30-60 s on one core.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rt2.sim.env import EnvConfig, TabletopEnv
from rt2.sim.oracle import ScriptedOracle
from rt2.sim.scene import SceneConfig
from rt2.sim.tasks import FAMILIES, LT_FAMILIES


def run_family(family: str, episodes: int, seed: int = 0, noise: float = 0.0, max_steps: int = 200) -> dict:
    """{"family", "episodes", "successes", "mean_steps" (successful episodes), "steps": list[int]}."""
    scene = "language_table" if family in LT_FAMILIES else "emergent"
    env = TabletopEnv(EnvConfig(scene=SceneConfig.preset(scene), max_steps=max_steps, two_frames=False))
    oracle = ScriptedOracle(noise_units=noise, seed=seed)
    successes, steps = 0, []
    for i in range(episodes):
        env.reset(seed=seed + i, options={"family": family})
        info, n_steps = {"success": False}, 0
        for n_steps in range(1, max_steps + 1):  # noqa: B007 (read after the loop)
            executed, _label = oracle.act_dart(env)
            _, _, terminated, truncated, info = env.step(executed)
            if terminated or truncated:
                break
        successes += bool(info["success"])
        if info["success"]:
            steps.append(n_steps)
    return {
        "family": family,
        "episodes": episodes,
        "successes": successes,
        "mean_steps": float(np.mean(steps)) if steps else float("nan"),
        "steps": steps,
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| family | success | mean steps (successes) |", "|---|---|---|"]
    for r in rows:
        rate = 100.0 * r["successes"] / max(1, r["episodes"])
        lines.append(f"| {r['family']} | {r['successes']}/{r['episodes']} ({rate:.0f} %) | {r['mean_steps']:.1f} |")
    tot = sum(r["successes"] for r in rows)
    n = sum(r["episodes"] for r in rows)
    lines.append(f"| **all** | **{tot}/{n} ({100.0 * tot / max(1, n):.1f} %)** | |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=50, help="episodes per family")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED+i")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES), metavar="FAMILY")
    parser.add_argument("--noise", type=float, default=0.0, help="DART noise std in action units (0 = clean)")
    parser.add_argument("--max-steps", type=int, default=200)


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        print("--episodes must be >= 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = [run_family(f, args.episodes, args.seed, args.noise, args.max_steps) for f in args.families]
    print(markdown(rows))
    print(
        f"\n{sum(r['episodes'] for r in rows)} episodes in {time.perf_counter() - t0:.1f} s (seed {args.seed}, noise {args.noise})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rt2.sim.oracle_table", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
