"""Plot widgets of the dashboard: the stacked EEG view and the grid of ROI traces.

Both take :class:`~beira_rt.lsl.Snapshot` copies and draw them on a
time axis relative to "now" (s, LSL local clock); they never touch LSL.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtWidgets

from beira_rt.dashboard.compute import lane_scale, matched_correlation, minmax_decimate
from beira_rt.lsl import QUALITY_LABEL, Snapshot

__all__ = ["LEFT_COLOR", "RIGHT_COLOR", "TRUTH_COLOR", "EegView", "RoiGrid", "group_rois"]

LEFT_COLOR = "#1f77b4"
RIGHT_COLOR = "#d62728"
TRUTH_COLOR = "#7f7f7f"
EEG_COLOR = "#1a1a2e"
_UNITS = {"microvolts": "µV", "microvolt": "µV", "uv": "µV", "millivolts": "mV", "volts": "V"}
_CLIP_LANES = 2.0
#: Upper bound on the points drawn per trace (min-max decimation above it).
MAX_BINS = 1200
_SCALING_INTERVAL = 0.25  # s between re-estimates of the EEG lanes' centre and scale


def _finite_range(y: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(min, max) of ``lo``, ``hi`` and the finite values of ``y``."""
    finite = y[np.isfinite(y)]
    if finite.size:
        lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return lo, hi


def group_rois(labels: tuple[str, ...] | list[str]) -> list[tuple[str, int | None, int | None]]:
    """Pair ROI channels by structure: rows of (structure, index of Left, index of Right).

    Labels of the form ``Left X`` / ``Right X`` (Harvard-Oxford spelling) are
    paired by ``X``; any other label gets a row of its own in the left column, except the
    engine's ``quality`` channel.

    Parameters
    ----------
    labels : sequence of str
        Channel labels of the prediction stream.

    Returns
    -------
    list of (str, int | None, int | None)
        One row per structure, in order of first appearance.
    """
    rows: dict[str, list[int | None]] = {}
    for i, label in enumerate(labels):
        if label == QUALITY_LABEL:  # the engine's window quality, not an ROI (shown in the status panel)
            continue
        side, _, rest = label.partition(" ")
        key = side.lower()
        if key in ("left", "right") and rest:
            slot = rows.setdefault(rest, [None, None])
            col = 0 if key == "left" else 1
            if slot[col] is None:
                slot[col] = i
                continue
        rows[label] = [i, None]
    return [(name, pair[0], pair[1]) for name, pair in rows.items()]


