"""Batch sources: turn a resumable stream of examples into each process's micro-batches.

``ExampleBatches(stream, collate, micro_batch, rank, world)``: every process draws the same
``micro_batch * world`` examples from ``stream`` (a deterministic, seeded iterator such as
``rt2.data.mixture.MixtureSampler``) and keeps its own slice ``[rank * micro_batch, (rank + 1) * micro_batch)``,
then ``collate``s it into the model's batch. Drawing the full global micro-batch everywhere keeps the data
position identical on all processes, so one ``state_dict()`` (the stream's) resumes every process, and the
union of the slices equals what a single process with the whole batch would see.

``stream`` must provide ``__next__`` (or ``sample()``) plus ``state_dict()`` / ``load_state_dict()``.
With ``augment_seed`` set, ``collate(examples, rng)`` gets a numpy Generator seeded by
``(augment_seed, rank, micro-batch index)``: augmentation differs per process and per batch, yet the whole
data state is still two integers' worth of JSON, identical on every process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class ExampleBatches:
    """The trainer's :class:`rt2.train.trainer.BatchSource` over an example stream."""

    def __init__(
        self,
        stream: Any,
        collate: Callable[[Sequence[Any]], Any],
        micro_batch: int,
        rank: int = 0,
        world: int = 1,
        augment_seed: int | None = None,
    ) -> None:
        if micro_batch < 1:
            raise ValueError(f"micro_batch must be >= 1, got {micro_batch}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside 0..{world - 1}")
        for attr in ("state_dict", "load_state_dict"):
            if not callable(getattr(stream, attr, None)):
                raise TypeError(
                    f"the example stream {type(stream).__name__} has no {attr}(); resumable training needs "
                    "state_dict/load_state_dict (rt2.data.mixture.MixtureSampler has them)"
                )
        self._draw = stream.sample if callable(getattr(stream, "sample", None)) else stream.__next__
        self.stream = stream
        self.collate = collate
        self.micro_batch = micro_batch
        self.rank = rank
        self.world = world
        self.augment_seed = augment_seed
        self.drawn = 0  # micro-batches drawn so far

    def next_examples(self) -> list[Any]:
        """This process's slice of the next global micro-batch (``micro_batch`` examples)."""
        drawn = [self._draw() for _ in range(self.micro_batch * self.world)]
        lo = self.rank * self.micro_batch
        return drawn[lo : lo + self.micro_batch]

    def next_batch(self) -> Any:
        examples = self.next_examples()
        self.drawn += 1
        if self.augment_seed is None:
            return self.collate(examples)
        import numpy as np

        return self.collate(examples, np.random.default_rng([self.augment_seed, self.rank, self.drawn]))

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict(), "drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state["stream"])
        self.drawn = int(state["drawn"])
