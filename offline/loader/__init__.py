"""Recordings for the trainer: CWL subjects and generic EEG + ROI-series pairs.

Public API
----------
- :func:`load_cwl_subject` — a CWL subject folder (EEGLAB .set, normalised EPI,
  SPM motion parameters) plus an atlas -> :class:`Recording`.
- :func:`load_generic` — any MNE-readable EEG file plus a TSV of ROI series at
  the volume markers -> :class:`Recording`.
- :func:`cwl_paths` — the expected file paths of a CWL subject.
- :class:`DataError`, :class:`MissingFileError` — what goes wrong, in words.
"""

from offline.loader.cwl import CWLPaths, cwl_paths, load_cwl_subject, load_generic, read_roi_tsv
from offline.loader.recording import DataError, MissingFileError, Recording, interpolate_bold, n_model_samples

__all__ = [
    "CWLPaths",
    "DataError",
    "MissingFileError",
    "Recording",
    "cwl_paths",
    "interpolate_bold",
    "load_cwl_subject",
    "load_generic",
    "n_model_samples",
    "read_roi_tsv",
]
