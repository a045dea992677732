"""The ``rt2`` command: one entry point, one subcommand per job.

Each subcommand lives in the stage module that owns it and exposes two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

Only the chosen subcommand's module is imported, so ``rt2 --help`` stays fast (no torch import) and a broken
optional dependency of one command cannot take the others down. Register a new command in ``COMMANDS``; a name
that is not implemented must not be listed there (users read ``rt2 --help`` as the truth).

Errors: a user error (``ValueError``, ``OSError`` such as a missing folder, ``ImportError`` of an optional
package) raised by ``run`` is printed as one line ``rt2 COMMAND: error: ...`` with exit code 2; any other
exception as one line naming it, exit code 1. ``--debug`` (anywhere on the line, or ``RT2_DEBUG=1``) lets the
exception through with its traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from collections.abc import Sequence

from rt2 import __version__

# name -> (module, one-line help). Keep sorted by the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("rt2.eval.demo", "run the shipped policy on seen and emergent tasks: success table + video (< 2 min)"),
    "bench": ("rt2.benchcli", "run a benchmark from bench/ and print ratios measured in the same run"),
    "collect": ("rt2.data.collect", "record scripted-oracle demonstrations as a LeRobot v3.0 dataset"),
    "pretrain": ("rt2.train.cli", "pre-train the VLM (and its tokenizer) on the synthetic web corpus"),
    "train": ("rt2.train.cli", "train a policy: --regime scratch | finetune | cofinetune (robot + web mixture)"),
    "oracle-table": ("rt2.sim.oracle_table", "measure the scripted oracle's success per task family (markdown table)"),
    "eval": ("rt2.eval.cli", "closed-loop success of a policy (or a paired A/B) on RT-2's suites, with CIs and videos"),
    "vqa": ("rt2.eval.vqa", "held-out web-corpus VQA accuracy of a VLM per task type, with Wilson CIs vs chance"),
    "pointing": (
        "rt2.eval.pointing",
        "held-out pointing accuracy per emergent referent type, on web images and the emergent suites' frames",
    ),
    "reproduce": (
        "rt2.eval.reproduce",
        "RT-2's experiment end to end on the controlling recipe: 3 regimes (+ baseline), every suite, claims, figures",
    ),
    "serve": ("rt2.serve.cli", "serve a policy to robots over websockets (micro-batched, token-protected)"),
    "run-robot": ("rt2.serve.robot", "drive the tabletop world as a remote robot through a policy server"),
}


# name -> expected runtime on a 2-core CPU, from the command module's own docstring (measured there), appended to
# the command's --help description. Commands whose runtime depends wholly on their arguments are left out;
# `rt2 pretrain` / `rt2 train` set their own description (with runtime) in rt2.train.cli.
RUNTIMES: dict[str, str] = {
    "bench": "each benchmark states its own runtime in `rt2 bench NAME --help`",
    "collect": "~2-3 s for 20 episodes, ~13 s for 200 on 2 CPU cores",
    "oracle-table": "~3-5 s with the defaults, 350 episodes, on a 2-core CPU",
    "eval": "oracle, seen x 10 episodes: ~5 s; a learned policy: ~0.2-0.5 s per batched step on 2 CPU cores",
    "vqa": "400 items: ~5-10 s on 2 CPU cores",
    "pointing": "100 web items per type, 20 episodes per suite task: ~1-2 min on 2 CPU cores",
    "reproduce": "default budget with --pretrained --jobs 2: ~3.5 h on 2 CPU cores (estimate); --quick: 1-3 min",
    "serve": "ready in ~2 s",
    "run-robot": "~20 s per 200-step episode at 10 Hz, plus ~2 s start-up",
}


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default after its help, unless the help already states it.

    A help that says "(default: the shipped policy)" is clearer than an extra "(default: None)", and
    ``rt2 serve --token`` ("default: $RT2_SERVE_TOKEN") must not print the secret's value in --help.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default:" in text or "(default" in text:
            return action.help
        return super()._get_help_string(action)


class HelpFormatter(DefaultsFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after every option's help, and a description printed as written (for docstring-long ones)."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors name the closest valid option or choice."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = self._suggest(message)
        if hint:
            message = f"{message}\n  did you mean {hint}?"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _suggest(self, message: str) -> str | None:
        m = re.search(r"unrecognized arguments: (.+)", message)
        if m:
            valid = [s for s in self._option_string_actions if s.startswith("--")]
            for word in m.group(1).split():
                if not word.startswith("-"):
                    continue
                close = difflib.get_close_matches(word.split("=")[0], valid, n=1, cutoff=0.5)
                if close:
                    return close[0]
            return None
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.+)\)", message)
        if m:
            choices = re.findall(r"'?([\w.\-]+)'?", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.4)
            return repr(close[0]) if close else None
        return None


def _load(name: str):
    module_name, _ = COMMANDS[name]
    return importlib.import_module(module_name)


def build_parser(command: str | None = None) -> Parser:
    """The top-level parser. Only ``command``'s arguments are added (lazy import of one module)."""
    parser = Parser(
        prog="rt2",
        description="RT-2 vision-language-action models: tokenize actions, simulate, train, evaluate, serve.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rt2 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also RT2_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (_, help_text) in COMMANDS.items():
        runtime = RUNTIMES.get(name)
        p = sub.add_parser(
            name,
            help=help_text,
            description=f"{help_text} ({runtime})" if runtime else help_text,
            formatter_class=DefaultsFormatter,
        )
        if name == command:
            _load(name).add_arguments(p)
    return parser


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


# What a user can cause and fix (a wrong path, a bad value, a missing optional package): one line, exit 2.
USER_ERRORS = (ValueError, OSError, ImportError)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    as_program = argv is None  # the `rt2` executable / `python -m rt2.cli`, not a call from Python
    argv = list(sys.argv[1:] if argv is None else argv)
    # Trap: --debug is taken out before parsing, so it works after the subcommand too (`rt2 eval ... --debug`)
    # without every subcommand declaring it.
    debug = "--debug" in argv or os.environ.get("RT2_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    # parse_known_args, not parse_args: with parse_args the top-level parser reports a subcommand's unknown
    # option and suggests from its own options (`oracle-table --episods` -> "did you mean --version?").
    args, extras = parser.parse_known_args(argv)
    if extras:
        before_command = argv[: argv.index(args.command)] if args.command else argv
        if args.command is None or any(e in before_command for e in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code = int(_load(args.command).run(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"rt2 {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"rt2 {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if debug:
            raise
        print(
            f"rt2 {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
            "(run again with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    if as_program and os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
        # A rank of `accelerate launch -m rt2.cli train ...`: its work is saved and the process group destroyed;
        # interpreter teardown can still abort it (see rt2.train.trainer.exit_launched_process).
        from rt2.train.trainer import exit_launched_process

        exit_launched_process(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
