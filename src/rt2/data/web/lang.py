"""Words of the synthetic web corpus in English, Spanish and French: objects, numbers and caption sentences.

The web corpus is where the model meets non-English words, number words and the names of digits, icons and
faces; robot training instructions never contain them (``rt2.data.web.WEB_ONLY_CONCEPTS``). The lexicon is data
so the translation task, the multilingual captions, the scorer (number words) and the web-only word list all
agree. Noun phrases carry gender and French elision ("l'étoile verte") so translations are grammatical.
"""

from __future__ import annotations

from rt2.sim import board, lexicon

# The robot instructions' lexicon already names the languages, colours, shapes, icons and digits; the web corpus
# takes those words from it so a caption and an instruction can never disagree on what a thing is called.
LANGUAGES: tuple[str, ...] = lexicon.LANGUAGES
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "es": "Spanish", "fr": "French"}

# Digit targets only need 0..9 (``lexicon.NUMBER_WORDS``); captions count blocks and answers go up to twenty.
_TEN_TO_TWENTY: dict[str, tuple[str, ...]] = {
    "en": ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen")
    + ("nineteen", "twenty"),
    "es": ("diez", "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho")
    + ("diecinueve", "veinte"),
    "fr": ("dix", "onze", "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf")
    + ("vingt",),
}
NUMBER_WORDS: dict[str, list[str]] = {lang: [*lexicon.NUMBER_WORDS[lang], *_TEN_TO_TWENTY[lang]] for lang in LANGUAGES}
MAX_NUMBER_WORD = 20

# colour -> (masculine, feminine)
COLOUR_WORDS: dict[str, dict[str, tuple[str, str]]] = lexicon.COLOUR_WORDS


def _nouns(lang: str) -> dict[str, tuple[str, str]]:
    """Shapes, icons (their first, plainest name; the heart icon as "icon_heart") and the block/number/robot nouns."""

    def pair(np_: lexicon.NP) -> tuple[str, str]:
        return (np_.text, np_.gender)

    icons = lexicon.ICON_WORDS[lang]
    return {
        **{s: pair(lexicon.SHAPE_WORDS[lang][s]) for s in board.SHAPES},
        **{k: pair(icons[k][0]) for k in ("arrow", "cross", "face", "face_glasses")},
        "icon_heart": pair(icons["heart"][0]),
        "block": pair(lexicon.BLOCK_WORD[lang]),
        "number": (lexicon.DIGIT_NOUN[lang], "m"),
        "robot": ("robot", "m"),
    }


# noun -> (word, gender "m"/"f"); shapes of blocks, icons, and the robot / block / number nouns
NOUNS: dict[str, dict[str, tuple[str, str]]] = {lang: _nouns(lang) for lang in LANGUAGES}
ARTICLES: dict[str, dict[str, str]] = {
    "en": {"m": "the", "f": "the"},
    "es": {"m": "el", "f": "la"},
    "fr": {"m": "le", "f": "la"},
}
_FR_VOWELS = tuple("aeiouyéèêhœ")

# caption sentence frames: {objects} is a comma list ending in "and"; {n} the block count as a word
CAPTION_FRAMES: dict[str, dict[str, str]] = {
    "en": {
        "board": "a board with {n} blocks: {objects}",
        "board_one": "a board with one block: {objects}",
        "symbols": "a picture of {objects}",
        "robot": "the robot is at the {where}",
        "and": "and",
        "no_blocks": "a board with no blocks: {objects}",
    },
    "es": {
        "board": "un tablero con {n} bloques: {objects}",
        "board_one": "un tablero con un bloque: {objects}",
        "symbols": "una imagen de {objects}",
        "robot": "el robot está {where}",
        "and": "y",
        "no_blocks": "un tablero sin bloques: {objects}",
    },
    "fr": {
        "board": "un plateau avec {n} blocs : {objects}",
        "board_one": "un plateau avec un bloc : {objects}",
        "symbols": "une image de {objects}",
        "robot": "le robot est {where}",
        "and": "et",
        "no_blocks": "un plateau sans blocs : {objects}",
    },
}
# 3x3 board regions (rows top/centre/bottom x columns left/centre/right) in each language
REGION_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "top_left": "top left",
        "top": "top",
        "top_right": "top right",
        "center_left": "center left",
        "center": "center",
        "center_right": "center right",
        "bottom_left": "bottom left",
        "bottom": "bottom",
        "bottom_right": "bottom right",
    },
    "es": {
        "top_left": "arriba a la izquierda",
        "top": "arriba",
        "top_right": "arriba a la derecha",
        "center_left": "a la izquierda",
        "center": "en el centro",
        "center_right": "a la derecha",
        "bottom_left": "abajo a la izquierda",
        "bottom": "abajo",
        "bottom_right": "abajo a la derecha",
    },
    "fr": {
        "top_left": "en haut à gauche",
        "top": "en haut",
        "top_right": "en haut à droite",
        "center_left": "à gauche",
        "center": "au centre",
        "center_right": "à droite",
        "bottom_left": "en bas à gauche",
        "bottom": "en bas",
        "bottom_right": "en bas à droite",
    },
}


