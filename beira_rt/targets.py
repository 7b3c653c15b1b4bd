"""The BOLD target contract: how ROI BOLD sampled per fMRI volume becomes the model's target.

The trainer (:mod:`offline.loader`, :mod:`offline.split`) and the replay's truth stream
(:mod:`beira_rt.replay.truth`) both use these two rules, so that what the replay publishes
is exactly what the trainer fitted:

1. :func:`interpolate_volumes` — ROI values at the volume onsets are interpolated to any
   times by a cubic spline through the volumes (linear below four volumes); NaN outside the
   first and last onset.
2. :func:`delay_samples` — the haemodynamic delay in model-rate samples,
   ``round(bold_delay * sfreq)``: the target of EEG sample ``i`` is the BOLD at sample
   ``i + delay_samples(bold_delay, sfreq)``.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["delay_samples", "interpolate_volumes"]


def interpolate_volumes(values: np.ndarray, onsets: np.ndarray, times: np.ndarray) -> np.ndarray:
    """ROI values at the volume onsets -> values at ``times``.

    Parameters
    ----------
    values : array of shape (n_rois, n_volumes)
        One value per ROI and volume.
    onsets : array of shape (n_volumes,)
        Volume onsets in seconds, strictly increasing (at least two).
    times : array of shape (n_times,)
        Where to evaluate, in seconds on the same clock as ``onsets``.

    Returns
    -------
    array of float64, shape (n_rois, n_times)
        NaN where ``times`` lies outside ``[onsets[0], onsets[-1]]``.
    """
    values = np.asarray(values, dtype=np.float64)
    onsets = np.asarray(onsets, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    out = np.full((values.shape[0], times.size), np.nan)
    inside = (times >= onsets[0]) & (times <= onsets[-1])
    if onsets.size >= 4:
        out[:, inside] = CubicSpline(onsets, values, axis=1)(times[inside])
    else:  # too few knots for a cubic spline
        out[:, inside] = np.stack([np.interp(times[inside], onsets, row) for row in values])
    return out


def delay_samples(bold_delay: float, sfreq: float) -> int:
    """The BOLD delay in model-rate samples, ``round(bold_delay * sfreq)``."""
    return round(bold_delay * sfreq)
