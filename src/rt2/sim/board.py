"""The fixed facts of the tabletop world: board, colours, block shapes, symbols, named locations and directions.

Everything here is data (no physics, no drawing) so the renderer, the physics, the task rules, the instruction
generator and the web-corpus builder all agree on one vocabulary. Coordinates are robot-base metres, as in
Google's Language-Table: x in [0.15, 0.60] grows *down* the image ("top" = small x), y in [-0.3048, 0.3048]
grows to the image *right* ("left" = -y).

Block outlines are given in a block-local frame (metres, centred on the footprint's centre, yaw 0). Physics uses
``convex_parts`` (pymunk needs convex polygons), drawing uses ``outline``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from functools import cache

import numpy as np

# --- board -------------------------------------------------------------------------------------------------
X_MIN, X_MAX = 0.15, 0.60
Y_MIN, Y_MAX = -0.3048, 0.3048
BOARD_CENTER = ((X_MIN + X_MAX) / 2, (Y_MIN + Y_MAX) / 2)
EDGE_BUFFER = 0.08  # reset and goal sampling stay this far inside the board (Language-Table)
EFFECTOR_RADIUS = 0.0127  # the 1-inch cylinder of Language-Table
CONTROL_HZ = 10
UNIT_M = 0.01  # one "X Y" integer unit = 1 cm (ActionSpace.language_table)
MAX_UNITS = 10
MAX_DELTA_M = MAX_UNITS * UNIT_M

# --- colours -----------------------------------------------------------------------------------------------
# RGB 0..255. The four Language-Table pastels, plus held-out colours for generalisation suites.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (255, 102, 102),
    "blue": (102, 102, 255),
    "green": (102, 255, 102),
    "yellow": (255, 255, 102),
    "purple": (178, 102, 230),
    "orange": (255, 165, 70),
}
TRAIN_COLOURS: tuple[str, ...] = ("red", "blue", "green", "yellow")
HELDOUT_COLOURS: tuple[str, ...] = ("purple", "orange")
COLOURS: tuple[str, ...] = TRAIN_COLOURS + HELDOUT_COLOURS

# --- block shapes ------------------------------------------------------------------------------------------
TRAIN_SHAPES: tuple[str, ...] = ("moon", "cube", "star", "pentagon")
HELDOUT_SHAPES: tuple[str, ...] = ("triangle", "heart")
SHAPES: tuple[str, ...] = TRAIN_SHAPES + HELDOUT_SHAPES

# Footprints (x-extent, y-extent) in metres at scale 1, from the Language-Table meshes.
FOOTPRINT: dict[str, tuple[float, float]] = {
    "cube": (0.0397, 0.0397),
    "moon": (0.0257, 0.0525),
    "star": (0.0408, 0.0444),
    "pentagon": (0.0413, 0.0444),
    "triangle": (0.0390, 0.0450),
    "heart": (0.0400, 0.0440),
}

BLOCK_SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "BLOCK_4": (("red", "moon"), ("blue", "cube"), ("green", "star"), ("yellow", "pentagon")),
    # The Language-Table eval set: two of each colour and two of each shape.
    "BLOCK_8": (
        ("red", "moon"),
        ("red", "pentagon"),
        ("blue", "moon"),
        ("blue", "cube"),
        ("green", "cube"),
        ("green", "star"),
        ("yellow", "star"),
        ("yellow", "pentagon"),
    ),
    "BLOCK_16": tuple((c, s) for c in TRAIN_COLOURS for s in TRAIN_SHAPES),
    # Held-out colours and shapes mixed with familiar ones (unseen-object suites).
    "HELDOUT_8": (
        ("purple", "moon"),
        ("orange", "cube"),
        ("red", "triangle"),
        ("blue", "heart"),
        ("purple", "triangle"),
        ("orange", "heart"),
        ("green", "star"),
        ("yellow", "pentagon"),
    ),
}


def _regular(n: int, radius: float, phase: float) -> np.ndarray:
    a = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def _fit(points: np.ndarray, extent: tuple[float, float]) -> np.ndarray:
    """Scale and centre ``points`` so their bounding box is exactly ``extent`` around the origin."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - (lo + hi) / 2) * (np.asarray(extent) / (hi - lo))


@cache
def _shape_geometry(shape: str) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    ext = FOOTPRINT[shape]
    if shape == "cube":
        out = _fit(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float), ext)
        return out, (out,)
    if shape in ("pentagon", "triangle"):
        n = 5 if shape == "pentagon" else 3
        # Point toward -x (the image top) so the silhouette reads as an upright pentagon/triangle.
        out = _fit(_regular(n, 1.0, math.pi), ext)
        return out, (out,)
    if shape == "star":
        # Five points, inner radius 0.5 (a chunky toy star). Physics: centre pentagon + 5 convex point triangles.
        a = math.pi + np.arange(10) * math.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.5)
        out = _fit(np.stack([r * np.cos(a), r * np.sin(a)], axis=1), ext)
        inner = out[1::2]
        # out[2*i] is tip i; out[2*i -/+ 1] are the notches either side of it.
        parts = (inner,) + tuple(np.stack([out[(2 * i - 1) % 10], out[2 * i], out[2 * i + 1]]) for i in range(5))
        return out, parts
    if shape == "moon":
        # Crescent: tips along y, bulge toward +x. Outer and inner arcs through the same two tips; the strip
        # between them is split into 8 quads, each convex (pymunk needs convex polygons).
        t = np.linspace(-1.0, 1.0, 9)
        half = 0.5
        outer_bulge, inner_bulge = 0.5, 0.12  # inner arc reaches 24% of the thickness: a 76%-thick middle
        outer = np.stack([outer_bulge * (1 - t**2), half * t], axis=1)
        inner = np.stack([inner_bulge * (1 - t**2), half * t], axis=1)
        out = np.concatenate([outer, inner[::-1][1:-1]])
        lo, hi = out.min(axis=0), out.max(axis=0)
        scale = np.asarray(ext) / (hi - lo)
        centre = (lo + hi) / 2
        outer, inner = (outer - centre) * scale, (inner - centre) * scale
        out = (out - centre) * scale
        parts = tuple(np.stack([outer[i], outer[i + 1], inner[i + 1], inner[i]]) for i in range(8))
        return out, parts
    if shape == "heart":
        # Classic parametric heart, point toward +x (image bottom). Physics: left and right halves, each hulled.
        s = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        px = -(13 * np.cos(s) - 5 * np.cos(2 * s) - 2 * np.cos(3 * s) - np.cos(4 * s))
        py = 16 * np.sin(s) ** 3
        out = _fit(np.stack([px, py], axis=1), ext)
        left = out[out[:, 1] <= 1e-9]
        right = out[out[:, 1] >= -1e-9]
        return out, (left, right)
    raise ValueError(f"unknown shape {shape!r}; valid shapes: {', '.join(SHAPES)}")


