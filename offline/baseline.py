"""The classic linear baseline: HRF-convolved log band power, ridge regression.

Features (all causal in EEG time, computed on the same preprocessed,
normalised model-rate EEG as BEIRA sees):

1. band-pass each channel into ``BANDS`` (causal 4th-order Butterworth);
2. power = square, smoothed by a causal 1 s moving average; ``log(power + eps)``;
3. convolve each log-power series with the canonical (SPM) double-gamma HRF
   and with its temporal derivative (the derivative lets the fit shift the
   response by about a second either way) - the textbook EEG-informed fMRI
   regressor.

The HRF regressor at time ``T`` models the BOLD at ``T``; the target of
aligned sample ``i`` is the BOLD at ``t_i + bold_delay``, so its feature row is
the regressor at ``t_i + bold_delay`` (it uses EEG up to that time, never
later; past the end of the EEG the last row is held).

One ridge regression per ROI on the training block (rows every 0.1 s, features
z-scored with training statistics); the penalty is chosen per ROI by the
validation r from ``training.baseline_alphas``. The test block is only
predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal
import scipy.stats
from sklearn.linear_model import Ridge

from beira_rt._logging import logger

from .dataset import PreparedData
from .metrics import pearson_r
from .split import delay_samples

__all__ = ["BANDS", "LinearBaseline", "band_log_power", "canonical_hrf", "fit_baseline", "hrf_features"]

#: Frequency bands in Hz (name, low, high); gamma stays below the 40 Hz anti-alias edge.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 40.0),
)


def band_log_power(
    eeg: np.ndarray, sfreq: float, bands: tuple[tuple[str, float, float], ...] = BANDS, smooth: float = 1.0
) -> np.ndarray:
    """Causal log band power.

    Parameters
    ----------
    eeg : array of shape (n_chans, n_samples)
        Preprocessed EEG at ``sfreq``.
    sfreq : float
        Sampling rate in Hz.
    bands : tuple of (name, low, high)
        Bands in Hz; ``high`` below ``sfreq / 2``.
    smooth : float
        Length of the causal moving average of the power, in seconds.

    Returns
    -------
    array of shape (n_chans * n_bands, n_samples), float32
        Band-major: row ``b * n_chans + c`` is band ``b`` of channel ``c``.
    """
    n_avg = max(1, round(smooth * sfreq))
    kernel = np.full(n_avg, 1.0 / n_avg)
    out = []
    for name, lo, hi in bands:
        if not 0 < lo < hi < sfreq / 2:
            raise ValueError(f"band {name} ({lo}-{hi} Hz) must lie between 0 and {sfreq / 2} Hz.")
        sos = scipy.signal.butter(4, (lo, hi), btype="bandpass", fs=sfreq, output="sos")
        power = scipy.signal.sosfilt(sos, eeg, axis=1) ** 2
        power = scipy.signal.lfilter(kernel, [1.0], power, axis=1)
        out.append(np.log(power + 1e-6).astype(np.float32))
    return np.concatenate(out, axis=0)


def canonical_hrf(sfreq: float, length: float = 32.0) -> tuple[np.ndarray, np.ndarray]:
    """SPM's canonical HRF (peak ~5 s, undershoot ~15 s, ratio 1/6) and its temporal derivative.

    Returns
    -------
    hrf, dhrf : arrays of shape (round(length * sfreq),)
        Sampled at ``sfreq``; ``hrf`` sums to 1; ``dhrf`` in 1/s scaled alike.
    """
    t = np.arange(round(length * sfreq)) / sfreq
    hrf = scipy.stats.gamma.pdf(t, 6.0) - scipy.stats.gamma.pdf(t, 16.0) / 6.0
    hrf /= hrf.sum()
    dhrf = np.gradient(hrf, 1.0 / sfreq)
    return hrf, dhrf


def hrf_features(log_power: np.ndarray, sfreq: float) -> np.ndarray:
    """Causal convolution of each feature row with the canonical HRF and its derivative.

    Parameters
    ----------
    log_power : array of shape (n_features, n_samples)

    Returns
    -------
    array of shape (2 * n_features, n_samples), float32
        The HRF-convolved rows, then the derivative-convolved rows.
    """
    n = log_power.shape[1]
    centred = log_power - log_power.mean(axis=1, keepdims=True)
    rows = [scipy.signal.fftconvolve(centred, k[None, :], axes=1)[:, :n] for k in canonical_hrf(sfreq)]
    return np.concatenate(rows, axis=0).astype(np.float32)


@dataclass(frozen=True)
class LinearBaseline:
    """A fitted baseline: one ridge model per ROI on the HRF features.

    Attributes
    ----------
    alphas : tuple of float
        Chosen penalty per ROI.
    val_r_per_roi : array of shape (n_rois,)
        Validation r at the chosen penalties.
    models : tuple of sklearn.linear_model.Ridge
        One per ROI (on z-scored features).
    feat_mean, feat_std : arrays of shape (n_features,)
        Training statistics of the features.
    """

    alphas: tuple[float, ...]
    val_r_per_roi: np.ndarray
    models: tuple[Ridge, ...]
    feat_mean: np.ndarray
    feat_std: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predictions (n_rois, n_rows) from feature rows (n_rows, n_features)."""
        x = (features - self.feat_mean) / self.feat_std
        return np.stack([m.predict(x) for m in self.models])


