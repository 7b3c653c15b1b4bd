"""The ceiling correlation of a synthetic subject (see ``writer.CEILING_DEFINITION``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from nilearn import image
from scipy import optimize, signal

from offline.loader import fmri as fmri_io
from offline.loader.cwl import CWLPaths

if TYPE_CHECKING:
    from offline.synthetic.spec import SyntheticSpec


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows, arrays of shape (n_rows, n) -> (n_rows,)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))


def compute_ceiling(
    paths: CWLPaths,
    atlas_path: Path,
    roi_values: list[int],
    spill: np.ndarray,
    truth: np.ndarray,
    test: np.ndarray,
    n_markers: int,
    spec: SyntheticSpec,
) -> dict[str, np.ndarray]:
    """Run the loader's fMRI pipeline on the written files and compare with the truth.

    The EEG-determined part of each observed ROI series is linear in the noiseless
    BOLD: smoothing spreads ROI ``r``'s signal into its neighbours with the weights
    ``spill`` (see :func:`spill_matrix`), then the detrend + confound regression is
    applied with the confounds computed from the noisy image.

    Parameters
    ----------
    spill : array of shape (n_rois, n_rois)
        Spill matrix among the target ROIs.
    truth : array of shape (n_rois, n_volumes)
        Noiseless BOLD in percent signal change at every volume.
    test : array of bool, shape (n_markers,)
        Matched volumes in the test block.
    n_markers : int
        Volumes matched to markers (the first ``n_markers``).

    Returns
    -------
    dict with ``observed`` and ``clean_pipeline`` (n_rois, n_markers), ``ceiling``,
    ``ceiling_test`` and ``ceiling_raw`` (n_rois,).
    """
    atlas_img = nib.load(atlas_path)
    observed, confounds = fmri_io.nifti_roi_series(
        paths.nifti, atlas_img, roi_values, spec.tr, spec.smoothing_fwhm, paths.motion
    )
    clean = fmri_io.clean_series(truth.T @ spill, confounds, spec.tr)
    obs = observed[:n_markers].T
    cln = clean[:n_markers].T
    return {
        "observed": obs,
        "clean_pipeline": cln,
        "ceiling": pearson_rows(obs, cln),
        "ceiling_test": pearson_rows(obs[:, test], cln[:, test]),
        "ceiling_raw": pearson_rows(obs, truth[:, :n_markers]),
    }


def spill_matrix(
    labels: np.ndarray,
    weights: np.ndarray,
    label_values: list[int],
    roi_values: list[int],
    atlas_img: nib.Nifti1Image,
    fwhm: float | None,
) -> np.ndarray:
    """How one unit of signal in each label shows in each ROI after smoothing and ROI averaging.

    Parameters
    ----------
    labels : array of int, shape (nx, ny, nz)
    weights : array of shape (nx, ny, nz)
        Intensity per unit of label signal at each voxel (baseline x gain x 0.01 for percent).
    label_values : list of int
        Labels whose signal spreads (rows of the result).
    roi_values : list of int
        ROIs where it is read (columns).

    Returns
    -------
    array of shape (len(label_values), len(roi_values))
    """
    stack = np.stack([weights * (labels == v) for v in label_values], axis=-1).astype(np.float32)
    img = nib.Nifti1Image(stack, atlas_img.affine)
    if fwhm is not None:
        img = image.smooth_img(img, fwhm=fwhm)
    return fmri_io.roi_means(img, atlas_img, roi_values)


def thermal_gain(
    labels: np.ndarray, roi_values: list[int], affine: np.ndarray, fwhm: float | None
) -> np.ndarray:
    """Std of an ROI mean of smoothed unit white noise, per ROI, shape (n_rois,).

    Gaussian smoothing ``K`` is self-adjoint, so the ROI mean ``<a, K e>`` of white
    noise ``e`` has variance ``||K a||^2`` with ``a`` the ROI-averaging weights.
    """
    stack = np.stack([(labels == v) / max(int((labels == v).sum()), 1) for v in roi_values], axis=-1)
    img = nib.Nifti1Image(stack.astype(np.float32), affine)
    if fwhm is not None:
        img = image.smooth_img(img, fwhm=fwhm)
    data = np.asarray(img.dataobj, dtype=float)
    return np.sqrt((data**2).sum(axis=(0, 1, 2)))


def calibrate_noise(
    truth: np.ndarray,
    spill_target: np.ndarray,
    fixed_noise_var: np.ndarray,
    target_ceiling: np.ndarray,
    matched: np.ndarray,
    test: np.ndarray,
) -> np.ndarray:
    """Noise std per target ROI (percent) that gives each ROI about its target ceiling.

    Solves ``sum_l sigma_l^2 S[l, r]^2 = var_signal_r (1 / c_r^2 - 1) - fixed_r`` for
    ``sigma^2 >= 0`` (non-negative least squares), with ``var_signal_r`` the variance,
    of the detrended signal seen in ROI ``r`` over the test block, kept within 0.5-1 times
    its variance over all matched volumes (so that the test-block ceiling is near the
    target without making the whole-run one extreme).

    Parameters
    ----------
    truth : array of shape (n_rois, n_volumes)
        Noiseless target BOLD (percent).
    spill_target : array of shape (n_rois, n_rois)
        Spill matrix among the target ROIs (see :func:`spill_matrix`).
    fixed_noise_var : array of shape (n_rois,)
        Variance in each ROI from noise not being calibrated (other labels, thermal).
    target_ceiling : array of shape (n_rois,)
    matched, test : arrays of bool, shape (n_volumes,)
        Volumes matched to markers, and those of them in the test block.

    Returns
    -------
    array of shape (n_rois,)
    """
    seen = truth.T @ spill_target
    var_all = signal.detrend(seen[matched], axis=0).var(axis=0)
    var_test = signal.detrend(seen[test], axis=0).var(axis=0)
    var = np.clip(var_test, 0.5 * var_all, var_all)
    wanted = var * (1.0 / target_ceiling**2 - 1.0) - fixed_noise_var
    sigma2, _ = optimize.nnls(spill_target.T**2, np.maximum(wanted, 0.0))
    return np.sqrt(sigma2)
