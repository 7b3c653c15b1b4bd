"""Load a CWL subject (EEGLAB .set + normalised EPI + motion + atlas) or a generic recording."""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mne
import nibabel as nib
import numpy as np

from beira_rt._logging import logger
from beira_rt.config import DataConfig
from offline.loader import eeg as eeg_io
from offline.loader import fmri
from offline.loader.recording import (
    DataError,
    MissingFileError,
    Recording,
    combined_hash,
    file_record,
    interpolate_bold,
    n_model_samples,
)


@dataclass(frozen=True)
class CWLPaths:
    """The three files of a CWL subject (layout of the CWL data set and the reference code)."""

    eeg: Path
    nifti: Path
    motion: Path


def cwl_paths(data_dir: str | Path, subject: str) -> CWLPaths:
    """Expected paths of a CWL subject's files under ``data_dir``."""
    root = Path(data_dir) / subject / "CWL_Data"
    return CWLPaths(
        eeg=root / "eeg" / "in-scan" / f"{subject}_mrcorrected_eoec_in-scan_hpump-off.set",
        nifti=root / "mri" / "epi_normalized" / f"rwa{subject}_eoec_in-scan_hpump-off.nii",
        motion=root / "mri" / "epi_motionparams" / f"rp_a{subject}_eoec_in-scan_hpump-off.txt",
    )


def _match_volumes(n_volumes: int, n_markers: int, source: str, warnings: list[str]) -> None:
    if n_volumes < n_markers:
        raise DataError(
            f"{source} holds {n_volumes} volumes but the EEG has {n_markers} volume markers; every marker "
            "needs a volume. Check that the EEG and fMRI files belong to the same run."
        )
    if n_volumes > n_markers:
        message = (
            f"{source} has {n_volumes} volumes, {n_markers} volume markers: using the first {n_markers} "
            f"as the reference code does (the last {n_volumes - n_markers} are dropped)."
        )
        logger.warning(message)
        warnings.append(message)


