"""Causal, stateful, chunk-invariant EEG preprocessing shared by the trainer and the live engine.

Notch(es) -> band-pass -> common average reference -> anti-alias low-pass ->
resampling to the model rate, all causal (no zero-phase filtering). Filter
design (:func:`design_filters`) is separate from application
(:class:`CausalPreprocessor`); :func:`preprocess_recording` runs the same
code over a whole recording; :class:`Normalizer` z-scores the result with
training-block statistics.
"""

from __future__ import annotations

from .causal import CausalPreprocessor, SosCascade, preprocess_recording
from .design import FilterDesign, check_sfreq_in, check_stable, design_filters
from .normalize import Normalizer
from .resample import LinearResampler, n_outputs, rational_ratio

__all__ = [
    "CausalPreprocessor",
    "FilterDesign",
    "LinearResampler",
    "Normalizer",
    "SosCascade",
    "check_sfreq_in",
    "check_stable",
    "design_filters",
    "n_outputs",
    "preprocess_recording",
    "rational_ratio",
]
