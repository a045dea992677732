"""The policy that ships inside the package: where it is, and ``--policy`` resolution for every command.

    from rt2.policy.default import default_policy_dir, resolve_policy
    default_policy_dir()          # .../site-packages/rt2/assets/default_policy (a VLA.save_pretrained directory)
    resolve_policy(None)          # that directory as a str, after a cheap validation (raises DefaultPolicyError)
    resolve_policy("runs/x")      # any explicit --policy is returned unchanged ("oracle" included)

``rt2 demo``, ``rt2 eval``, ``rt2 serve`` and ``rt2 run-robot`` call ``resolve_policy(args.policy)``, so omitting
``--policy`` means "the co-fine-tuned pali-tiny checkpoint that came with this install" (model card:
``rt2/assets/default_policy/MODEL_CARD.md``). The location comes from ``importlib.resources``, so it is the same
for a wheel and for an editable install (``src/rt2/assets/default_policy``).

Validation is cheap (no weights are loaded; < 5 ms): the checkpoint's JSON files parse and name the rt2 VLA format,
and ``backbone/model.safetensors`` has a readable safetensors header. That catches the failure modes a user can
actually hit: a checkout made before the checkpoint was committed, a wheel built without package data, a Git LFS
pointer file checked out instead of the weights, or a truncated download. A deeper mismatch (wrong tensor shapes)
still fails in ``VLA.from_pretrained`` with its own CheckpointError.
"""

from __future__ import annotations

import json
import struct
from importlib import resources
from pathlib import Path

PACKAGE = "rt2"
ASSET = ("assets", "default_policy")
REQUIRED_FILES = ("vla.json", "action_tokenizer.json", "action_vocab.json", "backbone/backbone.json")
WEIGHTS = "backbone/model.safetensors"
VLA_FORMAT = "rt2.vla"  # rt2.models.vla.FORMAT, repeated to keep this module free of torch imports
MAX_HEADER_BYTES = 100 * 2**20
WHAT_TO_DO = (
    "Pass --policy DIR (a checkpoint written by `rt2 train`, i.e. its OUT/final directory) or --policy oracle "
    "(the scripted expert, for `rt2 eval`/`rt2 demo`), or reinstall rt2 so the shipped checkpoint is present "
    "(pip install --force-reinstall --no-deps rt2; from a git checkout: git lfs pull if you use LFS, then "
    "pip install -e .)."
)


class DefaultPolicyError(ValueError):
    """The shipped default policy is missing or does not look like an rt2 checkpoint."""


def package_root() -> Path:
    """The installed ``rt2`` package directory (wheel: site-packages/rt2; editable install: src/rt2)."""
    root = resources.files(PACKAGE)
    if not isinstance(root, Path):  # a zip import: the checkpoint must be a real directory for safetensors' mmap
        raise DefaultPolicyError(
            f"rt2 is imported from {root!s}, not from a directory, so the shipped checkpoint cannot be memory-mapped. "
            + WHAT_TO_DO
        )
    return root


def default_policy_dir() -> Path:
    """Where the shipped checkpoint lives (whether or not it is there; see :func:`check_policy_dir`)."""
    return package_root().joinpath(*ASSET)


def _check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if head.startswith(b"version "):  # "version https://git-lfs.github.com/spec/v1"
            raise DefaultPolicyError(f"{path} is a Git LFS pointer, not the weights (run `git lfs pull`)")
        if len(head) < 8:
            raise DefaultPolicyError(f"{path} is truncated ({size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise DefaultPolicyError(f"{path} is not a safetensors file (header length {n}, file {size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DefaultPolicyError(f"{path} has a corrupt safetensors header: {e}") from e
    if not isinstance(header, dict):
        raise DefaultPolicyError(f"{path} has a corrupt safetensors header (not a JSON object)")
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if not ends:
        raise DefaultPolicyError(f"{path} holds no tensors")
    if 8 + n + max(ends) > size:
        raise DefaultPolicyError(
            f"{path} is truncated: the header needs {8 + n + max(ends)} bytes, the file has {size}"
        )


def check_policy_dir(directory: str | Path) -> Path:
    """Cheap structural check of a ``VLA.save_pretrained`` directory; -> the directory. Raises DefaultPolicyError."""
    d = Path(directory)
    if not d.is_dir():
        raise DefaultPolicyError(f"no checkpoint directory at {d}")
    missing = [f for f in (*REQUIRED_FILES, WEIGHTS) if not (d / f).is_file()]
    if missing:
        raise DefaultPolicyError(f"{d} is incomplete: missing {', '.join(missing)}")
    for name in REQUIRED_FILES:
        try:
            json.loads((d / name).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DefaultPolicyError(f"{d / name} is not valid JSON: {e}") from e
    fmt = json.loads((d / "vla.json").read_text())
    if not isinstance(fmt, dict) or fmt.get("format") != VLA_FORMAT:
        raise DefaultPolicyError(f"{d / 'vla.json'} is not an rt2 VLA config (format != {VLA_FORMAT!r})")
    _check_safetensors(d / WEIGHTS)
    return d


def resolve_policy(arg: str | None) -> str:
    """``--policy`` value -> what to load. None -> the shipped checkpoint (validated); anything else unchanged."""
    if arg is not None:
        return arg
    d = default_policy_dir()
    if not d.exists():
        raise DefaultPolicyError(
            f"no --policy given and this rt2 install has no shipped default policy (expected {d}). " + WHAT_TO_DO
        )
    try:
        return str(check_policy_dir(d))
    except DefaultPolicyError as e:
        raise DefaultPolicyError(
            f"no --policy given and the shipped default policy is unusable: {e}. " + WHAT_TO_DO
        ) from e
