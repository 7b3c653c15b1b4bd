"""SampleRing: order, wrap-around, overflow accounting, discontinuity marks, snapshots, two threads.

The consuming reads are the engine's; the snapshots (float32) are the dashboard's.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from beira_rt.lsl import SampleRing


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
    ring = SampleRing(50, 3)
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
    ring = SampleRing(10, 3)
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
    ring = SampleRing(8, 3)
    ring.write(*_ramp(0, 20))
    block = ring.read()
    np.testing.assert_array_equal(block.data[:, 0], np.arange(12, 20))
    assert block.lost == 12


def test_break_marks_are_positioned_and_kept_until_read():
    ring = SampleRing(100, 3)
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
    ring = SampleRing(10, 3)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        ring.write(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="one timestamp per sample"):
        ring.write(np.zeros((4, 3)), np.zeros(3))


def test_writer_and_reader_threads(worker_threads):
    """A writer thread and a reader thread: every sample arrives once, in order, or is counted lost."""
    ring = SampleRing(257, 3)
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


# ---------------------------------------------------------------- snapshots (the dashboard's reads)
def _chunk(start: int, n: int, n_channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, start + n, dtype=np.float64)
    data = np.column_stack([idx + 1000 * c for c in range(n_channels)])
    return data, idx / 100.0


def test_keeps_newest_in_order_across_wraps():
    buf = SampleRing(10, 3, dtype=np.float32)
    rng = np.random.default_rng(0)
    written = 0
    for _ in range(50):
        n = int(rng.integers(0, 8))
        buf.write(*_chunk(written, n))
        written += n
        snap = buf.snapshot()
        expected = np.arange(max(0, written - 10), written)
        np.testing.assert_array_equal(snap.data[:, 0], expected)
        np.testing.assert_array_equal(snap.data[:, 2], expected + 2000)
        np.testing.assert_allclose(snap.stamps, expected / 100.0)
        assert snap.n_written == written == buf.n_written
        assert len(buf) == min(written, 10)


def test_write_larger_than_capacity_keeps_the_last_samples():
    buf = SampleRing(8, 3, dtype=np.float32)
    buf.write(*_chunk(0, 5))
    buf.write(*_chunk(5, 27))
    snap = buf.snapshot()
    np.testing.assert_array_equal(snap.data[:, 0], np.arange(24, 32))
    assert snap.n_written == 32
    buf.write(*_chunk(32, 3))
    np.testing.assert_array_equal(buf.snapshot().data[:, 0], np.arange(27, 35))


def test_snapshot_last_n_and_channels_and_since():
    buf = SampleRing(16, 3, dtype=np.float32)
    buf.write(*_chunk(0, 20))
    snap = buf.snapshot(5, channels=[2, 0])
    np.testing.assert_array_equal(snap.data[:, 1], np.arange(15, 20))
    np.testing.assert_array_equal(snap.data[:, 0], np.arange(15, 20) + 2000)
    assert len(buf.snapshot(0)) == 0
    assert len(buf.snapshot(100)) == 16
    late = buf.snapshot().since(0.17)
    np.testing.assert_array_equal(late.data[:, 0], [17, 18, 19])


def test_snapshot_is_a_copy():
    buf = SampleRing(4, 3, dtype=np.float32)
    buf.write(*_chunk(0, 4))
    snap = buf.snapshot()
    buf.write(*_chunk(4, 4))
    np.testing.assert_array_equal(snap.data[:, 0], [0, 1, 2, 3])


def test_bad_shapes_and_sizes_are_refused_with_a_message():
    with pytest.raises(ValueError, match="capacity of at least 1"):
        SampleRing(0, 2, dtype=np.float32)
    with pytest.raises(ValueError, match="at least 1 channel"):
        SampleRing(4, 0, dtype=np.float32)
    buf = SampleRing(4, 3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        buf.write(np.zeros((2, 4)), np.zeros(2))


def test_reader_sees_consistent_contiguous_copies_while_a_thread_writes():
    """Every snapshot taken during concurrent writes is a contiguous run of sample indices."""
    buf = SampleRing(257, 2, dtype=np.float32)
    total = 200_000
    done = threading.Event()

    def writer() -> None:
        rng = np.random.default_rng(1)
        n = 0
        while n < total:
            k = int(rng.integers(1, 64))
            idx = np.arange(n, n + k, dtype=np.float64)
            buf.write(np.column_stack([idx, -idx]), idx)
            n += k
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    checked = 0
    while not done.is_set() or checked == 0:
        snap = buf.snapshot()
        if len(snap):
            idx = snap.data[:, 0]
            assert np.all(np.diff(idx) == 1)
            np.testing.assert_array_equal(snap.data[:, 1], -idx)
            np.testing.assert_array_equal(snap.stamps, idx)
            assert idx[-1] == snap.n_written - 1
            checked += 1
    thread.join()
    assert buf.snapshot().data[-1, 0] == buf.n_written - 1 >= total - 1


def test_wait_wakes_on_a_write_from_another_thread_and_times_out_without_one():
    ring = SampleRing(100, 3)
    assert ring.wait(0.01) is False  # nothing written
    woke = []
    reader = threading.Thread(target=lambda: woke.append(ring.wait(30.0)))
    reader.start()
    ring.write(*_ramp(0, 5), arrival=1.0)
    reader.join(30.0)
    assert woke == [True] and len(ring.read()) == 5
    ring.write(*_ramp(5, 7), arrival=2.0)  # written before the wait: the wait returns at once
    assert ring.wait(30.0) is True
    assert ring.wait(0.01) is True  # still unread
    assert len(ring.read()) == 2
    assert ring.wait(0.01) is False  # read: nothing new
    ring.notify()
    assert ring.wait(30.0) is True


def test_wait_for_a_number_of_samples_sleeps_through_the_writes_before_them():
    ring = SampleRing(100, 3)
    woke = []
    reader = threading.Thread(target=lambda: woke.append((ring.wait(30.0, min_new=5), ring.available)))
    reader.start()
    for i in range(7):  # one sample per write, as some amplifiers push
        ring.write(*_ramp(i, i + 1), arrival=float(i))
        time.sleep(0.02)
    reader.join(30.0)
    assert woke and woke[0][0] is True and 5 <= woke[0][1] <= 7
    assert ring.wait(0.05, min_new=20) is False  # 7 unread, 20 asked: the timeout
    ring.notify()
    assert ring.wait(30.0, min_new=20) is True  # a notification wakes it whatever it waits for


def test_a_block_counts_the_writes_it_came_in():
    ring = SampleRing(100, 3)
    assert ring.read().n_pulls == 0
    ring.write(*_ramp(0, 5), arrival=1.0)
    ring.write(*_ramp(5, 6), arrival=2.0)
    ring.write(*_ramp(6, 9), arrival=3.0)
    assert ring.read().n_pulls == 3
    ring.write(*_ramp(9, 30), arrival=4.0)
    assert ring.read().n_pulls == 1
