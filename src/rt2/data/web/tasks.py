"""Task generators of the synthetic web corpus: one named task type per function, so accuracy is per type.

Every generator takes a ``Scene`` and a ``np.random.Generator`` and returns ``(scene, prompt, target)`` — the
scene may be edited (e.g. a symbol recoloured so a "same colour" question has one answer) — or ``None`` when the
scene cannot support the question (the corpus then draws another scene, deterministically). Each task has a
scoring rule (``TaskDef.scoring``) used by ``rt2.data.web.score_answer``:

    exact    normalized string equality (lower case, no "the"/"a" prefix, no trailing punctuation)
    number   the same integer, written in digits or as a number word of any supported language
    point    a pointing answer "gx gy" within +-1 grid unit per axis of the target (see ``web_scene``)
    dense    every "name gx gy" entry of the target named once and within +-1, nothing extra
    caption  word-level F1 >= 0.8 against the reference caption

Object names in answers have no article ("red moon", "number 3", "robot"); pointing answers are grid text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rt2.data.prompts import CAPTION_PROMPT, vqa_prompt
from rt2.data.web import lang as L
from rt2.data.web.referents import web_task_fn
from rt2.data.web.scene import GRID_MAX, board_to_grid, grid_text, reading_order, sample_web_scene
from rt2.sim import board, lexicon
from rt2.sim.scene import SIZE_SCALES, Block, Scene

TaskOut = tuple[Scene, str, str]
SCORINGS: tuple[str, ...] = ("exact", "number", "point", "dense", "caption")
SIZE_WORDS: dict[float, str] = {
    SIZE_SCALES["small"]: "small",
    SIZE_SCALES["normal"]: "medium",
    SIZE_SCALES["large"]: "large",
}
BLANK_SCENE = Scene(blocks=(), background="white")  # the image of text-only tasks (arithmetic, translation)


@dataclass(frozen=True)
class TaskDef:
    """A web task type: the scene kinds it draws from (``web_scene.SCENE_KINDS`` or "blank") and how it is scored."""

    name: str
    scene_kinds: tuple[str, ...]
    fn: Callable[[Scene, np.random.Generator], TaskOut | None]
    scoring: str


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def region(x: float, y: float) -> str:
    """The 3x3 board region key ("top_left" .. "bottom_right") of a board position (thirds of the board)."""
    gx, gy = board_to_grid(x, y)
    row = "top" if gx < -GRID_MAX / 3 else "bottom" if gx > GRID_MAX / 3 else "center"
    col = "_left" if gy < -GRID_MAX / 3 else "_right" if gy > GRID_MAX / 3 else ""
    key = row + col
    return "center" + col if row == "center" and col else key


def objects(scene: Scene, lang: str = "en") -> list[tuple[str, float, float]]:
    """Every pointable object as ``(name, x, y)`` in reading order: blocks, symbols, then the robot."""
    items = [(L.block_phrase(b.colour, b.shape, lang), b.x, b.y) for b in scene.blocks]
    items += [(L.symbol_phrase(s.kind, lang), s.x, s.y) for s in scene.symbols]
    items = reading_order(items, lambda it: (it[1], it[2]))
    if scene.effector is not None:
        items.append((L.robot_phrase(lang), *scene.effector))
    return items


def _unique(values: list) -> list:
    return [v for v in values if values.count(v) == 1]


# ---- captions ------------------------------------------------------------------------------------------------
def caption_text(scene: Scene, lang: str = "en") -> str:
    """Deterministic caption of a scene in ``lang`` (objects in reading order, then where the robot is)."""
    frames = L.CAPTION_FRAMES[L.check_language(lang)]
    blocks = reading_order(list(scene.blocks), lambda b: (b.x, b.y))
    names = [L.block_phrase(b.colour, b.shape, lang, article=True) for b in blocks]
    syms = reading_order(list(scene.symbols), lambda s: (s.x, s.y))
    names += [L.symbol_phrase(s.kind, lang, article=True) for s in syms]
    if not names:
        names = [L.robot_phrase(lang, article=True)] if scene.effector is not None else []
    if not scene.blocks and scene.effector is None:
        text = frames["symbols"].format(objects=L.join_list(names, lang))
    elif len(scene.blocks) == 1:
        text = frames["board_one"].format(objects=L.join_list(names, lang))
    elif not scene.blocks:
        text = frames["no_blocks"].format(objects=L.join_list(names, lang))
    else:
        text = frames["board"].format(n=L.number_word(len(scene.blocks), lang), objects=L.join_list(names, lang))
    if scene.effector is not None:
        where = L.REGION_WORDS[lang][region(*scene.effector)]
        text += "; " + frames["robot"].format(where=where)
    return text


def _caption(lang: str):
    def fn(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
        prompt = CAPTION_PROMPT if lang == "en" else f"Caption in {L.LANGUAGE_NAMES[lang]}:"
        return scene, prompt, caption_text(scene, lang)

    return fn


# ---- VQA in words --------------------------------------------------------------------------------------------
def vqa_colour(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    shapes = _unique([b.shape for b in scene.blocks])
    options = [
        (f"what colour is the {s}?", scene.blocks[[b.shape for b in scene.blocks].index(s)].colour) for s in shapes
    ]
    options += [(f"what colour is the {L.symbol_phrase(s.kind)}?", s.colour) for s in scene.symbols]
    if not options:
        return None
    q, a = _pick(rng, options)
    return scene, vqa_prompt(q), a


def vqa_shape(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    colours = [b.colour for b in scene.blocks]
    options = [(f"what shape is the {c} block?", scene.blocks[colours.index(c)].shape) for c in _unique(colours)]
    if not options:
        return None
    q, a = _pick(rng, options)
    return scene, vqa_prompt(q), a


def vqa_count(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    colours = [b.colour for b in scene.blocks]
    options = [("how many blocks are there?", len(scene.blocks))]
    c = _pick(rng, board.COLOURS)
    options.append((f"how many {c} blocks are there?", colours.count(c)))
    if scene.symbols:
        options.append(("how many numbers are on the board?", sum(s.kind in board.DIGITS for s in scene.symbols)))
    q, a = _pick(rng, options)
    return scene, vqa_prompt(q), str(a)


def vqa_size(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    if not scene.blocks:
        return None
    b = _pick(rng, scene.blocks)
    return scene, vqa_prompt(f"is the {b.name} small, medium or large?"), SIZE_WORDS[b.scale]


def vqa_position(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    name, x, y = _pick(rng, objects(scene))
    return scene, vqa_prompt(f"which part of the board is the {name} in?"), L.REGION_WORDS["en"][region(x, y)]


# ---- pointing (answers are grid integers, the action vocabulary) ----------------------------------------------
def point_block(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    if not scene.blocks:
        return None
    b = _pick(rng, scene.blocks)
    return scene, vqa_prompt(f"where is the {b.name}?"), grid_text(b.x, b.y)


def point_robot(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    if scene.effector is None:
        return None
    q = _pick(rng, ("where is the robot?", "where is the robot arm?", "point to the robot"))
    return scene, vqa_prompt(q), grid_text(*scene.effector)


def point_symbol(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    if not scene.symbols:
        return None
    s = _pick(rng, scene.symbols)
    return scene, vqa_prompt(f"where is the {symbol_name(s.kind, rng)}?"), grid_text(s.x, s.y)


def symbol_name(kind: str, rng: np.random.Generator) -> str:
    """A digit's or icon's English name, icons with the sim's synonyms ("face" / "person", "cross" / "x mark")."""
    if kind in board.DIGITS:
        return L.symbol_phrase(kind)
    return _pick(rng, lexicon.ICON_WORDS["en"][kind]).text


