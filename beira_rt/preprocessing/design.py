"""Design of the causal preprocessing filters, separate from their application.

:func:`design_filters` turns a :class:`~beira_rt.config.PreprocessingConfig`
and an input sampling rate into a :class:`FilterDesign`: second-order
sections (SOS) for the notch and band-pass stage and for the anti-alias
low-pass, plus the exact rational resampling ratio. Nothing here holds
state; :class:`~beira_rt.preprocessing.causal.CausalPreprocessor` applies
the design sample by sample.

All filters are causal IIR filters (no zero-phase filtering): the live
engine cannot see the future, so the model must not be trained on features
that could.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.signal

from beira_rt._logging import logger
from beira_rt.config import PreprocessingConfig

from .resample import rational_ratio

__all__ = [
    "AA_CUTOFF_FRACTION",
    "AA_ORDER",
    "AA_RIPPLE_DB",
    "AA_STOP_DB",
    "H_FREQ_MAX_FRACTION",
    "FilterDesign",
    "check_sfreq_in",
    "check_stable",
    "design_filters",
]

#: Anti-alias cutoff as a fraction of the model rate (0.4 -> 40 Hz at 100 Hz).
AA_CUTOFF_FRACTION = 0.4
#: Order of the elliptic anti-alias low-pass.
AA_ORDER = 8
#: Pass-band ripple (dB) and stop-band attenuation (dB) of the anti-alias low-pass.
AA_RIPPLE_DB = 0.1
AA_STOP_DB = 80.0
#: The band-pass high edge is clipped to this fraction of the input rate.
H_FREQ_MAX_FRACTION = 0.45

_EMPTY_SOS = np.zeros((0, 6))


def check_sfreq_in(sfreq_in: object, sfreq: float) -> float:
    """Validate an input sampling rate and return it as a float.

    Parameters
    ----------
    sfreq_in : float
        Sampling rate of the incoming EEG in Hz.
    sfreq : float
        Model sampling rate in Hz; the input must not be slower.

    Returns
    -------
    float
        ``sfreq_in`` as a float.

    Raises
    ------
    ValueError
        If ``sfreq_in`` is not a positive finite number or is below ``sfreq``.
    """
    if isinstance(sfreq_in, bool) or not isinstance(sfreq_in, numbers.Real):
        raise ValueError(
            f"The input sampling rate must be a number in Hz, got {type(sfreq_in).__name__} {sfreq_in!r}."
        )
    value = float(sfreq_in)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"The input sampling rate must be a positive finite number in Hz, got {value!r}.")
    if value < sfreq:
        raise ValueError(
            f"The input sampling rate {value:g} Hz is below the model rate {sfreq:g} Hz; "
            "beira-rt only downsamples. Record at a higher rate or lower preprocessing.sfreq."
        )
    return value


def check_stable(sos: np.ndarray, what: str) -> np.ndarray:
    """Check that every section of an SOS cascade has its poles inside the unit circle.

    Parameters
    ----------
    sos : array of shape (n_sections, 6)
        Second-order sections ``[b0, b1, b2, a0, a1, a2]``.
    what : str
        Name of the filter for the error message.

    Returns
    -------
    array of shape (n_sections, 6)
        ``sos``, unchanged.

    Raises
    ------
    ValueError
        If a pole lies on or outside the unit circle or a coefficient is not finite.
    """
    sos = np.asarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6:
        raise ValueError(f"The {what} must be an array of shape (n_sections, 6), got shape {sos.shape}.")
    if not np.all(np.isfinite(sos)):
        raise ValueError(f"The {what} has non-finite coefficients; check the filter frequencies.")
    for i, section in enumerate(sos):
        radius = float(np.max(np.abs(np.roots(section[3:])), initial=0.0))
        if radius >= 1.0:
            raise ValueError(
                f"The {what} is unstable: section {i} has a pole of magnitude {radius:.6f} (must be < 1). "
                "Use a lower filter order or frequencies further from 0 Hz and the Nyquist frequency."
            )
    return sos


@dataclass(frozen=True, eq=False)
class FilterDesign:
    """The causal filters of one preprocessing chain (a design, no state).

    Attributes
    ----------
    sfreq_in, sfreq : float
        Input and model sampling rates in Hz.
    ratio : Fraction
        Input samples per model sample (exact; output ``k`` lies at input position ``k * ratio``).
    notch_freqs : tuple of float
        Notch centre frequencies in Hz (empty: no notch).
    notch_width : float
        Bandwidth of each notch in Hz.
    l_freq, h_freq : float | None
        Effective band-pass edges in Hz at the input rate (``h_freq`` after clipping).
    band_order : int
        Butterworth order of the band-pass.
    aa_cutoff : float | None
        Anti-alias low-pass edge in Hz (``None`` when the input is already at the model rate).
    sos_band : array of shape (n_notch + n_band, 6)
        Notch sections, then band-pass sections, applied at ``sfreq_in`` before the CAR.
    sos_aa : array of shape (n_aa, 6)
        Anti-alias sections, applied at ``sfreq_in`` after the CAR.
    notes : tuple of str
        Adjustments made to the configuration (already logged as warnings).
    """

    sfreq_in: float
    sfreq: float
    ratio: Fraction
    notch_freqs: tuple[float, ...]
    notch_width: float
    l_freq: float | None
    h_freq: float | None
    band_order: int
    aa_cutoff: float | None
    sos_band: np.ndarray
    sos_aa: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def model_band(self) -> tuple[float, float]:
        """The band (Hz) that reaches the model: band-pass bounded by the anti-alias low-pass."""
        low = self.l_freq if self.l_freq is not None else 0.0
        highs = [f for f in (self.h_freq, self.aa_cutoff) if f is not None]
        return low, min(highs) if highs else self.sfreq_in / 2

    def frequency_response(self, freqs: np.ndarray) -> np.ndarray:
        """Complex response of all filters together (CAR and resampling excluded).

        Parameters
        ----------
        freqs : array of shape (n_freqs,)
            Frequencies in Hz at the input rate.

        Returns
        -------
        array of shape (n_freqs,), complex
        """
        freqs = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
        response = np.ones(freqs.shape, dtype=np.complex128)
        for sos in (self.sos_band, self.sos_aa):
            if len(sos):
                response *= scipy.signal.sosfreqz(sos, worN=freqs, fs=self.sfreq_in)[1]
        return response

    def group_delay(self, freqs: np.ndarray) -> np.ndarray:
        """Group delay of all filters together, in seconds.

        Parameters
        ----------
        freqs : array of shape (n_freqs,)
            Frequencies in Hz; avoid the notch centres, where the phase jumps.

        Returns
        -------
        array of shape (n_freqs,)
            Delay in seconds (the sum over sections).
        """
        freqs = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
        delay = np.zeros(freqs.shape)
        for section in np.concatenate([self.sos_band, self.sos_aa]):
            delay += scipy.signal.group_delay((section[:3], section[3:]), w=freqs, fs=self.sfreq_in)[1]
        return delay / self.sfreq_in

    def describe(self) -> str:
        """The design in plain words, e.g. for the log."""
        parts = []
        if self.l_freq is not None and self.h_freq is not None:
            parts.append(
                f"causal {_ordinal(self.band_order)}-order Butterworth band-pass "
                f"{self.l_freq:g}-{self.h_freq:g} Hz"
            )
        elif self.l_freq is not None:
            parts.append(f"causal {_ordinal(self.band_order)}-order Butterworth high-pass {self.l_freq:g} Hz")
        elif self.h_freq is not None:
            parts.append(f"causal {_ordinal(self.band_order)}-order Butterworth low-pass {self.h_freq:g} Hz")
        else:
            parts.append("no band-pass")
        if not self.notch_freqs:
            parts.append("no notch")
        elif len(self.notch_freqs) <= 4:
            freqs = ", ".join(f"{f:g}" for f in self.notch_freqs)
            parts.append(f"notch {freqs} Hz ({self.notch_width:g} Hz wide)")
        else:
            parts.append(
                f"notch {self.notch_freqs[0]:g} Hz and {len(self.notch_freqs) - 1} harmonics up to "
                f"{self.notch_freqs[-1]:g} Hz ({self.notch_width:g} Hz wide)"
            )
        if self.aa_cutoff is None:
            parts.append(f"no resampling (input already at {self.sfreq:g} Hz)")
        else:
            parts.append(
                f"anti-alias {_ordinal(AA_ORDER)}-order elliptic low-pass {self.aa_cutoff:g} Hz "
                f"({AA_RIPPLE_DB:g} dB ripple, {AA_STOP_DB:g} dB stop-band); linear-interpolation "
                f"resampling {self.sfreq_in:g} -> {self.sfreq:g} Hz"
            )
        low, high = self.model_band
        probe = min(10.0, 0.5 * (low + high))
        delay_ms = 1e3 * float(self.group_delay(np.array([probe]))[0])
        parts.append(
            f"band reaching the model {low:g}-{high:g} Hz; group delay {delay_ms:.0f} ms at {probe:g} Hz"
        )
        return "; ".join(parts)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _design_notches(cfg: PreprocessingConfig, sfreq_in: float, notes: list[str]) -> tuple[list, np.ndarray]:
    if cfg.notch_freq is None:
        return [], _EMPTY_SOS
    nyquist = sfreq_in / 2
    freqs: list[float] = []
    k = 1
    while k * cfg.notch_freq + cfg.notch_width / 2 < nyquist:
        freqs.append(k * cfg.notch_freq)
        if not cfg.notch_harmonics:
            break
        k += 1
    if not freqs:
        notes.append(
            f"the {cfg.notch_freq:g} Hz notch ({cfg.notch_width:g} Hz wide) does not fit below the input "
            f"Nyquist frequency {nyquist:g} Hz; no notch is applied"
        )
        return [], _EMPTY_SOS
    sections = []
    for f in freqs:
        b, a = scipy.signal.iirnotch(f, f / cfg.notch_width, fs=sfreq_in)
        sections.append(scipy.signal.tf2sos(b, a))
    return freqs, np.concatenate(sections)


def _design_band(
    cfg: PreprocessingConfig, sfreq_in: float, notes: list[str]
) -> tuple[float | None, float | None, np.ndarray]:
    l_freq, h_freq = cfg.l_freq, cfg.h_freq
    h_max = H_FREQ_MAX_FRACTION * sfreq_in
    if h_freq is not None and h_freq >= h_max:
        notes.append(
            f"preprocessing.h_freq {h_freq:g} Hz is not below {H_FREQ_MAX_FRACTION:g} x the input rate "
            f"{sfreq_in:g} Hz; it is clipped to {h_max:g} Hz"
        )
        h_freq = h_max
    if l_freq is not None and l_freq >= (h_freq if h_freq is not None else h_max):
        raise ValueError(
            f"preprocessing.l_freq {l_freq:g} Hz must be below the band-pass high edge "
            f"{h_freq if h_freq is not None else h_max:g} Hz at an input rate of {sfreq_in:g} Hz; "
            "lower l_freq or use a faster input."
        )
    if l_freq is not None and h_freq is not None:
        sos = scipy.signal.butter(cfg.filter_order, [l_freq, h_freq], "bandpass", fs=sfreq_in, output="sos")
    elif l_freq is not None:
        sos = scipy.signal.butter(cfg.filter_order, l_freq, "highpass", fs=sfreq_in, output="sos")
    elif h_freq is not None:
        sos = scipy.signal.butter(cfg.filter_order, h_freq, "lowpass", fs=sfreq_in, output="sos")
    else:
        sos = _EMPTY_SOS
    return l_freq, h_freq, sos


def design_filters(cfg: PreprocessingConfig, sfreq_in: float) -> FilterDesign:
    """Design the causal filters for an input rate.

    Notch at ``cfg.notch_freq`` and (if ``cfg.notch_harmonics``) its harmonics
    whose notch fits below the input Nyquist frequency; Butterworth band-pass
    ``cfg.l_freq``-``cfg.h_freq`` of order ``cfg.filter_order`` (``h_freq`` is
    clipped to ``0.45 * sfreq_in`` with a warning); and, when the input is
    faster than ``cfg.sfreq``, an elliptic anti-alias low-pass at
    ``0.4 * cfg.sfreq``, applied at the input rate before resampling. That
    low-pass, not ``h_freq``, bounds the band reaching the model when
    ``h_freq`` is above it (the default 100 Hz at a 100 Hz model rate).

    Parameters
    ----------
    cfg : PreprocessingConfig
        The preprocessing section of the configuration.
    sfreq_in : float
        Sampling rate of the input in Hz (>= ``cfg.sfreq``).

    Returns
    -------
    FilterDesign

    Raises
    ------
    ValueError
        If ``sfreq_in`` is not a positive finite number at least ``cfg.sfreq``,
        if the band is empty at this rate, or if a designed filter is unstable.
    """
    if not isinstance(cfg, PreprocessingConfig):
        raise TypeError(f"design_filters() needs a PreprocessingConfig, got {type(cfg).__name__}.")
    sfreq_in = check_sfreq_in(sfreq_in, cfg.sfreq)
    ratio = rational_ratio(sfreq_in, cfg.sfreq)
    notes: list[str] = []
    notch_freqs, sos_notch = _design_notches(cfg, sfreq_in, notes)
    l_freq, h_freq, sos_bp = _design_band(cfg, sfreq_in, notes)
    if ratio == 1:
        aa_cutoff, sos_aa = None, _EMPTY_SOS
    else:
        aa_cutoff = AA_CUTOFF_FRACTION * cfg.sfreq
        sos_aa = scipy.signal.ellip(
            AA_ORDER, AA_RIPPLE_DB, AA_STOP_DB, aa_cutoff, "lowpass", fs=sfreq_in, output="sos"
        )
        if l_freq is not None and l_freq >= aa_cutoff:
            raise ValueError(
                f"preprocessing.l_freq {l_freq:g} Hz is not below the anti-alias cutoff {aa_cutoff:g} Hz "
                f"({AA_CUTOFF_FRACTION:g} x the model rate {cfg.sfreq:g} Hz): nothing would reach the model. "
                "Lower l_freq or raise preprocessing.sfreq."
            )
    sos_band = check_stable(np.concatenate([sos_notch, sos_bp]), "notch/band-pass filter")
    sos_aa = check_stable(sos_aa, "anti-alias low-pass")
    for note in notes:
        logger.warning("Preprocessing: %s.", note)
    for sos in (sos_band, sos_aa):
        sos.setflags(write=False)
    return FilterDesign(
        sfreq_in=sfreq_in,
        sfreq=float(cfg.sfreq),
        ratio=ratio,
        notch_freqs=tuple(float(f) for f in notch_freqs),
        notch_width=float(cfg.notch_width),
        l_freq=l_freq,
        h_freq=h_freq,
        band_order=cfg.filter_order,
        aa_cutoff=aa_cutoff,
        sos_band=sos_band,
        sos_aa=sos_aa,
        notes=tuple(notes),
    )
