"""The delay-aligned ROI truth of a CWL subject, as a TSV the replay publishes (``beira-train truth``).

The truth is exactly the trainer's target: the loader's model-rate BOLD (the volumes
interpolated by :func:`beira_rt.targets.interpolate_volumes`) shifted by
:func:`beira_rt.targets.delay_samples` of ``model.bold_delay``. Row ``k`` of the file is EEG
time ``k / sfreq`` (seconds from the first EEG sample) and the BOLD a prediction stamped with
that time should match; NaN where there is none (the last ``bold_delay`` seconds). It is the
"aligned" layout that ``beira-replay --truth`` reads (:func:`beira_rt.replay.read_truth_tsv`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from beira_rt.config import BeiraConfig
from beira_rt.targets import delay_samples

from .loader import load_cwl_subject

__all__ = ["cwl_truth", "write_truth_tsv"]


def cwl_truth(
    subject_dir: str | Path,
    cfg: BeiraConfig,
    atlas: str | Path | None = None,
    atlas_labels: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The aligned truth of a CWL subject folder.

    Returns
    -------
    times : array of shape (n,)
        EEG times (s from the first sample) on the model-rate grid, covering every EEG sample.
    values : array of shape (n, n_rois), float64
        Row ``k``: the BOLD at ``times[k] + bold_delay`` (NaN where unknown).
    rois : tuple of str
    """
    subject_dir = Path(subject_dir)
    sfreq = cfg.preprocessing.sfreq
    rec = load_cwl_subject(
        subject_dir.parent, subject_dir.name, cfg.data, atlas, atlas_labels, sfreq_out=sfreq
    )
    n = math.floor((rec.n_samples - 1) * sfreq / rec.sfreq + 1e-9) + 1  # model-rate samples over the EEG
    shift = delay_samples(cfg.model.bold_delay, sfreq)
    bold = rec.bold.T  # (n_model, n_rois)
    values = np.full((n, bold.shape[1]), np.nan)
    take = bold[shift : shift + n]
    values[: take.shape[0]] = take
    return np.arange(n) / sfreq, values, tuple(rec.roi_names)


def write_truth_tsv(path: str | Path, times: np.ndarray, values: np.ndarray, rois: tuple[str, ...]) -> Path:
    """Write the aligned layout: a ``time`` column and one column per ROI (``NaN`` where unknown)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(("time", *rois)) + "\n")
        for t, row in zip(times, values, strict=True):
            fh.write(
                "\t".join([f"{t:.6f}", *(repr(float(v)) if np.isfinite(v) else "NaN" for v in row)]) + "\n"
            )
    return path
