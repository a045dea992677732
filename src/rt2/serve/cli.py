"""``rt2 serve [--policy CKPT]``: serve a policy checkpoint to robots over websockets.

    rt2 serve                                   # the shipped default policy on ws://127.0.0.1:8000 (ready in ~2 s)
    rt2 serve --policy runs/cft/final --quantize int8

Binds 127.0.0.1:8000 by default. Any other interface needs ``--token`` (clients send
``Authorization: Bearer <token>``). SIGTERM/SIGINT shut down gracefully: stop listening, answer in-flight
requests, then close. ``GET /healthz``, ``/readyz`` and ``/metrics`` are served on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import inspect
import logging
import os
import signal
import sys

from rt2.serve.server import PolicyServer, ServerConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        default=None,
        help="policy checkpoint directory (Policy.from_pretrained); default: the policy shipped with rt2",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface; non-loopback requires --token")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: pick a free one)")
    parser.add_argument(
        "--token", default=os.environ.get("RT2_SERVE_TOKEN"), help="shared secret (default: $RT2_SERVE_TOKEN)"
    )
    parser.add_argument("--max-batch", type=int, default=16, help="requests per forward pass (1: no batching)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="batching window for the oldest request")
    parser.add_argument("--max-queue", type=int, default=64, help="waiting requests before 'overloaded'")
    parser.add_argument("--deadline-ms", type=float, default=1000.0, help="per-request deadline, receipt to reply")
    parser.add_argument("--max-message-mb", type=float, default=8.0, help="largest accepted message")
    parser.add_argument("--max-connections", type=int, default=64, help="open websocket connections; more get 503")
    parser.add_argument(
        "--send-timeout-ms", type=float, default=5000.0, help="close a connection that reads no reply for this long"
    )
    parser.add_argument(
        "--history-mb",
        type=float,
        default=128.0,
        help="memory for two-frame models' per-robot previous frames (kept at the model's size, LRU beyond)",
    )
    parser.add_argument("--history-idle-s", type=float, default=60.0, help="forget a robot's frames after this idle")
    parser.add_argument("--num-threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none", help="passed to Policy.from_pretrained")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let an HF checkpoint run Python code shipped in its folder (never on unless you pass this)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="server log verbosity"
    )


def load_policy(path: str, quantize: str = "none", num_threads: int | None = None, trust_remote_code: bool = False):
    """``rt2.policy.Policy.from_pretrained(path)``, passing ``quantize`` only if the Policy supports it."""
    import torch

    from rt2.policy import Policy

    if num_threads:
        torch.set_num_threads(num_threads)
    kwargs = {}
    if quantize != "none":
        if "quantize" not in inspect.signature(Policy.from_pretrained).parameters:
            raise ValueError("this rt2 Policy does not support --quantize; use --quantize none")
        kwargs["quantize"] = quantize
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    return Policy.from_pretrained(path, **kwargs)


def return_large_buffers_to_os(threshold: int = 2**20) -> bool:
    """glibc only: give every allocation of ``threshold`` bytes or more its own mmap, so a client's multi-MB frame
    goes back to the OS once freed. Trap: glibc raises its mmap threshold after the first large free (up to
    32 MB), after which such buffers come from the heap and a burst of big frames leaves the server's RSS high
    long after the clients left (issue 17). Returns whether the setting took effect."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, threshold))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (macOS, musl): their allocators behave differently anyway
        return False


async def serve_until_signal(server: PolicyServer) -> None:
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host = f"[{server.config.host}]" if ":" in server.config.host else server.config.host
    print(f"rt2 serve: ready on ws://{host}:{server.port} (GET /healthz /readyz /metrics)", flush=True)
    await stop.wait()
    print("rt2 serve: shutting down (finishing in-flight requests)", flush=True)
    await server.shutdown()


def run(args: argparse.Namespace) -> int:
    from rt2.policy.default import resolve_policy  # imports torch (rt2.policy); keep `rt2 serve --help` light

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return_large_buffers_to_os()
    config = ServerConfig(
        host=args.host,
        port=args.port,
        token=args.token or None,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        deadline_ms=args.deadline_ms,
        max_message_bytes=int(args.max_message_mb * 2**20),
        max_connections=args.max_connections,
        send_timeout_ms=args.send_timeout_ms,
        history_mb=args.history_mb,
        history_idle_s=args.history_idle_s,
    )
    try:
        config.validate()  # before loading a model: a refused bind should fail in milliseconds
        policy = load_policy(resolve_policy(args.policy), args.quantize, args.num_threads, args.trust_remote_code)
        server = PolicyServer(policy, config)
    except (ValueError, FileNotFoundError) as e:
        print(f"rt2 serve: error: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_until_signal(server))
    except OSError as e:  # port in use, address not available
        print(f"rt2 serve: error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    return 0
