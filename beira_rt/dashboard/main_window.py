"""The dashboard window: EEG, ROI predictions with truth, and status, redrawn from LSL snapshots.

The LSL readers run in their own threads (:mod:`beira_rt.dashboard.streams`);
this window only copies their newest samples on a timer. A frame whose timer
slot passed while the event loop was busy is dropped (counted in
:attr:`Dashboard.frames_dropped`), never caught up, and the readers keep every
sample meanwhile.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from beira_rt.config import DashboardConfig
from beira_rt.dashboard.panel import ENGINE_KEYS, StatusPanel, description_rows, engine_rows, stream_text
from beira_rt.dashboard.streams import DisplayReader, StatusReader
from beira_rt.dashboard.widgets import LEFT_COLOR, RIGHT_COLOR, TRUTH_COLOR, EegView, RoiGrid
from beira_rt.lsl import EEG_TYPE, TRUTH_TYPE, StreamQuery, StreamReader, status_name, truth_name

__all__ = ["BOLD_WINDOWS", "EEG_WINDOWS", "ROLES", "Dashboard", "DashboardSources"]

#: Choices of the time-window selectors, in s (the configured value is added when missing).
EEG_WINDOWS = (5.0, 10.0, 30.0, 60.0)
BOLD_WINDOWS = (30.0, 60.0, 120.0, 300.0)
ROLES = ("eeg", "predictions", "truth", "status")
_STREAM_ROWS = {"eeg": "EEG", "predictions": "Predictions", "truth": "Truth", "status": "Status"}
_CORRELATION_INTERVAL = 0.5  # s between recomputations of the running correlations
_PANEL_INTERVAL = 0.25  # s between status panel updates
# s between redraws of the ROI grid: its traces (10 Hz predictions over a 120 s window) scroll by
# about a pixel in 0.5 s, and a repaint of its 8 plots costs more than a frame of the EEG
_ROI_INTERVAL = 0.5


@dataclass(frozen=True)
class DashboardSources:
    """The streams the dashboard shows (None = not shown).

    Attributes
    ----------
    predictions : StreamQuery
        The engine's prediction stream (type ``sBOLD``).
    status : StreamQuery | None
        The engine's status stream (type ``BEIRAStatus``).
    eeg : StreamQuery | None
        An EEG stream.
    truth : StreamQuery | None
        A truth stream (type ``sBOLDTruth``, e.g. from ``beira-replay``).
    """

    predictions: StreamQuery
    status: StreamQuery | None = None
    eeg: StreamQuery | None = None
    truth: StreamQuery | None = None

    @classmethod
    def from_names(
        cls,
        predictions: str = "BEIRA",
        eeg: str | None = None,
        truth: str | None = None,
        status: str | None = None,
    ) -> DashboardSources:
        """Selectors from stream names, with the defaults of the CLI.

        Parameters
        ----------
        predictions : str
            Name of the prediction stream.
        eeg : str | None
            Name of the EEG stream; None = the first stream of type ``EEG``.
        truth : str | None
            Name of the truth stream; None = ``<eeg>-truth`` when ``eeg`` is named,
            else the first stream of type ``sBOLDTruth``.
        status : str | None
            Name of the status stream; None = ``<predictions>-status``.
        """
        return cls(
            predictions=StreamQuery(name=predictions),
            status=StreamQuery(name=status or status_name(predictions)),
            eeg=StreamQuery(name=eeg) if eeg else StreamQuery(stype=EEG_TYPE),
            truth=StreamQuery(name=truth or truth_name(eeg))
            if (truth or eeg)
            else StreamQuery(stype=TRUTH_TYPE),
        )


def _patterns_view(path: str | Path) -> QtWidgets.QWidget:
    from beira_rt.dashboard.patterns import PatternsView

    return PatternsView(path)


def _choices(defaults: tuple[float, ...], configured: float) -> list[float]:
    return sorted(set(defaults) | {float(configured)})


class Dashboard(QtWidgets.QMainWindow):
    """The live dashboard window.

    Emits :attr:`closed` when the window is closed (the readers are stopped by then).

    Parameters
    ----------
    sources : DashboardSources
        Which streams to read.
    cfg : DashboardConfig | None
        Redraw rate, initial windows, channels shown, staleness; defaults when None.
    start : bool
        Start the readers and the redraw timer now (else call :meth:`start`).
    patterns : str | Path | None
        ``patterns.json`` of ``beira-train interpret`` (or a bundle with ``<stem>.patterns.json``):
        adds a "Patterns" tab (:class:`beira_rt.dashboard.patterns.PatternsView`).
    """

    closed = QtCore.pyqtSignal()

    def __init__(
        self,
        sources: DashboardSources,
        cfg: DashboardConfig | None = None,
        *,
        start: bool = True,
        patterns: str | Path | None = None,
        session: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.patterns_view = None if patterns is None else _patterns_view(patterns)
        self.session_panel = None
        if session is not None:  # the operator's view of a neurofeedback session
            from beira_rt.dashboard.session_panel import SessionPanel

            self.session_panel = SessionPanel(*session)
        self.cfg = cfg or DashboardConfig()
        self.sources = sources
        self.setWindowTitle("beira-rt dashboard")
        self.frames_drawn = 0
        self.frames_dropped = 0
        self.eeg_windows = _choices(EEG_WINDOWS, self.cfg.window_seconds)
        self.bold_windows = _choices(BOLD_WINDOWS, self.cfg.bold_window_seconds)
        self.eeg_window = float(self.cfg.window_seconds)
        self.bold_window = float(self.cfg.bold_window_seconds)
        self.readers: dict[str, StreamReader] = {}
        stale = self.cfg.stale_seconds
        if sources.eeg is not None:
            self.readers["eeg"] = DisplayReader(
                "eeg", sources.eeg, max(self.eeg_windows), stale_seconds=stale, dejitter=True
            )
        self.readers["predictions"] = DisplayReader(
            "predictions", sources.predictions, max(self.bold_windows), stale_seconds=stale
        )
        if sources.truth is not None:
            self.readers["truth"] = DisplayReader(
                "truth", sources.truth, max(self.bold_windows), stale_seconds=stale
            )
        if sources.status is not None:
            self.readers["status"] = StatusReader(sources.status, stale_seconds=stale)
        self._build()
        self._period = 1.0 / self.cfg.fps
        self._last_tick: float | None = None
        self._last_corr = -math.inf
        self._last_panel = -math.inf
        self._last_roi = -math.inf
        self._roi_key: tuple[bool, bool, float] = (False, False, math.nan)
        self._fps_clock, self._fps_frames, self.measured_fps = time.perf_counter(), 0, math.nan
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, round(1000 * self._period)))
        self.timer.timeout.connect(self._tick)
        self._started = False
        if start:
            self.start()

    # ------------------------------------------------------------------ construction

    def _build(self) -> None:
        pg.setConfigOptions(antialias=False, background="w", foreground="#222222")
        bar = self.addToolBar("windows")
        bar.setMovable(False)
        self.eeg_combo = self._window_combo(bar, "EEG window ", self.eeg_windows, self.eeg_window, "eeg")
        bar.addSeparator()
        self.bold_combo = self._window_combo(
            bar, " BOLD window ", self.bold_windows, self.bold_window, "bold"
        )
        bar.addSeparator()
        legend = QtWidgets.QLabel(
            f"  sBOLD: <span style='color:{LEFT_COLOR}'>━━ Left</span> / "
            f"<span style='color:{RIGHT_COLOR}'>━━ Right</span> predicted, "
            f"<span style='color:{TRUTH_COLOR}'>━━ truth</span>; "
            "r = correlation with the truth over the BOLD window (matched by timestamp)"
        )
        bar.addWidget(legend)
        self.eeg_view = EegView(self.cfg.eeg_channels_shown)
        self.roi_grid = RoiGrid()
        sections = {
            "Engine (status stream)": (*ENGINE_KEYS, "BOLD delay"),
            "Streams (read here)": tuple(_STREAM_ROWS.values()),
            "Dashboard": ("Display",),
        }
        self.panel = StatusPanel(sections)
        self.panel.setMinimumWidth(270)
        self.panel.setMaximumWidth(380)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        if "eeg" in self.readers:
            split.addWidget(self.eeg_view)
        split.addWidget(self.roi_grid)
        split.addWidget(self.panel)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 5)
        split.setStretchFactor(2, 0)
        live: QtWidgets.QWidget = split
        if self.session_panel is not None:
            vertical = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
            vertical.addWidget(split)
            vertical.addWidget(self.session_panel)
            vertical.setStretchFactor(0, 3)
            vertical.setStretchFactor(1, 2)
            live = vertical
        self.setCentralWidget(live if self.patterns_view is None else self.patterns_view.tabs_with(live))
        self.resize(1600, 900)

    def _window_combo(
        self, bar: QtWidgets.QToolBar, text: str, choices: list[float], current: float, which: str
    ) -> QtWidgets.QComboBox:
        bar.addWidget(QtWidgets.QLabel(text))
        combo = QtWidgets.QComboBox()
        for value in choices:
            combo.addItem(f"{value:g} s", value)
        combo.setCurrentIndex(choices.index(current))
        combo.currentIndexChanged.connect(lambda i, w=which, c=choices: self.set_windows(**{w: c[i]}))
        bar.addWidget(combo)
        return combo

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the readers and the redraw timer."""
        if self._started:
            return
        self._started = True
        for reader in self.readers.values():
            reader.start()
        if self.session_panel is not None:
            self.session_panel.start()
        self.timer.start()

    def shutdown(self) -> None:
        """Stop the timer and the readers (closing their inlets). Idempotent."""
        self.timer.stop()
        for reader in self.readers.values():
            if reader.state != "stopped":
                reader.stop()
        if self.session_panel is not None:
            self.session_panel.stop()

    def closeEvent(self, event: QtGui.QCloseEvent | None) -> None:
        self.shutdown()
        super().closeEvent(event)
        self.closed.emit()

    def set_windows(self, eeg: float | None = None, bold: float | None = None) -> None:
        """Set the visible EEG and/or BOLD time windows (s); each must be one of the selector's choices."""
        for value, choices, combo, name in (
            (eeg, self.eeg_windows, self.eeg_combo, "EEG"),
            (bold, self.bold_windows, self.bold_combo, "BOLD"),
        ):
            if value is None:
                continue
            if float(value) not in choices:
                raise ValueError(f"The {name} window {value} s is not offered; choose one of {choices}.")
            combo.blockSignals(True)
            combo.setCurrentIndex(choices.index(float(value)))
            combo.blockSignals(False)
        if eeg is not None:
            self.eeg_window = float(eeg)
        if bold is not None:
            self.bold_window = float(bold)

    # ------------------------------------------------------------------ state for tests and the CLI

    def stream_state(self, role: str) -> str:
        """State of the reader of ``role`` (see :mod:`beira_rt.dashboard.streams`), or ``off``."""
        reader = self.readers.get(role)
        return reader.state if reader is not None else "off"

    def samples_received(self, role: str) -> int:
        """Samples the reader of ``role`` received (0 when off)."""
        reader = self.readers.get(role)
        return reader.n_received if reader is not None else 0

    def n_points(self, role: str) -> int:
        """Samples of ``role`` (``eeg``, ``predictions``, ``truth``) in the visible window at the last frame."""
        return {
            "eeg": self.eeg_view.n_points,
            "predictions": self.roi_grid.n_points,
            "truth": self.roi_grid.n_truth_points,
        }[role]

    @property
    def status_state(self) -> str:
        """The engine's state from its status stream, or ``no status`` when the stream is absent, lost or silent."""
        reader = self.readers.get("status")
        if not isinstance(reader, StatusReader) or reader.state != "connected" or reader.latest is None:
            return "no status"
        return str(reader.latest.get("state", "unknown"))

    @property
    def correlations(self) -> dict[str, float]:
        """Running correlation per ROI against the truth over the visible BOLD window (NaN if undefined)."""
        return dict(self.roi_grid.correlations)

    def status_text(self, key: str) -> str:
        """The text the status panel shows for ``key`` (e.g. ``"Engine"``, ``"Predictions"``)."""
        return self.panel.text(key)

    # ------------------------------------------------------------------ drawing

    def _tick(self) -> None:
        t = time.perf_counter()
        if self._last_tick is not None:
            slots = (t - self._last_tick) / self._period
            if slots >= 1.5:
                self.frames_dropped += round(slots) - 1
        self._last_tick = t
        self.redraw()
        self.frames_drawn += 1
        self._fps_frames += 1
        if t - self._fps_clock >= 1.0:
            self.measured_fps = self._fps_frames / (t - self._fps_clock)
            self._fps_clock, self._fps_frames = t, 0

    def redraw(self) -> None:
        """Copy the newest samples from the readers and draw one frame."""
        import pylsl

        now = pylsl.local_clock()
        wall = time.perf_counter()
        eeg = self.readers.get("eeg")
        if eeg is not None:
            meta = eeg.meta
            if meta is not None:
                self.eeg_view.set_channels(meta.labels, meta.units[0] if meta.units else "")
            chosen = self.eeg_view.selected()
            snap = eeg.snapshot(self.eeg_window, chosen) if chosen else None
            title = f"EEG · {meta.name} · {meta.sfreq:g} Hz" if meta is not None else "EEG"
            if eeg.state != "connected":
                title += f" · {eeg.state} ({eeg.query.describe()})"
            self.eeg_view.draw(snap, chosen, now, self.eeg_window, title)
        pred, truth = self.readers["predictions"], self.readers.get("truth")
        if pred.meta is not None:
            self.roi_grid.set_rois(pred.meta.labels)
        elif truth is not None and truth.meta is not None:  # the truth alone, until predictions come
            self.roi_grid.set_rois(truth.meta.labels)
        # redraw the ROI grid a few times a second, and at once when its first samples arrive or
        # the window changes (a full repaint of its 8 plots is the costly part of a frame)
        key = (pred.n_received > 0, truth is not None and truth.n_received > 0, self.bold_window)
        if key != self._roi_key or wall - self._last_roi >= _ROI_INTERVAL:
            self._roi_key, self._last_roi = key, wall
            update_corr = wall - self._last_corr >= _CORRELATION_INTERVAL
            if update_corr:
                self._last_corr = wall
            self.roi_grid.draw(
                pred.snapshot(self.bold_window),
                truth.snapshot(self.bold_window) if truth is not None else None,
                truth.meta.labels if truth is not None and truth.meta is not None else (),
                now,
                self.bold_window,
                update_correlation=update_corr,
            )
        if wall - self._last_panel >= _PANEL_INTERVAL:
            self._last_panel = wall
            self._update_panel()
            if self.session_panel is not None:
                self.session_panel.redraw()

    def _update_panel(self) -> None:
        status = self.readers.get("status")
        message, detail = None, "not requested"
        if isinstance(status, StatusReader):
            state = status.state
            message = status.latest if state == "connected" else None
            detail = {
                "waiting": "no stream yet",
                "lost": "stream lost",
                "stalled": "stream silent",
                "connected": "no message yet",
            }.get(state, state)
        rows = engine_rows(message, detail)
        pred_meta = self.readers["predictions"].meta
        rows.update(description_rows(pred_meta.extra if pred_meta is not None else {}, message is not None))
        if self.patterns_view is not None:  # warns when the engine runs another bundle
            self.patterns_view.set_engine_hash(rows.get("Model", ""))
        engine_state = self.status_state
        for key, text in rows.items():
            self.panel.set_text(key, text, engine_state if key == "Engine" else None)
        for role, key in _STREAM_ROWS.items():
            reader = self.readers.get(role)
            if reader is None:
                self.panel.set_text(key, "off")
                continue
            name = reader.meta.name if reader.meta is not None else None
            state = reader.state
            text = stream_text(
                state,
                name,
                reader.measured_rate,
                reader.n_received,
                reader.n_gaps if role != "status" else None,
            )
            if state == "waiting":
                text = f"waiting for {reader.query.describe()}"
            self.panel.set_text(key, text, state)
        fps = f"{self.measured_fps:.0f} fps · " if math.isfinite(self.measured_fps) else ""
        self.panel.set_text(
            "Display", f"{fps}{self.frames_drawn} frames drawn · {self.frames_dropped} dropped"
        )
