"""Checkpoint format and atomicity: pickle-free codec round trips, RNG capture, and a real SIGKILL between the
temp-directory write and the rename leaving the previous ``latest`` intact and resumable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rt2.train.checkpoint import CheckpointError, CheckpointManager, flatten, rng_state, set_rng_state, unflatten

TESTS = Path(__file__).resolve().parent


def test_codec_round_trips_nested_state():
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}, 1: {}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.95), "params": [0, 1], "fused": None, "nan": float("nan")}],
        "data": {"order": np.arange(5, dtype=np.int64), "rng": np.uint64(7), "names": ["web", "robot"]},
    }
    tensors: dict[str, torch.Tensor] = {}
    enc = flatten(state, tensors, "s")
    back = unflatten(enc, tensors)
    assert set(back["state"]) == {0, 1}
    assert torch.equal(back["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert back["param_groups"][0]["betas"] == (0.9, 0.95)
    assert np.array_equal(back["data"]["order"], state["data"]["order"]) and back["data"]["rng"] == 7
    with pytest.raises(TypeError, match="cannot store object"):
        flatten({"x": object()}, {}, "s")


def test_rng_state_round_trip():
    t, m = rng_state()
    want = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(t, m)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from test_train_loop import make_trainer
    import rt2.train.checkpoint as ck

    tr = make_trainer(sys.argv[1])
    tr.fit(until=4)                      # committed checkpoint step 4, latest -> step_00000004
    for _ in range(2):
        tr._train_step()
        tr.step += 1

    def killed_rename(src, dst):         # the process dies after every file of step 6 is written
        print("temp written:", sorted(os.listdir(src)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    ck.os.rename = killed_rename
    tr.save_checkpoint()
    print("unreachable", flush=True)
    """
)


def test_kill_between_temp_write_and_rename_keeps_latest(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(run)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "temp written: ['model.safetensors', 'rng_rank0.json'" in proc.stdout
    assert "unreachable" not in proc.stdout
    root = run / "checkpoints"
    assert (root / ".tmp-step_00000006").is_dir()  # the half-committed save is left behind...
    mgr = CheckpointManager(root)
    assert mgr.latest() == root / "step_00000004"  # ...but latest still names the previous checkpoint
    assert CheckpointManager.load_state(mgr.latest())["step"] == 4

    from test_train_loop import make_trainer

    resumed = make_trainer(run).fit(resume=True)  # loadable: resumes from step 4 and finishes
    assert resumed.start_step == 4 and resumed.final_step == 8
    assert not (root / ".tmp-step_00000006").exists()  # the next save removed the stale temp dir
    assert mgr.latest() == root / "step_00000008"


def test_dangling_pointer_is_a_clear_error(tmp_path):
    (tmp_path / "latest").write_text("step_00000099\n")
    with pytest.raises(CheckpointError, match="step_00000099, which is missing"):
        CheckpointManager(tmp_path).latest()
