"""The synthetic web corpus: captions, VQA, dense pointing, reading, arithmetic, translation and relations.

RT-2 co-fine-tunes on robot data mixed with the VLM's web data; the web side is where concepts the robot data
never names (digits, icons, faces, arithmetic, other languages, relations, held-out colours/shapes) come from.
Here that web data is generated: scenes are sampled (``rt2.data.web.scene``), drawn with the world's renderer
(``rt2.sim.render``) at the model's image size, and questioned by named task types (``rt2.data.web.tasks``).

Streaming and determinism: ``WebCorpus(config)[i]`` is a pure function of ``(config, i)`` — the i-th item's
generator is seeded by ``(seed, split id, i)``, so the train and held-out splits are disjoint seed streams and
any worker can produce any index without coordination::

    corpus = WebCorpus(WebCorpusConfig.preset("default"))
    item = corpus.item(7)          # WebItem: task, images (uint8[H, W, 3] x n_frames), prompt, target, scoring
    ex = corpus[7]                 # rt2.data.prompts.Example(kind="text", source="web")
    disk = corpus.materialize("cache/web", n=50_000)   # npz shards + manifest.json, atomic; reused next time

Evaluation: ``score_answer(task, predicted, target)`` (rules in ``web_tasks``) and ``chance_baseline`` (the best
constant answer per task type on a sample), so "the pretrained VLM beats chance on web questions" is per type.
The concepts that occur only here are ``WEB_ONLY_CONCEPTS``; ``find_web_only(text)`` lists those in a text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from rt2.data.prompts import Example
from rt2.data.web import lang as web_lang
from rt2.data.web.concepts import WEB_ONLY_CONCEPTS, find_web_only, web_only_terms  # noqa: F401  (re-export)
from rt2.data.web.scene import parse_grid, sample_web_scene
from rt2.data.web.tasks import BLANK_SCENE, GEOMETRIC_TASKS, TASK_TYPES, TASKS, check_task
from rt2.sim import board
from rt2.sim.render import DEFAULT_SIZE, Renderer

SPLITS: dict[str, int] = {"train": 0, "heldout": 1}  # the split id is part of every item's seed
FORMAT_VERSION = 1
POINT_TOL = 1  # grid units per axis

# Grounding first (reference/bc-feasibility.md): pointing tasks get ~51 % of the corpus, dense pointing the most.
_DEFAULT_WEIGHTS: dict[str, float] = {
    "point_dense": 0.18,
    "point_block": 0.08,
    "point_robot": 0.05,
    "point_symbol": 0.06,
    "point_math": 0.04,
    "point_inverse": 0.04,
    "caption": 0.04,
    "caption_es": 0.03,
    "caption_fr": 0.03,
    "vqa_colour": 0.03,
    "vqa_shape": 0.03,
    "vqa_count": 0.03,
    "vqa_size": 0.02,
    "vqa_position": 0.03,
    "read_symbol": 0.05,
    "math_text": 0.05,
    "math_grounded": 0.04,
    "translate": 0.05,
    "rel_closest": 0.03,
    "rel_same_colour": 0.03,
    "rel_left_of": 0.02,
    "rel_size": 0.02,
    "rel_extreme": 0.02,
    # Issue 15: pointing at the emergent suites' referents in the suites' words. Added on top of the weights above
    # (weights are normalized), so every older task keeps its share relative to the others and these four are
    # 0.12 / 1.12 = 10.7 % of the web mixture, about what the five relation-naming tasks get. Split by how many
    # distinct phrase families each carries: relations (8 referent kinds) and multilingual names (2 languages x
    # blocks and symbols) 0.04 each; symbol names (digits bare and "number N", icons, faces) and arithmetic
    # phrases 0.02 each (point_symbol / point_math already train most of their grounding).
    "point_relation": 0.04,
    "point_multilingual": 0.04,
    "point_symbol_named": 0.02,
    "point_math_named": 0.02,
}
_GROUNDING_WEIGHTS: dict[str, float] = {
    "point_dense": 0.4,
    "point_block": 0.2,
    "point_robot": 0.15,
    "point_symbol": 0.15,
    "point_inverse": 0.1,
}


@dataclass(frozen=True)
class WebCorpusConfig:
    """seed/split: which stream. size: the corpus length (items are generated on demand, so this is virtual).
    image_size: (H, W) rendered, the model's size. n_frames: frames per example (the image repeated, like
    LAVA's tiled history, so web and robot batches carry the same number of frames). task_weights: task -> weight.
    heldout_objects: blocks may use the held-out colours/shapes (web data is where the model meets them).
    """

    seed: int = 0
    split: str = "train"
    size: int = 1_000_000
    image_size: tuple[int, int] = DEFAULT_SIZE
    n_frames: int = 1
    task_weights: tuple[tuple[str, float], ...] = tuple(_DEFAULT_WEIGHTS.items())
    heldout_objects: bool = True

    def __post_init__(self) -> None:
        board.check_name("split", self.split, tuple(SPLITS))
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            raise ValueError(f"image_size must be (H, W) with both >= 8, got {self.image_size!r}")
        if not isinstance(self.n_frames, int) or self.n_frames < 1:
            raise ValueError(f"n_frames must be a positive int, got {self.n_frames!r}")
        weights = dict(self.task_weights)
        if not weights or len(weights) != len(self.task_weights):
            raise ValueError("task_weights must name each task once and be non-empty")
        for name, w in weights.items():
            check_task(name)
            if not (np.isfinite(w) and w >= 0):
                raise ValueError(f"task weight for {name!r} must be finite and >= 0, got {w!r}")
        if sum(weights.values()) <= 0:
            raise ValueError("task weights sum to zero; give at least one task a positive weight")
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))

    @staticmethod
    def preset(name: str, **overrides) -> WebCorpusConfig:
        """``default`` (all tasks, grounding-heavy), ``grounding`` (pointing only, for grounding-first
        pre-training), ``all_uniform`` (every task equally: per-type evaluation)."""
        presets = {
            "default": WebCorpusConfig(),
            "grounding": WebCorpusConfig(task_weights=tuple(_GROUNDING_WEIGHTS.items())),
            "all_uniform": WebCorpusConfig(task_weights=tuple((t, 1.0) for t in TASK_TYPES)),
        }
        base = presets[board.check_name("web corpus preset", name, tuple(presets))]
        return WebCorpusConfig(**{**asdict(base), **overrides}) if overrides else base

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        d["task_weights"] = [[k, float(v)] for k, v in self.task_weights]
        return d

    @staticmethod
    def from_dict(d: dict) -> WebCorpusConfig:
        d = dict(d)
        d["image_size"] = tuple(d["image_size"])
        d["task_weights"] = tuple((str(k), float(v)) for k, v in d["task_weights"])
        return WebCorpusConfig(**d)


@dataclass(frozen=True)
class WebItem:
    """One web question. images: tuple of uint8[H, W, 3] (n_frames copies of one rendering)."""

    task: str
    images: tuple[np.ndarray, ...]
    prompt: str
    target: str
    scoring: str = field(default="exact")

    @property
    def geometric(self) -> bool:
        """True when the answer depends on absolute image coordinates (do not random-crop; see GEOMETRIC_TASKS)."""
        return self.task in GEOMETRIC_TASKS

    def example(self, source: str = "web") -> Example:
        return Example.text(self.images, self.prompt, self.target, source=source)


class _WebBase(ABC):
    """Shared indexing/iteration over items; subclasses implement ``item(i)`` and ``__len__``."""

    config: WebCorpusConfig

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def item(self, index: int) -> WebItem: ...

    def _check_index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"web corpus index must be an int, got {type(index).__name__}")
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"web corpus index {index} out of range for length {n}")
        return i

    def __getitem__(self, index: int) -> Example:
        return self.item(index).example()

    def __iter__(self) -> Iterator[Example]:
        for i in range(len(self)):
            yield self[i]

    def items(self, indices: Iterable[int]) -> list[WebItem]:
        return [self.item(i) for i in indices]


class WebCorpus(_WebBase):
    """Generated on demand: ``item(i)`` is a pure function of ``(config, i)``."""

    def __init__(self, config: WebCorpusConfig | None = None) -> None:
        self.config = config or WebCorpusConfig()
        names = [k for k, w in self.config.task_weights if w > 0]
        w = np.array([dict(self.config.task_weights)[k] for k in names], dtype=np.float64)
        self._tasks = names
        self._cum = np.cumsum(w / w.sum())
        self._renderer = Renderer(self.config.image_size)

    def __len__(self) -> int:
        return self.config.size

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, SPLITS[self.config.split], int(index)])

    def task_of(self, index: int) -> str:
        """The task type of item ``index`` (the first draw of its generator)."""
        return self._draw_task(self.rng(self._check_index(index)))

    def _draw_task(self, rng: np.random.Generator) -> str:
        k = int(np.searchsorted(self._cum, rng.random(), side="right"))
        return self._tasks[min(k, len(self._tasks) - 1)]

    def item(self, index: int) -> WebItem:
        i = self._check_index(index)
        rng = self.rng(i)
        task = TASKS[self._draw_task(rng)]
        # Re-draw the scene until it supports the question (rejection is rare; all draws come from this rng).
        for _ in range(100):
            kind = task.scene_kinds[int(rng.integers(len(task.scene_kinds)))]
            scene = BLANK_SCENE if kind == "blank" else sample_web_scene(kind, rng, self.config.heldout_objects)
            out = task.fn(scene, rng)
            if out is not None:
                break
        else:  # pragma: no cover - every task succeeds on some scene of its kinds within a few draws
            raise RuntimeError(f"web task {task.name!r} found no suitable scene in 100 draws (item {i})")
        scene, prompt, target = out
        img = self._renderer.render(scene)
        return WebItem(task.name, (img,) * self.config.n_frames, prompt, target, task.scoring)

    def materialize(self, directory: str | os.PathLike, n: int | None = None, shard_size: int = 1024) -> WebShards:
        """Write items ``0..n-1`` to ``directory`` as npz shards (atomically) or reuse a matching copy."""
        n = len(self) if n is None else int(n)
        if not 1 <= n <= len(self):
            raise ValueError(f"materialize n must be in 1..{len(self)}, got {n}")
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        path = Path(directory)
        manifest = {"format_version": FORMAT_VERSION, "config": self.config.to_dict(), "n": n, "shard_size": shard_size}
        if path.exists():
            found = _read_manifest(path)
            if found != manifest:
                raise ValueError(
                    f"{path} holds a different web corpus (manifest {found}); delete it or choose another directory"
                )
            return WebShards(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            for s, start in enumerate(range(0, n, shard_size)):
                items = self.items(range(start, min(n, start + shard_size)))
                np.savez_compressed(
                    tmp / f"shard-{s:05d}.npz",
                    images=np.stack([np.stack(it.images) for it in items]),
                    task=np.array([it.task for it in items]),
                    prompt=np.array([it.prompt for it in items]),
                    target=np.array([it.target for it in items]),
                )
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            os.replace(tmp, path)  # atomic: readers see no directory or a complete one
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return WebShards(path)


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a materialized web corpus (manifest.json unreadable: {e})") from e


class WebShards(_WebBase):
    """A materialized corpus read back from npz shards (no pickle); same items as the generator produced."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory)
        m = _read_manifest(self.path)
        if m.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: web corpus format {m.get('format_version')} != {FORMAT_VERSION}")
        self.config = WebCorpusConfig.from_dict(m["config"])
        self.n, self.shard_size = int(m["n"]), int(m["shard_size"])
        self._cache: tuple[int, dict[str, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self.n

    def _shard(self, s: int) -> dict[str, np.ndarray]:
        if self._cache is None or self._cache[0] != s:
            with np.load(self.path / f"shard-{s:05d}.npz", allow_pickle=False) as z:
                self._cache = (s, {k: z[k] for k in z.files})
        return self._cache[1]

    def item(self, index: int) -> WebItem:
        i = self._check_index(index)
        d = self._shard(i // self.shard_size)
        j = i % self.shard_size
        task = str(d["task"][j])
        images = tuple(np.ascontiguousarray(f) for f in d["images"][j])
        return WebItem(task, images, str(d["prompt"][j]), str(d["target"][j]), TASKS[task].scoring)


# ---- scoring ---------------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    t = re.sub(r"\s+", " ", str(text).strip().lower()).rstrip(".!?").strip()
    return re.sub(r"^(the|a|an) ", "", t)


def _dense(text: str) -> dict[str, tuple[int, int]] | None:
    out: dict[str, tuple[int, int]] = {}
    for entry in str(text).split(","):
        parts = entry.split()
        if len(parts) < 3:
            return None
        name = " ".join(parts[:-2]).lower()
        if name in out:  # the same object listed twice is a wrong answer, not a lenient one
            return None
        try:
            out[name] = parse_grid(" ".join(parts[-2:]))
        except ValueError:
            return None
    return out


@cache
def _caption_stopwords() -> frozenset[str]:
    words: set[str] = set()
    for lang in web_lang.LANGUAGES:
        for frame in web_lang.CAPTION_FRAMES[lang].values():
            words.update(re.sub(r"\{[^}]*\}", " ", frame).lower().replace(":", " ").split())
        words.update(web_lang.ARTICLES[lang].values())
    return frozenset(words | {"l", "number", "número", "chiffre"})


def _content_words(text: str) -> Counter:
    words = re.findall(r"[^\W_]+", _norm(text).replace("'", " "))
    return Counter(w for w in words if w not in _caption_stopwords())


def score_answer(task_type: str, predicted: str, target: str) -> bool:
    """Is ``predicted`` a correct answer to a ``task_type`` question whose reference answer is ``target``?"""
    scoring = check_task(task_type).scoring
    if not isinstance(predicted, str) or not isinstance(target, str):
        raise TypeError("score_answer takes str predicted and target")
    if scoring == "exact":
        return _norm(predicted) == _norm(target)
    if scoring == "number":
        p, t = web_lang.parse_number(predicted), web_lang.parse_number(target)
        return p is not None and p == t
    if scoring == "point":
        try:
            p, t = parse_grid(predicted), parse_grid(target)
        except ValueError:
            return False
        return abs(p[0] - t[0]) <= POINT_TOL and abs(p[1] - t[1]) <= POINT_TOL
    if scoring == "dense":
        p, t = _dense(predicted), _dense(target)
        if p is None or t is None or set(p) != set(t):
            return False
        return all(abs(p[k][0] - t[k][0]) <= POINT_TOL and abs(p[k][1] - t[k][1]) <= POINT_TOL for k in t)
    # caption: F1 >= 0.8 over content words (function words of the caption frames do not count, so "a picture
    # of the number 2" vs "... number 5" fails)
    pw, tw = _content_words(predicted), _content_words(target)
    common = sum((pw & tw).values())
    if common == 0:
        return False
    prec, rec = common / sum(pw.values()), common / sum(tw.values())
    return 2 * prec * rec / (prec + rec) >= 0.8


def chance_baseline(items: Sequence[WebItem], candidates: int = 20) -> dict[str, float]:
    """Per task type, the accuracy of the best constant answer (chosen among the ``candidates`` most frequent
    targets, plus "0 0" for pointing): the majority baseline, measured with ``score_answer`` itself."""
    by_task: dict[str, list[str]] = {}
    for it in items:
        by_task.setdefault(it.task, []).append(it.target)
    out: dict[str, float] = {}
    for task, targets in sorted(by_task.items()):
        cands = [t for t, _ in Counter(targets).most_common(candidates)]
        if TASKS[task].scoring == "point":
            cands.append("0 0")
        out[task] = max(float(np.mean([score_answer(task, c, t) for t in targets])) for c in cands)
    return out


def accuracy_by_task(items: Sequence[WebItem], predictions: Sequence[str]) -> dict[str, float]:
    """Per task type, the fraction of ``predictions`` (aligned with ``items``) that ``score_answer`` accepts."""
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions")
    hits: dict[str, list[bool]] = {}
    for it, p in zip(items, predictions, strict=True):
        hits.setdefault(it.task, []).append(score_answer(it.task, p, it.target))
    return {k: float(np.mean(v)) for k, v in sorted(hits.items())}
