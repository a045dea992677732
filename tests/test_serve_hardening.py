"""Issue 17's adversarial cases against the server: one robot's request never fails another's, bounded history
memory, clients that stop reading, the connection cap. Real loopback sockets, bounded loops."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from rt2.serve import wire
from rt2.serve.history import FrameHistory
from rt2.serve.server import ServerConfig, ServerThread
from serve_fakes import EchoPolicy

IMG = np.full((32, 32, 3), 128, np.uint8)


class PickyPolicy(EchoPolicy):
    """Raises like a real model on what it cannot take: frames under 2 px, prompts over ``max_chars``, and the
    word "poison" (a model limit the server's parser does not know: only the batcher's retry can isolate it)."""

    max_chars = 40

    def check_instruction(self, instruction: str) -> None:
        if len(instruction) > self.max_chars:
            raise ValueError(f"instruction too long: {len(instruction)} characters, the limit is {self.max_chars}")

    def predict_action_batch(self, images, instructions):
        for frames, text in zip(images, instructions, strict=True):
            if min(min(f.shape[:2]) for f in frames) < 2 or len(text) > self.max_chars or "poison" in text:
                raise ValueError(f"the model cannot take {text[:20]!r}")
        return super().predict_action_batch(images, instructions)


def _ws(url):
    return connect(url, open_timeout=10, compression=None).__enter__()


def _call(ws, msg, timeout=10.0):
    ws.send(wire.packb(msg))
    return wire.unpackb(ws.recv(timeout=timeout))


def test_poisoned_requests_never_fail_a_well_behaved_robot(caplog):
    """Issue 17 #1: a robot at 10 Hz gets >= 59 of 60 actions while others send over-long instructions, 1-pixel
    images and requests the model raises on; each bad request gets bad_request, and no traceback is logged."""
    pol = PickyPolicy(n_frames=2, delay_s=0.01)
    stop = threading.Event()
    codes: dict[str, list[str]] = {"long": [], "tiny": [], "poison": []}
    bad = {
        "long": {"image": IMG, "instruction": "push " * 100},
        "tiny": {"image": np.zeros((1, 1, 3), np.uint8), "instruction": "push"},
        "poison": {"image": IMG, "instruction": "poison the batch"},
    }
    caplog.set_level(logging.WARNING, logger="rt2.serve")
    with ServerThread(pol, ServerConfig(port=0, max_batch=8, max_wait_ms=20)) as srv:

        def attacker(kind):
            with _ws(srv.url) as ws:
                ws.recv(timeout=10)
                while not stop.is_set():
                    r = _call(ws, bad[kind])
                    codes[kind].append(r["error"]["code"] if "error" in r else "ok")

        threads = [threading.Thread(target=attacker, args=(k,), daemon=True) for k in bad]
        for t in threads:
            t.start()
        ok = 0
        with _ws(srv.url) as ws:
            ws.recv(timeout=10)
            next_tick = time.monotonic()
            for i in range(60):
                r = _call(ws, {"image": IMG, "instruction": "push the red moon", "robot_id": "good", "timestamp": i})
                ok += "actions" in r and r["timestamp"] == i
                next_tick += 0.1
                time.sleep(max(0.0, next_tick - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(10)
        mixed = srv.server.metrics.snapshot()
    assert ok >= 59, ok
    for kind, got in codes.items():
        assert got and set(got) == {"bad_request"}, (kind, set(got))
    assert mixed["requests"].get("internal", 0) == 0
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_limits_are_checked_when_parsed_and_named():
    pol = PickyPolicy(n_frames=1)
    with ServerThread(pol, ServerConfig(port=0)) as srv, _ws(srv.url) as ws:
        meta = wire.unpackb(ws.recv(timeout=10))
        assert meta["limits"]["min_image_side"] == 2
        r = _call(ws, {"image": np.zeros((1, 64, 3), np.uint8), "instruction": "go"})
        assert r["error"]["code"] == "bad_request" and "2..2048" in r["error"]["message"]
        r = _call(ws, {"image": IMG, "instruction": "x" * 41})
        assert r["error"]["code"] == "bad_request" and "limit is 40" in r["error"]["message"]
        assert pol.batch_sizes == [1]  # only the warm-up: neither request reached the model
        r = _call(ws, {"image": IMG, "instruction": "poison"})  # the model's own refusal: bad_request, its reason
        assert r["error"]["code"] == "bad_request" and "cannot take" in r["error"]["message"]
        assert "actions" in _call(ws, {"image": IMG, "instruction": "go"})


# ---- history memory ----------------------------------------------------------------------------------------
def test_history_is_stored_at_model_size_bounded_and_expires():
    now = [0.0]
    h = FrameHistory(2, (8, 12), max_bytes=10 * 8 * 12 * 3, idle_s=5.0, clock=lambda: now[0])
    big = np.full((600, 800, 3), 200, np.uint8)
    frames = h.complete("a", (big,), reset=False, owner="c1")
    assert [f.shape for f in frames] == [(8, 12, 3)] * 2  # the model's size, never the client's
    assert h.nbytes == 8 * 12 * 3
    for i in range(25):
        h.complete(f"r{i}", (big,), reset=False, owner="c2")
    assert len(h) == 10 and h.nbytes == 10 * 8 * 12 * 3 and h.evicted == 16  # LRU within the byte budget
    assert h.forget_owner("c2") == 10 and len(h) == 0 and h.nbytes == 0  # the connection closed
    h.complete("b", (big,), reset=False, owner="c3")
    now[0] = 4.9
    h.complete("c", (big,), reset=False, owner="c3")
    now[0] = 5.0
    assert h.expire() == 1 and len(h) == 1  # "b" was idle 5 s; "c" only 0.1 s


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def test_history_memory_stays_bounded_under_many_robot_ids():
    """Issue 17 #2: 256 robot ids with 1200x1200 frames (1.1 GB if kept as sent) keep 256 x 32 x 32 x 3 bytes."""
    n_ids, side = 256, 1200
    frame = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    with ServerThread(EchoPolicy(n_frames=2), ServerConfig(port=0, max_message_bytes=8 * 2**20)) as srv:
        rss0 = _rss_mb()
        with _ws(srv.url) as ws:
            ws.recv(timeout=10)
            payload = {"image": frame, "instruction": "push"}
            for i in range(n_ids):
                assert "actions" in _call(ws, {**payload, "robot_id": f"robot-{i}"})
            hist = srv.server.history
            assert len(hist) == n_ids and hist.nbytes == n_ids * 32 * 32 * 3
            grown = _rss_mb() - rss0
        deadline = time.monotonic() + 5
        while len(hist) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(hist) == 0 and hist.nbytes == 0  # the connection closed: its robots' frames are gone
    # Kept as sent, the frames alone would be 256 x 4.3 MB = 1.1 GB; a margin for allocator caches.
    assert grown < 200, f"RSS grew {grown:.0f} MB"


