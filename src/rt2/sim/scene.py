"""World state as plain data: ``Scene`` (what is on the table) and ``SceneConfig`` (how to sample one).

A ``Scene`` is everything the renderer needs and everything an oracle or evaluator may read: blocks (colour,
shape, scale, pose), flat symbols (digits and icons), flat clutter, the effector, the board background and a
lighting transform. The env builds one per step from the physics state (``env.world_state()``); the web-corpus
builder samples them directly::

    from rt2.sim.scene import SceneConfig, sample_scene
    scene = sample_scene(SceneConfig.preset("emergent"), np.random.default_rng(0))

``sample_scene`` follows the Language-Table reset rules: effector uniform in the board shrunk by 0.08 m, blocks
uniform in the same area with random yaw, at least 0.0175 m of clearance between blocks (clearance = centre
distance minus both nominal radii, since footprints are ~4 cm) and at least 0.06 m from the effector,
20 tries per block, then the whole layout is re-drawn (up to 200 times).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from rt2.sim import board

BACKGROUNDS_SEEN: tuple[str, ...] = ("grey",)
BACKGROUNDS_UNSEEN: tuple[str, ...] = ("wood", "white", "blue_cloth", "checker", "green_felt")
BACKGROUNDS: tuple[str, ...] = BACKGROUNDS_SEEN + BACKGROUNDS_UNSEEN
SIZE_SCALES: dict[str, float] = {"small": 0.75, "normal": 1.0, "large": 1.3}
BLOCK_CLEARANCE = 0.0175
EFFECTOR_CLEARANCE = 0.06
SYMBOL_CLEARANCE = 0.055  # block centre to symbol centre, so a symbol is never hidden under a block at reset


@dataclass(frozen=True)
class Block:
    """One block. ``x, y`` metres (board frame), ``yaw`` radians, ``scale`` multiplies the footprint."""

    colour: str
    shape: str
    x: float
    y: float
    yaw: float = 0.0
    scale: float = 1.0
    rgb: tuple[int, int, int] | None = None  # overrides the palette colour (colour jitter); None = palette

    def __post_init__(self) -> None:
        # Checked here, not at render time: an unknown colour or shape used to pass construction and only fail
        # at env.reset as a bare KeyError from the palette/footprint tables. board.COLOURS / board.SHAPES include
        # the held-out ones (HELDOUT_8, the unseen-object suites), so those stay valid.
        try:
            board.check_colour(self.colour)
            board.check_shape(self.shape)
        except ValueError as e:
            raise ValueError(f"Block({self.colour!r}, {self.shape!r}): {e}") from None

    @property
    def name(self) -> str:
        """Identity used by TaskSpec, e.g. "red moon" (colour+shape is unique within a scene)."""
        return f"{self.colour} {self.shape}"

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])

    @property
    def radius(self) -> float:
        return board.nominal_radius(self.shape, self.scale)


@dataclass(frozen=True)
class Symbol:
    """A flat printed symbol (digit "0".."9" or an icon from ``board.ICONS``) at ``x, y``; blocks slide over it."""

    kind: str
    x: float
    y: float
    colour: str = "red"
    size: float = board.SYMBOL_SIZE

    def __post_init__(self) -> None:
        # Same trap as Block: the renderer looks both up in tables and would fail later with a bare KeyError.
        try:
            board.check_symbol(self.kind)
            board.check_colour(self.colour)
        except ValueError as e:
            raise ValueError(f"Symbol({self.kind!r}, colour={self.colour!r}): {e}") from None

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])


@dataclass(frozen=True)
class Clutter:
    """Flat distractor: kind in ("rect", "disc", "stripe"), size metres, rgb 0..255."""

    kind: str
    x: float
    y: float
    size: float
    yaw: float
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Lighting:
    """Image-level transform applied after drawing: out = (img * contrast + brightness * 255) * tint."""

    brightness: float = 0.0
    contrast: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def identity(self) -> bool:
        return self.brightness == 0.0 and self.contrast == 1.0 and self.tint == (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Scene:
    blocks: tuple[Block, ...]
    symbols: tuple[Symbol, ...] = ()
    effector: tuple[float, float] | None = None
    background: str = "grey"
    clutter: tuple[Clutter, ...] = ()
    lighting: Lighting = field(default_factory=Lighting)
    texture_seed: int = 0  # procedural backgrounds (wood grain, cloth) are drawn from this seed

    def __post_init__(self) -> None:
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate blocks in scene {names}: colour+shape must be unique (it is the block id)")
        board.check_name("background", self.background, BACKGROUNDS)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks)

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise ValueError(f"no block {name!r} in this scene; blocks present: {', '.join(self.names)}")

    def index(self, name: str) -> int:
        return self.names.index(self.block(name).name)

    def symbol(self, kind: str) -> Symbol:
        for s in self.symbols:
            if s.kind == kind:
                return s
        present = ", ".join(s.kind for s in self.symbols) or "none"
        raise ValueError(f"no symbol {kind!r} in this scene; symbols present: {present}")

    def positions(self) -> np.ndarray:
        """float64[N, 2] block centres in scene order."""
        return np.array([[b.x, b.y] for b in self.blocks], dtype=np.float64).reshape(-1, 2)

    def moved(self, xy: np.ndarray, yaw: np.ndarray, effector: tuple[float, float] | None) -> Scene:
        """A copy with new block poses (float[N, 2], float[N]) and effector."""
        blocks = tuple(
            dataclasses.replace(b, x=float(p[0]), y=float(p[1]), yaw=float(a))
            for b, p, a in zip(self.blocks, xy, yaw, strict=True)
        )
        return dataclasses.replace(self, blocks=blocks, effector=effector)


@dataclass(frozen=True)
class SceneConfig:
    """How to sample a scene. Use ``SceneConfig.preset(name)``; ``PRESETS`` lists them."""

    block_set: str = "BLOCK_8"
    n_blocks: int | None = None  # None = the whole set; else a random subset of this size
    scales: tuple[float, ...] = (1.0,)  # per-block size drawn from these (see SIZE_SCALES)
    n_symbols: int = 0
    symbol_kinds: tuple[str, ...] = board.SYMBOL_KINDS
    symbol_colours: tuple[str, ...] = board.TRAIN_COLOURS
    backgrounds: tuple[str, ...] = BACKGROUNDS_SEEN
    n_clutter: int = 0
    colour_jitter: float = 0.0  # std of a per-block multiplicative RGB factor
    lighting_jitter: float = 0.0  # std of brightness (fraction of 255) and contrast; tint std is half of it

    def __post_init__(self) -> None:
        blocks = board.check_block_set(self.block_set)
        if self.n_blocks is not None and not 1 <= self.n_blocks <= len(blocks):
            raise ValueError(f"n_blocks={self.n_blocks} must be in 1..{len(blocks)} for block set {self.block_set}")
        for k in self.symbol_kinds:
            board.check_symbol(k)
        for c in self.symbol_colours:
            board.check_colour(c)
        for bg in self.backgrounds:
            board.check_name("background", bg, BACKGROUNDS)
        if any(s <= 0 for s in self.scales) or not self.scales:
            raise ValueError(f"scales must be positive and non-empty, got {self.scales}")
        if self.n_symbols > len(self.symbol_kinds):
            raise ValueError(f"n_symbols={self.n_symbols} exceeds the {len(self.symbol_kinds)} symbol kinds")

    @staticmethod
    def preset(name: str) -> SceneConfig:
        return PRESETS[board.check_name("scene preset", name, tuple(PRESETS))]


_ALL_SCALES = tuple(SIZE_SCALES.values())
PRESETS: dict[str, SceneConfig] = {
    "language_table": SceneConfig(),  # BLOCK_8 on the grey board: the eval setting
    "block4": SceneConfig(block_set="BLOCK_4"),
    "symbols": SceneConfig(n_blocks=6, n_symbols=4),
    "sizes": SceneConfig(scales=_ALL_SCALES),
    "emergent": SceneConfig(n_blocks=6, n_symbols=4, scales=_ALL_SCALES),
    "heldout_objects": SceneConfig(block_set="HELDOUT_8"),
    "unseen_background": SceneConfig(backgrounds=BACKGROUNDS_UNSEEN),
    "clutter": SceneConfig(n_clutter=6),
    "jitter": SceneConfig(colour_jitter=0.08, lighting_jitter=0.08),
    "hard": SceneConfig(backgrounds=BACKGROUNDS_UNSEEN, n_clutter=6, colour_jitter=0.08, lighting_jitter=0.08),
}
SCENE_PRESETS: tuple[str, ...] = tuple(PRESETS)


def _uniform_xy(rng: np.random.Generator, margin: float) -> np.ndarray:
    return np.array(
        [
            rng.uniform(board.X_MIN + margin, board.X_MAX - margin),
            rng.uniform(board.Y_MIN + margin, board.Y_MAX - margin),
        ]
    )


def sample_scene(
    config: SceneConfig,
    rng: np.random.Generator,
    effector: tuple[float, float] | None = None,
    required: tuple[str, ...] = (),
    required_symbols: tuple[str, ...] = (),
) -> Scene:
    """Sample a valid layout. ``required`` block names ("red moon") are always included in a subset.

    Raises ValueError if a required block is not in the block set, or if no layout fits after 200 attempts.
    """
    pool = list(board.check_block_set(config.block_set))
    names = [f"{c} {s}" for c, s in pool]
    for r in required:
        if r not in names:
            raise ValueError(f"block {r!r} is not in block set {config.block_set}; it has: {', '.join(names)}")
    for k in required_symbols:
        board.check_symbol(k)
    n = len(pool) if config.n_blocks is None else config.n_blocks
    for _ in range(200):
        chosen = [names.index(r) for r in required]
        rest = [i for i in rng.permutation(len(pool)) if i not in chosen]
        chosen = (chosen + rest)[: max(n, len(chosen))]
        chosen.sort()
        eff = np.asarray(effector, float) if effector is not None else _uniform_xy(rng, board.EDGE_BUFFER)
        symbols = _sample_symbols(config, rng, eff, required_symbols)
        if symbols is None:
            continue
        blocks = _sample_blocks(config, rng, [pool[i] for i in chosen], eff, symbols)
        if blocks is None:
            continue
        clutter = tuple(_sample_clutter(rng) for _ in range(config.n_clutter))
        bg = config.backgrounds[int(rng.integers(len(config.backgrounds)))]
        return Scene(
            blocks=blocks,
            symbols=symbols,
            effector=(float(eff[0]), float(eff[1])),
            background=bg,
            clutter=clutter,
            lighting=_sample_lighting(config, rng),
            texture_seed=int(rng.integers(2**31)),
        )
    raise ValueError(f"could not place {n} blocks and {config.n_symbols} symbols in 200 attempts; use fewer/smaller")


def _sample_symbols(config, rng, eff, required) -> tuple[Symbol, ...] | None:
    n = max(config.n_symbols, len(required))
    if n == 0:
        return ()
    kinds = list(required) + [k for k in rng.permutation(list(config.symbol_kinds)) if k not in required]
    out: list[Symbol] = []
    for kind in kinds[:n]:
        for _ in range(20):
            p = _uniform_xy(rng, board.EDGE_BUFFER)
            if all(np.hypot(*(p - s.xy)) >= 0.09 for s in out):
                colour = config.symbol_colours[int(rng.integers(len(config.symbol_colours)))]
                out.append(Symbol(str(kind), float(p[0]), float(p[1]), colour))
                break
        else:
            return None
    return tuple(out)


def _sample_blocks(config, rng, types, eff, symbols) -> tuple[Block, ...] | None:
    placed: list[Block] = []
    for colour, shape in types:
        scale = float(config.scales[int(rng.integers(len(config.scales)))])
        r = board.nominal_radius(shape, scale)
        for _ in range(20):
            p = _uniform_xy(rng, board.EDGE_BUFFER)
            ok = np.hypot(*(p - eff)) >= EFFECTOR_CLEARANCE
            ok = ok and all(np.hypot(*(p - b.xy)) >= r + b.radius + BLOCK_CLEARANCE for b in placed)
            ok = ok and all(np.hypot(*(p - s.xy)) >= SYMBOL_CLEARANCE for s in symbols)
            if ok:
                rgb = None
                if config.colour_jitter > 0:
                    base = np.asarray(board.COLOUR_RGB[colour], float)
                    rgb = tuple(int(v) for v in np.clip(base * rng.normal(1.0, config.colour_jitter, 3), 0, 255))
                yaw = float(rng.uniform(-math.pi, math.pi))
                placed.append(Block(colour, shape, float(p[0]), float(p[1]), yaw, scale, rgb))
                break
        else:
            return None
    return tuple(placed)


def _sample_clutter(rng: np.random.Generator) -> Clutter:
    kind = ("rect", "disc", "stripe")[int(rng.integers(3))]
    p = _uniform_xy(rng, 0.02)
    rgb = tuple(int(v) for v in rng.integers(40, 230, 3))
    return Clutter(kind, float(p[0]), float(p[1]), float(rng.uniform(0.02, 0.06)), float(rng.uniform(0, math.pi)), rgb)


def _sample_lighting(config: SceneConfig, rng: np.random.Generator) -> Lighting:
    j = config.lighting_jitter
    if j <= 0:
        return Lighting()
    tint = tuple(float(v) for v in np.clip(rng.normal(1.0, j / 2, 3), 0.7, 1.3))
    return Lighting(float(rng.normal(0, j)), float(np.clip(rng.normal(1.0, j), 0.6, 1.4)), tint)
