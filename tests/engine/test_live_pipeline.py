"""LivePipeline: the window and its timestamp equal the offline preprocessing, through gaps and NaNs."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.config import PreprocessingConfig
from beira_rt.engine.device_window import DeviceWindow
from beira_rt.engine.live_pipeline import LivePipeline
from beira_rt.engine.stats import EngineStats
from beira_rt.lsl import Block
from beira_rt.preprocessing import CausalPreprocessor, Normalizer, preprocess_recording

W = 32
CFG = PreprocessingConfig()


def _eeg(n, sfreq, n_ch=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sfreq
    x = 20 * rng.standard_normal((n, n_ch)) + 30 * np.sin(2 * np.pi * 10 * t)[:, None] * rng.uniform(
        0.5, 1.5, n_ch
    )
    return x + 50 * np.sin(2 * np.pi * 50 * t)[:, None]  # line noise for the notch


def _make(sfreq_in, dejitter=True, n_ch=4, **kw):
    stats = EngineStats()
    norm = Normalizer(np.full(n_ch, 0.5), np.full(n_ch, 7.0))
    pipe = LivePipeline(
        CausalPreprocessor(CFG, sfreq_in, n_ch),
        norm,
        DeviceWindow(n_ch, W),
        sfreq_in,
        CFG.sfreq,
        stats,
        dejitter=dejitter,
        **kw,
    )
    return pipe, norm, stats


def _offline(data, sfreq_in, norm):
    return norm.apply(preprocess_recording(data.T, sfreq_in, CFG))


def _feed_checking(pipe, data, stamps, z_ref, t_ref, rng, breaks_at=(), seg_start=0):
    """Feed in random chunks; after each, the window and stamp must match the offline reference.

    The reference is the segment's own: the window is compared once it holds W samples of it.
    """
    i, checked = 0, 0
    n = data.shape[0]
    base = pipe.total_out
    while i < n:
        j = min(n, i + int(rng.integers(0, 60)))
        brk = tuple(b - i for b in breaks_at if i <= b < j) if j > i else ()
        pipe.feed(Block(data[i:j], stamps[i:j], seg_start + i, brk))
        i = j
        k = pipe.total_out - base  # model-rate samples of this segment so far
        if k >= W:
            assert pipe.ready
            np.testing.assert_allclose(pipe.window.view().numpy(), z_ref[:, k - W : k], rtol=0, atol=2e-5)
            assert pipe.newest_stamp == pytest.approx(t_ref[k - 1], abs=1e-7)
            checked += 1
        elif base == 0:
            assert not pipe.ready  # at the start, nothing before a whole window
    return checked


@pytest.mark.parametrize("sfreq_in", [1000.0, 250.0, 512.0, 5000.0])
@pytest.mark.parametrize("dejitter", [True, False])
def test_window_and_stamps_match_offline(sfreq_in, dejitter):
    rng = np.random.default_rng(1)
    n = int(3 * sfreq_in)
    data = _eeg(n, sfreq_in)
    t0 = 1000.0
    stamps = t0 + np.arange(n) / sfreq_in
    pipe, norm, stats = _make(sfreq_in, dejitter)
    z = _offline(data, sfreq_in, norm)
    t_model = t0 + np.arange(z.shape[1]) / CFG.sfreq  # model sample k at input position k * sfreq_in / sfreq
    assert _feed_checking(pipe, data, stamps, z, t_model, rng) > 10
    assert pipe.total_out == z.shape[1]
    assert stats.gaps == stats.nan_resets == stats.breaks == 0
    assert stats.rate.rate == pytest.approx(sfreq_in, rel=1e-6)


def _gap_run(bridge, gap=0.25, max_bridge=15.0, resume=0.05):
    rng = np.random.default_rng(2)
    sfreq = 500.0
    n, g = 1500, 700
    data = _eeg(n, sfreq)
    stamps = 50.0 + np.arange(n) / sfreq
    stamps[g:] += gap  # samples were lost in transit: the timestamps jump
    pipe, norm, stats = _make(sfreq, bridge=bridge, max_bridge=max_bridge, resume=resume)
    z1 = _offline(data[:g], sfreq, norm)
    _feed_checking(pipe, data[:g], stamps[:g], z1, 50.0 + np.arange(400) / 100, rng)
    assert pipe.ready and pipe.quality == 1.0
    before = pipe.window.view().numpy().copy()
    z2 = _offline(data[g:], sfreq, norm)
    t2 = stamps[g] + np.arange(z2.shape[1]) / CFG.sfreq
    # the first returning samples (enough to confirm the gap, not a whole window)
    first = 110
    pipe.feed(Block(data[g : g + first], stamps[g : g + first], g))
    pipe.feed(Block(data[g + first : g + first + 1], stamps[g + first : g + first + 1], g + first))
    return pipe, stats, (data, stamps, g, first + 1, z2, t2, before, rng)


def test_a_gap_is_bridged_and_predictions_resume_with_their_quality():
    pipe, stats, (data, stamps, g, fed, z2, t2, before, rng) = _gap_run("repeat")
    assert stats.gaps == 1 and stats.missing_samples == pytest.approx(125, abs=1)
    assert not stats.resets  # nothing was reset
    k = pipe.total_out - 140  # returning model-rate samples (140 before the gap)
    assert 0 < k < W and pipe.ready  # publishing again from a partly bridged window
    n_fill = 25  # the 100 Hz grid points from the last sample before (input 695) to the return (700 + 125)
    assert stats.bridged_samples == n_fill
    # the window: W - k bridged samples, then k returning ones, the first 5 (0.05 s) of them settling
    assert pipe.quality == pytest.approx(1 - (W - k + 5) / W)
    win = pipe.window.view().numpy()
    np.testing.assert_allclose(win[:, W - k :], z2[:, :k], atol=2e-5)  # the returning data
    # the bridge repeats the newest real samples before the gap (its last W - k are in the window)
    np.testing.assert_allclose(win[:, : W - k], before[:, k:], atol=1e-6)
    assert pipe.newest_stamp == pytest.approx(t2[k - 1], abs=1e-7)
    # the rest: windows of returning data only equal the offline preprocessing of the returning data
    # (the filters restarted at the return), stamps continue, and the quality is back to 1
    assert _feed_checking(pipe, data[g + fed :], stamps[g + fed :], z2[:, k:], t2[k:], rng) > 5
    assert pipe.quality == 1.0


def test_zeros_bridge_fills_the_training_mean():
    pipe, _stats, (*_, _before, _rng) = _gap_run("zeros")
    k = pipe.total_out - 140
    win = pipe.window.view().numpy()
    np.testing.assert_array_equal(win[:, : W - k], 0.0)


@pytest.mark.parametrize(("bridge", "gap", "max_bridge"), [("reset", 0.25, 15.0), ("repeat", 0.25, 0.2)])
def test_reset_mode_and_long_outages_wait_for_a_whole_window(bridge, gap, max_bridge):
    pipe, stats, (data, stamps, g, fed, z2, t2, _, _rng) = _gap_run(bridge, gap, max_bridge)
    assert stats.resets == {"outage": 1} and stats.gaps == 1
    assert not pipe.ready and pipe.n_out == pipe.total_out - 140  # counted from the reset
    i = g + fed
    while not pipe.ready:
        pipe.feed(Block(data[i : i + 7], stamps[i : i + 7], i))
        i += 7
    k = pipe.total_out - 140
    assert k == W and pipe.quality == 1.0
    np.testing.assert_allclose(pipe.window.view().numpy(), z2[:, :W], atol=2e-5)
    assert pipe.newest_stamp == pytest.approx(t2[W - 1], abs=1e-7)


def test_small_jitter_is_not_a_gap():
    rng = np.random.default_rng(3)
    sfreq = 1000.0
    stamps = 7.0 + np.arange(2000) / sfreq + rng.uniform(0, 0.9e-3, 2000)  # < 2 periods step to step
    pipe, _, stats = _make(sfreq)
    pipe.feed(Block(_eeg(2000, sfreq), stamps, 0))
    assert stats.gaps == 0 and pipe.ready


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nonfinite_samples_are_dropped_and_never_reach_the_window(bad_value):
    rng = np.random.default_rng(4)
    sfreq = 500.0
    n, a, b = 1500, 600, 650
    data = _eeg(n, sfreq)
    data[a:b, 2] = bad_value
    data[a + 5, 0] = bad_value
    stamps = 3.0 + np.arange(n) / sfreq
    pipe, norm, stats = _make(sfreq, resume=0.05)
    _feed_checking(
        pipe, data[:a], stamps[:a], _offline(data[:a], sfreq, norm), 3.0 + np.arange(400) / 100, rng
    )
    # the bad run, split over several blocks: nothing published while it lasts
    for i in range(a, b, 7):
        pipe.feed(Block(data[i : min(i + 7, b)], stamps[i : min(i + 7, b)], i))
        assert not pipe.ready
    z2 = _offline(data[b:], sfreq, norm)
    t2 = stamps[b] + np.arange(z2.shape[1]) / CFG.sfreq
    assert _feed_checking(pipe, data[b:], stamps[b:], z2, t2, rng, seg_start=b) > 5
    assert stats.nan_resets == 1 and stats.nan_samples == b - a
    # grid points after the last model sample (input 595) before the return (650): bridged, nothing reset
    assert stats.bridged_samples == 10 and not stats.resets
    assert np.isfinite(pipe.window.view().numpy()).all()


def test_break_mark_resets_without_counting_a_gap():
    sfreq = 500.0
    data = _eeg(1000, sfreq)
    stamps = np.arange(1000) / sfreq
    pipe, norm, stats = _make(sfreq)
    pipe.feed(Block(data[:600], stamps[:600], 0))
    assert pipe.ready
    new_stamps = 100.0 + np.arange(400) / sfreq  # a new connection: timestamps restart elsewhere
    pipe.feed(Block(data[600:], new_stamps, 600, breaks=(0,)))
    assert stats.breaks == 1 and stats.gaps == 0 and stats.resets == {"outage": 1}  # 98 s later
    z2 = _offline(data[600:], sfreq, norm)
    assert pipe.n_out == z2.shape[1]
    np.testing.assert_allclose(pipe.window.view().numpy(), z2[:, -W:], atol=2e-5)
    assert pipe.newest_stamp == pytest.approx(100.0 + (z2.shape[1] - 1) / CFG.sfreq, abs=1e-7)


def test_a_new_connection_right_after_an_anomaly_keeps_samples_and_clock_aligned():
    """Samples the clock still held when the stream was lost are decided, not left behind."""
    sfreq = 500.0
    data = _eeg(1500, sfreq)
    pipe, norm, stats = _make(sfreq, resume=0.05)
    stamps = 10.0 + np.arange(700) / sfreq
    pipe.feed(Block(data[:600], stamps[:600], 0))
    pipe.feed(Block(data[600:610], stamps[600:610] + 0.3, 600))  # an anomaly, held back
    assert pipe.clock.n_pending == 10
    new = 12.0 + np.arange(800) / sfreq  # the stream returns 0.6 s later on a new connection
    pipe.feed(Block(data[700:], new, 700, breaks=(0,)))
    assert pipe.clock.n_pending == 0 and stats.breaks == 1 and not stats.resets
    z2 = _offline(data[700:], sfreq, norm)
    np.testing.assert_allclose(pipe.window.view().numpy(), z2[:, -W:], atol=2e-5)
    assert pipe.newest_stamp == pytest.approx(12.0 + (z2.shape[1] - 1) / CFG.sfreq, abs=1e-7)


def test_a_returning_stream_on_an_earlier_clock_restarts_on_its_time_base():
    sfreq = 500.0
    data = _eeg(1200, sfreq)
    pipe, norm, stats = _make(sfreq)
    pipe.feed(Block(data[:600], 5000.0 + np.arange(600) / sfreq, 0))
    assert pipe.ready and pipe.time_base == 0
    new = 20.0 + np.arange(600) / sfreq  # a new connection whose clock is far behind
    pipe.feed(Block(data[600:], new, 600, breaks=(0,)))
    assert stats.resets == {"clock": 1} and pipe.time_base == 1
    z2 = _offline(data[600:], sfreq, norm)
    np.testing.assert_allclose(pipe.window.view().numpy(), z2[:, -W:], atol=2e-5)
    assert pipe.newest_stamp == pytest.approx(20.0 + (z2.shape[1] - 1) / CFG.sfreq, abs=1e-7)
