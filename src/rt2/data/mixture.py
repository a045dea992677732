"""Co-fine-tuning mixtures: batches that mix named sources (robot, robot_aux, web, ...) at fixed ratios.

RT-2 co-fine-tunes on robot data mixed with the VLM's web data, robot share ~50-66 % of each batch. Here::

    sampler = MixtureSampler({"robot": actions, "robot_aux": aux, "web": corpus}, rt2_weights(0.5), seed=0,
                             batch_size=32)
    batch = sampler.next_batch()           # list[Example], each .source = the mixture source name
    state = sampler.state_dict()           # JSON-able; load_state_dict(state) resumes the exact same stream

**Per-batch counts (deterministic, largest remainder with carried error).** Before batch ``b`` (0-based) each
source has been drawn ``c_s`` times; its ideal cumulative count after the batch is ``(b + 1) * B * w_s``. The batch
gives each source the floor of what it is owed and hands the remaining slots to the largest fractional parts
(ties: source order). So every batch has exactly ``B`` examples and, at every batch boundary, each source's
realized count is within 1 of ``batches * B * w_s``: shares converge as ``1 / (batches * B)``, not as a random
walk, and a 50 % robot share at B=32 is exactly 16 robot examples per batch.

**Which example.** Draw ``k`` of source ``s`` is its ``k``-th element in a seeded permutation of epoch
``k // len(s)`` (every element once per epoch); sources longer than 10M (virtual generators such as the web
corpus) draw uniform indices seeded by ``(seed, s, k)`` instead. Examples within a batch are shuffled with a
seed of ``(seed, batch)``. Everything is a function of the integers in ``state_dict()``, so resuming is exact.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from rt2.data.prompts import Example

PERMUTE_MAX = 10_000_000  # sources up to this length are visited by epoch permutations
STATE_VERSION = 1


class Source(Protocol):
    """Anything indexable with a length that returns Examples (RobotActions, RobotAux, WebCorpus, WebShards)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Example: ...


def rt2_weights(robot_share: float = 0.5, aux_share: float | None = None) -> dict[str, float]:
    """``{"robot": robot_share, "robot_aux": aux_share, "web": rest}``. RT-2 used 50 % or 66 % robot data.

    ``aux_share`` (the in-domain tasks) defaults to 10 % of the batch, or whatever ``robot_share`` leaves if less.
    """
    if aux_share is None:
        aux_share = max(0.0, min(0.1, 1.0 - robot_share))
    web = 1.0 - robot_share - aux_share
    if min(robot_share, aux_share) < 0 or web < -1e-12:
        raise ValueError(f"robot_share={robot_share} and aux_share={aux_share} must be >= 0 and sum to <= 1")
    return {"robot": float(robot_share), "robot_aux": float(aux_share), "web": max(0.0, web)}


MIXTURE_PRESETS: dict[str, dict[str, float]] = {
    "rt2_50": rt2_weights(0.5, 0.1),
    "rt2_66": rt2_weights(0.66, 0.1),
    "robot_only": {"robot": 1.0},
    "grounding_first": {"robot": 0.2, "robot_aux": 0.2, "web": 0.6},
}


def _source_seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))  # stable across runs and Python versions (unlike hash())


