"""The participant display offscreen on a runner's streams written with raw pylsl: what it shows when."""

from __future__ import annotations

import json
import threading
import time

import pylsl
import pytest

from tests.conftest import made_then_closed, unique_name
from tests.dashboard.test_session_panel import feedback_outlet

WAIT_MS = 20_000


def _open(*args, **kwargs):
    from beira_rt.session.display import ParticipantDisplay

    win = ParticipantDisplay(*args, **kwargs)
    win.resize(800, 600)
    win.show()
    win.start()
    return win


def _shut(win) -> None:
    win.shutdown()
    win.close()


@pytest.fixture
def display(qtbot):
    yield from made_then_closed(_open, _shut)


def test_instruction_bar_cross_and_no_signal(worker_threads, display, qtbot, tmp_path):
    feedback, session = unique_name("BEIRA-fb")[0], unique_name("BEIRA-ses")[0]
    fb = feedback_outlet(feedback)
    mk = pylsl.StreamOutlet(pylsl.StreamInfo(session, "Markers", 1, 0.0, "string", f"{session}-sid"))
    win = display(feedback, session, threshold=0.5)
    qtbot.waitUntil(lambda: fb.have_consumers() and mk.have_consumers(), timeout=WAIT_MS)
    time.sleep(0.3)

    def block(index, kind, text):
        event = {"event": "block_start", "index": index, "name": kind, "kind": kind, "start": 0.0,
                 "duration": 60.0, "instruction": text}  # fmt: skip
        mk.push_sample([json.dumps(event)], pylsl.local_clock())

    block(0, "baseline", "Relax")
    qtbot.waitUntil(lambda: win.state == "instruction", timeout=WAIT_MS)
    block(1, "rest", "")
    qtbot.waitUntil(lambda: win.state == "rest", timeout=WAIT_MS)
    block(2, "feedback", "Raise the bar")
    qtbot.waitUntil(lambda: win.state == "no signal", timeout=WAIT_MS)  # nothing fed back yet
    stop = threading.Event()

    def push():
        while not stop.is_set():
            fb.push_sample([1.2, 0, 0, 1, 1, 0, 1], pylsl.local_clock())
            time.sleep(0.05)

    worker_threads(push, name="feedback")
    qtbot.waitUntil(lambda: win.state == "feedback" and win.shown > 20, timeout=WAIT_MS)
    win.grab().save(str(tmp_path / "bar.png"))
    stop.set()  # the predictions stop: after 1 s the bar gives way to "no signal", never stale feedback
    t = time.monotonic()
    qtbot.waitUntil(lambda: win.state == "no signal", timeout=WAIT_MS)
    assert 0.8 < time.monotonic() - t < 3.0
    s = win.summary()
    assert s["feedback_frames"] > 20 and 0 < s["feedback_to_frame_ms_p50"] < 100
    mk.push_sample([json.dumps({"event": "session_end"})], pylsl.local_clock())
    qtbot.waitUntil(lambda: win.state == "ended", timeout=WAIT_MS)
