"""Gap detection and the gap-aware de-jitter."""

from __future__ import annotations

import numpy as np

from beira_rt.engine.timing import Dejitterer, find_gaps


def test_find_gaps_regular_stream_has_none():
    t = 100.0 + np.arange(1000) / 500.0
    assert find_gaps(t, None, 1 / 500.0, 2.0).size == 0
    assert find_gaps(t[10:], t[9], 1 / 500.0, 2.0).size == 0


def test_find_gaps_positions_forward_and_backward():
    p = 1e-3
    t = np.arange(100) * p
    t[40:] += 5 * p  # forward jump between 39 and 40
    t[70:] -= 1.0  # clock jumps back between 69 and 70
    np.testing.assert_array_equal(find_gaps(t, None, p, 2.0), [40, 70])
    # a gap just before the block, against the previous sample
    np.testing.assert_array_equal(find_gaps(t[:5] + 1.0, t[0], p, 2.0), [0])
    # 2 periods is not a gap, 2.5 is
    assert find_gaps(np.array([0.0, 2 * p]), None, p, 2.0).size == 0
    np.testing.assert_array_equal(find_gaps(np.array([0.0, 2.5 * p]), None, p, 2.0), [1])


def _feed(dj, t, rng, max_chunk=40):
    out, i = [], 0
    while i < t.size:
        j = min(t.size, i + int(rng.integers(1, max_chunk)))
        out.append(dj.process(t[i:j]))
        i = j
    return np.concatenate(out)


def test_dejitter_keeps_exact_stamps_exact():
    rng = np.random.default_rng(0)
    t = 5000.0 + np.arange(20_000) / 1000.0
    np.testing.assert_allclose(_feed(Dejitterer(1000.0), t, rng), t, rtol=0, atol=1e-9)


def test_dejitter_removes_jitter_and_follows_a_clock_drift():
    rng = np.random.default_rng(1)
    sfreq, n = 500.0, 30_000  # 60 s
    true = 1234.5 + np.arange(n) / (sfreq * (1 + 50e-6))  # the amplifier clock runs 50 ppm fast
    received = true + rng.uniform(0, 4e-3, n)  # up to 4 ms of one-sided transport jitter
    out = _feed(Dejitterer(sfreq, halftime=10.0), received, rng)
    late = slice(n // 2, None)  # after the fit has settled
    err = out[late] - (true[late] + 2e-3)  # the fit follows the mean delay (2 ms)
    assert np.abs(err).max() < 0.3e-3  # raw jitter is +-2 ms around that
    assert np.abs(received[late] - (true[late] + 2e-3)).max() > 1.5e-3


def test_dejitter_reset_starts_a_new_segment():
    rng = np.random.default_rng(2)
    dj = Dejitterer(1000.0)
    a = 10.0 + np.arange(5000) / 1000.0
    _feed(dj, a, rng)
    dj.reset()
    b = 30.0 + np.arange(2000) / 1000.0  # 15 s later
    np.testing.assert_allclose(_feed(dj, b, rng), b, atol=1e-9)  # no smear of the gap