def outline(shape: str, scale: float = 1.0) -> np.ndarray:
    """Block outline, float64[N, 2] (x, y) metres in the block frame, counter-clockwise or clockwise."""
    check_shape(shape)
    return _shape_geometry(shape)[0] * scale


def convex_parts(shape: str, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """Convex pieces whose union approximates the outline (moon: 8 quads; star: pentagon + 5 tips)."""
    check_shape(shape)
    return tuple(p * scale for p in _shape_geometry(shape)[1])


def nominal_radius(shape: str, scale: float = 1.0) -> float:
    """Half the mean footprint: the "size" of a block for spacing rules and push-contact distances."""
    check_shape(shape)
    return 0.25 * (FOOTPRINT[shape][0] + FOOTPRINT[shape][1]) * scale


def check_colour(colour: str) -> str:
    """``colour`` if the renderer has it (training and held-out colours alike), else a ValueError listing them."""
    # isinstance first: an unhashable value (a list) would otherwise escape as a TypeError from the dict lookup.
    if not isinstance(colour, str) or colour not in COLOUR_RGB:
        raise ValueError(f"unknown colour {colour!r}; valid colours: {', '.join(COLOURS)}")
    return colour


def check_shape(shape: str) -> str:
    """``shape`` if it has a footprint (training and held-out shapes alike), else a ValueError listing them."""
    if not isinstance(shape, str) or shape not in FOOTPRINT:
        raise ValueError(f"unknown shape {shape!r}; valid shapes: {', '.join(SHAPES)}")
    return shape


def check_block_set(name: str) -> tuple[tuple[str, str], ...]:
    if name not in BLOCK_SETS:
        raise ValueError(f"unknown block set {name!r}; valid block sets: {', '.join(BLOCK_SETS)}")
    return BLOCK_SETS[name]


# --- symbols drawn flat on the board (emergent-skill suites) -------------------------------------------------
DIGITS: tuple[str, ...] = tuple(str(d) for d in range(10))
ICONS: tuple[str, ...] = ("heart", "arrow", "cross", "face", "face_glasses")
SYMBOL_KINDS: tuple[str, ...] = DIGITS + ICONS
SYMBOL_SIZE = 0.06  # metres; ~10 px at the default 72x96 image, legible after anti-aliasing


def check_symbol(kind: str) -> str:
    if kind not in SYMBOL_KINDS:
        raise ValueError(f"unknown symbol {kind!r}; valid symbols: {', '.join(SYMBOL_KINDS)}")
    return kind


# --- named absolute locations (block2absolute) ----------------------------------------------------------------
# Board corners / edge midpoints / centre with the x range shifted by -0.025 m, as in Language-Table.
_LX = (X_MIN - 0.025, (X_MIN + X_MAX) / 2 - 0.025, X_MAX - 0.025)
_LY = (Y_MIN, 0.0, Y_MAX)
LOCATIONS: dict[str, tuple[float, float]] = {
    "top_left": (_LX[0], _LY[0]),
    "top": (_LX[0], _LY[1]),
    "top_right": (_LX[0], _LY[2]),
    "center_left": (_LX[1], _LY[0]),
    "center": (_LX[1], _LY[1]),
    "center_right": (_LX[1], _LY[2]),
    "bottom_left": (_LX[2], _LY[0]),
    "bottom": (_LX[2], _LY[1]),
    "bottom_right": (_LX[2], _LY[2]),
}

# --- directions (block2relative, block2blockrelative): "up" = -x, "left" = -y -----------------------------
_S = 1 / math.sqrt(2)
DIRECTIONS: dict[str, tuple[float, float]] = {
    "up": (-1.0, 0.0),
    "down": (1.0, 0.0),
    "left": (0.0, -1.0),
    "right": (0.0, 1.0),
    "up_left": (-_S, -_S),
    "up_right": (-_S, _S),
    "down_left": (_S, -_S),
    "down_right": (_S, _S),
}


def plural(noun: str) -> str:
    """English plural of the last word of ``noun`` ("family" -> "families", "referent kind" -> "referent kinds").

    A bare ``+ "s"`` gave "valid familys" / "valid policys" in every error that lists choices.
    """
    if len(noun) > 1 and noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def check_name(kind: str, value: str, valid: Collection[str]) -> str:
    """Raise a ValueError naming ``kind`` and listing the valid values when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid {plural(kind)}: {', '.join(valid)}")
    return value
