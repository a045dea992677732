"""Dynamic micro-batching: requests from many robots share one forward pass, off the event loop.

One inference thread runs ``infer_fn`` on batches; the event loop only enqueues and resolves futures, so a
slow forward pass never blocks connection handling (openpi#717 blocks every client on the loop instead).

Batch formation (``_run``), once the inference thread is free and at least one request waits:

- dispatch at once if ``max_batch`` requests wait, or if no other connected robot could still join
  (``expect_more() == 0``: a lone robot never pays the batching window);
- otherwise wait until the *oldest* request has waited ``max_wait_ms``, then dispatch what is there.

While a batch runs, new requests accumulate, so under load batches form with no added wait (continuous
batching). ``max_batch=1`` turns batching off. The queue is bounded (``max_queue``): beyond it ``submit`` raises
``overloaded``. A request whose deadline passed before its batch started is answered ``deadline_exceeded`` and
never costs inference. If a batch raises, each of its requests is retried alone, so only the one the model
refuses gets an error (``bad_request`` for the model's ValueError, else ``internal``), logged in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from rt2.serve.errors import BAD_REQUEST, DEADLINE_EXCEEDED, INTERNAL, OVERLOADED, RequestError
from rt2.serve.metrics import Metrics

log = logging.getLogger(__name__)

# (images: B x n_frames x uint8[H, W, 3], instructions: B) -> (float32[B, D], B action texts[, B plans or None])
InferFn = Callable[[list[Sequence[np.ndarray]], list[str]], tuple]


@dataclass
class Result:
    """One request's share of a batch: ``action`` float32[D] (or [H, D])."""

    action: np.ndarray
    text: str
    queue_ms: float
    infer_ms: float
    batch_size: int
    plan: str | None = None  # the grounded plan a point-then-act policy wrote before this action


