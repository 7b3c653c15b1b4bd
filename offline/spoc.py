"""Fit the front end's branches to the data before training: source power co-modulation (SPoC).

``model.filter_init: spoc`` (read-out back end). For each ROI, the spatial filters whose band
power, convolved with a haemodynamic response, co-varies most with the ROI's BOLD on the
training block: SPoC (Dähne et al. 2014, NeuroImage 86:111-122) with the covariance series
convolved with SPM's canonical HRF, in each of a set of log-spaced bands; each branch of the
ROI's head gets one of the strongest (band, filter) pairs: the filter as its unmixing, a
band-pass at the band's centre.

For a band, with ``C(k)`` the channel covariance of segment ``k`` (``segment`` s) of the
band-passed EEG and ``H(k) = sum_j h(j) C(k - j)`` its HRF-convolved series, ``w' H(k) w`` is the
HRF-convolved power of the source that ``w`` extracts. With ``z(k)`` the standardised target
of segment ``k`` (the BOLD ``bold_delay`` after it), SPoC solves
``C_z w = lambda C_mean w`` with ``C_z = mean_k z(k) H(k + d)`` and ``C_mean = mean_k H(k + d)``
(shrunk toward a multiple of the identity); the extreme eigenvalues are the largest positive and
negative co-modulations ``cov(w' H w, z) / mean(w' H w)``. The candidates are ranked by a
held-out correlation between ``w' H(k) w`` and ``z(k)``: the training block is cut into contiguous
folds, each scored with the filter fitted on the others (in-sample, a 30-channel filter fits
noise in any band, and ``lambda`` favours narrow low bands whose power fluctuates most). Only the
training block is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.signal
import torch

from beira_rt._logging import logger

from .baseline import canonical_hrf
from .split import Block, delay_samples

__all__ = ["SpocBranch", "apply_spoc", "fit_front_end", "spoc_branches"]

#: Candidate bands: this many log-spaced centres from ``fmin`` (3 Hz) to 0.38 x the model rate, each
#: ``centre / BAND_RATIO .. centre * BAND_RATIO`` wide.
N_BANDS = 16  # model.spoc_bands
BAND_RATIO = 1.3
#: Shrinkage of the mean band covariance toward a multiple of the identity (``model.spoc_shrink``).
SHRINK = 0.1
#: :func:`apply_spoc` uses a candidate scoring at least this fraction of its head's best.
MIN_RATIO = 0.5


@dataclass(frozen=True)
class SpocBranch:
    """One candidate branch: band centre (Hz), spatial filter (n_chans,), and ``score``: the
    held-out correlation of its HRF-convolved band power with the target (mean over folds)."""

    freq: float
    filter: np.ndarray
    score: float
    taps: np.ndarray | None = None  # the band-pass FIR the branch gets (what the covariances saw)
    sign: int = 1  # the sign of the co-modulation the filter was fitted for (+1 largest, -1 most negative)

    @property
    def strength(self) -> float:
        """The held-out score in the direction the filter was fitted for (a filter fitted for a
        positive co-modulation that correlates negatively out of sample scores below 0)."""
        return self.sign * self.score


def band_taps(freq: float, sfreq: float, n_taps: int) -> np.ndarray:
    """The band-pass FIR of a candidate band: ``n_taps`` taps (Hann window) passing
    ``freq / BAND_RATIO .. freq * BAND_RATIO`` (at most 0.45 x ``sfreq``), unit norm."""
    hi = min(freq * BAND_RATIO, 0.45 * sfreq)
    taps = scipy.signal.firwin(n_taps, (freq / BAND_RATIO, hi), window="hann", pass_zero=False, fs=sfreq)
    return taps / np.linalg.norm(taps)


def _segment_covariances(eeg: np.ndarray, taps: np.ndarray, seg: int) -> np.ndarray:
    """(n_segments, C, C) covariances of the band-passed EEG in consecutive segments of ``seg`` samples."""
    xb = scipy.signal.oaconvolve(eeg, taps[None, :], mode="same", axes=1)
    n = xb.shape[1] // seg
    xb = xb[:, : n * seg].reshape(eeg.shape[0], n, seg)
    return np.einsum("cks,dks->kcd", xb, xb) / seg


def spoc_branches(
    parts: Sequence[tuple[np.ndarray, np.ndarray, Block]],
    sfreq: float,
    bold_delay: float,
    *,
    segment: float = 0.5,
    shrink: float = SHRINK,
    n_bands: int = N_BANDS,
    folds: int = 3,
    filter_size: int = 51,
    fmin: float = 3.0,
    components: int | None = None,
) -> list[list[SpocBranch]]:
    """Candidate branches per ROI, strongest first.

    Parameters
    ----------
    parts : sequence of (eeg, target, block)
        Normalised model-rate EEG (n_chans, n_eeg), aligned targets (n_rois, L) and the block
        to fit on (the training block); several recordings (a group) pool their statistics.
    sfreq : float
        Model rate in Hz.
    bold_delay : float
        Seconds between an EEG sample and the BOLD its target holds (``model.bold_delay``).
    segment : float
        Covariance segment length in seconds.
    shrink : float
        Shrinkage of ``C_mean`` toward ``trace / n_chans`` times the identity (0..1).
    n_bands : int
        Candidate bands.
    folds : int
        Contiguous folds of the fitting block for the scores.
    filter_size : int
        Taps of the band-pass FIR of each band (:func:`band_taps`; ``model.filter_size``): the
        covariances are of the EEG filtered by it, the filter the branch then applies.
    fmin : float
        Centre of the lowest candidate band in Hz (``model.spoc_fmin``); the centres are
        ``n_bands`` log-spaced from it to 0.38 x ``sfreq``.
    components : int or None
        Fit the filters within the subspace of this many principal components of the fitting
        blocks' EEG (``model.spoc_components``; None, or at least the number of channels: every
        channel). Fewer directions to fit from a few minutes of data; the filters stay one weight
        per channel.

    Returns
    -------
    list (n_rois) of list of SpocBranch
        Two per band (largest positive and negative co-modulation), strongest first (by
        :attr:`SpocBranch.strength`).
    """
    if not 0 < fmin < 0.38 * sfreq:
        raise ValueError(
            f"spoc_branches: the lowest band ({fmin} Hz, model.spoc_fmin) must lie between 0 and the "
            f"highest (0.38 x {sfreq} Hz)."
        )
    if components is not None and components < parts[0][0].shape[0]:
        parts = _principal_subspace(parts, components)
    seg = max(1, round(segment * sfreq))
    hrf = canonical_hrf(sfreq / seg)[0]
    d = delay_samples(bold_delay, sfreq / seg)
    freqs = np.geomspace(fmin, 0.38 * sfreq, n_bands)
    n_rois = parts[0][1].shape[0]
    out: list[list[SpocBranch]] = [[] for _ in range(n_rois)]
    for freq in freqs:
        taps = band_taps(float(freq), sfreq, filter_size)
        # per part: HRF-convolved covariances (n_k, C, C) and standardised targets (n_rois, n_k)
        hks, zs = [], []
        for eeg, target, block in parts:
            cov = _segment_covariances(eeg[:, block.slice], taps, seg)
            h = scipy.signal.lfilter(hrf, [1.0], cov, axis=0)
            k = np.arange(max(0, h.shape[0] - d))
            z = target[:, block.start + k * seg + seg // 2]  # (n_rois, n_k): BOLD after segment k
            ok = np.all(np.isfinite(z), axis=0)
            k, z = k[ok], z[:, ok]
            hks.append(h[k + d])
            zs.append((z - z.mean(axis=1, keepdims=True)) / np.maximum(z.std(axis=1, keepdims=True), 1e-12))
        # filters from all segments; scores from contiguous folds, each scored by filters fitted without it
        filters = _fit(hks, zs, [np.ones(len(z[0]), bool) for z in zs], shrink)
        held = [[[] for _ in range(2)] for _ in range(n_rois)]
        for fold in range(folds):
            train = [np.arange(len(z[0])) * folds // len(z[0]) != fold for z in zs]
            fold_filters = _fit(hks, zs, train, shrink)
            for r in range(n_rois):
                for end in range(2):
                    w = fold_filters[r][end]
                    for hk, z, tr in zip(hks, zs, train, strict=True):
                        if (~tr).sum() > 2:
                            p = np.einsum("kcd,c,d->k", hk[~tr], w, w)
                            held[r][end].append(np.corrcoef(p, z[r, ~tr])[0, 1])
        for r in range(n_rois):
            for end in range(2):
                score = float(np.nanmean(held[r][end])) if held[r][end] else 0.0
                out[r].append(SpocBranch(float(freq), filters[r][end], score, taps, 1 if end else -1))
    for branches in out:
        branches.sort(key=lambda b: -b.strength)
    return out


def _principal_subspace(
    parts: Sequence[tuple[np.ndarray, np.ndarray, Block]], components: int
) -> list[tuple[np.ndarray, np.ndarray, Block]]:
    """``parts`` with each recording's EEG projected onto the ``components`` leading principal
    directions of the fitting blocks' EEG (pooled): covariances of rank ``components``, so every
    SPoC filter is a combination of those directions."""
    n_chans = parts[0][0].shape[0]
    if not 1 <= components <= n_chans:
        raise ValueError(f"spoc_branches: components must be 1..{n_chans} (the channels), got {components}.")
    cov = sum(np.cov(eeg[:, block.slice]) for eeg, _, block in parts)
    _, vecs = np.linalg.eigh(cov)
    basis = vecs[:, ::-1][:, :components]
    projector = basis @ basis.T
    return [(projector @ eeg, target, block) for eeg, target, block in parts]


def _fit(
    hks: list[np.ndarray], zs: list[np.ndarray], use: list[np.ndarray], shrink: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per ROI, the SPoC filters of the most negative and most positive co-modulation, fitted on
    the segments ``use`` of each part."""
    n_chans = hks[0].shape[1]
    n_rois = zs[0].shape[0]
    cz = np.zeros((n_rois, n_chans, n_chans))
    cmean = np.zeros((n_chans, n_chans))
    for hk, z, u in zip(hks, zs, use, strict=True):
        zu = z[:, u] - z[:, u].mean(axis=1, keepdims=True)
        cz += np.einsum("rk,kcd->rcd", zu, hk[u]) / (u.sum() * len(hks))
        cmean += hk[u].mean(axis=0) / len(hks)
    cmean = (1 - shrink) * cmean + shrink * np.trace(cmean) / n_chans * np.eye(n_chans)
    out = []
    for r in range(n_rois):
        _, vecs = scipy.linalg.eigh(cz[r], cmean)
        out.append((vecs[:, 0].copy(), vecs[:, -1].copy()))
    return out


