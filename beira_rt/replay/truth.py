"""The ROI BOLD truth published next to a replayed recording, delay-aligned like the model.

The truth stream answers "what should a prediction stamped ``t`` have said?". A prediction
stamped with the time ``t`` of an EEG sample is the sBOLD expected ``bold_delay`` seconds
later (docs/CONTRACTS.md), so the truth value published with the timestamp of EEG time ``t``
is the BOLD at ``t + bold_delay``. It lives on the model-rate grid of the recording: row ``j``
belongs to EEG time ``j / sfreq`` (seconds from the first sample of the file).

Sources:

* a TSV with one row per fMRI volume (tab-separated, a header of ROI names, no ``time``
  column): row ``v`` is the BOLD of volume ``v``, acquired at the ``v``-th annotation named
  ``volume_marker`` (``mri`` in CWL). Values between volume onsets are interpolated as the
  trainer does (:func:`beira_rt.targets.interpolate_volumes`);
  EEG times whose ``t + bold_delay`` lies before the first or after the last volume onset get
  NaN (no truth there). More rows than markers: the first rows are used, with a warning (the
  CWL NIfTI files hold a few extra volumes). Fewer rows than markers is an error.
* a TSV with a ``time`` column: an already aligned truth, ``time`` = EEG time in seconds from
  the first sample of the file, the other columns = ROIs, the value = what a prediction stamped
  with that EEG time should match (no delay is applied). It must cover the whole EEG (from 0 s to
  the last sample, within one model period); NaN values mean "unknown here".

A CWL subject folder is turned into the second layout by the trainer, ``beira-train truth
SUBJECT_DIR --out truth.tsv`` (the runtime never imports the trainer). Both layouts follow the
target contract of :mod:`beira_rt.targets`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beira_rt._logging import logger
from beira_rt.replay.recording import ReplayError, ReplayRecording
from beira_rt.targets import interpolate_volumes

__all__ = [
    "TruthSeries",
    "read_truth_tsv",
    "truth_from_volumes",
]


@dataclass(frozen=True)
class TruthSeries:
    """A delay-aligned ROI truth on the model-rate grid of a recording.

    Attributes
    ----------
    values : array of shape (n_times, n_rois), float32
        Row ``j``: the BOLD expected for EEG time ``j / sfreq`` (NaN where unknown).
    sfreq : float
        Model rate in Hz (rate of the truth stream).
    rois : tuple of str
        Channel labels, one per column.
    bold_delay : float
        Delay in seconds that was applied (0 when the source was already aligned).
    """

    values: np.ndarray
    sfreq: float
    rois: tuple[str, ...]
    bold_delay: float

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.rois):
            raise ReplayError(
                f"truth values must be an array of shape (n_times, {len(self.rois)}) for ROIs "
                f"{list(self.rois)}; got shape {self.values.shape}."
            )

    @property
    def duration(self) -> float:
        """Seconds of EEG covered (``n_times / sfreq``)."""
        return self.values.shape[0] / self.sfreq


def _grid_len(recording: ReplayRecording, sfreq: float) -> int:
    """Model-rate samples needed to cover every EEG sample: positions up to the last sample."""
    return math.floor((recording.n_times - 1) * sfreq / recording.sfreq + 1e-9) + 1


def truth_from_volumes(
    bold: np.ndarray,
    onsets: np.ndarray,
    rois: tuple[str, ...],
    recording: ReplayRecording,
    sfreq: float,
    bold_delay: float,
) -> TruthSeries:
    """Align per-volume BOLD to the model-rate EEG grid.

    Parameters
    ----------
    bold : array of shape (n_volumes, n_rois)
        ROI BOLD, one row per volume, in any unit (published as is).
    onsets : array of shape (n_volumes,)
        Volume onsets in seconds from the first EEG sample, increasing.
    rois : tuple of str
        ROI names, one per column.
    recording : ReplayRecording
        The EEG the truth goes with (sets the length of the grid).
    sfreq : float
        Model rate in Hz.
    bold_delay : float
        Haemodynamic delay in seconds: row ``j`` gets the BOLD at ``j / sfreq + bold_delay``.

    Returns
    -------
    TruthSeries
        NaN where ``t + bold_delay`` lies outside the volume onsets.
    """
    bold = np.asarray(bold, dtype=np.float64)
    onsets = np.asarray(onsets, dtype=np.float64)
    if bold.shape[0] != onsets.size:
        raise ReplayError(f"{bold.shape[0]} BOLD rows but {onsets.size} volume onsets; they must match.")
    if onsets.size < 2 or np.any(np.diff(onsets) <= 0):
        raise ReplayError("volume onsets must be at least two strictly increasing times.")
    t = np.arange(_grid_len(recording, sfreq)) / sfreq + bold_delay
    out = interpolate_volumes(bold.T, onsets, t).T.astype(np.float32)
    inside = (t >= onsets[0]) & (t <= onsets[-1])
    if not inside.all():
        logger.info(
            "truth: unknown (NaN) for %.1f s of the %.1f s EEG (BOLD + %.1f s delay covers %.1f-%.1f s)",
            (~inside).sum() / sfreq,
            recording.duration,
            bold_delay,
            onsets[0] - bold_delay,
            onsets[-1] - bold_delay,
        )
    return TruthSeries(values=out, sfreq=float(sfreq), rois=tuple(rois), bold_delay=float(bold_delay))


def _read_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise ReplayError(f"truth file {path} does not exist; give a TSV file or a CWL subject folder.")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r and any(x.strip() for x in r)]
    if len(rows) < 3:
        raise ReplayError(
            f"truth file {path} needs a header row of ROI names and at least two rows of values."
        )
    header = [h.strip() for h in rows[0]]
    if any(not h for h in header) or len(set(header)) != len(header):
        raise ReplayError(f"truth file {path}: the header {header} must name every column once.")
    values = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ReplayError(
                f"truth file {path}, line {i}: {len(row)} values for {len(header)} columns; every row "
                "needs one value per header column (tab-separated)."
            )
        for c, text in enumerate(row):
            try:
                values[i - 2, c] = float(text)
            except ValueError:
                raise ReplayError(
                    f"truth file {path}, line {i}, column {header[c]!r}: {text!r} is not a number "
                    "(use NaN for an unknown value)."
                ) from None
    return header, values


def read_truth_tsv(
    path: str | Path,
    recording: ReplayRecording,
    *,
    sfreq: float,
    bold_delay: float,
    volume_marker: str,
) -> TruthSeries:
    """Read a truth TSV (per-volume rows, or an aligned series with a ``time`` column).

    Parameters
    ----------
    path : str | Path
        The TSV file (see the module docstring for both layouts).
    recording : ReplayRecording
        The recording being replayed (volume markers, length).
    sfreq : float
        Model rate in Hz.
    bold_delay : float
        Seconds; applied to per-volume rows only.
    volume_marker : str
        Annotation name of the volume onsets (per-volume rows only).

    Returns
    -------
    TruthSeries

    Raises
    ------
    ReplayError
        Missing or malformed file, unknown volume marker, fewer rows than volume markers, or an
        aligned series that does not cover the EEG.
    """
    path = Path(path)
    header, values = _read_tsv(path)
    if "time" in header:
        t_col = header.index("time")
        rois = tuple(h for i, h in enumerate(header) if i != t_col)
        if not rois:
            raise ReplayError(f"truth file {path} has a time column but no ROI column.")
        times = values[:, t_col]
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise ReplayError(f"truth file {path}: the time column must hold strictly increasing numbers.")
        grid = np.arange(_grid_len(recording, sfreq)) / sfreq
        tol = 1.0 / sfreq + 1e-9
        if times[0] > tol or times[-1] < grid[-1] - tol:
            raise ReplayError(
                f"truth file {path} covers EEG times {times[0]:.3f}-{times[-1]:.3f} s but the EEG runs "
                f"0-{grid[-1]:.3f} s: the truth series is shorter than the EEG. Give a series that covers "
                "the whole recording (NaN where unknown)."
            )
        data = np.delete(values, t_col, axis=1)
        if times.size >= grid.size and np.allclose(times[: grid.size], grid, rtol=0, atol=1e-6):
            out = data[: grid.size].astype(np.float32)  # already on the grid (beira-train truth): as is
        else:
            out = np.empty((grid.size, len(rois)), dtype=np.float32)
            for c in range(len(rois)):
                out[:, c] = np.interp(grid, times, data[:, c])
        return TruthSeries(values=out, sfreq=float(sfreq), rois=rois, bold_delay=0.0)
    onsets = recording.volume_onsets(volume_marker)
    n_rows, n_vol = values.shape[0], onsets.size
    if n_rows < n_vol:
        raise ReplayError(
            f"truth file {path} has {n_rows} volumes but the recording has {n_vol} {volume_marker!r} "
            "markers: the truth series is shorter than the EEG. Give one row per volume."
        )
    if n_rows > n_vol:
        logger.warning(
            "truth file %s has %d volumes but the recording has %d %r markers; using the first %d",
            path,
            n_rows,
            n_vol,
            volume_marker,
            n_vol,
        )
    return truth_from_volumes(values[:n_vol], onsets, tuple(header), recording, sfreq, bold_delay)
