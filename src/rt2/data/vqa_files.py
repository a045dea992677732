"""Your own web data (VQA, captions, any image+text -> text) from a folder: ``data.jsonl`` plus image files.

Format (one JSON object per line; blank lines are ignored)::

    my_vqa/
      data.jsonl
      img/0001.png
      img/0002.jpg

    {"images": ["img/0001.png"], "prompt": "Q: what colour is the cup? A:", "target": "red"}
    {"images": ["img/0002.jpg"], "question": "how many cups are there?", "target": "2"}
    {"images": "img/0002.jpg", "prompt": "Caption:", "target": "two cups on a wooden table"}

* ``images``: one path or a list of paths, relative to the folder (absolute paths also work); PNG, JPEG or any
  format Pillow reads, any size and colour mode (converted to RGB; the model's shared transform resizes).
  A row with one image is shown to a multi-frame model as that image repeated (like the built-in web corpus);
  otherwise a row needs exactly the model's number of frames.
* ``prompt``: the full prompt text, e.g. ``Q: ... A:`` (VQA) or ``Caption:``; or ``question``: a question that
  becomes ``Q: {question} A:`` (``rt2.data.prompts.vqa_prompt``), the format of rt2's own VQA. One of the two.
* ``target``: the answer text (non-empty). ``id`` (optional): any JSON value, echoed in error messages.

``path`` may be the folder or the ``.jsonl`` file itself (images are then relative to the file's folder). Every
row is checked when the source is opened: valid JSON, known keys, non-empty strings, and each image file exists
and is an image Pillow can identify (header only; pixels are decoded on access). Errors name the file, the line
and the key or path. ``JsonlVQA(path)[i]`` is an ``rt2.data.prompts.Example(kind="text")`` whose ``source`` is
the folder's name (the mixture logs ``loss/<source>``)::

    vqa = JsonlVQA("data/my_vqa", n_frames=1)
    len(vqa), vqa[0].prompt, vqa[0].target, vqa.source
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from rt2.data.prompts import Example, vqa_prompt

DATA_FILE = "data.jsonl"
KEYS = frozenset({"images", "prompt", "question", "target", "id"})


@dataclass(frozen=True)
class VQARow:
    """One validated row: image paths (absolute), the prompt text, the target text and its line number."""

    images: tuple[Path, ...]
    prompt: str
    target: str
    line: int


def source_name(path: str | os.PathLike[str]) -> str:
    """The mixture source name of a JSONL folder (or file): its name, reduced to ``[A-Za-z0-9_.-]``."""
    p = Path(path)
    base = p.name if p.is_dir() else (p.parent.name if p.name == DATA_FILE else p.stem)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_.")
    if not name:
        raise ValueError(f"cannot derive a source name from {str(path)!r}; pass source=")
    return name


class JsonlVQA:
    """Indexable ``Example`` s (kind "text") read from a ``data.jsonl`` folder; see the module doc for the format.

    n_frames: frames per example the model takes (rows with one image repeat it). source: the mixture source
    name (default: the folder's name).
    """

    def __init__(self, path: str | os.PathLike[str], n_frames: int = 1, source: str | None = None) -> None:
        p = Path(path)
        self.file = p / DATA_FILE if p.is_dir() else p
        if not self.file.is_file():
            hint = f"a folder with {DATA_FILE} or a .jsonl file" if not p.exists() or p.is_dir() else "a .jsonl file"
            raise FileNotFoundError(f"{self.file}: no such file; web data must be {hint} (see rt2.data.vqa_files)")
        if not isinstance(n_frames, int) or n_frames < 1:
            raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
        self.root = self.file.parent
        self.n_frames = n_frames
        self.source = source or source_name(p)
        self.rows: list[VQARow] = []
        with open(self.file, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if line.strip():
                    self.rows.append(self._parse(line, line_no))
        if not self.rows:
            raise ValueError(f"{self.file}: no rows; write one JSON object per line (see rt2.data.vqa_files)")

    # ---- parsing ----------------------------------------------------------------------------------------------
    def _err(self, line: int, row: dict[str, Any] | None, msg: str) -> ValueError:
        rid = f" (id {row['id']!r})" if isinstance(row, dict) and "id" in row else ""
        return ValueError(f"{self.file}, line {line}{rid}: {msg}")

    def _parse(self, text: str, line: int) -> VQARow:
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise self._err(line, None, f"not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise self._err(line, None, f"expected a JSON object, got {type(row).__name__}")
        unknown = sorted(set(row) - KEYS)
        if unknown:
            raise self._err(line, row, f"unknown key(s) {unknown}; allowed: {sorted(KEYS)}")
        if ("prompt" in row) == ("question" in row):
            raise self._err(line, row, "give exactly one of 'prompt' (full text, e.g. 'Q: ... A:') and 'question'")
        for key in ("prompt", "question", "target"):
            if key in row and (not isinstance(row[key], str) or not row[key].strip()):
                raise self._err(line, row, f"{key!r} must be a non-empty string, got {row[key]!r}")
        if "target" not in row:
            raise self._err(line, row, "missing 'target' (the answer text)")
        prompt = row["prompt"].strip() if "prompt" in row else vqa_prompt(row["question"])
        images = row.get("images")
        images = [images] if isinstance(images, str) else images
        if not isinstance(images, list) or not images or not all(isinstance(x, str) and x for x in images):
            raise self._err(line, row, f"'images' must be a path or a non-empty list of paths, got {images!r}")
        if len(images) not in (1, self.n_frames):
            raise self._err(
                line, row, f"{len(images)} images, but the model takes {self.n_frames} frame(s) per example; give 1 "
                f"(repeated) or {self.n_frames}"
            )  # fmt: skip
        paths = []
        for rel in images:
            full = self.root / rel
            if not full.is_file():
                raise self._err(line, row, f"image {rel!r} not found (looked for {full})")
            try:
                with Image.open(full) as im:
                    im.size  # noqa: B018  (reads the header only)
            except (UnidentifiedImageError, OSError) as e:
                raise self._err(line, row, f"image {rel!r} is not a readable image ({e})") from None
            paths.append(full)
        return VQARow(tuple(paths), prompt, row["target"].strip(), line)

    # ---- access -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, row: VQARow, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{self.file}, line {row.line}: cannot decode image {path} ({e})") from None
        return np.ascontiguousarray(arr)

    def __getitem__(self, index: int) -> Example:
        """Row ``index`` as Example(images: n_frames x uint8[H, W, 3], prompt, target, kind="text", source)."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -len(self) <= int(index) < len(self):
            raise IndexError(f"{self.file}: index {index} out of range for {len(self)} rows")
        row = self.rows[int(index)]
        frames = [self._image(row, p) for p in row.images]
        if len(frames) == 1:
            frames = frames * self.n_frames
        return Example.text(frames, row.prompt, row.target, source=self.source)

    def texts(self) -> list[str]:
        """``prompt + " " + target`` of every row (for training a fresh text tokenizer)."""
        return [f"{r.prompt} {r.target}" for r in self.rows]

    def __repr__(self) -> str:
        return f"JsonlVQA({str(self.file)!r}, rows={len(self)}, source={self.source!r})"


__all__ = ["DATA_FILE", "JsonlVQA", "VQARow", "source_name"]
