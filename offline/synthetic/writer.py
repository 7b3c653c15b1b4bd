"""Write synthetic CWL subjects (EEGLAB .set, NIfTI, motion, atlas) and their ground truth."""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mne
import nibabel as nib
import numpy as np

from beira_rt._logging import logger
from offline.loader.cwl import CWLPaths, cwl_paths
from offline.synthetic import fmri as fmrisim
from offline.synthetic.bold import simulate_fmri
from offline.synthetic.ceiling import compute_ceiling
from offline.synthetic.hidden import describe_term, eoec_blocks, simulate_hidden
from offline.synthetic.signals import synthesize_eeg
from offline.synthetic.spec import SyntheticSpec, draw_structure

ATLAS_FILE = "synthetic_HarvardOxford-sub-maxprob_3mm.nii"
ATLAS_LABELS_FILE = "synthetic_HarvardOxford-sub_labels.tsv"


@dataclass
class SyntheticSubject:
    """Where a synthetic subject was written and what its ceiling is.

    Attributes
    ----------
    subject : str
    data_dir : Path
        The folder to pass to the loader (``load_cwl_subject(data_dir, subject, ...)``).
    paths : CWLPaths
        EEG, NIfTI and motion files.
    atlas, atlas_labels : Path
        Labels image and table (shared by the subjects of a folder).
    truth_npz, truth_json : Path
        Ground truth files.
    ceiling, ceiling_test : dict
        ROI -> ceiling correlation over all matched volumes / over the last ``test_seconds``.
    seconds : float
        Wall-clock time the generation took.
    """

    subject: str
    data_dir: Path
    paths: CWLPaths
    atlas: Path
    atlas_labels: Path
    truth_npz: Path
    truth_json: Path
    ceiling: dict[str, float] = field(default_factory=dict)
    ceiling_test: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def subject_rng(seed: int, subject: str) -> np.random.Generator:
    """Generator for one subject: depends only on the seed and the subject name."""
    return np.random.default_rng([int(seed), zlib.crc32(subject.encode("utf-8"))])


def write_atlas(out_dir: str | Path) -> tuple[Path, Path]:
    """Write the synthetic labels image and its TSV table into ``out_dir/atlas``.

    Returns
    -------
    (atlas path, labels-table path)
    """
    folder = Path(out_dir) / "atlas"
    folder.mkdir(parents=True, exist_ok=True)
    labels, _ = fmrisim.make_atlas()
    img = nib.Nifti1Image(labels, fmrisim.MNI_AFFINE_3MM)
    img.header.set_xyzt_units("mm")
    img.set_qform(fmrisim.MNI_AFFINE_3MM, code=4)
    img.set_sform(fmrisim.MNI_AFFINE_3MM, code=4)
    atlas_path = folder / ATLAS_FILE
    nib.save(img, atlas_path)
    table = folder / ATLAS_LABELS_FILE
    table.write_text(
        "index\tname\n" + "".join(f"{k}\t{name}\n" for k, name in enumerate(fmrisim.HO_SUB_LABELS)),
        encoding="utf-8",
    )
    return atlas_path, table


def _write_eeg(path: Path, data: np.ndarray, sfreq: float, ch_names, ch_types, annotations) -> None:
    info = mne.create_info(list(ch_names), sfreq, list(ch_types))
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_annotations(annotations)
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="eeglab", overwrite=True, verbose="error")
    fix_mat_header(path)


#: The 116-byte descriptive text of a MAT 5 file; scipy writes the creation time there, which
#: would make two runs of the same seed differ by those bytes (and so their data hashes).
_MAT_HEADER = "MATLAB 5.0 MAT-file, written by the beira-rt synthetic CWL generator"


def fix_mat_header(path: Path, text: str = _MAT_HEADER) -> None:
    """Replace the time-stamped descriptive text of a MAT 5 (.set) file with ``text`` (a fixed one)."""
    header = text.encode("ascii").ljust(116)[:116]
    with path.open("r+b") as f:
        head = f.read(116)
        if not head.startswith(b"MATLAB 5.0 MAT-file"):
            raise ValueError(f"{path} is not a MAT 5 file; cannot fix its header.")
        f.seek(0)
        f.write(header)


