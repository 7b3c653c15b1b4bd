"""The CWL and generic loaders, on files written by the real writers (mne/eeglabio, nibabel)."""

from __future__ import annotations

import hashlib
import logging
import shutil

import mne
import nibabel as nib
import numpy as np
import pytest

from beira_rt.config import DEFAULT_ROIS, DataConfig
from offline.loader import (
    DataError,
    MissingFileError,
    interpolate_bold,
    load_cwl_subject,
    load_generic,
    n_model_samples,
)
from offline.loader.eeg import check_tr, pick_eeg_channels
from offline.loader.fmri import read_label_table, select_labels
from offline.synthetic import SyntheticSpec, make_synthetic_subject
from offline.synthetic.ceiling import pearson_rows
from offline.synthetic.eeg import CWL_EEG_CHANNELS

DURATION = 60.0


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    # the fixed structure (vary=False: the documented sources and noise levels), so that the
    # bounds below check the loader, not the spread of the per-seed draws
    return make_synthetic_subject(
        tmp_path_factory.mktemp("cwl"), "trio1", duration=DURATION, seed=0, spec=SyntheticSpec(vary=False)
    )


def _load(subject, cfg: DataConfig | None = None, **kwargs):
    return load_cwl_subject(subject.data_dir, "trio1", cfg or DataConfig(), atlas=subject.atlas,
                            atlas_labels=subject.atlas_labels, **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def rec(subject):
    return _load(subject)


@pytest.fixture(scope="module")
def truth(subject):
    return dict(np.load(subject.truth_npz))


def test_eeg_channels_rate_units(rec):
    assert rec.ch_names == CWL_EEG_CHANNELS  # EOG, ECG and CW1..CW6 dropped, order kept
    assert rec.sfreq == 1000.0
    assert rec.eeg.shape == (30, int(DURATION * 1000)) and rec.eeg.dtype == np.float64
    assert 1.0 < np.median(rec.eeg.std(axis=1)) < 100.0  # microvolts (beira_rt.units)


def test_volumes_markers_and_the_extra_volume_warning(rec, subject, truth, caplog):
    n_markers = truth["volume_onsets"].size
    np.testing.assert_allclose(rec.volume_onsets, truth["volume_onsets"], atol=1e-3)
    assert rec.tr == pytest.approx(1.95, abs=1e-3)
    assert rec.roi_names == DEFAULT_ROIS
    assert rec.roi_series.shape == (8, n_markers)
    expected = f"has {n_markers + 3} volumes, {n_markers} volume markers: using the first {n_markers}"
    assert any(expected in w for w in rec.warnings), rec.warnings
    with caplog.at_level(logging.WARNING, logger="beira_rt"):
        _load(subject)
    assert expected in caplog.text


def test_roi_series_follow_the_ground_truth(rec, truth):
    n = rec.roi_series.shape[1]
    # the noiseless BOLD itself (part of it is removed by the detrend and the confound regression)
    r_raw = pearson_rows(rec.roi_series, truth["bold_clean"][:, :n])
    assert r_raw.mean() > 0.4 and r_raw.min() > 0.1, r_raw
    # the noiseless BOLD through the same linear cleaning: the EEG-determined part
    r = pearson_rows(rec.roi_series, truth["bold_clean_pipeline"])
    assert r.mean() > 0.6 and r.min() > 0.3, r
    # another ROI's truth correlates much less: each series is its own ROI
    cross = pearson_rows(rec.roi_series, np.roll(truth["bold_clean_pipeline"], 1, axis=0))
    assert cross.mean() < r.mean() - 0.3, cross


def test_bold_at_model_rate(rec):
    n_model = n_model_samples(rec.n_samples, rec.sfreq, 100.0)
    assert rec.bold.shape == (8, n_model) == (8, int(DURATION * 100))
    assert rec.bold_sfreq == 100.0
    t = rec.bold_times
    inside = (t >= rec.volume_onsets[0]) & (t <= rec.volume_onsets[-1])
    np.testing.assert_array_equal(rec.bold_valid, inside)
    start, stop = rec.bold_valid_span
    assert inside[start:stop].all() and inside.sum() == stop - start
    assert np.isnan(rec.bold[:, ~inside]).all() and np.isfinite(rec.bold[:, inside]).all()
    # the model-rate series passes through the volume values
    nearest = np.round(rec.volume_onsets * 100).astype(int)
    ok = nearest <= np.flatnonzero(inside)[-1]
    err = np.abs(rec.bold[:, nearest[ok]] - rec.roi_series[:, ok]).max()
    assert err < 0.05 * np.abs(rec.roi_series).max()


def test_provenance_hashes(rec, subject):
    files = rec.provenance["files"]
    assert set(files) >= {"eeg", "nifti", "motion", "atlas", "atlas_labels"}
    digest = hashlib.sha256(subject.paths.nifti.read_bytes()).hexdigest()
    assert files["nifti"]["sha256"] == digest
    assert len(rec.data_hash) == 64
    assert _load(subject).data_hash == rec.data_hash
    assert _load(subject, DataConfig(confounds=False)).data_hash != rec.data_hash


def test_data_hash_depends_on_contents_not_on_paths(rec, subject, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(subject.data_dir, moved)
    other = load_cwl_subject(moved, "trio1", DataConfig(), atlas=moved / "atlas" / subject.atlas.name,
                             atlas_labels=moved / "atlas" / subject.atlas_labels.name)  # fmt: skip
    assert other.provenance["files"]["eeg"]["path"] != rec.provenance["files"]["eeg"]["path"]
    assert other.data_hash == rec.data_hash


def test_confound_regression_removes_the_global_signal(subject, rec, truth):
    plain = _load(subject, DataConfig(confounds=False))
    n = rec.roi_series.shape[1]
    gs = truth["global_signal_percent"][:n]
    r_with = np.abs(pearson_rows(rec.roi_series, np.tile(gs, (8, 1))))
    r_without = np.abs(pearson_rows(plain.roi_series, np.tile(gs, (8, 1))))
    assert r_with.max() < 0.2 < r_without.mean()


def test_generic_loader_with_a_tsv(tmp_path, rec):
    n = rec.volume_onsets.size
    info = mne.create_info([*rec.ch_names, "EOG"], rec.sfreq, "eeg")
    raw = mne.io.RawArray(np.vstack([rec.eeg, rec.eeg[:1]]) * 1e-6, info, verbose="error")  # MNE: volts
    raw.set_annotations(mne.Annotations(rec.volume_onsets, 0.0, ["R128"] * n))
    eeg_path = tmp_path / "sub-01_task-rest_eeg.fif"
    raw.save(eeg_path, verbose="error")
    # columns in another order plus an unused one, and two more rows than markers
    names = [*reversed(rec.roi_names), "Brain-Stem"]
    values = np.vstack([rec.roi_series[::-1].T, rec.roi_series[::-1, -2:].T])
    values = np.column_stack([values, np.arange(n + 2)])
    tsv = tmp_path / "rois.tsv"
    tsv.write_text(
        "\t".join(names) + "\n" + "".join("\t".join(f"{v:.17g}" for v in row) + "\n" for row in values)
    )
    gen = load_generic(eeg_path, tsv, marker="R128")
    assert gen.ch_names == rec.ch_names  # EOG dropped by name
    np.testing.assert_allclose(gen.eeg, rec.eeg, atol=1e-6)  # microvolts, float32-exact in FIF
    np.testing.assert_array_equal(gen.roi_series, rec.roi_series)  # columns picked by name
    assert any(f"has {n + 2} volumes, {n} volume markers" in w for w in gen.warnings)
    assert set(gen.provenance["files"]) == {"eeg", "roi_tsv"}


# ----------------------------------------------------------------------------- errors


def test_missing_subject_names_the_full_expected_path(subject):
    with pytest.raises(MissingFileError) as err:
        load_cwl_subject(subject.data_dir, "trio7", atlas=subject.atlas, atlas_labels=subject.atlas_labels)
    expected = subject.data_dir / "trio7/CWL_Data/eeg/in-scan/trio7_mrcorrected_eoec_in-scan_hpump-off.set"
    assert str(expected.resolve()) in str(err.value)


def test_missing_nifti_names_the_full_expected_path(tmp_path, subject):
    eeg_dir = tmp_path / "trio1/CWL_Data/eeg/in-scan"
    eeg_dir.mkdir(parents=True)
    shutil.copy(subject.paths.eeg, eeg_dir)
    with pytest.raises(FileNotFoundError, match=r"rwatrio1_eoec_in-scan_hpump-off\.nii") as err:
        load_cwl_subject(tmp_path, "trio1", atlas=subject.atlas, atlas_labels=subject.atlas_labels)
    assert str((tmp_path / "trio1/CWL_Data/mri/epi_normalized").resolve()) in str(err.value)


def test_no_volume_markers_lists_the_annotations(subject):
    with pytest.raises(DataError, match="'scan' annotation") as err:
        _load(subject, DataConfig(volume_marker="scan"))
    assert "'mri' x" in str(err.value) and "'R' x" in str(err.value) and "'EC' x" in str(err.value)


def test_too_few_eeg_channels(subject):
    cfg = DataConfig(drop_channels=("EOG", "ECG", "CW*", "F*", "C*", "P*", "T*", "O*"))
    with pytest.raises(DataError, match=r"only 0 EEG channel\(s\) left.*min_eeg_channels = 8"):
        _load(subject, cfg)
    with pytest.raises(DataError, match=r"\['Cz2'\] requested by data.eeg_channels"):
        _load(subject, DataConfig(eeg_channels=("Cz", "Cz2")))


def test_auxiliary_channels_in_their_usual_spellings_are_dropped(tmp_path):
    """EEGLAB files type every channel as EEG: the default patterns drop EOG/ECG/EMG under the names
    labs give them, and the CWL carbon-wire loops, through an EEGLAB round trip."""
    names = ["Fp1", "VEOG", "Fz", "HEOG", "heogR", "EKG", "ECG1", "EMG_chin", "Cz", "cw3", "Pz", "TP9",
             "C3", "C4", "O1", "O2", "P3", "P4"]  # fmt: skip
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((len(names), 500)) * 1e-5,
                          mne.create_info(names, 250.0, "eeg"), verbose="error")  # fmt: skip
    path = tmp_path / "aux.set"
    mne.export.export_raw(path, raw, fmt="eeglab", verbose="error")
    back = mne.io.read_raw_eeglab(path, verbose="error")
    assert set(back.get_channel_types()) == {"eeg"}
    kept = pick_eeg_channels(back, DataConfig())
    assert kept == ["Fp1", "Fz", "Cz", "Pz", "TP9", "C3", "C4", "O1", "O2", "P3", "P4"]


def test_explicit_channels_keep_the_requested_order(subject):
    names = ("Oz", "Cz", "Fz", "Pz", "C3", "C4", "O1", "O2")
    rec = _load(subject, DataConfig(eeg_channels=names, rois=("Left Putamen",)))
    assert rec.ch_names == names and rec.eeg.shape[0] == 8


def test_fewer_volumes_than_markers(tmp_path, subject):
    for path in (subject.paths.eeg, subject.paths.motion):
        dest = tmp_path / path.relative_to(subject.data_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    img = nib.load(subject.paths.nifti)
    short = nib.Nifti1Image(np.asarray(img.dataobj)[..., :10], img.affine, img.header)
    dest = tmp_path / subject.paths.nifti.relative_to(subject.data_dir)
    dest.parent.mkdir(parents=True)
    nib.save(short, dest)
    with pytest.raises(DataError, match=r"holds 10 volumes but the EEG has \d+ volume markers"):
        load_cwl_subject(tmp_path, "trio1", atlas=subject.atlas, atlas_labels=subject.atlas_labels)


def test_a_header_tr_unlike_the_markers_gives_a_warning(tmp_path, subject, rec):
    """The markers' TR is used; a NIfTI header that says otherwise (another run's images?) is
    named in a warning. The written files' header (1.95 s, like the markers) gives none."""
    assert not any("repetition time" in w for w in rec.warnings)
    for path in (subject.paths.eeg, subject.paths.motion):
        dest = tmp_path / path.relative_to(subject.data_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    img = nib.load(subject.paths.nifti)
    header = img.header.copy()
    header.set_zooms((*header.get_zooms()[:3], 2.5))
    dest = tmp_path / subject.paths.nifti.relative_to(subject.data_dir)
    dest.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, header), dest)
    other = load_cwl_subject(tmp_path, "trio1", atlas=subject.atlas, atlas_labels=subject.atlas_labels)
    assert other.tr == pytest.approx(1.95, abs=1e-3)
    assert any(
        "header gives a repetition time of 2.500 s, the volume markers 1.950 s" in w for w in other.warnings
    )


def test_generic_tsv_with_fewer_rows_than_markers(tmp_path, rec):
    raw = mne.io.RawArray(rec.eeg, mne.create_info(list(rec.ch_names), rec.sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(rec.volume_onsets, 0.0, "mri"))
    raw.save(tmp_path / "x_raw.fif", verbose="error")
    (tmp_path / "r.tsv").write_text("Left Putamen\n1.0\n2.0\n")
    with pytest.raises(DataError, match=r"holds 2 volumes but the EEG has \d+ volume markers"):
        load_generic(tmp_path / "x_raw.fif", tmp_path / "r.tsv", cfg=DataConfig(rois=("Left Putamen",)))


def test_unknown_roi_lists_the_available_ones(subject):
    with pytest.raises(DataError, match=r"\['Left Striatum'\] are not in the atlas") as err:
        _load(subject, DataConfig(rois=("Left Putamen", "Left Striatum")))
    assert "'Right Accumbens'" in str(err.value) and "Background" not in str(err.value)


def test_without_an_atlas_offline_says_to_pass_one(subject, monkeypatch, tmp_path):
    # an empty nilearn cache and an unreachable proxy: the fetch fails as it does offline
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path / "nilearn"))
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(DataError, match="--atlas PATH --atlas-labels PATH"):
        load_cwl_subject(subject.data_dir, "trio1")


