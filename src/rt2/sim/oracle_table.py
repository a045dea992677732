"""Measure the scripted oracle per task family and print a markdown table.

    python -m rt2.sim.oracle_table --episodes 50          # or: rt2 oracle-table --episodes 50
    rt2 oracle-table --episodes 20 --noise 2              # with DART noise (executed = clean + N(0, 2 units))
    rt2 oracle-table --families block2block,separate      # a comma list (as in rt2 collect) or space-separated

Language-Table families run on BLOCK_8 (the eval setting, scene preset "language_table"); block2symbol and
property_referent run on the "emergent" preset (6 blocks, 4 symbols, mixed sizes). Episode i of a family uses
env seed ``seed + i``, 200-step cap. The default 50 episodes x 7 families take ~3-5 s (measured, one thread on a
2-core CPU under load ~2; DART noise 2 is the slower end).
"""

from __future__ import annotations

import argparse
import difflib
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # `not >=` also rejects nan, which would silently mean "no noise" to the oracle
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _families(text: str) -> tuple[str, ...]:
    """One --families word: ``all``, a family, or a comma list of them (the ``rt2 collect`` spelling)."""
    if text.strip() == "all":
        return tuple(FAMILIES)
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    for name in names:
        if name not in FAMILIES:
            close = difflib.get_close_matches(name, FAMILIES, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise argparse.ArgumentTypeError(f"unknown family {name!r} (valid: {', '.join(FAMILIES)}){hint}")
    if not names:
        raise argparse.ArgumentTypeError("expected at least one family")
    return names


def selected_families(values: str | tuple[str, ...] | list) -> list[str]:
    """Flatten --families (a tuple from the default, or one tuple per word given) into unique names, in order."""
    if isinstance(values, str):
        values = _families(values)
    out: list[str] = []
    for v in values:
        for name in (v,) if isinstance(v, str) else v:
            if name not in out:
                out.append(name)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=_positive_int, default=50, help="episodes per family (>= 1)")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED+i")
    parser.add_argument(
        "--families",
        nargs="+",
        type=_families,
        default="all",  # a string default goes through _families too, so args.families has one shape
        metavar="FAMILY",
        help=f"families to measure, comma- or space-separated, or 'all'; valid: {', '.join(FAMILIES)}",
    )
    parser.add_argument(
        "--noise", type=_non_negative_float, default=0.0, help="DART noise std in action units (0 = clean, >= 0)"
    )
    parser.add_argument("--max-steps", type=_positive_int, default=200, help="step cap per episode (protocol: 200)")


def run(args: argparse.Namespace) -> int:
    # Re-checked here for Python callers that build the Namespace themselves (argparse already rejects these).
    if args.episodes < 1:
        print(f"rt2 oracle-table: error: --episodes must be >= 1, got {args.episodes}", file=sys.stderr)
        return 2
    if not args.noise >= 0:
        print(f"rt2 oracle-table: error: --noise must be >= 0, got {args.noise}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    families = selected_families(args.families)
    rows = [run_family(f, args.episodes, args.seed, args.noise, args.max_steps) for f in families]
    print(markdown(rows))
    print(
        f"\n{sum(r['episodes'] for r in rows)} episodes in {time.perf_counter() - t0:.1f} s (seed {args.seed}, noise {args.noise})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    from rt2.cli import DefaultsFormatter, Parser  # closest-option hints on typos, as under `rt2 oracle-table`

    parser = Parser(
        prog="python -m rt2.sim.oracle_table",
        description=__doc__.split("\n")[0],
        formatter_class=DefaultsFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
