"""``rt2 bench serve_abuse``: issue 17's adversarial figures against a real ``rt2 serve`` process (runtimes below).

(a) poisoned traffic: one well-behaved robot (``PolicyClient``, ``--hz``, ``--actions`` calls) while
    ``--attackers`` clients send, as fast as replies come back, requests the model cannot take: alternately
    over-long instructions (1,000 characters, far over the model's prompt limit) and 1-pixel images. Reports the
    actions the robot received (goal: >= 59 of 60 at 10 Hz), its p50/p99 latency, and the attackers' replies by
    code (all must be ``bad_request``).
(b) history memory: ``--ids`` robot ids (default 4096, the server's cap), one request each with a ``--side`` x
    ``--side`` frame (default 1600: the largest square that fits the 8 MB message limit), over ``--conns``
    connections. Reports the server's RSS (``/proc/PID/status``) before, at the end, and after the clients
    leave, the history's bytes (``/metrics``), and the bound: ids x (frames - 1) x the model's H x W x 3.

The policy is a random-init two-frame ``pali-nano`` (the model's speed and limits do not depend on its weights),
served by ``rt2 serve`` in a child process on 127.0.0.1 with its default limits (idle expiry aside: off, so a slow
run does not forget robots it is still measuring). Frames are resized on arrival, so a robot's history costs the
same whatever ``--side``; ``--side`` only changes the transient, in-flight memory. Examples::

    rt2 bench serve_abuse --ids 4096 --side 96           # (a) + the full history: ~1-2 min on 2 busy cores
    rt2 bench serve_abuse --actions 0 --ids 256          # 1600x1600 frames: the transient peak, RSS after close
    rt2 bench serve_abuse                                # 4096 x 1600x1600: 31 GB through msgpack, ~10+ min
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

CORPUS = ["Q: what action should the robot take to push the red star to the top left? A: 3 -7"] * 50


class Server(ServeProcess):
    """``rt2 serve`` in a child process, its memory read from /proc."""

    def __init__(self, policy: str, num_threads: int) -> None:
        # Idle expiry off for the run: a slow run must not forget robots while it is still measuring them.
        super().__init__(policy, num_threads, ["--history-idle-s", "3600"], log_level="ERROR")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def poisoned(url: str, hz: float, actions: int, attackers: int, h: int, w: int) -> dict:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from rt2.serve import wire
    from rt2.serve.client import PolicyClient
    from rt2.serve.errors import PolicyClientError

    stop = threading.Event()
    codes: dict[str, int] = {}
    lock = threading.Lock()
    bad = [
        {"image": np.zeros((h, w, 3), np.uint8), "instruction": "push the red star to the top left " * 29},
        {"image": np.zeros((1, 1, 3), np.uint8), "instruction": "push the red star"},
    ]

    def attacker(k: int) -> None:
        with connect(url, open_timeout=10, compression=None) as ws:
            ws.recv(timeout=10)
            i = k
            while not stop.is_set():
                try:
                    ws.send(wire.packb(bad[i % 2]))
                    r = wire.unpackb(ws.recv(timeout=10))
                except ConnectionClosed:
                    return
                code = r["error"]["code"] if "error" in r else "ok"
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                i += 1

    threads = [threading.Thread(target=attacker, args=(k,), daemon=True) for k in range(attackers)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the attack is under way before the robot starts
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ok, lat = 0, []
    with PolicyClient(url, deadline_s=1.0 / hz, robot_id="good", action_dim=2) as client:
        client.connect(deadline_s=10.0)  # the handshake may wait on a busy machine; each action has 1/hz
        next_tick = time.monotonic()
        for i in range(actions):
            t0 = time.monotonic()
            try:
                client.act(frame, "push the red star to the top left", reset=i == 0)
                ok += 1
                lat.append((time.monotonic() - t0) * 1e3)
            except PolicyClientError:
                pass
            next_tick += 1.0 / hz
            time.sleep(max(0.0, next_tick - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(10)
    return {
        "actions_received": ok,
        "actions_sent": actions,
        "p50_ms": float(np.percentile(lat, 50)) if lat else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if lat else float("nan"),
        "attacker_replies": codes,
    }


def history_memory(server: Server, ids: int, side: int, conns: int, frames: int, h: int, w: int) -> dict:
    from websockets.sync.client import connect

    from rt2.serve import wire

    frame = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    rss0 = server.rss_mb()
    peak = [rss0]
    failed = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], server.rss_mb())

    sent = threading.Barrier(conns + 1)
    measured = threading.Event()

    def client(k: int) -> None:
        with connect(url, open_timeout=10, compression=None, max_size=2**20) as ws:
            ws.recv(timeout=10)
            for i in range(k, ids, conns):
                ws.send(wire.packb({"image": frame, "instruction": "push the red star", "robot_id": f"robot-{i}"}))
                if "actions" not in wire.unpackb(ws.recv(timeout=60)):
                    failed[0] += 1
            sent.wait()
            measured.wait()  # stay connected until the history is measured: closing drops the robots' frames

    url = server.url
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    sent.wait()
    wall = time.monotonic() - t0
    held_robots = server.gauge("rt2_history_robots")
    held_bytes = server.gauge("rt2_history_bytes")
    rss_end = server.rss_mb()
    measured.set()
    for t in threads:
        t.join()
    time.sleep(1.0)  # connections closed: their robots' frames are dropped
    done.set()
    sampler.join()
    return {
        "ids": ids,
        "side": side,
        "wall_s": wall,
        "failed": failed[0],
        "rss_before_mb": rss0,
        "rss_peak_mb": peak[0],
        "rss_end_mb": rss_end,
        "rss_after_close_mb": server.rss_mb(),
        "history_robots": held_robots,
        "history_mb": held_bytes / 2**20,
        "history_after_close": server.gauge("rt2_history_robots"),
        "bound_mb": ids * (frames - 1) * h * w * 3 / 2**20,
        "as_sent_mb": ids * (frames - 1) * side * side * 3 / 2**20,
    }


def main(argv: list[str]) -> int:
    from rt2.cli import HelpFormatter, Parser

    ap = Parser(prog="rt2 bench serve_abuse", description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--hz", type=float, default=10.0, help="the well-behaved robot's rate")
    ap.add_argument("--actions", type=int, default=60, help="calls of the well-behaved robot (0: skip part a)")
    ap.add_argument("--attackers", type=int, default=2, help="clients sending requests the model cannot take")
    ap.add_argument("--ids", type=int, default=4096, help="robot ids of the memory run (0: skip it)")
    ap.add_argument("--side", type=int, default=1600, help="frame side of the memory run (pixels)")
    ap.add_argument("--conns", type=int, default=4, help="connections the memory run's ids are spread over")
    ap.add_argument("--num-threads", type=int, default=1, help="the server's torch threads")
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="rt2-bench-abuse-") as tmp:
        vla = VLA.build("pali-nano", TextTokenizer.train(CORPUS, vocab_size=256), n_frames=2)
        h, w = vla.backbone.image_size
        frames = int(vla.backbone.n_frames)
        vla.save_pretrained(Path(tmp))
        print(f"policy: random-init pali-nano, {frames} frames of {h}x{w}; rt2 serve with its default limits")
        server = Server(tmp, args.num_threads)
        try:
            if args.actions > 0:
                results["poisoned"] = p = poisoned(server.url, args.hz, args.actions, args.attackers, h, w)
                print(
                    f"(a) well-behaved robot at {args.hz:g} Hz: {p['actions_received']} of {p['actions_sent']} "
                    f"actions (p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms) while {args.attackers} clients "
                    f"sent over-long instructions and 1-pixel images; their replies: {p['attacker_replies']}"
                )
            if args.ids > 0:
                results["memory"] = m = history_memory(server, args.ids, args.side, args.conns, frames, h, w)
                print(
                    f"(b) {m['ids']} robot ids x {m['side']}x{m['side']} frames in {m['wall_s']:.0f} s "
                    f"({m['failed']} failed): history {m['history_robots']:.0f} robots, {m['history_mb']:.1f} MB "
                    f"(bound {m['bound_mb']:.1f} MB; as sent it would be {m['as_sent_mb']:.0f} MB)\n"
                    f"    server RSS: {m['rss_before_mb']:.0f} MB before, peak {m['rss_peak_mb']:.0f} MB, "
                    f"{m['rss_end_mb']:.0f} MB at the end, {m['rss_after_close_mb']:.0f} MB after the clients left "
                    f"(history then {m['history_after_close']:.0f} robots)"
                )
        finally:
            server.stop()
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
