"""The dashboard's session panel on a runner's streams written with raw pylsl (not the runner)."""

from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pylsl

from beira_rt.dashboard.main_window import Dashboard, DashboardSources
from tests.conftest import unique_name

WAIT_MS = 20_000
CHANNELS = ("value", "target", "smoothed", "reward", "shown", "eeg_time", "quality")


def feedback_outlet(name: str) -> pylsl.StreamOutlet:
    """A feedback stream as the runner describes it (labels only), written with raw pylsl."""
    info = pylsl.StreamInfo(name, "Feedback", len(CHANNELS), 0.0, "double64", f"{name}-sid")
    chans = info.desc().append_child("channels")
    for c in CHANNELS:
        chans.append_child("channel").append_child_value("label", c)
    return pylsl.StreamOutlet(info)


def _session_streams(feedback: str, session: str, stop: threading.Event) -> None:
    """A session's two streams as the runner publishes them: a baseline block, then a feedback block."""
    fb = feedback_outlet(feedback)
    mk = pylsl.StreamOutlet(pylsl.StreamInfo(session, "Markers", 1, 0.0, "string", f"{session}-sid"))
    while not (fb.have_consumers() and mk.have_consumers()) and not stop.is_set():
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = pylsl.local_clock()
    mk.push_sample([json.dumps({"event": "session_start", "protocol": "p"})], t0)
    mk.push_sample([json.dumps({"event": "block_start", "index": 0, "name": "base", "kind": "baseline",
                                "start": 0.0, "duration": 1.0, "instruction": ""})], t0)  # fmt: skip
    k = 0
    while not stop.is_set() and k < 600:
        now = pylsl.local_clock()
        if k == 20:
            mk.push_sample(
                [json.dumps({"event": "block_end", "index": 0, "name": "base", "kind": "baseline"})], now
            )
            mk.push_sample(
                [json.dumps({"event": "baseline", "block": 0, "n": 20, "mean": 1.5, "std": 0.5})], now
            )
            mk.push_sample([json.dumps({"event": "block_start", "index": 1, "name": "up", "kind": "feedback",
                                        "start": 1.0, "duration": 60.0, "instruction": "Raise"})], now)  # fmt: skip
        value = np.nan if k < 20 else np.sin(k / 10)
        fb.push_sample([value, 1.0, 1.0, float(k >= 20 and k % 2 == 0), float(k >= 20), now - 0.1, 1.0], now)
        k += 1
        time.sleep(0.05)


def test_session_panel_shows_the_block_baseline_rewards_and_the_feedback(
    worker_threads, dashboard, qtbot, tmp_path
):
    feedback, session = unique_name("BEIRA-fb")[0], unique_name("BEIRA-ses")[0]
    stop = threading.Event()
    worker_threads(lambda: _session_streams(feedback, session, stop), name="session-streams")
    pred = unique_name("beira-pred")[0]
    dash: Dashboard = dashboard(DashboardSources.from_names(pred, eeg="none"), session=(feedback, session))
    panel = dash.session_panel
    qtbot.waitUntil(lambda: "block 2: up (feedback)" in panel.text, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "reward rate" in panel.text, timeout=WAIT_MS)
    assert "s left" in panel.text and "baseline: mean 1.5, sd 0.5 (n 20)" in panel.text
    qtbot.waitUntil(
        lambda: panel.curve.getData()[0] is not None and panel.curve.getData()[0].size > 60, timeout=WAIT_MS
    )
    panel.redraw()
    rate = float(re.search(r"reward rate (\d+) %", panel.text).group(1))
    assert 40 <= rate <= 60  # every other feedback sample rewarded
    x, y = panel.curve.getData()
    assert x is not None and np.isfinite(y).sum() > 5 and x.max() > 1.0  # seconds from the session start
    assert len(panel._regions) == 2  # the two blocks shaded
    dash.grab().save(str(tmp_path / "panel.png"))
    stop.set()
