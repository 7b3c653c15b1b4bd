"""Amplifier timing: jittered and back-stepping chunk stamps, irregular chunks, an off-nominal crystal,
another host's clock, clock steps. None of it may reset anything or stop the predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.faults.conftest import model_index, reference, scenarios_fixture

pytestmark = pytest.mark.slow

#: The amplifiers of this module's tests (``start_amplifier`` arguments); their engines run at once.
SOURCES = {
    # 38 shuffled channels in volts, chunks of 10 stamped at the push +-5 ms, a step back now and then
    "jitter": dict(seconds=14.0, jitter=0.005, backward_every=29, backward=0.015, chunk_size=10),
    "irregular": dict(seconds=16.0, jitter=0.005, chunk_size=(1, 500), rate_error=-1e-3, seed=3),
    # stamps from a host whose clock is an hour behind (no clock synchronisation possible)
    "other_clock": dict(seconds=12.0, clock_offset=-3600.0, seed=4),
    "step_2.0": dict(seconds=13.0, clock_jump=(6.0, 2.0), seed=5),
    "step_-0.5": dict(seconds=13.0, clock_jump=(6.0, -0.5), seed=5),
}


#: Every source of :data:`SOURCES` with its engine, run at the same time (each test checks one).
runs = scenarios_fixture(SOURCES)


def _check_flow_and_parity(run, bundle, amp, live, settled_after=10.0, stamp_ms=1.0, max_silence=0.5):
    """Predictions start in time, never stop, equal the offline ones and carry near-perfect stamps.

    One prediction per hop while chunks come more often than hops; with larger chunks, one per chunk.
    """
    la, W, sfreq = bundle.lookahead, bundle.config.model.n_times, bundle.config.preprocessing.sfreq
    stamps = np.asarray(run.pred.stamps)
    values = np.asarray(run.pred.values)
    arrivals = np.asarray(run.pred.arrivals)
    chunk = max(amp.chunk_size) if isinstance(amp.chunk_size, tuple) else amp.chunk_size
    every = max(live.hop, 0.5 * chunk / amp.sfreq)
    assert stamps.size > 0.8 * (amp.duration - W / sfreq) / every
    # the first one within the window length + 1 s of the first sample
    assert arrivals[0] - amp.t0 < W / sfreq + 1.0
    # never stop: no silence longer than a few hops while the source runs
    assert np.diff(arrivals).max() < max_silence and np.all(np.diff(stamps) > 0)
    n, grid_ms = model_index(stamps, amp, 0, la, sfreq)
    # values: the offline prediction of the same samples. A stamp is within one model sample of its
    # sample's time, so the value equals the offline one at the sample the stamp rounds to or a
    # neighbour; the samples so found must strictly increase.
    ref = reference(bundle, amp, 0, amp.next_index, la)
    vals = values[:, :-1]
    idx = n - (W - 1)
    shifts = np.array([0, -1, 1])
    cand = np.stack([np.clip(idx + d, 0, ref.shape[0] - 1) for d in shifts])  # (3, n_pred)
    diff = np.abs(vals[None] - ref[cand]).max(axis=2)
    best = diff.argmin(axis=0)
    assert (diff.min(axis=0) <= 1e-4).all(), f"{(diff.min(axis=0) > 1e-4).sum()} predictions differ"
    assert np.all(np.diff(cand[best, np.arange(idx.size)]) > 0)
    # the stamp's error: its distance from the true time of the sample whose value it carries
    err_ms = grid_ms - shifts[best] * 1e3 / sfreq
    # the first stamps lean on few chunk stamps (each +-5 ms); the clock fit then has many
    assert np.abs(err_ms).max() < 1e3 / sfreq
    late = stamps + la - amp.t0 > settled_after
    assert late.sum() > 10 and np.abs(err_ms[late]).max() < stamp_ms
    np.testing.assert_array_equal(values[:, -1], 1.0)  # every window is real data
    return np.abs(err_ms[late]).max()


def test_jittered_back_stepping_stamps_from_an_amplifier_in_volts(runs, module_cwl_bundle):
    """38 shuffled channels in volts, chunks of 10 stamped at the push +-5 ms, a step back now and then."""
    amp, live, run = runs["jitter"].amp, runs["jitter"].live, runs["jitter"].run
    assert amp.backward_steps > 40  # the stamps did step backwards (by up to 15 ms)
    st = run.engine.stats
    assert st.gaps == 0 and st.clock_steps == 0 and not st.resets and st.bridged_samples == 0
    _check_flow_and_parity(run, module_cwl_bundle, amp, live)


def test_irregular_chunks_and_a_crystal_off_by_a_thousandth(runs, module_cwl_bundle):
    amp, live, run = runs["irregular"].amp, runs["irregular"].live, runs["irregular"].run
    st = run.engine.stats
    assert st.gaps == 0 and st.clock_steps == 0 and not st.resets
    # chunks of up to 0.5 s: fewer stamps to learn the clock from (about 4 a second), so 3 ms
    _check_flow_and_parity(run, module_cwl_bundle, amp, live, stamp_ms=3.0, max_silence=1.0)
    assert run.engine.status()["input_rate"] == pytest.approx(1000.0 * (1 - 1e-3), rel=2e-4)


def test_a_source_on_another_clock(runs):
    """Stamps from a host whose clock is an hour behind (no clock synchronisation possible)."""
    run = runs["other_clock"].run
    assert run.engine.stats.gaps == 0 and not run.engine.stats.resets
    stamps = np.asarray(run.pred.stamps)
    assert stamps.size > 100 and np.all(np.diff(stamps) > 0)
    # the predictions are in the source's time base: an hour behind this machine's clock
    lag = np.asarray(run.pred.arrivals) - stamps
    assert np.all((lag > 3600) & (lag < 3601))


@pytest.mark.parametrize("jump", [2.0, -0.5])
def test_a_clock_step_changes_nothing_and_stamps_stay_continuous(runs, module_cwl_bundle, jump):
    sc = runs[f"step_{jump}"]
    amp, live, run = sc.amp, sc.live, sc.run
    st = run.engine.stats
    assert st.clock_steps == 1 and st.gaps == 0 and not st.resets and st.bridged_samples == 0
    # published stamps stay on the true sample times through the step (continuous, monotonic); the
    # new offset is the mean of the 2 s of +-5 ms stamps after the step (about 0.2 ms off), then
    # the fit goes on
    _check_flow_and_parity(run, module_cwl_bundle, amp, live, settled_after=9.0, stamp_ms=2.0)
