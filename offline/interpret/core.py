"""Interpret a trained BEIRA on a recording: patterns, spectra and importance of every branch.

:func:`interpret_model` computes, for every ROI head and every branch of its interpretable
block, the numbers of :mod:`beira_rt.interpret` (spatial pattern, weights, band-pass
response, spectral pattern and its peak, envelope filter) from the cross-spectrum of the
normalised EEG of the **training block** (the data the model was fitted on), and the
importance of each branch on the **training and validation blocks** (:mod:`offline.interpret.importance`).
The test block is not read. :func:`interpret_bundle` does the same for a saved bundle and a
recording, with the bundle's preprocessing and statistics.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mne
import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.bundle import ModelBundle
from beira_rt.config import BeiraConfig
from beira_rt.interpret import branch_filters, branch_patterns, cross_spectrum
from beira_rt.models import BEIRA, BEIRAReadout

from ..dataset import PreparedData
from ..metrics import pearson_r, predict_block
from ..split import Block
from .importance import branch_importance, importance_block

__all__ = ["METHOD", "channel_positions", "interpret_bundle", "interpret_model"]

#: How every number is defined, copied into interpretation.json.
METHOD = {
    "pattern": "Haufe et al. 2014 per branch (Petrosyan et al. 2021): C_b w, C_b = covariance of the normalised "
    "EEG of the training block filtered by the branch's band-pass b (from its cross-spectrum: sum_f |B(f)|^2 "
    "Re S(f) df), w = unmixing weights; mapped to microvolts (times the channel std); unit peak, sign so that "
    "the peak is positive",
    "weights": "the unmixing weights as a filter on the microvolt EEG (w / channel std), unit peak, the "
    "pattern's sign flip",
    "band_response": "|B(f)| of the learned band-pass taps",
    "spectral_pattern": "|B(f)| S_u(f), S_u = spectrum of the branch's unmixed signal w' S(f) w (training "
    "block); peak_hz is its peak within [fmin, fmax], centre_hz its centre of gravity over the main lobe "
    "(where it stays above half its peak), band_peak_hz the peak of |B(f)| alone",
    "envelope": "|E(f)| of the envelope taps; cutoff_hz: lowest frequency above its peak at half the peak "
    "power; time_scale_s: RMS duration of the taps",
    "importance": "r of the ROI's prediction over the training and validation blocks when only this branch "
    "varies, every other branch of the head silenced (its output replaced by its mean over those blocks: "
    "envelope taps zero, bias = mean); branches ranked by it, per ROI. drop_r: r with every branch minus r "
    "with this branch silenced (the others varying), reported beside; silencing one of two redundant branches "
    "costs little. The blocks: the ranking says what the model relies on, not how well it generalises, and "
    "the validation block alone (60 s, ~30 fMRI volumes) ranks 16 branches by chance correlations",
    "val_r": "validation-block r of the ROI's prediction (every branch)",
    "blocks": "patterns and spectra: training block; importance: training + validation blocks; the test "
    "block is not read",
}


def channel_positions(ch_names: tuple[str, ...], eeg_path: str | Path | None = None) -> tuple[dict, str]:
    """3-D positions of the channels: the recording's montage when it has them all, else the 10-20 template.

    Parameters
    ----------
    ch_names : tuple of str
        The model's channels.
    eeg_path : str, Path or None
        The EEG file (its header is read for a montage).

    Returns
    -------
    positions : dict
        Channel -> [x, y, z] in metres (MNE head frame); channels without a position are left out.
    source : str
        ``'recording'``, or the 10-20 template's name (``'colin27_1020'``, formerly ``'standard_1020'``).
    """
    if eeg_path is not None and Path(eeg_path).is_file():
        try:
            raw = mne.io.read_raw(eeg_path, preload=False, verbose="error")
            montage = raw.get_montage()
            pos = montage.get_positions()["ch_pos"] if montage is not None else {}
            if all(n in pos and np.all(np.isfinite(pos[n])) for n in ch_names):
                return {n: [float(v) for v in pos[n]] for n in ch_names}, "recording"
        except (ValueError, OSError, RuntimeError) as err:  # an unreadable header: fall back
            logger.debug("no montage read from %s: %s", eeg_path, err)
    # MNE 1.12 renamed its 10-20 template 'standard_1020' -> 'colin27_1020' (the same positions)
    name = next(m for m in ("colin27_1020", "standard_1020") if m in mne.channels.get_builtin_montages())
    std = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    lower = {k.lower(): k for k in std}
    positions = {n: [float(v) for v in std[lower[n.lower()]]] for n in ch_names if n.lower() in lower}
    missing = [n for n in ch_names if n not in positions]
    if missing:
        logger.warning("no 10-20 position for channels %s; they are left out of the topomaps", missing)
    return positions, name


def _round(values: Any, digits: int = 5) -> Any:
    arr = np.asarray(values, dtype=np.float64)
    return [float(f"{v:.{digits}g}") for v in arr.ravel()] if arr.ndim else float(f"{arr:.{digits}g}")


def _bounds(block: Block, sfreq: float) -> dict[str, float]:
    return {
        "start": block.start,
        "stop": block.stop,
        "start_s": block.start / sfreq,
        "stop_s": block.stop / sfreq,
    }


def interpret_model(
    model: BEIRA,
    data: PreparedData,
    cfg: BeiraConfig,
    *,
    device: str | torch.device = "cpu",
    positions: dict | None = None,
    positions_source: str = "standard_1020",
    test_r: dict[str, float] | None = None,
    nperseg: int = 512,
) -> dict[str, Any]:
    """Every number of the interpretation, as a JSON-ready dict.

    Parameters
    ----------
    model : BEIRA
        The trained (fused) model.
    data : PreparedData
        The recording, preprocessed and normalised as the model saw it.
    cfg : BeiraConfig
        The configuration the model was trained with.
    device : str or torch.device
    positions : dict or None
        Channel positions (see :func:`channel_positions`); None = standard 10-20.
    positions_source : str
        Where ``positions`` came from.
    test_r : dict or None
        The ROIs' test r, copied into the file to read beside the patterns (not used).
    nperseg : int
        Welch segment length of the cross-spectrum (samples at the model rate).

    Returns
    -------
    dict
        ``method``, ``ch_names``, ``positions``, ``freqs``, ``fmin``/``fmax``, ``blocks`` and
        ``rois``: per ROI ``val_r``, ``test_r``, ``ranking`` (branches, most important first) and
        ``branches`` (one dict per branch: ``branch``, ``rank``, ``importance`` (r of the ROI over the
        training and validation blocks with only this branch varying), ``drop_r``, ``silenced_r``,
        ``pattern``, ``weights``, ``peak_hz``, ``band_peak_hz``, ``band_response``,
        ``spectral_pattern``, ``unmixed_psd``, ``envelope_response``, ``envelope_cutoff_hz``,
        ``envelope_time_scale_s``).
    """
    t0 = time.perf_counter()
    model.eval()
    train, val = data.split.train, data.split.val
    freqs, csd = cross_spectrum(data.eeg[:, train.slice], data.sfreq, nperseg)
    pre = cfg.preprocessing
    fmin = pre.l_freq or freqs[1]
    fmax = min(pre.h_freq or np.inf, 0.4 * data.sfreq)
    pats = branch_patterns(branch_filters(model), freqs, csd, data.normalizer.std, fmin, fmax)
    t1 = time.perf_counter()
    warm = model.receptive_field - 1 if isinstance(model, BEIRAReadout) else 0
    imp_block = importance_block(data.split, warm)
    imp = branch_importance(model, data, cfg, imp_block, device)
    importance = imp.solo_r
    val_r = pearson_r(*predict_block(model, data, cfg, val, device))
    if positions is None:
        positions, positions_source = channel_positions(data.ch_names)
    rois: dict[str, Any] = {}
    for h, roi in enumerate(data.rois):
        order = np.argsort(-np.nan_to_num(importance[h], nan=-np.inf), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        branches = []
        for k in range(importance.shape[1]):
            branches.append({
                "branch": k, "rank": int(rank[k]), "importance": _round(importance[h, k]),
                "drop_r": _round(imp.drop_r[h, k]), "silenced_r": _round(imp.silenced_r[h, k]),
                "pattern": _round(pats.pattern[h, k]),
                "weights": _round(pats.weights[h, k]), "peak_hz": float(pats.peak_hz[h, k]),
                "band_peak_hz": float(pats.band_peak_hz[h, k]), "centre_hz": _round(pats.centre_hz[h, k]), "band_response": _round(pats.band_response[h, k]),
                "spectral_pattern": _round(pats.spectral_pattern[h, k]), "unmixed_psd": _round(pats.unmixed_psd[h, k]),
                "envelope_response": _round(pats.envelope_response[h, k]),
                "envelope_cutoff_hz": float(pats.envelope_cutoff_hz[h, k]),
                "envelope_time_scale_s": _round(pats.envelope_time_scale_s[h, k]),
            })  # fmt: skip
        rois[roi] = {
            "val_r": _round(val_r[h]),
            "test_r": None if not test_r or test_r.get(roi) is None else _round(test_r[roi]),
            "ranking": [int(k) for k in order],
            "branches": branches,
        }
    logger.info(
        "interpretation: patterns %.1f s, importance %.1f s (%d branches x %d ROIs)",
        t1 - t0, time.perf_counter() - t1, importance.shape[1], len(data.rois),
    )  # fmt: skip
    return {
        "method": METHOD,
        "sfreq": data.sfreq,
        "ch_names": list(data.ch_names),
        "positions": positions,
        "positions_source": positions_source,
        "freqs": _round(freqs),
        "fmin": float(fmin),
        "fmax": float(fmax),
        "nperseg": int(nperseg),
        "blocks": {
            "patterns": data.split.to_dict()["train"],
            "importance": _bounds(imp_block, data.split.sfreq),
        },
        "n_filters": int(importance.shape[1]),
        "rois": rois,
    }


def interpret_bundle(
    bundle: ModelBundle, recording: Any, *, device: str = "auto", nperseg: int = 512
) -> dict[str, Any]:
    """:func:`interpret_model` for a saved bundle on a recording (its preprocessing and statistics).

    ``bundle``, ``recording`` and ``device`` as in :func:`offline.evaluate.evaluate_bundle`,
    ``nperseg`` as in :func:`interpret_model`. Returns the :func:`interpret_model` dict plus
    ``bundle_hash``, ``subject`` and ``data_hash``.
    """
    from ..evaluate import bundle_on_recording

    dev, data, model = bundle_on_recording(bundle, recording, device)
    eeg_file = (getattr(recording, "provenance", {}) or {}).get("files", {}).get("eeg", {})
    positions, source = channel_positions(bundle.ch_names, eeg_file.get("path") if eeg_file else None)
    test_r = (bundle.metrics.get("test") or {}).get("r_per_roi")
    doc = interpret_model(
        model, data, bundle.config, device=dev, positions=positions, positions_source=source,
        test_r=test_r, nperseg=nperseg,
    )  # fmt: skip
    same = getattr(recording, "data_hash", "") == bundle.metrics.get("data_hash")
    return {
        "bundle_hash": bundle.content_hash,
        "subject": getattr(recording, "subject", ""),
        "data_hash": getattr(recording, "data_hash", ""),
        "data_hash_matches_bundle": bool(same),
        **doc,
    }
