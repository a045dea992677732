"""DDP over 2 CPU processes (gloo) through ``accelerate launch`` gives the same losses as 1 process for the same
global batch (per-process batch = global / 2, gradients averaged), and resumes.

Run as a script by ``accelerate launch`` (see ``_launch``); as a test it takes ~20-40 s on this machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ACCELERATE = Path(sys.executable).with_name("accelerate")
STEPS, BATCH = 4, 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(run_dir: str, resume: bool) -> None:
    """One process of the launch: train (or resume) the MLP; rank 0 writes its losses."""
    import torch

    from test_train_loop import make_trainer

    tr = make_trainer(run_dir, dropout=0.0, steps=STEPS, ckpt_every=2, batch_size=BATCH)
    assert (tr.acc.num_processes, tr.micro_batch) == (2, BATCH // 2), (tr.acc.num_processes, tr.micro_batch, tr.cfg)
    res = tr.fit(resume=resume, until=None if resume else 2)
    if tr.acc.is_main_process:
        name = "resumed.json" if resume else "first.json"
        Path(run_dir, name).write_text(json.dumps({"losses": res.losses, "world": tr.acc.num_processes}))
    params = torch.cat([p.detach().flatten() for p in tr.model.parameters()])
    gathered = tr.acc.gather(params.unsqueeze(0))
    assert torch.equal(gathered[0], gathered[1]), "DDP replicas diverged"
    tr.close()


def _launch(run_dir: Path, resume: bool) -> None:
    cmd = [
        str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        __file__, str(run_dir), *(["--resume"] if resume else []),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


@pytest.mark.slow
def test_two_processes_match_one_and_resume(tmp_path):
    from test_train_loop import make_trainer

    single = make_trainer(tmp_path / "single", dropout=0.0, steps=STEPS, batch_size=BATCH).fit()
    _launch(tmp_path / "ddp", resume=False)
    _launch(tmp_path / "ddp", resume=True)
    first = json.loads((tmp_path / "ddp/first.json").read_text())
    resumed = json.loads((tmp_path / "ddp/resumed.json").read_text())
    assert first["world"] == 2
    ddp = first["losses"] + resumed["losses"]
    assert len(ddp) == STEPS
    assert ddp == pytest.approx(single.losses, rel=1e-4, abs=1e-6)
    ckpt = tmp_path / "ddp/checkpoints/step_00000004"
    assert (ckpt / "rng_rank0.safetensors").exists() and (ckpt / "rng_rank1.safetensors").exists()


if __name__ == "__main__":
    from rt2.train.trainer import exit_launched_process

    _worker(sys.argv[1], resume="--resume" in sys.argv[2:])
    exit_launched_process(0)  # the gloo teardown abort this avoids failed CI once (see its docstring)
