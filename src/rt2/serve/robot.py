"""``rt2 run-robot [--server ws://...]``: the tabletop world as a remote robot (RT-2's deployment loop).

    rt2 run-robot                                        # in-process server with the shipped policy, 3 episodes
    rt2 run-robot --policy runs/cft/final --quantize int8 --episodes 5
    rt2 serve --port 8000 &  rt2 run-robot --server ws://127.0.0.1:8000     # a separate server process

Without ``--server`` the command starts a :class:`~rt2.serve.server.ServerThread` on 127.0.0.1 (a free port) in
this process with ``--policy`` (default: the policy shipped with rt2), so the robot still talks to the model
over the real websocket protocol; with ``--server`` it connects to that server and ``--policy`` is refused (a
remote server chooses its own policy). Runtime: ~20 s per 200-step episode at 10 Hz, plus ~2 s start-up.

The robot owns the world and a camera; the model lives on a server. Each control tick: send the newest frame
and the instruction, receive a checked action, apply it. A :class:`Watchdog` holds the robot still whenever
no fresh action arrived within ``--watchdog-ms`` (slow, restarting or lost server); a failed call also
applies zero motion for that tick, never a stale or guessed action. The exit code is 1 when any episode ended
without the server or saw a watchdog stop (the summary says how many), 0 only when the policy drove every episode.

The sim's action space is Language-Table's ``X Y`` (+-10 units = +-0.1 m); the server replies with decoded
floats in metres, which ``TabletopEnv.step`` accepts as they are (floating dtype = metres).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np

from rt2.serve.client import PolicyClient
from rt2.serve.errors import MetadataMismatch, PolicyClientError, Unauthorized
from rt2.serve.watchdog import Watchdog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=None,
        help="policy server url, e.g. ws://127.0.0.1:8000 (default: start an in-process server on 127.0.0.1)",
    )
    parser.add_argument(
        "--policy", default=None, help="checkpoint for the in-process server (default: the policy shipped with rt2)"
    )
    parser.add_argument("--quantize", choices=("none", "int8"), default="none", help="for the in-process server")
    parser.add_argument("--token", default=None, help="shared secret of the server (--token of rt2 serve)")
    parser.add_argument("--episodes", type=int, default=3, help="episodes to run, one env reset each")
    parser.add_argument("--family", default=None, help="task family for TabletopEnv.reset (default: env's mix)")
    parser.add_argument("--seed", type=int, default=0, help="episode i resets the env with seed SEED+i")
    parser.add_argument("--hz", type=float, default=10.0, help="target control rate (the sim runs at 10 Hz)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap steps per episode (default: env's cap)")
    parser.add_argument("--deadline-ms", type=float, default=300.0, help="per-request deadline")
    parser.add_argument(
        "--watchdog-ms", type=float, default=500.0, help="stop the robot after this long without an action"
    )
    parser.add_argument("--robot-id", default=None, help="robot id sent to the server (default: sim-<seed>)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


class SafeStop:
    """The watchdog's stop callback for the sim: latch 'halted' so the next tick applies zero motion."""

    def __init__(self) -> None:
        self.halted = threading.Event()
        self.events: list[float] = []

    def __call__(self) -> None:
        self.halted.set()
        self.events.append(time.monotonic())


