"""NormStats: exact and streaming statistics, JSON files keyed by dataset name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt2.actions import ActionSpace, NormStats, NormStatsAccumulator

NAMES = ("x", "y")


def test_from_actions_matches_numpy():
    a = np.random.default_rng(0).normal([0.0, 1.0], [0.1, 2.0], size=(1000, 2))
    s = NormStats.from_actions(a, names=NAMES)
    np.testing.assert_allclose(s.array("mean"), a.mean(0))
    np.testing.assert_allclose(s.array("std"), a.std(0))
    np.testing.assert_allclose(s.array("q01"), np.quantile(a, 0.01, axis=0))
    np.testing.assert_allclose(s.array("max"), a.max(0))
    assert s.count == 1000 and s.names == NAMES


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.integers(1, 300), min_size=1, max_size=8), seed=st.integers(0, 1000))
def test_streaming_is_exact_below_capacity(chunks, seed):
    a = np.random.default_rng(seed).uniform(-1, 1, size=(sum(chunks), 2))
    acc = NormStatsAccumulator(NAMES, capacity=10_000)
    start = 0
    for n in chunks:
        acc.update(a[start : start + n])
        start += n
    s, ref = acc.finalize(), NormStats.from_actions(a, names=NAMES)
    for f in ("min", "max", "q01", "q99", "mean", "std"):
        np.testing.assert_allclose(s.array(f), ref.array(f), atol=1e-12, err_msg=f)


def test_streaming_quantiles_approximate_beyond_capacity():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, size=(60_000, 2))
    acc = NormStatsAccumulator(NAMES, capacity=5_000, seed=1)
    for i in range(0, len(a), 7_000):
        acc.update(a[i : i + 7_000])
    s, ref = acc.finalize(), NormStats.from_actions(a, names=NAMES)
    np.testing.assert_allclose(s.array("mean"), ref.array("mean"), atol=1e-12)  # exact
    np.testing.assert_allclose(s.array("min"), ref.array("min"))
    # Rank error of a 5k-row sample at q=0.01 is ~0.14 percentile points -> ~0.05 in value for N(0, 1).
    np.testing.assert_allclose(s.array("q01"), ref.array("q01"), atol=0.15)
    np.testing.assert_allclose(s.array("q99"), ref.array("q99"), atol=0.15)
    # The reservoir is uniform over all rows, not just the first chunk: late rows are represented.
    late = NormStatsAccumulator(NAMES, capacity=1_000, seed=0)
    late.update(np.zeros((1_000, 2)))
    late.update(np.ones((9_000, 2)))
    assert late.finalize().q01[0] == pytest.approx(0.0) and late.finalize().q99[0] == 1.0
    assert late.finalize().mean[0] == pytest.approx(0.9)


def test_save_load_several_keys(tmp_path):
    p = tmp_path / "sub" / "norm_stats.json"
    rng = np.random.default_rng(0)
    s1 = NormStats.from_actions(rng.normal(size=(50, 2)), names=NAMES)
    s2 = NormStats.from_actions(rng.normal(size=(70, 8)), names=ActionSpace.rt1().names)
    s1.save(p, "language_table_sim")
    s2.save(p, "bridge")
    assert NormStats.load(p, "language_table_sim") == s1
    assert NormStats.load(p, "bridge") == s2
    assert set(NormStats.load_all(p)) == {"language_table_sim", "bridge"}
    s3 = NormStats.from_actions(rng.normal(size=(5, 2)), names=NAMES)
    s3.save(p, "language_table_sim")  # overwrite one key, keep the other
    assert NormStats.load(p, "language_table_sim") == s3 and NormStats.load(p, "bridge") == s2
    assert [q.name for q in p.parent.iterdir()] == ["norm_stats.json"]  # no temp files left behind
    with pytest.raises(KeyError, match="available: bridge, language_table_sim|available: \\['bridge'"):
        NormStats.load(p, "nope")


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no norm stats file"):
        NormStats.load(tmp_path / "missing.json", "k")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not an rt2 norm stats file"):
        NormStats.load_all(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        NormStats.load_all(bad)


def test_input_errors():
    with pytest.raises(ValueError, match="non-finite"):
        NormStats.from_actions([[0.0, np.nan]], names=NAMES)
    with pytest.raises(ValueError, match="shape"):
        NormStats.from_actions(np.zeros((4, 3)), names=NAMES)
    with pytest.raises(ValueError, match="before any update"):
        NormStatsAccumulator(NAMES).finalize()
    with pytest.raises(ValueError, match="min <= q01"):
        NormStats(NAMES, (0, 0), (1, 1), (0.5, 0), (0.4, 1), (0, 0), (1, 1), count=3)
