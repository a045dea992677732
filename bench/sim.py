"""Tabletop world speed: ``rt2 bench sim [--steps N] [--size H W]`` (~10-20 s with the default 3000 steps).

Measures, on one core and in one run:
- physics only (10 pymunk substeps per control step, BLOCK_8) -- the baseline the ratios refer to;
- render only (one frame at the policy size, blocks + effector over the cached static layer);
- ``env.step`` with rendering (physics + success test + render + observation);
- ``env.step`` + ``ScriptedOracle.act`` (what demo collection costs, minus writing);
- ``env.reset`` (layout sampling with rejection, settling, task + instruction sampling).
Random actions drive the physics/env rows, so blocks are actually pushed some of the time.
"""

from __future__ import annotations

import time

import numpy as np

from rt2.sim import EnvConfig, ScriptedOracle, TabletopEnv
from rt2.sim.physics import PhysicsWorld
from rt2.sim.render import Renderer


def _rate(n: int, fn) -> tuple[float, float]:
    """(per wall second, per CPU second of this process). On a shared machine the CPU rate is the per-core speed."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def main(argv: list[str]) -> int:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as everywhere under `rt2`

    parser = Parser(
        prog="rt2 bench sim",
        description=__doc__.split("\n")[0],
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--steps", type=int, default=3000, help="control steps timed per row")
    parser.add_argument(
        "--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="policy image size (None: the env's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the env and of the random actions")
    args = parser.parse_args(argv)
    n = args.steps
    cfg = EnvConfig() if args.size is None else EnvConfig(image_size=tuple(args.size))
    env = TabletopEnv(cfg)
    env.reset(seed=args.seed, options={"family": "block2block"})
    rng = np.random.default_rng(args.seed)
    actions = rng.integers(-4, 5, size=(n, 2))

    scene = env.world_state()
    world = PhysicsWorld(scene)

    def physics() -> None:
        target = np.asarray(scene.effector, float)
        for a in actions:
            target = np.clip(target + a * 0.01, [0.15, -0.3048], [0.60, 0.3048])
            world.step(target)
            world.block_poses()

    renderer = Renderer(cfg.image_size)
    scenes = []
    for a in actions[:200]:
        env.step(a)
        scenes.append(env.world_state())

    def render() -> None:
        for i in range(n):
            renderer.render(scenes[i % len(scenes)])

    def env_steps() -> None:
        env.reset(seed=args.seed + 1)
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()

    oracle = ScriptedOracle()
    episodes = [0]

    def oracle_steps() -> None:
        env.reset(seed=args.seed + 2)
        for _ in range(n):
            _, _, term, trunc, _ = env.step(oracle.act(env))
            if term or trunc:
                episodes[0] += 1
                env.reset()

    n_resets = max(20, n // 50)

    def resets() -> None:
        for i in range(n_resets):
            env.reset(seed=args.seed + 100 + i)

    rows = [
        ("physics only (baseline)", _rate(n, physics)),
        (f"render only {cfg.image_size[0]}x{cfg.image_size[1]}", _rate(n, render)),
        ("env.step with render", _rate(n, env_steps)),
        ("env.step + oracle", _rate(n, oracle_steps)),
        ("env.reset", _rate(n_resets, resets)),
    ]
    base = rows[0][1][1]
    print("| item | per CPU second (1 core) | per wall second | ratio vs physics only (CPU) |\n|---|---|---|---|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {cpu:,.0f} | {wall:,.0f} | {cpu / base:.2f} |")
    print(f"\n{n} steps per row, seed {args.seed}; the oracle finished {episodes[0]} episodes")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