def apply_spoc(
    model: torch.nn.Module, branches: list[list[SpocBranch]], min_ratio: float = MIN_RATIO
) -> None:
    """Set each head's branches to its strongest candidates: unmixing = filter, band-pass at the band.

    A candidate whose strength is below ``min_ratio`` times the head's best is not used (what a
    30-channel filter finds in a band with nothing to find is fitted noise): its branch gets a
    zero unmixing (its envelope is a constant the read-out cannot use).

    Parameters
    ----------
    model : BEIRAReadout
        With ``n_outputs == len(branches)`` heads of ``n_filters`` branches each.
    branches : list of list of SpocBranch
        From :func:`spoc_branches`.
    min_ratio : float
        Weakest score used, relative to the head's best.
    """
    for head, cands in enumerate(branches):
        best = cands[0].strength if cands else 0.0
        used = []
        for branch in range(model.n_filters):
            cand = cands[branch] if branch < len(cands) else None
            if cand is not None and best > 0 and cand.strength >= min_ratio * best:
                model.set_unmixing(head, branch, torch.from_numpy(cand.filter))
                if cand.taps is not None and cand.taps.size == model.interpretable.band_pass.kernel_size:
                    model.set_band_pass_taps(head, branch, torch.from_numpy(cand.taps))
                else:
                    model.set_band_pass(head, branch, cand.freq)
                used.append(f"{cand.freq:.1f} Hz ({cand.score:+.2f})")
            else:
                model.set_unmixing(head, branch, None)
        logger.info("spoc head %d: %s", head, ", ".join(used) or "no branch")


def fit_front_end(model: torch.nn.Module, parts: Sequence, model_cfg) -> None:
    """``model.filter_init`` spoc: fit every head's branches on the training blocks of ``parts``
    (prepared recordings: ``eeg``, ``target``, ``split``, ``sfreq``); nothing for other starts.

    Parameters
    ----------
    model : BEIRAReadout
    parts : sequence of PreparedData
        One recording, or the subjects of a group (their statistics pooled).
    model_cfg : beira_rt.config.ModelConfig
    """
    if model_cfg.filter_start != "spoc":
        return
    data = [(p.eeg, p.target, p.split.train) for p in parts]
    branches = spoc_branches(
        data,
        parts[0].sfreq,
        model_cfg.bold_delay,
        filter_size=model_cfg.filter_size,
        n_bands=model_cfg.spoc_bands,
        fmin=model_cfg.spoc_fmin,
        shrink=model_cfg.spoc_shrink,
        components=model_cfg.spoc_components,
    )
    apply_spoc(model, branches)
