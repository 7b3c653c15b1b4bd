"""StreamClock: stamps as noisy observations of a regular sample clock (no LSL needed here).

The amplifier model of these tests: chunks of random size, each stamped with
the push time (true time of its last sample plus jitter), the earlier samples
back-dated at the nominal rate, as liblsl does for ``push_chunk(x, timestamp)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.engine.timing import DECIDE_AFTER, StreamClock


def amplifier(true, rng, sfreq, jitter=0.005, max_chunk=60, keep=None, stamp_shift=None, late=None):
    """Yield (stamps, arrivals, indices) per chunk for a source whose sample i happens at ``true[i]``.

    ``keep`` (bool per sample) drops samples (lost in transit); ``stamp_shift(i)`` adds a clock
    offset to the stamp of a chunk ending at sample i; ``late`` is a set of chunk numbers stamped
    200 ms late (outliers).
    """
    idx = np.arange(true.size) if keep is None else np.flatnonzero(keep)
    pos, c = 0, 0
    while pos < idx.size:
        m = int(rng.integers(1, max_chunk))
        ch = idx[pos : pos + m]
        pos += m
        push = true[ch[-1]] + rng.uniform(-jitter, jitter)
        stamp = push + (stamp_shift(ch[-1]) if stamp_shift else 0.0) + (0.2 if late and c in late else 0.0)
        stamps = stamp - np.arange(ch.size)[::-1] / sfreq
        arrivals = np.full(ch.size, true[ch[-1]] + 0.002)  # pulled 2 ms after the push
        c += 1
        yield stamps, arrivals, ch


def run(clock, chunks, with_arrivals=True):
    times, events, idx, k = [], [], [], 0
    for stamps, arrivals, ch in chunks:
        t, ev = clock.push(stamps, arrivals if with_arrivals else None)
        events += [(e.kind, e.missing, e.seconds, k + e.at) for e in ev]
        times.append(t)
        k += t.size
        idx.append(ch)
    return np.concatenate(times), events, np.concatenate(idx)


def test_perfect_stamps_come_back_exact_in_any_chunking():
    rng = np.random.default_rng(0)
    true = 5000.0 + np.arange(20_000) / 1000.0
    t, events, _ = run(StreamClock(1000.0), amplifier(true, rng, 1000.0, jitter=0.0))
    assert events == []
    np.testing.assert_allclose(t, true, rtol=0, atol=1e-9)


@pytest.mark.parametrize("sfreq", [250.0, 1000.0, 5000.0])
def test_jitter_backward_steps_and_a_drifting_crystal_are_not_gaps(sfreq):
    rng = np.random.default_rng(1)
    n = int(60 * sfreq)
    true = 100.0 + np.arange(n) / (sfreq * (1 - 1e-3))  # the amplifier runs 0.1 % slow
    chunks = list(amplifier(true, rng, sfreq, jitter=0.005, max_chunk=int(0.02 * sfreq) + 2))
    steps = np.diff([c[0][-1] for c in chunks])
    assert (steps < 0).any(), "the test stream should step backwards now and then"
    clock = StreamClock(sfreq)
    t, events, idx = run(clock, chunks)
    assert events == [] and clock.gaps == clock.steps == 0
    assert t.size == n
    err = t - true[idx]
    assert np.abs(err[int(10 * sfreq) :]).max() < 1e-3  # within 1 ms of the true times after 10 s
    assert np.all(np.diff(t) > 0)


def test_missing_samples_are_a_gap_of_the_right_size_at_the_right_place():
    rng = np.random.default_rng(2)
    sfreq, n = 1000.0, 30_000
    true = 10.0 + np.arange(n) / sfreq
    keep = np.ones(n, bool)
    keep[12_000:14_500] = False  # 2.5 s lost
    clock = StreamClock(sfreq)
    t, events, idx = run(clock, amplifier(true, rng, sfreq, keep=keep))
    assert len(events) == 1
    kind, missing, seconds, at = events[0]
    assert kind == "gap" and abs(missing - 2500) <= 10 and seconds == pytest.approx(2.5, abs=0.01)
    # at the first sample after the gap, or up to a chunk earlier: a chunk that straddles the loss is
    # back-dated from its last stamp, so its first samples look as if they came after the gap too
    assert idx[at] == 14_500 or (idx[at] < 12_000 and idx[at + 60] >= 14_500)
    assert np.abs(t[at + 60 :] - true[idx[at + 60 :]]).max() < 5e-3


def test_a_gap_below_the_tolerance_is_jitter():
    rng = np.random.default_rng(3)
    true = np.arange(20_000) / 1000.0
    keep = np.ones(true.size, bool)
    keep[9000:9020] = False  # 20 ms lost: less than the 50 ms tolerance
    _, events, _ = run(StreamClock(1000.0), amplifier(true, rng, 1000.0, keep=keep))
    assert events == []


@pytest.mark.parametrize("jump", [2.0, -0.5, 0.08])
def test_source_clock_steps_change_no_sample_count_and_times_stay_continuous(jump):
    rng = np.random.default_rng(4)
    sfreq, n = 1000.0, 40_000
    true = 50.0 + np.arange(n) / sfreq
    clock = StreamClock(sfreq)
    chunks = amplifier(true, rng, sfreq, stamp_shift=lambda i: jump if i >= 20_000 else 0.0)
    t, events, idx = run(clock, chunks)
    assert [e[0] for e in events] == ["step"] and events[0][2] == pytest.approx(jump, abs=0.006)
    assert t.size == n and np.all(np.diff(t) > 0)
    # published times follow the true ones: the new offset is measured on the 2 s after the step,
    # then the line fit goes on without that pause weighing on it
    assert np.abs(t - true[idx])[22_500:].max() < 1e-3


def test_a_forward_clock_jump_is_a_gap_without_arrival_times():
    rng = np.random.default_rng(5)
    true = np.arange(20_000) / 1000.0
    chunks = amplifier(true, rng, 1000.0, stamp_shift=lambda i: 1.0 if i >= 10_000 else 0.0)
    _, events, _ = run(StreamClock(1000.0), chunks, with_arrivals=False)
    assert [e[0] for e in events] == ["gap"]


def test_a_chunk_stamped_late_is_an_outlier_not_a_gap():
    rng = np.random.default_rng(6)
    true = np.arange(20_000) / 1000.0
    clock = StreamClock(1000.0)
    t, events, idx = run(clock, amplifier(true, rng, 1000.0, late={200, 201}))
    assert events == [] and clock.outliers == 1
    assert t.size == true.size and np.abs(t - true[idx])[10_000:].max() < 1e-3


def test_an_anomaly_waits_for_a_later_pull_then_is_decided_alone():
    clock = StreamClock(1000.0)
    t, ev = clock.push(np.arange(1000) / 1000.0, np.full(1000, 1.0))
    assert t.size == 1000 and ev == []
    stamps = 3.0 + np.arange(10) / 1000.0  # 2 s later: a gap, or a late stamp?
    t, ev = clock.push(stamps, np.full(10, 3.01))
    assert t.size == 0 and clock.n_pending == 10  # not decided yet
    t, ev = clock.decide_pending(3.01 + DECIDE_AFTER / 2)
    assert t.size == 0
    t, ev = clock.decide_pending(3.01 + DECIDE_AFTER)
    assert t.size == 10 and [e.kind for e in ev] == ["gap"] and ev[0].missing == 2000
    np.testing.assert_allclose(t, stamps, atol=1e-6)


def test_bad_tolerance_is_refused():
    with pytest.raises(ValueError, match="tolerance"):
        StreamClock(1000.0, tolerance=0.0)


@pytest.mark.parametrize("seconds", [0.5, 12.0])
def test_a_long_outage_is_a_gap_not_a_clock_step(seconds):
    """The latency floor that tells a clock step from a gap outlives an outage of any length."""
    rng = np.random.default_rng(7)
    sfreq = 1000.0
    n = int((20 + seconds) * sfreq)
    true = 3.0 + np.arange(n) / sfreq
    keep = np.ones(n, bool)
    keep[5000 : 5000 + int(seconds * sfreq)] = False
    clock = StreamClock(sfreq)
    _, events, _ = run(clock, amplifier(true, rng, sfreq, keep=keep))
    assert [e[0] for e in events] == ["gap"] and clock.steps == 0
    assert events[0][1] == pytest.approx(seconds * sfreq, abs=10)
