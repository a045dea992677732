"""The robot-side client and watchdog: deadlines, reconnects, metadata/action checks, import weight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.sync.server import serve as sync_serve

from rt2.serve import (
    DeadlineExceeded,
    InvalidAction,
    MetadataMismatch,
    Overloaded,
    PolicyClient,
    ServerUnavailable,
    StaleReply,
    Unauthorized,
    Watchdog,
    wire,
)
from rt2.serve.server import ServerConfig, ServerThread
from serve_fakes import EchoPolicy

IMG = np.full((32, 32, 3), 100, np.uint8)
TESTS = Path(__file__).resolve().parent


def test_client_imports_no_torch():
    """The robot side installs nothing heavy: every third-party module the client pulls in is numpy, msgpack or
    websockets (the standard library and cython_runtime, which msgpack's C extension registers, aside)."""
    code = (
        "import sys, json; before = set(sys.modules); import rt2.serve.client, rt2.serve.watchdog; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    top = set(json.loads(out.stdout))
    third_party = {
        m for m in top - set(sys.stdlib_module_names) if not m.startswith("_") and m not in ("rt2", "cython_runtime")
    }
    assert third_party <= {"numpy", "msgpack", "websockets"}, third_party
    assert "torch" not in top


@pytest.fixture(scope="module")
def server():
    with ServerThread(EchoPolicy(n_frames=2), ServerConfig(port=0)) as st:
        yield st


def test_act_and_metadata_checks(server):
    with PolicyClient(server.url, action_dim=2, image_size=(32, 32), deadline_s=5) as c:
        a = c.act(IMG, "push it")
        assert a.shape == (2,) and a.dtype == np.float32 and np.all(np.abs(a) <= 0.1)
        assert c.last_timing["infer_ms"] >= 0 and c.metadata["model_name"] == "echo"
        assert c.act([IMG, IMG], "push it", reset=True).shape == (2,)
    with pytest.raises(MetadataMismatch, match="2-D"):
        PolicyClient(server.url, action_dim=7, deadline_s=5).connect()
    with pytest.raises(MetadataMismatch, match="images"):
        PolicyClient(server.url, image_size=(224, 224), deadline_s=5).connect()


class _BadPolicy(EchoPolicy):
    def __init__(self, value):
        super().__init__(n_frames=1)
        self.value = value

    def predict_action_batch(self, images, instructions):
        return np.full((len(images), 2), self.value, np.float32), ["0 0"] * len(images)


@pytest.mark.parametrize("value", [np.nan, np.inf, 0.5, -3.0])
def test_invalid_actions_rejected(value):
    with (
        ServerThread(_BadPolicy(value), ServerConfig(port=0)) as st,
        PolicyClient(st.url, deadline_s=5) as c,
        pytest.raises(InvalidAction),
    ):
        c.act(IMG, "x")


class _RawServer:
    """A hand-written websocket server: sends rt2 metadata, then replies via ``reply(request) -> bytes | None``."""

    def __init__(self, reply):
        meta = wire.packb(
            {"action_space": {"dim": 2, "names": ["x", "y"], "low": [-1, -1], "high": [1, 1]}, "image_size": [32, 32]}
        )

        def handler(ws):
            ws.send(meta)
            for msg in ws:
                out = reply(wire.unpackb(msg))
                if out is not None:
                    ws.send(out)

        self.srv = sync_serve(handler, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.srv.socket.getsockname()[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def test_stale_reply_rejected():
    srv = _RawServer(lambda req: wire.packb({"actions": np.zeros(2, np.float32), "timestamp": req["timestamp"] - 1.0}))
    try:
        with PolicyClient(srv.url, deadline_s=5) as c, pytest.raises(StaleReply):
            c.act(IMG, "x")
    finally:
        srv.close()


def test_hung_server_raises_within_deadline():
    srv = _RawServer(lambda req: None)  # never answers
    try:
        with PolicyClient(srv.url, deadline_s=0.3) as c:
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                c.act(IMG, "x")
            assert time.monotonic() - t0 < 3.0
    finally:
        srv.close()


def test_server_errors_map_to_exceptions():
    with ServerThread(EchoPolicy(delay_s=0.3, n_frames=1), ServerConfig(port=0, max_batch=1, max_queue=1)) as st:
        clients = [PolicyClient(st.url, deadline_s=5) for _ in range(4)]
        errors = []

        def call(c):
            try:
                c.act(IMG, "x")
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=call, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert any(isinstance(e, Overloaded) for e in errors), errors
    with ServerThread(EchoPolicy(), ServerConfig(port=0, token="abc")) as st:
        with pytest.raises(Unauthorized):
            PolicyClient(st.url, token="nope", deadline_s=5).connect()
        assert PolicyClient(st.url, token="abc", deadline_s=5).act(IMG, "x").shape == (2,)


def _start_child(port: int) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "serve_child.py"), str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    line = proc.stdout.readline()
    assert line.strip().isdigit(), "child server failed to start"
    return proc, int(line)


def test_server_killed_mid_run_client_raises_and_watchdog_stops_then_reconnects():
    proc, port = _start_child(0)
    stops: list[float] = []
    errors: list[tuple[type, float]] = []
    acted = threading.Event()
    done = threading.Event()
    client = PolicyClient(f"ws://127.0.0.1:{port}", deadline_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2)

    def robot_loop():
        with Watchdog(0.3, lambda: stops.append(time.monotonic())) as wd:
            while not done.is_set():
                t = time.monotonic()
                try:
                    client.act(IMG, "x")
                    wd.feed()
                    acted.set()
                except (ServerUnavailable, DeadlineExceeded) as e:
                    errors.append((type(e), time.monotonic() - t))
                time.sleep(0.05)

    th = threading.Thread(target=robot_loop, daemon=True)
    th.start()
    try:
        assert acted.wait(20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        deadline = killed + 10
        while (not errors or not stops) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert errors and all(dt < 0.5 + 0.5 for _, dt in errors), errors  # within the deadline (+ slack)
        assert stops and stops[0] - killed < 2.0, stops  # the robot was stopped
        # restart on the same port: the client reconnects by itself (backoff, no new client object)
        acted.clear()
        proc, _ = _start_child(port)
        assert acted.wait(20), errors[-3:]
    finally:
        done.set()
        th.join(10)
        proc.kill()
        proc.wait(10)
        client.close()


def test_watchdog_trips_once_and_rearms():
    calls = []
    with Watchdog(0.1, lambda: calls.append(1), poll_s=0.01) as wd:
        for _ in range(10):  # fed in time: never trips
            wd.feed()
            time.sleep(0.02)
        assert calls == [] and not wd.tripped
        time.sleep(0.4)
        assert calls == [1] and wd.tripped  # one stop, not one per poll
        wd.feed()
        assert not wd.tripped
        time.sleep(0.4)
        assert calls == [1, 1] and wd.trips == 2
