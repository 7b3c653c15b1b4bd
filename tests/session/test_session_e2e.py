"""A whole session on real processes, recorded by LabRecorder and read back with pyxdf.

replay (EEGLAB .set, sample-index channel) -> ``beira-rt run`` -> ``beira-rt session`` ->
``beira-rt record`` (LabRecorderCLI). The feedback is recomputed here from the recorded
predictions with plain NumPy, independently of beira_rt.session.feedback.
"""

from __future__ import annotations

import itertools
import json
import re
import time

import numpy as np
import pytest

from tests.session.conftest import BIN

pytestmark = pytest.mark.slow

BLOCKS = [("baseline", "baseline", 4.0), ("feedback1", "feedback", 4.0), ("rest", "rest", 2.0),
          ("feedback2", "feedback", 4.0)]  # fmt: skip
#: Seconds the session lasts.
SESSION_S = sum(d for _, _, d in BLOCKS)


def _load(path):
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    return {s["info"]["name"][0]: s for s in streams}


def _labels(stream):
    return [c["label"][0] for c in stream["info"]["desc"][0]["channels"][0]["channel"]]


def test_a_recorded_session_holds_every_stream_and_sample_and_the_feedback_recomputes(pipeline, tmp_path):
    pipe = pipeline
    runner, xdf, _ = pipe.begin("e2e", BLOCKS)
    assert runner.wait(120) == 0, pipe.output("runner")
    time.sleep(1.0)
    assert pipe.stop("recorder") == 0, pipe.output("recorder")
    assert pipe.procs["engine"].poll() is None  # the engine runs on

    streams = _load(xdf)
    assert set(pipe.streams) <= set(streams), sorted(streams)
    # every EEG sample recorded: the replay's index channel has no hole
    eeg = streams[pipe.eeg]
    idx = np.asarray(eeg["time_series"])[:, _labels(eeg).index("SAMPLE_INDEX")].astype(np.int64)
    assert idx.size > SESSION_S * 500 and np.all(np.diff(idx) == 1)  # (recording from before the start)
    # markers: session start, then every block's start and end at its scheduled time
    events = [(t, json.loads(m[0])) for t, m in zip(streams[pipe.session]["time_stamps"], streams[pipe.session]["time_series"], strict=True)]  # fmt: skip
    t0 = next(t for t, e in events if e["event"] == "session_start")
    starts = [(t - t0, e["name"]) for t, e in events if e["event"] == "block_start"]
    ends = [(t - t0, e["name"]) for t, e in events if e["event"] == "block_end"]
    edges = np.cumsum([0.0] + [d for _, _, d in BLOCKS])
    assert [n for _, n in starts] == [n for n, _, _ in BLOCKS] == [n for _, n in ends]
    np.testing.assert_allclose([t for t, _ in starts], edges[:-1], atol=1e-6)
    np.testing.assert_allclose([t for t, _ in ends], edges[1:], atol=1e-6)
    assert events[-1][1]["event"] == "session_end"
    baseline = next(e for _, e in events if e["event"] == "baseline")

    # every feedback sample comes from a recorded prediction, one per prediction in the session
    fb = streams[pipe.feedback]
    ft, fx = np.asarray(fb["time_stamps"]), np.asarray(fb["time_series"], dtype=np.float64)
    names = _labels(fb)
    col = {n: names.index(n) for n in names}
    pred = streams[pipe.predictions]
    pt, px = np.asarray(pred["time_stamps"]), np.asarray(pred["time_series"], dtype=np.float64)
    assert pt[0] < t0  # the recording holds the predictions from before the session start
    pos = np.searchsorted(pt, fx[:, col["eeg_time"]])
    assert np.all(pt[pos] == fx[:, col["eeg_time"]])  # exact: the stamp is carried in double
    assert np.all(np.diff(pos) == 1)  # none skipped
    summary = pipe.output("runner")
    n_fb = int(re.search(r"feedback_samples (\d+)", summary).group(1))
    assert fx.shape[0] == n_fb > SESSION_S / 0.05 * 0.65  # one per 0.05 s hop, most of them

    # recompute: target, smoothing, baseline statistics, value, reward
    plabels = _labels(pred)
    x = px[pos]
    target = x[:, plabels.index("Left Putamen")] - x[:, plabels.index("Right Putamen")]
    np.testing.assert_allclose(fx[:, col["target"]], target, rtol=0, atol=1e-6)
    s = fx[:, col["eeg_time"]]
    y = np.empty_like(target)
    y[0] = target[0]
    for k in range(1, y.size):
        a = 1.0 - np.exp(-(s[k] - s[k - 1]) / 0.5)
        y[k] = y[k - 1] + a * (target[k] - y[k - 1])
    np.testing.assert_allclose(fx[:, col["smoothed"]], y, rtol=0, atol=1e-6)
    in_base = (ft >= t0 + edges[0]) & (ft < t0 + edges[1])
    mean, std = y[in_base].mean(), y[in_base].std()
    assert baseline["n"] == in_base.sum()
    assert abs(baseline["mean"] - mean) <= 1e-6 and abs(baseline["std"] - std) <= 1e-6
    after = ft >= t0 + edges[1]
    np.testing.assert_allclose(fx[after, col["value"]], (y[after] - mean) / std, rtol=0, atol=1e-6)
    assert np.isnan(fx[~after, col["value"]]).all()  # nothing to normalise against before that
    kinds = np.select([(ft >= t0 + a) & (ft < t0 + b) for a, b in itertools.pairwise(edges)],
                      [k for _, k, _ in BLOCKS], "none")  # fmt: skip
    expect_reward = np.isin(kinds, ["feedback", "transfer"]) & (fx[:, col["value"]] > 0.0)
    np.testing.assert_array_equal(fx[:, col["reward"]], expect_reward.astype(float))
    np.testing.assert_array_equal(fx[:, col["shown"]], (kinds == "feedback").astype(float))

    # the report reads the file
    from beira_rt.session.report import write_report

    doc = write_report(xdf, tmp_path / "report")
    assert doc["summary"]["blocks"] == 4 and doc["summary"]["losses"]["eeg_samples_missing"] == 0
    assert (tmp_path / "report" / "session.report.png").stat().st_size > 10_000
    sidecar = json.loads((tmp_path / "session.json").read_text())
    assert sidecar["model_hash"] and "Left Putamen - Right Putamen" in sidecar["protocol"]

    # a later sham session feeds back this one's recorded values at the same time from its start
    from beira_rt.session.runner import _load_sham, _sham_value

    times, values = _load_sham(str(xdf))
    np.testing.assert_allclose(times, ft - t0, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(values, fx[:, col["value"]])
    k = int(np.flatnonzero(after)[5])
    assert _sham_value((times, values), times[k] + 1e-6) == values[k] and np.isnan(
        _sham_value((times, values), -1.0)
    )

    # and the recorded session replays: the feedback, markers and predictions again, every sample at
    # its recorded time (relative, at speed 4), with the original metadata
    _replay_matches_the_recording(xdf, [pipe.predictions, pipe.feedback, pipe.session], streams)


def _replay_matches_the_recording(xdf, names, streams, speed=4.0):
    import subprocess

    import pylsl

    proc = subprocess.Popen(
        [str(BIN / "beira-replay"), str(xdf), "--streams", ",".join(names), "--speed", str(speed),
         "--name-suffix=-again", "--wait-consumer", "30", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        inlets = {}
        for name in names:
            found = pylsl.resolve_byprop("name", name + "-again", 1, 30)
            assert found, f"{name}-again did not appear"
            inlets[name] = pylsl.StreamInlet(found[0], max_buflen=360)
            inlets[name].open_stream(timeout=30)
        got = {name: ([], []) for name in names}
        want = {name: len(streams[name]["time_stamps"]) for name in names}
        end = time.monotonic() + 60
        while time.monotonic() < end and any(len(got[n][1]) < want[n] for n in names):
            for name, inlet in inlets.items():
                data, stamps = inlet.pull_chunk(timeout=0.02)
                got[name][0].extend(data)
                got[name][1].extend(stamps)
        for name, inlet in inlets.items():
            assert _labels_of(inlet.info(timeout=5)) == _labels(streams[name])
            inlet.close_stream()
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    first = min(float(streams[n]["time_stamps"][0]) for n in names)
    t0 = min(got[n][1][0] for n in names)
    for name in names:
        values, stamps = got[name]
        rec = streams[name]
        assert len(stamps) == len(rec["time_stamps"]), name
        if rec["info"]["channel_format"][0] == "string":
            assert [v[0] for v in values] == [v[0] for v in rec["time_series"]]
        else:
            np.testing.assert_allclose(np.asarray(values), np.asarray(rec["time_series"]), rtol=0, atol=1e-6)
        error = np.abs((np.asarray(stamps) - t0) - (np.asarray(rec["time_stamps"]) - first) / speed)
        assert error.max() < 1e-3, (name, error.max())


def _labels_of(info):
    return list(info.get_channel_labels() or [])
