"""LeRobot v3.0 video features: encode episodes into shared mp4 files, decode episode ranges back, frame-exact.

The one module that imports PyAV (``pip install "rt2[video]"``); image features (PNG in parquet) never need it.

Layout (LeRobot v3.0): a video feature is not a column of the data parquet. Its frames live in
``videos/<key>/chunk-XXX/file-XXX.mp4``; several episodes share a file back to back, and each episode's row in
``meta/episodes`` says where: ``videos/<key>/chunk_index``, ``videos/<key>/file_index``,
``videos/<key>/from_timestamp``, ``videos/<key>/to_timestamp``. Frame ``t`` of the episode is the frame shown at
``from_timestamp + timestamp[t]`` (the data parquet's ``timestamp`` column, ``frame_index / fps``), matched within
``tolerance_s`` (LeRobot's default, 1e-4 s). ``info.json`` ``features[key].info`` records the codec
(``video.codec``, ``video.pix_fmt``, ``video.fps``, ...), as LeRobot's ``get_video_info`` writes it.

Codecs (:class:`VideoOptions`), measured on 124 rendered 72x96 tabletop frames (``tests/test_data_lerobot_video.py``
asserts the bounds):

* ``h264`` (libx264), ``yuv444p``, crf 0 -- rt2's default: near-lossless, max pixel error 2 of 255 (the
  RGB <-> YUV rounding; mean 0.02), decodable by every ffmpeg (torchcodec, LeRobot's loaders).
* ``libsvtav1``, ``yuv420p``, crf 30 -- LeRobot's own default. Trap: 4:2:0 halves the colour resolution, and on
  72x96 frames a 4 cm block is a few pixels wide, so block edges come back up to ~160 of 255 off (mean ~1.3).
  Fine for LeRobot's 480p cameras; prefer ``h264`` for small frames.

Decoding seeks once to the keyframe before an episode and decodes the episode's range in one pass (never a seek
per frame); the writer forces a keyframe at every episode start so that seek lands exactly there.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rt2.data.lerobot.format import DatasetFormatError

INSTALL_HINT = 'pip install "rt2[video]"'
DEFAULT_TOLERANCE_S = 1e-4  # LeRobot's default tolerance between a requested timestamp and a decoded frame's
# codec name -> (PyAV encoder, default pix_fmt, default crf)
CODECS: dict[str, tuple[str, str, int]] = {
    "h264": ("libx264", "yuv444p", 0),
    "libsvtav1": ("libsvtav1", "yuv420p", 30),
}


class VideoDecodeError(DatasetFormatError):
    """A video file does not hold the frames ``meta/episodes`` says it does (the message names file and time)."""


def require_av() -> Any:
    """Import PyAV or raise ImportError with the exact install command."""
    try:
        return importlib.import_module("av")
    except ImportError as e:
        raise ImportError(
            f"LeRobot video features need PyAV, which is not installed: {INSTALL_HINT} (or pip install av)"
        ) from e


@dataclass(frozen=True)
class VideoOptions:
    """How image features are encoded as video. ``pix_fmt`` / ``crf`` None: the codec's default in ``CODECS``.
    ``gop``: frames between keyframes (a keyframe also starts every episode)."""

    codec: str = "h264"
    pix_fmt: str | None = None
    crf: int | None = None
    gop: int = 20

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"video codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ValueError(f"video crf must be in 0..63, got {self.crf}")
        if self.gop < 1:
            raise ValueError(f"video gop must be >= 1, got {self.gop}")

    @property
    def encoder(self) -> str:
        return CODECS[self.codec][0]

    @property
    def resolved_pix_fmt(self) -> str:
        return self.pix_fmt or CODECS[self.codec][1]

    @property
    def resolved_crf(self) -> int:
        return CODECS[self.codec][2] if self.crf is None else self.crf

    def check_size(self, name: str, height: int, width: int) -> None:
        """4:2:0 subsampling needs even sides; SVT-AV1 needs at least 64 x 64 (raise before any rollout)."""
        if self.resolved_pix_fmt.startswith("yuv420") and (height % 2 or width % 2):
            raise ValueError(
                f"video feature {name!r}: {self.resolved_pix_fmt} needs even height and width, got {height}x{width}"
            )
        if self.codec == "libsvtav1" and min(height, width) < 64:
            raise ValueError(f"video feature {name!r}: libsvtav1 needs frames of at least 64x64, got {height}x{width}")


class VideoFileWriter:
    """One mp4 being written: episodes are appended back to back; returns each one's (from, to) timestamps."""

    def __init__(self, path: str | os.PathLike[str], fps: int, height: int, width: int, options: VideoOptions) -> None:
        av = require_av()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps, self.frames, self.bytes = int(fps), 0, 0
        self._av = av
        self._container = av.open(str(self.path), "w", format="mp4")
        opts = {"crf": str(options.resolved_crf), "g": str(options.gop)}
        self._stream = self._container.add_stream(options.encoder, rate=self.fps, options=opts)
        self._stream.width, self._stream.height = int(width), int(height)
        self._stream.pix_fmt = options.resolved_pix_fmt
        self._time_base = Fraction(1, self.fps)

    def add_episode(self, frames: np.ndarray) -> tuple[float, float]:
        """Append uint8[T, H, W, 3]; returns (from_timestamp, to_timestamp) of these frames in this file."""
        start = self.frames
        for t, img in enumerate(frames):
            frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = self.frames, self._time_base
            if t == 0:  # a keyframe at every episode start: the reader's seek lands on the episode's first frame
                frame.pict_type = self._av.video.frame.PictureType.I
            self._mux(self._stream.encode(frame))
            self.frames += 1
        return start / self.fps, self.frames / self.fps

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self.bytes += packet.size
            self._container.mux(packet)

    def size_mb(self) -> float:
        """Encoded size so far, counted from the packets (the muxer buffers, so the file's size lags). Trap: an
        encoder's lookahead holds frames back (SVT-AV1 a whole short episode), so a file rolls over late."""
        return self.bytes / 2**20

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._mux(self._stream.encode())  # flush the encoder's delayed frames
        finally:
            self._container.close()
            self._container = None


