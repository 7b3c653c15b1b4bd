"""Read back what drives each ROI of a written synthetic subject: source patterns and frequencies.

The generator writes the sources' scalp patterns (``lead_field``) and frequencies into
``ground_truth/<subject>.npz`` and the drive of every ROI, in words, into ``<subject>.json``;
which source drives which ROI is in ``roi_terms`` of the JSON (drawn per seed; older subjects:
:data:`offline.synthetic.hidden.ROI_TERMS`), or, for generators that drive an ROI by several
sources, in ``drivers`` (ROI -> source indices) and ``driver_signs``. This accessor
puts them together, for checking what a trained model learned (``tools/check_interpretation.py``).
It reads files only; the generated data are not changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offline.synthetic.hidden import ROI_TERMS

__all__ = ["SourceTruth", "SyntheticTruth", "load_truth"]


@dataclass(frozen=True)
class SourceTruth:
    """One oscillatory source of a synthetic subject.

    Attributes
    ----------
    index : int
        Column of the lead field.
    name : str
    freq, bandwidth : float
        Centre frequency and half-width of its band, Hz.
    pattern : array of shape (n_chans,)
        Scalp pattern on ``ch_names`` (peak-normalised, FCz reference).
    sign : int
        Sign of the linear part of its drive of the ROI it was asked for (+1 / -1; 0 when not asked).
    """

    index: int
    name: str
    freq: float
    bandwidth: float
    pattern: np.ndarray
    sign: int = 0


@dataclass(frozen=True)
class SyntheticTruth:
    """The sources of a synthetic subject and the ROIs they drive.

    Attributes
    ----------
    subject : str
    ch_names : tuple of str
        EEG channels of the lead field's rows.
    sources : tuple of SourceTruth
    drivers : dict
        ROI -> indices of the sources that drive it.
    """

    subject: str
    ch_names: tuple[str, ...]
    sources: tuple[SourceTruth, ...]
    drivers: dict[str, tuple[int, ...]]
    signs: dict[str, int] | None = None

    def sources_of(self, roi: str) -> list[SourceTruth]:
        """The sources that drive ``roi``, each with the sign of its linear part."""
        if roi not in self.drivers:
            raise KeyError(f"no synthetic drive is recorded for ROI {roi!r}; known: {sorted(self.drivers)}.")
        return [
            SourceTruth(**{**s.__dict__, "sign": (self.signs or {}).get(roi, ROI_TERMS.get(roi, (0, 0))[1])})
            for s in self.sources
            if s.index in self.drivers[roi]
        ]

    def pattern_on(self, source: SourceTruth, ch_names: tuple[str, ...] | list[str]) -> np.ndarray:
        """A source's pattern on other channels (a subset, any order), array of shape (len(ch_names),)."""
        index = {n: i for i, n in enumerate(self.ch_names)}
        missing = [n for n in ch_names if n not in index]
        if missing:
            raise KeyError(f"the ground truth has no channels {missing}; it has {list(self.ch_names)}.")
        return source.pattern[[index[n] for n in ch_names]]


def load_truth(data_dir: str | Path, subject: str) -> SyntheticTruth:
    """Read the sources and ROI drivers of a synthetic subject written by the generator.

    Parameters
    ----------
    data_dir : str or Path
        The data folder given to the generator (holds ``ground_truth/``).
    subject : str

    Returns
    -------
    SyntheticTruth

    Raises
    ------
    FileNotFoundError
        When the ground-truth files are missing (not a synthetic subject).
    ValueError
        When the recorded drives do not name the sources :data:`ROI_TERMS` gives.
    """
    folder = Path(data_dir) / "ground_truth"
    npz, meta_path = folder / f"{subject}.npz", folder / f"{subject}.json"
    for path in (npz, meta_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; is {subject} a synthetic subject of {data_dir}?")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(npz) as truth:
        lead_field = truth["lead_field"]
        ch_names = tuple(str(n) for n in truth["eeg_ch_names"])
    sources = tuple(
        SourceTruth(k, s["name"], float(s["freq"]), float(s["bandwidth"]), lead_field[:, k].copy())
        for k, s in enumerate(meta["sources"])
    )
    if "drivers" in meta:  # several sources per ROI (another generator: tools/make_foreign_cwl.py)
        drivers = {roi: tuple(int(k) for k in ks) for roi, ks in meta["drivers"].items()}
        signs = {roi: int(v) for roi, v in meta.get("driver_signs", {}).items()}
        return SyntheticTruth(subject, ch_names, sources, drivers, signs)
    terms = meta.get("roi_terms") or {roi: ROI_TERMS[roi] for roi in meta["rois"]}
    drivers, signs = {}, {}
    for roi in meta["rois"]:
        index = int(terms[roi][0])
        signs[roi] = int(terms[roi][1])
        if f"e[{sources[index].name}]" not in meta["drives"].get(roi, ""):
            raise ValueError(
                f"{meta_path}: the drive of {roi} is {meta['drives'].get(roi)!r}, not of source "
                f"{sources[index].name} as its roi_terms say; regenerate the subject."
            )
        drivers[roi] = (index,)
    return SyntheticTruth(subject, ch_names, sources, drivers, signs)
