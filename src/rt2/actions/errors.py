"""The one exception type for text that is not a legal action."""

from __future__ import annotations


class ActionParseError(ValueError):
    """A string or token-id sequence is not a legal action.

    Raised by ``ActionTokenizer.from_text`` and ``ActionVocab.bins_for_ids`` with the reason (wrong count,
    non-integer token, value out of range, id that is not an action token). A ValueError subclass so callers
    that already catch ValueError keep working; never replaced by a zero or a guessed action.
    """
