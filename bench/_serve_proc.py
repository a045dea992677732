"""``rt2 serve`` in a child process for the serving benchmarks (``rt2 bench serve``, ``rt2 bench serve_abuse``).

A real server process on 127.0.0.1 with the port picked by the OS (the URL is read from its first stdout line),
its Prometheus ``/metrics`` read over HTTP, and a stop that never hangs a benchmark.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request


class ServeProcess:
    """``rt2 serve --policy POLICY --port 0`` plus ``extra_args``; ``url`` and ``port`` once it listens."""

    def __init__(self, policy: str, num_threads: int, extra_args: list[str], log_level: str = "WARNING") -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(num_threads), OMP_WAIT_POLICY="PASSIVE")
        cmd = [sys.executable, "-m", "rt2.cli", "serve", "--policy", policy, "--port", "0", "--log-level", log_level]
        cmd += ["--num-threads", str(num_threads), *extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        m = re.search(r"ws://\S+", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"rt2 serve did not start: {line!r}")
        self.url = m.group(0)
        self.port = int(self.url.rsplit(":", 1)[1])

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return r.read().decode()

    def gauge(self, name: str) -> float:
        """One unlabelled sample of the server's /metrics (nan if absent)."""
        m = re.search(rf"^{name} (\S+)$", self.metrics_text(), re.M)
        return float(m.group(1)) if m else float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