# ----------------------------------------------------------------------------- helpers


def test_label_tables_and_names(tmp_path):
    tsv = tmp_path / "lut.tsv"
    tsv.write_text(
        "index\tname\tcolor\n0\tBackground\t#000\n3\tLeft Lateral Ventrical\t#111\n7\tLeft Pallidum \t#222\n"
    )
    table = read_label_table(tsv)
    assert table == {0: "Background", 3: "Left Lateral Ventrical", 7: "Left Pallidum"}
    assert select_labels(table, ("left pallidum", "Left Lateral Ventricle"), "lut") == [7, 3]
    listing = tmp_path / "names.txt"
    listing.write_text("Background\nLeft Caudate\nRight Caudate\n")
    assert read_label_table(listing) == {0: "Background", 1: "Left Caudate", 2: "Right Caudate"}


def test_interpolation_edges_and_knots():
    onsets = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    series = np.array([[0.0, 1.0, 0.0, -1.0, 0.0]])
    out = interpolate_bold(series, onsets, 1000, 100.0)
    assert np.isnan(out[0, :100]).all() and np.isnan(out[0, 901:]).all()
    np.testing.assert_allclose(out[0, [100, 300, 500, 700, 900]], series[0], atol=1e-12)
    assert n_model_samples(60000, 1000.0, 100.0) == 6000
    assert n_model_samples(60001, 1000.0, 100.0) == 6001
    assert n_model_samples(5, 250.0, 100.0) == 2


def test_irregular_markers_give_a_warning():
    warnings: list[str] = []
    onsets = np.concatenate([np.arange(10) * 1.95, 10 * 1.95 + 1.95 + np.arange(5) * 1.95])
    assert check_tr(onsets, warnings) == pytest.approx(1.95)
    assert len(warnings) == 1 and "a marker may be missing" in warnings[0]
