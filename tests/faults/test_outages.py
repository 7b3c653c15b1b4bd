"""Missing data and bad channels: radio outages, NaN bursts, a restarting source, a changed channel set,
flat and railed channels. Short outages are bridged; nothing stale is published; bad channels are named."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from tests.engine._harness import EngineRun, wait_for
from tests.faults.conftest import CWL_EEG, SHUFFLED, model_index, recording, reference, scenarios_fixture

pytestmark = pytest.mark.slow

OUT_AT, OUT_LEN = 5.0, 12.0  # 1-10 s outages: tools/bench_outage.py
#: The amplifiers of the tests of one source each (``start_amplifier`` arguments); their engines run at once.
SOURCES = {
    "outage": dict(seconds=OUT_AT + OUT_LEN + 4.0, outages=[(OUT_AT, OUT_LEN)], seed=6),
    "nan_burst": dict(seconds=9.0, nan_bursts=[(4.0, 0.3)], seed=7),
    "bad_channels": dict(seconds=12.0, flat={"Cz": (4.0, 8.0)}, railed={"O1": (5.0, 8.0)}, seed=8),
}


#: Every source of :data:`SOURCES` with its engine, run at the same time (each test checks one).
runs = scenarios_fixture(SOURCES)


def _statuses(run) -> list[dict]:
    return [json.loads(v[0]) for v in run.status.values]


def test_an_outage_is_bridged_and_predictions_resume_within_2_s(runs, module_cwl_bundle):
    out_at, out_len, cwl_bundle = OUT_AT, OUT_LEN, module_cwl_bundle
    amp, run = runs["outage"].amp, runs["outage"].run
    st = run.engine.stats
    assert st.clock_steps == 0  # a source that went quiet, not a clock that jumped
    assert st.gaps == 1 and not st.resets and st.missing_samples == pytest.approx(out_len * 1000, abs=15)
    states = [s["state"] for s in _statuses(run)]
    assert "stalled" in states and states[-1] == "stopped"  # the status said the source went quiet
    stamps, values, arrivals = (np.asarray(x) for x in (run.pred.stamps, run.pred.values, run.pred.arrivals))
    quality = values[:, -1]
    gone, back = amp.t0 + out_at, amp.t0 + out_at + out_len
    # nothing published while the source is away (a prediction in flight at its start aside)
    assert not np.any((arrivals > gone + 0.3) & (arrivals < back))
    after = arrivals > back
    resumed = arrivals[after].min() - back
    assert resumed < 2.0, f"predictions resumed {resumed:.2f} s after the source's return"
    assert quality[~after].min() == 1.0 and quality[after][0] < 1.0  # bridged windows say so
    assert np.all(np.diff(quality[after]) >= 0) and quality[-1] == 1.0
    assert np.all(np.diff(stamps) > 0) and np.isfinite(values).all()
    # once the window holds returning data only, it is the offline prediction of that data
    la, W = cwl_bundle.lookahead, cwl_bundle.config.model.n_times
    first = round(out_at + out_len) * 1000  # first sample after the outage
    clean = quality == 1.0
    late = after & clean
    n, err_ms = model_index(stamps[late], amp, first, la, 100.0)
    assert np.abs(err_ms).max() < 5.0 and late.sum() > 20
    ref = reference(cwl_bundle, amp, first, amp.next_index, la)
    np.testing.assert_allclose(values[late, :-1], ref[n - (W - 1)], rtol=0, atol=1e-4)
    print(f"resumed {resumed:.3f} s after the return; first quality {quality[after][0]:.3f}")


def test_a_nan_burst_is_dropped_and_bridged(runs):
    amp, run = runs["nan_burst"].amp, runs["nan_burst"].run
    st = run.engine.stats
    assert st.nan_resets == 1 and st.nan_samples == 300 and not st.resets and st.bridged_samples > 0
    values, arrivals = np.asarray(run.pred.values), np.asarray(run.pred.arrivals)
    assert np.isfinite(values).all()
    back = amp.t0 + 4.3
    assert not np.any((arrivals > amp.t0 + 4.1) & (arrivals < back))
    assert arrivals[arrivals > back].min() - back < 2.0


def test_flat_and_railed_channels_are_named_and_repaired(runs, module_cwl_bundle):
    amp, run, cwl_bundle = runs["bad_channels"].amp, runs["bad_channels"].run, module_cwl_bundle
    bad = [s["bad_channels"] for s in _statuses(run)]
    assert {"Cz": "flat", "O1": "railed"} in bad  # both named, with what is wrong
    assert bad[-1] == {}  # and dropped again once they carry a signal
    actions = {s["bad_channel_action"] for s in _statuses(run)}
    assert actions == {"spherical-spline interpolation"}
    st = run.engine.stats
    assert st.gaps == 0 and not st.resets
    stamps, values, arrivals = (np.asarray(x) for x in (run.pred.stamps, run.pred.values, run.pred.arrivals))
    assert np.isfinite(values).all() and np.diff(arrivals).max() < 0.5  # never stopped
    rel = stamps + cwl_bundle.lookahead - amp.t0
    before, during = values[rel < 3.9, :-1], values[(rel > 5.0) & (rel < 7.9), :-1]
    # the railed channel (187 mV) never reaches the common average: predictions stay in their range
    spread = before.max(axis=0) - before.min(axis=0)
    assert np.all(np.abs(during - before.mean(axis=0)) < 3 * spread + 1e-6)


def _until_lost(bundle, live, first, worker_threads):
    """An engine on ``first`` until that source has ended and the engine waits for it to return."""
    run = EngineRun(bundle, live, first.source_id, worker_threads)
    wait_for(first.finished.is_set, timeout=30, what="the first source finishing")
    wait_for(lambda: run.state() == "waiting", what="the engine noticing the loss")
    return first, run


def test_a_restarted_source_with_reordered_channels_is_bridged(
    cwl_bundle, fault_live, amplifier, worker_threads
):
    first, run = _until_lost(cwl_bundle, fault_live, amplifier(seconds=5.0, seed=9), worker_threads)
    time.sleep(1.5)
    labels = SHUFFLED[::-1]  # the same channels in another order, a new outlet (new uid)
    second = amplifier(
        seconds=6.0, labels=labels, data=recording(6.0, seed=10), name=first.name, source_id=first.source_id
    )
    wait_for(second.finished.is_set, timeout=30, what="the second source finishing")
    run.finish(settle=0.5)
    eng = run.engine
    assert eng.status()["reconnects"] == 1 and not eng.stats.resets  # bridged, not reset
    arrivals, values = np.asarray(run.pred.arrivals), np.asarray(run.pred.values)
    assert arrivals[arrivals > second.t0].min() - second.t0 < 2.0
    # with the new order remapped, the window of new data equals the offline prediction of it
    stamps = np.asarray(run.pred.stamps)
    clean = (stamps > second.t0) & (values[:, -1] == 1.0)
    la, W = cwl_bundle.lookahead, cwl_bundle.config.model.n_times
    n, _ = model_index(stamps[clean], second, 0, la, 100.0)
    x = second.samples(np.arange(second.next_index))[:, [labels.index(ch) for ch in CWL_EEG]]
    from tests.engine._harness import offline

    ref = offline(cwl_bundle, (x * 1e-6).astype(np.float32) * np.float32(1e6), 1000.0, la)
    assert clean.sum() > 20
    np.testing.assert_allclose(values[clean, :-1], ref[n - (W - 1)], rtol=0, atol=1e-4)


def test_a_returning_stream_without_a_model_channel_is_refused_by_name(
    cwl_bundle, fault_live, amplifier, worker_threads, caplog
):
    caplog.set_level(logging.ERROR, logger="beira_rt")
    first, run = _until_lost(cwl_bundle, fault_live, amplifier(seconds=3.0, seed=11), worker_threads)
    n_before = len(run.pred.stamps)
    labels = [ch for ch in SHUFFLED if ch != "Pz"]
    data = recording(4.0, seed=12)[:, : len(labels)]
    second = amplifier(seconds=4.0, labels=labels, data=data, name=first.name, source_id=first.source_id)
    wait_for(lambda: run.engine.status()["refused_streams"] >= 1, what="the refusal")
    assert any("Pz" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)
    second.stop.set()
    run.finish(settle=0.3)
    assert len(run.pred.stamps) == n_before and run.engine.status()["reconnects"] == 0


def test_a_source_restarted_on_another_clock_starts_a_new_time_base(
    cwl_bundle, fault_live, amplifier, worker_threads
):
    first, run = _until_lost(cwl_bundle, fault_live, amplifier(seconds=4.0, seed=13), worker_threads)
    n_first = len(run.pred.stamps)
    # the app comes back on another host whose clock is 100 s behind this one
    second = amplifier(seconds=4.0, clock_offset=-100.0, name=first.name, source_id=first.source_id, seed=14)
    wait_for(second.finished.is_set, timeout=30, what="the second source finishing")
    run.finish(settle=0.5)
    assert run.engine.stats.resets == {"clock": 1}
    stamps, arrivals = np.asarray(run.pred.stamps), np.asarray(run.pred.arrivals)
    assert len(stamps) - n_first > 40  # predictions resumed, on the new time base
    lag = arrivals[n_first:] - stamps[n_first:]
    assert np.all((lag > 100.0) & (lag < 101.0)) and np.all(np.diff(stamps[n_first:]) > 0)