def _write_nifti(path: Path, volumes: np.ndarray, tr: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(volumes, fmrisim.MNI_AFFINE_3MM)
    img.header.set_zooms((3.0, 3.0, 3.0, tr))
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(fmrisim.MNI_AFFINE_3MM, code=4)
    img.set_sform(fmrisim.MNI_AFFINE_3MM, code=4)
    nib.save(img, path)


def _annotations(
    markers: np.ndarray, r_peaks: np.ndarray, blocks: list[tuple[float, float, str]]
) -> mne.Annotations:
    """``mri`` at volume onsets, ``R`` at heartbeats, ``EO`` / ``EC`` blocks (with durations), by onset."""
    onsets = np.concatenate([markers, r_peaks, [b[0] for b in blocks]])
    durations = np.concatenate([np.zeros(markers.size + r_peaks.size), [b[1] for b in blocks]])
    descriptions = np.array(["mri"] * markers.size + ["R"] * r_peaks.size + [b[2] for b in blocks])
    order = np.argsort(onsets, kind="stable")
    return mne.Annotations(onsets[order], durations[order], descriptions[order])


def make_synthetic_subject(
    out_dir: str | Path,
    subject: str = "trio1",
    duration: float = 300.0,
    seed: int = 0,
    spec: SyntheticSpec | None = None,
) -> SyntheticSubject:
    """Generate one synthetic CWL subject with known ground truth.

    Writes ``{out_dir}/{subject}/CWL_Data/...`` (EEGLAB .set at ``spec.sfreq``,
    normalised EPI ``rwa*.nii`` with ``spec.extra_volumes`` more volumes than
    ``mri`` markers, SPM ``rp_a*.txt``), the shared atlas in ``{out_dir}/atlas/``
    (if not there yet) and ``{out_dir}/ground_truth/{subject}.npz`` / ``.json``.

    Parameters
    ----------
    out_dir : str or Path
        Data folder (created).
    subject : str
        Subject id used in the CWL file names.
    duration : float
        EEG length in seconds (at least 30).
    seed : int
        With ``subject``, fixes every random draw: same inputs, same files.
    spec : SyntheticSpec or None
        Model parameters (defaults when None).

    Returns
    -------
    SyntheticSubject
    """
    spec = spec or SyntheticSpec()
    if duration < 30.0:
        raise ValueError(f"duration {duration} s is too short for a synthetic recording; use at least 30 s.")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    rng = subject_rng(seed, subject)
    # the hidden structure from a stream of its own (seed, subject): sources, drives, noise levels
    spec, terms = draw_structure(
        np.random.default_rng([int(seed), zlib.crc32(subject.encode("utf-8")), 1]), spec
    )
    atlas_path = out_dir / "atlas" / ATLAS_FILE
    labels_path = out_dir / "atlas" / ATLAS_LABELS_FILE
    if not (atlas_path.is_file() and labels_path.is_file()):
        atlas_path, labels_path = write_atlas(out_dir)

    # timing: markers inside the EEG, then the extra volumes the scanner kept acquiring
    first = float(rng.uniform(1.0, 3.0))
    n_markers = int(np.floor((duration - 0.5 - first) / spec.tr)) + 1
    n_vol = n_markers + spec.extra_volumes
    vol_times = first + spec.tr * np.arange(n_vol)
    blocks = eoec_blocks(rng, duration)
    hidden = simulate_hidden(
        rng, -40.0, vol_times[-1] + 5.0, len(spec.sources), spec.rois, blocks,
        sigma=spec.sigma, linear_share=spec.linear_share, terms=terms,
    )  # fmt: skip

    fm = simulate_fmri(rng, hidden, vol_times, n_markers, duration, spec)

    # EEG
    n_samples = round(duration * spec.sfreq)
    t_eeg = np.arange(n_samples) / spec.sfreq
    eyes_open = np.ones(n_samples, dtype=bool)
    for onset, length, label in blocks:
        if label == "EC":
            eyes_open[(t_eeg >= onset) & (t_eeg < onset + length)] = False
    eeg = synthesize_eeg(rng, hidden, n_samples, spec.sfreq, spec.sources, eyes_open, vol_times, fm.rp)
    annotations = _annotations(vol_times[:n_markers], eeg.r_peaks, blocks)

    paths = cwl_paths(out_dir, subject)
    _write_eeg(paths.eeg, eeg.data, spec.sfreq, eeg.ch_names, eeg.ch_types, annotations)
    _write_nifti(paths.nifti, fm.volumes, spec.tr)
    paths.motion.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(paths.motion, fm.rp, fmt="%15.7e", delimiter="  ")

    ceilings = compute_ceiling(
        paths, atlas_path, fm.roi_values, fm.spill, fm.truth, fm.test[:n_markers], n_markers, spec
    )
    truth_dir = out_dir / "ground_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    npz_path = truth_dir / f"{subject}.npz"
    np.savez_compressed(
        npz_path,
        lead_field=eeg.lead_field, eeg_ch_names=np.array(eeg.ch_names[: eeg.lead_field.shape[0]]),
        source_names=np.array([s.name for s in spec.sources]),
        source_freqs=np.array([s.freq for s in spec.sources]),
        rois=np.array(spec.rois), slow_times=hidden.times, log_envelope=hidden.z, envelope=hidden.amplitude,
        drive=hidden.drive, bold_slow=hidden.bold, coefficients=hidden.coefficients,
        volume_times=vol_times, volume_onsets=vol_times[:n_markers], bold_clean=fm.truth,
        bold_clean_pipeline=ceilings["clean_pipeline"], observed=ceilings["observed"], motion=fm.rp,
        global_signal_percent=fm.global_signal, r_peaks=eeg.r_peaks, blink_onsets=eeg.blinks,
        ceiling=ceilings["ceiling"], ceiling_test=ceilings["ceiling_test"], ceiling_raw=ceilings["ceiling_raw"],
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    names = tuple(s.name for s in spec.sources)
    meta: dict[str, Any] = {
        "subject": subject, "seed": seed, "duration_s": duration, "sfreq": spec.sfreq, "tr": spec.tr,
        "n_markers": n_markers, "n_volumes": n_vol, "rois": list(spec.rois),
        "sources": [asdict(s) for s in spec.sources],
        "drives": {roi: describe_term(roi, names, terms) for roi in spec.rois},
        "roi_terms": {roi: list(terms[roi]) for roi in spec.rois},
        "ceiling_range": list(spec.ceiling_range),
        "coefficients": {roi: hidden.coefficients[r].tolist() for r, roi in enumerate(spec.rois)},
        "linear_share": spec.linear_share, "sigma": spec.sigma, "blocks": blocks,
        "target_ceiling": dict(zip(spec.rois, np.round(fm.target_ceiling, 4).tolist(), strict=True)),
        "ceiling": dict(zip(spec.rois, ceilings["ceiling"].tolist(), strict=True)),
        "ceiling_test": dict(zip(spec.rois, ceilings["ceiling_test"].tolist(), strict=True)),
        "ceiling_raw": dict(zip(spec.rois, ceilings["ceiling_raw"].tolist(), strict=True)),
        "ceiling_definition": CEILING_DEFINITION,
        "files": {"eeg": str(paths.eeg), "nifti": str(paths.nifti), "motion": str(paths.motion),
                  "atlas": str(atlas_path), "atlas_labels": str(labels_path)},
        "noise_std_percent": dict(zip(spec.rois, np.round(fm.noise_std, 4).tolist(), strict=True)),
        "generation_seconds": round(elapsed, 2),
    }  # fmt: skip
    json_path = truth_dir / f"{subject}.json"
    json_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    logger.info(
        "synthetic subject %s: %.0f s, %d markers / %d volumes, mean ceiling %.3f, %.1f s",
        subject,
        duration,
        n_markers,
        n_vol,
        float(np.mean(ceilings["ceiling"])),
        elapsed,
    )
    return SyntheticSubject(
        subject=subject, data_dir=out_dir, paths=paths, atlas=atlas_path, atlas_labels=labels_path,
        truth_npz=npz_path, truth_json=json_path, ceiling=meta["ceiling"], ceiling_test=meta["ceiling_test"],
        seconds=elapsed,
    )  # fmt: skip


CEILING_DEFINITION = (
    "ceiling[roi] = Pearson r, over the volumes matched to 'mri' markers, between (a) the ROI series the "
    "loader produces from the files with the default pipeline (smoothing 3 mm, ROI mean, linear detrend, "
    "regression of 6 motion parameters + global signal) and (b) the part of that series the EEG determines: "
    "the noiseless target BOLD pushed through the same linear pipeline (including spill-over between "
    "neighbouring ROIs from the smoothing). The rest of (a) is noise independent of the EEG, so no EEG-based "
    "prediction can exceed the ceiling in expectation. ceiling_test: the same over the volumes whose onset "
    "lies in the last test_seconds of the EEG. ceiling_raw: r between (a) and the noiseless BOLD itself."
)