def video_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``features[key].info`` of a video file, in LeRobot's keys (``video.codec`` is the decoder's name)."""
    av = require_av()
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: holds no video stream")
        s = container.streams.video[0]
        return {
            "video.height": int(s.height),
            "video.width": int(s.width),
            "video.codec": s.codec_context.codec.canonical_name,
            "video.pix_fmt": s.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(s.base_rate) if s.base_rate else None,
            "video.channels": 3,
            "has_audio": bool(container.streams.audio),
        }


class VideoReader:
    """An open video file that hands out frames by timestamp, episode range after episode range.

    A request that starts shortly after the previous one ended (the next episode in the same file) continues the
    same decoding pass; anything else seeks once to the keyframe at or before its first timestamp.
    """

    CONTINUE_S = 2.0  # decode through a gap this long rather than seek (a seek re-decodes from a keyframe anyway)

    def __init__(self, path: str | os.PathLike[str], *, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
        self._av = require_av()
        self.path, self.tolerance_s = Path(path), float(tolerance_s)
        try:
            self._container = self._av.open(str(self.path))
        except (self._av.error.FFmpegError, OSError) as e:
            raise VideoDecodeError(
                f"{self.path}: not a readable video file ({e}); re-collect or re-convert the dataset"
            ) from None
        if not self._container.streams.video:
            self.close()
            raise VideoDecodeError(f"{self.path}: holds no video stream")
        self._stream = self._container.streams.video[0]
        self._frames: Any = None  # the live decoding generator
        self._last_ts = -np.inf

    def _restart(self, ts: float) -> None:
        if ts > 0:  # backward=True: the keyframe at or before ts; the offset is in the stream's time base
            target = int(np.floor((ts - self.tolerance_s) / self._stream.time_base))
            self._container.seek(max(target, 0), stream=self._stream, backward=True)
        else:
            self._container.seek(0, stream=self._stream, backward=True)
        self._frames = self._container.decode(self._stream)
        self._last_ts = -np.inf

    def frames(self, timestamps: Sequence[float]) -> np.ndarray:
        """uint8[N, H, W, 3]: the frames shown at ``timestamps`` (seconds, strictly increasing), each within
        ``tolerance_s`` of its timestamp; VideoDecodeError naming the file and time when one is missing."""
        want = np.asarray(timestamps, dtype=np.float64)
        if want.ndim != 1 or not len(want):
            raise ValueError(f"timestamps must be a non-empty 1-D sequence, got shape {want.shape}")
        if np.any(np.diff(want) <= 0):
            raise ValueError("timestamps must be strictly increasing")
        tol, tb = self.tolerance_s, self._stream.time_base
        if self._frames is None or not (self._last_ts < want[0] - tol <= self._last_ts + self.CONTINUE_S):
            self._restart(float(want[0]))
        out: list[np.ndarray] = []
        try:
            for frame in self._frames:
                if frame.pts is None:
                    continue
                ts = float(frame.pts * tb)
                self._last_ts = ts
                if ts < want[len(out)] - tol:
                    continue  # frames between the keyframe and the range's start
                if ts > want[len(out)] + tol:
                    self._frames = None
                    raise VideoDecodeError(
                        f"{self.path}: no frame at t={want[len(out)]:.4f} s (the next one is at {ts:.4f} s, "
                        f"tolerance {tol} s); meta/episodes from_timestamp or the data timestamps do not match the video"
                    )
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == len(want):
                    return np.stack(out)
        except self._av.error.FFmpegError as e:
            self._frames = None
            raise VideoDecodeError(
                f"{self.path}: decoding failed near t={want[len(out)]:.4f} s ({e}); the file is corrupt"
            ) from None
        self._frames = None
        raise VideoDecodeError(
            f"{self.path}: ends before t={want[len(out)]:.4f} s ({len(out)} of {len(want)} frames found); the "
            "video is shorter than meta/episodes says (truncated file?)"
        )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_frames(
    path: str | os.PathLike[str], timestamps: Sequence[float], *, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> np.ndarray:
    """uint8[N, H, W, 3] of ``path`` at ``timestamps`` (one seek, one decoding pass; see :class:`VideoReader`)."""
    with VideoReader(path, tolerance_s=tolerance_s) as reader:
        return reader.frames(timestamps)
