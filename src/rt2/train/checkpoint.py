"""Atomic training checkpoints: safetensors for tensors, JSON for everything else, never pickle.

Layout under ``<run>/checkpoints/``::

    step_00000100/
        model.safetensors          full (unsharded) model state dict
        state.safetensors          optimizer tensors + data-position tensors (if any)
        state.json                 {"step", "optimizer", "scheduler", "data", "trainer", "config"} with tensor refs
        rng_rank{R}.safetensors    torch / numpy RNG arrays of process R
        rng_rank{R}.json           python RNG state + numpy scalars of process R
    latest                         text file naming the newest complete checkpoint ("step_00000100")

A save writes ``.tmp-step_...`` first (every file fsynced), renames it to ``step_...`` (the commit), and only
then atomically replaces ``latest``. A crash at any point leaves the previous ``latest`` intact and loadable;
stale ``.tmp-*`` directories are ignored and removed by the next save. The last ``keep_last`` checkpoints are
kept.

Nested state (optimizer ``state_dict()``, the mixture sampler's ``state_dict()``) goes through
:func:`flatten` / :func:`unflatten`: tensors and numpy arrays become safetensors entries, the structure
(with int dict keys and tuples preserved) becomes JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

POINTER = "latest"
PREFIX = "step_"
TMP_PREFIX = ".tmp-"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, or does not match the run."""


# ---------------------------------------------------------------------------------------------- codec
def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """JSON-able structure for ``obj``; tensors / arrays are moved into ``tensors`` under ``prefix.path`` keys."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = prefix
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        return flatten(obj.item(), tensors, prefix)
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint state has a dict key of type {type(k).__name__} at {prefix!r}")
            items.append([k, flatten(v, tensors, f"{prefix}.{k}")])
        return {"__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint (tensors, arrays, JSON only)")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
        raise CheckpointError(f"malformed checkpoint JSON node with keys {sorted(obj)}")
    return obj


# ---------------------------------------------------------------------------------------------- RNG
def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, json) capturing torch (CPU + CUDA), numpy and python RNG states of this process."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {
        "numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    keys = tensors["numpy"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ---------------------------------------------------------------------------------------------- files
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors with shared storage broken up (tied weights are stored twice, loaded back into one)."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, t in tensors.items():
        t = t.detach().cpu()
        ident = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else (0, id(t))
        out[k] = t.contiguous().clone() if ident in seen or not t.is_contiguous() else t
        seen.add(ident)
    save_file(out, str(path))
    _fsync_file(path)


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True) + "\n")
    _fsync_file(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def step_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


class CheckpointManager:
    """Write, find, load and prune checkpoints under ``root`` (``<run>/checkpoints``).

    Multi-process protocol (all ranks call the same methods; ``barrier`` syncs them):
    ``begin(step)`` (main creates the temp dir) -> every rank ``write_rng`` -> main ``write_main`` ->
    ``commit`` (main renames, updates ``latest``, prunes).
    """

    def __init__(self, root: str | Path, keep_last: int = 3, is_main: bool = True, barrier=None) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.root = Path(root)
        self.keep_last = keep_last
        self.is_main = is_main
        self._barrier = barrier or (lambda: None)

    # ---- discovery
    def list(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))

    def latest(self) -> Path | None:
        """The checkpoint ``latest`` points to, or None when there is none yet."""
        ptr = self.root / POINTER
        if not ptr.exists():
            return None
        path = self.root / ptr.read_text().strip()
        if not (path / "state.json").exists():
            raise CheckpointError(f"{ptr} points to {path.name}, which is missing or incomplete")
        return path

    # ---- saving
    def tmp_dir(self, step: int) -> Path:
        return self.root / f"{TMP_PREFIX}{step_name(step)}"

    def begin(self, step: int) -> Path:
        tmp = self.tmp_dir(step)
        if self.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in self.root.glob(TMP_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp.mkdir()
        self._barrier()
        return tmp

    def write_rng(self, tmp: Path, rank: int) -> None:
        tensors, meta = rng_state()
        save_tensors(tensors, tmp / f"rng_rank{rank}.safetensors")
        write_json(meta, tmp / f"rng_rank{rank}.json")

    def write_main(self, tmp: Path, model_state: dict[str, torch.Tensor], state: dict) -> None:
        """``state``: nested dict (tensors allowed anywhere) -> state.safetensors + state.json."""
        save_tensors(model_state, tmp / "model.safetensors")
        tensors: dict[str, torch.Tensor] = {}
        encoded = flatten(state, tensors, "s")
        save_tensors(tensors, tmp / "state.safetensors")
        write_json({"format_version": FORMAT_VERSION, "state": encoded}, tmp / "state.json")

    def commit(self, tmp: Path, step: int) -> Path:
        final = self.root / step_name(step)
        self._barrier()
        if self.is_main:
            _fsync_dir(tmp)
            if final.exists():  # re-saving the same step (e.g. after a resume): replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(self.root)
            ptr_tmp = self.root / (POINTER + ".tmp")
            ptr_tmp.write_text(final.name + "\n")
            _fsync_file(ptr_tmp)
            os.replace(ptr_tmp, self.root / POINTER)
            _fsync_dir(self.root)
            self.prune()
        self._barrier()
        return final

    def prune(self) -> None:
        keep = self.latest()
        for old in self.list()[: -self.keep_last]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    # ---- loading
    @staticmethod
    def load_model_state(path: Path) -> dict[str, torch.Tensor]:
        return load_file(str(Path(path) / "model.safetensors"))

    @staticmethod
    def load_state(path: Path) -> dict:
        path = Path(path)
        doc = read_json(path / "state.json")
        if doc.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format {doc.get('format_version')} != {FORMAT_VERSION}")
        return unflatten(doc["state"], load_file(str(path / "state.safetensors")))

    @staticmethod
    def load_rng(path: Path, rank: int) -> None:
        path = Path(path)
        f = path / f"rng_rank{rank}.safetensors"
        if not f.exists():
            raise CheckpointError(f"{path} has no RNG state for process {rank} (saved with fewer processes?)")
        set_rng_state(load_file(str(f)), read_json(path / f"rng_rank{rank}.json"))


def load_weights(model: torch.nn.Module, path: str | Path) -> int:
    """Copy a training checkpoint's weights (``<run>/checkpoints/step_N``) into ``model``; returns the step.

    ``model`` must have the checkpoint's architecture: load the run's export (``<run>/final``) and swap in the
    weights of an earlier step, which is how a learning curve of a finished run is evaluated without rebuilding
    the model by hand. Strict: a missing or unexpected tensor, or a shape mismatch, raises CheckpointError naming
    it (a checkpoint of another run is refused, not half-loaded)."""
    path = Path(path)
    if not (path / "model.safetensors").is_file() or not (path / "state.json").is_file():
        raise CheckpointError(
            f"{path} is not a training checkpoint (expected model.safetensors and state.json, as in "
            f"<run>/checkpoints/{step_name(1000)})"
        )
    weights = CheckpointManager.load_model_state(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{path} does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"shape mismatch {shapes[:3]} (load the export of the same run, e.g. <run>/final)"
        )
    model.load_state_dict(weights, strict=True)
    # the step is a plain JSON entry of the encoded top-level dict (flatten's [key, value] pairs); reading it
    # there skips loading the optimizer tensors
    return int(dict(read_json(path / "state.json")["state"]["__dict__"])["step"])
