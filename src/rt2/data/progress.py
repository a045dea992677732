"""The rich progress bar with done/total and time remaining that ``rt2 collect``, ``rt2 eval`` and training show.

It lives in the data stage, the lowest stage with a long-running command, so every later stage can import it.
``rich`` is imported when a bar is built, not with this module, to keep ``import rt2`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress


def eta_progress(label: str, *, note: str | None = None, eta_label: str | None = None, **kwargs: Any) -> Progress:
    """A ``rich.progress.Progress`` with columns: ``label`` | bar | done/total | ``note`` | elapsed |
    ``eta_label`` | remaining (``note`` and ``eta_label`` are left out when None).

    ``label`` and ``note`` are rich ``TextColumn`` formats (e.g. ``"{task.description}"``,
    ``"loss {task.fields[loss]}"``); ``kwargs`` go to ``Progress`` (``console``, ``disable``, ``transient``).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
    if note is not None:
        columns.append(TextColumn(note))
    columns.append(TimeElapsedColumn())
    if eta_label is not None:
        columns.append(TextColumn(eta_label))
    columns.append(TimeRemainingColumn())
    return Progress(*columns, **kwargs)
