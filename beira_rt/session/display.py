"""The participant display: instruction, feedback bar, fixation cross, "no signal".

Its own process and window (``beira-rt display``, full screen on ``--screen``). It reads
the runner's two streams: ``BEIRA-session`` markers say which block runs (its kind and
instruction), ``BEIRA-feedback`` the value to show. In ``feedback`` blocks a thermometer
bar shows the value (z-scores clipped to +-3, percentile ranks 0..1) with the reward
threshold; ``transfer`` and ``baseline`` blocks show the instruction only, ``rest`` a
fixation cross. When no feedback sample is newer than ``no_signal_after`` seconds the bar
gives way to "no signal": stale feedback is never shown.

Latency: at every frame that shows a new feedback sample, the time from that sample's
stamp (the runner's push) to the end of the paint is kept (:attr:`ParticipantDisplay.latencies`).
"""

from __future__ import annotations

import math

import numpy as np
import pylsl
from PyQt6 import QtCore, QtGui, QtWidgets

from beira_rt.dashboard.streams import DisplayReader
from beira_rt.lsl import StreamQuery

from .feedback import FEEDBACK_CHANNELS
from .markers import MarkerReader

__all__ = ["ParticipantDisplay", "main_display"]

VALUE, SHOWN = FEEDBACK_CHANNELS.index("value"), FEEDBACK_CHANNELS.index("shown")


