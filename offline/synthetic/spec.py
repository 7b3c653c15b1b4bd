"""The parameters of the synthetic generative model (:class:`SyntheticSpec`).

Kept apart from :mod:`offline.synthetic.writer` so that the simulation modules
(:mod:`offline.synthetic.bold`, :mod:`offline.synthetic.ceiling`) do not depend on the writer.
"""

from __future__ import annotations

from dataclasses import dataclass

from beira_rt.config import DEFAULT_ROIS
from offline.synthetic.eeg import DEFAULT_SOURCES, SourceSpec


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
