import argparse
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


def _error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_subcommand_option_typo_names_that_subcommands_option(capsys, tmp_path):
    # The top-level parser used to report these itself, suggesting its own --version (or nothing).
    err = _error(capsys, ["oracle-table", "--episods", "3"])
    assert "rt2 oracle-table: error:" in err and "did you mean --episodes" in err
    err = _error(capsys, ["collect", "--out", str(tmp_path / "x"), "--episodes", "1", "--famlies", "y"])
    assert "rt2 collect: error:" in err and "did you mean --families" in err
    assert not (tmp_path / "x").exists()


def test_bench_script_option_typo_names_closest(capsys):
    err = _error(capsys, ["bench", "sim", "--stepz", "10"])
    assert "rt2 bench sim: error:" in err and "did you mean --steps" in err


def test_top_level_typo_before_a_command_stays_top_level(capsys):
    err = _error(capsys, ["--verison", "oracle-table"])
    assert "rt2: error:" in err and "did you mean --version" in err


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser(name)
    return cli._subparser(parser, name)


def test_every_subcommand_option_has_help_showing_its_default():
    for name in cli.COMMANDS:
        sub = _subparser(name)
        assert issubclass(sub.formatter_class, argparse.ArgumentDefaultsHelpFormatter), name
        for action in sub._actions:
            assert action.help, f"rt2 {name} {action.option_strings or action.dest} has no help"


def _bench_parsers(monkeypatch) -> dict[str, argparse.ArgumentParser]:
    """Every bench script's parser, captured at parse time (nothing is run)."""
    from rt2 import benchcli

    captured: dict[str, argparse.ArgumentParser] = {}

    class Captured(Exception):
        pass

    def capture(self, args=None, namespace=None):
        captured[self.prog.removeprefix("rt2 bench ")] = self
        raise Captured

    monkeypatch.setattr(cli.Parser, "parse_args", capture)
    for name in benchcli.available():
        with pytest.raises(Captured):
            benchcli.run(argparse.Namespace(name=name, bench_args=[]))
    return captured


def test_every_bench_uses_the_hinting_parser_and_shows_defaults(monkeypatch):
    from rt2 import benchcli

    parsers = _bench_parsers(monkeypatch)
    assert sorted(parsers) == benchcli.available()  # a missing name built a plain argparse parser
    for name, p in parsers.items():
        assert issubclass(p.formatter_class, argparse.ArgumentDefaultsHelpFormatter), name
        for action in p._actions:
            assert action.help, f"rt2 bench {name} {action.option_strings} has no help"
    for name in ("serve", "decode"):
        assert parsers[name].get_default("backbone") == "pali-nano"
        assert parsers[name].parse_known_args(["--backbone", "pali-tiny"])[0].backbone == "pali-tiny"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--noise", "-1"], "argument --noise: must be >= 0"),
        (["--episodes", "0"], "argument --episodes: must be >= 1"),
        (["--families", "blok2block"], "did you mean 'block2block'"),
    ],
)
def test_oracle_table_validates_arguments(capsys, argv, message):
    err = _error(capsys, ["oracle-table", *argv])
    assert "rt2 oracle-table: error:" in err and message in err


@pytest.mark.parametrize(
    "families", [["block2block,separate"], ["block2block", "separate"], ["block2block,separate", "block2block"]]
)
def test_oracle_table_families_comma_or_space_separated(capsys, families):
    assert cli.main(["oracle-table", "--episodes", "1", "--families", *families]) == 0
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows == ["family", "block2block", "separate", "**all**"]


@pytest.mark.parametrize(("world", "argv", "exits"), [("2", None, True), ("2", ["fake"], False), ("1", None, False)])
def test_a_launched_rank_leaves_without_teardown_only_as_the_program(monkeypatch, world, argv, exits):
    """Under `accelerate launch -m rt2.cli` (WORLD_SIZE > 1) the program exits through exit_launched_process (the
    gloo teardown abort); `cli.main([...])` called from Python, or a single process, returns normally."""
    import types

    from rt2.train import trainer

    calls: list[int] = []
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_module", "a command that returns 3"))
    monkeypatch.setattr(cli, "_load", lambda name: types.SimpleNamespace(add_arguments=lambda p: None, run=lambda a: 3))
    monkeypatch.setattr(trainer, "exit_launched_process", calls.append)
    monkeypatch.setattr(sys, "argv", ["rt2", "fake"])
    assert cli.main(argv) == 3
    assert calls == ([3] if exits else [])
