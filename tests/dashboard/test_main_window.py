"""The Dashboard window offscreen on real LSL streams: traces update, status follows the engine and the streams."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from beira_rt.config import DEFAULT_ROIS, DashboardConfig
from beira_rt.dashboard.main_window import Dashboard, DashboardSources
from beira_rt.lsl import QUALITY_LABEL
from tests.conftest import unique_name
from tests.dashboard._outlets import MODEL_HASH, RoiPublisher, StatusPublisher

WAIT_MS = 20_000


def test_traces_update_while_outlets_push(lsl_source_thread, publishers, dashboard, qtbot):
    eeg = lsl_source_thread(n_channels=6, sfreq=1000.0, n_samples=60_000, chunk_size=10)
    name, sid = unique_name("beira-pred")
    publishers(RoiPublisher(name, sid))
    dash: Dashboard = dashboard(DashboardSources.from_names(name, eeg=eeg.name))
    qtbot.waitUntil(lambda: dash.n_points("eeg") > 200 and dash.n_points("predictions") > 3, timeout=WAIT_MS)
    eeg_before, pred_before, frames_before = (
        dash.n_points("eeg"),
        dash.n_points("predictions"),
        dash.frames_drawn,
    )
    qtbot.waitUntil(
        lambda: dash.n_points("eeg") > eeg_before + 300 and dash.n_points("predictions") > pred_before + 3,
        timeout=WAIT_MS,
    )
    assert dash.frames_drawn > frames_before
    # the ROI plots are labelled by name, Left in the first column and Right in the second
    grid = dash.roi_grid
    assert set(grid.labels) == {*DEFAULT_ROIS, QUALITY_LABEL}
    assert len(grid.plots) == len(DEFAULT_ROIS)  # the engine's quality channel gets no ROI plot
    for row, structure in enumerate(("Pallidum", "Caudate", "Putamen", "Accumbens")):
        assert grid.getItem(row, 0) is grid.plots[DEFAULT_ROIS.index(f"Left {structure}")]
        assert grid.getItem(row, 1) is grid.plots[DEFAULT_ROIS.index(f"Right {structure}")]
    # EEG: all 6 channels shown (fewer than eeg_channels_shown), labelled; selecting two redraws only two
    assert dash.eeg_view.labels == ("IDX", "C1", "C2", "C3", "C4", "C5")
    assert len(dash.eeg_view.selected()) == 6
    dash.eeg_view.select(["C2", "C4"])
    assert dash.eeg_view.selected() == [2, 4] and dash.eeg_view.n_traces == 2
    # the panel shows the model from the prediction stream's description when there is no status
    qtbot.waitUntil(lambda: dash.status_text("Model") == MODEL_HASH[:12], timeout=WAIT_MS)
    assert dash.status_text("BOLD delay") == "6 s"
    assert dash.status_state == "no status"
    assert dash.status_text("Engine").startswith("no status")


def test_time_window_selector_changes_the_visible_span(lsl_source_thread, dashboard, qtbot):
    eeg = lsl_source_thread(n_channels=2, sfreq=1000.0, n_samples=60_000, chunk_size=10)
    name, _ = unique_name("beira-pred")
    cfg = DashboardConfig(window_seconds=2.0, bold_window_seconds=45.0)
    dash: Dashboard = dashboard(DashboardSources.from_names(name, eeg=eeg.name), cfg)
    # the configured windows are added to the selectors' choices and selected
    assert 2.0 in dash.eeg_windows and dash.eeg_combo.currentText() == "2 s"
    assert 45.0 in dash.bold_windows and dash.bold_combo.currentText() == "45 s"
    qtbot.waitUntil(lambda: dash.n_points("eeg") > 1900, timeout=WAIT_MS)
    assert dash.n_points("eeg") <= 2 * 1000 * 1.06
    dash.eeg_combo.setCurrentIndex(dash.eeg_windows.index(5.0))  # as a click would
    assert dash.eeg_window == 5.0
    qtbot.waitUntil(lambda: dash.n_points("eeg") > 2500, timeout=WAIT_MS)
    dash.set_windows(eeg=2.0)
    assert dash.eeg_combo.currentText() == "2 s"
    qtbot.waitUntil(lambda: dash.n_points("eeg") <= 2 * 1000 * 1.06, timeout=WAIT_MS)
    with pytest.raises(ValueError, match="not offered"):
        dash.set_windows(bold=7.0)
    dash.set_windows(bold=30.0)
    assert dash.bold_window == 30.0 and dash.bold_combo.currentText() == "30 s"


def test_status_panel_follows_the_status_stream(publishers, dashboard, qtbot):
    name, sid = unique_name("beira-pred")
    dash: Dashboard = dashboard(DashboardSources.from_names(name))
    qtbot.waitUntil(lambda: dash.frames_drawn > 3, timeout=WAIT_MS)
    assert dash.status_state == "no status"
    assert dash.status_text("Engine") == "no status (no stream yet)"
    assert dash.status_text("Status").startswith(f"waiting for name '{name}-status'")

    status = publishers(StatusPublisher(f"{name}-status", sid + "-status", state="waiting"))
    qtbot.waitUntil(lambda: dash.status_text("Engine") == "waiting", timeout=WAIT_MS)
    for state in ("connected", "reconnecting", "connected"):
        status.state = state
        qtbot.waitUntil(
            lambda s=state: dash.status_state == s and dash.status_text("Engine") == s, timeout=WAIT_MS
        )
    assert dash.status_text("Latency") == "p50 4.2 ms · p99 9.5 ms"
    assert dash.status_text("Dropped") == "gaps 1 · overflows 2 · NaN runs 0 · clock steps –"
    assert dash.status_text("Updates").endswith("skipped 3")
    assert dash.status_text("Input rate") == "1000.0 Hz"
    assert dash.status_text("Device") == "cpu" and dash.status_text("Look-ahead") == "0.50 s"

    status.stop.set()  # the engine goes away
    qtbot.waitUntil(lambda: dash.status_state == "no status", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: dash.status_text("Engine") == "no status (stream lost)", timeout=WAIT_MS)
    assert dash.status_text("Status").startswith("lost · reconnecting")
    publishers(StatusPublisher(f"{name}-status", sid + "-status", state="connected"))
    qtbot.waitUntil(lambda: dash.status_text("Engine") == "connected", timeout=WAIT_MS)


def test_status_panel_follows_the_prediction_stream_vanishing_and_returning(publishers, dashboard, qtbot):
    name, sid = unique_name("beira-pred")
    first = publishers(RoiPublisher(name, sid))
    dash: Dashboard = dashboard(DashboardSources.from_names(name))
    qtbot.waitUntil(
        lambda: dash.status_text("Predictions").startswith(f"connected · {name}"), timeout=WAIT_MS
    )
    first.stop.set()
    qtbot.waitUntil(lambda: dash.stream_state("predictions") == "lost", timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: dash.status_text("Predictions").startswith("lost · reconnecting"), timeout=WAIT_MS
    )
    received = dash.samples_received("predictions")
    publishers(RoiPublisher(name, sid))
    qtbot.waitUntil(lambda: dash.status_text("Predictions").startswith("connected"), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: dash.samples_received("predictions") > received + 3, timeout=WAIT_MS)
    assert dash.readers["predictions"].n_connects == 2


def test_running_correlation_against_truth_matched_by_label_and_timestamp(publishers, dashboard, qtbot):
    """Truth channels in reverse order, stamps shifted by half a sample, one ROI negated."""
    name, sid = unique_name("beira-pred")
    truth_name = f"{name}-truth"
    publishers(
        RoiPublisher(name, sid, truth_name=truth_name, truth_offset=0.05, truth_signs={"Left Caudate": -1.0})
    )
    dash: Dashboard = dashboard(DashboardSources.from_names(name, truth=truth_name))

    def all_finite() -> bool:
        r = dash.correlations
        return (
            len(r) == 8 and all(math.isfinite(v) for v in r.values()) and dash.n_points("predictions") >= 20
        )

    qtbot.waitUntil(all_finite, timeout=WAIT_MS)
    r = dash.correlations
    assert r["Left Caudate"] < -0.99
    assert all(v > 0.99 for k, v in r.items() if k != "Left Caudate"), r
    assert dash.n_points("truth") > 0
    title = dash.roi_grid._titles[DEFAULT_ROIS.index("Left Caudate")]
    assert title.startswith("Left Caudate") and "r = -" in title


def test_a_blocked_event_loop_drops_frames_but_no_data(lsl_source_thread, dashboard, qtbot):
    eeg = lsl_source_thread(n_channels=3, sfreq=1000.0, n_samples=60_000, chunk_size=10)
    name, _ = unique_name("beira-pred")
    dash: Dashboard = dashboard(DashboardSources.from_names(name, eeg=eeg.name))
    qtbot.waitUntil(lambda: dash.n_points("eeg") > 500, timeout=WAIT_MS)
    reader = dash.readers["eeg"]
    dropped, received = dash.frames_dropped, reader.n_received
    time.sleep(1.0)  # the GUI thread is busy: no timer event can run
    assert reader.n_received >= received + 100  # the reader thread kept pulling meanwhile
    frames = dash.frames_drawn
    qtbot.waitUntil(lambda: dash.frames_drawn >= frames + 3, timeout=WAIT_MS)
    assert dash.frames_dropped >= dropped + 10  # ~29 frame slots at 30 fps were missed, not caught up
    snap = reader.snapshot()
    idx = snap.data[:, 0]
    np.testing.assert_array_equal(np.diff(idx), 1.0)  # the index channel: no sample lost or repeated
    assert idx[-1] == reader.n_received - 1 and idx[0] == max(0, reader.n_received - reader.buffer.capacity)
