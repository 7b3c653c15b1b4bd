"""LivePipeline: the window and its timestamp equal the offline preprocessing, through gaps and NaNs."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.config import PreprocessingConfig
from beira_rt.engine.pipeline import LivePipeline
from beira_rt.engine.ringbuffer import Block
from beira_rt.engine.stats import EngineStats
from beira_rt.engine.window import DeviceWindow
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


def _make(sfreq_in, dejitter=True, gap_factor=2.0, n_ch=4):
    stats = EngineStats()
    norm = Normalizer(np.full(n_ch, 0.5), np.full(n_ch, 7.0))
    pipe = LivePipeline(
        CausalPreprocessor(CFG, sfreq_in, n_ch),
        norm,
        DeviceWindow(n_ch, W),
        sfreq_in,
        CFG.sfreq,
        gap_factor,
        dejitter,
        stats,
    )
    return pipe, norm, stats


def _offline(data, sfreq_in, norm):
    return norm.apply(preprocess_recording(data.T, sfreq_in, CFG))


def _feed_checking(pipe, data, stamps, z_ref, t_ref, rng, breaks_at=(), seg_start=0):
    """Feed in random chunks; after each, the window and stamp must match the offline reference."""
    i, checked = 0, 0
    n = data.shape[0]
    while i < n:
        j = min(n, i + int(rng.integers(0, 60)))
        brk = tuple(b - i for b in breaks_at if i <= b < j) if j > i else ()
        pipe.feed(Block(data[i:j], stamps[i:j], seg_start + i, brk))
        i = j
        k = pipe.n_out
        if pipe.ready:
            np.testing.assert_allclose(pipe.window.view().numpy(), z_ref[:, k - W : k], rtol=0, atol=2e-5)
            assert pipe.newest_stamp == pytest.approx(t_ref[k - 1], abs=1e-7)
            checked += 1
        else:
            assert k < W
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


def test_gap_resets_and_the_window_is_rebuilt_from_new_data():
    rng = np.random.default_rng(2)
    sfreq = 500.0
    n, g = 1500, 700
    data = _eeg(n, sfreq)
    stamps = 50.0 + np.arange(n) / sfreq
    stamps[g:] += 0.25  # samples were lost in transit: the timestamps jump
    pipe, norm, stats = _make(sfreq)
    _feed_checking(
        pipe, data[:g], stamps[:g], _offline(data[:g], sfreq, norm), 50.0 + np.arange(400) / 100, rng
    )
    assert pipe.ready
    z2 = _offline(data[g:], sfreq, norm)
    t2 = stamps[g] + np.arange(z2.shape[1]) / CFG.sfreq
    checked = _feed_checking(pipe, data[g:], stamps[g:], z2, t2, rng, seg_start=g)
    assert stats.gaps == 1 and checked > 5
    assert pipe.n_out == z2.shape[1]  # counted from the reset


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
    pipe, norm, stats = _make(sfreq)
    _feed_checking(
        pipe, data[:a], stamps[:a], _offline(data[:a], sfreq, norm), 3.0 + np.arange(400) / 100, rng
    )
    # the bad run, split over several blocks: one reset, no window until W new good model samples
    for i in range(a, b, 7):
        pipe.feed(Block(data[i : min(i + 7, b)], stamps[i : min(i + 7, b)], i))
        assert not pipe.ready
    z2 = _offline(data[b:], sfreq, norm)
    t2 = stamps[b] + np.arange(z2.shape[1]) / CFG.sfreq
    assert _feed_checking(pipe, data[b:], stamps[b:], z2, t2, rng, seg_start=b) > 5
    assert stats.nan_resets == 1 and stats.nan_samples == b - a
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
    assert stats.breaks == 1 and stats.gaps == 0
    z2 = _offline(data[600:], sfreq, norm)
    assert pipe.n_out == z2.shape[1]
    np.testing.assert_allclose(pipe.window.view().numpy(), z2[:, -W:], atol=2e-5)
    assert pipe.newest_stamp == pytest.approx(100.0 + (z2.shape[1] - 1) / CFG.sfreq, abs=1e-7)
