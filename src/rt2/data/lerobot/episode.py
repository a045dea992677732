"""One episode for a LeRobot v3.0 dataset: as the caller has it (:class:`Episode`), and validated, cast and
PNG-encoded (:class:`PreparedEpisode`) by :func:`prepare_episode`, the costly part of writing, which
``rt2 collect`` runs in worker processes so the writer only appends. Video features stay raw frames here: they
are encoded by the writer, because one mp4 holds many episodes and its encoder lives as long as the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from rt2.data.lerobot.format import PNG_COMPRESSION
from rt2.data.lerobot.stats import episode_image_stats


@dataclass(frozen=True)
class Episode:
    """One episode as the caller has it. ``frames[name]`` is ``[T, *shape]`` (images ``uint8[T, H, W, 3]``).

    ``metadata`` (bool / int / float / str values, same keys in every episode) becomes columns of the episodes
    parquet, e.g. ``{"success": True, "family": "block2block", "task_spec": "{...json...}"}``.
    """

    task: str
    frames: Mapping[str, Any]
    metadata: Mapping[str, bool | int | float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedEpisode:
    """An episode validated, cast, PNG-encoded and with image stats computed: the costly part of writing,
    done by :func:`prepare_episode` (in a worker process if you like) so the writer only appends."""

    task: str
    length: int
    arrays: dict[str, np.ndarray]  # numeric features, [T, *shape], declared dtype
    pngs: dict[str, list[bytes]]  # image features, T PNG files each
    image_hist: dict[str, np.ndarray]  # image features, uint64[3, 256] over the LeRobot-sampled frames
    image_count: dict[str, int]  # how many frames were sampled for image_hist
    metadata: dict[str, bool | int | float | str]
    videos: dict[str, np.ndarray] = field(default_factory=dict)  # video features, raw uint8[T, H, W, 3]


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    )
    if not ok:
        raise RuntimeError(f"PNG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def prepare_episode(episode: Episode, features: Mapping[str, Mapping[str, Any]]) -> PreparedEpisode:
    """Validate ``episode`` against ``features`` (from :func:`validate_features`) and encode it."""
    if not isinstance(episode.task, str) or not episode.task.strip():
        raise ValueError(f"episode task must be a non-empty string, got {episode.task!r}")
    missing = sorted(set(features) - set(episode.frames))
    extra = sorted(set(episode.frames) - set(features))
    if missing or extra:
        raise ValueError(f"episode frames do not match the features: missing {missing}, unexpected {extra}")
    lengths = {name: len(episode.frames[name]) for name in features}
    if len(set(lengths.values())) != 1 or min(lengths.values()) == 0:
        raise ValueError(f"every feature needs the same number (>= 1) of frames; got {lengths}")
    length = next(iter(lengths.values()))
    arrays, pngs, hists, counts, videos = {}, {}, {}, {}, {}
    for name, ft in features.items():
        if ft["dtype"] in ("image", "video"):
            imgs = np.asarray(episode.frames[name])
            if imgs.dtype != np.uint8 or imgs.shape[1:] != tuple(ft["shape"]):
                raise ValueError(
                    f"feature {name!r}: expected uint8{[length, *ft['shape']]}, got {imgs.dtype}{list(imgs.shape)}"
                )
            if ft["dtype"] == "image":
                pngs[name] = [encode_png(im) for im in imgs]
            else:
                videos[name] = np.ascontiguousarray(imgs)
            hists[name], counts[name] = episode_image_stats(imgs)
            continue
        raw = np.asarray(episode.frames[name])
        if raw.ndim == 1 and ft["shape"] == [1]:
            raw = raw[:, None]
        if raw.shape != (length, *ft["shape"]):
            raise ValueError(f"feature {name!r}: expected shape {[length, *ft['shape']]}, got {list(raw.shape)}")
        arr = raw.astype(ft["dtype"])
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise ValueError(f"feature {name!r} has non-finite values")
        if np.issubdtype(arr.dtype, np.integer) and not np.array_equal(arr, raw):
            raise ValueError(f"feature {name!r} does not fit {ft['dtype']} without loss (got {raw.dtype})")
        arrays[name] = arr
    meta = {}
    for k, v in episode.metadata.items():
        if not isinstance(v, (bool, int, float, str, np.bool_, np.integer, np.floating)):
            raise ValueError(f"episode metadata {k!r} must be bool/int/float/str, got {type(v).__name__}")
        meta[k] = v.item() if isinstance(v, np.generic) else v
    return PreparedEpisode(episode.task, length, arrays, pngs, hists, counts, meta, videos)
