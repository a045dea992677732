"""`rt2 bench tokenizer` must keep running and reporting a ratio (so the benchmark cannot rot)."""

from __future__ import annotations

import re

import pytest

from rt2 import benchcli


@pytest.mark.parametrize("space", ["rt1", "language_table"])
def test_tokenizer_bench_prints_a_ratio(space, capsys):
    import argparse

    args = argparse.Namespace(name="tokenizer", bench_args=["--n", "200", "--repeats", "2", "--space", space])
    assert benchcli.run(args) == 0
    out = capsys.readouterr().out
    m = re.search(r"speedup ratio .*: ([0-9.]+)x", out)
    assert m and float(m.group(1)) > 0
    assert "naive pure Python" in out and "rt2 vectorised" in out
