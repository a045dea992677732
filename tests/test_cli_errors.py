"""Issue 17 #4-5: every subcommand answers bad input with one line and exit code 2, never a traceback; a
checkpoint cannot switch on trust_remote_code by itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rt2 import cli

CORPUS = ["Q: what action should the robot take to push the red star to the top left? A: 3 -7"] * 50


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> Path:
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    d = tmp_path_factory.mktemp("nano")
    VLA.build("pali-nano", TextTokenizer.train(CORPUS, vocab_size=256)).save_pretrained(d)
    return d


def _variant(src: Path, dst: Path, rel: str, edit) -> Path:
    """A copy of checkpoint ``src`` whose JSON file ``rel`` is changed by ``edit(dict) -> dict``."""
    shutil.copytree(src, dst)
    p = dst / rel
    p.write_text(json.dumps(edit(json.loads(p.read_text()))))
    return dst


def _hf_asking_for_trust(meta: dict) -> dict:
    return {**meta, "family": "hf", "hf": {"trust_remote_code": True}}


def _bad_inputs(tiny: Path, tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, a word the error line must contain). Each fails before any long-running work."""
    missing = str(tmp / "missing")
    odd_size = _variant(tiny, tmp / "odd_size", "backbone/config.json", lambda c: {**c, "image_size": "72x96"})
    corrupt = tmp / "corrupt"
    shutil.copytree(tiny, corrupt)
    (corrupt / "backbone" / "backbone.json").write_text("{not json")
    remote = _variant(tiny, tmp / "remote", "backbone/backbone.json", _hf_asking_for_trust)
    out = str(tmp / "out")
    return [
        (["eval", "--policy", missing, "--out", out, "--quiet"], "not a checkpoint"),
        (["eval", "--policy", str(odd_size), "--out", out, "--quiet"], "image_size"),
        (["eval", "--policy", str(corrupt), "--out", out, "--quiet"], "not valid JSON"),
        (["eval", "--policy", "oracle", "--suite", "nosuch", "--out", out], "nosuch"),
        (["eval", "--policy", "oracle", "--episodes", "-1", "--out", out, "--quiet"], "episodes"),
        (["eval", "--policy", str(remote), "--out", out, "--quiet"], "--trust-remote-code"),
        (["train", "--regime", "scratch", "--data", missing, "--out", out, "--set", "steps=abc"], "steps"),
        (["train", "--regime", "scratch", "--data", missing, "--out", out, "--set", "stepz=3"], "did you mean"),
        (["train", "--regime", "scratch", "--data", missing, "--out", out], "no such directory"),
        (["pretrain", "--out", out, "--set", "steps=abc"], "steps"),
        (["pretrain", "--out", out, "--preset", "debug", "--web-data", missing], "no such file"),
        (["serve", "--policy", missing], "does not exist"),
        (["serve", "--policy", str(odd_size)], "image_size"),
        (["serve", "--policy", str(remote)], "--trust-remote-code"),
        (["serve", "--host", "0.0.0.0"], "token"),
        (["serve", "--max-connections", "0"], "max_connections"),
        (["run-robot", "--policy", missing], "does not exist"),
        (["run-robot", "--server", "ws://127.0.0.1:9", "--policy", str(tiny)], "--policy"),
        (["vqa", "--policy", missing, "--out", out], "not a checkpoint"),
        (["pointing", "--policy", missing, "--out", out], "not a checkpoint"),
        (["pointing", "--policy", str(corrupt), "--out", out], "backbone.json"),
        (["pointing", "--policy", str(tiny), "--types", "nosuch", "--out", out], "nosuch"),
        (["pointing", "--policy", str(tiny), "--batch-size", "0", "--out", out], "--batch-size and --max-new-tokens"),
        (["vqa", "--policy", str(tiny), "--max-new-tokens", "0", "--out", out], "--batch-size and --max-new-tokens"),
        (["demo", "--policy", missing, "--out", out], "not a checkpoint"),
        (["collect", "--episodes", "-1", "--out", out], "episodes"),
        (["collect", "--episodes", "1", "--families", "nosuch", "--out", out], "nosuch"),
        (["oracle-table", "--episodes", "-1"], "episodes"),
        (["reproduce", "--budget", "nosuch", "--out", out], "nosuch"),
        (["reproduce", "--quick", "--stages", "train-nosuch", "--out", out], "no such stage"),
        (["reproduce", "--quick", "--pretrained", "pali-huge=x", "--out", out], "pali-huge"),
        (["reproduce", "--quick", "--jobs", "0", "--out", out], "--jobs"),
        (["eval", "--compare", missing, missing, "--out", out], "no eval_info.json"),
        (["bench", "nosuch"], "nosuch"),
    ]


def test_every_subcommand_answers_bad_input_with_one_line(tiny_policy, tmp_path, capsys):
    cases = _bad_inputs(tiny_policy, tmp_path)
    assert {argv[0] for argv, _ in cases} == set(cli.COMMANDS)  # a new command needs its bad-input cases here
    for argv, needle in cases:
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse's own errors (usage + one error line)
            code = e.code
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2, (argv, code, err)
        assert "Traceback" not in err and last.startswith(f"rt2 {argv[0]}") and needle in last, (argv, err)
        if not last.startswith(f"rt2 {argv[0]}: error: argument"):  # our own errors: exactly one line
            assert len(err.strip().splitlines()) == 1, (argv, err)


def _run(args: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rt2.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_no_traceback_from_the_program_and_debug_shows_it(tmp_path):
    r = _run(
        ["train", "--regime", "scratch", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "steps=x"]
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "rt2 train: error: config key 'steps' expects int, got 'x'"
    r = _run(
        [
            "train",
            "--regime",
            "scratch",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--set",
            "steps=x",
            "--debug",
        ]
    )
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_a_checkpoint_cannot_turn_on_trust_remote_code(tiny_policy, tmp_path, monkeypatch):
    from rt2.models.hf import HFBackbone
    from rt2.models.registry import load_backbone
    from rt2.policy import Policy

    remote = _variant(tiny_policy, tmp_path / "remote", "backbone/backbone.json", _hf_asking_for_trust)
    with pytest.raises(ValueError, match="--trust-remote-code"):
        Policy.from_pretrained(remote)
    seen = {}

    def fake_load(cls, path, **options):
        seen.update(options)
        raise RuntimeError("stop here")

    monkeypatch.setattr(HFBackbone, "load", classmethod(fake_load))
    with pytest.raises(RuntimeError, match="stop here"):  # the caller's keyword is the only way in
        Policy.from_pretrained(remote, trust_remote_code=True)
    assert seen["trust_remote_code"] is True
    plain = _variant(
        tiny_policy, tmp_path / "plain", "backbone/backbone.json", lambda m: {**m, "family": "hf", "hf": {}}
    )
    seen.clear()
    with pytest.raises(RuntimeError, match="stop here"):
        load_backbone(plain / "backbone")
    assert seen["trust_remote_code"] is False