@dataclass
class _Job:
    frames: Sequence[np.ndarray]
    instruction: str
    enqueued: float
    deadline: float
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Bounded queue + one inference thread. Create and use on one event loop; call :meth:`start` first."""

    def __init__(
        self,
        infer_fn: InferFn,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        metrics: Metrics | None = None,
        expect_more: Callable[[], int] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")
        self.infer_fn = infer_fn
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self.max_queue = int(max_queue)
        self.metrics = metrics or Metrics()
        self.expect_more = expect_more or (lambda: self.max_batch)
        # One worker: torch already parallelizes inside an op; two concurrent forwards would only thrash.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt2-infer")
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._busy = False
        self._closing = False

    # ---- state --------------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Requests waiting for a batch (not counting the one running)."""
        return len(self._pending)

    @property
    def idle(self) -> bool:
        return not self._pending and not self._busy

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rt2-batcher")

    async def run_in_worker(self, fn: Callable, *args):
        """Run ``fn(*args)`` on the inference thread (warm-up uses it, so thread-local torch state matches)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # ---- submit -------------------------------------------------------------------------------------------
    def submit(self, frames: Sequence[np.ndarray], instruction: str, deadline: float) -> asyncio.Future:
        """Enqueue one request (``deadline`` on ``time.monotonic()``); the future resolves to a :class:`Result`."""
        if self._closing:
            raise RequestError(OVERLOADED, "server is shutting down")
        if len(self._pending) >= self.max_queue:
            raise RequestError(OVERLOADED, f"queue full ({self.max_queue} waiting); retry with backoff")
        assert self._wake is not None, "MicroBatcher.start() was not awaited"
        fut = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(frames, instruction, time.monotonic(), deadline, fut))
        self._wake.set()
        return fut

    # ---- the loop -----------------------------------------------------------------------------------------
    async def _wait_wake(self, timeout: float | None) -> bool:
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:  # not the builtin on Python 3.10
            return False
        finally:
            self._wake.clear()
        return True

    def _take(self) -> list[_Job]:
        batch: list[_Job] = []
        now = time.monotonic()
        while self._pending and len(batch) < self.max_batch:
            job = self._pending.popleft()
            if job.future.done():  # the handler gave up (deadline, disconnect): skip, costs nothing
                continue
            if now >= job.deadline:
                job.future.set_exception(RequestError(DEADLINE_EXCEEDED, "deadline passed while queued"))
                continue
            batch.append(job)
        return batch

    async def _run(self) -> None:
        while True:
            while not self._pending:
                await self._wait_wake(None)
            oldest = self._pending[0].enqueued
            while len(self._pending) < self.max_batch and self.expect_more() > 0:
                remaining = oldest + self.max_wait_s - time.monotonic()
                if remaining <= 0 or not await self._wait_wake(remaining):
                    break
            batch = self._take()
            if batch:
                await self._infer(batch)

    async def _infer(self, batch: list[_Job]) -> None:
        self._busy = True
        try:
            try:
                await self._infer_batch(batch)
            except Exception as e:
                if len(batch) == 1:
                    self._fail(batch[0], e)
                    return
                # One robot's bad request must not fail the others': retry each request alone, so that only
                # the request the model refuses gets the error (they passed parsing, so this is rare and a
                # model limit the parser does not know yet).
                log.warning("a batch of %d failed (%s); retrying each request alone", len(batch), _one_line(e))
                for job in batch:
                    if job.future.done():
                        continue
                    if time.monotonic() >= job.deadline:
                        job.future.set_exception(RequestError(DEADLINE_EXCEEDED, "deadline passed while retried"))
                        continue
                    try:
                        await self._infer_batch([job])
                    except Exception as e1:
                        self._fail(job, e1)
        finally:
            self._busy = False

    async def _infer_batch(self, batch: list[_Job]) -> None:
        """Run one forward pass for ``batch`` and resolve its futures; raises if the policy does."""
        t0 = time.monotonic()
        out = await self.run_in_worker(self.infer_fn, [j.frames for j in batch], [j.instruction for j in batch])
        actions, texts = out[0], out[1]
        plans = list(out[2]) if len(out) > 2 and out[2] is not None else [None] * len(batch)
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape[0] != len(batch) or len(texts) != len(batch):
            raise RuntimeError(f"policy returned {actions.shape[0]} actions for a batch of {len(batch)}")
        infer_s = time.monotonic() - t0
        self.metrics.observe_batch(len(batch), infer_s, [t0 - j.enqueued for j in batch])
        for i, j in enumerate(batch):
            if not j.future.done():
                j.future.set_result(
                    Result(actions[i], str(texts[i]), (t0 - j.enqueued) * 1e3, infer_s * 1e3, len(batch), plans[i])
                )

    def _fail(self, job: _Job, e: Exception) -> None:
        """Answer one request the model raised on: one log line, never a traceback per request.

        A ValueError is the model refusing this input (``Policy`` raises ValueError for input it cannot take):
        ``bad_request`` with the model's reason. Anything else is our bug: ``internal``, reason in the log only
        (the traceback at DEBUG level).
        """
        if isinstance(e, ValueError):
            log.warning("request refused by the model: %s", _one_line(e))
            err = RequestError(BAD_REQUEST, f"the model cannot take this request: {_one_line(e)}")
        else:
            log.error("inference failed for one request: %s: %s", type(e).__name__, _one_line(e))
            log.debug("inference traceback", exc_info=e)
            err = RequestError(INTERNAL, "inference failed (see server log)")
        if not job.future.done():
            job.future.set_exception(err)

    # ---- shutdown -----------------------------------------------------------------------------------------
    async def drain(self, timeout: float) -> bool:
        """Refuse new work, wait (up to ``timeout`` s) until queued and running requests finish."""
        self._closing = True
        end = time.monotonic() + timeout
        while not self.idle and time.monotonic() < end:
            await asyncio.sleep(0.005)
        return self.idle

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for j in self._pending:
            if not j.future.done():
                j.future.set_exception(RequestError(OVERLOADED, "server is shutting down"))
        self._pending.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__
