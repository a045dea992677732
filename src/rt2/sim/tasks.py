"""Tasks as data: ``TaskSpec`` names a family, the blocks and the goal; success tests follow Language-Table exactly.

| family | goal | success (metres, current positions, every step) |
|---|---|---|
| block2block | near another block | pushed block within 0.05 of the target block (start distance >= 0.06) |
| block2absolute | one of 9 board spots (x range shifted -0.025) | within 0.115 of the spot (0.10 for "center") |
| block2relative | start + direction x (0.15 "near" / 0.25 "far") | within 0.10 of that fixed target |
| block2blockrelative | reference + offset (0.08; diagonals 0.04/0.04) | within 0.04 of one of 10 points from 0.5x to 1.1x the offset from the reference's *current* position, and reference moved <= 0.05 from its reset position |
| separate | 0.10 from the avoid group's centroid, away from it | within 0.025 of that point (recomputed each step) |
| block2symbol | a printed digit or icon | within 0.05 of the symbol's centre (our choice: the block2block radius) |
| property_referent | a block named by a property, resolved at reset; goal = block2absolute or block2symbol | that goal's test |

Blocks are named by identity "colour shape" (unique in a scene). ``bind`` fills the concrete numbers a spec needs
from the reset layout (the block2relative target, the block2blockrelative reference start, the separate group),
so a spec written by hand (``TaskSpec("block2relative", "red moon", direction="left", distance="far")``) works
on any layout that contains its blocks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rt2.sim import board
from rt2.sim.scene import Scene

LT_FAMILIES: tuple[str, ...] = ("block2block", "block2absolute", "block2relative", "block2blockrelative", "separate")
EMERGENT_FAMILIES: tuple[str, ...] = ("block2symbol", "property_referent")
FAMILIES: tuple[str, ...] = LT_FAMILIES + EMERGENT_FAMILIES
DISTANCES: dict[str, float] = {"near": 0.15, "far": 0.25}
PROPERTY_GOALS: tuple[str, ...] = ("block2absolute", "block2symbol")
# Referents: "<kind>" or "<kind>:<symbol>". Symbol-free ones work on any layout.
REFERENT_KINDS: tuple[str, ...] = (
    "colour_of",
    "closest_to",
    "smallest",
    "largest",
    "leftmost",
    "rightmost",
    "topmost",
    "bottommost",
)

B2B_SUCCESS, B2B_MIN_START = 0.05, 0.06
ABS_SUCCESS, ABS_CENTER_SUCCESS = 0.115, 0.10
REL_SUCCESS = 0.10
BBR_SUCCESS, BBR_OFFSET, BBR_DIAGONAL, BBR_REF_MOVE = 0.04, 0.08, 0.04, 0.05
BBR_FRACTIONS = np.linspace(0.5, 1.1, 10)
SEP_NEIGHBOUR, SEP_DISTANCE, SEP_SUCCESS = 0.08, 0.10, 0.025
SYM_SUCCESS = 0.05
REFERENT_MARGIN = 0.03  # the referent must win by this much (m) so the phrase is unambiguous


@dataclass(frozen=True)
class TaskSpec:
    """One task. ``block`` is the block to move ("red moon"); other fields depend on ``family`` (see module doc)."""

    family: str
    block: str
    target_block: str | None = None  # block2block target; block2blockrelative reference
    location: str | None = None  # board.LOCATIONS key (block2absolute, property_referent goal)
    direction: str | None = None  # board.DIRECTIONS key (block2relative, block2blockrelative)
    distance: str | None = None  # "near" | "far" (block2relative)
    symbol: str | None = None  # symbol kind (block2symbol, property_referent goal)
    referent: str | None = None  # property_referent: e.g. "colour_of:heart", "smallest"
    goal: str | None = None  # property_referent: "block2absolute" | "block2symbol"
    # Bound from the reset layout by ``bind``:
    target_xy: tuple[float, float] | None = None  # block2relative fixed target
    reference_xy: tuple[float, float] | None = None  # block2blockrelative reference start
    avoid: tuple[str, ...] = ()  # separate: the group to move away from

    def __post_init__(self) -> None:
        board.check_name("family", self.family, FAMILIES)
        # Block names are checked here, not only at bind: a misspelt one ("red sphere") otherwise survives until
        # a scene is sampled, where it reads as "not in block set" rather than "no such shape".
        check_block_name(self.block, "block")
        if self.target_block is not None:
            check_block_name(self.target_block, "target_block")
        if isinstance(self.avoid, str):
            # A bare string would be iterated character by character as block names.
            raise ValueError(
                f"TaskSpec avoid must be a tuple of block names, got the string {self.avoid!r}; "
                f"write avoid=({self.avoid!r},)"
            )
        for name in self.avoid:
            check_block_name(name, "avoid")
        if self.location is not None:
            board.check_name("location", self.location, tuple(board.LOCATIONS))
        if self.direction is not None:
            board.check_name("direction", self.direction, tuple(board.DIRECTIONS))
        if self.distance is not None:
            board.check_name("distance", self.distance, tuple(DISTANCES))
        if self.symbol is not None:
            board.check_symbol(self.symbol)
        if self.goal is not None:
            board.check_name("goal", self.goal, PROPERTY_GOALS)
        if self.referent is not None:
            board.check_name("referent kind", self.referent.split(":")[0], REFERENT_KINDS)
        need = {
            "block2block": ("target_block",),
            "block2absolute": ("location",),
            "block2relative": ("direction", "distance"),
            "block2blockrelative": ("target_block", "direction"),
            "block2symbol": ("symbol",),
            "property_referent": ("referent", "goal"),
        }.get(self.family, ())
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"TaskSpec family {self.family!r} needs {', '.join(missing)}")
        if self.family == "property_referent":
            missing = "location" if self.goal == "block2absolute" and self.location is None else None
            missing = "symbol" if self.goal == "block2symbol" and self.symbol is None else missing
            if missing:
                raise ValueError(f"property_referent with goal {self.goal!r} needs {missing}")

    @property
    def scoring_family(self) -> str:
        """The family whose success test applies (property_referent delegates to its goal)."""
        return self.goal if self.family == "property_referent" else self.family


def check_block_name(name: str, field: str = "block") -> str:
    """``name`` if it is a block identity "<colour> <shape>" (``Block.name``), else a ValueError saying why.

    The identity is always the full pair, even when one word would pick the block out on some layout: a spec
    is written before the layout exists (and is bound to many), so "the red one" / "the moon" belongs in the
    instruction text, never in a TaskSpec. Held-out colours and shapes are valid names.
    """
    parts = name.split(" ") if isinstance(name, str) else []
    if len(parts) != 2:
        raise ValueError(
            f'TaskSpec {field} {name!r} is not a block name: use "<colour> <shape>" as in Block.name, e.g. '
            f'"red moon" (colours: {", ".join(board.COLOURS)}; shapes: {", ".join(board.SHAPES)})'
        )
    try:
        board.check_colour(parts[0])
        board.check_shape(parts[1])
    except ValueError as e:
        raise ValueError(f"TaskSpec {field} {name!r}: {e}") from None
    return name


def success_radius(spec: TaskSpec) -> float:
    """The distance threshold of ``spec``'s success test (metres)."""
    fam = spec.scoring_family
    if fam == "block2absolute":
        return ABS_CENTER_SUCCESS if spec.location == "center" else ABS_SUCCESS
    return {"block2block": B2B_SUCCESS, "block2relative": REL_SUCCESS, "block2blockrelative": BBR_SUCCESS}.get(
        fam, SEP_SUCCESS if fam == "separate" else SYM_SUCCESS
    )


