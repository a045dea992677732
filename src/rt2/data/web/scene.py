"""Scenes for the synthetic web corpus, and the pointing grid shared by web answers and robot auxiliary tasks.

**Pointing grid.** A board position is written with the same integer tokens actions use (``-10..10``), first
the board x (image rows, "top" = -10, "bottom" = +10), then the board y (image columns, "left" = -10,
"right" = +10), normalized over the board::

    gx = round((x - X_MIN) / (X_MAX - X_MIN) * 20 - 10)      x in [0.15, 0.60] m     -> -10..10 (top..bottom)
    gy = round((y - Y_MIN) / (Y_MAX - Y_MIN) * 20 - 10)      y in [-0.3048, 0.3048] -> -10..10 (left..right)

so one grid unit is 2.25 cm down the board and 3.05 cm across it, and "0 0" is the board centre. The answer
text is ``f"{gx} {gy}"`` (e.g. ``"4 -7"``), which ``ActionTokenizer(ActionSpace.language_table()).from_text``
parses, so pointing and acting share their output vocabulary (the grounding signal transfers to actions).

**Scene kinds.** Web images are rendered with the world's renderer (``rt2.sim``) but the scenes are sampled
here, because the corpus needs things the robot world never shows: held-out colours and shapes, many sizes,
digits and icons in colours, boards without a robot, and "non-table" images (a single symbol, or blocks alone,
on a plain background). Every scene is a pure function of the ``np.random.Generator`` passed in.
"""

from __future__ import annotations

import math

import numpy as np

from rt2.sim import board
from rt2.sim.scene import BACKGROUNDS, SIZE_SCALES, Block, Scene, Symbol

GRID_MAX = 10  # pointing answers use -GRID_MAX..GRID_MAX, the same integers as Language-Table actions
ALL_BLOCK_TYPES: tuple[tuple[str, str], ...] = tuple((c, s) for c in board.COLOURS for s in board.SHAPES)
TRAIN_BLOCK_TYPES: tuple[tuple[str, str], ...] = tuple((c, s) for c in board.TRAIN_COLOURS for s in board.TRAIN_SHAPES)
PLAIN_BACKGROUNDS: tuple[str, ...] = ("white", "grey")
SCENE_KINDS: tuple[str, ...] = ("tabletop", "blocks_only", "symbols_only", "digits", "symbol_board")
# Symbol boards mirror the emergent suites' scenes (rt2.eval.suites): several symbols of one family among blocks of
# three sizes, so the referents those suites name ("the 3", "the face with glasses", "the smallest block") are
# asked on the kind of board they are acted on. The groups are the suites' symbol sets (people: both faces always).
SYMBOL_GROUPS: dict[str, tuple[str, ...]] = {
    "digits": board.DIGITS,
    "icons": ("heart", "arrow", "cross"),
    "people": ("face", "face_glasses", "heart", "arrow"),
    "any": board.SYMBOL_KINDS,
}
SCALES: tuple[float, ...] = tuple(SIZE_SCALES.values())  # small 0.75, normal 1.0, large 1.3
MIN_SYMBOL_GAP = 0.09  # symbol centre to symbol centre (same as the sim's sampler)
MIN_BLOCK_SYMBOL_GAP = 0.055  # never hide a symbol under a block
MIN_BLOCK_GAP = 0.0175  # clearance between footprints, Language-Table's reset rule
MIN_EFFECTOR_GAP = 0.06