class EegView(QtWidgets.QWidget):
    """Scrolling, stacked, auto-scaled EEG with a checkable channel list.

    Parameters
    ----------
    n_shown : int
        Channels checked when a stream connects (the first ones).
    """

    def __init__(self, n_shown: int = 16, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.n_shown = int(n_shown)
        self.labels: tuple[str, ...] = ()
        self.unit = ""
        self.n_points = 0
        self._scale = math.nan
        self._center = np.zeros(0)
        self._center_key: tuple[int, ...] = ()
        self._last_scaling = -math.inf
        self._window = math.nan
        self.n_traces = 0
        # all lanes in one curve, separated by NaN: one path and one setData per frame
        self._curve = pg.PlotCurveItem(pen=pg.mkPen(EEG_COLOR, width=1), connect="finite")
        self.channel_list = QtWidgets.QListWidget()
        self.channel_list.setMaximumWidth(110)
        self.channel_list.itemChanged.connect(self._selection_changed)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "time (s, 0 = now)")
        self.plot.addItem(self._curve)
        # the title is a plain label: a plot title would set the plot's minimum width to its text
        self.title = QtWidgets.QLabel("EEG: waiting for a stream")
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        side = QtWidgets.QVBoxLayout()
        side.addWidget(QtWidgets.QLabel("Channels"))
        side.addWidget(self.channel_list, 1)
        buttons = QtWidgets.QHBoxLayout()
        for text, state in (("all", True), ("none", False)):
            button = QtWidgets.QPushButton(text)
            button.setMaximumWidth(52)
            button.clicked.connect(lambda _=False, s=state: self.set_all(s))
            buttons.addWidget(button)
        side.addLayout(buttons)
        main = QtWidgets.QVBoxLayout()
        main.addWidget(self.title)
        main.addWidget(self.plot, 1)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(side)
        layout.addLayout(main, 1)

    def set_channels(self, labels: tuple[str, ...], unit: str = "") -> None:
        """Show a new channel set; the first ``n_shown`` are checked."""
        if labels == self.labels:
            return
        self.labels, self.unit = labels, unit
        self.channel_list.blockSignals(True)
        self.channel_list.clear()
        for i, label in enumerate(labels):
            item = QtWidgets.QListWidgetItem(label)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                QtCore.Qt.CheckState.Checked if i < self.n_shown else QtCore.Qt.CheckState.Unchecked
            )
            self.channel_list.addItem(item)
        self.channel_list.blockSignals(False)
        self._selection_changed()

    def selected(self) -> list[int]:
        """Indices of the checked channels, in stream order."""
        return [
            i
            for i in range(self.channel_list.count())
            if self.channel_list.item(i).checkState() == QtCore.Qt.CheckState.Checked
        ]

    def select(self, labels: list[str]) -> None:
        """Check exactly the channels with these labels."""
        wanted = set(labels)
        self.channel_list.blockSignals(True)
        for i in range(self.channel_list.count()):
            item = self.channel_list.item(i)
            item.setCheckState(
                QtCore.Qt.CheckState.Checked if item.text() in wanted else QtCore.Qt.CheckState.Unchecked
            )
        self.channel_list.blockSignals(False)
        self._selection_changed()

    def set_all(self, checked: bool) -> None:
        self.select(list(self.labels) if checked else [])

    def _selection_changed(self, *_args: object) -> None:
        chosen = self.selected()
        self.n_traces = len(chosen)
        ticks = [(-lane, self.labels[i]) for lane, i in enumerate(chosen)]
        self.plot.getAxis("left").setTicks([ticks, []])
        self.plot.setYRange(-max(len(chosen), 1) + 0.5, 0.5, padding=0.02)

    def draw(self, snap: Snapshot | None, chosen: list[int], now: float, window: float, title: str) -> None:
        """Draw the selected channels of ``snap`` over the last ``window`` s.

        Parameters
        ----------
        snap : Snapshot | None
            Samples of the selected channels only (columns in the order of ``chosen``).
        chosen : list of int
            The channel indices ``snap`` holds.
        now : float
            LSL local clock at the right edge of the plot (s).
        window : float
            Visible span in s.
        title : str
            Stream description for the plot title.
        """
        if window != self._window:
            self.plot.setXRange(-window, 0.0, padding=0)
            self._window = window
        if snap is None or len(snap) == 0 or not chosen:
            self.n_points = 0
            self._curve.setData([], [])
            self._set_title(title)
            return
        visible = snap.since(now - window)
        self.n_points = len(visible)
        if self.n_points == 0:
            self._curve.setData([], [])
            self._set_title(title)
            return
        y = visible.data
        wall = time.perf_counter()
        key = tuple(chosen)
        if key != self._center_key or wall - self._last_scaling >= _SCALING_INTERVAL:
            # centre and scale from <= 2000 samples, a few times a second: cheap and stable
            sub = y[:: max(1, len(visible) // 2000)]
            self._center = np.median(sub, axis=0)
            scale = lane_scale(sub - self._center)
            self._scale = scale if not math.isfinite(self._scale) else 0.8 * self._scale + 0.2 * scale
            self._center_key, self._last_scaling = key, wall
        center = self._center
        width = max(100, min(MAX_BINS, int(self.plot.width())))
        x, yd = minmax_decimate(visible.stamps - now, y, width)
        n_lanes, m = yd.shape[1], x.shape[0]
        xs = np.empty((n_lanes, m + 1))
        xs[:, :m] = x
        xs[:, m] = np.nan
        ys = np.empty((n_lanes, m + 1))
        # a wild channel (a loose electrode) is clipped at 2 lanes so that the others stay legible
        ys[:, :m] = np.clip((yd - center).T / self._scale, -_CLIP_LANES, _CLIP_LANES)
        ys[:, :m] -= np.arange(n_lanes)[:, None]
        ys[:, m] = np.nan
        self._curve.setData(xs.ravel(), ys.ravel())
        unit = f" {_UNITS.get(self.unit.lower(), self.unit)}" if self.unit else ""
        self._set_title(f"{title} · lane = {self._scale:.2g}{unit}")

    def _set_title(self, text: str) -> None:
        if self.title.text() != text:
            self.title.setText(text)


class RoiGrid(pg.GraphicsLayoutWidget):
    """The predicted ROI traces, one plot per ROI, Left and Right side by side, with truth overlays."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: tuple[str, ...] = ()
        self.plots: dict[int, pg.PlotItem] = {}
        self.pred_curves: dict[int, pg.PlotDataItem] = {}
        self.truth_curves: dict[int, pg.PlotDataItem] = {}
        self.correlations: dict[str, float] = {}
        self.n_points = 0
        self.n_truth_points = 0
        self._titles: dict[int, str] = {}
        self._yranges: dict[int, tuple[float, float]] = {}
        self._window = math.nan
        self.addLabel("sBOLD predictions: waiting for a stream", col=0, colspan=2)

    def set_rois(self, labels: tuple[str, ...]) -> None:
        """Build one plot per ROI (rows by structure, Left / Right columns)."""
        if labels == self.labels:
            return
        self.clear()
        self.labels = labels
        self.plots.clear()
        self.pred_curves.clear()
        self.truth_curves.clear()
        self._titles.clear()
        self._yranges.clear()
        first: pg.PlotItem | None = None
        rows = group_rois(labels)
        for row, (_name, left, right) in enumerate(rows):
            for col, idx in enumerate((left, right)):
                if idx is None:
                    continue
                plot = self.addPlot(row=row, col=col)
                plot.setMenuEnabled(False)
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                if row == len(rows) - 1:
                    plot.setLabel("bottom", "prediction time (s, 0 = now)")
                color = RIGHT_COLOR if col == 1 else LEFT_COLOR
                # 1-pixel pens: wider ones are drawn segment by segment, several times slower
                plot.disableAutoRange()  # the y range is set in draw(), with hysteresis
                truth = plot.plot(pen=pg.mkPen(TRUTH_COLOR, width=1), name="truth")
                pred = plot.plot(pen=pg.mkPen(color, width=1), name="predicted")
                self.plots[idx], self.pred_curves[idx], self.truth_curves[idx] = plot, pred, truth
                self._set_title(idx, plot, math.nan)
                if first is None:
                    first = plot
                else:
                    plot.setXLink(first)
        self._window = math.nan

    def _fit_y(self, idx: int, lo: float, hi: float) -> None:
        """Fit the y range of plot ``idx`` to [lo, hi], with hysteresis.

        The range changes only when the data leave it or fill less than half of it: an
        unchanged range keeps the axis cached, and re-drawing axes is much of a frame's cost.
        """
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        cur = self._yranges.get(idx)
        if cur is not None and cur[0] <= lo and hi <= cur[1] and (hi - lo) >= 0.5 * (cur[1] - cur[0]):
            return
        pad = 0.1 * (hi - lo)
        self._yranges[idx] = (lo - pad, hi + pad)
        self.plots[idx].setYRange(lo - pad, hi + pad, padding=0)

    def _set_title(self, idx: int, plot: pg.PlotItem, r: float) -> None:
        text = f"{self.labels[idx]}   r = {r:+.2f}" if math.isfinite(r) else self.labels[idx]
        if self._titles.get(idx) != text:
            plot.setTitle(text, size="9pt")
            plot.titleLabel.setMinimumWidth(0)  # let the plot shrink below the width of its title
            self._titles[idx] = text

    def draw(
        self,
        pred: Snapshot | None,
        truth: Snapshot | None,
        truth_labels: tuple[str, ...],
        now: float,
        window: float,
        *,
        update_correlation: bool = True,
    ) -> None:
        """Draw the last ``window`` s of predictions and truth; update the running correlations.

        Parameters
        ----------
        pred : Snapshot | None
            Prediction samples, columns in the order of :attr:`labels`.
        truth : Snapshot | None
            Truth samples, columns labelled by ``truth_labels`` (matched to ROIs by label).
        truth_labels : tuple of str
            Channel labels of the truth stream.
        now : float
            LSL local clock at the right edge (s).
        window : float
            Visible span in s.
        update_correlation : bool
            Recompute the correlations (they need not change every frame).
        """
        if window != self._window and self.plots:
            next(iter(self.plots.values())).setXRange(-window, 0.0, padding=0)
            self._window = window
        vis = pred.since(now - window) if pred is not None else None
        tvis = truth.since(now - window) if truth is not None else None
        self.n_points = len(vis) if vis is not None else 0
        self.n_truth_points = len(tvis) if tvis is not None else 0
        columns = {label: j for j, label in enumerate(truth_labels)}
        bins = max(100, min(MAX_BINS, int(self.width() / 2)))  # two plots side by side
        for idx, curve in self.pred_curves.items():
            lo, hi = math.inf, -math.inf
            if vis is not None and len(vis):
                x, y = minmax_decimate(vis.stamps - now, vis.data[:, idx], bins)
                curve.setData(x, y)
                lo, hi = _finite_range(y, lo, hi)
            else:
                curve.setData([], [])
            j = columns.get(self.labels[idx])
            if tvis is not None and len(tvis) and j is not None:
                x, y = minmax_decimate(tvis.stamps - now, tvis.data[:, j], bins)
                self.truth_curves[idx].setData(x, y)
                lo, hi = _finite_range(y, lo, hi)
            else:
                self.truth_curves[idx].setData([], [])
            self._fit_y(idx, lo, hi)
        if not update_correlation:
            return
        self.correlations = {}
        if vis is not None and tvis is not None and len(vis) and len(tvis):
            matched = [i for i in range(len(self.labels)) if self.labels[i] in columns]
            if matched:
                r = matched_correlation(
                    vis.stamps,
                    vis.data[:, matched],
                    tvis.stamps,
                    tvis.data[:, [columns[self.labels[i]] for i in matched]],
                )
                self.correlations = {self.labels[i]: float(r[k]) for k, i in enumerate(matched)}
        for idx, plot in self.plots.items():
            self._set_title(idx, plot, self.correlations.get(self.labels[idx], math.nan))