def run_episodes(
    client: PolicyClient,
    env,
    *,
    episodes: int,
    family: str | None = None,
    seed: int = 0,
    hz: float = 10.0,
    max_steps: int | None = None,
    watchdog_s: float = 0.5,
    log=print,
) -> dict:
    """Run closed-loop episodes through ``client``; returns a summary dict (successes, Hz, errors, stops)."""
    meta = client.connect()
    low = np.asarray(meta["action_space"]["low"], np.float32)
    high = np.asarray(meta["action_space"]["high"], np.float32)
    stop = SafeStop()
    period = 1.0 / hz
    results = []
    with Watchdog(watchdog_s, stop) as wd:
        for ep in range(episodes):
            options = {"family": family} if family else None
            obs, info = env.reset(seed=seed + ep, options=options)
            steps = errors = 0
            success = False
            t_start = time.monotonic()
            next_tick = t_start
            first = True
            wd.feed()  # the robot is at rest after a reset: the episode's clock starts now, not at the last one's end
            trips_before = wd.trips
            last_failed: str | None = None  # the last call's failure, if the episode ended without the server
            while max_steps is None or steps < max_steps:
                try:
                    action = client.act(obs["image"], obs["instruction"], reset=first)
                    last_failed = None
                    wd.feed()
                    stop.halted.clear()
                    first = False
                    # The client already rejected out-of-bounds replies; clip the tolerance band so the env's
                    # strict |a| <= 0.1 check never sees 0.1000001.
                    action = np.clip(action.astype(np.float32), low, high)
                except (MetadataMismatch, Unauthorized):
                    raise
                except PolicyClientError as e:
                    errors += 1
                    last_failed = type(e).__name__
                    if errors <= 3:
                        log(f"  step {steps}: {type(e).__name__}: {e} -> zero motion")
                    action = np.zeros(len(low), np.float32)
                if stop.halted.is_set():
                    action = np.zeros(len(low), np.float32)
                obs, _reward, terminated, truncated, info = env.step(action)
                steps += 1
                success = bool(info.get("success", False))
                if terminated or truncated:
                    break
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_tick = time.monotonic()  # running late: do not try to catch up with a burst
            wall = time.monotonic() - t_start
            res = {
                "episode": ep,
                "success": success,
                "steps": steps,
                "hz": steps / wall if wall > 0 else 0.0,
                "errors": errors,
                "watchdog_stops": wd.trips - trips_before,
                "ended_without_server": last_failed,
            }
            results.append(res)
            log(
                f"episode {ep}: {'success' if success else 'failure'} in {steps} steps, {res['hz']:.1f} Hz, {errors} errors"
                + (f", {res['watchdog_stops']} watchdog stops" if res["watchdog_stops"] else "")
                + (f", ended without the server ({last_failed})" if last_failed else "")
            )
    n = max(len(results), 1)
    return {
        "episodes": results,
        "success_rate": sum(r["success"] for r in results) / n,
        "mean_hz": sum(r["hz"] for r in results) / n,
        "errors": sum(r["errors"] for r in results),
        "watchdog_stops": wd.trips,
        # Episodes the policy did not drive to their end: the server was lost, or the watchdog stopped the robot.
        "degraded_episodes": sum(bool(r["ended_without_server"] or r["watchdog_stops"]) for r in results),
        "model_name": meta.get("model_name"),
    }


def _local_server(args: argparse.Namespace):
    """Start an in-process loopback server with ``--policy`` (or the shipped policy); -> (started thread, path)."""
    from rt2.policy.default import resolve_policy  # imports torch: only in this mode
    from rt2.serve.cli import load_policy
    from rt2.serve.server import ServerConfig, ServerThread

    path = resolve_policy(args.policy)
    policy = load_policy(path, args.quantize)
    return ServerThread(policy, ServerConfig(host="127.0.0.1", port=0, token=args.token)).start(), path


def run(args: argparse.Namespace) -> int:
    from rt2.sim import TabletopEnv  # the sim is heavier than the client; import only for this command

    local = None
    if args.server is None:
        try:
            local, path = _local_server(args)
        except (ValueError, FileNotFoundError) as e:
            print(f"rt2 run-robot: error: {e}", file=sys.stderr)
            return 2
        args.server = local.url
        if not args.json:
            print(f"rt2 run-robot: no --server given; serving {path} in-process on {local.url}")
    elif args.policy is not None or args.quantize != "none":
        print(
            "rt2 run-robot: error: --policy/--quantize configure the in-process server; with --server the remote "
            "server's own policy is used (start it with: rt2 serve --policy DIR)",
            file=sys.stderr,
        )
        return 2
    client = PolicyClient(
        args.server,
        token=args.token,
        deadline_s=args.deadline_ms / 1000.0,
        robot_id=args.robot_id or f"sim-{args.seed}",
        action_dim=2,
    )
    env = TabletopEnv()
    try:
        summary = run_episodes(
            client,
            env,
            episodes=args.episodes,
            family=args.family,
            seed=args.seed,
            hz=args.hz,
            max_steps=args.max_steps,
            watchdog_s=args.watchdog_ms / 1000.0,
            log=(lambda *a: None) if args.json else print,
        )
    except (MetadataMismatch, Unauthorized) as e:
        print(f"rt2 run-robot: error: {e}", file=sys.stderr)
        return 2
    except PolicyClientError as e:
        print(f"rt2 run-robot: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
        env.close()
        if local is not None:
            local.stop()
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"success rate {summary['success_rate']:.2f} over {len(summary['episodes'])} episodes, "
            f"{summary['mean_hz']:.1f} Hz control, {summary['errors']} failed calls, "
            f"{summary['watchdog_stops']} watchdog stops (model {summary['model_name']})"
        )
    if summary["degraded_episodes"]:
        # Trap: exit 0 here would let a script take a run without its server for a result.
        print(
            f"rt2 run-robot: error: {summary['degraded_episodes']} of {len(summary['episodes'])} episodes ended "
            f"without the server or with a watchdog stop ({summary['errors']} failed calls, "
            f"{summary['watchdog_stops']} watchdog stops); check the server and --deadline-ms/--watchdog-ms",
            file=sys.stderr,
        )
        return 1
    return 0
