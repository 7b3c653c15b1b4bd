"""RingBuffer: order across the wrap, bounded size, channel selection, consistent copies under a writer thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beira_rt.dashboard.buffers import RingBuffer


def _chunk(start: int, n: int, n_channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, start + n, dtype=np.float64)
    data = np.column_stack([idx + 1000 * c for c in range(n_channels)])
    return data, idx / 100.0


def test_keeps_newest_in_order_across_wraps():
    buf = RingBuffer(10, 3)
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
    buf = RingBuffer(8, 3)
    buf.write(*_chunk(0, 5))
    buf.write(*_chunk(5, 27))
    snap = buf.snapshot()
    np.testing.assert_array_equal(snap.data[:, 0], np.arange(24, 32))
    assert snap.n_written == 32
    buf.write(*_chunk(32, 3))
    np.testing.assert_array_equal(buf.snapshot().data[:, 0], np.arange(27, 35))


def test_snapshot_last_n_and_channels_and_since():
    buf = RingBuffer(16, 3)
    buf.write(*_chunk(0, 20))
    snap = buf.snapshot(5, channels=[2, 0])
    np.testing.assert_array_equal(snap.data[:, 1], np.arange(15, 20))
    np.testing.assert_array_equal(snap.data[:, 0], np.arange(15, 20) + 2000)
    assert len(buf.snapshot(0)) == 0
    assert len(buf.snapshot(100)) == 16
    late = buf.snapshot().since(0.17)
    np.testing.assert_array_equal(late.data[:, 0], [17, 18, 19])


def test_snapshot_is_a_copy():
    buf = RingBuffer(4, 3)
    buf.write(*_chunk(0, 4))
    snap = buf.snapshot()
    buf.write(*_chunk(4, 4))
    np.testing.assert_array_equal(snap.data[:, 0], [0, 1, 2, 3])


def test_bad_shapes_and_sizes_are_refused_with_a_message():
    with pytest.raises(ValueError, match="capacity of at least 1"):
        RingBuffer(0, 2)
    with pytest.raises(ValueError, match="at least 1 channel"):
        RingBuffer(4, 0)
    buf = RingBuffer(4, 3)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        buf.write(np.zeros((2, 4)), np.zeros(2))


def test_reader_sees_consistent_contiguous_copies_while_a_thread_writes():
    """Every snapshot taken during concurrent writes is a contiguous run of sample indices."""
    buf = RingBuffer(257, 2)
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
