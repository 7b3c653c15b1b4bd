"""The hidden variables of a synthetic recording and how they make the BOLD.

Source envelopes
    ``z_k(t)``: a slow Gaussian process per source (unit variance), the sum of
    a slow part (low-pass 0.1 Hz) and a faster part (low-pass 0.4 Hz, a
    few-second scale); the alpha source is also raised in eyes-closed blocks.
    The oscillation amplitude is ``a_k(t) = exp(sigma * z_k(t))`` scaled to a
    mean of 1 (what the EEG shows).

ROI drive and BOLD
    Let ``e_k = (a_k - mean a_k) / std(a_k)`` be the standardised envelope
    deviation. Each target ROI follows one source ``i`` (see :data:`ROI_TERMS`)
    with a drive ``d(t) = s * c_lin * e_i(t) + c_nl * g(e_i(t))``: a part
    *linear in the amplitude envelope* (sign ``s``: the alpha ROI is driven
    down by alpha) and a mild, non-monotonic part ``g``, ``e**2`` (U-shaped)
    or ``|e|`` (V-shaped, rectified both ways), whose linear correlation with
    the log-envelopes is small (R^2 ~0.1). The noiseless BOLD is the drive
    convolved with the SPM canonical HRF; ``c_lin`` and ``c_nl`` are chosen so
    that the linear part explains ``linear_share`` of its variance.

    What a linear model of log band power per channel cannot capture: ``g``,
    the exponential between log-envelope and envelope, and the mixing of
    sources in each channel (BEIRA unmixes before taking the envelope). What a
    model trained on ~180 s can learn: the measured trade-off (see
    ``tools/synthetic_check.py``) is that a strongly nonlinear ``g`` is not
    learned from that little data, so the default ``linear_share`` is 0.85.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal, stats

#: Rate (Hz) of the slow grid on which envelopes, drives and BOLD are simulated.
SLOW_RATE = 20.0

#: One ROI's drive: (source index, sign of the linear part, nonlinear kind 'square' or 'abs').
RoiTerm = tuple[int, int, str]

#: The fixed drives (``SyntheticSpec(vary=False)``; by default the generator draws them per
#: seed, :func:`offline.synthetic.spec.draw_structure`).
#: Sources (eeg.DEFAULT_SOURCES): 0 theta, 1 alpha, 2 left beta, 3 right beta, 4 gamma.
ROI_TERMS: dict[str, RoiTerm] = {
    "Left Pallidum": (1, -1, "square"),
    "Right Pallidum": (3, 1, "abs"),
    "Left Caudate": (0, 1, "square"),
    "Right Caudate": (2, 1, "abs"),
    "Left Putamen": (2, -1, "square"),
    "Right Putamen": (4, 1, "abs"),
    "Left Accumbens": (0, -1, "abs"),
    "Right Accumbens": (4, 1, "square"),
}


def describe_term(roi: str, source_names: tuple[str, ...], terms: dict[str, RoiTerm] | None = None) -> str:
    """Plain-words formula of an ROI's drive, e.g. ``'-c_lin * e[alpha] + c_nl * e[alpha]^2'``."""
    src, sign, kind = (terms or ROI_TERMS)[roi]
    name = source_names[src]
    nl = f"e[{name}]^2" if kind == "square" else f"|e[{name}]|"
    return f"{'-' if sign < 0 else ''}c_lin * e[{name}] + c_nl * {nl}"


def canonical_hrf(rate: float, length: float = 32.0) -> np.ndarray:
    """SPM canonical double-gamma HRF (peak ~5 s, undershoot ~15 s), unit sum, shape (n,)."""
    t = np.arange(0.0, length, 1.0 / rate)
    h = stats.gamma.pdf(t, 6.0) - stats.gamma.pdf(t, 16.0) / 6.0
    return h / h.sum()


def lowpass_gauss(rng: np.random.Generator, n: int, rate: float, cutoff: float) -> np.ndarray:
    """Unit-variance Gaussian process, white noise low-passed at ``cutoff`` Hz, shape (n,)."""
    pad = int(4 * rate / cutoff)
    sos = signal.butter(2, cutoff, fs=rate, output="sos")
    x = signal.sosfiltfilt(sos, rng.standard_normal(n + 2 * pad))[pad:-pad]
    return (x - x.mean()) / x.std()


def eoec_blocks(
    rng: np.random.Generator, duration: float, block_range: tuple[float, float] = (20.0, 30.0)
) -> list[tuple[float, float, str]]:
    """Alternating eyes-open / eyes-closed blocks covering ``[0, duration)``.

    Returns
    -------
    list of (onset s, duration s, 'EO' | 'EC'), starting with eyes open.
    """
    blocks = []
    t = 0.0
    label = "EO"
    while t < duration:
        length = min(float(rng.uniform(*block_range)), duration - t)
        blocks.append((t, length, label))
        t += length
        label = "EC" if label == "EO" else "EO"
    return blocks


