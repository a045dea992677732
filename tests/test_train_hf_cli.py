"""A local Hugging Face checkpoint folder -> ``rt2 train`` -> ``rt2 eval`` -> ``rt2 serve``, from the CLI, for every
supported family (the tiny folders ``rt2.models.hf_tiny`` writes are laid out like a downloaded snapshot)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from rt2 import cli

pytest.importorskip("transformers")
pytest.importorskip("peft")

FAMILIES = ["paligemma", "idefics3", "qwen2_vl", "llava"]
COMMON = ["--preset", "debug", "--steps", "1", "--batch-size", "2", "--no-progress", "--tokenizer-corpus", "50"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from rt2.models.hf_tiny import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("hf_cli")
    argv = ["collect", "--episodes", "2", "--image-size", "48x64", "--no-progress", "--out", str(root / "data")]
    assert cli.main(argv) == 0
    for fam in FAMILIES:
        write_tiny_checkpoint(root / fam, fam, seed=0)
    return root


@pytest.fixture(scope="module")
def trained(root):
    """Each family fine-tuned from its folder (family read from config.json), LoRA on for one of them."""
    runs = {}
    for fam in FAMILIES:
        extra = ["--lora-rank", "4", "--freeze-vision"] if fam == "paligemma" else []
        argv = ["train", "--regime", "finetune", "--model", "hf", "--model-path", str(root / fam), *extra]
        assert cli.main([*argv, "--data", str(root / "data"), "--out", str(root / f"run_{fam}"), *COMMON]) == 0
        runs[fam] = root / f"run_{fam}" / "final"
    return runs


@pytest.mark.parametrize("family", FAMILIES)
def test_folder_trains_evaluates_and_serves(root, trained, family):
    from rt2.policy import Policy
    from rt2.serve import PolicyClient
    from rt2.serve.server import ServerConfig, ServerThread

    final = trained[family]
    cfg = json.loads((final.parent / "config.json").read_text())
    assert cfg["model"] == "hf" and cfg["model_path"] == str(root / family)
    out = root / f"eval_{family}"
    argv = ["eval", "--policy", str(final), "--suite", "seen", "--episodes", "1", "--max-steps", "2"]
    assert cli.main([*argv, "--videos", "0", "--num-envs", "1", "--quiet", "--out", str(out)]) == 0
    info = json.loads((out / "eval_info.json").read_text())
    assert info["overall"]["n"] >= 1 and info["overall"]["invalid_actions"] == 0
    policy = Policy.from_pretrained(final)
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with (
        ServerThread(policy, ServerConfig(port=0, max_wait_ms=5)) as server,
        PolicyClient(server.url, action_dim=2, deadline_s=30) as client,
    ):
        remote = client.act(frame, "push the red moon to the blue cube", reset=True)
    local = policy.predict_action([frame], "push the red moon to the blue cube")
    np.testing.assert_array_equal(remote, local)


def test_rt2_serve_command_on_the_trained_folder(trained):
    from rt2.serve import PolicyClient

    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "rt2.cli", "serve", "--policy", str(trained["paligemma"]), "--port", "0"]
    p = subprocess.Popen(
        [*argv, "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = p.stdout.readline()
        assert "ready on ws://127.0.0.1:" in line, (line, p.stderr.read() if p.poll() is not None else "")
        with PolicyClient(re.search(r"ws://\S+", line).group(0), deadline_s=30) as client:
            assert client.act(np.zeros((48, 64, 3), np.uint8), "push the red moon").shape == (2,)
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_pretrain_with_a_named_family_and_clear_errors(root, capsys):
    data, pg = str(root / "data"), str(root / "paligemma")
    argv = ["pretrain", "--model", "hf-paligemma", "--model-path", pg, "--out", str(root / "pt"), *COMMON]
    assert cli.main(argv) == 0
    assert (root / "pt" / "final" / "vla.json").is_file()
    train = ["train", "--data", data, *COMMON]
    cases = [
        (["--regime", "finetune", "--model", "hf", "--out", str(root / "e1")], "add --model-path DIR"),
        (
            ["--regime", "finetune", "--model", "hf-llava", "--model-path", pg, "--out", str(root / "e2")],
            "holds a paligemma",
        ),
        (["--regime", "scratch", "--model", "hf", "--model-path", pg, "--out", str(root / "e3")], "random weights"),
        (["--regime", "finetune", "--model-path", pg, "--out", str(root / "e4")], "use it with --model hf"),
        (
            [
                "--regime",
                "finetune",
                "--model",
                "hf",
                "--model-path",
                pg,
                "--init",
                str(root / "pt"),
                "--out",
                str(root / "e5"),
            ],
            "give one",
        ),
    ]
    for extra, message in cases:  # user errors: one line on stderr, exit code 2, no traceback
        capsys.readouterr()
        assert cli.main([*train, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
