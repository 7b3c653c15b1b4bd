"""The linear baseline: causal band power, canonical HRF, validation-chosen ridge."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from beira_rt.config import BeiraConfig, override
from offline.baseline import BANDS, band_log_power, canonical_hrf, fit_baseline, hrf_features
from offline.dataset import prepare_data
from offline.metrics import pearson_r

SFREQ_IN = 250.0


def test_band_power_is_causal():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3000))
    y = x.copy()
    y[:, 2000:] = rng.standard_normal((3, 1000)) * 10
    a, b = band_log_power(x, 100.0), band_log_power(y, 100.0)
    assert a.shape == (3 * len(BANDS), 3000)
    np.testing.assert_array_equal(a[:, :2000], b[:, :2000])
    assert not np.allclose(a[:, 2000:], b[:, 2000:])
    fa, fb = hrf_features(a[:, :2000], 100.0), hrf_features(b[:, :2000], 100.0)
    np.testing.assert_allclose(fa, fb)


def test_canonical_hrf_peaks_near_five_seconds_with_an_undershoot():
    hrf, dhrf = canonical_hrf(100.0)
    assert hrf.sum() == pytest.approx(1.0)
    assert 4.5 <= np.argmax(hrf) / 100.0 <= 5.5
    assert hrf[1500] < 0  # undershoot at 15 s
    assert dhrf.shape == hrf.shape


def test_band_outside_nyquist_is_refused():
    with pytest.raises(ValueError, match="band gamma"):
        band_log_power(np.zeros((1, 100)), 70.0)


def _recording(seconds: float, coupled: bool, seed: int):
    """EEG with an alpha source on channel 0 (and noise); BOLD = HRF * alpha power, or unrelated."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SFREQ_IN)
    t = np.arange(n) / SFREQ_IN
    slow = scipy.signal.sosfiltfilt(
        scipy.signal.butter(2, 0.05, fs=SFREQ_IN, output="sos"), rng.standard_normal(n)
    )
    envelope = np.exp(slow / slow.std())
    eeg = rng.standard_normal((6, n)) * 0.5
    eeg[0] += envelope * np.sin(2 * np.pi * 10.0 * t)
    n_model = int(seconds * 100)
    env_100 = np.interp(np.arange(n_model) / 100.0, t, envelope)
    hrf, _ = canonical_hrf(100.0)
    drive = np.convolve(np.log(env_100**2), hrf)[:n_model]
    other = np.convolve(rng.standard_normal(n_model), np.ones(200) / 200)[:n_model]
    signal = drive if coupled else other
    bold = np.stack([signal + 0.3 * signal.std() * rng.standard_normal(n_model), other])
    return eeg * 1e-5, bold


@pytest.fixture(scope="module")
def cfg():
    return override(
        BeiraConfig(), {"preprocessing.h_freq": 45.0, "model.n_times": 256, "model.strides": [4, 4, 4]}
    )


def test_baseline_finds_an_hrf_coupled_band_power_and_not_noise(cfg):
    eeg, bold = _recording(300.0, coupled=True, seed=1)
    data = prepare_data(eeg, SFREQ_IN, bold, cfg, [f"c{i}" for i in range(6)], ["coupled", "unrelated"])
    baseline, pred = fit_baseline(data, cfg.model.bold_delay, cfg.training.baseline_alphas)
    test = data.split.test
    r = pearson_r(pred[:, test.slice], data.target[:, test.slice])
    assert pred.shape == data.target.shape
    assert r[0] > 0.8  # the alpha power of channel 0, through the HRF
    assert abs(r[1]) < 0.4  # nothing in the EEG predicts the unrelated series
    assert baseline.val_r_per_roi[0] > 0.8
    assert set(baseline.alphas) <= set(cfg.training.baseline_alphas)


def test_baseline_for_a_single_roi(cfg):
    """One target column (scikit-learn returns 1-D predictions for it) works like several."""
    eeg, bold = _recording(300.0, coupled=True, seed=1)  # as above, the coupled series alone
    data = prepare_data(eeg, SFREQ_IN, bold[:1], cfg, [f"c{i}" for i in range(6)], ["coupled"])
    baseline, pred = fit_baseline(data, cfg.model.bold_delay, cfg.training.baseline_alphas)
    test = data.split.test
    assert pred.shape == data.target.shape == (1, data.target.shape[1])
    assert pearson_r(pred[:, test.slice], data.target[:, test.slice])[0] > 0.8
    assert len(baseline.models) == 1
