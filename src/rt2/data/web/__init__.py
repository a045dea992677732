"""The web half of ``rt2.data``: the synthetic web corpus the VLM is pre-trained and co-fine-tuned on.

The public import path (``from rt2.data.web import WebCorpus``); the code lives in one module per concept:

    rt2.data.web.corpus      WebCorpus / WebShards, WebItem, score_answer, chance_baseline (the corpus itself)
    rt2.data.web.tasks       the named task types and how each is scored
    rt2.data.web.scene       web scenes and the pointing grid shared with actions and plans
    rt2.data.web.lang        the multilingual lexicon of captions, numbers and articles
    rt2.data.web.concepts    the concepts that occur only on the web side (the emergent-skill test set)

The robot half is ``rt2.data.lerobot`` (datasets on disk) and ``rt2.data.robot*`` (examples from them).
"""

from __future__ import annotations

from rt2.data.web.concepts import WEB_ONLY_CONCEPTS, find_web_only, web_only_terms
from rt2.data.web.corpus import (
    FORMAT_VERSION,
    POINT_TOL,
    SPLITS,
    WebCorpus,
    WebCorpusConfig,
    WebItem,
    WebShards,
    accuracy_by_task,
    chance_baseline,
    score_answer,
)

__all__ = [
    "FORMAT_VERSION",
    "POINT_TOL",
    "SPLITS",
    "WEB_ONLY_CONCEPTS",
    "WebCorpus",
    "WebCorpusConfig",
    "WebItem",
    "WebShards",
    "accuracy_by_task",
    "chance_baseline",
    "find_web_only",
    "score_answer",
    "web_only_terms",
]
