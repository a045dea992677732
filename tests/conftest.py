"""Shared test set-up: CPU only, one thread, deterministic seeds.

One thread because this machine has 2 noisy cores: with 2 OpenMP threads a contention window makes torch 3-10x
slower, while 1 thread barely changes (reference/cpu-measurements.md). Set before torch is imported anywhere.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
