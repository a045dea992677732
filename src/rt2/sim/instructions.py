"""Instruction text for a ``TaskSpec`` on a ``Scene``: every phrasing, in three languages, train or held-out.

    from rt2.sim.instructions import generate, enumerate_instructions, plan_text
    text = generate(spec, scene, np.random.default_rng(0), language="es", split="train")
    every = enumerate_instructions(spec, scene, language="en", split="heldout")   # sorted list[str]
    plan = plan_text(spec, scene)   # "push the blue cube to the top left corner" (referents resolved)

Naming follows Language-Table: a block is "<colour> <shape>", or "<colour> block" if its colour is unique on the
table, or "<shape>" if its shape is unique. ``split="heldout"`` uses paraphrase verbs that never occur in the
training set, so no held-out sentence equals a training sentence. All randomness comes from the ``rng`` you pass
(no global RNG). ``math=True`` replaces a digit target by arithmetic ("the sum of two plus one" for the 3).
Enumerating one task takes ~0.1-2 ms (block2relative with "slightly" is the largest, ~3k strings).
"""

from __future__ import annotations

import itertools

import numpy as np

from rt2.sim import board
from rt2.sim.lexicon import (
    AND,
    B2B,
    BLOCK_WORD,
    CARDINAL,
    COLOUR_WORDS,
    DIAGONAL_PATTERNS,
    DIGIT_NOUN,
    GROUP_WORDS,
    ICON_WORDS,
    LANGUAGES,
    LOCATIONS,
    MATH_PHRASES,
    NP,
    NUMBER_WORDS,
    REFERENTS,
    RELATIONS,
    REST_WORD,
    SEPARATE,
    SHAPE_WORDS,
    SLIGHTLY,
    SPLITS,
    SYMBOL_GOALS,
    VERBS,
    of,
    the,
    to,
)
from rt2.sim.scene import Scene
from rt2.sim.tasks import TaskSpec

__all__ = [
    "LANGUAGES",
    "SPLITS",
    "block_phrases",
    "enumerate_instructions",
    "generate",
    "math_expressions",
    "plan_text",
]


def _check(language: str, split: str) -> None:
    board.check_name("language", language, LANGUAGES)
    board.check_name("split", split, SPLITS)


def _full(colour: str, shape: str, lang: str) -> NP:
    noun = SHAPE_WORDS[lang][shape]
    adj = COLOUR_WORDS[lang][colour][0 if noun.gender == "m" else 1]
    return NP(f"{adj} {noun.text}" if lang == "en" else f"{noun.text} {adj}", noun.gender)


def block_phrases(name: str, scene: Scene, language: str = "en") -> list[NP]:
    """Valid noun phrases for block ``name`` on this table (full name first), per the naming rule."""
    board.check_name("language", language, LANGUAGES)
    b = scene.block(name)
    out = [_full(b.colour, b.shape, language)]
    if sum(o.colour == b.colour for o in scene.blocks) == 1:
        word = BLOCK_WORD[language]
        adj = COLOUR_WORDS[language][b.colour][0]
        out.append(NP(f"{adj} {word.text}" if language == "en" else f"{word.text} {adj}", word.gender))
    if sum(o.shape == b.shape for o in scene.blocks) == 1:
        out.append(SHAPE_WORDS[language][b.shape])
    return out


def symbol_phrases(kind: str, language: str = "en") -> list[NP]:
    board.check_symbol(kind)
    if kind in board.DIGITS:
        return [NP(kind), NP(f"{DIGIT_NOUN[language]} {kind}")]
    return list(ICON_WORDS[language][kind])


