"""Numerical helpers of the dashboard: display decimation, trace stacking, matched correlation.

Pure NumPy, no Qt: tested on their own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lane_scale", "matched_correlation", "minmax_decimate"]


def minmax_decimate(x: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a trace to the minimum and maximum of each of ``n_bins`` bins.

    The decimated trace draws the same envelope as the full one at a width of
    ``n_bins`` pixels, so peaks are never hidden (plain subsampling would alias them).

    Parameters
    ----------
    x : array of shape (n_samples,)
        Abscissa (time in s), increasing.
    y : array of shape (n_samples,) or (n_samples, n_channels)
        Values.
    n_bins : int
        Number of bins (about the plot width in pixels); at least 1.

    Returns
    -------
    x_out : array of shape (n_out,)
        ``x`` unchanged when ``n_samples <= 2 * n_bins``; else two abscissae per
        bin (its first and last sample times).
    y_out : array of shape (n_out,) or (n_out, n_channels)
        The values, or per bin its minimum then its maximum.
    """
    n = x.shape[0]
    n_bins = max(1, int(n_bins))
    if n <= 2 * n_bins:
        return x, y
    k = -(-n // n_bins)  # samples per bin, rounded up
    n_full = n // k
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    body = y2[: n_full * k].reshape(n_full, k, y2.shape[1])
    mins, maxs = body.min(axis=1), body.max(axis=1)
    xb = x[: n_full * k].reshape(n_full, k)
    x_pairs = [xb[:, 0], xb[:, -1]]
    y_pairs = [mins, maxs]
    tail = n - n_full * k
    if tail:
        tail_y = y2[n_full * k :]
        x_pairs = [np.append(x_pairs[0], x[n_full * k]), np.append(x_pairs[1], x[-1])]
        y_pairs = [np.vstack((mins, tail_y.min(axis=0))), np.vstack((maxs, tail_y.max(axis=0)))]
    x_out = np.stack(x_pairs, axis=1).reshape(-1)
    y_out = np.stack(y_pairs, axis=1).reshape(-1, y2.shape[1])
    return x_out, (y_out[:, 0] if squeeze else y_out)


def lane_scale(y: np.ndarray) -> float:
    """A common vertical scale for stacked traces: the median over channels of 6 standard deviations.

    Parameters
    ----------
    y : array of shape (n_samples, n_channels)
        The visible samples, in the stream's unit.

    Returns
    -------
    float
        Height of one lane in the stream's unit (1.0 when there is nothing to scale).
    """
    if y.size == 0:
        return 1.0
    std = np.std(y, axis=0)
    std = std[np.isfinite(std) & (std > 0)]
    if std.size == 0:
        return 1.0
    return float(6.0 * np.median(std))


def matched_correlation(
    pred_t: np.ndarray,
    pred: np.ndarray,
    truth_t: np.ndarray,
    truth: np.ndarray,
    *,
    min_points: int = 10,
    max_gap_periods: float = 2.5,
) -> np.ndarray:
    """Pearson correlation per ROI between predictions and truth matched by timestamp.

    The truth is linearly interpolated onto the prediction timestamps (a truth
    sample stamped ``t`` is what a prediction stamped ``t`` should match).
    Predictions outside the span of the truth, or inside a gap of the truth
    longer than ``max_gap_periods`` median truth periods, are left out, and so is, per ROI,
    every point where the prediction or the interpolated truth is NaN ("unknown", e.g. where a
    delay-aligned truth series ends).

    Parameters
    ----------
    pred_t : array of shape (n_pred,)
        Prediction timestamps in s.
    pred : array of shape (n_pred, n_rois)
        Predictions.
    truth_t : array of shape (n_truth,)
        Truth timestamps in s (any order).
    truth : array of shape (n_truth, n_rois)
        Truth, columns in the same ROI order as ``pred``.
    min_points : int
        Fewest matched samples for a correlation; fewer gives NaN.
    max_gap_periods : float
        Longest truth gap, in median truth sample periods, that is interpolated across.

    Returns
    -------
    array of shape (n_rois,)
        Correlation per ROI; NaN where it is undefined (too few points, a flat series).
    """
    n_rois = pred.shape[1]
    out = np.full(n_rois, np.nan)
    if truth_t.shape[0] < 2 or pred_t.shape[0] < min_points:
        return out
    order = np.argsort(truth_t, kind="stable")
    truth_t, truth = truth_t[order], truth[order]
    inside = (pred_t >= truth_t[0]) & (pred_t <= truth_t[-1])
    right = np.clip(np.searchsorted(truth_t, pred_t, side="left"), 1, truth_t.shape[0] - 1)
    spans = truth_t[right] - truth_t[right - 1]
    period = float(np.median(np.diff(truth_t)))
    ok = inside & (spans <= max_gap_periods * period + 1e-12)
    if int(ok.sum()) < min_points:
        return out
    t = pred_t[ok]
    p_all = pred[ok].astype(np.float64)
    q_all = np.column_stack([np.interp(t, truth_t, truth[:, j]) for j in range(n_rois)])
    for j in range(n_rois):
        # NaN means "unknown" (a truth series that does not cover this time): left out, per ROI
        keep = np.isfinite(p_all[:, j]) & np.isfinite(q_all[:, j])
        if int(keep.sum()) < min_points:
            continue
        p = p_all[keep, j] - p_all[keep, j].mean()
        q = q_all[keep, j] - q_all[keep, j].mean()
        denom = float(np.sqrt((p * p).sum() * (q * q).sum()))
        if denom > 0:
            out[j] = float(np.clip((p * q).sum() / denom, -1.0, 1.0))
    return out
