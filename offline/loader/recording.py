"""The :class:`Recording` that every loader returns, and the BOLD-to-model-rate step."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mne
import numpy as np

from beira_rt.targets import interpolate_volumes


class DataError(ValueError):
    """A recording cannot be loaded as asked; the message names the file, marker or channel."""


class MissingFileError(DataError, FileNotFoundError):
    """An expected input file does not exist; the message gives the full expected path."""


@dataclass
class Recording:
    """Simultaneous EEG and ROI BOLD series, aligned on the EEG time axis.

    Times are seconds from the first EEG sample.

    Attributes
    ----------
    eeg : array of float64, shape (n_chans, n_samples)
        EEG in microvolts at the file's rate (no filtering; the unit of LSL EEG and of the bundle).
    sfreq : float
        EEG sampling rate in Hz.
    ch_names : tuple of str
        EEG channel names, in the order of ``eeg`` (EOG, ECG and CW* dropped).
    volume_onsets : array of float64, shape (n_volumes,)
        Onset of each matched fMRI volume (the volume-marker annotations), s.
    tr : float
        Repetition time in s (median interval between volume markers).
    roi_names : tuple of str
        ROI names, in the order of the rows of ``roi_series`` and ``bold``.
    roi_series : array of float64, shape (n_rois, n_volumes)
        ROI BOLD at each volume onset (after smoothing / confound regression /
        detrending for NIfTI inputs; as given for TSV inputs). Not z-scored.
    bold : array of float64, shape (n_rois, n_model)
        ``roi_series`` interpolated (cubic spline) to the model rate on the EEG
        time axis: sample ``k`` is at ``k / bold_sfreq`` s. NaN before the first
        and after the last volume onset (no extrapolation); see ``bold_valid``.
    bold_sfreq : float
        Model rate of ``bold`` in Hz.
    annotations : mne.Annotations
        Every annotation of the EEG file, onsets relative to the first EEG sample.
    subject : str
        Subject id (or the EEG file stem for generic recordings).
    warnings : list of str
        Things the loader had to decide that a user should know (also logged).
    provenance : dict
        ``files`` (role -> path, sha256, bytes), ``data_hash`` (sha256 over the
        input hashes and the loading options) and ``options``.
    """

    eeg: np.ndarray
    sfreq: float
    ch_names: tuple[str, ...]
    volume_onsets: np.ndarray
    tr: float
    roi_names: tuple[str, ...]
    roi_series: np.ndarray
    bold: np.ndarray
    bold_sfreq: float
    annotations: mne.Annotations
    subject: str
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Number of EEG samples."""
        return int(self.eeg.shape[1])

    @property
    def duration(self) -> float:
        """EEG duration in seconds (``n_samples / sfreq``)."""
        return self.n_samples / self.sfreq

    @property
    def bold_times(self) -> np.ndarray:
        """Times of the model-rate samples of ``bold`` in s, shape (n_model,)."""
        return np.arange(self.bold.shape[1]) / self.bold_sfreq

    @property
    def bold_valid(self) -> np.ndarray:
        """Model-rate samples covered by volume onsets, array of bool, shape (n_model,)."""
        return np.isfinite(self.bold).all(axis=0)

    @property
    def bold_valid_span(self) -> tuple[int, int]:
        """``(start, stop)`` model-rate indices of the covered part of ``bold`` (``bold[:, start:stop]``)."""
        idx = np.flatnonzero(self.bold_valid)
        if idx.size == 0:
            return (0, 0)
        return (int(idx[0]), int(idx[-1]) + 1)

    @property
    def data_hash(self) -> str:
        """sha256 hex digest identifying the inputs and loading options (for metrics.json)."""
        return str(self.provenance.get("data_hash", ""))


def n_model_samples(n_samples: int, sfreq: float, sfreq_out: float) -> int:
    """Model-rate samples a recording of ``n_samples`` at ``sfreq`` yields.

    Follows the preprocessing contract: model sample ``k`` sits at input position
    ``k * sfreq / sfreq_out`` and exists once that position is inside the recording.
    """
    if n_samples <= 0:
        return 0
    return int(np.floor((n_samples - 1) * sfreq_out / sfreq + 1e-9)) + 1


def interpolate_bold(
    roi_series: np.ndarray, onsets: np.ndarray, n_model: int, sfreq_out: float
) -> np.ndarray:
    """ROI series (n_rois, n_volumes) at the volume onsets -> the model-rate time axis (n_rois, n_model).

    Sample ``k`` is at ``k / sfreq_out`` s; the rule is :func:`beira_rt.targets.interpolate_volumes`
    (shared with the replay's truth stream). NaN outside ``[onsets[0], onsets[-1]]``.
    """
    return interpolate_volumes(roi_series, onsets, np.arange(n_model) / sfreq_out)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict[str, Any]:
    """Provenance entry of one input file: absolute path, sha256 and size in bytes."""
    p = Path(path).resolve()
    return {"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def combined_hash(files: dict[str, dict[str, Any]], options: dict[str, Any]) -> str:
    """One sha256 over the input files' hashes (by role) and the loading options."""
    digest = hashlib.sha256()
    for role in sorted(files):
        digest.update(f"{role}={files[role]['sha256']};".encode())
    for key in sorted(options):
        digest.update(f"{key}={options[key]!r};".encode())
    return digest.hexdigest()
