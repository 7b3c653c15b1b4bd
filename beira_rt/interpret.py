"""Spatial and spectral patterns of BEIRA's interpretable branches (the pattern math).

Every ROI head of BEIRA starts with ``n_filters`` branches; branch ``k`` of head ``h`` is
a spatial filter ``w`` (the unmixing weights, over the normalised EEG channels), a learned
band-pass FIR filter ``b``, a rectification and a learned envelope FIR filter ``e``. The
weights of a filter are not the pattern of what it listens to (Haufe et al. 2014,
NeuroImage 87:96-110): a spatial filter also cancels noise, so its weights are large where
the noise is, not where the source is. The paper's method (Kovalev et al. 2022, following
Petrosyan et al. 2021, J. Neural Eng. 18:046016) applies Haufe's rule per branch:

- **spatial pattern** ``a = C_b w``, where ``C_b`` is the covariance of the input as the
  branch sees it: the normalised EEG filtered by the branch's band-pass ``b``. From the
  cross-spectral density ``S(f)`` of the normalised EEG, ``C_b = sum_f |B(f)|^2 Re S(f) df``.
  The EEG is z-scored per channel before the model (``x_z = (x - m) / s``), so the filter on
  the EEG in microvolts is ``w / s`` and the pattern in microvolts is ``s * a``; both are
  reported in the microvolt space (what a topomap of the scalp shows);
- **spectral pattern** ``P(f) = |B(f)| S_u(f)``: the band-pass response corrected by the
  spectrum ``S_u(f) = w^H S(f) w`` of the branch's unmixed signal (Haufe's rule in time:
  the temporal pattern is the autocovariance of the filter's input times its taps, whose
  Fourier transform is ``S_u(f) B(f)``). Its peak is the frequency the branch uses; the peak
  of ``|B(f)|`` alone is reported beside it;
- **envelope filter**: its response ``|E(f)|``, half-power cut-off and RMS duration.

This module holds only the math on arrays and a model (no data loading); the trainer
(:mod:`offline.interpret`) computes the cross-spectrum of a recording, the importance of
each branch and the figures, and writes ``interpretation.json`` and its compact form
``patterns.json`` that the dashboard reads (:func:`read_patterns`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from beira_rt.models import BEIRA

__all__ = [
    "BranchFilters",
    "BranchPatterns",
    "RoiPatterns",
    "branch_filters",
    "branch_patterns",
    "cross_spectrum",
    "envelope_descriptors",
    "filter_response",
    "lobe_centre",
    "patterns_path",
    "read_patterns",
]


@dataclass(frozen=True)
class BranchFilters:
    """The learned filters of the interpretable block, per head and branch.

    Attributes
    ----------
    unmix : array of shape (n_heads, n_filters, n_chans)
        Spatial unmixing weights over the normalised EEG channels.
    band_pass : array of shape (n_heads, n_filters, filter_size)
        Taps of the learned band-pass filters.
    envelope : array of shape (n_heads, n_filters, envelope_size)
        Taps of the learned envelope filters.
    sfreq : float
        Model rate in Hz (the rate of the taps).
    """

    unmix: np.ndarray
    band_pass: np.ndarray
    envelope: np.ndarray
    sfreq: float

    @property
    def n_heads(self) -> int:
        """Number of heads (ROIs)."""
        return int(self.unmix.shape[0])

    @property
    def n_filters(self) -> int:
        """Branches per head."""
        return int(self.unmix.shape[1])


def branch_filters(model: BEIRA) -> BranchFilters:
    """Read the interpretable block's filters out of a (fused) :class:`beira_rt.models.BEIRA`.

    Parameters
    ----------
    model : BEIRA

    Returns
    -------
    BranchFilters
    """
    block = model.interpretable
    heads, n_filters = model.n_outputs, int(model.hparams["n_filters"])

    def taps(weight: Any) -> np.ndarray:
        w = weight.detach().cpu().double().numpy()  # (heads * n_filters, in_per_group, taps)
        return w.reshape(heads, n_filters, *w.shape[1:])

    return BranchFilters(
        unmix=taps(block.unmix.weight)[..., 0],
        band_pass=taps(block.band_pass.weight)[:, :, 0, :],
        envelope=taps(block.envelope.weight)[:, :, 0, :],
        sfreq=float(model.sfreq),
    )


def cross_spectrum(z: np.ndarray, sfreq: float, nperseg: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Welch estimate of the cross-spectral density of multichannel data (one-sided).

    Hann windows of ``nperseg`` samples, half overlapping, each segment's mean removed;
    scaled so that ``sum(S, axis=0).real * df`` is the covariance matrix.

    Parameters
    ----------
    z : array of shape (n_chans, n_samples)
    sfreq : float
        Sampling rate in Hz.
    nperseg : int
        Segment length (the frequency resolution is ``sfreq / nperseg``).

    Returns
    -------
    freqs : array of shape (nperseg // 2 + 1,)
        Frequencies in Hz.
    csd : array of complex128, shape (n_freqs, n_chans, n_chans)
        Cross-spectral density, per Hz.
    """
    z = np.asarray(z, dtype=np.float64)
    n_chans, n = z.shape
    nperseg = min(nperseg, n)
    step = nperseg // 2
    starts = np.arange(0, n - nperseg + 1, step)
    window = np.hanning(nperseg)
    csd = np.zeros((nperseg // 2 + 1, n_chans, n_chans), dtype=np.complex128)
    for chunk in np.array_split(starts, max(1, len(starts) // 64)):
        seg = np.stack([z[:, s : s + nperseg] for s in chunk])  # (n_seg, n_chans, nperseg)
        seg = (seg - seg.mean(axis=-1, keepdims=True)) * window
        spec = np.fft.rfft(seg, axis=-1)  # (n_seg, n_chans, n_freqs)
        csd += np.einsum("sif,sjf->fij", spec, spec.conj())
    csd /= len(starts) * sfreq * (window**2).sum()
    csd[1 : -1 if nperseg % 2 == 0 else None] *= 2.0  # one-sided: fold the negative frequencies
    return np.fft.rfftfreq(nperseg, 1.0 / sfreq), csd


def filter_response(taps: np.ndarray, freqs: np.ndarray, sfreq: float) -> np.ndarray:
    """Magnitude of the frequency response of FIR filters.

    Parameters
    ----------
    taps : array of shape (..., n_taps)
    freqs : array of shape (n_freqs,)
        Frequencies in Hz.
    sfreq : float
        Rate of the taps in Hz.

    Returns
    -------
    array of shape (..., n_freqs)
        ``|sum_n taps[n] exp(-2 pi i f n / sfreq)|``.
    """
    n = np.arange(taps.shape[-1])
    basis = np.exp(-2j * np.pi * np.outer(n, freqs) / sfreq)  # (n_taps, n_freqs)
    return np.abs(np.asarray(taps, dtype=np.float64) @ basis)


def envelope_descriptors(taps: np.ndarray, freqs: np.ndarray, sfreq: float) -> dict[str, np.ndarray]:
    """Response, half-power cut-off and RMS duration of envelope filters.

    Parameters
    ----------
    taps : array of shape (..., n_taps)
    freqs : array of shape (n_freqs,), increasing, from 0 Hz
    sfreq : float

    Returns
    -------
    dict
        ``response`` (..., n_freqs): ``|E(f)|``; ``cutoff_hz`` (...): the lowest frequency above
        the response's peak where the power falls below half the peak's; ``time_scale_s``
        (...): RMS duration of the taps, ``sqrt(sum (t - t0)^2 e^2 / sum e^2)``.
    """
    response = filter_response(taps, freqs, sfreq)
    power = response**2
    peak = power.argmax(axis=-1)
    below = (power < 0.5 * power.max(axis=-1, keepdims=True)) & (np.arange(freqs.size) > peak[..., None])
    first = np.where(below.any(axis=-1), below.argmax(axis=-1), freqs.size - 1)
    t = np.arange(taps.shape[-1]) / sfreq
    e2 = np.asarray(taps, dtype=np.float64) ** 2
    total = np.maximum(e2.sum(axis=-1), 1e-300)
    t0 = (e2 * t).sum(axis=-1) / total
    duration = np.sqrt((e2 * (t - t0[..., None]) ** 2).sum(axis=-1) / total)
    return {"response": response, "cutoff_hz": freqs[first], "time_scale_s": duration}


@dataclass(frozen=True)
class BranchPatterns:
    """Patterns of every branch of every head (see the module notes for the definitions).

    Attributes
    ----------
    freqs : array of shape (n_freqs,)
        Frequencies in Hz of every spectrum.
    pattern : array of shape (n_heads, n_filters, n_chans)
        Spatial patterns (Haufe, per branch), microvolt space, scaled to a largest absolute
        value of 1, sign chosen so that the largest absolute value is positive.
    weights : array of shape (n_heads, n_filters, n_chans)
        The spatial filters in the microvolt space (unmixing weights / channel std), scaled to
        a largest absolute value of 1, with the pattern's sign flip.
    band_response : array of shape (n_heads, n_filters, n_freqs)
        ``|B(f)|`` of the learned band-pass.
    unmixed_psd : array of shape (n_heads, n_filters, n_freqs)
        ``S_u(f)``: spectrum of the branch's unmixed signal (normalised-EEG units per Hz).
    spectral_pattern : array of shape (n_heads, n_filters, n_freqs)
        ``|B(f)| S_u(f)`` scaled to a peak of 1 within the analysed band.
    peak_hz, band_peak_hz : arrays of shape (n_heads, n_filters)
        Peak frequency of ``spectral_pattern`` and of ``band_response`` within ``[fmin, fmax]``.
    centre_hz : array of shape (n_heads, n_filters)
        Centre of gravity of ``spectral_pattern`` over its main lobe (the frequencies around the
        peak where it stays above half the peak): the centre of the band the branch passes, as
        the centre-of-gravity frequency of EEG rhythms (Klimesch 1999) is used where a band has
        a flat top and its argmax is decided by small tilts.
    envelope_response : array of shape (n_heads, n_filters, n_freqs)
    envelope_cutoff_hz, envelope_time_scale_s : arrays of shape (n_heads, n_filters)
    fmin, fmax : float
        Band searched for the peaks (what reaches the model), Hz.
    """

    freqs: np.ndarray
    pattern: np.ndarray
    weights: np.ndarray
    band_response: np.ndarray
    unmixed_psd: np.ndarray
    spectral_pattern: np.ndarray
    peak_hz: np.ndarray
    band_peak_hz: np.ndarray
    centre_hz: np.ndarray
    envelope_response: np.ndarray
    envelope_cutoff_hz: np.ndarray
    envelope_time_scale_s: np.ndarray
    fmin: float
    fmax: float


def _unit_max(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-300)


def lobe_centre(spectra: np.ndarray, freqs: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Centre of gravity of each spectrum over its main lobe.

    Parameters
    ----------
    spectra : array of shape (..., n_freqs)
        Non-negative spectra on the grid ``freqs``.
    freqs : array of shape (n_freqs,)
    level : float
        The lobe: the contiguous frequencies around the maximum where the spectrum is at least
        ``level`` times the maximum.

    Returns
    -------
    array of shape spectra.shape[:-1]
        ``sum f S(f) / sum S(f)`` over the lobe, Hz; NaN for an all-zero spectrum.
    """
    flat = np.asarray(spectra, dtype=np.float64).reshape(-1, spectra.shape[-1])
    out = np.empty(flat.shape[0])
    for n, s in enumerate(flat):
        top = int(s.argmax())
        above = s >= level * s[top]
        lo = top - int(np.argmin(above[top::-1])) + 1 if not above[: top + 1].all() else 0
        hi = top + int(np.argmin(above[top:])) if not above[top:].all() else s.size
        total = np.sum(s[lo:hi])  # 0: an unused branch (no signal)
        out[n] = float(np.sum(freqs[lo:hi] * s[lo:hi]) / total) if total > 0 else float("nan")
    return out.reshape(spectra.shape[:-1])


def branch_patterns(
    filters: BranchFilters,
    freqs: np.ndarray,
    csd: np.ndarray,
    norm_std: np.ndarray | None = None,
    fmin: float = 1.0,
    fmax: float | None = None,
) -> BranchPatterns:
    """Spatial and spectral patterns of every branch from the EEG's cross-spectrum.

    Parameters
    ----------
    filters : BranchFilters
        From :func:`branch_filters`.
    freqs : array of shape (n_freqs,)
        Frequencies of ``csd`` in Hz, evenly spaced from 0.
    csd : array of complex, shape (n_freqs, n_chans, n_chans)
        Cross-spectral density of the normalised EEG the model sees (:func:`cross_spectrum`).
    norm_std : array of shape (n_chans,) | None
        The per-channel std of the normaliser (microvolts); None = patterns in the normalised space.
    fmin, fmax : float
        Band searched for spectral peaks (default ``fmax``: 0.4 x the model rate, the
        anti-alias edge of the preprocessing).

    Returns
    -------
    BranchPatterns
    """
    sfreq = filters.sfreq
    fmax = 0.4 * sfreq if fmax is None else float(fmax)
    df = float(freqs[1] - freqs[0])
    w = filters.unmix  # (H, F, C)
    band = filter_response(filters.band_pass, freqs, sfreq)  # (H, F, n_freqs)
    real = np.ascontiguousarray(csd.real)  # the imaginary part cancels in w' S w and in C_b
    # C_b w = sum_f |B(f)|^2 S(f) w df, for every branch at once
    sw = np.einsum("fij,hkj->hkfi", real, w)  # S(f) w: (H, F, n_freqs, C)
    pattern = np.einsum("hkf,hkfi->hki", band**2 * df, sw)
    unmixed = np.einsum("hkfi,hki->hkf", sw, w)  # S_u(f) = w' S(f) w
    scale = np.ones(w.shape[-1]) if norm_std is None else np.asarray(norm_std, dtype=np.float64)
    pattern = pattern * scale
    weights = w / scale
    sign = np.sign(np.take_along_axis(pattern, np.abs(pattern).argmax(axis=-1)[..., None], axis=-1))
    sign[sign == 0] = 1.0
    in_band = (freqs >= fmin) & (freqs <= fmax)
    idx = np.flatnonzero(in_band)
    spectral = band * unmixed
    peak = freqs[idx][spectral[..., idx].argmax(axis=-1)]
    centre = lobe_centre(spectral[..., idx], freqs[idx])
    band_peak = freqs[idx][band[..., idx].argmax(axis=-1)]
    spectral = spectral / np.maximum(spectral[..., idx].max(axis=-1, keepdims=True), 1e-300)
    env = envelope_descriptors(filters.envelope, freqs, sfreq)
    return BranchPatterns(
        freqs=np.asarray(freqs, dtype=np.float64),
        pattern=_unit_max(pattern * sign),
        weights=_unit_max(weights * sign),
        band_response=band,
        unmixed_psd=unmixed,
        spectral_pattern=spectral,
        peak_hz=peak,
        band_peak_hz=band_peak,
        centre_hz=centre,
        envelope_response=env["response"],
        envelope_cutoff_hz=env["cutoff_hz"],
        envelope_time_scale_s=env["time_scale_s"],
        fmin=float(fmin),
        fmax=fmax,
    )


def patterns_path(bundle_path: str | Path) -> Path:
    """The compact patterns file that belongs beside a bundle: ``X.beira`` -> ``X.patterns.json``."""
    path = Path(bundle_path)
    return path.with_name(f"{path.stem}.patterns.json")


@dataclass(frozen=True)
class RoiPatterns:
    """The top branches of one ROI as the dashboard shows them.

    Attributes
    ----------
    roi : str
    branches : list of dict
        Branches by rank (most important first), each with ``branch``, ``importance``,
        ``peak_hz`` and ``pattern`` (array of shape (n_chans,)).
    """

    roi: str
    branches: list[dict[str, Any]]


def read_patterns(path: str | Path) -> tuple[dict[str, Any], list[RoiPatterns]]:
    """Read ``patterns.json`` or ``interpretation.json``, or the patterns file beside a bundle.

    Parameters
    ----------
    path : str or Path
        A JSON written by ``beira-train interpret`` (or by training), or a ``.beira`` bundle
        whose ``<stem>.patterns.json`` lies beside it (see :func:`patterns_path`).

    Returns
    -------
    meta : dict
        ``ch_names``, ``positions`` (channel -> [x, y, z] in m, head frame), ``bundle_hash``,
        ``subject``, ``source`` (the file read).
    rois : list of RoiPatterns

    Raises
    ------
    FileNotFoundError
        When the file (or a bundle's patterns file) does not exist.
    ValueError
        When the file is not a patterns file.
    """
    path = Path(path)
    if path.suffix == ".beira":
        sidecar = patterns_path(path)
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"no patterns file {sidecar} beside the bundle {path}; write it with "
                f"beira-train interpret {path} --data DIR --subject S --out DIR, then pass DIR/patterns.json."
            )
        path = sidecar
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "rois" not in doc or "ch_names" not in doc:
        raise ValueError(f"{path} is not a patterns file of beira-train interpret (no 'rois' / 'ch_names').")
    n_chans = len(doc["ch_names"])
    out = []
    for roi, entry in doc["rois"].items():
        branches = sorted(entry["branches"], key=lambda b: b["rank"])
        for b in branches:
            b["pattern"] = np.asarray(b["pattern"], dtype=np.float64)
            if b["pattern"].shape != (n_chans,):
                raise ValueError(f"{path}: a pattern of {roi} has {b['pattern'].size} values, not {n_chans}.")
        out.append(RoiPatterns(roi, branches))
    meta = {k: doc.get(k) for k in ("ch_names", "positions", "bundle_hash", "subject")}
    meta["source"] = str(path)
    return meta, out
