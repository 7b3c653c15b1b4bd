"""Running the dashboard: an event loop for a given time, an optional screenshot, a summary.

Used by ``beira-rt dashboard`` (:func:`main_dashboard`) and by tests
(:func:`run_dashboard`).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from beira_rt._logging import logger
from beira_rt.cli.options import add_options, opt, seconds, stream
from beira_rt.config import BeiraConfig, DashboardConfig

if TYPE_CHECKING:
    from beira_rt.dashboard.main_window import DashboardSources

__all__ = ["DashboardSummary", "add_dashboard_args", "main_dashboard", "run_dashboard"]


@dataclass(frozen=True)
class DashboardSummary:
    """What one run of the dashboard did.

    Attributes
    ----------
    seconds : float
        How long the window ran (s).
    frames_drawn, frames_dropped : int
        Frames drawn, and frame slots missed because the event loop was busy.
    samples : dict of str to int
        Samples received per stream role (``eeg``, ``predictions``, ``truth``, ``status``).
    states : dict of str to str
        State of each stream reader at the end.
    status_state : str
        The engine's last state from its status stream, or ``no status``.
    correlations : dict of str to float
        Running correlation per ROI at the end (empty without truth).
    screenshot : Path | None
        The PNG written, if any.
    """

    seconds: float
    frames_drawn: int
    frames_dropped: int
    samples: dict[str, int] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    status_state: str = "no status"
    correlations: dict[str, float] = field(default_factory=dict)
    screenshot: Path | None = None

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        samples = ", ".join(
            f"{role} {n} ({self.states.get(role, 'off')})" for role, n in self.samples.items()
        )
        text = (
            f"dashboard: {self.seconds:.1f} s, {self.frames_drawn} frames drawn, {self.frames_dropped} dropped; "
            f"samples received: {samples}; engine: {self.status_state}"
        )
        finite = {k: v for k, v in self.correlations.items() if math.isfinite(v)}
        if finite:
            text += "; r " + " ".join(f"{k}={v:+.2f}" for k, v in finite.items())
        if self.screenshot is not None:
            text += f"; screenshot {self.screenshot}"
        return text


def run_dashboard(
    sources: DashboardSources,
    cfg: DashboardConfig | None = None,
    *,
    duration: float | None = None,
    screenshot: str | Path | None = None,
    size: tuple[int, int] = (1600, 900),
    show: bool = True,
    patterns: str | Path | None = None,
    session: tuple[str, str] | None = None,
) -> DashboardSummary:
    """Open the dashboard, run the Qt event loop, optionally save a screenshot, and close.

    Parameters
    ----------
    sources : DashboardSources
        The streams to show.
    cfg : DashboardConfig | None
        Dashboard options (defaults when None).
    duration : float | None
        Seconds to run; None = until the window is closed (or Ctrl+C).
    screenshot : str | Path | None
        Save the window as this PNG at the end (needs ``duration``).
    size : (int, int)
        Window size in pixels (width, height).
    show : bool
        Show the window (with the ``offscreen`` Qt platform nothing appears on a screen).
    patterns : str | Path | None
        A patterns file or bundle for the "Patterns" tab (see :class:`Dashboard`).

    Returns
    -------
    DashboardSummary
    """
    from PyQt6 import QtCore, QtWidgets

    from beira_rt.dashboard.main_window import ROLES, Dashboard

    if screenshot is not None and duration is None:
        raise ValueError(
            "A screenshot is taken at the end of a timed run; give a duration (--duration S) too."
        )
    if duration is not None and duration <= 0:
        raise ValueError(f"The duration must be positive; got {duration} s.")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    dash = Dashboard(sources, cfg, patterns=patterns, session=session)
    dash.resize(*size)
    if show:
        dash.show()
    loop = QtCore.QEventLoop()
    saved: list[Path] = []

    def finish() -> None:
        if not loop.isRunning():
            return
        if screenshot is not None:
            dash.redraw()
            path = Path(screenshot)
            if dash.grab().save(str(path), "PNG"):
                saved.append(path)
            else:
                logger.error("could not write the screenshot %s", path)
        loop.quit()

    dash.closed.connect(loop.quit)
    if duration is not None:
        QtCore.QTimer.singleShot(round(duration * 1000), finish)
    # Ctrl+C: the redraw timer wakes Python often enough for the handler to run
    previous = signal.signal(signal.SIGINT, lambda *_: finish())
    t0 = time.perf_counter()
    try:
        loop.exec()
        summary = DashboardSummary(  # before the readers stop, so that their states are the live ones
            seconds=time.perf_counter() - t0,
            frames_drawn=dash.frames_drawn,
            frames_dropped=dash.frames_dropped,
            samples={role: dash.samples_received(role) for role in ROLES if role in dash.readers},
            states={role: dash.stream_state(role) for role in ROLES if role in dash.readers},
            status_state=dash.status_state,
            correlations=dash.correlations,
            screenshot=saved[0] if saved else None,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        dash.shutdown()
    dash.close()
    dash.deleteLater()
    app.processEvents()
    return summary


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def main_dashboard(args: argparse.Namespace, cfg: BeiraConfig) -> int:
    """``beira-rt dashboard``: open the window (or render offscreen) and print a one-line summary.

    Parameters
    ----------
    args : argparse.Namespace
        ``predictions``, ``eeg``, ``truth``, ``status``, ``screenshot``, ``duration``.
    cfg : BeiraConfig
        The configuration (``dashboard`` and ``live.outlet_name`` are used).

    Returns
    -------
    int
        Exit code: 0, or 1 when the screenshot could not be written, 2 on bad usage.
    """
    if args.screenshot is not None:
        if args.duration is None:
            print(
                "error: --screenshot needs --duration S (the screenshot is taken at the end).",
                file=sys.stderr,
            )
            return 2
        folder = Path(args.screenshot).resolve().parent
        if not folder.is_dir():
            print(
                f"error: the folder of the screenshot, {folder}, does not exist; create it first.",
                file=sys.stderr,
            )
            return 2
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.duration is not None and args.duration <= 0:
        print(f"error: --duration must be positive; got {args.duration}.", file=sys.stderr)
        return 2
    if not _has_display():
        print(
            "error: there is no display (DISPLAY is not set). Render offscreen with --screenshot PNG "
            "--duration S, or set QT_QPA_PLATFORM=offscreen.",
            file=sys.stderr,
        )
        return 2
    patterns = getattr(args, "patterns", None)
    if patterns is not None:
        from beira_rt.interpret import read_patterns

        try:
            read_patterns(patterns)
        except (OSError, ValueError, KeyError) as err:
            print(f"error: --patterns {patterns}: {err}", file=sys.stderr)
            return 2
    from beira_rt.dashboard.main_window import DashboardSources
    from beira_rt.dashboard.priority import lower_priority

    # on a machine shared with the engine, the scheduler then serves the engine first:
    # the dashboard drops frames rather than delaying predictions
    logger.debug("dashboard CPU priority: %s", lower_priority(cfg.dashboard.nice, cfg.dashboard.sched_idle))
    sources = DashboardSources.from_names(
        predictions=args.predictions or cfg.live.outlet_name,
        eeg=args.eeg,
        truth=args.truth,
        status=args.status,
    )
    summary = run_dashboard(
        sources,
        cfg.dashboard,
        duration=args.duration,
        screenshot=args.screenshot,
        patterns=patterns,
        session=tuple(args.session.split(",", 1)) if getattr(args, "session", None) else None,
    )
    print(summary.line(), flush=True)
    if args.screenshot is not None and summary.screenshot is None:
        print(f"error: could not write the screenshot {args.screenshot}.", file=sys.stderr)
        return 1
    return 0


#: The flags of ``beira-rt dashboard`` besides --config and -v / -q.
_OPTIONS = (
    stream("--predictions", "name of the prediction stream (default: live.outlet_name, BEIRA)"),
    stream("--eeg", "name of the EEG stream (default: the first stream of type EEG)"),
    stream("--truth", "name of the truth stream (default: <eeg>-truth, or the first of type sBOLDTruth)"),
    stream("--status", "name of the engine status stream (default: <predictions>-status)"),
    opt("--screenshot", metavar="PNG", help="render offscreen and save the window as PNG at the end"),
    seconds("--duration", "close after S seconds (default: when closed)"),
    opt(
        "--session",
        nargs="?",
        const="BEIRA-feedback,BEIRA-session",
        metavar="FEEDBACK,MARKERS",
        help="add the session panel (a neurofeedback session's block, baseline, feedback and rewards); "
        "the names of the runner's streams (default BEIRA-feedback,BEIRA-session)",
    ),
    opt(
        "--patterns",
        metavar="FILE",
        help="add a Patterns tab: patterns.json of beira-train interpret, or a bundle with "
        "<stem>.patterns.json beside it (e.g. beira_rt/data/demo.beira)",
    ),
)


def add_dashboard_args(parser: argparse.ArgumentParser) -> None:
    """The flags of ``beira-rt dashboard``."""
    add_options(parser, _OPTIONS)