def fit_baseline(
    data: PreparedData, bold_delay: float, alphas: tuple[float, ...]
) -> tuple[LinearBaseline, np.ndarray]:
    """Fit the baseline on the training block, choose the penalties on validation, predict everything.

    Parameters
    ----------
    data : PreparedData
    bold_delay : float
        BOLD delay in seconds (``model.bold_delay``), to find each target's feature row.
    alphas : tuple of float
        Ridge penalties to try.

    Returns
    -------
    baseline : LinearBaseline
    pred : array of shape (n_rois, L)
        Predictions (normalised target units) for every aligned sample.
    """
    sfreq = data.sfreq
    feats = hrf_features(band_log_power(data.eeg, sfreq), sfreq)  # (n_features, n_eeg)
    d = delay_samples(bold_delay, sfreq)
    n_aligned = data.split.n_samples
    rows = np.minimum(np.arange(n_aligned) + d, feats.shape[1] - 1)
    design = feats[:, rows].T  # (L, n_features): row i models the target of aligned sample i
    step = max(1, round(0.1 * sfreq))
    train, val = data.split.train, data.split.val
    x_train = design[train.start : train.stop : step]
    y_train = data.target[:, train.start : train.stop : step].T
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train = (x_train - mean) / std
    x_val = (design[val.slice] - mean) / std
    y_val = data.target[:, val.slice]
    best_r = np.full(data.n_rois, -np.inf)
    best_alpha = np.full(data.n_rois, alphas[0])
    best_models: list[Ridge | None] = [None] * data.n_rois
    for alpha in alphas:
        model = Ridge(alpha=alpha).fit(x_train, y_train)
        # (n, n_rois) whatever scikit-learn does with a single target column (1.9 returns (n,))
        r = pearson_r(model.predict(x_val).reshape(len(x_val), -1).T, y_val)
        coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
        for k in range(data.n_rois):
            if best_models[k] is None or (np.isfinite(r[k]) and r[k] > best_r[k]):
                single = Ridge(alpha=alpha)
                single.coef_, single.intercept_ = coef[k], intercept[k]
                single.n_features_in_ = model.n_features_in_
                best_r[k], best_alpha[k], best_models[k] = r[k], alpha, single
    baseline = LinearBaseline(
        alphas=tuple(float(a) for a in best_alpha),
        val_r_per_roi=best_r,
        models=tuple(m for m in best_models if m is not None),
        feat_mean=mean,
        feat_std=std,
    )
    logger.info(
        "linear baseline: %d features, penalties %s, validation mean r %.3f",
        design.shape[1],
        [f"{a:g}" for a in baseline.alphas],
        float(np.nanmean(best_r)),
    )
    return baseline, baseline.predict(design)