@dataclass
class HiddenState:
    """The simulated hidden variables on the slow grid.

    Attributes
    ----------
    times : array of shape (n_slow,)
        Seconds relative to the first EEG sample (starts before 0 to warm up the HRF).
    z : array of shape (n_sources, n_slow)
        Log-envelopes (about unit variance).
    amplitude : array of shape (n_sources, n_slow)
        Envelopes ``exp(sigma z)`` scaled to mean 1.
    drive : array of shape (n_rois, n_slow)
        Neural drive of each target ROI.
    bold : array of shape (n_rois, n_slow)
        Noiseless BOLD (drive convolved with the HRF), unit variance over ``t >= 0``.
    coefficients : array of shape (n_rois, 2)
        ``(c_lin, c_nl)`` per ROI.
    """

    times: np.ndarray
    z: np.ndarray
    amplitude: np.ndarray
    drive: np.ndarray
    bold: np.ndarray
    coefficients: np.ndarray

    def at(self, t: np.ndarray, what: str = "bold") -> np.ndarray:
        """Linear interpolation of ``what`` at times ``t`` (s), shape (n_rows, len(t))."""
        arr = getattr(self, what)
        return np.stack([np.interp(t, self.times, row) for row in arr])


def drive_terms(
    roi: str, amplitude: np.ndarray, terms: dict[str, RoiTerm] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The linear and nonlinear terms of an ROI's drive, centred, each of shape (n_slow,).

    Parameters
    ----------
    roi : str
        A key of :data:`ROI_TERMS`.
    amplitude : array of shape (n_sources, n_slow)
        Envelopes (see :class:`HiddenState`).
    terms : dict or None
        ROI -> (source, sign, kind); :data:`ROI_TERMS` when None.
    """
    src, sign, kind = (terms or ROI_TERMS)[roi]
    dev = amplitude[src] - amplitude[src].mean()
    e = dev / dev.std()
    if kind == "square":
        nl = e**2
    elif kind == "abs":
        nl = np.abs(e)
    else:
        raise ValueError(f"unknown nonlinear term {kind!r} for {roi}; use 'square' or 'abs'.")
    return sign * e, nl - nl.mean()


def simulate_hidden(
    rng: np.random.Generator,
    t_start: float,
    t_stop: float,
    n_sources: int,
    rois: tuple[str, ...],
    blocks: list[tuple[float, float, str]],
    alpha_index: int = 1,
    sigma: float = 0.6,
    linear_share: float = 0.85,
    slow_cutoff: float = 0.1,
    fast_cutoff: float = 0.4,
    eyes_closed_gain: float = 1.2,
    terms: dict[str, RoiTerm] | None = None,
) -> HiddenState:
    """Simulate envelopes, ROI drives and noiseless BOLD on the slow grid.

    Parameters
    ----------
    rng : numpy.random.Generator
    t_start, t_stop : float
        Time span in seconds relative to the first EEG sample; ``t_start`` should
        be at least 32 s before 0 so that the BOLD at 0 is warmed up.
    n_sources : int
        Number of oscillatory sources.
    rois : tuple of str
        Target ROIs, each a key of :data:`ROI_TERMS`.
    blocks : list of (onset, duration, label)
        Eyes-open / eyes-closed blocks; ``EC`` raises the alpha log-envelope.
    sigma : float
        Depth of the envelope modulation (``a = exp(sigma z)``).
    linear_share : float
        Fraction of the noiseless BOLD variance due to the linear (envelope) part.
    terms : dict or None
        ROI -> (source, sign, kind); :data:`ROI_TERMS` when None.

    Returns
    -------
    HiddenState
    """
    terms = terms or ROI_TERMS
    unknown = [r for r in rois if r not in terms]
    if unknown:
        raise ValueError(f"no synthetic drive is defined for ROI(s) {unknown}; known: {sorted(terms)}.")
    times = np.arange(t_start, t_stop, 1.0 / SLOW_RATE)
    n = times.size
    z = np.empty((n_sources, n))
    for k in range(n_sources):
        z[k] = 0.85 * lowpass_gauss(rng, n, SLOW_RATE, slow_cutoff) + 0.5 * lowpass_gauss(
            rng, n, SLOW_RATE, fast_cutoff
        )
    closed = np.zeros(n)
    for onset, length, label in blocks:
        if label == "EC":
            closed[(times >= onset) & (times < onset + length)] = 1.0
    ramp = np.hanning(int(2 * SLOW_RATE))
    closed = np.convolve(closed, ramp / ramp.sum(), mode="same")
    z[alpha_index] += eyes_closed_gain * (closed - closed.mean())
    z[alpha_index] = (z[alpha_index] - z[alpha_index].mean()) / z[alpha_index].std()
    amplitude = np.exp(sigma * z)
    amplitude /= amplitude.mean(axis=1, keepdims=True)

    hrf = canonical_hrf(SLOW_RATE)
    valid = times >= 0

    def convolve(x: np.ndarray) -> np.ndarray:
        return signal.fftconvolve(x, hrf)[:n]

    drive = np.empty((len(rois), n))
    bold = np.empty((len(rois), n))
    coefs = np.empty((len(rois), 2))
    for r, roi in enumerate(rois):
        lin, nl = drive_terms(roi, amplitude, terms)
        c_lin = np.sqrt(linear_share) / convolve(lin)[valid].std()
        c_nl = np.sqrt(1.0 - linear_share) / convolve(nl)[valid].std()
        drive[r] = c_lin * lin + c_nl * nl
        b = convolve(drive[r])
        bold[r] = (b - b[valid].mean()) / b[valid].std()
        coefs[r] = (c_lin, c_nl)
    return HiddenState(times=times, z=z, amplitude=amplitude, drive=drive, bold=bold, coefficients=coefs)