def math_expressions(digit: int, language: str = "en") -> list[NP]:
    """Every arithmetic phrase (operands 0-9) whose result is ``digit``: "sum of two plus one", ..."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    words, table, out = NUMBER_WORDS[language], MATH_PHRASES[language], []
    gender = {"en": "m", "es": "f", "fr": "f"}[language]  # suma / somme (the first noun); resultado/résultat are m
    for a, b in itertools.product(range(10), range(10)):
        for op, res in (("+", a + b), ("-", a - b), ("*", a * b)):
            if (
                res != digit
                or (op == "+" and min(a, b) == 0)
                or (op == "*" and min(a, b) < 2)
                or (op == "-" and b == 0)
            ):
                continue
            for phrase in table[op]:
                g = gender if phrase.split()[0] in ("suma", "somme") else "m"
                out.append(NP(phrase.format(a=words[a], b=words[b]), g))
    return out


def _forms(key: str, np_: NP, lang: str) -> dict[str, str]:
    return {key: the(np_, lang), f"to{key}": to(np_, lang), f"of{key}": of(np_, lang)}


def _group_phrases(spec: TaskSpec, scene: Scene, lang: str) -> list[dict[str, str]]:
    avoid = list(spec.avoid)
    if set(avoid) == set(scene.names) - {spec.block} and len(avoid) > 1:
        return [_forms("G", REST_WORD[lang], lang)]
    if len(avoid) >= 4:
        return [_forms("G", g, lang) for g in GROUP_WORDS[lang]]
    out = []
    for combo in itertools.product(*(block_phrases(a, scene, lang) for a in avoid)):
        parts = [the(n, lang) for n in combo]
        joined = (
            parts[0]
            if len(parts) == 1
            else f"{', '.join(parts[:-1])}{',' if len(parts) > 2 and lang == 'en' else ''} {AND[lang]} {parts[-1]}"
        )
        # Only the first member contracts with "de": "del cubo azul y la luna roja".
        of_joined = of(combo[0], lang) + joined[len(parts[0]) :]
        out.append({"G": joined, "ofG": of_joined})
    return out


def _goal_phrases(spec: TaskSpec, scene: Scene, lang: str, split: str, symbol_nps: list[NP] | None) -> list[str]:
    """Phrases after "<verb> <A>" for the goal part of a spec (all families except separate)."""
    fam = spec.scoring_family
    splits = SPLITS if split == "heldout" else ("train",)
    if fam == "block2block":
        bs = block_phrases(spec.target_block, scene, lang)
        return [p.format(**_forms("B", b, lang)) for s in splits for p in B2B[lang][s] for b in bs]
    if fam == "block2absolute":
        return [p for s in splits for p in LOCATIONS[lang][s][spec.location]]
    if fam == "block2relative":
        dirs = _direction_phrases(spec.direction, lang)
        if spec.distance == "far":
            return dirs
        return [f"{w} {d}" for w in SLIGHTLY[lang] for d in dirs] + (
            [f"{d} {w}" for w in SLIGHTLY[lang] for d in dirs] if lang == "en" else []
        )
    if fam == "block2blockrelative":
        bs = block_phrases(spec.target_block, scene, lang)
        return [r.format(**_forms("B", b, lang)) for r in RELATIONS[lang][spec.direction] for b in bs]
    nps = symbol_nps if symbol_nps is not None else symbol_phrases(spec.symbol, lang)
    return [g.format(**_forms("S", n, lang)) for s in splits for g in SYMBOL_GOALS[lang][s] for n in nps]


def _direction_phrases(direction: str, lang: str) -> list[str]:
    if "_" not in direction:
        return list(CARDINAL[lang][direction])
    vert, horiz = direction.split("_")
    return [
        p.format(x=x, y=y) for p in DIAGONAL_PATTERNS[lang] for x in CARDINAL[lang][vert] for y in CARDINAL[lang][horiz]
    ]


def _subject_phrases(spec: TaskSpec, scene: Scene, lang: str) -> list[NP]:
    if spec.family != "property_referent":
        return block_phrases(spec.block, scene, lang)
    kind, _, arg = spec.referent.partition(":")
    out = []
    for ref in REFERENTS[lang][kind]:
        for s in symbol_phrases(arg, lang) if arg else [NP("")]:
            out.append(NP(ref.text.format(**_forms("S", s, lang)), ref.gender))
    return out


def enumerate_instructions(
    spec: TaskSpec, scene: Scene, language: str = "en", split: str = "train", symbol_nps: list[NP] | None = None
) -> list[str]:
    """Every instruction string for ``spec`` on ``scene`` (sorted, deduplicated)."""
    _check(language, split)
    verbs = VERBS[language][split]
    subjects = [the(a, language) for a in _subject_phrases(spec, scene, language)]
    if spec.family == "separate":
        templates = SEPARATE[language][split]
        out = {t.format(A=a, **g) for t in templates for a in subjects for g in _group_phrases(spec, scene, language)}
        return sorted(out)
    goals = _goal_phrases(spec, scene, language, split, symbol_nps)
    out = {f"{v} {a} {g}" for v in verbs for a in subjects for g in goals}
    if spec.family == "block2relative" and spec.distance == "near" and language == "en":
        dirs = _direction_phrases(spec.direction, language)
        out |= {f"{w} {v} {a} {d}" for w in SLIGHTLY[language] for v in verbs for a in subjects for d in dirs}
    return sorted(out)


def generate(
    spec: TaskSpec,
    scene: Scene,
    rng: np.random.Generator,
    language: str = "en",
    split: str = "train",
    math: bool = False,
) -> str:
    """One instruction drawn uniformly from ``enumerate_instructions`` with ``rng``.

    ``math=True`` (digit symbol targets only) names the digit by an arithmetic expression instead.
    """
    nps = None
    if math:
        if spec.symbol is None or spec.symbol not in board.DIGITS or spec.scoring_family != "block2symbol":
            raise ValueError(
                f"math phrasing needs a digit symbol target (block2symbol); got {spec.family}/{spec.symbol}"
            )
        exprs = math_expressions(int(spec.symbol), language)
        nps = [exprs[int(rng.integers(len(exprs)))]]
    options = enumerate_instructions(spec, scene, language, split, symbol_nps=nps)
    return options[int(rng.integers(len(options)))]


def plan_text(spec: TaskSpec, scene: Scene) -> str:
    """Canonical English plan with every referent resolved, for chain-of-thought targets.

    e.g. "push the blue cube to the top left corner" for "move the leftmost block to the top left".
    """
    a = the(_full(*scene.block(spec.block).name.split(" "), "en"), "en")
    fam = spec.scoring_family
    if fam == "separate":
        names = " and ".join(f"the {n}" for n in spec.avoid)
        return f"push {a} away from {names}"
    if fam in ("block2block", "block2blockrelative"):
        b = _full(*spec.target_block.split(" "), "en")
        tmpl = "{toB}" if fam == "block2block" else RELATIONS["en"][spec.direction][0]
        return f"push {a} {tmpl.format(**_forms('B', b, 'en'))}"
    if fam == "block2absolute":
        return f"push {a} {LOCATIONS['en']['train'][spec.location][-1]}"
    if fam == "block2relative":
        words = _direction_phrases(spec.direction, "en")[0]
        return f"push {a} {'slightly ' if spec.distance == 'near' else ''}{words}"
    return f"push {a} to the {symbol_phrases(spec.symbol, 'en')[-1 if spec.symbol in board.DIGITS else 0].text}"
