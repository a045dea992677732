"""Top-down renderer for ``Scene``s, usable without an env (the web corpus draws with it).

    from rt2.sim.render import render_scene, world_to_pixel
    img = render_scene(scene, size=(72, 96))            # uint8[72, 96, 3], ~0.1 ms
    row, col = world_to_pixel((0.3, 0.0), size=(72, 96))

The camera looks straight down at the board: image rows follow +x (row 0 = x 0.15 m, the "top", nearest the
robot base), columns follow +y (col 0 = y -0.3048 m, "left"). The board fills the frame. The default policy
image is 72x96 (H x W): the board's 0.45 x 0.61 m aspect (0.74) maps onto near-square pixels of 6.3 x 6.4 mm,
so a 4 cm block is ~6 px across. Shapes are drawn at ``supersample`` x resolution with anti-aliased polygons
and area-downscaled, which keeps moon, star and pentagon distinguishable at that size.

Static content (board background, symbols, clutter) is drawn once per scene layout and cached, so a step only
draws blocks and the effector.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np

from rt2.sim import board
from rt2.sim.scene import Block, Clutter, Scene, Symbol

DEFAULT_SIZE = (72, 96)
VIDEO_SIZE = (360, 480)
BOARD_RGB = (51, 51, 51)  # Language-Table's board: rgba (0.2, 0.2, 0.2)
EFFECTOR_RGB = (235, 235, 235)
_SHIFT = 4  # fixed-point bits for cv2 polygon vertices: 1/16 px precision
_FX = float(1 << _SHIFT)


@dataclass(frozen=True)
class Camera:
    """The viewed rectangle of the board plane (metres). The default is exactly the board."""

    x_range: tuple[float, float] = (board.X_MIN, board.X_MAX)
    y_range: tuple[float, float] = (board.Y_MIN, board.Y_MAX)


def world_to_pixel(xy, size: tuple[int, int] = DEFAULT_SIZE, camera: Camera = Camera()) -> np.ndarray:
    """Map world (x, y) metres, float[..., 2], to continuous (row, col) pixel coordinates, float64[..., 2].

    Pixel (r, c) covers [r, r+1) x [c, c+1); ``np.floor`` gives the index of the pixel containing the point.
    """
    xy = np.asarray(xy, dtype=np.float64)
    h, w = size
    row = (xy[..., 0] - camera.x_range[0]) * h / (camera.x_range[1] - camera.x_range[0])
    col = (xy[..., 1] - camera.y_range[0]) * w / (camera.y_range[1] - camera.y_range[0])
    return np.stack([row, col], axis=-1)


def pixel_to_world(rc, size: tuple[int, int] = DEFAULT_SIZE, camera: Camera = Camera()) -> np.ndarray:
    """Inverse of ``world_to_pixel``: (row, col) float[..., 2] -> (x, y) metres."""
    rc = np.asarray(rc, dtype=np.float64)
    h, w = size
    x = camera.x_range[0] + rc[..., 0] * (camera.x_range[1] - camera.x_range[0]) / h
    y = camera.y_range[0] + rc[..., 1] * (camera.y_range[1] - camera.y_range[0]) / w
    return np.stack([x, y], axis=-1)


class Renderer:
    """Draws scenes at one output size. Reuse one instance: it caches the static layer of the last layout."""

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, supersample: int | None = None, camera: Camera = Camera()):
        h, w = int(size[0]), int(size[1])
        if h < 8 or w < 8:
            raise ValueError(f"image size must be at least 8x8, got {size}")
        self.size = (h, w)
        # Small images need more supersampling for clean edges; big ones are already smooth.
        # 2x supersampling + cv2's anti-aliased polygons is visually the same as 4x at 72x96 and 3x faster.
        self.ss = supersample if supersample is not None else (2 if max(h, w) <= 400 else 1)
        self.camera = camera
        self.hi = (h * self.ss, w * self.ss)
        self._sx = self.hi[0] / (camera.x_range[1] - camera.x_range[0])  # hi-res px per metre along rows
        self._sy = self.hi[1] / (camera.y_range[1] - camera.y_range[0])
        self._static_key: tuple | None = None
        self._static: np.ndarray | None = None

    # -- coordinates -------------------------------------------------------------------------------------
    def _pts(self, xy: np.ndarray) -> np.ndarray:
        """World float[N, 2] -> fixed-point hi-res (col, row) int32[N, 2] for cv2."""
        col = (xy[:, 1] - self.camera.y_range[0]) * self._sy
        row = (xy[:, 0] - self.camera.x_range[0]) * self._sx
        return np.round(np.stack([col, row], axis=1) * _FX).astype(np.int32)

    def _px(self, metres: float) -> float:
        return metres * 0.5 * (self._sx + self._sy)

    # -- drawing -----------------------------------------------------------------------------------------
    def render(self, scene: Scene, effector: bool = True) -> np.ndarray:
        """uint8[H, W, 3]: the scene seen from above."""
        key = (scene.background, scene.texture_seed, scene.symbols, scene.clutter)
        if self._static is None or key != self._static_key:
            self._static = self._draw_static(scene)
            self._static_key = key
        img = self._static.copy()
        self._draw_blocks(img, scene.blocks)
        if effector and scene.effector is not None:
            self._draw_effector(img, scene.effector)
        out = cv2.resize(img, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA) if self.ss > 1 else img
        if not scene.lighting.identity:
            out = apply_lighting(out, scene.lighting)
        return out

    def _draw_static(self, scene: Scene) -> np.ndarray:
        img = background(scene.background, self.hi, scene.texture_seed, self._px(0.05))
        for c in scene.clutter:
            self._draw_clutter(img, c)
        for s in scene.symbols:
            self._draw_symbol(img, s)
        return img

    def _draw_blocks(self, img: np.ndarray, blocks: tuple[Block, ...]) -> None:
        if not blocks:
            return
        # All outlines are transformed in one vectorized pass (per-block numpy calls dominated the frame time).
        key = tuple((b.shape, b.scale, b.colour, b.rgb) for b in blocks)
        if key != getattr(self, "_block_key", None):
            outlines = [board.outline(b.shape, b.scale) for b in blocks]
            self._local = np.concatenate(outlines)
            self._splits = np.cumsum([len(o) for o in outlines])[:-1]
            self._counts = np.array([len(o) for o in outlines])
            fills = [b.rgb if b.rgb is not None else board.COLOUR_RGB[b.colour] for b in blocks]
            # A darker rim: the block's side faces seen at a slant.
            self._fills = [(tuple(int(v) for v in f), tuple(int(v * 0.55) for v in f)) for f in fills]
            self._block_key = key
        pose = np.array([[b.x, b.y, b.yaw] for b in blocks])
        c, s = np.repeat(np.cos(pose[:, 2]), self._counts), np.repeat(np.sin(pose[:, 2]), self._counts)
        lx, ly = self._local[:, 0], self._local[:, 1]
        wx = lx * c - ly * s + np.repeat(pose[:, 0], self._counts)
        wy = lx * s + ly * c + np.repeat(pose[:, 1], self._counts)
        pts = self._pts(np.stack([wx, wy], axis=1))
        thick = max(1, self.ss // 2)
        for poly, (fill, edge) in zip(np.split(pts, self._splits), self._fills, strict=True):
            cv2.fillPoly(img, [poly], fill, cv2.LINE_AA, _SHIFT)
            cv2.polylines(img, [poly], True, edge, thick, cv2.LINE_AA, _SHIFT)

    def _draw_effector(self, img: np.ndarray, xy: tuple[float, float]) -> None:
        centre = self._pts(np.array([xy]))[0]
        r = int(round(self._px(board.EFFECTOR_RADIUS) * _FX))
        cv2.circle(img, (int(centre[0]), int(centre[1])), r, EFFECTOR_RGB, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, (int(centre[0]), int(centre[1])), r, (90, 90, 90), max(1, self.ss // 2), cv2.LINE_AA, _SHIFT)

    def _draw_clutter(self, img: np.ndarray, c: Clutter) -> None:
        ctr = (float(c.y - self.camera.y_range[0]) * self._sy, float(c.x - self.camera.x_range[0]) * self._sx)
        size = self._px(c.size)
        if c.kind == "disc":
            cv2.circle(img, (int(ctr[0]), int(ctr[1])), max(1, int(size / 2)), c.rgb, -1, cv2.LINE_AA)
            return
        dims = (size, size * 0.6) if c.kind == "rect" else (size * 2.5, max(2.0, size * 0.12))
        box = cv2.boxPoints((ctr, dims, math.degrees(c.yaw)))
        cv2.fillPoly(img, [np.round(box * _FX).astype(np.int32)], c.rgb, cv2.LINE_AA, _SHIFT)

    def _draw_symbol(self, img: np.ndarray, s: Symbol) -> None:
        rgb = board.COLOUR_RGB[s.colour]
        cx = float(s.y - self.camera.y_range[0]) * self._sy
        cy = float(s.x - self.camera.x_range[0]) * self._sx
        size = self._px(s.size)
        draw_symbol(img, s.kind, (cx, cy), size, rgb)


def draw_symbol(img: np.ndarray, kind: str, centre: tuple[float, float], size: float, rgb) -> None:
    """Draw symbol ``kind`` into ``img`` (uint8[H, W, 3], in place) centred at pixel (col, row), ``size`` px tall."""
    board.check_symbol(kind)
    cx, cy = centre
    lw = max(1, int(round(size * 0.12)))
    dark = (25, 25, 25)
    if kind in board.DIGITS:
        font = cv2.FONT_HERSHEY_DUPLEX
        (tw, th), _ = cv2.getTextSize(kind, font, 1.0, 1)
        scale = size * 0.85 / th
        thick = max(1, int(round(size * 0.14)))
        (tw, th), _ = cv2.getTextSize(kind, font, scale, thick)
        org = (int(round(cx - tw / 2)), int(round(cy + th / 2)))
        cv2.putText(img, kind, org, font, scale, rgb, thick, cv2.LINE_AA)
        return

    def poly(points: np.ndarray, colour) -> None:
        p = np.asarray(points, float) * size + (cx, cy)
        cv2.fillPoly(img, [np.round(p * _FX).astype(np.int32)], colour, cv2.LINE_AA, _SHIFT)

    if kind == "heart":
        o = board.outline("heart")  # (x=down, y=right) -> (col, row)
        poly(o[:, ::-1] / o.max() * 0.45, rgb)
    elif kind == "arrow":  # points right (+y)
        poly(
            [[-0.45, -0.12], [0.05, -0.12], [0.05, -0.32], [0.45, 0.0], [0.05, 0.32], [0.05, 0.12], [-0.45, 0.12]], rgb
        )
    elif kind == "cross":
        for a in (math.pi / 4, -math.pi / 4):
            c, s_ = math.cos(a), math.sin(a)
            bar = np.array([[-0.48, -0.1], [0.48, -0.1], [0.48, 0.1], [-0.48, 0.1]])
            poly(bar @ np.array([[c, s_], [-s_, c]]), rgb)
    else:  # face / face_glasses: a head in the symbol colour with dark features
        r = size * 0.45
        cv2.circle(img, (int(cx), int(cy)), int(r), rgb, -1, cv2.LINE_AA)
        ex, ey = size * 0.16, size * 0.1
        for sx in (-1, 1):
            cv2.circle(img, (int(cx + sx * ex), int(cy - ey)), max(1, int(size * 0.05)), dark, -1, cv2.LINE_AA)
        cv2.ellipse(img, (int(cx), int(cy + size * 0.08)), (int(size * 0.2), int(size * 0.14)), 0, 20, 160, dark, lw)
        if kind == "face_glasses":
            gr = max(2, int(size * 0.11))
            for sx in (-1, 1):
                cv2.circle(img, (int(cx + sx * ex), int(cy - ey)), gr, dark, max(1, lw // 2 + 1), cv2.LINE_AA)
            cv2.line(img, (int(cx - ex + gr), int(cy - ey)), (int(cx + ex - gr), int(cy - ey)), dark, max(1, lw // 2))


def background(name: str, hw: tuple[int, int], seed: int, px_per_5cm: float) -> np.ndarray:
    """uint8[H, W, 3] board surface. Procedural textures are deterministic in ``seed``."""
    h, w = hw
    rng = np.random.default_rng(seed)
    if name == "grey":
        return np.full((h, w, 3), BOARD_RGB, np.uint8)
    if name == "white":
        return np.full((h, w, 3), (222, 222, 215), np.uint8)
    if name == "checker":
        k = max(1, int(px_per_5cm))
        rr, cc = np.mgrid[0:h, 0:w]
        mask = ((rr // k + cc // k) % 2).astype(bool)
        img = np.full((h, w, 3), (70, 70, 78), np.uint8)
        img[mask] = (120, 120, 128)
        return img
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), max(1.0, px_per_5cm / 20))
    if name == "wood":
        rr, cc = np.mgrid[0:h, 0:w].astype(np.float32)
        grain = np.sin(rr / max(2.0, px_per_5cm / 6) + 3 * noise + 0.002 * cc * rng.uniform(0.5, 1.5))
        base, amp = np.array([139, 94, 60], np.float32), np.array([25, 18, 12], np.float32)
        return np.clip(base + grain[..., None] * amp, 0, 255).astype(np.uint8)
    base = {"blue_cloth": (50, 70, 130), "green_felt": (40, 105, 60)}[
        board.check_name("background", name, ("blue_cloth", "green_felt"))
    ]
    return np.clip(np.asarray(base, np.float32) + noise[..., None] * 12, 0, 255).astype(np.uint8)


def apply_lighting(img: np.ndarray, lighting) -> np.ndarray:
    """uint8[H, W, 3] -> uint8[H, W, 3] with brightness, contrast and a per-channel tint."""
    out = img.astype(np.float32) * lighting.contrast + lighting.brightness * 255.0
    out *= np.asarray(lighting.tint, np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def overlay_text(img: np.ndarray, text: str, band: int | None = None) -> np.ndarray:
    """Return ``img`` with a white band on top holding ``text`` (wrapped), like Language-Table's video render."""
    h, w = img.shape[:2]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, w / 900)
    words, lines, cur = text.split(), [], ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if cv2.getTextSize(trial, font, scale, 1)[0][0] > w - 10 and cur:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    lines.append(cur)
    lh = int(cv2.getTextSize("Ag", font, scale, 1)[0][1] * 1.8)
    band = band if band is not None else lh * len(lines) + 8
    out = np.full((h + band, w, 3), 255, np.uint8)
    out[band:] = img
    for i, line in enumerate(lines):
        # Hershey fonts have no accents; transliterate so Spanish/French text stays readable.
        ascii_line = unicodedata.normalize("NFKD", line).encode("ascii", "ignore").decode()
        cv2.putText(out, ascii_line, (5, 4 + lh * (i + 1) - lh // 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


# plan slot colours in videos: robot white, block yellow, goal cyan (RGB)
POINT_COLOURS: tuple[tuple[int, int, int], ...] = ((255, 255, 255), (255, 220, 0), (0, 220, 255))


def draw_points(img: np.ndarray, points_xy, size: tuple[int, int], top: int = 0) -> np.ndarray:
    """Draw board points (metres, one per plan slot, in POINT_COLOURS order) as ringed crosses on a video frame
    of board size ``size`` whose board starts ``top`` rows down (below the instruction band). In place; returns
    ``img``."""
    r = max(3, size[1] // 60)
    for k, xy in enumerate(points_xy):
        row, col = world_to_pixel(np.asarray(xy, float), size)
        c = (int(round(col)), int(round(row)) + top)
        colour = POINT_COLOURS[k % len(POINT_COLOURS)]
        cv2.circle(img, c, r + 2, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.circle(img, c, r + 1, colour, 1, cv2.LINE_AA)
        cv2.line(img, (c[0] - r, c[1]), (c[0] + r, c[1]), colour, 1, cv2.LINE_AA)
        cv2.line(img, (c[0], c[1] - r), (c[0], c[1] + r), colour, 1, cv2.LINE_AA)
    return img


_RENDERERS: dict[tuple[int, int], Renderer] = {}


def render_scene(scene: Scene, size: tuple[int, int] = DEFAULT_SIZE, effector: bool = True) -> np.ndarray:
    """uint8[H, W, 3] image of ``scene`` (a cached Renderer per size)."""
    key = (int(size[0]), int(size[1]))
    if key not in _RENDERERS:
        _RENDERERS[key] = Renderer(key)
    return _RENDERERS[key].render(scene, effector=effector)
