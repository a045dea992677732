import subprocess
import sys

import pytest

from rt2 import cli


def test_help_lists_only_registered_commands():
    out = subprocess.run([sys.executable, "-m", "rt2.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for name in cli.COMMANDS:
        assert name in out
    for never in ["frobnicate"]:
        assert never not in out


def test_unknown_subcommand_names_closest(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bnech"])
    assert e.value.code == 2
    assert "did you mean 'bench'" in capsys.readouterr().err


def test_unknown_option_names_closest(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--verison"])
    assert e.value.code == 2
    assert "did you mean --version" in capsys.readouterr().err


def test_each_command_has_help():
    for name in cli.COMMANDS:
        r = subprocess.run([sys.executable, "-m", "rt2.cli", name, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "usage: rt2 " + name in r.stdout