def dense_text(items: list[tuple[str, float, float]]) -> str:
    """``"red moon 3 -2, number 3 0 4, robot -5 1"``."""
    return ", ".join(f"{n} {grid_text(x, y)}" for n, x, y in items)


def point_dense(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    """Dense grounding: every object of a category in one answer (the supervision that breaks the BC plateau)."""
    everything = objects(scene)
    options = [("point to every object", everything)]
    blocks = [o for o in everything if o[0] in scene.names]
    if blocks:
        options.append(("point to every block", blocks))
        c = _pick(rng, sorted({b.colour for b in scene.blocks}))
        options.append((f"point to every {c} block", [o for o in blocks if o[0].startswith(c + " ")]))
    syms = [o for o in everything if o[0] not in scene.names and o[0] != "robot"]
    if syms:
        options.append(("point to every symbol", syms))
    q, items = _pick(rng, options)
    if not items:
        return None
    return scene, vqa_prompt(q), dense_text(items)


def point_inverse(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    """ "what is at 4 -7?" -> "red moon": reading the grid back (only when one object occupies that cell)."""
    items = objects(scene)
    name, x, y = _pick(rng, items)
    cell = board_to_grid(x, y)
    if sum(board_to_grid(ox, oy) == cell for _, ox, oy in items) != 1:
        return None
    return scene, vqa_prompt(f"what is at {cell[0]} {cell[1]}?"), name


# ---- reading symbols -------------------------------------------------------------------------------------------
def read_symbol(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    digits = sorted(s.kind for s in scene.symbols if s.kind in board.DIGITS)
    icons = [s.kind for s in scene.symbols if s.kind not in board.DIGITS]
    options = []
    if len(digits) == 1:
        options.append(("what number is on the board?", digits[0]))
    if len(digits) >= 2:
        options.append(("what numbers are on the board?", L.join_list(digits)))
    if len(icons) == 1:
        options.append(("what picture is on the board?", L.symbol_phrase(icons[0])))
    for s in scene.symbols:  # reading at a symbol's location
        options.append((f"what symbol is at {grid_text(s.x, s.y)}?", L.symbol_phrase(s.kind)))
    if not options:
        return None
    q, a = _pick(rng, options)
    return scene, vqa_prompt(q), a


# ---- arithmetic ------------------------------------------------------------------------------------------------
OPS: dict[str, tuple[str, str]] = {"plus": ("+", "plus"), "minus": ("-", "minus"), "times": ("*", "times")}


def _arith(rng: np.random.Generator, max_result: int = L.MAX_NUMBER_WORD) -> tuple[int, str, int, int]:
    """A question ``a op b`` whose result is in 0..max_result: (a, op, b, result)."""
    while True:
        op = _pick(rng, tuple(OPS))
        a, b = int(rng.integers(0, 11)), int(rng.integers(0, 11))
        r = a + b if op == "plus" else a - b if op == "minus" else a * b
        if 0 <= r <= max_result:
            return a, op, b, r


def math_text(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    a, op, b, r = _arith(rng)
    style = int(rng.integers(4))
    if style == 0:  # "what is two plus three?" -> "five"
        return BLANK_SCENE, vqa_prompt(f"what is {L.number_word(a)} {op} {L.number_word(b)}?"), L.number_word(r)
    if style == 1:  # "what is 2 + 3?" -> "5"
        return BLANK_SCENE, vqa_prompt(f"what is {a} {OPS[op][0]} {b}?"), str(r)
    if style == 2:  # "what is the sum of two plus three?" (the phrasing of a result, not a sentence to act on)
        noun = {"plus": "sum", "minus": "result", "times": "product"}[op]
        q = f"what is the {noun} of {L.number_word(a)} {op} {L.number_word(b)}?"
        return BLANK_SCENE, vqa_prompt(q), str(r)
    lang = _pick(rng, ("es", "fr"))  # the same in Spanish / French number words, answered in that language
    q = {"es": "¿cuánto es {a} {op} {b}?", "fr": "combien font {a} {op} {b} ?"}[lang]
    op_word = {
        "es": {"plus": "más", "minus": "menos", "times": "por"},
        "fr": {"plus": "plus", "minus": "moins", "times": "fois"},
    }
    q = q.format(a=L.number_word(a, lang), op=op_word[lang][op], b=L.number_word(b, lang))
    return BLANK_SCENE, vqa_prompt(q), L.number_word(r, lang)


def math_grounded(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    digits = [int(s.kind) for s in scene.symbols if s.kind in board.DIGITS]
    if len(digits) != 2:
        return None
    hi, lo = max(digits), min(digits)
    options = [
        ("what is the sum of the two numbers on the board?", hi + lo),
        ("what is the larger number on the board minus the smaller one?", hi - lo),
        ("what is the product of the two numbers on the board?", hi * lo),
        ("which number on the board is larger?", hi),
    ]
    q, a = _pick(rng, options)
    return scene, vqa_prompt(q), str(a)


def point_math(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    """ "where is the number equal to two plus one?" -> the grid point of digit 3 (arithmetic + grounding)."""
    digits = [s for s in scene.symbols if s.kind in board.DIGITS]
    if not digits:
        return None
    s = _pick(rng, digits)
    d = int(s.kind)
    for _ in range(20):  # an expression whose value is the digit; a sum always exists as the fallback
        a, op, b, r = _arith(rng, max_result=9)
        if r == d:
            break
    else:
        a = int(rng.integers(0, d + 1))
        op, b = "plus", d - a
    wordy = bool(rng.integers(2))
    sa, sb = (L.number_word(a), L.number_word(b)) if wordy else (str(a), str(b))
    op_text = op if wordy else OPS[op][0]
    return scene, vqa_prompt(f"where is the number equal to {sa} {op_text} {sb}?"), grid_text(s.x, s.y)


# ---- translation ----------------------------------------------------------------------------------------------
def translate(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    other = _pick(rng, ("es", "fr"))
    src, dst = (("en", other), (other, "en"))[int(rng.integers(2))]
    kind = int(rng.integers(4))
    if kind == 0:
        c, s = _pick(rng, board.COLOURS), _pick(rng, board.SHAPES)
        pair = {lang: L.block_phrase(c, s, lang, article=True) for lang in (src, dst)}
    elif kind == 1:
        k = _pick(rng, board.SYMBOL_KINDS)
        pair = {lang: L.symbol_phrase(k, lang, article=True) for lang in (src, dst)}
    elif kind == 2:
        n = int(rng.integers(0, L.MAX_NUMBER_WORD + 1))
        pair = {lang: L.number_word(n, lang) for lang in (src, dst)}
    else:
        sc = sample_web_scene(_pick(rng, ("blocks_only", "symbols_only")), rng)
        pair = {lang: caption_text(sc, lang) for lang in (src, dst)}
    q = f"translate to {L.LANGUAGE_NAMES[dst]}: {pair[src]}"
    return BLANK_SCENE, vqa_prompt(q), pair[dst]


# ---- relations ------------------------------------------------------------------------------------------------
def rel_closest(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    refs = [(symbol_name(s.kind, rng), s.xy) for s in scene.symbols]
    if scene.effector is not None:
        refs.append(("robot", np.asarray(scene.effector)))
    refs += [(b.name, b.xy) for b in scene.blocks]
    if len(scene.blocks) < 2 or not refs:
        return None
    ref, p = _pick(rng, refs)
    cands = [b for b in scene.blocks if b.name != ref]
    d = np.array([math.hypot(*(b.xy - p)) for b in cands])
    order = np.argsort(d)
    if len(d) > 1 and d[order[1]] - d[order[0]] < 0.02:  # ambiguous by eye at 72x96: skip
        return None
    word = _pick(rng, ("closest", "nearest"))
    return scene, vqa_prompt(f"which block is {word} to the {ref}?"), cands[int(order[0])].name


def rel_same_colour(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    colours = [b.colour for b in scene.blocks]
    unique = _unique(colours)
    if not scene.symbols or not unique:
        return None
    i = int(rng.integers(len(scene.symbols)))
    c = _pick(rng, unique)
    sym = dataclasses.replace(scene.symbols[i], colour=c)  # recolour so exactly one block matches
    scene = dataclasses.replace(scene, symbols=scene.symbols[:i] + (sym,) + scene.symbols[i + 1 :])
    q = f"which block has the same colour as the {symbol_name(sym.kind, rng)}?"
    return scene, vqa_prompt(q), scene.blocks[colours.index(c)].name


def rel_left_of(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    if len(scene.blocks) < 2:
        return None
    i, j = (int(v) for v in rng.choice(len(scene.blocks), size=2, replace=False))
    a, b = scene.blocks[i], scene.blocks[j]
    if abs(a.y - b.y) < 0.03:
        return None
    rel = _pick(rng, ("left", "right"))
    truth = (a.y < b.y) if rel == "left" else (a.y > b.y)
    return scene, vqa_prompt(f"is the {a.name} to the {rel} of the {b.name}?"), "yes" if truth else "no"


def rel_size(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    """Sizes compare nominal radii (shape footprint x scale) with the sim's 10 % margin (``resolve_referent``)."""
    blocks: list[Block] = list(scene.blocks)
    if len(blocks) < 2:
        return None
    if bool(rng.integers(2)):
        i, j = (int(v) for v in rng.choice(len(blocks), size=2, replace=False))
        a, b = blocks[i], blocks[j]
        if abs(a.radius - b.radius) < 0.1 * min(a.radius, b.radius):
            return None
        word = _pick(rng, ("larger", "smaller"))
        ans = (a if a.radius > b.radius else b) if word == "larger" else (a if a.radius < b.radius else b)
        return scene, vqa_prompt(f"which is {word}, the {a.name} or the {b.name}?"), ans.name
    word = _pick(rng, ("smallest", "tiniest", "largest", "biggest"))
    ranked = sorted(blocks, key=lambda b: b.radius, reverse=word in ("largest", "biggest"))
    if abs(ranked[0].radius - ranked[1].radius) < 0.1 * min(ranked[0].radius, ranked[1].radius):
        return None
    return scene, vqa_prompt(f"which block is the {word}?"), ranked[0].name


EXTREMES: dict[str, tuple[int, int]] = {
    "leftmost": (1, 1),
    "rightmost": (1, -1),
    "topmost": (0, 1),
    "bottommost": (0, -1),
}
EXTREME_QUESTIONS: dict[str, tuple[str, ...]] = {
    "leftmost": ("which block is the leftmost?", "which block is furthest to the left?"),
    "rightmost": ("which block is the rightmost?", "which block is furthest to the right?"),
    "topmost": ("which block is the topmost?", "which block is furthest up?"),
    "bottommost": ("which block is the bottommost?", "which block is furthest down?"),
}


def rel_extreme(scene: Scene, rng: np.random.Generator) -> TaskOut | None:
    """ "which block is the leftmost?" (the sim's margin: the winner leads by 3 cm)."""
    if len(scene.blocks) < 2:
        return None
    word = _pick(rng, tuple(EXTREMES))
    axis, sign = EXTREMES[word]
    key = sorted((sign * float(b.xy[axis]), b.name) for b in scene.blocks)
    if key[1][0] - key[0][0] < 0.03:
        return None
    return scene, vqa_prompt(_pick(rng, EXTREME_QUESTIONS[word])), key[0][1]


_TABLE = ("tabletop", "blocks_only")
_SYM = ("tabletop", "symbols_only", "digits")
TASKS: dict[str, TaskDef] = {
    t.name: t
    for t in (
        TaskDef("caption", ("tabletop", "blocks_only", "symbols_only"), _caption("en"), "caption"),
        TaskDef("caption_es", ("tabletop", "blocks_only", "symbols_only"), _caption("es"), "caption"),
        TaskDef("caption_fr", ("tabletop", "blocks_only", "symbols_only"), _caption("fr"), "caption"),
        TaskDef("vqa_colour", ("tabletop", "blocks_only", "symbols_only"), vqa_colour, "exact"),
        TaskDef("vqa_shape", _TABLE, vqa_shape, "exact"),
        TaskDef("vqa_count", _TABLE + ("digits",), vqa_count, "number"),
        TaskDef("vqa_size", _TABLE, vqa_size, "exact"),
        TaskDef("vqa_position", ("tabletop", "blocks_only", "digits"), vqa_position, "exact"),
        TaskDef("point_block", _TABLE, point_block, "point"),
        TaskDef("point_robot", ("tabletop", "digits"), point_robot, "point"),
        TaskDef("point_symbol", _SYM, point_symbol, "point"),
        TaskDef("point_dense", ("tabletop", "blocks_only", "digits"), point_dense, "dense"),
        TaskDef("point_inverse", ("tabletop", "blocks_only", "digits"), point_inverse, "exact"),
        TaskDef("read_symbol", _SYM, read_symbol, "exact"),
        TaskDef("math_text", ("blank",), math_text, "number"),
        TaskDef("math_grounded", ("digits",), math_grounded, "number"),
        TaskDef("point_math", ("digits", "tabletop"), point_math, "point"),
        TaskDef("translate", ("blank",), translate, "exact"),
        TaskDef("rel_closest", ("tabletop", "digits"), rel_closest, "exact"),
        TaskDef("rel_same_colour", ("tabletop",), rel_same_colour, "exact"),
        TaskDef("rel_left_of", _TABLE, rel_left_of, "exact"),
        TaskDef("rel_size", _TABLE, rel_size, "exact"),
        TaskDef("rel_extreme", _TABLE, rel_extreme, "exact"),
        # Pointing in the emergent suites' own words (issue 15; rt2.data.web.referents): the referents the suites
        # name, phrased by the sim's instruction code, answered with the referent's grid point.
        TaskDef("point_symbol_named", ("symbol_board",) + _SYM, web_task_fn("point_symbol_named"), "point"),
        TaskDef("point_math_named", ("symbol_board", "digits"), web_task_fn("point_math_named"), "point"),
        TaskDef("point_relation", ("symbol_board",) + _TABLE, web_task_fn("point_relation"), "point"),
        TaskDef(
            "point_multilingual",
            ("symbol_board", "tabletop", "blocks_only", "symbols_only"),
            web_task_fn("point_multilingual"),
            "point",
        ),
    )
}
TASK_TYPES: tuple[str, ...] = tuple(TASKS)
# Answers tied to absolute image coordinates (grid points, board regions): a random crop would shift the truth by
# up to ~1.5 grid units, so train these with ImageTransform crop off (colour jitter is fine). Actions are deltas
# and are not affected.
GEOMETRIC_TASKS: frozenset[str] = frozenset(
    {"point_block", "point_robot", "point_symbol", "point_dense", "point_inverse", "point_math", "vqa_position"}
    | {"read_symbol", "point_symbol_named", "point_math_named", "point_relation", "point_multilingual"}
)


def check_task(name: str) -> TaskDef:
    return TASKS[board.check_name("web task", name, TASK_TYPES)]