def check_language(lang: str) -> str:
    return board.check_name("language", lang, LANGUAGES)


def number_word(n: int, lang: str = "en") -> str:
    """0..20 as a word in ``lang``; ValueError outside that range."""
    check_language(lang)
    if not isinstance(n, int) or not 0 <= n <= MAX_NUMBER_WORD:
        raise ValueError(f"number words cover 0..{MAX_NUMBER_WORD}, got {n!r}")
    return NUMBER_WORDS[lang][n]


def parse_number(text: str) -> int | None:
    """An integer from digits ("12", "-3") or a number word in any supported language; None if neither."""
    t = str(text).strip().lower().rstrip(".")
    try:
        return int(t)
    except ValueError:
        pass
    for words in NUMBER_WORDS.values():
        if t in words:
            return words.index(t)
    return None


def _article(lang: str, gender: str, word: str) -> str:
    art = ARTICLES[lang][gender]
    if lang == "fr" and word.startswith(_FR_VOWELS):
        return "l'"
    return art + " "


def block_phrase(colour: str, shape: str, lang: str = "en", article: bool = False) -> str:
    """ "red moon" / "la luna roja" / "la lune rouge" (with ``article``) or "luna roja" (without)."""
    check_language(lang)
    noun, gender = NOUNS[lang][board.check_shape(shape)]
    adj = COLOUR_WORDS[lang][board.check_colour(colour)][0 if gender == "m" else 1]
    core = f"{adj} {noun}" if lang == "en" else f"{noun} {adj}"
    return (_article(lang, gender, core) + core) if article else core


def symbol_phrase(kind: str, lang: str = "en", article: bool = False) -> str:
    """ "number 3" / "heart" / "face with glasses" in ``lang`` (digits as "number 3", "el número 3")."""
    check_language(lang)
    board.check_symbol(kind)
    if kind in board.DIGITS:
        noun, gender = NOUNS[lang]["number"]
        core = f"{noun} {kind}"
    else:
        noun, gender = NOUNS[lang]["icon_heart" if kind == "heart" else kind]
        core = noun
    return (_article(lang, gender, core) + core) if article else core


def robot_phrase(lang: str = "en", article: bool = False) -> str:
    noun, gender = NOUNS[check_language(lang)]["robot"]
    return (_article(lang, gender, noun) + noun) if article else noun


def join_list(items: list[str], lang: str = "en") -> str:
    """ "a, b and c" in ``lang``."""
    if not items:
        raise ValueError("cannot join an empty list")
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {CAPTION_FRAMES[check_language(lang)]['and']} " + items[-1]


def all_words(lang: str) -> set[str]:
    """Every word this lexicon can emit in ``lang`` (lower case, split on spaces and apostrophes)."""
    check_language(lang)
    texts: list[str] = list(NUMBER_WORDS[lang])
    texts += [w for pair in COLOUR_WORDS[lang].values() for w in pair]
    texts += [w for w, _ in NOUNS[lang].values()] + list(ARTICLES[lang].values())
    texts += list(CAPTION_FRAMES[lang].values()) + list(REGION_WORDS[lang].values())
    words: set[str] = set()
    for t in texts:
        for w in t.replace("'", " ").replace(":", " ").split():
            if not w.startswith("{"):
                words.add(w.lower())
    return words
