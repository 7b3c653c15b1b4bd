"""The parameters of the synthetic generative model (:class:`SyntheticSpec`).

Kept apart from :mod:`offline.synthetic.writer` so that the simulation modules
(:mod:`offline.synthetic.bold`, :mod:`offline.synthetic.ceiling`) do not depend on the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from beira_rt.config import DEFAULT_ROIS
from offline.synthetic.eeg import DEFAULT_SOURCES, SourceSpec
from offline.synthetic.hidden import ROI_TERMS, RoiTerm


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the generative model (defaults: the documented synthetic CWL set).

    Attributes
    ----------
    sfreq : float
        EEG rate in Hz.
    tr : float
        Volume repetition time in s.
    extra_volumes : int
        Volumes in the NIfTI after the last ``mri`` marker (trio1: 146 - 143 = 3).
    rois : tuple of str
        Target ROIs whose BOLD is driven by the EEG sources.
    sources : tuple of SourceSpec
        Oscillatory sources.
    sigma : float
        Envelope modulation depth (``a = exp(sigma z)``).
    linear_share : float
        Share of the noiseless BOLD variance explained by the linear (envelope) part.
    ceiling_range : tuple of float
        Per-ROI target ceilings are drawn uniformly from this range; the ROI noise
        level is set from it (the measured ceiling is reported in the ground truth).
    bold_percent : float
        Standard deviation of the noiseless target BOLD, in percent signal change.
    smoothing_fwhm : float
        Smoothing used by the loader pipeline when computing the ceiling (mm).
    test_seconds : float
        The ceiling is also reported over volumes in the last ``test_seconds`` of the EEG.
    vary : bool
        Draw the hidden structure per seed and subject (:func:`draw_structure`): source
        frequencies, bands, sites and amplitudes, which source drives which ROI with which sign
        and nonlinearity, and the ROI noise levels (the ceiling range). ``False``: the fixed
        :data:`~offline.synthetic.eeg.DEFAULT_SOURCES`, :data:`~offline.synthetic.hidden.ROI_TERMS`
        and ``ceiling_range``.
    """

    sfreq: float = 1000.0
    tr: float = 1.95
    extra_volumes: int = 3
    rois: tuple[str, ...] = DEFAULT_ROIS
    sources: tuple[SourceSpec, ...] = DEFAULT_SOURCES
    sigma: float = 0.6
    linear_share: float = 0.85
    ceiling_range: tuple[float, float] = (0.70, 0.84)
    bold_percent: float = 1.0
    smoothing_fwhm: float = 3.0
    test_seconds: float = 60.0
    vary: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.linear_share <= 1.0:
            raise ValueError(f"linear_share {self.linear_share} must lie between 0 and 1.")
        low, high = self.ceiling_range
        if not 0.0 < low <= high < 1.0:
            raise ValueError(
                f"ceiling_range {self.ceiling_range} must be (low, high) with 0 < low <= high < 1."
            )
        if self.extra_volumes < 0:
            raise ValueError(f"extra_volumes {self.extra_volumes} must be 0 or more.")


#: Per source role (the order of DEFAULT_SOURCES): frequency range (Hz) and candidate sites.
#: The second role is the alpha-like source that eyes-closed blocks raise.
_ROLES = (
    ((4.5, 7.5), ("Fz", "FC1", "FC2", "F3", "F4", "Cz")),
    ((8.5, 12.0), ("Oz", "O1", "O2", "Pz", "P3", "P4")),
    ((14.0, 20.0), ("C3", "FC5", "CP5", "CP1", "FC1", "P3")),
    ((20.5, 27.0), ("C4", "FC6", "CP6", "CP2", "FC2", "P4")),
    ((28.0, 36.0), ("T7", "T8", "P7", "P8", "F7", "F8")),
)


def draw_structure(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[SyntheticSpec, dict[str, RoiTerm]]:
    """Draw a subject's hidden structure: sources, ROI drives and noise levels.

    Parameters
    ----------
    rng : numpy.random.Generator
        A generator of its own (the caller derives it from the seed and the subject).
    spec : SyntheticSpec
        The defaults; with ``spec.vary`` false they are returned unchanged with :data:`ROI_TERMS`.

    Returns
    -------
    (spec, terms)
        ``spec`` with drawn ``sources`` and ``ceiling_range``; ``terms``: ROI -> (source index,
        sign of the linear part, 'square' | 'abs').
    """
    if not spec.vary:
        return spec, {roi: ROI_TERMS[roi] for roi in spec.rois}
    sources = []
    for k, src in enumerate(spec.sources):
        (f_lo, f_hi), sites = _ROLES[k % len(_ROLES)]
        sources.append(
            replace(
                src,
                freq=round(float(rng.uniform(f_lo, f_hi)), 2),
                bandwidth=round(float(rng.uniform(1.0, 2.5)), 2),
                site=str(rng.choice(sites)),
                depth=round(float(rng.uniform(0.5, 0.72)), 3),
                amplitude=float(src.amplitude * rng.uniform(0.7, 1.3)),
            )
        )
    n = len(sources)
    # every source drives at least one ROI when there are enough ROIs, the rest at random
    order = list(rng.permutation(n))
    order += list(rng.integers(0, n, max(0, len(spec.rois) - n)))
    picks = rng.permutation(order)[: len(spec.rois)]
    terms = {
        roi: (int(picks[r]), int(rng.choice((-1, 1))), str(rng.choice(("square", "abs"))))
        for r, roi in enumerate(spec.rois)
    }
    low = round(float(rng.uniform(0.62, 0.76)), 3)
    high = round(min(0.9, low + float(rng.uniform(0.06, 0.16))), 3)
    return replace(spec, sources=tuple(sources), ceiling_range=(low, high)), terms
