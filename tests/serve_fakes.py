"""A small deterministic numpy policy for protocol/fuzz/robustness tests only (the model is irrelevant there).

Serving and interop tests use a real random-init rt2 Policy (see tests/test_serve_policy.py).
"""

from __future__ import annotations

import threading
import time

import numpy as np


class EchoPolicy:
    """Action = mean pixel of the newest frame mapped into [-0.1, 0.1] per dim; records batch sizes.

    ``delay_s`` simulates inference time (sleeps in the inference thread, releasing the GIL like torch does).
    """

    def __init__(self, n_frames: int = 2, image_size: int = 32, delay_s: float = 0.0) -> None:
        self.n_frames = n_frames
        self.image_size = image_size
        self.delay_s = delay_s
        self.batch_sizes: list[int] = []
        self.seen_frames: list[int] = []
        self.last_images: list = []
        self._lock = threading.Lock()

    def metadata(self) -> dict:
        return {
            "model_name": "echo",
            "action_space": {
                "name": "language_table",
                "dims": [
                    {"name": "x", "kind": "continuous", "low": -0.1, "high": 0.1, "grid": [-10, 10], "unit": "m"},
                    {"name": "y", "kind": "continuous", "low": -0.1, "high": 0.1, "grid": [-10, 10], "unit": "m"},
                ],
            },
            "image_size": [self.image_size, self.image_size],
            "n_frames": self.n_frames,
            "norm_stats_key": None,
        }

    def predict_action_batch(self, images, instructions):
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.batch_sizes.append(len(images))
            self.seen_frames += [len(f) for f in images]
            self.last_images = [list(f) for f in images]
        out = np.zeros((len(images), 2), np.float32)
        for i, frames in enumerate(images):
            assert len(frames) == self.n_frames
            m = float(np.asarray(frames[-1]).mean()) / 255.0
            out[i] = (m * 0.2 - 0.1, -(m * 0.2 - 0.1))
        texts = [" ".join(str(int(round(v * 100))) for v in row) for row in out]
        return out, texts
