"""Synthetic CWL recordings with known ground truth (for tests, demos and trainer checks).

Public API
----------
- :func:`make_synthetic_subject` — write one subject in the exact CWL layout
  (EEGLAB .set, normalised EPI, SPM motion parameters), the shared atlas and the
  ground truth; returns a :class:`SyntheticSubject` with the paths and ceilings.
- :func:`make_synthetic_dataset` — several subjects into one folder.
- :func:`load_synthetic_subject` — one subject loaded as a CWL recording with its atlas,
  written first when missing (the trainer checks under ``tools/``).
- :class:`SyntheticSpec` — the parameters of the generative model.
- :func:`load_truth` — read back each source's scalp pattern and frequency and the ROIs it
  drives (:class:`SyntheticTruth`), to check what a model learned.

The model is described in :mod:`offline.synthetic.hidden` (sources, envelopes,
ROI drives, HRF) and :mod:`offline.synthetic.signals` (scalp EEG and artefacts);
the ceiling in :data:`offline.synthetic.writer.CEILING_DEFINITION`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from offline.loader import load_cwl_subject
from offline.synthetic.sources import SourceTruth, SyntheticTruth, load_truth
from offline.synthetic.spec import SyntheticSpec
from offline.synthetic.writer import (
    ATLAS_FILE,
    ATLAS_LABELS_FILE,
    CEILING_DEFINITION,
    SyntheticSubject,
    make_synthetic_subject,
    write_atlas,
)


def make_synthetic_dataset(
    out_dir: str | Path,
    subjects: tuple[str, ...] | list[str] = ("trio1",),
    duration: float = 300.0,
    seed: int = 0,
    spec: SyntheticSpec | None = None,
) -> list[SyntheticSubject]:
    """Generate several subjects into ``out_dir`` (one shared atlas); see :func:`make_synthetic_subject`."""
    return [make_synthetic_subject(out_dir, s, duration=duration, seed=seed, spec=spec) for s in subjects]


def load_synthetic_subject(
    data_dir: str | Path,
    data_cfg,
    sfreq: float,
    *,
    subject: str = "trio1",
    duration: float = 300.0,
    seed: int = 0,
    writer: Callable[..., object] = make_synthetic_subject,
):
    """``subject`` of ``data_dir`` loaded as a CWL recording (:func:`offline.loader.load_cwl_subject`)
    with the folder's synthetic atlas; written there first (``duration`` s, generator ``seed``)
    when its ground truth is missing.

    Parameters
    ----------
    data_dir : str or Path
    data_cfg : beira_rt.config.DataConfig
    sfreq : float
        Rate of the returned ROI series (``preprocessing.sfreq``).
    writer : callable
        ``writer(data_dir, subject, duration=..., seed=...)`` writes a missing subject (and the
        atlas) in the CWL layout: this project's generator, or another (tools/make_foreign_cwl.py).
    """
    data_dir = Path(data_dir)
    if not (data_dir / "ground_truth" / f"{subject}.json").is_file():
        writer(data_dir, subject, duration=duration, seed=seed)
    atlas = data_dir / "atlas"
    return load_cwl_subject(data_dir, subject, data_cfg, atlas / ATLAS_FILE, atlas / ATLAS_LABELS_FILE, sfreq)


__all__ = [
    "ATLAS_FILE",
    "ATLAS_LABELS_FILE",
    "CEILING_DEFINITION",
    "SourceTruth",
    "SyntheticSpec",
    "SyntheticSubject",
    "SyntheticTruth",
    "load_synthetic_subject",
    "load_truth",
    "make_synthetic_dataset",
    "make_synthetic_subject",
    "write_atlas",
]
