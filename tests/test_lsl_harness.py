"""The LSL test harness itself: real outlets (thread and subprocess) to a real inlet on loopback."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests._lsl_source import channel_labels, expected_data


def _pull_all(inlet, n_expected: int, timeout: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    chunks, stamps = [], []
    got = 0
    deadline = time.monotonic() + timeout
    while got < n_expected and time.monotonic() < deadline:
        data, ts = inlet.pull_chunk(timeout=0.0, max_samples=1024)
        if ts:
            chunks.append(np.asarray(data))
            stamps.extend(ts)
            got += len(ts)
        else:
            time.sleep(0.005)
    if not chunks:
        return np.empty((0, 0)), np.empty(0)
    return np.concatenate(chunks), np.asarray(stamps)


def _check_round_trip(spec, inlet):
    data, ts = _pull_all(inlet, spec.n_samples)
    assert data.shape == (spec.n_samples, spec.n_channels), f"got {data.shape[0]} of {spec.n_samples} samples"
    idx = data[:, 0]
    np.testing.assert_array_equal(idx, np.arange(spec.n_samples))  # no drop, no duplicate, in order
    np.testing.assert_allclose(data, expected_data(0, spec.n_samples, spec.n_channels))
    assert np.all(np.diff(ts) > 0)
    np.testing.assert_allclose(np.diff(ts), 1.0 / spec.sfreq, atol=1e-9)


@pytest.mark.parametrize("run", range(5))
def test_round_trip_thread_outlet(lsl_source_thread, lsl_inlet, run):
    spec = lsl_source_thread(n_channels=4, sfreq=1000.0, n_samples=500, chunk_size=7)
    inlet = lsl_inlet(spec)
    labels = _labels(inlet)
    assert labels == channel_labels(spec.n_channels)
    _check_round_trip(spec, inlet)


@pytest.mark.parametrize("run", range(5))
def test_round_trip_subprocess_outlet(lsl_source_process, lsl_inlet, run):
    spec = lsl_source_process(n_channels=3, sfreq=500.0, n_samples=250, chunk_size=5)
    inlet = lsl_inlet(spec)
    _check_round_trip(spec, inlet)


def test_worker_thread_error_is_reported(worker_threads):
    t = worker_threads(lambda: 1 / 0, name="boom")
    t.join()
    assert isinstance(t.error, ZeroDivisionError)
    t.error = None  # consumed here, so teardown passes


def _labels(inlet) -> list[str]:
    ch = inlet.info(timeout=5.0).desc().child("channels").child("channel")
    out = []
    while not ch.empty():
        out.append(ch.child_value("label"))
        ch = ch.next_sibling()
    return out
