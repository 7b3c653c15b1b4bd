"""The package logger.

One logger, ``beira_rt``, for the runtime package and the trainer. Its level
comes from the ``BEIRA_LOG_LEVEL`` environment variable (a level name such as
``DEBUG`` or a number) and from ``-v`` / ``-q`` on every CLI.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("beira_rt")

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at each record.

    A plain ``StreamHandler()`` keeps the ``sys.stderr`` of the moment it was made: when that
    stream is swapped and closed later (pytest's capture between tests, a GUI or a notebook
    redirecting stderr), every record after it fails with "I/O operation on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class sets it; the current stderr is always used
        pass


def _level_from(value: str | int | None) -> int:
    if value is None or value == "":
        return logging.INFO
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise ValueError(f"log level {value!r} is not known; use DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    return level


def set_log_level(verbose: int = 0, quiet: int = 0, level: str | int | None = None) -> int:
    """Set the package log level and attach a stderr handler once.

    Parameters
    ----------
    verbose, quiet : int
        Counts of ``-v`` and ``-q`` flags; each moves the level one step
        (10) down or up from the base level.
    level : str | int | None
        Base level; defaults to ``$BEIRA_LOG_LEVEL`` or INFO.

    Returns
    -------
    int
        The level now in force.
    """
    base = _level_from(level if level is not None else os.environ.get("BEIRA_LOG_LEVEL"))
    new = min(max(base - 10 * verbose + 10 * quiet, logging.DEBUG), logging.CRITICAL)
    logger.setLevel(new)
    if not any(getattr(h, "_beira", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._beira = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return new
