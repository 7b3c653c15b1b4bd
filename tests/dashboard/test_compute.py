"""Display decimation, lane scaling and the timestamp-matched correlation."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.dashboard.compute import lane_scale, matched_correlation, minmax_decimate


def test_minmax_decimate_keeps_every_extreme_and_bounds_the_size():
    rng = np.random.default_rng(0)
    x = np.arange(10_007) / 1000.0
    y = rng.standard_normal((10_007, 3))
    y[5_003, 1] = 40.0  # a one-sample spike that plain subsampling would miss
    xd, yd = minmax_decimate(x, y, 500)
    assert yd.shape[1] == 3
    assert xd.shape[0] == yd.shape[0] <= 2 * 500 + 2
    np.testing.assert_allclose(yd.max(axis=0), y.max(axis=0))
    np.testing.assert_allclose(yd.min(axis=0), y.min(axis=0))
    assert xd[0] == x[0] and xd[-1] == x[-1]
    assert np.all(np.diff(xd) >= 0)


def test_minmax_decimate_leaves_short_traces_alone_and_handles_1d():
    x = np.arange(50.0)
    y = np.sin(x)
    xd, yd = minmax_decimate(x, y, 100)
    assert xd is x and yd is y
    xd, yd = minmax_decimate(np.arange(1000.0), np.arange(1000.0), 10)
    assert yd.ndim == 1 and yd.max() == 999 and yd.min() == 0


def test_lane_scale_is_robust_to_one_dead_and_one_wild_channel():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((5000, 5)) * 10.0
    y[:, 0] = 0.0
    y[:, 4] *= 100
    assert 50 < lane_scale(y) < 70  # 6 x the median std (10)
    assert lane_scale(np.zeros((0, 3))) == 1.0
    assert lane_scale(np.zeros((10, 3))) == 1.0


def test_correlation_matches_by_timestamp_with_interpolation():
    """Truth on a shifted 10 Hz grid is interpolated onto the prediction stamps."""
    t_pred = 100.0 + np.arange(300) / 10.0
    t_truth = 100.0 + 0.05 + np.arange(-5, 305) / 10.0

    def sig(t: np.ndarray) -> np.ndarray:
        return np.column_stack([np.sin(2 * np.pi * t / 7.0), np.cos(2 * np.pi * t / 11.0), np.sin(t / 3.0)])

    truth = sig(t_truth) * np.array([1.0, -1.0, 1.0])
    r = matched_correlation(t_pred, sig(t_pred), t_truth, truth)
    np.testing.assert_allclose(r, [1.0, -1.0, 1.0], atol=2e-3)
    # a time shift of the truth by a quarter period lowers the match: the stamps are used
    r_shift = matched_correlation(t_pred, sig(t_pred), t_truth + 7.0 / 4, sig(t_truth))
    assert abs(r_shift[0]) < 0.2


def test_correlation_leaves_out_truth_gaps_and_non_overlap():
    t_pred = np.arange(200) / 10.0
    pred = np.column_stack([np.sin(t_pred), np.cos(t_pred)])
    t_truth = np.concatenate([np.arange(0, 50), np.arange(150, 200)]) / 10.0
    # a line across the 10 s gap would disagree with the predictions: r = 1 shows it is not used
    truth = np.column_stack([np.sin(t_truth), np.cos(t_truth)])
    r = matched_correlation(t_pred, pred, t_truth, truth)
    np.testing.assert_allclose(r, [1.0, 1.0], atol=1e-9)
    assert np.all(np.isnan(matched_correlation(t_pred, pred, t_truth + 100.0, truth)))
    assert np.all(np.isnan(matched_correlation(t_pred[:5], pred[:5], t_truth, truth)))


def test_correlation_is_nan_for_a_flat_series():
    t = np.arange(100) / 10.0
    pred = np.column_stack([np.sin(t), np.ones_like(t)])
    r = matched_correlation(t, pred, t, np.column_stack([np.sin(t), np.sin(t)]))
    assert abs(r[0] - 1.0) < 1e-9 and np.isnan(r[1])


def test_correlation_leaves_out_unknown_truth_per_roi():
    """A delay-aligned truth ends in NaN ("unknown"): those points are left out, not poisoning r."""
    t = np.arange(300) / 10.0
    pred = np.column_stack([np.sin(t), np.cos(t)])
    truth = pred.copy()
    truth[250:, 0] = np.nan  # ROI 0's truth ends early
    truth[::7, 1] = np.nan  # ROI 1 has scattered holes
    r = matched_correlation(t, pred, t, truth)
    np.testing.assert_allclose(r, [1.0, 1.0], atol=1e-9)
    truth[5:, 0] = np.nan  # too few known points left for ROI 0
    r = matched_correlation(t, pred, t, truth)
    assert np.isnan(r[0]) and r[1] == pytest.approx(1.0)
