"""Status panel text: engine messages (with nulls for unknown numbers) and the prediction stream's description."""

from __future__ import annotations

from beira_rt.dashboard.panel import STATE_COLORS, StatusPanel, description_rows, engine_rows, stream_text


def test_engine_rows_format_a_full_message():
    rows = engine_rows(
        {
            "state": "connected",
            "source": "eeg-1",
            "input_rate": 999.96,
            "samples_received": 12000,
            "gaps": 2,
            "overflows": 0,
            "nan_resets": 1,
            "updates": 120,
            "skipped_updates": 4,
            "latency_p50_ms": 3.04,
            "latency_p99_ms": 11.96,
            "model_hash": "feedbeef" * 8,
            "device": "cuda:0",
            "lookahead": 1.0,
            "clock_steps": 1,
            "quality": 0.625,
            "bad_channels": {"O2": "railed", "Fz": "flat"},
        }
    )
    assert rows["Engine"] == "connected" and rows["Source"] == "eeg-1"
    assert rows["Quality"] == "0.62" and rows["Bad channels"] == "Fz (flat), O2 (railed)"
    assert rows["Input rate"] == "1000.0 Hz" and rows["Received"] == "12000 samples"
    assert rows["Dropped"] == "gaps 2 · overflows 0 · NaN runs 1 · clock steps 1"
    assert rows["Updates"] == "120 · skipped 4"
    assert rows["Latency"] == "p50 3.0 ms · p99 12.0 ms"
    assert rows["Model"] == "feedbeeffeed" and rows["Device"] == "cuda:0" and rows["Look-ahead"] == "1.00 s"


def test_engine_rows_show_dashes_for_null_or_missing_numbers():
    rows = engine_rows({"state": "waiting", "latency_p50_ms": None, "latency_p99_ms": "n/a", "gaps": True})
    assert rows["Engine"] == "waiting"
    assert rows["Latency"] == "p50 – ms · p99 – ms"
    assert rows["Dropped"].startswith("gaps –")
    assert rows["Model"] == "–"


def test_no_status_rows_say_why():
    assert engine_rows(None, "stream lost")["Engine"] == "no status (stream lost)"
    assert engine_rows(None)["Engine"] == "no status"


def test_description_rows_tolerate_malformed_values():
    extra = {"bold_delay": "6.0", "lookahead": "oops", "model_hash": "abc", "device": "cpu", "source": "eeg"}
    rows = description_rows(extra, have_status=False)
    assert rows == {"BOLD delay": "6 s", "Model": "abc", "Device": "cpu", "Look-ahead": "–", "Source": "eeg"}
    assert description_rows({}, have_status=True) == {"BOLD delay": "–"}


def test_stream_text():
    assert stream_text("lost", "BEIRA", 9.9, 50) == "lost · reconnecting · BEIRA · 9.9 Hz · 50 samples"
    assert stream_text("connected", "EEG", float("nan"), 0, gaps=3) == "connected · EEG · 0 samples · 3 gaps"
    assert stream_text("waiting", None, float("nan"), 0) == "waiting"


def test_panel_updates_text_and_colour(qtbot):
    panel = StatusPanel({"Engine": ("Engine", "Latency")})
    qtbot.addWidget(panel)
    panel.set_text("Engine", "reconnecting", "reconnecting")
    assert panel.text("Engine") == "reconnecting"
    assert STATE_COLORS["reconnecting"] in panel._values["Engine"].styleSheet()
    panel.set_text("Engine", "connected", "connected")
    assert STATE_COLORS["connected"] in panel._values["Engine"].styleSheet()
    assert panel.text("Latency") == "–"
