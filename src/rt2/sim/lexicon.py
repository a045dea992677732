"""Words and phrase tables for instructions in English, Spanish and French (used by ``rt2.sim.instructions``).

Each language has a *train* set of verbs/phrasings and a disjoint *held-out* paraphrase set (different verbs,
so no held-out sentence can equal a training sentence). English training phrasing follows Language-Table's
templates (push/move/slide/put; "to the", "towards the", "close to the", "next to the"; location, direction and
relation phrases; the "slightly" words).

Noun phrases carry a grammatical gender so Spanish and French contract articles correctly:
"al cubo" / "a la luna", "du cube" / "de l'étoile".
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES: tuple[str, ...] = ("en", "es", "fr")
SPLITS: tuple[str, ...] = ("train", "heldout")


@dataclass(frozen=True)
class NP:
    """A noun phrase without its article: ``text`` and gender "m"/"f" (ignored in English)."""

    text: str
    gender: str = "m"


def _vowel(s: str) -> bool:
    return s[:1].lower() in "aeiouéèêâîôûœh"


def the(np_: NP, lang: str) -> str:
    if lang == "en":
        return f"the {np_.text}"
    if lang == "es":
        return f"{'el' if np_.gender == 'm' else 'la'} {np_.text}"
    if _vowel(np_.text):
        return f"l'{np_.text}"
    return f"{'le' if np_.gender == 'm' else 'la'} {np_.text}"


def to(np_: NP, lang: str) -> str:
    """ "to the X" / "al X" / "au X"."""
    if lang == "en":
        return f"to the {np_.text}"
    if lang == "es":
        return f"al {np_.text}" if np_.gender == "m" else f"a la {np_.text}"
    if _vowel(np_.text):
        return f"à l'{np_.text}"
    return f"au {np_.text}" if np_.gender == "m" else f"à la {np_.text}"


def of(np_: NP, lang: str) -> str:
    """ "of the X" / "del X" / "du X"."""
    if lang == "en":
        return f"of the {np_.text}"
    if lang == "es":
        return f"del {np_.text}" if np_.gender == "m" else f"de la {np_.text}"
    if _vowel(np_.text):
        return f"de l'{np_.text}"
    return f"du {np_.text}" if np_.gender == "m" else f"de la {np_.text}"


# colour -> (masculine, feminine)
COLOUR_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {c: (c, c) for c in ("red", "blue", "green", "yellow", "purple", "orange")},
    "es": {
        "red": ("rojo", "roja"),
        "blue": ("azul", "azul"),
        "green": ("verde", "verde"),
        "yellow": ("amarillo", "amarilla"),
        "purple": ("morado", "morada"),
        "orange": ("naranja", "naranja"),
    },
    "fr": {
        "red": ("rouge", "rouge"),
        "blue": ("bleu", "bleue"),
        "green": ("vert", "verte"),
        "yellow": ("jaune", "jaune"),
        "purple": ("violet", "violette"),
        "orange": ("orange", "orange"),
    },
}
SHAPE_WORDS: dict[str, dict[str, NP]] = {
    "en": {s: NP(s) for s in ("moon", "cube", "star", "pentagon", "triangle", "heart")},
    "es": {
        "moon": NP("luna", "f"),
        "cube": NP("cubo"),
        "star": NP("estrella", "f"),
        "pentagon": NP("pentágono"),
        "triangle": NP("triángulo"),
        "heart": NP("corazón"),
    },
    "fr": {
        "moon": NP("lune", "f"),
        "cube": NP("cube"),
        "star": NP("étoile", "f"),
        "pentagon": NP("pentagone"),
        "triangle": NP("triangle"),
        "heart": NP("cœur"),
    },
}
BLOCK_WORD: dict[str, NP] = {"en": NP("block"), "es": NP("bloque"), "fr": NP("bloc")}

ICON_WORDS: dict[str, dict[str, tuple[NP, ...]]] = {
    "en": {
        "heart": (NP("heart"),),
        "arrow": (NP("arrow"),),
        "cross": (NP("cross"), NP("x mark")),
        "face": (NP("face"), NP("person")),
        "face_glasses": (NP("face with glasses"), NP("person wearing glasses")),
    },
    "es": {
        "heart": (NP("corazón"),),
        "arrow": (NP("flecha", "f"),),
        "cross": (NP("cruz", "f"),),
        "face": (NP("cara", "f"), NP("persona", "f")),
        "face_glasses": (NP("cara con gafas", "f"), NP("persona con gafas", "f")),
    },
    "fr": {
        "heart": (NP("cœur"),),
        "arrow": (NP("flèche", "f"),),
        "cross": (NP("croix", "f"),),
        "face": (NP("visage"), NP("personne", "f")),
        "face_glasses": (NP("visage avec des lunettes"), NP("personne à lunettes", "f")),
    },
}
DIGIT_NOUN = {"en": "number", "es": "número", "fr": "chiffre"}
NUMBER_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
}
# Math phrasings of a digit target: "{a}" and "{b}" are number words; op is "+", "-" or "*".
MATH_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "+": ("sum of {a} plus {b}", "result of {a} plus {b}"),
        "-": ("result of {a} minus {b}",),
        "*": ("product of {a} times {b}",),
    },
    "es": {
        "+": ("suma de {a} más {b}", "resultado de {a} más {b}"),
        "-": ("resultado de {a} menos {b}",),
        "*": ("producto de {a} por {b}",),
    },
    "fr": {
        "+": ("somme de {a} plus {b}", "résultat de {a} plus {b}"),
        "-": ("résultat de {a} moins {b}",),
        "*": ("produit de {a} fois {b}",),
    },
}

VERBS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {"train": ("push", "move", "slide", "put"), "heldout": ("nudge", "shove", "guide", "drag")},
    "es": {"train": ("empuja", "mueve", "desliza", "pon"), "heldout": ("lleva", "arrastra")},
    "fr": {"train": ("pousse", "déplace", "fais glisser", "mets"), "heldout": ("amène", "traîne")},
}

# block2block: "{v} {A} <prep>", prep uses {B} (the NP), {toB}, {ofB}.
B2B: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "train": ("{toB}", "towards {B}", "close to {B}", "next to {B}"),
        "heldout": ("up against {B}", "beside {B}", "alongside {B}"),
    },
    "es": {"train": ("{toB}", "hacia {B}", "cerca {ofB}", "junto {toB}"), "heldout": ("al lado {ofB}", "contra {B}")},
    "fr": {
        "train": ("{toB}", "vers {B}", "près {ofB}", "à côté {ofB}"),
        "heldout": ("tout contre {B}", "auprès {ofB}"),
    },
}

LOCATIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "en": {
        "train": {
            "top_left": (
                "to the top left of the board",
                "to the top left",
                "to the upper left corner",
                "to the top left corner",
            ),
            "top": ("to the top side", "to the top", "towards your base"),
            "top_right": (
                "to the top right of the board",
                "to the top right",
                "to the upper right corner",
                "to the top right corner",
            ),
            "center_left": ("to the left side", "to the left of the board", "to the center left"),
            "center": ("to the middle of the board", "to the center of the board", "to the center", "to the middle"),
            "center_right": ("to the right side", "to the right of the board", "to the center right"),
            "bottom_left": (
                "to the bottom left of the board",
                "to the bottom left",
                "to the lower left corner",
                "to the bottom left corner",
            ),
            "bottom": ("to the bottom side", "to the bottom", "away from your base"),
            "bottom_right": (
                "to the bottom right of the board",
                "to the bottom right",
                "to the lower right corner",
                "to the bottom right corner",
            ),
        },
        "heldout": {
            "top_left": ("into the upper-left area",),
            "top": ("over to the top edge",),
            "top_right": ("into the upper-right area",),
            "center_left": ("over to the left edge",),
            "center": ("into the very middle",),
            "center_right": ("over to the right edge",),
            "bottom_left": ("into the lower-left area",),
            "bottom": ("over to the bottom edge",),
            "bottom_right": ("into the lower-right area",),
        },
    },
    "es": {
        "train": {
            "top_left": ("a la esquina superior izquierda", "arriba a la izquierda"),
            "top": ("arriba", "a la parte de arriba"),
            "top_right": ("a la esquina superior derecha", "arriba a la derecha"),
            "center_left": ("al lado izquierdo", "a la izquierda del tablero"),
            "center": ("al centro", "al centro del tablero", "al medio"),
            "center_right": ("al lado derecho", "a la derecha del tablero"),
            "bottom_left": ("a la esquina inferior izquierda", "abajo a la izquierda"),
            "bottom": ("abajo", "a la parte de abajo"),
            "bottom_right": ("a la esquina inferior derecha", "abajo a la derecha"),
        },
        "heldout": {
            "top_left": ("hasta el rincón de arriba a la izquierda",),
            "top": ("hasta el borde de arriba",),
            "top_right": ("hasta el rincón de arriba a la derecha",),
            "center_left": ("hasta el borde izquierdo",),
            "center": ("justo en medio",),
            "center_right": ("hasta el borde derecho",),
            "bottom_left": ("hasta el rincón de abajo a la izquierda",),
            "bottom": ("hasta el borde de abajo",),
            "bottom_right": ("hasta el rincón de abajo a la derecha",),
        },
    },
    "fr": {
        "train": {
            "top_left": ("dans le coin supérieur gauche", "en haut à gauche"),
            "top": ("en haut", "vers le haut du plateau"),
            "top_right": ("dans le coin supérieur droit", "en haut à droite"),
            "center_left": ("sur le côté gauche", "à gauche du plateau"),
            "center": ("au centre", "au centre du plateau", "au milieu"),
            "center_right": ("sur le côté droit", "à droite du plateau"),
            "bottom_left": ("dans le coin inférieur gauche", "en bas à gauche"),
            "bottom": ("en bas", "vers le bas du plateau"),
            "bottom_right": ("dans le coin inférieur droit", "en bas à droite"),
        },
        "heldout": {
            "top_left": ("jusqu'au recoin d'en haut à gauche",),
            "top": ("jusqu'au bord du haut",),
            "top_right": ("jusqu'au recoin d'en haut à droite",),
            "center_left": ("jusqu'au bord gauche",),
            "center": ("pile au milieu",),
            "center_right": ("jusqu'au bord droit",),
            "bottom_left": ("jusqu'au recoin d'en bas à gauche",),
            "bottom": ("jusqu'au bord du bas",),
            "bottom_right": ("jusqu'au recoin d'en bas à droite",),
        },
    },
}

# block2relative: cardinal wordings; diagonals combine a vertical and a horizontal word with a pattern.
CARDINAL: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "up": ("up", "upwards"),
        "down": ("down", "downwards"),
        "left": ("to the left", "left"),
        "right": ("to the right", "right"),
    },
    "es": {
        "up": ("hacia arriba", "arriba"),
        "down": ("hacia abajo", "abajo"),
        "left": ("a la izquierda", "hacia la izquierda"),
        "right": ("a la derecha", "hacia la derecha"),
    },
    "fr": {
        "up": ("vers le haut", "en haut"),
        "down": ("vers le bas", "en bas"),
        "left": ("vers la gauche", "à gauche"),
        "right": ("vers la droite", "à droite"),
    },
}
DIAGONAL_PATTERNS: dict[str, tuple[str, ...]] = {
    "en": ("{x} and {y}", "{x} and then {y}", "diagonally {x} and {y}", "{x} and {y} diagonally"),
    "es": ("{x} y {y}", "en diagonal {x} y {y}"),
    "fr": ("{x} et {y}", "en diagonale {x} et {y}"),
}
SLIGHTLY: dict[str, tuple[str, ...]] = {
    "en": ("slightly", "a bit", "a little", "a little bit", "somewhat"),
    "es": ("un poco", "ligeramente"),
    "fr": ("un peu", "légèrement"),
}

# block2blockrelative relations, written around {B}/{ofB}/{toB}.
RELATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "up": ("above {B}", "to the top side {ofB}", "just above {B}"),
        "down": ("below {B}", "to the bottom side {ofB}", "just below {B}"),
        "left": ("to the left {ofB}", "to the left side {ofB}", "just left {ofB}"),
        "right": ("to the right {ofB}", "to the right side {ofB}", "just right {ofB}"),
        "up_left": ("to the top left {ofB}", "to the upper left {ofB}", "diagonally up and to the left {ofB}"),
        "up_right": ("to the top right {ofB}", "to the upper right {ofB}", "diagonally up and to the right {ofB}"),
        "down_left": ("to the bottom left {ofB}", "to the lower left {ofB}", "diagonally down and to the left {ofB}"),
        "down_right": (
            "to the bottom right {ofB}",
            "to the lower right {ofB}",
            "diagonally down and to the right {ofB}",
        ),
    },
    "es": {
        "up": ("encima {ofB}", "arriba {ofB}"),
        "down": ("debajo {ofB}", "abajo {ofB}"),
        "left": ("a la izquierda {ofB}",),
        "right": ("a la derecha {ofB}",),
        "up_left": ("arriba a la izquierda {ofB}",),
        "up_right": ("arriba a la derecha {ofB}",),
        "down_left": ("abajo a la izquierda {ofB}",),
        "down_right": ("abajo a la derecha {ofB}",),
    },
    "fr": {
        "up": ("au-dessus {ofB}", "juste au-dessus {ofB}"),
        "down": ("en dessous {ofB}", "juste en dessous {ofB}"),
        "left": ("à gauche {ofB}",),
        "right": ("à droite {ofB}",),
        "up_left": ("en haut à gauche {ofB}",),
        "up_right": ("en haut à droite {ofB}",),
        "down_left": ("en bas à gauche {ofB}",),
        "down_right": ("en bas à droite {ofB}",),
    },
}

# separate: whole templates over {A} and the group phrases {G} / {ofG}.
SEPARATE: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "train": ("pull {A} apart from {G}", "move {A} away from {G}", "separate {A} from {G}"),
        "heldout": ("nudge {A} clear of {G}", "shove {A} out from {G}"),
    },
    "es": {"train": ("separa {A} {ofG}", "aleja {A} {ofG}"), "heldout": ("aparta {A} {ofG}",)},
    "fr": {"train": ("sépare {A} {ofG}", "éloigne {A} {ofG}"), "heldout": ("écarte {A} {ofG}",)},
}
GROUP_WORDS: dict[str, tuple[NP, ...]] = {
    "en": (NP("group"), NP("clump"), NP("group of blocks")),
    "es": (NP("grupo"), NP("montón"), NP("grupo de bloques")),
    "fr": (NP("groupe"), NP("tas"), NP("groupe de blocs")),
}
REST_WORD: dict[str, NP] = {
    "en": NP("rest of the blocks"),
    "es": NP("resto de los bloques"),
    "fr": NP("reste des blocs"),
}
AND: dict[str, str] = {"en": "and", "es": "y", "fr": "et"}

# block2symbol goals around {S}/{toS}/{ofS}.
SYMBOL_GOALS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {"train": ("{toS}", "onto {S}", "towards {S}", "on top {ofS}"), "heldout": ("over to {S}", "right onto {S}")},
    "es": {"train": ("{toS}", "hacia {S}", "encima {ofS}"), "heldout": ("hasta {S}",)},
    "fr": {"train": ("{toS}", "vers {S}", "sur {S}"), "heldout": ("jusqu'à {S}",)},
}

# property_referent: phrases naming a block by a property. {S}/{toS}/{ofS} is the symbol (colour_of, closest_to).
REFERENTS: dict[str, dict[str, tuple[NP, ...]]] = {
    "en": {
        "colour_of": (NP("block with the same colour as {S}"), NP("block that matches the colour {ofS}")),
        "closest_to": (NP("block closest {toS}"), NP("block nearest {toS}")),
        "smallest": (NP("smallest block"), NP("tiniest block")),
        "largest": (NP("largest block"), NP("biggest block")),
        "leftmost": (NP("leftmost block"), NP("block furthest to the left")),
        "rightmost": (NP("rightmost block"), NP("block furthest to the right")),
        "topmost": (NP("topmost block"), NP("block closest to the top")),
        "bottommost": (NP("bottommost block"), NP("block closest to the bottom")),
    },
    "es": {
        "colour_of": (NP("bloque del mismo color que {S}"),),
        "closest_to": (NP("bloque más cercano {toS}"),),
        "smallest": (NP("bloque más pequeño"),),
        "largest": (NP("bloque más grande"),),
        "leftmost": (NP("bloque más a la izquierda"),),
        "rightmost": (NP("bloque más a la derecha"),),
        "topmost": (NP("bloque más arriba"),),
        "bottommost": (NP("bloque más abajo"),),
    },
    "fr": {
        "colour_of": (NP("bloc de la même couleur que {S}"),),
        "closest_to": (NP("bloc le plus proche {ofS}"),),
        "smallest": (NP("plus petit bloc"),),
        "largest": (NP("plus grand bloc"),),
        "leftmost": (NP("bloc le plus à gauche"),),
        "rightmost": (NP("bloc le plus à droite"),),
        "topmost": (NP("bloc le plus en haut"),),
        "bottommost": (NP("bloc le plus en bas"),),
    },
}
