"""The fMRI series of a synthetic subject: label signals, calibrated noise, confounds, volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from offline.synthetic import fmri as fmrisim
from offline.synthetic.ceiling import calibrate_noise, spill_matrix, thermal_gain
from offline.synthetic.hidden import HiddenState, canonical_hrf, lowpass_gauss

if TYPE_CHECKING:
    from offline.synthetic.spec import SyntheticSpec

#: Thermal noise of every voxel, EPI intensity units (brain baseline ~700-1300).
THERMAL_STD = 10.0


@dataclass
class FMRISim:
    """The simulated fMRI of one subject.

    Attributes
    ----------
    volumes : array of float32, shape (61, 72, 61, n_volumes)
        The 4D EPI series.
    rp : array of shape (n_volumes, 6)
        Motion parameters (mm, rad).
    truth : array of shape (n_rois, n_volumes)
        Noiseless target BOLD in percent signal change at every volume.
    global_signal : array of shape (n_volumes,)
        Percent change shared by all brain voxels (physiology + drift).
    spill : array of shape (n_rois, n_rois)
        How a unit of target signal in ROI ``i`` shows in ROI ``j`` after smoothing and averaging.
    noise_std : array of shape (n_rois,)
        Std of each target ROI's own (AR(1)) noise, percent.
    target_ceiling : array of shape (n_rois,)
        Ceilings the noise was calibrated for.
    roi_values : list of int
        Atlas label value of each target ROI.
    test : array of bool, shape (n_volumes,)
        Volumes matched to markers that lie in the test block.
    """

    volumes: np.ndarray
    rp: np.ndarray
    truth: np.ndarray
    global_signal: np.ndarray
    spill: np.ndarray
    noise_std: np.ndarray
    target_ceiling: np.ndarray
    roi_values: list[int]
    test: np.ndarray


def ar1(rng: np.random.Generator, n: int, rho: float, std: float) -> np.ndarray:
    """AR(1) noise of stationary std ``std`` and lag-1 correlation ``rho``, shape (n,)."""
    x = np.empty(n)
    x[0] = rng.standard_normal()
    for i in range(1, n):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * rng.standard_normal()
    return std * x


def label_signals(rng: np.random.Generator, n_labels: int, n_volumes: int, tr: float) -> np.ndarray:
    """Background BOLD of every label (HRF-convolved noise + AR(1) noise), percent, (n_labels, n_volumes)."""
    hrf = canonical_hrf(1.0 / tr)
    out = np.zeros((n_labels, n_volumes))
    for k in range(1, n_labels):
        slow = np.convolve(rng.standard_normal(n_volumes + hrf.size), hrf)[hrf.size : hrf.size + n_volumes]
        out[k] = 0.8 * slow / slow.std() + ar1(rng, n_volumes, 0.6, 0.4)
    return out


def simulate_fmri(
    rng: np.random.Generator,
    hidden: HiddenState,
    vol_times: np.ndarray,
    n_markers: int,
    duration: float,
    spec: SyntheticSpec,
) -> FMRISim:
    """Simulate the 4D EPI series.

    Every label gets its own background BOLD; each target ROI gets the noiseless
    BOLD (``spec.bold_percent`` std) plus AR(1) noise whose level is calibrated
    (:func:`offline.synthetic.ceiling.calibrate_noise`) for a ceiling drawn
    from ``spec.ceiling_range``; all brain voxels share a global signal (slow
    physiology + scanner drift); head motion changes intensities through the
    baseline gradient; thermal noise everywhere.

    Parameters
    ----------
    rng : numpy.random.Generator
    hidden : HiddenState
    vol_times : array of shape (n_volumes,)
        Acquisition time of every volume, s from the first EEG sample.
    n_markers : int
        The first ``n_markers`` volumes have an ``mri`` marker in the EEG.
    duration : float
        EEG length in s (defines the test block).
    spec : SyntheticSpec

    Returns
    -------
    FMRISim
    """
    n_vol = vol_times.size
    labels, baseline = fmrisim.make_atlas()
    atlas_img = nib.Nifti1Image(labels, fmrisim.MNI_AFFINE_3MM)
    n_labels = len(fmrisim.HO_SUB_LABELS)
    signals = label_signals(rng, n_labels, n_vol, spec.tr)
    truth = hidden.at(vol_times) * spec.bold_percent
    gain = np.clip(1.0 + 0.15 * rng.standard_normal(labels.shape), 0.5, None)
    roi_values = [fmrisim.HO_SUB_LABELS.index(r) for r in spec.rois]
    all_values = list(range(1, n_labels))
    spill_all = spill_matrix(
        labels, 0.01 * baseline * gain, all_values, roi_values, atlas_img, spec.smoothing_fwhm
    )
    others = [v - 1 for v in all_values if v not in roi_values]
    fixed = (signals[1:][others].var(axis=1)[:, None] * spill_all[others] ** 2).sum(axis=0)
    thermal = THERMAL_STD * thermal_gain(labels, roi_values, fmrisim.MNI_AFFINE_3MM, spec.smoothing_fwhm)
    spill = spill_all[[v - 1 for v in roi_values]]
    matched = np.arange(n_vol) < n_markers
    test = matched & (vol_times >= duration - spec.test_seconds)
    target_ceiling = rng.uniform(*spec.ceiling_range, len(spec.rois))
    noise_std = calibrate_noise(truth, spill, fixed + thermal**2, target_ceiling, matched, test)
    for r, value in enumerate(roi_values):
        signals[value] = truth[r] + ar1(rng, n_vol, 0.5, noise_std[r])
    t_rel = (vol_times - vol_times[0]) / max(vol_times[-1] - vol_times[0], 1.0)
    global_signal = lowpass_gauss(rng, n_vol, 1.0 / spec.tr, 0.03) + 2.0 * t_rel + 0.8 * t_rel**2
    rp = fmrisim.motion_parameters(rng, n_vol, spec.tr)
    volumes = fmrisim.assemble_volumes(rng, labels, baseline, signals, gain, global_signal, rp, THERMAL_STD)
    return FMRISim(
        volumes=volumes, rp=rp, truth=truth, global_signal=global_signal, spill=spill, noise_std=noise_std,
        target_ceiling=target_ceiling, roi_values=roi_values, test=test,
    )  # fmt: skip
