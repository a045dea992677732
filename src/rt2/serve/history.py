"""Per-robot frame history for multi-frame policies: bounded in bytes, stored at the model's size, expiring.

A two-frame model needs each robot's previous frame. Robots name themselves (``robot_id``, chosen by the client),
so everything here is bounded against a client that invents ids or sends huge frames:

- frames are stored at the policy's input size (``image_size``), never the client's: a 1600x1600 camera costs
  the same as the model's 72x96 (the resize uses the training transform's filter, so the model sees the same
  pixels as if it had resized the client's frame itself);
- the total is capped at ``max_bytes`` and ``max_robots`` ids, least recently used first out (evictions are
  counted, never silent);
- an entry expires after ``idle_s`` without a request, and when the connection that last used it closes.

    history = FrameHistory(n_frames=2, image_size=(72, 96), max_bytes=64 * 2**20, idle_s=60.0)
    frames = history.complete("robot-7", (frame,), reset=False, owner="conn-3")   # n_frames frames, oldest first
    history.forget_owner("conn-3")                                                 # that connection closed

Memory bound: ``min(max_bytes, max_robots * (n_frames - 1) * H * W * 3)`` bytes of frames (plus ~200 bytes of
bookkeeping per robot), whatever the clients send.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rt2.data.transforms import resize_frame


@dataclass
class _Entry:
    frames: np.ndarray  # uint8[n_frames - 1, H, W, 3], oldest first
    owner: str
    last_used: float


class FrameHistory:
    """LRU of each robot's previous ``n_frames - 1`` frames. Not thread-safe: use it from the event loop only."""

    def __init__(
        self,
        n_frames: int,
        image_size: tuple[int, int] | None,
        *,
        max_bytes: int = 128 * 2**20,
        max_robots: int = 4096,
        idle_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes < 0 or max_robots < 1 or idle_s <= 0:
            raise ValueError("history max_bytes must be >= 0, max_robots >= 1 and idle_s > 0")
        self.n_frames = int(n_frames)
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.max_bytes = int(max_bytes)
        self.max_robots = int(max_robots)
        self.idle_s = float(idle_s)
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_owner: dict[str, set[str]] = {}
        self.nbytes = 0
        self.evicted = 0  # dropped for space (a robot then restarts as after reset: its current frame repeated)
        self.expired = 0  # dropped because idle or its connection closed

    def __len__(self) -> int:
        return len(self._entries)

    def resize(self, frames: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Frames at the model's input size (unchanged when it is unknown or already matches)."""
        if self.image_size is None:
            return frames
        return tuple(resize_frame(f, self.image_size) for f in frames)

    def complete(self, key: str, frames: tuple[np.ndarray, ...], reset: bool, owner: str) -> tuple[np.ndarray, ...]:
        """Resize ``frames`` to the model's size and complete them to ``n_frames`` (oldest first) with ``key``'s
        previous frames; remember the newest ones for its next request."""
        now = self.clock()
        self.expire(now)
        frames = self.resize(frames)
        if reset:
            self._drop(key)
        if self.n_frames <= 1:
            return frames
        entry = self._entries.get(key)
        prev: tuple[np.ndarray, ...] = ()
        if entry is not None and entry.frames.shape[1:] == frames[-1].shape:
            prev = tuple(entry.frames)  # a changed size (unknown model size, new camera) cannot be stacked
        # Trap: with no history (first step, after reset or eviction) repeat the oldest frame, the same padding
        # the training data uses for an episode's first step; never a black frame.
        pool = prev + frames
        pool = (pool[0],) * max(0, self.n_frames - len(pool)) + pool
        frames = pool[-self.n_frames :]
        self._store(key, np.stack(frames[1:]), owner, now)
        return frames

    def _store(self, key: str, stacked: np.ndarray, owner: str, now: float) -> None:
        self._drop(key)
        if stacked.nbytes > self.max_bytes:
            self.evicted += 1  # one robot alone exceeds the budget (tiny budget, unknown model size)
            return
        self._entries[key] = _Entry(stacked, owner, now)
        self._by_owner.setdefault(owner, set()).add(key)
        self.nbytes += stacked.nbytes
        while self.nbytes > self.max_bytes or len(self._entries) > self.max_robots:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evicted += 1

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self.nbytes -= entry.frames.nbytes
        keys = self._by_owner.get(entry.owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_owner[entry.owner]
        return True

    def expire(self, now: float | None = None) -> int:
        """Drop entries idle for ``idle_s`` or more; -> how many. Cheap: entries are in last-use order."""
        now = self.clock() if now is None else now
        n = 0
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.last_used < self.idle_s:
                break
            self._drop(key)
            n += 1
        self.expired += n
        return n

    def forget_owner(self, owner: str) -> int:
        """Drop every entry last used by connection ``owner`` (it closed); -> how many."""
        keys = list(self._by_owner.get(owner, ()))
        for k in keys:
            self._drop(k)
        self.expired += len(keys)
        return len(keys)
