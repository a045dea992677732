"""Concepts that appear ONLY in web data: never in a robot training instruction, plan or in-domain question.

RT-2's emergent skills are claims that a skill came from web data, so the robot side must not teach it. This
module is the machine-readable list of those concepts (docs/web_corpus.md is the human-readable one) and the
matcher that tests and ``rt2.data.robot`` use to enforce it::

    find_web_only("push the red moon to the number 3")   # -> ["digits: 3", "digits: number"]

Categories (each a tuple of lower-case words or phrases, matched on word boundaries):

- ``digits``:        the characters 0-9 and the nouns for printed digits ("number", "número", "chiffre", "digit")
- ``number_words``:  number words 0-20 in English, Spanish and French
- ``icons_people``:  icon and face words (heart, arrow, cross, x mark, face, person, glasses, symbol, icon, picture)
- ``arithmetic``:    plus, minus, times, sum, product, difference, result, equal(s), "+", "*", "="
- ``relations``:     property/relational referent words (same colour, closest, nearest, smallest, tiniest, largest,
                     biggest, larger, smaller, leftmost, rightmost, topmost, bottommost, furthest, matches)
- ``heldout_objects``: held-out colours and shapes (purple, orange, triangle, heart)
- ``non_english``:   every Spanish/French word of the sim's and the web corpus' lexicons that is not also English

Robot action examples may contain digits only in their *targets* (the action text "3 -7") and in the
in-domain answers of ``rt2.data.robot`` (grid points, step counts) — the rule is about instructions and plans,
which is where a concept would be taught as a referent.
"""

from __future__ import annotations

import re
from functools import cache

from rt2.data.web import lang as web_lang
from rt2.sim import board, lexicon

_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", re.UNICODE)


def _words(obj) -> set[str]:
    """All alphabetic words (lower case) in nested dict/tuple/list/str/NP structures, {...} format slots dropped."""
    out: set[str] = set()
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (tuple, list, set)):
            stack.extend(x)
        elif isinstance(x, lexicon.NP):
            stack.append(x.text)
        elif isinstance(x, str):
            text = re.sub(r"\{[^}]*\}", " ", x).lower().replace("'", " ")
            out.update(_WORD.findall(text))
    return out


def _lexicon_tables(lang: str) -> list:
    tables = []
    for name in dir(lexicon):
        value = getattr(lexicon, name)
        if name.isupper() and isinstance(value, dict) and lang in value:
            tables.append(value[lang])
    return tables


@cache
def english_words() -> frozenset[str]:
    """Every English word either lexicon can emit (robot templates, web captions and questions)."""
    return frozenset(_words(_lexicon_tables("en")) | web_lang.all_words("en"))


@cache
def _non_english() -> tuple[str, ...]:
    foreign: set[str] = set()
    for lang in ("es", "fr"):
        foreign |= _words(_lexicon_tables(lang)) | web_lang.all_words(lang)
    return tuple(sorted(w for w in foreign - english_words() if len(w) > 1))  # "y", "d" alone: too ambiguous


_ICONS_PEOPLE = ("heart", "arrow", "cross", "x mark", "face", "faces", "person", "people", "glasses", "symbol")
_ICONS_PEOPLE += ("symbols", "icon", "picture")
_RELATIONS = (
    "same colour",
    "same color",
    "matches the colour",
    "closest",
    "nearest",
    "smallest",
    "tiniest",
    "largest",
    "biggest",
    "larger",
    "smaller",
    "leftmost",
    "rightmost",
    "topmost",
    "bottommost",
    "furthest",
)


@cache
def _concepts() -> dict[str, tuple[str, ...]]:
    return {
        "digits": tuple(board.DIGITS) + ("number", "numbers", "digit", "digits", "número", "chiffre"),
        "number_words": tuple(dict.fromkeys(w for lang in web_lang.LANGUAGES for w in web_lang.NUMBER_WORDS[lang])),
        "icons_people": _ICONS_PEOPLE,
        "arithmetic": ("plus", "minus", "times", "sum", "product", "difference", "result", "equal", "equals")
        + ("+", "*", "="),
        "relations": _RELATIONS,
        "heldout_objects": tuple(board.HELDOUT_COLOURS) + tuple(board.HELDOUT_SHAPES),
        "non_english": _non_english(),
    }


WEB_ONLY_CONCEPTS: dict[str, tuple[str, ...]] = _concepts()


def web_only_terms() -> tuple[str, ...]:
    """Every web-only term, all categories, sorted."""
    return tuple(sorted({t for terms in WEB_ONLY_CONCEPTS.values() for t in terms}))


@cache
def _pattern() -> re.Pattern[str]:
    alts = sorted(web_only_terms(), key=len, reverse=True)
    return re.compile(r"(?<![\w])(" + "|".join(re.escape(t) for t in alts) + r")(?![\w])", re.UNICODE)


@cache
def _category_of() -> dict[str, str]:
    out: dict[str, str] = {}
    for cat, terms in WEB_ONLY_CONCEPTS.items():
        for t in terms:
            out.setdefault(t, cat)
    return out


def find_web_only(text: str) -> list[str]:
    """``"category: term"`` for every web-only term occurring in ``text`` (case-insensitive); [] if none."""
    if not isinstance(text, str):
        raise TypeError(f"find_web_only takes a str, got {type(text).__name__}")
    cats = _category_of()
    return sorted({f"{cats[m]}: {m}" for m in _pattern().findall(text.lower())})
