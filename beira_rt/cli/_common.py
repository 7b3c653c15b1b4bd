"""Pieces every CLI shares: --config, -v/-q, error reporting and exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from beira_rt._logging import logger, set_log_level
from beira_rt.cli.options import CONFIG, VERBOSITY, add_options
from beira_rt.config import BeiraConfig, ConfigError, load_config, override

#: Exit code of a subcommand whose issue has not landed yet, and of bad usage.
EXIT_USAGE = 2
#: Exit code when the program cannot go on (bad input, missing stream, ...).
EXIT_FAILURE = 1


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and ``-v`` / ``-q`` to a parser."""
    add_options(parser, (CONFIG, *VERBOSITY))


def config_from_args(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> BeiraConfig:
    """Load ``--config`` and apply CLI flag overrides (``None`` flags are ignored)."""
    cfg = load_config(getattr(args, "config", None))
    return override(cfg, overrides or {})


def run_main(
    main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv: list[str] | None
) -> int:
    """Parse, set logging, run, and turn known errors into a message and an exit code."""
    args = parser.parse_args(argv)
    try:
        set_log_level(args.verbose, args.quiet)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(main(args) or 0)
    except ConfigError as err:
        print(f"error: invalid configuration: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        logger.info("interrupted")
        return 130


def not_implemented(what: str, issue: str) -> int:
    """The one stub allowed: say plainly that a subcommand has not landed yet."""
    print(f"{what} is not implemented yet ({issue}).", file=sys.stderr)
    return EXIT_USAGE
