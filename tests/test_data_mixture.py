"""Mixture sampler: realized shares, per-batch counts, determinism, exact resume, source tags, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rt2.data.mixture import MIXTURE_PRESETS, MixtureSampler, rt2_weights
from rt2.data.prompts import Example
from rt2.data.web import WebCorpus, WebCorpusConfig

_IMG = np.zeros((8, 8, 3), np.uint8)


class Tagged:
    """A tiny source whose example i says which source and index it is (target = "name:i")."""

    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Example:
        return Example.text((_IMG,), "Q: which? A:", f"{self.name}:{i}", source="raw")


def sources(n_robot: int = 37, n_aux: int = 11, n_web: int = 20_000_000) -> dict[str, Tagged]:
    return {"robot": Tagged("robot", n_robot), "robot_aux": Tagged("robot_aux", n_aux), "web": Tagged("web", n_web)}


def stream(sampler: MixtureSampler, n: int) -> list[str]:
    return [ex.target for ex in (sampler.next_example() for _ in range(n))]


@pytest.mark.parametrize("robot_share", [0.5, 0.66])
def test_per_batch_counts_and_realized_share(robot_share):
    w = rt2_weights(robot_share, 0.1)
    s = MixtureSampler(sources(), w, seed=0, batch_size=32)
    for b in range(1, 101):
        batch = s.next_batch()
        assert len(batch) == 32
        for k, v in s.realized.items():
            assert abs(v - b * 32 * w[k]) < 1.0 + 1e-9, (k, v, b)  # within one example at every boundary
    share = s.realized["robot"] / (100 * 32)
    assert abs(share - robot_share) < 1e-3
    if robot_share == 0.5:
        s2 = MixtureSampler(sources(), w, seed=0, batch_size=32)
        assert all(sum(ex.source == "robot" for ex in s2.next_batch()) == 16 for _ in range(10))


def test_examples_are_tagged_with_source_and_cover_epochs():
    s = MixtureSampler(sources(n_robot=37), rt2_weights(0.5), seed=3, batch_size=16)
    seen = []
    for _ in range(37):  # 37 batches x 8 robot draws = 8 epochs of the 37 robot examples
        for ex in s.next_batch():
            name, idx = ex.target.split(":")
            assert ex.source == name  # re-tagged from the raw source's "raw"
            if name == "robot":
                seen.append(int(idx))
    assert len(seen) == 296
    assert set(seen[:40]) == set(range(37))  # draws 0..39 (5 batches) hold the whole first epoch
    assert np.bincount(seen).tolist() == [8] * 37  # every example exactly once per epoch


def test_deterministic_and_seed_dependent():
    a = stream(MixtureSampler(sources(), "rt2_50", seed=1, batch_size=8), 200)
    b = stream(MixtureSampler(sources(), "rt2_50", seed=1, batch_size=8), 200)
    c = stream(MixtureSampler(sources(), "rt2_50", seed=2, batch_size=8), 200)
    assert a == b and a != c
    it = iter(MixtureSampler(sources(), "rt2_50", seed=1, batch_size=8))
    assert [next(it).target for _ in range(5)] + [it.sample().target] == a[:6]  # the trainer's interfaces


@pytest.mark.parametrize("cut", [0, 5, 24, 61])
def test_resume_gives_exact_same_stream(cut):
    ref = MixtureSampler(sources(), "rt2_66", seed=7, batch_size=8)
    full = stream(ref, cut + 100)
    s = MixtureSampler(sources(), "rt2_66", seed=7, batch_size=8)
    stream(s, cut)  # stop anywhere, even mid-batch
    state = json.loads(json.dumps(s.state_dict()))  # survives JSON (a checkpoint)
    resumed = MixtureSampler(sources(), "rt2_66", seed=7, batch_size=8)
    resumed.load_state_dict(state)
    assert stream(resumed, 100) == full[cut:]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="not given"):
        MixtureSampler({"robot": Tagged("robot", 3)}, {"robot": 0.5, "web": 0.5})
    with pytest.raises(ValueError, match="preset"):
        MixtureSampler(sources(), "rt2_99")
    with pytest.raises(ValueError, match=">= 0"):
        MixtureSampler(sources(), {"robot": -1.0, "web": 2.0})
    with pytest.raises(ValueError, match="sum to"):
        rt2_weights(0.95, 0.1)
    assert rt2_weights(1.0) == {"robot": 1.0, "robot_aux": 0.0, "web": 0.0}
    s = MixtureSampler(sources(), "rt2_50", seed=0, batch_size=8)
    other = MixtureSampler(sources(), "rt2_50", seed=1, batch_size=8)
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="weights"):
        MixtureSampler(sources(), "rt2_66", seed=0, batch_size=8).load_state_dict(s.state_dict())
    assert set(MIXTURE_PRESETS) >= {"rt2_50", "rt2_66"}


def test_mixes_real_web_corpus():
    web = WebCorpus(WebCorpusConfig.preset("default", size=1000))
    s = MixtureSampler({"robot": Tagged("robot", 5), "web": web}, {"robot": 0.5, "web": 0.5}, seed=0, batch_size=4)
    batch = s.next_batch()
    assert sorted(ex.source for ex in batch) == ["robot", "robot", "web", "web"]
    assert all(ex.kind == "text" for ex in batch if ex.source == "web")
