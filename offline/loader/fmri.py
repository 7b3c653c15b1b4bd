"""fMRI side of the loader: atlas, ROI series, confounds.

The pipeline follows the BEIRA reference code (``utils/get_datasets.py``): spatial
smoothing (``data.smoothing_fwhm`` mm) -> mean over each atlas label
(``NiftiLabelsMasker``; the atlas is resampled to the EPI grid when they differ)
-> linear detrend and, with ``data.confounds``, regression of the 6 SPM motion
parameters and the global signal (mean over an EPI brain mask of the smoothed
series), over *all* volumes of the NIfTI. Matching volumes to markers happens
after that, in :mod:`offline.loader.cwl`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn import image, masking, signal
from nilearn.maskers import NiftiLabelsMasker

from beira_rt._logging import logger
from offline.loader.recording import DataError, MissingFileError

#: nilearn's name of the atlas used when none is given (as the reference code).
DEFAULT_ATLAS = "sub-maxprob-thr25-2mm"


def _norm(name: str) -> str:
    # older FSL/nilearn releases spell the left ventricle "Ventrical" and pad some names
    return re.sub(r"\s+", " ", name.strip().casefold().replace("ventrical", "ventricle"))


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path.resolve()} does not exist.")
    return path


def _load_image(path: str | Path, what: str, ndim: int, axes: str) -> nib.Nifti1Image:
    """A NIfTI image of ``ndim`` dimensions (``axes`` says what they are, for the error)."""
    path = _existing(path, what)
    img = nib.load(path)
    if len(img.shape) != ndim:
        raise DataError(f"{what} {path} must be {ndim}D ({axes}); it has shape {img.shape}.")
    return img


def read_label_table(path: str | Path) -> dict[int, str]:
    """Read an atlas labels table.

    Two layouts are accepted: a TSV with a header holding ``index`` and ``name``
    columns (nilearn's look-up-table layout; other columns are ignored), or a
    plain list with one name per line, where line ``k`` (from 0) names label
    value ``k`` (so the first line is usually ``Background``).

    Returns
    -------
    dict
        Label value -> name.
    """
    path = _existing(path, "atlas labels table")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"atlas labels table {path} is empty.")
    header = [h.strip().casefold() for h in lines[0].split("\t")]
    if "index" in header and "name" in header:
        rows = csv.DictReader(lines, delimiter="\t")
        table: dict[int, str] = {}
        for row in rows:
            key = {k.strip().casefold(): v for k, v in row.items() if k is not None}
            try:
                table[int(key["index"])] = key["name"].strip()
            except (TypeError, ValueError):
                raise DataError(
                    f"atlas labels table {path}: index {key.get('index')!r} is not an integer."
                ) from None
        return table
    return {k: ln.strip() for k, ln in enumerate(lines)}


def load_atlas(
    atlas: str | Path | None, atlas_labels: str | Path | None
) -> tuple[nib.Nifti1Image, dict[int, str], dict[str, str]]:
    """The labels image and its table; Harvard-Oxford from nilearn when none is given.

    Returns
    -------
    labels_img : nibabel.Nifti1Image
        3D image of integer labels (0 = background).
    table : dict
        Label value -> name.
    sources : dict
        ``{"atlas": path, "atlas_labels": path}`` of the files used (for provenance).

    Raises
    ------
    DataError
        When only one of the two is given, or no atlas is given and nilearn cannot
        fetch Harvard-Oxford (offline); the message says to pass ``--atlas`` and
        ``--atlas-labels``.
    """
    if (atlas is None) != (atlas_labels is None):
        raise DataError(
            "give both an atlas image (--atlas) and its labels table (--atlas-labels), or neither."
        )
    if atlas is not None and atlas_labels is not None:
        img = _load_image(atlas, "atlas image", 3, "one label per voxel")
        return img, read_label_table(atlas_labels), {"atlas": str(atlas), "atlas_labels": str(atlas_labels)}
    from nilearn import datasets

    try:
        ho = datasets.fetch_atlas_harvard_oxford(DEFAULT_ATLAS, verbose=0)
    except OSError as err:  # requests' and urllib's network errors are OSErrors
        raise DataError(
            f"no atlas was given and nilearn could not fetch the Harvard-Oxford atlas '{DEFAULT_ATLAS}' "
            f"(this machine looks offline: {err}). Pass a local labels image and table with "
            "--atlas PATH --atlas-labels PATH (a TSV with 'index' and 'name' columns)."
        ) from err
    maps = ho.maps if isinstance(ho.maps, nib.Nifti1Image) else nib.load(ho.maps)
    table = dict(enumerate(ho.labels))
    filename = str(getattr(ho, "filename", "nilearn:HarvardOxford-" + DEFAULT_ATLAS))
    return maps, table, {"atlas": filename}


def select_labels(table: dict[int, str], rois: tuple[str, ...], source: str) -> list[int]:
    """Label values of ``rois`` (names compared case-insensitively, whitespace-trimmed).

    Raises
    ------
    DataError
        Naming the ROI(s) not in the table and listing the available names.
    """
    by_name = {_norm(name): value for value, name in table.items()}
    missing = [r for r in rois if _norm(r) not in by_name]
    if missing:
        available = [n for v, n in sorted(table.items()) if _norm(n) != "background"]
        raise DataError(f"ROI(s) {missing} are not in the atlas {source}; available: {available}.")
    return [by_name[_norm(r)] for r in rois]


def roi_means(img: nib.Nifti1Image, labels_img: nib.Nifti1Image, label_values: list[int]) -> np.ndarray:
    """Mean of each requested label over its voxels, per volume (no cleaning).

    Parameters
    ----------
    img : nibabel.Nifti1Image
        4D image (already smoothed if wanted).
    labels_img : nibabel.Nifti1Image
        Labels; resampled (nearest) to ``img``'s grid when the grids differ.
    label_values : list of int
        Labels to return, in order.

    Returns
    -------
    array of shape (n_volumes, len(label_values))

    Raises
    ------
    DataError
        If a requested label has no voxel on the EPI grid.
    """
    masker = NiftiLabelsMasker(
        labels_img, background_label=0, standardize=None, detrend=False, resampling_target="data"
    )
    series = masker.fit_transform(img)
    column_of = {int(v): c for c, v in masker.region_ids_.items() if c != "background"}
    absent = [v for v in label_values if v not in column_of]
    if absent:
        raise DataError(f"atlas label value(s) {absent} have no voxel on the EPI grid after resampling.")
    return np.asarray(series, dtype=float)[:, [column_of[v] for v in label_values]]


def global_signal(img: nib.Nifti1Image) -> np.ndarray:
    """Mean over an EPI brain mask (``compute_epi_mask`` of the mean image), shape (n_volumes,)."""
    mask = np.asarray(masking.compute_epi_mask(image.mean_img(img, copy_header=True)).dataobj, dtype=bool)
    data = np.asarray(img.dataobj)
    return data[mask].mean(axis=0).astype(float)


def read_motion(path: str | Path, n_volumes: int) -> np.ndarray:
    """SPM realignment parameters ``rp_*.txt``, array of shape (n_volumes, 6).

    Raises
    ------
    MissingFileError, DataError
        If the file is missing, not 6 numeric columns, or has a row count other than ``n_volumes``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"motion parameters {path.resolve()} do not exist (needed for data.confounds)."
        )
    try:
        rp = np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise DataError(f"motion parameters {path} are not a numeric table: {err}") from err
    if rp.shape[1] != 6 or rp.shape[0] != n_volumes:
        raise DataError(
            f"motion parameters {path} have shape {rp.shape}; expected ({n_volumes}, 6): one row of 6 "
            "values per NIfTI volume."
        )
    return rp


