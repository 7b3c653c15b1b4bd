"""DisplayReader / StatusReader on real LSL outlets (loopback): data intact, loss noticed, return rejoined."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from beira_rt.dashboard.streams import DisplayReader, StatusReader
from beira_rt.lsl import StreamQuery
from tests._lsl_source import channel_labels, expected_data
from tests.conftest import unique_name
from tests.dashboard._outlets import RoiPublisher, StatusPublisher, push_strings


def wait_for(cond, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def readers():
    made: list[DisplayReader] = []

    def make(reader: DisplayReader) -> DisplayReader:
        made.append(reader)
        reader.start()
        return reader

    yield make
    for r in made:
        r.stop()


def test_reader_receives_every_sample_in_order_with_labels(lsl_source_thread, readers):
    spec = lsl_source_thread(n_channels=5, sfreq=1000.0, n_samples=3000, chunk_size=7)
    reader = readers(DisplayReader("eeg", StreamQuery(name=spec.name), 10.0, dejitter=True))
    wait_for(lambda: reader.n_received >= spec.n_samples, what="all samples")
    assert reader.meta is not None
    assert reader.meta.labels == tuple(channel_labels(5))
    assert reader.meta.units[0] == "microvolts" and reader.meta.sfreq == 1000.0
    snap = reader.snapshot()
    assert len(snap) == spec.n_samples == reader.n_received  # capacity 10 s holds all 3 s
    np.testing.assert_allclose(snap.data, expected_data(0, spec.n_samples, 5), atol=1e-4)  # float32 storage
    assert np.all(np.diff(snap.stamps) > 0)
    assert reader.n_gaps == 0
    # a time-limited snapshot covers about that many seconds at the nominal rate
    assert 1000 <= len(reader.snapshot(1.0)) <= 1100


def test_reader_buffer_is_bounded(lsl_source_thread, readers):
    spec = lsl_source_thread(n_channels=2, sfreq=1000.0, n_samples=2500, chunk_size=50)
    reader = readers(DisplayReader("eeg", StreamQuery(source_id=spec.source_id), 1.0))
    wait_for(lambda: reader.n_received >= spec.n_samples, what="all samples")
    snap = reader.snapshot()
    assert len(snap) == reader.buffer.capacity == 1001
    np.testing.assert_array_equal(snap.data[:, 0], np.arange(spec.n_samples - 1001, spec.n_samples))


def test_reader_says_lost_and_reconnects_when_the_stream_returns(publishers, worker_threads, readers):
    name, sid = unique_name("beira-pred")
    first = publishers(RoiPublisher(name, sid))
    reader = readers(DisplayReader("predictions", StreamQuery(name=name), 30.0))
    assert reader.state in ("waiting", "connected")
    wait_for(lambda: reader.state == "connected" and reader.n_received >= 5, what="first connection")
    assert reader.meta.extra["bold_delay"] == "6.0" and reader.meta.labels[0] == "Left Pallidum"
    first.stop.set()
    wait_for(lambda: reader.state == "lost", what="lost")
    n_before = reader.n_received
    second = publishers(RoiPublisher(name, sid))
    wait_for(lambda: reader.state == "connected" and reader.n_received >= n_before + 5, what="reconnection")
    assert reader.n_connects == 2 and reader.n_lost == 1
    assert second.pushed > 0


def test_stalled_when_connected_but_silent(readers):
    import pylsl

    name, sid = unique_name("beira-silent")
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "sBOLD", 2, 10.0, "float32", sid))
    reader = readers(DisplayReader("predictions", StreamQuery(name=name), 10.0, stale_seconds=0.3))
    wait_for(lambda: reader.n_connects == 1, what="connection")
    wait_for(lambda: reader.state == "stalled", what="stalled")
    outlet.push_sample([1.0, 2.0])
    wait_for(lambda: reader.state == "connected", what="connected again after a sample")
    reader.stop()
    del outlet


def test_status_reader_parses_json_and_counts_bad_messages(publishers, worker_threads, readers):
    name, sid = unique_name("beira-status")
    pub = publishers(StatusPublisher(name, sid, state="connected"))
    reader = readers(StatusReader(StreamQuery(name=name)))
    wait_for(lambda: reader.latest is not None, what="a status message")
    assert reader.latest["state"] == "connected" and reader.latest["latency_p99_ms"] == 9.5
    pub.state = "reconnecting"
    wait_for(lambda: reader.latest["state"] == "reconnecting", what="the new state")
    assert reader.messages()[0][1]["state"] == "connected"
    assert reader.n_bad == 0

    bad_name, bad_sid = unique_name("beira-status-bad")
    stop = threading.Event()
    worker_threads(
        lambda: push_strings(
            bad_name, bad_sid, ["not json", json.dumps([1, 2]), json.dumps({"state": "waiting"})], stop
        ),
        "bad-status",
    )
    bad = readers(StatusReader(StreamQuery(name=bad_name)))
    try:
        wait_for(lambda: bad.n_bad >= 2 and bad.latest is not None, what="bad and good messages")
        assert bad.latest == {"state": "waiting"}
    finally:
        bad.stop()
        stop.set()


def test_a_stream_of_the_wrong_kind_is_not_read(publishers, readers, caplog):
    name, sid = unique_name("beira-status-as-eeg")
    publishers(StatusPublisher(name, sid))
    reader = readers(DisplayReader("eeg", StreamQuery(name=name), 10.0))
    wait_for(lambda: "carries strings" in caplog.text, what="the error message")
    assert reader.state == "waiting" and reader.n_received == 0


def test_selector_validation():
    with pytest.raises(ValueError, match="name, type or source id"):
        StreamQuery()
    with pytest.raises(ValueError, match="must not be empty"):
        StreamQuery(name="")


def test_a_returning_stream_of_another_shape_gets_a_new_buffer(readers):
    import pylsl

    name, sid = unique_name("beira-reshape")
    first = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 2, 100.0, "float32", sid))
    reader = readers(DisplayReader("eeg", StreamQuery(name=name), 5.0))
    wait_for(lambda: reader.n_connects == 1, what="first connection")
    first.push_chunk(np.ones((10, 2), dtype=np.float32))
    wait_for(lambda: reader.n_received == 10, what="the first samples")
    assert reader.snapshot(channels=[0, 1]).data.shape == (10, 2)
    del first
    wait_for(lambda: reader.state == "lost", what="lost")
    second = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 3, 250.0, "float32", sid + "-2"))
    wait_for(lambda: reader.n_connects == 2, what="the new stream")
    assert reader.meta.n_channels == 3 and reader.buffer.capacity == 5 * 250 + 1
    assert reader.snapshot(channels=[5]) is None  # an index of the old selection beyond the new channels
    second.push_chunk(np.full((4, 3), 2.0, dtype=np.float32))
    wait_for(lambda: reader.n_received == 14, what="the new samples")
    np.testing.assert_array_equal(reader.snapshot().data, np.full((4, 3), 2.0))  # nothing of the old shape
    reader.stop()
    del second
