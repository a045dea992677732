"""Checkpoint I/O shared by backbones and the VLA: safetensors weights, JSON, atomic directories. No pickle.

* :func:`atomic_dir` writes a directory under a temporary name and renames it into place only when everything
  was written, so a crash or a full disk never leaves a half checkpoint that loads (the old one, if any, is kept
  until the rename).
* :func:`save_weights` / :func:`load_weights` store a module's state dict as safetensors and, on load, check
  every tensor's name, shape and dtype against the module before copying: a mismatch raises
  :class:`CheckpointError` naming the tensor, never a silent partial load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match the model it is loaded into."""


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``target``; on success it replaces ``target``.

    ``overwrite=False`` refuses an existing non-empty ``target``. On an exception the temp dir is removed and
    ``target`` is untouched.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"{target} exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise CheckpointError(f"{target} exists and is not empty; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike[str], what: str = "file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} is missing; is {path.parent} a complete rt2 checkpoint?")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{what} {path} is not valid JSON ({e}); the checkpoint is corrupt") from e


def _unique_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with tied/shared tensors stored once (safetensors refuses aliases)."""
    seen: dict[int, str] = {}
    out: dict[str, torch.Tensor] = {}
    for name, t in module.state_dict().items():
        key = t.data_ptr() if t.numel() else id(t)
        if key in seen:
            continue
        seen[key] = name
        out[name] = t.detach().contiguous().cpu()
    return out


def save_weights(module: nn.Module, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> None:
    """Write ``module``'s parameters and buffers to a safetensors file."""
    save_file(_unique_state(module), str(path), metadata=metadata or {"format": "pt"})


def load_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a safetensors file into ``module`` after checking every name, shape and dtype."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} is missing")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"weights file {path} is corrupt or not safetensors: {e}") from e
    expected = _unique_state(module)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: tensor names do not match the model (missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}); config and weights disagree"
        )
    for name, ref in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(got.shape)}, the model expects {tuple(ref.shape)}"
            )
        if got.dtype != ref.dtype:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {got.dtype}, the model expects {ref.dtype}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise CheckpointError(f"{path}: tensor {name!r} contains NaN or inf")
    result = module.load_state_dict(tensors, strict=False)
    # Only aliases of tensors we stored may be "missing" here (tied weights share storage).
    leftover = [k for k in result.missing_keys if k not in expected]
    stored_ptrs = {t.data_ptr() for t in module.state_dict().values()}
    for k in leftover:
        if module.state_dict()[k].data_ptr() not in stored_ptrs:
            raise CheckpointError(f"{path}: tensor {k!r} was not restored")