def clean_series(series: np.ndarray, confounds: np.ndarray | None, t_r: float) -> np.ndarray:
    """Linear detrend and (optional) confound regression, as NiftiLabelsMasker does it.

    Parameters
    ----------
    series : array of shape (n_volumes, n_rois)
    confounds : array of shape (n_volumes, n_confounds) or None
        Standardised before the regression.
    t_r : float
        Repetition time in s.

    Returns
    -------
    array of shape (n_volumes, n_rois)
    """
    return signal.clean(
        series,
        detrend=True,
        standardize=None,
        confounds=confounds,
        standardize_confounds=True,
        filter=False,
        t_r=t_r,
    )


def nifti_roi_series(
    nifti: str | Path,
    labels_img: nib.Nifti1Image,
    label_values: list[int],
    t_r: float,
    smoothing_fwhm: float | None,
    motion: str | Path | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ROI series of a 4D NIfTI through the whole pipeline (module docstring).

    Parameters
    ----------
    nifti : str or Path
        4D EPI in the atlas space.
    labels_img, label_values
        See :func:`roi_means`.
    t_r : float
        Repetition time in s.
    smoothing_fwhm : float or None
        Gaussian smoothing FWHM in mm (None: none).
    motion : str, Path or None
        SPM ``rp_*.txt``; with it, 6 motion parameters + the global signal are regressed out.

    Returns
    -------
    series : array of shape (n_volumes_in_file, n_rois)
    confounds : array of shape (n_volumes_in_file, 7) or None
        The confounds regressed out (motion, global signal).
    """
    img = _load_image(nifti, "fMRI file", 4, "x, y, z, volumes")
    if smoothing_fwhm is not None:
        img = image.smooth_img(img, fwhm=smoothing_fwhm)
    confounds = None
    if motion is not None:
        confounds = np.column_stack([read_motion(motion, img.shape[3]), global_signal(img)])
    raw = roi_means(img, labels_img, label_values)
    logger.debug("extracted %d ROI series from %s (%d volumes)", raw.shape[1], nifti, raw.shape[0])
    return clean_series(raw, confounds, t_r), confounds
