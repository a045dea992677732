"""``rt2 bench serve`` (~1 min): what the network service costs and how many robots it carries, ratios in one run.

(a) one robot: round-trip through ``rt2 serve`` (a separate process on loopback) vs in-process
    ``Policy.predict_action`` on the same frame, interleaved call by call; reports the p50 overhead in ms and the
    ratio (goal: overhead <= 2 ms p50).
(b) N concurrent simulated robots (threads with the sync ``PolicyClient``), each targeting ``--hz``, against a
    server with micro-batching ON (``--max-batch``) and OFF (``--max-batch 1``), same run: achieved Hz per robot,
    p50/p99 latency, mean batch size (from the server's /metrics), failed calls.

Without ``--policy`` a random-init policy of the built-in preset ``--backbone`` (default ``pali-nano``, 1.2 M
parameters; ``pali-tiny`` ~5 M, ``pali-small`` ~20 M) is built in a temp dir (said in the output): the cost of a
forward pass does not depend on the weights. Example::

    rt2 bench serve                                    # default (pali-nano): ~1 min on 2 cores
    rt2 bench serve --backbone pali-tiny               # the previous default preset
    rt2 bench serve --robots 1 4 16 --duration 8 --num-threads 2
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent))  # bench/ helpers; rt2 bench loads this file by path
from _serve_proc import ServeProcess  # noqa: E402

CORPUS = [
    "Q: what action should the robot take to push the red star to the top left? A: 3 -7",
    "Instruction: move the blue cube next to the green circle Plan: push it Action: 1 2",
] * 50


# The built-in presets (rt2.models.pali), listed here rather than read from the registry so that argument
# parsing (and `--help`) does not import torch.
BACKBONES = ("pali-nano", "pali-tiny", "pali-small")


def build_random_policy(directory: Path, backbone: str = "pali-nano") -> None:
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    VLA.build(backbone, TextTokenizer.train(CORPUS, vocab_size=256)).save_pretrained(directory)


class ServerProc(ServeProcess):
    """``rt2 serve`` in a child process with the batching knobs under test."""

    def __init__(self, policy: str, num_threads: int, max_batch: int, max_wait_ms: float) -> None:
        extra = ["--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--max-queue", "256"]
        super().__init__(policy, num_threads, [*extra, "--deadline-ms", "5000"])

    def batch_stats(self) -> tuple[float, float]:
        """(sum, count) of the server's rt2_batch_size histogram."""
        return self.gauge("rt2_batch_size_sum"), self.gauge("rt2_batch_size_count")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def single_robot(policy, url: str, n: int, frame: np.ndarray, instruction: str) -> dict:
    from rt2.serve import PolicyClient

    local, remote, transport = [], [], []
    with PolicyClient(url, deadline_s=10) as c:
        for _ in range(3):  # warm both paths
            c.act(frame, instruction)
            policy.predict_action([frame], instruction)
        for _ in range(n):  # interleaved: both see the same machine load
            t = time.perf_counter()
            policy.predict_action([frame], instruction)
            local.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            c.act(frame, instruction)
            remote.append((time.perf_counter() - t) * 1e3)
            # everything but the forward pass itself: encode, socket, queue, decode, checks (exact per call)
            transport.append(remote[-1] - c.last_timing["infer_ms"])
    lp, rp = pct(local, 50), pct(remote, 50)
    return {
        "inproc_p50_ms": lp,
        "remote_p50_ms": rp,
        "overhead_p50_ms": rp - lp,
        "ratio": rp / lp,
        "non_inference_p50_ms": pct(transport, 50),
        "non_inference_p99_ms": pct(transport, 99),
    }


