"""Serving a REAL rt2 Policy (random-init pali-tiny): correctness through the wire, openpi interop, batching,
the remote-robot loop, and the ``rt2 serve`` command's lifecycle (ready line, /readyz, SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest

from rt2.serve import PolicyClient
from rt2.serve.server import ServerConfig, ServerThread

CORPUS = [
    "Q: what action should the robot take to push the red star to the top left? A: 3 -7",
    "Instruction: move the blue cube next to the green circle Plan: push it Action: 1 2",
] * 50


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    d = tmp_path_factory.mktemp("pali_tiny")
    VLA.build("pali-tiny", TextTokenizer.train(CORPUS, vocab_size=256)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def policy(policy_dir):
    from rt2.policy import Policy

    return Policy.from_pretrained(policy_dir)


@pytest.fixture(scope="module")
def server(policy):
    with ServerThread(policy, ServerConfig(port=0, max_wait_ms=20)) as st:
        yield st


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (72, 96, 3), dtype=np.uint8)


def test_served_actions_match_in_process(server, policy):
    meta_h, meta_w = policy.image_size
    with PolicyClient(server.url, action_dim=policy.action_dim, image_size=(meta_h, meta_w), deadline_s=10) as c:
        assert c.connect()["model_name"] == "pali-tiny"
        for seed in range(3):
            img = _frame(seed)
            remote = c.act(img, "push the red star to the top left", reset=True)
            local = policy.predict_action([img], "push the red star to the top left")
            np.testing.assert_allclose(remote, local, atol=1e-6)
            assert c.last_reply["action_text"] and len(c.last_reply["action_text"].split()) == policy.action_dim


# openpi's client calls websockets' connect() outside a context manager (its code, not ours).
OPENPI_WARNING = "ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"


@pytest.mark.filterwarnings(OPENPI_WARNING)
def test_openpi_client_interop(server, policy):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    client = WebsocketClientPolicy(host=server.url)
    assert client.get_server_metadata()["action_space"]["names"] == ["x", "y"]
    img = _frame(7)
    out = client.infer(
        {"observation/image": img, "observation/state": np.zeros(2, np.float32), "prompt": "push the block left"}
    )
    # openpi's shape: an action chunk [H, D] with H = 1 (the request named its instruction "prompt")
    assert out["actions"].shape == (1, policy.action_dim) and np.isfinite(out["actions"]).all()
    np.testing.assert_allclose(out["actions"][0], policy.predict_action([img], "push the block left"), atol=1e-6)
    with pytest.raises(RuntimeError, match="bad_request: .*image"):  # a text frame, which openpi raises as the error
        client.infer({"prompt": "no image"})
    assert "actions" in client.infer({"image": img, "prompt": "still works"})  # same connection
    client._ws.close()


@pytest.mark.filterwarnings(OPENPI_WARNING)
def test_openpi_action_chunk_broker_gets_whole_actions(server, policy):
    """openpi's ActionChunkBroker(action_horizon=1) slices the reply's arrays row by row: it must hand the robot
    the whole action vector (x and y), not x alone."""
    from openpi_client.action_chunk_broker import ActionChunkBroker
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    client = WebsocketClientPolicy(host=server.url)
    broker = ActionChunkBroker(client, action_horizon=1)
    for k in range(3):
        img = _frame(20 + k)
        out = broker.infer({"observation/image": img, "prompt": "push the red star to the top left"})
        assert out["actions"].shape == (policy.action_dim,)
        np.testing.assert_allclose(
            out["actions"], policy.predict_action([img], "push the red star to the top left"), atol=1e-6
        )
    assert client.get_server_metadata()["openpi"]["actions"].startswith("float32[1, D]")
    client._ws.close()


def test_rt2_client_still_gets_flat_actions(server, policy):
    with PolicyClient(server.url) as c:
        reply = c.infer({"image": _frame(3), "instruction": "push the red star to the top left"})
        assert np.asarray(reply["actions"]).shape == (policy.action_dim,)


@pytest.mark.filterwarnings(OPENPI_WARNING)
def test_openpi_client_api_key(policy):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    with ServerThread(policy, ServerConfig(port=0, token="k3y")) as st:
        client = WebsocketClientPolicy(host=st.url, api_key="k3y")
        assert "actions" in client.infer({"image": _frame(1), "prompt": "go"})
        client._ws.close()


def test_concurrent_robots_are_batched(server):
    before = server.server.metrics.snapshot()

    def robot(i):
        with PolicyClient(server.url, robot_id=f"r{i}", deadline_s=20) as c:
            for k in range(4):
                c.act(_frame(i * 10 + k), "push the red star to the top left")

    threads = [threading.Thread(target=robot, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = server.server.metrics.snapshot()
    n_req = after["requests"]["ok"] - before["requests"].get("ok", 0)
    n_batches = after["batches"] - before["batches"]
    assert n_req == 24 and n_req / n_batches > 1.0, (n_req, n_batches)


def test_remote_robot_episode(server):
    from rt2.serve.robot import run_episodes
    from rt2.sim import TabletopEnv

    env = TabletopEnv()
    with PolicyClient(server.url, action_dim=2, deadline_s=5, robot_id="sim") as c:
        s = run_episodes(c, env, episodes=1, seed=3, hz=50.0, max_steps=6, watchdog_s=5.0, log=lambda *a: None)
    env.close()
    ep = s["episodes"][0]
    assert ep["steps"] == 6 and ep["errors"] == 0 and ep["hz"] > 0 and s["model_name"] == "pali-tiny"


def _cli(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "rt2.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def test_cli_refuses_public_bind_without_token(policy_dir):
    p = _cli("serve", "--policy", str(policy_dir), "--host", "0.0.0.0")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "token" in err and "Traceback" not in err


def test_cli_serve_ready_then_sigterm(policy_dir):
    p = _cli("serve", "--policy", str(policy_dir), "--port", "0", "--log-level", "WARNING")
    try:
        line = p.stdout.readline()
        assert "ready on ws://127.0.0.1:" in line, (line, p.stderr.read() if p.poll() is not None else "")
        url = re.search(r"ws://\S+", line).group(0)
        port = int(url.rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
            assert r.status == 200
        with PolicyClient(url, deadline_s=10) as c:
            assert c.act(_frame(0), "push").shape == (2,)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_prompt_limit_matches_the_model_and_is_checked_when_parsed(server, policy):
    """Issue 17 #1: check_instruction refuses exactly the instructions predict_action raises on, and the server
    answers them (and 1-pixel images) bad_request with the limit, before they can join another robot's batch."""
    img = _frame(0)
    limit = policy.input_limits()["max_prompt_tokens"]
    assert limit == policy.vla.backbone.config.max_text_len - policy.action_dim + 1
    for n in range(40, 140, 3):
        text = "push " + "red " * n
        try:
            policy.check_instruction(text)
            fits = True
        except ValueError as e:
            fits = False
            assert f"the limit is {limit}" in str(e)
        try:
            policy.predict_action([img], text)
            runs = True
        except ValueError:
            runs = False
        assert fits == runs, (n, fits, runs)
    from websockets.sync.client import connect

    from rt2.serve import wire

    with connect(server.url, open_timeout=10, compression=None) as ws:
        assert wire.unpackb(ws.recv(timeout=10))["limits"]["max_prompt_len"] == limit
        for msg, needle in (
            ({"image": img, "instruction": "push the red star " * 20}, f"limit is {limit}"),
            ({"image": np.zeros((1, 96, 3), np.uint8), "instruction": "push"}, "2..2048"),
        ):
            ws.send(wire.packb(msg))
            r = wire.unpackb(ws.recv(timeout=10))
            assert r["error"]["code"] == "bad_request" and needle in r["error"]["message"], r