class ParticipantDisplay(QtWidgets.QWidget):
    """The participant's window (see the module docstring)."""

    def __init__(
        self,
        feedback: str = "BEIRA-feedback",
        session: str = "BEIRA-session",
        *,
        no_signal_after: float = 1.0,
        threshold: float | None = None,
        fps: float = 60.0,
    ) -> None:
        super().__init__()
        self.setWindowTitle("beira-rt neurofeedback")
        self.setMinimumSize(640, 480)
        self.no_signal_after = float(no_signal_after)
        self.threshold = threshold
        self.feedback = DisplayReader("feedback", StreamQuery(name=feedback), 10.0, poll_interval=0.002)
        self.markers = MarkerReader(StreamQuery(name=session))
        self.latencies: list[float] = []  #: feedback stamp -> end of the paint that showed it (s)
        self.frames = 0
        self.shown = 0
        self.state = "waiting"  #: waiting | instruction | feedback | no signal | rest | ended
        self._value = math.nan
        self._stamp = -math.inf
        self._pending: list[float] = []
        self._scale = "zscore"
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self._period_ms = max(1, round(1000 / fps))

    def start(self) -> None:
        self.feedback.start()
        self.markers.start()
        self.timer.start(self._period_ms)

    def shutdown(self) -> None:
        self.timer.stop()
        self.feedback.stop()
        self.markers.stop()

    # ------------------------------------------------------------------ frame
    def _tick(self) -> None:
        snap = self.feedback.snapshot()
        if snap is not None and len(snap):
            new = snap.stamps > self._stamp
            if new.any():
                self._pending += snap.stamps[new].tolist()
                self._stamp = float(snap.stamps[-1])
                self._take_scale()
                self._value = float(snap.data[-1, VALUE])
        self.repaint()  # synchronous: the frame is drawn when it returns
        done = pylsl.local_clock()
        self.frames += 1
        if self.state == "feedback" and self._pending:
            self.latencies.append(done - self._pending[-1])
            self.shown += 1
        self._pending = []

    def _take_scale(self) -> None:
        """The bar's scale and threshold from the runner's stream description (percentile: 0..1)."""
        meta = self.feedback.meta
        if meta is None:
            return
        self._scale = meta.extra.get("normalise", self._scale)
        if self.threshold is None and meta.extra.get("threshold"):
            self.threshold = float(meta.extra["threshold"])

    def _current(self) -> tuple[str, str]:
        with self.markers.lock:
            block, ended = self.markers.block, self.markers.ended
        if ended:
            return "ended", "The session has ended. Thank you!"
        if block is None:
            return "waiting", ""
        kind, text = block.get("kind"), block.get("instruction") or ""
        if kind == "rest":
            return "rest", text
        if kind == "feedback":
            fresh = pylsl.local_clock() - self._stamp <= self.no_signal_after
            return ("feedback" if fresh and math.isfinite(self._value) else "no signal"), text
        return "instruction", text

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        self.state, text = self._current()
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QtGui.QColor(20, 20, 24))
        p.setPen(QtGui.QColor(230, 230, 230))
        font = p.font()
        font.setPointSize(max(12, h // 28))
        p.setFont(font)
        if text:
            p.drawText(QtCore.QRectF(0, h * 0.04, w, h * 0.12), QtCore.Qt.AlignmentFlag.AlignCenter, text)
        if self.state == "rest":
            pen = QtGui.QPen(QtGui.QColor(240, 240, 240), max(4, h // 80))
            p.setPen(pen)
            c, r = QtCore.QPointF(w / 2, h / 2), min(w, h) / 12
            p.drawLine(QtCore.QPointF(c.x() - r, c.y()), QtCore.QPointF(c.x() + r, c.y()))
            p.drawLine(QtCore.QPointF(c.x(), c.y() - r), QtCore.QPointF(c.x(), c.y() + r))
        elif self.state == "feedback":
            self._bar(p, w, h)
        elif self.state in ("no signal", "ended", "waiting"):
            label = {"no signal": "no signal", "ended": "", "waiting": "waiting for the session"}[self.state]
            p.setPen(QtGui.QColor(240, 170, 60) if self.state == "no signal" else QtGui.QColor(150, 150, 150))
            p.drawText(QtCore.QRectF(0, h * 0.4, w, h * 0.2), QtCore.Qt.AlignmentFlag.AlignCenter, label)
        p.end()

    def _bar(self, p: QtGui.QPainter, w: int, h: int) -> None:
        """A thermometer: the frame, the level, the threshold line."""
        lo, hi = (-3.0, 3.0) if self._scale == "zscore" else (0.0, 1.0)
        frac = float(np.clip((self._value - lo) / (hi - lo), 0.0, 1.0))
        bw, top, bottom = w * 0.12, h * 0.2, h * 0.9
        x = (w - bw) / 2
        p.setPen(QtGui.QPen(QtGui.QColor(200, 200, 200), 3))
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(QtCore.QRectF(x, top, bw, bottom - top), 12, 12)
        level = bottom - frac * (bottom - top)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(QtGui.QColor(70, 180, 110))
        p.drawRoundedRect(QtCore.QRectF(x + 6, level, bw - 12, bottom - level - 6), 8, 8)
        if self.threshold is not None:
            ty = bottom - float(np.clip((self.threshold - lo) / (hi - lo), 0, 1)) * (bottom - top)
            p.setPen(QtGui.QPen(QtGui.QColor(240, 200, 60), 4))
            p.drawLine(QtCore.QPointF(x - 20, ty), QtCore.QPointF(x + bw + 20, ty))

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies) * 1e3
        return {
            "frames": self.frames,
            "feedback_frames": self.shown,
            "feedback_to_frame_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
            "feedback_to_frame_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
        }


def main_display(args) -> int:
    """``beira-rt display``: full screen on ``--screen`` (or windowed) until closed or ``--duration``."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    win = ParticipantDisplay(args.feedback, args.session)
    screens = app.screens()
    if screens and 0 <= args.screen < len(screens):
        win.setScreen(screens[args.screen])
        win.move(screens[args.screen].geometry().topLeft())
    win.resize(1024, 768)
    win.start()
    if args.windowed or app.platformName() == "offscreen":
        win.show()
    else:
        win.showFullScreen()
    if args.duration is not None:
        QtCore.QTimer.singleShot(int(args.duration * 1000), app.quit)
    import signal

    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    keepalive = QtCore.QTimer()
    keepalive.start(200)  # lets Python handle the signals while Qt runs
    keepalive.timeout.connect(lambda: None)
    app.exec()
    if args.screenshot:
        win.grab().save(args.screenshot)
    win.shutdown()
    s = win.summary()
    print(
        "display: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items())
    )
    return 0
