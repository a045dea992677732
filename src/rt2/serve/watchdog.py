"""A dead-man's switch for robot control loops (stdlib only).

    def stop_robot():            # must be safe to call from another thread, and quick
        arm.send_velocity(0, 0)

    with Watchdog(timeout_s=0.3, on_stop=stop_robot) as wd:
        while running:
            action = client.act(frame, instruction)     # may block up to its deadline, or raise
            wd.feed()                                    # a fresh, checked action arrived
            arm.apply(action)

If no ``feed()`` arrives within ``timeout_s``, a background thread calls ``on_stop()`` once (the robot holds still
while the server is slow, restarting or gone), and again only after the next feed re-arms it. The control loop
cannot forget to stop: the check runs even while the loop thread is blocked inside a network call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watchdog:
    """Calls ``on_stop`` when ``feed`` has not been called for ``timeout_s`` seconds.

    ``tripped`` is True between a stop and the next feed; ``trips`` counts stops. ``poll_s`` (default
    ``timeout_s / 10``) bounds how late a stop can be.
    """

    def __init__(self, timeout_s: float, on_stop: Callable[[], None], *, poll_s: float | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.timeout_s = float(timeout_s)
        self.on_stop = on_stop
        self.poll_s = float(poll_s) if poll_s is not None else max(self.timeout_s / 10, 0.001)
        self.trips = 0
        self._last = time.monotonic()
        self._tripped = False
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def tripped(self) -> bool:
        return self._tripped

    def feed(self) -> None:
        """A fresh action arrived: re-arm."""
        with self._lock:
            self._last = time.monotonic()
            self._tripped = False

    def start(self) -> Watchdog:
        if self._thread is not None:
            return self
        self.feed()
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="rt2-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (does not call ``on_stop``)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._halt.wait(self.poll_s):
            with self._lock:
                due = not self._tripped and time.monotonic() - self._last > self.timeout_s
                if due:
                    self._tripped = True
                    self.trips += 1
            if due:
                try:
                    self.on_stop()
                except Exception:  # a failing stop callback must not kill the watchdog itself
                    log.exception("watchdog on_stop callback failed")

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