def bbr_offset(direction: str) -> np.ndarray:
    """block2blockrelative offset from the reference block: 0.08 m cardinal, (0.04, 0.04) diagonal."""
    d = np.asarray(board.DIRECTIONS[direction])
    return np.sign(d) * BBR_DIAGONAL if "_" in direction else d * BBR_OFFSET


def _inside(p: np.ndarray, margin: float = board.EDGE_BUFFER) -> bool:
    return bool(
        board.X_MIN + margin <= p[0] <= board.X_MAX - margin and board.Y_MIN + margin <= p[1] <= board.Y_MAX - margin
    )


def neighbours(scene: Scene, name: str) -> tuple[str, ...]:
    """Blocks within 0.08 m of ``name`` (the separate family's group)."""
    p = scene.block(name).xy
    return tuple(b.name for b in scene.blocks if b.name != name and np.hypot(*(b.xy - p)) <= SEP_NEIGHBOUR)


def bind(spec: TaskSpec, scene: Scene) -> TaskSpec:
    """Check every name against ``scene`` and fill the layout-dependent fields that are still unset."""
    scene.block(spec.block)
    if spec.target_block is not None:
        scene.block(spec.target_block)
        if spec.target_block == spec.block:
            raise ValueError(f"{spec.family}: the target block must differ from the pushed block ({spec.block!r})")
    if spec.symbol is not None:
        scene.symbol(spec.symbol)
    changes: dict = {}
    if spec.family == "block2relative" and spec.target_xy is None:
        t = scene.block(spec.block).xy + np.asarray(board.DIRECTIONS[spec.direction]) * DISTANCES[spec.distance]
        changes["target_xy"] = (float(t[0]), float(t[1]))
    if spec.family == "block2blockrelative" and spec.reference_xy is None:
        r = scene.block(spec.target_block).xy
        changes["reference_xy"] = (float(r[0]), float(r[1]))
    if spec.family == "separate":
        for a in spec.avoid:
            scene.block(a)
        if not spec.avoid:
            group = neighbours(scene, spec.block)
            if not group:
                raise ValueError(f"separate: no block within {SEP_NEIGHBOUR} m of {spec.block!r} to separate from")
            changes["avoid"] = group
    return dataclasses.replace(spec, **changes) if changes else spec


