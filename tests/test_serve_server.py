"""Server robustness over real loopback sockets (model irrelevant: a deterministic numpy policy)."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from rt2.serve import wire
from rt2.serve.server import ServerConfig, ServerThread
from serve_fakes import EchoPolicy

IMG = np.full((32, 32, 3), 128, np.uint8)


def _ws(url, **kw):
    return connect(url, open_timeout=10, compression=None, **kw).__enter__()


def _req(ws, msg, timeout=10.0):
    ws.send(msg if isinstance(msg, (bytes, str)) else wire.packb(msg))
    reply = ws.recv(timeout=timeout)
    if isinstance(reply, str):  # an openpi-style request ("prompt") is answered an error as a text frame
        code, _, message = reply.partition(": ")
        return {"error": {"code": code, "message": message}, "text_frame": True}
    return wire.unpackb(reply)


def _good(ws, **extra):
    r = _req(ws, {"image": IMG, "instruction": "push the block", "timestamp": 7.0, **extra})
    assert "actions" in r, r
    return r


@pytest.fixture(scope="module")
def server():
    pol = EchoPolicy(n_frames=2)
    with ServerThread(pol, ServerConfig(port=0, max_message_bytes=256 * 1024)) as st_:
        st_.policy = pol
        yield st_


def test_handshake_and_reply(server):
    with _ws(server.url) as ws:
        meta = wire.unpackb(ws.recv(timeout=10))
        assert meta["action_space"]["dim"] == 2 and meta["n_frames"] == 2 and meta["image_size"] == [32, 32]
        assert meta["limits"]["max_message_bytes"] == 256 * 1024 and "token" not in str(meta["limits"])
        r = _good(ws)
        assert r["actions"].dtype == np.float32 and r["actions"].shape == (2,)
        assert r["timestamp"] == 7.0 and r["action_text"] and {"infer_ms", "queue_ms"} <= set(r["server_timing"])


BAD = [
    (b"\xc1", "msgpack"),
    ("hello", "text frames"),
    (msgpack.packb([1, 2, 3]), "map"),
    (wire.packb({"instruction": "x"}), "missing image"),
    (wire.packb({"image": IMG}), "missing instruction"),
    (wire.packb({"image": IMG, "instruction": 5}), "string"),
    (wire.packb({"image": IMG.astype(np.float32), "instruction": "x"}), "uint8"),
    (wire.packb({"image": IMG[..., :2], "instruction": "x"}), "RGB"),
    (wire.packb({"image": [IMG, IMG, IMG], "instruction": "x"}), "frames"),
    (wire.packb({"image": "not an array", "instruction": "x"}), "uint8 array"),
    (wire.packb({"image": IMG, "instruction": "x", "reset": "yes"}), "reset"),
    (wire.packb({"image": np.zeros((1, 5000, 3), np.uint8), "instruction": "x"}), "size"),
    (
        msgpack.packb({"image": {b"__ndarray__": True, b"data": b"\0" * 7, b"dtype": "|u1", b"shape": [2, 2, 2]}}),
        "bytes",
    ),
    (msgpack.packb({"image": {b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": [1]}}), "dtype"),
]


def test_bad_requests_get_short_reasons_and_connection_survives(server):
    with _ws(server.url) as ws:
        ws.recv(timeout=10)
        for payload, needle in BAD:
            r = _req(ws, payload)
            assert r["error"]["code"] == "bad_request", (needle, r)
            msg = r["error"]["message"]
            assert needle.lower() in msg.lower() and "Traceback" not in msg and len(msg) <= 300, msg
        _good(ws)  # still usable


def test_oversized_message_closes_only_that_connection(server):
    with _ws(server.url) as other, _ws(server.url) as big:
        other.recv(timeout=10)
        big.recv(timeout=10)
        big.send(wire.packb({"image": np.zeros((400, 400, 3), np.uint8), "instruction": "x"}))  # 480 kB > 256 kB
        with pytest.raises(ConnectionClosed) as ei:
            big.recv(timeout=10)
        assert ei.value.rcvd is not None and ei.value.rcvd.code == 1009  # message too big
        _good(other)


_junk = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=50),
    st.builds(
        lambda d: msgpack.packb(d, use_bin_type=True),
        st.dictionaries(
            st.sampled_from(["image", "images", "instruction", "prompt", "reset", "robot_id", "timestamp", "state"]),
            st.one_of(
                st.none(),
                st.integers(-5, 5),
                st.floats(),
                st.text(max_size=8),
                st.binary(max_size=16),
                st.lists(st.integers(0, 3), max_size=3),
            ),
            max_size=6,
        ),
    ),
    st.builds(
        lambda shape, dt: wire.packb({"images": np.zeros(shape, dt), "prompt": "go"}),
        st.lists(st.integers(0, 6), max_size=5),
        st.sampled_from([np.uint8, np.float32, np.int64, np.bool_]),
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(_junk, min_size=1, max_size=4))
def test_fuzz_server_stays_up(server, payloads):
    with _ws(server.url) as ws:
        ws.recv(timeout=10)
        for p in payloads:
            r = _req(ws, p)
            assert ("error" in r and r["error"]["code"] == "bad_request") or "actions" in r, r
        _good(ws)
    with _ws(server.url) as other:  # and the server still serves a fresh connection
        other.recv(timeout=10)
        _good(other)


def test_two_frame_history_per_robot_and_reset(server):
    pol = server.policy
    dark, bright = np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)
    with _ws(server.url) as ws:
        ws.recv(timeout=10)
        _req(ws, {"image": dark, "instruction": "a", "robot_id": "r1", "reset": True})
        assert [f.mean() for f in pol.last_images[0]] == [0, 0]  # first step: current frame repeated
        _req(ws, {"image": bright, "instruction": "a", "robot_id": "r1"})
        assert [f.mean() for f in pol.last_images[0]] == [0, 255]  # previous frame, then current
        _req(ws, {"image": dark, "instruction": "a", "robot_id": "r2"})  # another robot: own history
        assert [f.mean() for f in pol.last_images[0]] == [0, 0]
        _req(ws, {"image": dark, "instruction": "a", "robot_id": "r1", "reset": True})
        assert [f.mean() for f in pol.last_images[0]] == [0, 0]
        _req(ws, {"images": np.stack([bright, dark]), "instruction": "a", "robot_id": "r3"})  # explicit 2 frames
        assert [f.mean() for f in pol.last_images[0]] == [255, 0]


def test_stalled_clients_do_not_delay_others(server):
    host, port = "127.0.0.1", server.server.port
    # 1) a raw TCP client that sends half an HTTP upgrade and stalls; 2) a websocket client that sends half a
    #    frame; 3) one that floods requests and never reads its replies.
    raw = socket.create_connection((host, port))
    raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    half = _ws(server.url)
    half.recv(timeout=10)
    half.socket.sendall(b"\x82\x7e\x10\x00")  # binary frame header announcing 4096 bytes, none sent
    flood = _ws(server.url)
    payload = wire.packb({"image": np.zeros((64, 64, 3), np.uint8), "instruction": "x"})

    def spam():  # may block once the server stops reading this connection: that is the point
        try:
            for _ in range(300):
                flood.send(payload)
        except Exception:
            pass

    threading.Thread(target=spam, daemon=True).start()
    time.sleep(0.2)
    try:
        with _ws(server.url) as ws:
            ws.recv(timeout=10)
            t0 = time.monotonic()
            for _ in range(20):
                _good(ws)
            assert time.monotonic() - t0 < 10
    finally:
        raw.close()
        half.socket.close()
        flood.socket.close()


def test_client_disconnects_mid_request():
    pol = EchoPolicy(delay_s=0.2)
    with ServerThread(pol, ServerConfig(port=0)) as srv:
        ws = _ws(srv.url)
        ws.recv(timeout=10)
        ws.send(wire.packb({"image": IMG, "instruction": "x"}))
        ws.socket.close()  # gone before the reply
        time.sleep(0.3)
        with _ws(srv.url) as ok:
            ok.recv(timeout=10)
            _good(ok)
        assert srv.server.metrics.snapshot()["requests"].get("internal", 0) == 0


def test_micro_batching_batches_concurrent_robots():
    pol = EchoPolicy(delay_s=0.03)
    with ServerThread(pol, ServerConfig(port=0, max_batch=8, max_wait_ms=20)) as srv:

        def robot(i):
            with _ws(srv.url) as ws:
                ws.recv(timeout=10)
                for _ in range(6):
                    _good(ws, robot_id=f"r{i}")

        threads = [threading.Thread(target=robot, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        snap = srv.server.metrics.snapshot()
        assert snap["requests"]["ok"] == 36
        assert snap["mean_batch_size"] > 1.5, snap


def test_overloaded_and_deadline():
    pol = EchoPolicy(delay_s=0.3)
    with ServerThread(pol, ServerConfig(port=0, max_batch=1, max_queue=1, deadline_ms=1500)) as srv:
        conns = [_ws(srv.url) for _ in range(4)]
        for c in conns:
            c.recv(timeout=10)
        for c in conns:
            c.send(wire.packb({"image": IMG, "instruction": "x", "timestamp": 1}))
        codes = []
        for c in conns:
            r = wire.unpackb(c.recv(timeout=10))
            codes.append(r["error"]["code"] if "error" in r else "ok")
        assert "overloaded" in codes and "ok" in codes, codes
        for c in conns:
            c.close()
    with ServerThread(EchoPolicy(delay_s=0.5), ServerConfig(port=0, deadline_ms=100)) as srv, _ws(srv.url) as ws:
        ws.recv(timeout=10)
        t0 = time.monotonic()
        r = _req(ws, {"image": IMG, "instruction": "x", "timestamp": 3})
        assert r["error"]["code"] == "deadline_exceeded" and r["timestamp"] == 3
        assert time.monotonic() - t0 < 0.45  # answered at the deadline, not after the 0.5 s inference


def _http(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), ""


def test_health_ready_metrics(server):
    base = f"http://127.0.0.1:{server.server.port}"
    assert _http(base + "/healthz")[0] == 200
    assert _http(base + "/readyz")[0] == 200
    with _ws(server.url) as ws:
        ws.recv(timeout=10)
        _good(ws)
    status, body, ctype = _http(base + "/metrics")
    assert status == 200 and "version=0.0.4" in ctype
    for name in (
        'rt2_requests_total{code="ok"}',
        "rt2_request_latency_seconds_bucket",
        "rt2_batch_size_bucket",
        "rt2_queue_depth",
        "rt2_ready 1",
    ):
        assert name in body, name


def test_token_required_off_loopback_and_checked():
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        with pytest.raises(ValueError, match="token"):
            ServerThread(EchoPolicy(), ServerConfig(host=host, port=0))
    with ServerThread(EchoPolicy(), ServerConfig(port=0, token="s3cret")) as srv:
        dup = [("Authorization", "Bearer s3cret"), ("Authorization", "Bearer s3cret")]
        for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}, dup):
            with pytest.raises(InvalidStatus) as ei:
                _ws(srv.url, additional_headers=headers)
            assert ei.value.response.status_code == 401
        assert _http(f"http://127.0.0.1:{srv.server.port}/metrics")[0] == 401
        assert _http(f"http://127.0.0.1:{srv.server.port}/healthz")[0] == 200
        for scheme in ("Bearer", "Api-Key"):  # openpi's client sends "Api-Key <key>"
            with _ws(srv.url, additional_headers={"Authorization": f"{scheme} s3cret"}) as ws:
                ws.recv(timeout=10)
                _good(ws)


def test_graceful_shutdown_finishes_in_flight():
    srv = ServerThread(EchoPolicy(delay_s=0.4), ServerConfig(port=0)).start()
    ws = _ws(srv.url)
    ws.recv(timeout=10)
    ws.send(wire.packb({"image": IMG, "instruction": "x", "timestamp": 9}))
    time.sleep(0.1)  # request is in flight
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    r = wire.unpackb(ws.recv(timeout=10))
    assert "actions" in r and r["timestamp"] == 9
    stopper.join(15)
    with pytest.raises((OSError, InvalidStatus)):
        _ws(srv.url)