def board_to_grid(x: float, y: float) -> tuple[int, int]:
    """Board metres -> pointing grid integers ``(gx, gy)`` in ``-10..10`` (clipped; see module doc)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"board position must be finite, got ({x!r}, {y!r})")
    gx = round((x - board.X_MIN) / (board.X_MAX - board.X_MIN) * 2 * GRID_MAX - GRID_MAX)
    gy = round((y - board.Y_MIN) / (board.Y_MAX - board.Y_MIN) * 2 * GRID_MAX - GRID_MAX)
    return int(np.clip(gx, -GRID_MAX, GRID_MAX)), int(np.clip(gy, -GRID_MAX, GRID_MAX))


def grid_to_board(gx: int, gy: int) -> tuple[float, float]:
    """Pointing grid integers -> board metres (the centre of that grid cell)."""
    for v in (gx, gy):
        if not isinstance(v, (int, np.integer)) or not -GRID_MAX <= int(v) <= GRID_MAX:
            raise ValueError(f"grid coordinates must be integers in -{GRID_MAX}..{GRID_MAX}, got ({gx!r}, {gy!r})")
    x = board.X_MIN + (int(gx) + GRID_MAX) / (2 * GRID_MAX) * (board.X_MAX - board.X_MIN)
    y = board.Y_MIN + (int(gy) + GRID_MAX) / (2 * GRID_MAX) * (board.Y_MAX - board.Y_MIN)
    return float(x), float(y)


def grid_text(x: float, y: float) -> str:
    """``"gx gy"`` for a board position, e.g. ``"4 -7"``."""
    gx, gy = board_to_grid(x, y)
    return f"{gx} {gy}"


def parse_grid(text: str) -> tuple[int, int]:
    """``"4 -7"`` -> ``(4, -7)``; raises ValueError on anything else (out of range, extra tokens)."""
    parts = str(text).strip().split()
    if len(parts) != 2:
        raise ValueError(f"a grid point is two integers 'X Y', got {text!r}")
    try:
        gx, gy = int(parts[0]), int(parts[1])
    except ValueError as e:
        raise ValueError(f"a grid point is two integers 'X Y', got {text!r}") from e
    if not (-GRID_MAX <= gx <= GRID_MAX and -GRID_MAX <= gy <= GRID_MAX):
        raise ValueError(f"grid point {text!r} outside -{GRID_MAX}..{GRID_MAX}")
    return gx, gy


def _uniform_xy(rng: np.random.Generator, margin: float) -> np.ndarray:
    return np.array(
        [
            rng.uniform(board.X_MIN + margin, board.X_MAX - margin),
            rng.uniform(board.Y_MIN + margin, board.Y_MAX - margin),
        ]
    )


def _place_symbols(rng: np.random.Generator, kinds: list[str], colours: tuple[str, ...]) -> list[Symbol] | None:
    out: list[Symbol] = []
    for kind in kinds:
        for _ in range(30):
            p = _uniform_xy(rng, board.EDGE_BUFFER)
            if all(math.hypot(*(p - s.xy)) >= MIN_SYMBOL_GAP for s in out):
                colour = colours[int(rng.integers(len(colours)))]
                out.append(Symbol(kind, float(p[0]), float(p[1]), colour))
                break
        else:
            return None
    return out


def _place_blocks(
    rng: np.random.Generator,
    types: list[tuple[str, str]],
    effector: np.ndarray | None,
    symbols: list[Symbol],
    scales: tuple[float, ...],
) -> list[Block] | None:
    placed: list[Block] = []
    for colour, shape in types:
        scale = float(scales[int(rng.integers(len(scales)))])
        r = board.nominal_radius(shape, scale)
        for _ in range(30):
            p = _uniform_xy(rng, board.EDGE_BUFFER)
            ok = effector is None or math.hypot(*(p - effector)) >= MIN_EFFECTOR_GAP
            ok = ok and all(math.hypot(*(p - b.xy)) >= r + b.radius + MIN_BLOCK_GAP for b in placed)
            ok = ok and all(math.hypot(*(p - s.xy)) >= MIN_BLOCK_SYMBOL_GAP for s in symbols)
            if ok:
                yaw = float(rng.uniform(-math.pi, math.pi))
                placed.append(Block(colour, shape, float(p[0]), float(p[1]), yaw, scale))
                break
        else:
            return None
    return placed


def sample_web_scene(
    kind: str, rng: np.random.Generator, heldout_objects: bool = True, symbol_group: str | None = None
) -> Scene:
    """One web scene. ``kind``:

    - ``"tabletop"``: 2-8 blocks, 0-3 symbols (digits and icons, incl. faces), the robot, any background;
    - ``"blocks_only"``: 1-6 blocks on a plain background, no robot, no symbols;
    - ``"symbols_only"``: 1-2 symbols on a plain background (a "non-table" image of a digit or an icon);
    - ``"digits"``: exactly two distinct digits plus 0-4 blocks and the robot (grounded arithmetic);
    - ``"symbol_board"``: 3-7 blocks of three sizes, the robot and symbols of one ``SYMBOL_GROUPS`` family (4
      distinct digits, the 3 icons, the 4 people icons, or 3-4 of any kind); ``symbol_group`` picks the family
      (default: drawn from ``rng``), as the emergent suites' scenes do.

    ``heldout_objects`` lets blocks use the held-out colours/shapes (web images are where the model meets them).
    """
    board.check_name("web scene kind", kind, SCENE_KINDS)
    if symbol_group is not None:
        board.check_name("symbol group", symbol_group, tuple(SYMBOL_GROUPS))
        if kind != "symbol_board":
            raise ValueError(f"symbol_group is for the 'symbol_board' scene kind, not {kind!r}")
    types = ALL_BLOCK_TYPES if heldout_objects else TRAIN_BLOCK_TYPES
    for _ in range(200):
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        effector: np.ndarray | None = None
        if kind == "tabletop":
            n_blocks, kinds = int(rng.integers(2, 9)), _symbol_kinds(rng, int(rng.integers(0, 4)))
            effector = _uniform_xy(rng, board.EDGE_BUFFER)
        elif kind == "blocks_only":
            n_blocks, kinds = int(rng.integers(1, 7)), []
            background = PLAIN_BACKGROUNDS[int(rng.integers(len(PLAIN_BACKGROUNDS)))]
        elif kind == "symbols_only":
            n_blocks, kinds = 0, _symbol_kinds(rng, int(rng.integers(1, 3)))
            background = PLAIN_BACKGROUNDS[int(rng.integers(len(PLAIN_BACKGROUNDS)))]
        elif kind == "digits":
            n_blocks = int(rng.integers(0, 5))
            kinds = [str(d) for d in rng.choice(10, size=2, replace=False)]
            effector = _uniform_xy(rng, board.EDGE_BUFFER)
        else:  # symbol_board (its draws come after the other kinds' branches, so their streams are unchanged)
            group = symbol_group or tuple(SYMBOL_GROUPS)[int(rng.integers(len(SYMBOL_GROUPS)))]
            n_blocks, kinds = int(rng.integers(3, 8)), _group_kinds(rng, group)
            effector = _uniform_xy(rng, board.EDGE_BUFFER)
        symbols = _place_symbols(rng, kinds, board.COLOURS)
        if symbols is None:
            continue
        # A heart-shaped block next to the heart icon would make "the heart" ambiguous: drop heart blocks then.
        pool = [t for t in types if not (t[1] == "heart" and "heart" in kinds)]
        chosen = [pool[int(i)] for i in rng.choice(len(pool), size=n_blocks, replace=False)]
        blocks = _place_blocks(rng, chosen, effector, symbols, SCALES)
        if blocks is None:
            continue
        eff = None if effector is None else (float(effector[0]), float(effector[1]))
        return Scene(
            blocks=tuple(blocks),
            symbols=tuple(symbols),
            effector=eff,
            background=background,
            texture_seed=int(rng.integers(2**31)),
        )
    raise RuntimeError(f"could not sample a {kind!r} web scene in 200 attempts")  # pragma: no cover - geometry


def _group_kinds(rng: np.random.Generator, group: str) -> list[str]:
    pool = SYMBOL_GROUPS[group]
    if group == "digits":
        n = 4
    elif group == "any":
        n = int(rng.integers(3, 5))
    else:
        n = len(pool)  # icons / people: the whole set, as in the suites
    return [str(k) for k in rng.permutation(np.array(pool))[:n]]


def _symbol_kinds(rng: np.random.Generator, n: int) -> list[str]:
    return [str(k) for k in rng.permutation(np.array(board.SYMBOL_KINDS))[:n]]


def reading_order(items: list, key_xy) -> list:
    """Sort items top-to-bottom then left-to-right by grid cell, the order dense answers list objects in."""
    return sorted(items, key=lambda it: (board_to_grid(*key_xy(it)), key_xy(it)))
