"""Update-slot accounting, latency percentiles and the input-rate meter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beira_rt.engine.stats import HopSchedule, LatencyTracker, RateMeter


def _simulate(hop: float, durations: list[float]) -> tuple[int, int, float]:
    """Run updates of the given durations on the grid; return (updates, skipped, start of the last)."""
    sched = HopSchedule(hop, 0.0)
    now, start, updates, skipped = 0.0, 0.0, 0, 0
    for d in durations:
        now += sched.wait(now)
        start = now
        skipped += sched.take(now)
        updates += 1
        now += d
    return updates, skipped, start


def test_fast_updates_skip_nothing():
    assert _simulate(0.1, [0.03] * 100)[1] == 0


def test_one_slow_update_is_late_not_skipped_and_two_hops_skip_one():
    # 0.15 s: the next slot (0.1) runs late at 0.15, nothing is lost
    assert _simulate(0.1, [0.15, 0.01, 0.01])[1] == 0
    # 0.25 s: slots 0.1 and 0.2 passed; one runs (late, newest data), one is skipped
    assert _simulate(0.1, [0.25, 0.01, 0.01])[1] == 1


def test_sustained_overload_skips_and_never_queues():
    updates, skipped, last = _simulate(0.1, [0.25] * 40)
    # every slot due by the last update either ran or was skipped: no backlog
    assert updates + skipped == math.floor(last / 0.1 + 1e-9) + 1
    assert skipped / (updates + skipped) == pytest.approx(0.6, abs=0.05)


def test_take_before_due_is_an_error():
    with pytest.raises(RuntimeError, match="before the slot was due"):
        HopSchedule(0.1, 5.0).take(4.9)


def test_latency_percentiles_recent_and_overall():
    rng = np.random.default_rng(0)
    values = rng.lognormal(np.log(0.05), 0.5, 5000)
    tr = LatencyTracker(recent=600)
    for v in values:
        tr.add(float(v))
    assert tr.recent(50) == pytest.approx(np.percentile(values[-600:], 50))
    for q in (50, 99):
        assert tr.overall(q) == pytest.approx(np.percentile(values, q), rel=0.02)  # bin resolution ~1 %
    assert math.isnan(LatencyTracker().overall(50)) and math.isnan(LatencyTracker().recent(50))


def test_rate_meter_measures_from_timestamps():
    meter = RateMeter(span=2.0)
    assert math.isnan(meter.rate)
    for k in range(1, 100):
        meter.add(100.0 + k * 0.05, k * 25)  # 25 samples every 50 ms of timestamps
    assert meter.rate == pytest.approx(500.0)
    meter.reset()
    assert math.isnan(meter.rate)


def test_hop_counter_slots_follow_the_sample_count():
    from beira_rt.engine.stats import HopCounter

    hops = HopCounter(10)
    # one model-rate sample per pull: a slot exactly at each multiple of 10
    slots = [n for n in range(1, 61) if hops.passed(n)]
    assert slots == [10, 20, 30, 40, 50, 60]
    assert hops.passed(60) == 0  # no new boundary
    assert hops.passed(95) == 3  # one read over several boundaries: 3 slots (one update, 2 skipped)
    assert hops.passed(99) == 0
    assert hops.passed(100, ready=False) == 0  # a boundary passed while nothing may be published
    assert hops.passed(105) == 0  # ... is passed all the same
    assert hops.passed(110) == 1
    with pytest.raises(ValueError, match="at least 1"):
        HopCounter(0)
