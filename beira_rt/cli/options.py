"""Command-line options as data: the flags the tools share, declared once, and one helper that adds them.

A tool declares its options as a table of :class:`Opt` (what ``add_argument`` takes) and
adds it with :func:`add_options`; the flags several tools have in common (``--config``,
``-v`` / ``-q``, ``--device``, ``--num-threads``, ``--out``, stream names, seconds) come from
the factories here, so that their shape (type, metavar, choices) is written once. Each tool
still words its own help text. Only :mod:`argparse` is imported: the CLIs stay quick to start.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONFIG",
    "DEVICES",
    "VERBOSITY",
    "Opt",
    "add_options",
    "device",
    "new_parser",
    "num_threads",
    "opt",
    "out",
    "seconds",
    "stream",
    "switch",
]

#: The torch devices a ``--device`` flag takes.
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, eq=False)
class Opt:
    """One command-line argument: the positional name or flags, and the keywords of ``add_argument``."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def opt(*flags: str, **kwargs: Any) -> Opt:
    """An :class:`Opt`, written like a call of ``parser.add_argument``."""
    return Opt(flags, kwargs)


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: Iterable[Opt]) -> None:
    """Add a table of options, in order, to a parser or an argument group."""
    for option in options:
        parser.add_argument(*option.flags, **option.kwargs)


def new_parser(
    prog: str, description: str, epilog: str | None = None, *, raw: bool = False
) -> argparse.ArgumentParser:
    """A top-level parser; ``raw`` keeps the line breaks of the description and the epilog."""
    formatter = argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=formatter
    )


#: ``--config``: the configuration file every tool that reads one takes.
CONFIG = opt(
    "--config",
    metavar="YAML",
    help="configuration file (default: built-in defaults, see configs/default.yaml)",
)
#: ``-v`` / ``-q``: the log level, up or down a step per repetition.
VERBOSITY = (
    opt("-v", "--verbose", action="count", default=0, help="more log output (repeatable)"),
    opt("-q", "--quiet", action="count", default=0, help="less log output (repeatable)"),
)


def device(help: str, default: str | None = None) -> Opt:
    """``--device {auto,cpu,cuda}``."""
    return opt("--device", choices=DEVICES, default=default, help=help)


def num_threads(help: str) -> Opt:
    """``--num-threads N``: torch CPU threads."""
    return opt("--num-threads", type=int, metavar="N", help=help)


def out(help: str, metavar: str = "DIR", required: bool = False) -> Opt:
    """``--out DIR`` (or another metavar): where a tool writes."""
    return opt("--out", metavar=metavar, required=required, help=help)


def seconds(flag: str, help: str, default: float | None = None) -> Opt:
    """A duration in seconds, ``FLAG S``."""
    return opt(flag, type=float, default=default, metavar="S", help=help)


def stream(flag: str, help: str, default: str | None = None) -> Opt:
    """The name of an LSL stream, ``FLAG NAME``."""
    return opt(flag, default=default, metavar="NAME", help=help)


def switch(flag: str, help: str) -> Opt:
    """An on/off flag (``store_true``)."""
    return opt(flag, action="store_true", help=help)