def goal_point(spec: TaskSpec, scene: Scene) -> np.ndarray:
    """float64[2]: where the pushed block should go now (for oracles and distance-to-goal)."""
    fam = spec.scoring_family
    if fam == "block2block":
        return scene.block(spec.target_block).xy
    if fam == "block2absolute":
        return np.asarray(board.LOCATIONS[spec.location], float)
    if fam == "block2relative":
        return np.asarray(spec.target_xy, float)
    if fam == "block2blockrelative":
        return scene.block(spec.target_block).xy + bbr_offset(spec.direction) * 0.8
    if fam == "separate":
        return separate_target(spec, scene)
    return scene.symbol(spec.symbol).xy  # block2symbol


GROUNDING_DIM = 6


def grounding_state(spec: TaskSpec, scene: Scene) -> np.ndarray:
    """float32[6]: (effector, pushed block, goal point) x/y, each scaled to [-1, 1] over the board.

    The regression target of the VLA's auxiliary grounding loss (issue 9, ``VLAConfig.grounding_dim``): the three
    points the oracle's action is a function of. Why these: a pixel policy's bottleneck is finding the pusher and
    the named blocks, not the control law (reference/bc-feasibility.md: a state MLP on these points reaches 78 %).
    """
    return board_unit(np.asarray(scene.effector, float), scene.block(spec.block).xy, goal_point(spec, scene))


def board_unit(*points: np.ndarray | tuple[float, float]) -> np.ndarray:
    """float32[2 * n]: board positions (metres) scaled to [-1, 1] over the board and concatenated."""
    centre = np.asarray(board.BOARD_CENTER)
    half = np.asarray([(board.X_MAX - board.X_MIN) / 2, (board.Y_MAX - board.Y_MIN) / 2])
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return ((pts - centre) / half).astype(np.float32).reshape(-1)


def board_from_unit(unit: np.ndarray | tuple[float, float]) -> tuple[float, float]:
    """Inverse of :func:`board_unit` for one point: [-1, 1] board units -> board metres (x, y)."""
    centre = np.asarray(board.BOARD_CENTER)
    half = np.asarray([(board.X_MAX - board.X_MIN) / 2, (board.Y_MAX - board.Y_MIN) / 2])
    x, y = centre + np.asarray(unit, dtype=np.float64).reshape(2) * half
    return float(x), float(y)


def separate_target(spec: TaskSpec, scene: Scene) -> np.ndarray:
    """The point 0.10 m from the avoid group's centroid, in the direction from the centroid to the block."""
    centroid = np.mean([scene.block(a).xy for a in spec.avoid], axis=0)
    v = scene.block(spec.block).xy - centroid
    n = np.hypot(*v)
    v = v / n if n > 1e-9 else np.array([1.0, 0.0])
    return centroid + v * SEP_DISTANCE


def evaluate(spec: TaskSpec, scene: Scene) -> tuple[bool, float]:
    """(success, distance in metres from the pushed block to the goal region's reference point)."""
    fam = spec.scoring_family
    p = scene.block(spec.block).xy
    if fam == "block2blockrelative":
        ref = scene.block(spec.target_block).xy
        points = ref + BBR_FRACTIONS[:, None] * bbr_offset(spec.direction)
        dist = float(np.min(np.hypot(*(points - p).T)))
        ref_start = np.asarray(spec.reference_xy if spec.reference_xy is not None else ref)
        ref_ok = float(np.hypot(*(ref - ref_start))) <= BBR_REF_MOVE
        return (dist <= BBR_SUCCESS and ref_ok), dist
    dist = float(np.hypot(*(goal_point(spec, scene) - p)))
    if fam == "block2block":
        return dist <= B2B_SUCCESS, dist
    if fam == "block2absolute":
        return dist <= (ABS_CENTER_SUCCESS if spec.location == "center" else ABS_SUCCESS), dist
    if fam == "block2relative":
        return dist <= REL_SUCCESS, dist
    if fam == "separate":
        return dist <= SEP_SUCCESS, dist
    return dist <= SYM_SUCCESS, dist


