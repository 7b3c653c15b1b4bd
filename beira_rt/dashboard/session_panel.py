"""The operator's session panel of the dashboard: block and time left, baseline, feedback, rewards.

Reads the runner's ``BEIRA-feedback`` and ``BEIRA-session`` streams (the participant
display reads the same ones): the running block and the seconds left in it, the baseline
statistics once a baseline block has ended, the signal state, the reward rate of the
feedback blocks so far, and the feedback value over the last minutes with every block
shaded by its kind.
"""

from __future__ import annotations

import math

import numpy as np
import pylsl
import pyqtgraph as pg
from PyQt6 import QtWidgets

from beira_rt.dashboard.streams import DisplayReader
from beira_rt.lsl import StreamQuery
from beira_rt.session.feedback import FEEDBACK_CHANNELS
from beira_rt.session.markers import MarkerReader

__all__ = ["SessionPanel"]

KIND_COLOURS = {"baseline": (120, 150, 220, 60), "feedback": (90, 190, 120, 60), "transfer": (220, 200, 80, 60),
                "rest": (160, 160, 160, 40)}  # fmt: skip
VALUE, REWARD = FEEDBACK_CHANNELS.index("value"), FEEDBACK_CHANNELS.index("reward")


class SessionPanel(QtWidgets.QWidget):
    """See the module docstring; :meth:`start`, :meth:`redraw` (from the dashboard's timer), :meth:`stop`."""

    def __init__(
        self, feedback: str = "BEIRA-feedback", session: str = "BEIRA-session", window: float = 300.0
    ):
        super().__init__()
        self.window = float(window)
        self.feedback = DisplayReader("session feedback", StreamQuery(name=feedback), self.window)
        self.markers = MarkerReader(StreamQuery(name=session))
        self.info = QtWidgets.QLabel("waiting for the session streams")
        self.info.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "feedback value")
        self.plot.setLabel("bottom", "s from the session start")
        self.plot.showGrid(y=True, alpha=0.3)
        self.curve = self.plot.plot(pen=pg.mkPen("#222", width=1.5))
        self._regions: dict[int, pg.LinearRegionItem] = {}
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.info)
        layout.addWidget(self.plot, 1)
        self.text = ""

    def start(self) -> None:
        self.feedback.start()
        self.markers.start()

    def stop(self) -> None:
        self.feedback.stop()
        self.markers.stop()

    def redraw(self) -> None:
        now = pylsl.local_clock()
        with self.markers.lock:
            events = list(self.markers.events)
            block = dict(self.markers.block) if self.markers.block else None
            ended = self.markers.ended
        # the session start: its marker, or (a panel opened later) any block's start minus its offset
        t0 = next((e["stamp"] for e in events if e["event"] == "session_start"), math.nan)
        if not math.isfinite(t0):
            t0 = next((e["stamp"] - e["start"] for e in events if e["event"] == "block_start"), math.nan)
        if not math.isfinite(t0) and block is not None:
            t0 = block["stamp"] - block["start"]
        starts = {e["index"]: e for e in events if e["event"] == "block_start"}
        ends = {e["index"]: e["stamp"] for e in events if e["event"] == "block_end"}
        for i, e in starts.items():
            if i not in self._regions and math.isfinite(t0):
                a = e["stamp"] - t0
                region = pg.LinearRegionItem(
                    (a, a + e["duration"]),
                    movable=False,
                    brush=pg.mkBrush(*KIND_COLOURS.get(e["kind"], (200, 200, 200, 40))),
                )
                region.setZValue(-10)
                self.plot.addItem(region)
                self._regions[i] = region
        snap = self.feedback.snapshot()
        rewards = []
        if snap is not None and len(snap) and math.isfinite(t0):
            self.curve.setData(snap.stamps - t0, snap.data[:, VALUE], connect="finite")
            for i, e in starts.items():
                if e["kind"] == "feedback":
                    m = (snap.stamps >= e["stamp"]) & (snap.stamps < ends.get(i, math.inf))
                    if m.any():
                        rewards.append(float(snap.data[m, REWARD].mean()))
        baseline = next((e for e in reversed(events) if e["event"] == "baseline"), None)
        lost = next(
            (
                e["event"] == "signal_lost"
                for e in reversed(events)
                if e["event"] in ("signal_lost", "signal_back")
            ),
            False,
        )
        parts = []
        if ended:
            parts.append("<b>session ended</b>")
        elif block is not None:
            left = block["stamp"] + block["duration"] - now
            parts.append(
                f"<b>block {block['index'] + 1}: {block['name']} ({block['kind']})</b>, {max(0.0, left):.1f} s left"
            )
        elif math.isfinite(t0):
            parts.append("between blocks")
        else:
            parts.append(f"waiting for the session ({self.markers.state})")
        if baseline is not None:
            parts.append(
                f"baseline: mean {baseline['mean']:.3g}, sd {baseline['std']:.3g} (n {baseline['n']})"
            )
        if rewards:
            parts.append(f"reward rate {100 * np.mean(rewards):.0f} % over {len(rewards)} feedback block(s)")
        parts.append(
            "<span style='color:#c60'>no signal</span>" if lost else f"feedback {self.feedback.state}"
        )
        self.text = " · ".join(parts)
        self.info.setText(self.text)