# ---- clients that stop reading, connection cap ---------------------------------------------------------
def _raw_ws(port: int) -> socket.socket:
    """A websocket client by hand, so that it can stop reading entirely (library clients read in a thread)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window fills quickly
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    head = struct.pack("!BB", 0x82, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    return head + b"\0\0\0\0" + payload  # a zero mask key: the payload goes as is


def test_clients_that_stop_reading_are_closed_and_others_still_served():
    """Issue 17 #3: flooding connections that never read are closed after send_timeout_ms."""
    bad = _frame(wire.packb({"image": np.zeros((1, 1, 3), np.uint8), "instruction": "x" * 40}))  # instant error
    cfg = ServerConfig(port=0, send_timeout_ms=300)
    with ServerThread(EchoPolicy(), cfg) as srv:
        socks = [_raw_ws(srv.server.port) for _ in range(4)]

        def flood(s):
            with contextlib.suppress(OSError):  # sendall blocks once the server stops reading; fails once closed
                s.sendall(bad * 30000)

        threads = [threading.Thread(target=flood, args=(s,), daemon=True) for s in socks]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        while srv.server.connections and time.monotonic() - t0 < 15:
            time.sleep(0.05)
        assert srv.server.connections == 0, "non-reading connections are still open"
        assert srv.server.metrics.snapshot()["requests"].get("slow_client_closed", 0) == 4
        t1 = time.monotonic()
        with _ws(srv.url) as ws:
            ws.recv(timeout=3)
            assert "actions" in _call(ws, {"image": IMG, "instruction": "go"})
        assert time.monotonic() - t1 < 3
        for s in socks:
            s.close()


def test_connection_cap():
    with ServerThread(EchoPolicy(), ServerConfig(port=0, max_connections=2)) as srv:
        a, b = _ws(srv.url), _ws(srv.url)
        for c in (a, b):
            c.recv(timeout=10)
        with pytest.raises(InvalidStatus) as ei:
            _ws(srv.url)
        assert ei.value.response.status_code == 503 and b"too many connections" in ei.value.response.body
        a.close()
        deadline = time.monotonic() + 5
        while srv.server.connections > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        with _ws(srv.url) as c:  # a slot is free again
            c.recv(timeout=10)
        b.close()


# ---- rt2 run-robot after losing its server -------------------------------------------------------------
class _LosesServerAfter:
    """A PolicyClient stand-in whose server goes away after ``ok_calls`` actions."""

    ok_calls = 4

    def __init__(self, *args, **kwargs) -> None:
        self.calls = 0

    def connect(self) -> dict:
        return {"action_space": {"low": [-0.1, -0.1], "high": [0.1, 0.1]}, "model_name": "fake"}

    def act(self, image, instruction, reset=False):
        from rt2.serve.errors import ServerUnavailable

        self.calls += 1
        if self.calls > self.ok_calls:
            time.sleep(0.02)
            raise ServerUnavailable("connection refused")
        return np.zeros(2, np.float32)

    def close(self) -> None:
        pass


def test_run_robot_exits_nonzero_when_episodes_ran_without_the_server(monkeypatch, capsys):
    """Issue 17 #7: losing the server is an error exit that says how many episodes it spoiled."""
    from rt2 import cli
    from rt2.serve import robot

    monkeypatch.setattr(robot, "PolicyClient", _LosesServerAfter)
    argv = ["run-robot", "--server", "ws://127.0.0.1:9", "--episodes", "2", "--max-steps", "8", "--hz", "200"]
    assert cli.main([*argv, "--watchdog-ms", "30"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 of 2 episodes ended without the server" in err[0] and "12 failed calls" in err[0], err
    _LosesServerAfter.ok_calls = 10**6
    try:
        assert cli.main([*argv, "--watchdog-ms", "5000"]) == 0
    finally:
        _LosesServerAfter.ok_calls = 4
