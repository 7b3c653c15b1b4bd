"""RingBuffer: order, wrap-around, overflow accounting, discontinuity marks, two threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beira_rt.engine.ringbuffer import RingBuffer


def _chunks(rng, n_total, max_chunk):
    start = 0
    while start < n_total:
        size = int(rng.integers(0, max_chunk + 1))
        stop = min(start + size, n_total)
        yield start, stop
        start = stop


def _ramp(start, stop, n_channels=3):
    idx = np.arange(start, stop, dtype=np.float64)
    return np.stack([idx * (c + 1) for c in range(n_channels)], axis=1), idx / 1000.0


def test_wraps_many_times_in_order():
    rng = np.random.default_rng(0)
    ring = RingBuffer(3, capacity=50)
    got, got_t = [], []
    for start, stop in _chunks(rng, 5000, 40):
        ring.write(*_ramp(start, stop))
        if rng.random() < 0.7 or ring.available > ring.capacity - 40:
            block = ring.read()
            assert block.lost == 0 and block.breaks == ()
            got.append(block.data)
            got_t.append(block.stamps)
    block = ring.read()
    got.append(block.data)
    got_t.append(block.stamps)
    data, stamps = np.concatenate(got), np.concatenate(got_t)
    np.testing.assert_array_equal(data, _ramp(0, 5000)[0])
    np.testing.assert_array_equal(stamps, _ramp(0, 5000)[1])
    assert ring.overflows == 0 and ring.lost_samples == 0


def test_overflow_is_counted_and_reported():
    ring = RingBuffer(3, capacity=10)
    ring.write(*_ramp(0, 7))
    ring.write(*_ramp(7, 25))  # 25 unread in a buffer of 10: the oldest 15 are lost
    block = ring.read()
    assert block.lost == 15 and block.breaks == ()  # the timestamps show the loss
    assert block.start == 15
    np.testing.assert_array_equal(block.data[:, 0], np.arange(15, 25))
    assert ring.overflows == 1 and ring.lost_samples == 15
    ring.write(*_ramp(25, 30))
    block = ring.read()
    assert block.lost == 0 and block.breaks == ()
    np.testing.assert_array_equal(block.data[:, 0], np.arange(25, 30))


def test_chunk_longer_than_capacity_keeps_newest():
    ring = RingBuffer(3, capacity=8)
    ring.write(*_ramp(0, 20))
    block = ring.read()
    np.testing.assert_array_equal(block.data[:, 0], np.arange(12, 20))
    assert block.lost == 12


def test_break_marks_are_positioned_and_kept_until_read():
    ring = RingBuffer(3, capacity=100)
    ring.write(*_ramp(0, 5))
    ring.mark_break()
    ring.write(*_ramp(5, 9))
    ring.mark_break()  # at the end: belongs to the next read
    block = ring.read()
    assert block.breaks == (5,)
    ring.write(*_ramp(9, 12))
    assert ring.read().breaks == (0,)
    ring.write(*_ramp(12, 14))
    assert ring.read().breaks == ()


def test_bad_chunk_shape_is_refused():
    ring = RingBuffer(3, capacity=10)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        ring.write(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="one timestamp per sample"):
        ring.write(np.zeros((4, 3)), np.zeros(3))


def test_writer_and_reader_threads(worker_threads):
    """A writer thread and a reader thread: every sample arrives once, in order, or is counted lost."""
    ring = RingBuffer(3, capacity=257)
    n_total = 200_000
    done = threading.Event()
    got = []

    def writer():
        rng = np.random.default_rng(1)
        for start, stop in _chunks(rng, n_total, 64):
            ring.write(*_ramp(start, stop))
        done.set()

    def reader():
        lost = 0
        while True:
            finished = done.is_set()
            block = ring.read()
            lost += block.lost
            if len(block):
                got.append((block.start, block.data[:, 0].copy(), block.lost))
            if finished and ring.available == 0:
                return lost

    worker_threads(writer, "writer")
    r = worker_threads(reader, "reader")
    r.join(60)
    expected_next = 0
    for start, idx, lost in got:
        assert start == expected_next + lost  # lost samples are exactly the skipped ones
        np.testing.assert_array_equal(idx, np.arange(start, start + idx.size))
        expected_next = start + idx.size
    assert expected_next == n_total
    assert r.result == ring.lost_samples
