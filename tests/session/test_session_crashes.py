"""kill -9 of the session runner mid-block, and of the participant display, during a recorded session.

The recorder and the engine run on; the runner restarted with ``--resume`` continues the same
session on the same schedule; the XDF still loads with pyxdf and has lost nothing that was
published (the feedback is missing only while no runner ran).
"""

from __future__ import annotations

import json
import re
import signal
import time

import numpy as np
import pytest

from tests.session.conftest import BIN, wait_file_text
from tests.session.test_session_e2e import _labels, _load

pytestmark = pytest.mark.slow

BLOCKS = [("baseline", "baseline", 6.0), ("feedback1", "feedback", 12.0), ("rest", "rest", 3.0),
          ("feedback2", "feedback", 6.0)]  # fmt: skip


def _display(pipe, role, *extra):
    return pipe.start(
        role, str(BIN / "beira-rt"), "display", "--feedback", pipe.feedback, "--session", pipe.session, *extra
    )


def test_kill_9_of_the_runner_and_of_the_display(pipeline, tmp_path):
    pipe = pipeline
    runner, xdf, protocol = pipe.begin("crash", BLOCKS)
    wait_file_text(tmp_path / "runner.log", "session_start", 60, "the session starting")
    t_start = time.monotonic()
    doomed = _display(pipe, "display")
    time.sleep(max(0.0, t_start + 8.0 - time.monotonic()))  # 2 s into the first feedback block
    doomed.send_signal(signal.SIGKILL)
    time.sleep(max(0.0, t_start + 10.0 - time.monotonic()))
    runner.send_signal(signal.SIGKILL)
    assert runner.wait(10) == -signal.SIGKILL
    time.sleep(0.5)
    assert pipe.procs["engine"].poll() is None and pipe.procs["recorder"].poll() is None
    resumed = pipe.runner(protocol, "--resume", "--wait-recorder", "10")
    shot = tmp_path / "display.png"
    survivor = _display(pipe, "display-2", "--duration", "14", "--screenshot", str(shot))
    assert resumed.wait(120) == 0, pipe.output(f"runner-{len(pipe.procs) - 1}")
    assert survivor.wait(60) == 0
    time.sleep(1.0)
    assert pipe.stop("recorder") == 0, pipe.output("recorder")
    assert pipe.procs["engine"].poll() is None  # the engine never stopped

    streams = _load(xdf)  # loads, with every stream
    assert set(pipe.streams) <= set(streams)
    eeg = streams[pipe.eeg]
    idx = np.asarray(eeg["time_series"])[:, _labels(eeg).index("SAMPLE_INDEX")].astype(np.int64)
    assert np.all(np.diff(idx) == 1)  # no EEG sample lost
    pt = np.asarray(streams[pipe.predictions]["time_stamps"])
    assert np.diff(pt).max() < 1.0  # the predictions went on through both crashes
    events = [(t, json.loads(m[0])) for t, m in zip(streams[pipe.session]["time_stamps"], streams[pipe.session]["time_series"], strict=True)]  # fmt: skip
    kinds = [e["event"] for _, e in events]
    assert kinds.count("session_start") == 1 and "runner_restarted" in kinds and kinds[-1] == "session_end"
    t0 = next(t for t, e in events if e["event"] == "session_start")
    edges = np.cumsum([0.0] + [d for _, _, d in BLOCKS])
    # the restarted runner keeps the schedule: every boundary at its time, each once
    starts = [(t - t0, e["name"]) for t, e in events if e["event"] == "block_start"]
    assert [n for _, n in starts] == [n for n, _, _ in BLOCKS]
    np.testing.assert_allclose([t for t, _ in starts], edges[:-1], atol=1e-6)
    # the feedback is missing only while no runner ran (the restart), and normalised on after it
    fb = streams[pipe.feedback]
    ft, fx = np.asarray(fb["time_stamps"]), np.asarray(fb["time_series"])
    gaps = np.diff(ft)
    assert (gaps > 1.0).sum() == 1, gaps[gaps > 0.2]
    restart = next(t for t, e in events if e["event"] == "runner_restarted")
    assert ft[np.argmax(gaps)] < restart < ft[np.argmax(gaps) + 1]
    value = fx[:, _labels(fb).index("value")]
    assert np.isfinite(value[ft > restart]).all()  # the baseline statistics survived the crash
    print(f"feedback missing for {gaps.max():.2f} s around the restart")
    # the display that ran to the end measured feedback -> frame
    line = pipe.output("display-2")
    p50 = float(re.search(r"feedback_to_frame_ms_p50 ([0-9.]+)", line).group(1))
    assert 0 < p50 < 100 and shot.stat().st_size > 5_000
