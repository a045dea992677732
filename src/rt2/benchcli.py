"""``rt2 bench NAME``: run one benchmark module from ``bench/``.

Benchmarks live at the repo root in ``bench/`` (one file each, ``bench/<name>.py`` with a
``main(argv: list[str]) -> int``). A wheel carries them as ``rt2/_bench``; an editable install finds them next
to ``src/``. Every benchmark reports ratios against a baseline measured in the same run, never absolute times
alone, because this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


def bench_dir() -> Path:
    here = Path(__file__).resolve().parent
    for cand in (here / "_bench", here.parents[1] / "bench"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(
        "rt2 benchmarks not found: expected bench/ next to src/ (editable install: pip install -e .) "
        "or rt2/_bench inside the installed wheel"
    )


def available() -> list[str]:
    try:
        d = bench_dir()
    except FileNotFoundError:
        return []
    return sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = available()
    parser.add_argument("name", choices=names, help="which benchmark: " + ", ".join(names))
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")


def run(args: argparse.Namespace) -> int:
    path = bench_dir() / f"{args.name}.py"
    spec = importlib.util.spec_from_file_location(f"rt2_bench_{args.name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return int(mod.main(list(args.bench_args)) or 0)