def fleet(server: ServerProc, n_robots: int, hz: float, duration: float, frames: list[np.ndarray]) -> dict:
    from rt2.serve import PolicyClient, PolicyClientError

    lat: list[list[float]] = [[] for _ in range(n_robots)]
    fails = [0] * n_robots
    start = threading.Barrier(n_robots + 1)

    def robot(i: int) -> None:
        with PolicyClient(server.url, robot_id=f"bench-{i}", deadline_s=2.0) as c:
            c.connect(deadline_s=30)
            start.wait()
            t_end = time.monotonic() + duration
            next_tick = time.monotonic() + (i / n_robots) / hz  # robots are not phase-locked in reality
            while True:
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if time.monotonic() >= t_end:
                    break
                t = time.perf_counter()
                try:
                    c.act(frames[i % len(frames)], "push the red star to the top left")
                    lat[i].append((time.perf_counter() - t) * 1e3)
                except PolicyClientError:
                    fails[i] += 1
                next_tick = max(next_tick + 1.0 / hz, time.monotonic())

    s0, c0 = server.batch_stats()
    threads = [threading.Thread(target=robot, args=(i,), daemon=True) for i in range(n_robots)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join(duration + 30)
    s1, c1 = server.batch_stats()
    allv = [x for xs in lat for x in xs]
    return {
        "robots": n_robots,
        "hz_per_robot": float(np.mean([len(x) / duration for x in lat])),
        "p50_ms": pct(allv, 50),
        "p99_ms": pct(allv, 99),
        "mean_batch": (s1 - s0) / (c1 - c0) if c1 > c0 else 0.0,
        "failed": sum(fails),
    }


def main(argv: list[str]) -> int:
    from rt2.cli import HelpFormatter, Parser  # closest-option hints on typos, defaults shown in --help

    ap = Parser(prog="rt2 bench serve", description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--policy", default=None, help="checkpoint dir (default: random-init --backbone)")
    ap.add_argument(
        "--backbone", default="pali-nano", choices=BACKBONES, help="preset of the random-init policy (no --policy)"
    )
    ap.add_argument("--robots", type=int, nargs="+", default=[1, 4, 16], help="fleet sizes to measure, in order")
    ap.add_argument("--hz", type=float, default=10.0, help="target rate per robot")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per fleet measurement")
    ap.add_argument("--single-n", type=int, default=100, help="calls for the single-robot overhead measurement")
    ap.add_argument("--num-threads", type=int, default=2, help="torch threads, server and in-process baseline")
    ap.add_argument("--max-batch", type=int, default=16, help="server micro-batch size of the batching runs")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="server batching window of the batching runs")
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = ap.parse_args(argv)
    if args.policy is not None and any(a.split("=")[0] == "--backbone" for a in argv):
        ap.error("--backbone chooses the random-init policy; it cannot be combined with --policy")
    # Before torch loads: idle OpenMP threads of one process must not spin and steal the core the other
    # process needs (server and in-process baseline alternate on 2 shared cores).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import torch

    from rt2.policy import Policy

    torch.set_num_threads(args.num_threads)
    tmp = None
    if args.policy is None:
        tmp = tempfile.TemporaryDirectory(prefix="rt2-bench-serve-")
        build_random_policy(Path(tmp.name), args.backbone)
        args.policy = tmp.name
        print(f"policy: random-init {args.backbone} (no --policy given; speed does not depend on the weights)")
    policy = Policy.from_pretrained(args.policy)
    h, w = policy.image_size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(16)]
    print(f"model {policy.metadata()['model']}, image {h}x{w}, {args.num_threads} torch threads, {os.cpu_count()} cpus")

    results: dict = {"fleet": {}}
    server = ServerProc(args.policy, args.num_threads, args.max_batch, args.max_wait_ms)
    try:
        results["single"] = s = single_robot(
            policy, server.url, args.single_n, frames[0], "push the red star to the top left"
        )
        print(
            f"(a) single robot: in-process p50 {s['inproc_p50_ms']:.2f} ms, via server p50 {s['remote_p50_ms']:.2f} ms "
            f"-> overhead {s['overhead_p50_ms']:.2f} ms p50, ratio {s['ratio']:.3f}x (goal: overhead <= 2 ms)\n"
            f"    per call, round trip minus the server's own forward time: p50 {s['non_inference_p50_ms']:.2f} ms, "
            f"p99 {s['non_inference_p99_ms']:.2f} ms"
        )
        del policy  # the fleet runs only need the server process
        for mode, mb in (("batching", args.max_batch), ("no-batching", 1)):
            if mode == "no-batching":
                server.stop()
                server = ServerProc(args.policy, args.num_threads, 1, 0.0)
            results["fleet"][mode] = rows = [fleet(server, n, args.hz, args.duration, frames) for n in args.robots]
            print(f"(b) {mode} (max_batch={mb}), target {args.hz:g} Hz/robot, {args.duration:g} s each:")
            print("    robots  Hz/robot   p50 ms   p99 ms  mean batch  failed")
            for r in rows:
                print(
                    f"    {r['robots']:6d}  {r['hz_per_robot']:8.2f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}"
                    f"  {r['mean_batch']:10.2f}  {r['failed']:6d}"
                )
    finally:
        server.stop()
        if tmp is not None:
            tmp.cleanup()
    on, off = results["fleet"]["batching"], results["fleet"]["no-batching"]
    for a, b in zip(on, off, strict=True):
        ratio = a["hz_per_robot"] / b["hz_per_robot"] if b["hz_per_robot"] else float("inf")
        print(f"    {a['robots']:2d} robots: batching/no-batching throughput ratio {ratio:.2f}x")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
