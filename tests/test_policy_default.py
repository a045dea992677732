"""The shipped default policy: where it is looked up, validation with clear errors, and every command's default
(``rt2 serve``/``rt2 eval`` refuse clearly when it is missing; ``rt2 run-robot`` without ``--server`` serves the
policy in-process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import rt2
from rt2.cli import main
from rt2.policy import default

CORPUS = ["Q: what action should the robot take to push the red moon to the blue cube? A: 3 -7"] * 20


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    d = tmp_path_factory.mktemp("tiny") / "ckpt"
    VLA.build("pali-tiny", TextTokenizer.train(CORPUS, vocab_size=256)).save_pretrained(d)
    return d


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """Point the resolver's package root at an empty folder (a fake install)."""
    monkeypatch.setattr(default, "package_root", lambda: tmp_path)
    return tmp_path


def _install(root: Path, src: Path) -> Path:
    dst = root.joinpath(*default.ASSET)
    shutil.copytree(src, dst)
    return dst


def test_default_dir_is_the_package_asset():
    assert default.default_policy_dir() == Path(rt2.__file__).resolve().parent / "assets" / "default_policy"


def test_explicit_policy_passes_through_unchanged(root):
    assert default.resolve_policy("oracle") == "oracle"
    assert default.resolve_policy("runs/x/final") == "runs/x/final"


def test_missing_default_errors_with_what_to_do(root):
    with pytest.raises(default.DefaultPolicyError) as e:
        default.resolve_policy(None)
    msg = str(e.value)
    assert str(root / "assets" / "default_policy") in msg and "--policy DIR" in msg and "reinstall" in msg


def test_installed_default_resolves_and_loads(root, tiny_dir):
    from rt2.policy import Policy

    dst = _install(root, tiny_dir)
    assert default.resolve_policy(None) == str(dst)
    assert Policy.from_pretrained(default.resolve_policy(None)).metadata()["model"] == "pali-tiny"


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("lfs", "Git LFS pointer"),
        ("truncate", "truncated"),
        ("no_weights", "missing backbone/model.safetensors"),
        ("bad_format", "not an rt2 VLA config"),
        ("bad_json", "not valid JSON"),
    ],
)
def test_damaged_default_is_refused(root, tiny_dir, damage, needle):
    dst = _install(root, tiny_dir)
    w = dst / default.WEIGHTS
    if damage == "lfs":
        w.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 18000000\n")
    elif damage == "truncate":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "no_weights":
        w.unlink()
    elif damage == "bad_format":
        (dst / "vla.json").write_text(json.dumps({"format": "something.else"}))
    else:
        (dst / "action_vocab.json").write_text("{not json")
    with pytest.raises(default.DefaultPolicyError, match=needle) as e:
        default.resolve_policy(None)
    assert "shipped default policy is unusable" in str(e.value) and "--policy DIR" in str(e.value)


@pytest.mark.parametrize("command", [["serve"], ["eval", "--suite", "seen"], ["run-robot"], ["demo", "--quick"]])
def test_commands_without_policy_explain_the_missing_default(root, command, capsys):
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "no --policy given" in err and "--policy DIR" in err and "Traceback" not in err


def test_run_robot_without_server_serves_the_default_in_process(root, tiny_dir, capsys):
    _install(root, tiny_dir)
    args = ["run-robot", "--episodes", "1", "--max-steps", "3", "--hz", "100", "--json", "--deadline-ms", "5000"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model_name"] == "pali-tiny" and summary["episodes"][0]["steps"] == 3
    assert summary["errors"] == 0


def test_run_robot_refuses_policy_with_remote_server(tiny_dir, capsys):
    assert main(["run-robot", "--server", "ws://127.0.0.1:9", "--policy", str(tiny_dir)]) == 2
    assert "--policy/--quantize configure the in-process server" in capsys.readouterr().err


def test_shipped_checkpoint_is_present_and_valid():
    d = default.default_policy_dir()
    assert d.is_dir(), f"no shipped checkpoint at {d}: the package must ship src/rt2/assets/default_policy"
    assert default.check_policy_dir(d) == d
    assert (d / "MODEL_CARD.md").is_file(), "the shipped policy must come with its model card"
    size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    assert size <= 25 * 2**20, f"shipped checkpoint is {size / 2**20:.1f} MB (> 25 MB)"