def resolve_referent(referent: str, scene: Scene) -> str | None:
    """The block a property phrase picks out on this layout, or None if it is absent or ambiguous."""
    kind, _, arg = referent.partition(":")
    blocks = scene.blocks
    if kind == "colour_of":
        colour = scene.symbol(arg).colour
        hits = [b.name for b in blocks if b.colour == colour]
        return hits[0] if len(hits) == 1 else None
    if kind in ("smallest", "largest"):
        sizes = sorted((b.radius, b.name) for b in blocks)
        if kind == "largest":
            sizes = sizes[::-1]
        ok = len(sizes) >= 2 and abs(sizes[0][0] - sizes[1][0]) >= 0.1 * sizes[0][0]
        return sizes[0][1] if ok else None
    if kind == "closest_to":
        anchor = scene.symbol(arg).xy
        key = [float(np.hypot(*(b.xy - anchor))) for b in blocks]
    else:
        axis, sign = {"leftmost": (1, 1), "rightmost": (1, -1), "topmost": (0, 1), "bottommost": (0, -1)}[kind]
        key = [sign * b.xy[axis] for b in blocks]
    order = np.argsort(key)
    if len(order) < 2 or key[order[1]] - key[order[0]] < REFERENT_MARGIN:
        return None
    return blocks[int(order[0])].name


def sample_task(family: str, scene: Scene, rng: np.random.Generator) -> TaskSpec | None:
    """A valid, not-yet-satisfied task of ``family`` on ``scene``, or None if the layout has none."""
    board.check_name("family", family, FAMILIES)
    names = list(scene.names)
    for _ in range(100):
        spec = _draw(family, scene, names, rng)
        if spec is None:
            continue
        try:
            spec = bind(spec, scene)
        except ValueError:
            continue
        if family == "block2relative" and not _inside(np.asarray(spec.target_xy)):
            continue
        if family == "block2blockrelative" and not _inside(
            scene.block(spec.target_block).xy + bbr_offset(spec.direction)
        ):
            continue
        start = float(np.hypot(*(goal_point(spec, scene) - scene.block(spec.block).xy)))
        if (family in ("block2block", "block2symbol") or spec.goal == "block2symbol") and start < B2B_MIN_START:
            continue
        if not evaluate(spec, scene)[0]:
            return spec
    return None


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _draw(family: str, scene: Scene, names: list[str], rng: np.random.Generator) -> TaskSpec | None:
    block = _pick(rng, names)
    others = [n for n in names if n != block]
    if family == "block2block":
        return TaskSpec(family, block, target_block=_pick(rng, others)) if others else None
    if family == "block2absolute":
        return TaskSpec(family, block, location=_pick(rng, tuple(board.LOCATIONS)))
    if family == "block2relative":
        return TaskSpec(
            family, block, direction=_pick(rng, tuple(board.DIRECTIONS)), distance=_pick(rng, ("near", "far"))
        )
    if family == "block2blockrelative":
        if not others:
            return None
        return TaskSpec(family, block, target_block=_pick(rng, others), direction=_pick(rng, tuple(board.DIRECTIONS)))
    if family == "separate":
        best, best_d = None, np.inf
        for n in names:
            group = neighbours(scene, n)
            if group:
                d = float(np.mean([np.hypot(*(scene.block(g).xy - scene.block(n).xy)) for g in group]))
                if d < best_d:
                    best, best_d = n, d
        return TaskSpec(family, best) if best is not None else None
    if family == "block2symbol":
        return TaskSpec(family, block, symbol=_pick(rng, scene.symbols).kind) if scene.symbols else None
    # property_referent
    kinds = [k for k in REFERENT_KINDS if scene.symbols or k not in ("colour_of", "closest_to")]
    kind = _pick(rng, kinds)
    referent = f"{kind}:{_pick(rng, scene.symbols).kind}" if kind in ("colour_of", "closest_to") else kind
    resolved = resolve_referent(referent, scene)
    if resolved is None:
        return None
    goal = _pick(rng, PROPERTY_GOALS) if scene.symbols else "block2absolute"
    if goal == "block2symbol":
        used = referent.partition(":")[2]
        choices = [s.kind for s in scene.symbols if s.kind != used]
        if not choices:
            return None
        return TaskSpec(family, resolved, referent=referent, goal=goal, symbol=_pick(rng, choices))
    return TaskSpec(family, resolved, referent=referent, goal=goal, location=_pick(rng, tuple(board.LOCATIONS)))
