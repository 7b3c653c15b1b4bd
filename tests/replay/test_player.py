"""The player on real LSL (loopback), seen by external consumers: a pylsl inlet and mne-lsl.

Every sample carries a sample index (``SAMPLE_INDEX`` channel), so the consumers can prove
that nothing was dropped, duplicated or reordered; every value is checked against the file.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from beira_rt.replay import INDEX_CHANNEL, Player, ReplayError, TruthSeries, load_recording
from tests.replay._recordings import CH_NAMES, make_raw, value_uv, write_fif, write_set

ANNOTATIONS = ((0.25, "mri"), (0.5003, "R"), (0.999, "mri"))
MARKER_SAMPLES = (250, 500, 999)


def play_to_the_end(player: Player, duration: float, *drained) -> None:
    """Replay ``duration`` s, then wait for the player and for every drain to have its samples."""
    player.start(duration=duration)
    assert player.wait(timeout=60)
    for drain in drained:
        drain.thread.join(60)


def test_looped_replay_reaches_a_pylsl_inlet_whole(tmp_path, stream_ids, players, drains):
    name, sid = stream_ids
    path = write_set(tmp_path / "rec.set", make_raw(seconds=1.0, annotations=ANNOTATIONS))
    # 3 passes of 1 s at speed 2; chunks of 7 do not divide the 1000 samples of a pass
    player = players(path, name, sid, speed=2.0, chunk_size=7, loop=True, index_channel=True).open()
    eeg = drains(sid, 3000)
    mark = drains(f"{sid}-markers", 9)
    play_to_the_end(player, 3.0, eeg, mark)

    assert eeg.labels() == [*CH_NAMES, INDEX_CHANNEL]
    assert eeg.info.type() == "EEG" and eeg.info.nominal_srate() == 1000.0
    data, stamps = eeg.arrays()
    k = np.arange(3000)
    np.testing.assert_array_equal(data[:, -1], k)  # every sample once, in order, across the loops
    for c in range(len(CH_NAMES)):
        np.testing.assert_allclose(data[:, c], value_uv(k % 1000, c), atol=1e-3)
    # stamps: t0 + k / (sfreq * speed), continuous across the loops
    np.testing.assert_allclose(stamps, player.t0 + k * player.period, rtol=0, atol=1e-9)
    assert player.period == pytest.approx(1 / 2000)
    # nothing arrives before the time its stamp claims
    for newest, arrived in eeg.arrivals:
        assert newest <= arrived

    labels, m_stamps = mark.arrays()
    assert [x[0] for x in labels] == ["mri", "R", "mri"] * 3
    own = np.array([p * 1000 + s for p in range(3) for s in MARKER_SAMPLES])
    # each marker carries the stamp of its own EEG sample (well within one sample period) ...
    np.testing.assert_allclose(m_stamps, stamps[own], rtol=0, atol=1e-9)
    # ... and never arrives before that sample's time
    for newest, arrived in mark.arrivals:
        assert newest <= arrived
    stats = player.stats
    assert (stats.samples_pushed, stats.markers_pushed, stats.loops) == (3000, 9, 3)
    assert stats.lag_max >= 0 and stats.lag_p50 <= stats.lag_max


def test_mne_lsl_stream_sees_names_units_and_every_sample(tmp_path, stream_ids, players):
    from mne_lsl.stream import StreamLSL

    name, sid = stream_ids
    path = write_fif(tmp_path / "rec_raw.fif", make_raw(seconds=1.0, annotations=ANNOTATIONS))
    player = players(path, name, sid, speed=2.0, loop=True, index_channel=True).open()
    stream = StreamLSL(bufsize=5.0, source_id=sid).connect(acquisition_delay=0.005, timeout=10)
    try:
        assert stream.ch_names == [*CH_NAMES, INDEX_CHANNEL]
        assert stream.get_channel_types() == ["eeg"] * 4 + ["eog", "misc"]
        # microvolts: mne-lsl reads the unit and keeps the 1e-6 scale
        assert [ch["unit_mul"] for ch in stream.info["chs"][:5]] == [-6] * 5
        player.start(duration=2.0)
        assert player.wait(timeout=60)
        for _ in range(600):  # the acquisition thread pulls every 5 ms; wait for the last sample
            data, stamps = stream.get_data()
            if data[-1, -1] == 1999:
                break
            time.sleep(0.05)
        k = np.arange(2000)
        np.testing.assert_array_equal(data[-1, -2000:], k)
        np.testing.assert_allclose(data[0, -2000:], value_uv(k % 1000, 0), atol=1e-3)
        np.testing.assert_allclose(stamps[-2000:], player.t0 + k * player.period, rtol=0, atol=1e-9)
    finally:
        stream.disconnect()


def _truth(rec, rows: int | None = None) -> TruthSeries:
    n = rows if rows is not None else (rec.n_times - 1) // 10 + 1
    j = np.arange(n, dtype=np.float32)
    return TruthSeries(
        values=np.stack([j, -j], axis=1), sfreq=100.0, rois=("Left Caudate", "Right Caudate"), bold_delay=6.0
    )


def test_truth_rows_carry_the_stamp_of_their_eeg_time(stream_ids, players, drains):
    name, sid = stream_ids
    rec = load_recording(make_raw(seconds=2.0))
    # start at 1 s, loop that second twice, at speed 4
    player = players(
        rec, name, sid, speed=4.0, loop=True, start=1.0, truth=_truth(rec), index_channel=True
    ).open()
    eeg = drains(sid, 2000)
    truth = drains(f"{sid}-truth", 200)
    play_to_the_end(player, 2.0, eeg, truth)

    assert truth.labels() == ["Left Caudate", "Right Caudate"]
    assert truth.info.type() == "sBOLDTruth" and truth.info.nominal_srate() == 100.0
    assert truth.info.desc().child("beira").child_value("bold_delay") == "6.0"
    values, t_stamps = truth.arrays()
    rows = np.tile(np.arange(100, 200), 2)  # EEG times 1.00 .. 1.99 s, twice
    np.testing.assert_array_equal(values[:, 0], rows)
    np.testing.assert_array_equal(values[:, 1], -rows)
    _, stamps = eeg.arrays()
    # row j belongs to EEG sample 10 j; in the replay that sample is number 10 j - 1000 (+ 1000 per pass)
    replay_k = 10 * rows - 1000 + np.repeat([0, 1000], 100)
    np.testing.assert_allclose(t_stamps, stamps[replay_k], rtol=0, atol=1e-9)
    for newest, arrived in truth.arrivals:
        assert newest <= arrived
    assert player.stats.truth_pushed == 200


class _PushOrder:
    """Wraps a real outlet and logs, in push order, the newest stamp of every push."""

    def __init__(self, outlet, kind: str, log: list[tuple[str, float]]) -> None:
        self._outlet, self._kind, self._log = outlet, kind, log

    def push_chunk(self, x, timestamp):
        self._log.append((self._kind, max(timestamp)))
        self._outlet.push_chunk(x, timestamp)

    def push_sample(self, x, timestamp):
        self._log.append((self._kind, timestamp))
        self._outlet.push_sample(x, timestamp)


def test_a_replay_too_fast_for_single_sample_chunks_catches_up_without_loss(stream_ids, players, drains):
    name, sid = stream_ids
    # 1 s at 1000 Hz x 200 = 200 000 samples/s: no Python loop pushes that one sample at a time
    player = players(
        make_raw(seconds=1.0), name, sid, speed=200.0, chunk_size=1, loop=True, index_channel=True
    )
    player.open()
    eeg = drains(sid, 20000)
    play_to_the_end(player, 20.0, eeg)
    stats = player.stats
    assert stats.samples_pushed == 20000
    assert stats.chunks_pushed < 20000  # it caught up with multi-sample pushes
    data, stamps = eeg.arrays()
    k = np.arange(20000)
    np.testing.assert_array_equal(data[:, -1], k)
    np.testing.assert_allclose(stamps, player.t0 + k * player.period, rtol=0, atol=1e-9)
    for newest, arrived in eeg.arrivals:
        assert newest <= arrived


def test_markers_and_truth_are_pushed_after_their_eeg_sample(stream_ids, players):
    name, sid = stream_ids
    rec = load_recording(make_raw(seconds=1.0, annotations=ANNOTATIONS))
    player = players(rec, name, sid, speed=5.0, chunk_size=64, loop=True, truth=_truth(rec)).open()
    log: list[tuple[str, float]] = []
    for kind in ("eeg", "markers", "truth"):
        player._outlets[kind] = _PushOrder(player._outlets[kind], kind, log)
    player.run(duration=2.0)
    newest_eeg = -np.inf
    for kind, stamp in log:
        if kind == "eeg":
            newest_eeg = stamp
        else:  # a marker or truth row goes out only once the EEG sample it belongs to has
            assert stamp <= newest_eeg, (kind, stamp, newest_eeg)
    kinds = [k for k, _ in log]
    assert kinds.count("markers") == 6 and kinds.count("truth") >= 1 and kinds.count("eeg") <= 2 * 16


def test_no_markers_stream_when_disabled(stream_ids, players):
    import pylsl

    name, sid = stream_ids
    player = players(make_raw(seconds=0.2), name, sid, markers=False).open()
    assert player.streams == [(name, "EEG")]
    assert not pylsl.resolve_byprop("source_id", f"{sid}-markers", 1, 1.0)


def test_run_in_the_calling_thread_stops_after_duration(stream_ids, players):
    name, sid = stream_ids
    player = players(make_raw(seconds=1.0), name, sid, speed=5.0, chunk_size=32, loop=True)
    stats = player.run(duration=1.5)  # 1.5 s of recording: one pass and a half
    assert (stats.samples_pushed, stats.loops) == (1500, 1)
    # 31 full chunks + the pass's last 8 samples, then 16 more (fewer if a busy CPU made it catch up)
    assert stats.chunks_pushed <= 32 + 16
    assert stats.elapsed == pytest.approx(1499 * player.period, abs=0.5)


def test_stop_ends_an_endless_replay(stream_ids, players):
    name, sid = stream_ids
    player = players(make_raw(seconds=0.5), name, sid, speed=10.0, loop=True)
    with player:
        player.start()
        while player.stats.loops < 2:
            player.wait(timeout=0.01)
        assert player.running
    assert not player.running
    stats = player.stats
    assert stats.loops >= 2 and stats.samples_pushed >= 1000
    with pytest.raises(ReplayError, match="create a new Player"):
        player.start()


def test_an_error_in_the_streaming_thread_reaches_the_caller(tmp_path, stream_ids):
    name, sid = stream_ids
    path = write_fif(tmp_path / "rec_raw.fif", make_raw(seconds=2.0))
    player = Player(path, name, sid)
    with path.open("r+b") as fh:  # the file is damaged after it was opened
        fh.truncate(path.stat().st_size // 3)
    try:
        player.start()
        with pytest.raises(ReplayError, match="could not read samples"):
            player.wait(timeout=30)
        assert isinstance(player.error, ReplayError)
        with pytest.raises(ReplayError, match="could not read samples"):
            player.stop()
    finally:
        player.close()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"speed": 0.0}, "speed must be a positive number, got 0.0"),
        ({"speed": float("nan")}, "speed must be a positive number"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0"),
        ({"start": -0.5}, r"start -0.5 s is outside the recording \(0 to 1.000 s\)"),
        ({"start": 1.0}, "start 1.0 s is outside the recording"),
        ({"name": " "}, "stream name must be a non-empty string"),
    ],
)
def test_bad_settings(kwargs, words):
    args = {"name": "x", **kwargs}
    with pytest.raises(ReplayError, match=words):
        Player(make_raw(seconds=1.0), **args)


def test_truth_shorter_than_the_eeg_is_refused():
    rec = load_recording(make_raw(seconds=2.0))
    with pytest.raises(ReplayError, match=r"holds 150 samples at 100 Hz \(1.50 s\) but the EEG runs 2.00 s"):
        Player(rec, "x", truth=_truth(rec, rows=150))


def test_simulated_outages_lose_their_samples_and_keep_the_clock(tmp_path, stream_ids, players, drains):
    name, sid = stream_ids
    path = write_set(tmp_path / "rec.set", make_raw(seconds=1.0))
    # 2 s of replay at speed 4: from 0.5 s on, the first 0.1 s of every 0.5 s is lost
    player = players(path, name, sid, speed=4.0, loop=True, index_channel=True, outage=(0.5, 0.1)).open()
    eeg = drains(sid, 1700)
    play_to_the_end(player, 2.0, eeg)
    data, stamps = eeg.arrays()
    k = np.arange(2000)
    kept = (k < 500) | (k % 500 >= 100)
    np.testing.assert_array_equal(data[:, -1], k[kept])  # exactly the samples outside the outages
    np.testing.assert_allclose(stamps, player.t0 + k[kept] * player.period, rtol=0, atol=1e-9)
    assert player.samples_dropped == 300


@pytest.mark.parametrize("outage", [(1.0, 1.0), (1.0, 0.0), (float("nan"), 0.1)])
def test_impossible_outages_are_refused(tmp_path, outage):
    path = write_set(tmp_path / "rec.set", make_raw(seconds=1.0))
    with pytest.raises(ReplayError, match="outage"):
        Player(path, "x", outage=outage)