def _check_header_tr(header: Any, marker_tr: float, source: str, warnings: list[str]) -> None:
    """Warn when the NIfTI header's repetition time disagrees with the volume markers' by more than
    5 % (the markers' TR is the one used; a disagreement may mean the EEG and fMRI files are not of
    the same run). A header without a time step (0, or 1 with no time unit, as some writers leave
    normalised images) is not compared."""
    zooms = header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return
    unit = header.get_xyzt_units()[1]
    step = float(zooms[3]) * {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
    if unit == "unknown" and step == 1.0:
        return
    if abs(step - marker_tr) > 0.05 * marker_tr:
        message = (
            f"{source}: its header gives a repetition time of {step:.3f} s, the volume markers "
            f"{marker_tr:.3f} s (the markers' is used); check that the EEG and fMRI files belong to the same run."
        )
        logger.warning(message)
        warnings.append(message)


@dataclass(frozen=True)
class _EEGPart:
    data: np.ndarray  # (n_chans, n_samples), microvolts (beira_rt.units.MODEL_UNIT)
    sfreq: float
    names: tuple[str, ...]
    annotations: mne.Annotations
    onsets: np.ndarray  # volume-marker onsets, s


def _read_eeg_part(path: Path, cfg: DataConfig, *, eeglab: bool) -> _EEGPart:
    raw = eeg_io.read_eeg(path, eeglab=eeglab)
    names = eeg_io.pick_eeg_channels(raw, cfg)
    annotations = eeg_io.relative_annotations(raw)
    onsets = eeg_io.volume_onsets(annotations, cfg.volume_marker, path)
    # microvolts: the unit of LSL EEG streams and of the bundle's statistics (beira_rt.units)
    data = raw.get_data(picks=names, units="uV")
    return _EEGPart(data, float(raw.info["sfreq"]), tuple(names), annotations, onsets)


def _check_rate(sfreq_out: float) -> None:
    if not sfreq_out > 0:
        raise ValueError(f"sfreq_out must be a positive rate in Hz; got {sfreq_out!r}.")


def _build(
    eeg: _EEGPart,
    series: np.ndarray,
    rois: tuple[str, ...],
    subject: str,
    sfreq_out: float,
    warnings: list[str],
    files: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> Recording:
    """Assemble the Recording: TR, matched ROI series (first n_markers rows), model-rate BOLD, provenance."""
    onsets = eeg.onsets
    tr = eeg_io.check_tr(onsets, warnings)
    end = eeg.data.shape[1] / eeg.sfreq
    if onsets[-1] > end:
        message = f"{int(np.sum(onsets > end))} volume marker(s) lie after the end of the EEG ({end:.2f} s)."
        logger.warning(message)
        warnings.append(message)
    roi_series = series[: onsets.size].T.astype(float)
    n_model = n_model_samples(eeg.data.shape[1], eeg.sfreq, sfreq_out)
    bold = interpolate_bold(roi_series, onsets, n_model, sfreq_out)
    options = {**options, "sfreq_out": sfreq_out, "rois": list(rois), "channels": list(eeg.names)}
    provenance = {"files": files, "options": options, "data_hash": combined_hash(files, options)}
    logger.info(
        "loaded %s: %d EEG channels at %g Hz, %.1f s; %d volumes (TR %.3f s); %d ROIs",
        subject, len(eeg.names), eeg.sfreq, end, onsets.size, tr, len(rois),
    )  # fmt: skip
    return Recording(
        eeg=eeg.data, sfreq=eeg.sfreq, ch_names=eeg.names, volume_onsets=onsets, tr=tr, roi_names=tuple(rois),
        roi_series=roi_series, bold=bold, bold_sfreq=float(sfreq_out), annotations=eeg.annotations,
        subject=subject, warnings=warnings, provenance=provenance,
    )  # fmt: skip


def load_cwl_subject(
    data_dir: str | Path,
    subject: str,
    cfg: DataConfig | None = None,
    atlas: str | Path | None = None,
    atlas_labels: str | Path | None = None,
    sfreq_out: float = 100.0,
) -> Recording:
    """Load one CWL subject: EEG, volume markers and the ``cfg.rois`` BOLD series.

    Parameters
    ----------
    data_dir : str or Path
        Folder holding the subject folders (``{data_dir}/{subject}/CWL_Data/...``).
    subject : str
        Subject id, e.g. ``"trio1"``.
    cfg : DataConfig or None
        Channel, marker, ROI and fMRI options (defaults when None).
    atlas, atlas_labels : str, Path or None
        A 3D labels image and its table (see :func:`offline.loader.fmri.read_label_table`);
        both None: Harvard-Oxford ``sub-maxprob-thr25-2mm`` fetched by nilearn.
    sfreq_out : float
        Rate (Hz) of ``Recording.bold``, the model rate.

    Returns
    -------
    Recording

    Raises
    ------
    MissingFileError
        Naming the full expected path of a missing file.
    DataError
        No volume markers (lists the annotations found), too few EEG channels,
        fewer volumes than markers, an unknown ROI (lists the available ones), or
        no atlas available offline.
    """
    cfg = cfg or DataConfig()
    _check_rate(sfreq_out)
    paths = cwl_paths(data_dir, subject)
    needed = [paths.eeg, paths.nifti] + ([paths.motion] if cfg.confounds else [])
    for path in needed:
        if not path.is_file():
            raise MissingFileError(
                f"CWL file {path.resolve()} does not exist; expected the layout "
                f"{{data}}/{{subject}}/CWL_Data/... (see offline.loader.cwl_paths) for subject {subject!r}."
            )
    warnings: list[str] = []
    labels_img, table, atlas_sources = fmri.load_atlas(atlas, atlas_labels)
    label_values = fmri.select_labels(
        table, cfg.rois, atlas_sources.get("atlas_labels", atlas_sources["atlas"])
    )
    eeg = _read_eeg_part(paths.eeg, cfg, eeglab=True)
    header = nib.load(paths.nifti).header
    n_volumes = header.get_data_shape()[-1]
    _match_volumes(n_volumes, eeg.onsets.size, str(paths.nifti), warnings)
    tr = float(np.median(np.diff(eeg.onsets)))
    _check_header_tr(header, tr, str(paths.nifti), warnings)
    series, _ = fmri.nifti_roi_series(
        paths.nifti, labels_img, label_values, tr, cfg.smoothing_fwhm, paths.motion if cfg.confounds else None
    )
    files = {"eeg": file_record(paths.eeg), "nifti": file_record(paths.nifti)}
    fdt = paths.eeg.with_suffix(".fdt")
    if fdt.is_file():
        files["eeg_data"] = file_record(fdt)
    if cfg.confounds:
        files["motion"] = file_record(paths.motion)
    for role, src in atlas_sources.items():
        if Path(src).is_file():
            files[role] = file_record(src)
    # the data hash depends on contents, never on where the files lie: a local atlas is in
    # ``files`` by its sha256; a fetched one (not a local file) is named here
    atlas = atlas_sources["atlas"]
    atlas_id = Path(atlas).name if Path(atlas).is_file() else str(atlas)
    options = {"kind": "cwl", "volume_marker": cfg.volume_marker, "confounds": cfg.confounds,
               "smoothing_fwhm": cfg.smoothing_fwhm, "atlas": atlas_id}  # fmt: skip
    return _build(eeg, series, cfg.rois, subject, sfreq_out, warnings, files, options)


def read_roi_tsv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """ROI series table: header of ROI names, one row per volume (tab-separated).

    Returns
    -------
    names : list of str
    values : array of shape (n_volumes, n_columns)
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"ROI series table {path.resolve()} does not exist.")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r]
    if len(rows) < 2:
        raise DataError(
            f"ROI series table {path} needs a header of ROI names and at least one row per volume."
        )
    header = [h.strip() for h in rows[0]]
    try:
        values = np.array([[float(v) for v in r] for r in rows[1:]])
    except ValueError as err:
        raise DataError(f"ROI series table {path} has a non-numeric value: {err}") from err
    if values.ndim != 2 or values.shape[1] != len(header):
        raise DataError(
            f"ROI series table {path}: every row must have {len(header)} values, like the header."
        )
    return header, values


def load_generic(
    eeg_path: str | Path,
    roi_tsv: str | Path,
    marker: str | None = None,
    cfg: DataConfig | None = None,
    sfreq_out: float = 100.0,
) -> Recording:
    """Load any MNE-readable EEG file with ROI series given as a TSV at volume onsets.

    Parameters
    ----------
    eeg_path : str or Path
        EEG file read with :func:`mne.io.read_raw` (BrainVision, EDF, FIF, EEGLAB...).
    roi_tsv : str or Path
        Tab-separated table: a header of ROI names, then one row per volume. The
        series are used as given (no detrending or confound regression).
    marker : str or None
        Annotation marking volume onsets (None: ``cfg.volume_marker``).
    cfg : DataConfig or None
        ``rois`` are picked from the TSV columns by name; channel options as for CWL.
    sfreq_out : float
        Rate (Hz) of ``Recording.bold``.

    Returns
    -------
    Recording
    """
    cfg = cfg or DataConfig()
    _check_rate(sfreq_out)
    if marker is not None:
        cfg = dataclasses.replace(cfg, volume_marker=marker)
    eeg_path, roi_tsv = Path(eeg_path), Path(roi_tsv)
    warnings: list[str] = []
    eeg = _read_eeg_part(eeg_path, cfg, eeglab=False)
    header, values = read_roi_tsv(roi_tsv)
    table = dict(enumerate(header))
    columns = fmri.select_labels(table, cfg.rois, str(roi_tsv))
    _match_volumes(values.shape[0], eeg.onsets.size, str(roi_tsv), warnings)
    files = {"eeg": file_record(eeg_path), "roi_tsv": file_record(roi_tsv)}
    options = {"kind": "generic", "volume_marker": cfg.volume_marker}
    return _build(eeg, values[:, columns], cfg.rois, eeg_path.stem, sfreq_out, warnings, files, options)
