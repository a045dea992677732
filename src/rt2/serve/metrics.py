"""Server metrics in the Prometheus text exposition format (version 0.0.4), written by hand (no dependency).

Exposed at ``GET /metrics``::

    rt2_requests_total{code="ok"|"bad_request"|...}   counter   replies sent, by outcome
    rt2_request_latency_seconds                        histogram receive -> reply, server side
    rt2_queue_wait_seconds                             histogram enqueue -> batch start
    rt2_inference_seconds                              histogram one batched forward pass
    rt2_batch_size                                     histogram requests per forward pass
    rt2_queue_depth                                    gauge     requests waiting for a batch
    rt2_connections                                    gauge     open websocket connections
    rt2_ready                                          gauge     1 once the model is loaded and warm

All updates happen on the event loop thread or under the lock, so a scrape is consistent.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    """Cumulative-bucket histogram; ``observe(v)`` is O(log buckets)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help, self.buckets = name, help_text, tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # last slot is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, v)] += 1
        self.sum += v
        self.count += 1

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        acc = 0
        for b, c in zip(self.buckets, self.counts, strict=False):
            acc += c
            out.append(f'{self.name}_bucket{{le="{_fmt(b)}"}} {acc}')
        out.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{self.name}_sum {_fmt(self.sum)}")
        out.append(f"{self.name}_count {self.count}")
        return out


def _fmt(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


class Metrics:
    """All server metrics. ``queue_depth``/``connections``/``ready`` are read through callbacks at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.latency = Histogram(
            "rt2_request_latency_seconds", "Server-side latency, receive to reply.", LATENCY_BUCKETS
        )
        self.queue_wait = Histogram("rt2_queue_wait_seconds", "Time from enqueue to batch start.", LATENCY_BUCKETS)
        self.inference = Histogram("rt2_inference_seconds", "Duration of one batched forward pass.", LATENCY_BUCKETS)
        self.batch_size = Histogram("rt2_batch_size", "Requests per forward pass.", BATCH_BUCKETS)
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def count(self, code: str) -> None:
        with self._lock:
            self.requests[code] = self.requests.get(code, 0) + 1

    def observe_request(self, seconds: float) -> None:
        with self._lock:
            self.latency.observe(seconds)

    def observe_batch(self, size: int, infer_s: float, waits_s: Sequence[float]) -> None:
        with self._lock:
            self.batch_size.observe(size)
            self.inference.observe(infer_s)
            for w in waits_s:
                self.queue_wait.observe(w)

    def gauge(self, name: str, help_text: str, fn: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, fn)

    def snapshot(self) -> dict:
        """A plain dict for tests and benchmarks."""
        with self._lock:
            return {
                "requests": dict(self.requests),
                "batches": self.batch_size.count,
                "mean_batch_size": self.batch_size.mean,
                "mean_infer_s": self.inference.mean,
            }

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP rt2_requests_total Replies sent, by outcome code.", "# TYPE rt2_requests_total counter"]
            for code in sorted(self.requests):
                lines.append(f'rt2_requests_total{{code="{code}"}} {self.requests[code]}')
            for h in (self.latency, self.queue_wait, self.inference, self.batch_size):
                lines += h.render()
        for name, (help_text, fn) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_fmt(fn())}"]
        return "\n".join(lines) + "\n"