class MixtureSampler:
    """Weighted, deterministic, resumable batches over named sources (see the module doc for the rules)."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        weights: Mapping[str, float] | str,
        seed: int = 0,
        batch_size: int = 32,
    ) -> None:
        if isinstance(weights, str):
            if weights not in MIXTURE_PRESETS:
                raise ValueError(f"unknown mixture preset {weights!r}; valid: {', '.join(MIXTURE_PRESETS)}")
            weights = MIXTURE_PRESETS[weights]
        if not sources:
            raise ValueError("MixtureSampler needs at least one source")
        w = {k: float(v) for k, v in weights.items() if float(v) != 0.0}
        unknown = sorted(set(w) - set(sources))
        if unknown:
            raise ValueError(f"weights name sources {unknown} that were not given; sources: {sorted(sources)}")
        if any(not math.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all zero, got {dict(weights)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.names = [k for k in sources if k in w]  # source order = the caller's order (tie-breaks)
        for k in self.names:
            if len(sources[k]) < 1:
                raise ValueError(f"source {k!r} is empty")
        total = sum(w.values())
        self.weights = {k: w[k] / total for k in self.names}
        self.sources = {k: sources[k] for k in self.names}
        self.seed, self.batch_size = int(seed), batch_size
        self._batch = 0
        self._counts = dict.fromkeys(self.names, 0)
        self._offset = 0  # position inside the current batch when iterating example by example
        self._plan: list[tuple[str, int]] | None = None
        self._perm_cache: dict[tuple[str, int], np.ndarray] = {}

    # ---- the deterministic plan --------------------------------------------------------------------------------
    def batch_counts(self, batch: int, counts: Mapping[str, int]) -> dict[str, int]:
        """How many examples each source gives batch ``batch``, given its draws so far (largest remainder)."""
        owed = {k: (batch + 1) * self.batch_size * self.weights[k] - counts[k] for k in self.names}
        take = {k: max(0, math.floor(v + 1e-9)) for k, v in owed.items()}
        left = self.batch_size - sum(take.values())
        order = sorted(self.names, key=lambda k: (-(owed[k] - take[k]), self.names.index(k)))
        while left < 0:  # only after a weight change; take back from the most over-served
            k = order.pop()
            if take[k] > 0:
                take[k] -= 1
                left += 1
        for k in order[:left]:
            take[k] += 1
        return take

    def _index(self, name: str, k: int) -> int:
        n = len(self.sources[name])
        sid = _source_seed(name)
        if n > PERMUTE_MAX:
            return int(np.random.default_rng([self.seed, sid, k]).integers(n))
        epoch = k // n
        key = (name, epoch)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 2 * len(self.names):
                self._perm_cache.clear()
            self._perm_cache[key] = np.random.default_rng([self.seed, sid, epoch, 1]).permutation(n)
        return int(self._perm_cache[key][k % n])

    def _make_plan(self) -> list[tuple[str, int]]:
        take = self.batch_counts(self._batch, self._counts)
        slots = [(k, self._counts[k] + j) for k in self.names for j in range(take[k])]
        order = np.random.default_rng([self.seed, 0xB, self._batch]).permutation(len(slots))
        return [slots[i] for i in order]

    def _fetch(self, name: str, k: int) -> Example:
        ex = self.sources[name][self._index(name, k)]
        if not isinstance(ex, Example):
            raise TypeError(f"source {name!r} returned {type(ex).__name__}, expected rt2.data.prompts.Example")
        return ex if ex.source == name else dataclasses.replace(ex, source=name)

    # ---- iteration ------------------------------------------------------------------------------------------------
    def next_example(self) -> Example:
        if self._plan is None:
            self._plan = self._make_plan()
        name, k = self._plan[self._offset]
        ex = self._fetch(name, k)
        self._offset += 1
        if self._offset == len(self._plan):
            for n, _ in self._plan:
                self._counts[n] += 1
            self._batch, self._offset, self._plan = self._batch + 1, 0, None
        return ex

    def next_batch(self) -> list[Example]:
        """The rest of the current batch (a whole batch unless iteration stopped mid-batch)."""
        out = [self.next_example()]
        while self._offset != 0:
            out.append(self.next_example())
        return out

    def __iter__(self) -> MixtureSampler:
        return self  # an endless, resumable stream: ``next(sampler)`` / ``sampler.sample()``

    def __next__(self) -> Example:
        return self.next_example()

    def sample(self) -> Example:
        """One example (the interface of ``rt2.train.batches.ExampleBatches``)."""
        return self.next_example()

    def batches(self, n: int) -> Iterator[list[Example]]:
        for _ in range(n):
            yield self.next_batch()

    # ---- bookkeeping ------------------------------------------------------------------------------------------------
    @property
    def realized(self) -> dict[str, int]:
        """Draws per source over completed batches."""
        return dict(self._counts)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the batch index, draws per source at its start, and the offset inside it."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "weights": dict(self.weights),
            "batch": self._batch,
            "counts": dict(self._counts),
            "offset": self._offset,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"mixture state version {state.get('version')!r} != {STATE_VERSION}")
        if set(state["counts"]) != set(self.names):
            raise ValueError(f"mixture state is for sources {sorted(state['counts'])}, this sampler has {self.names}")
        if int(state["seed"]) != self.seed or int(state["batch_size"]) != self.batch_size:
            raise ValueError(
                f"mixture state has seed={state['seed']} batch_size={state['batch_size']}; this sampler has "
                f"seed={self.seed} batch_size={self.batch_size} (resuming would not reproduce the stream)"
            )
        if any(abs(float(state["weights"][k]) - self.weights[k]) > 1e-12 for k in self.names):
            raise ValueError(f"mixture state weights {state['weights']} differ from this sampler's {self.weights}")
        self._batch, self._offset = int(state["batch"]), int(state["offset"])
        self._counts = {k: int(v) for k, v in state["counts"].items()}
        self._plan = None if self._offset == 0 else self._make_plan()
        if self._plan is not None and not 0 <= self._offset < len(self._plan):
            raise ValueError(f"mixture state offset {self._offset} outside the batch of {len(self._plan)}")
