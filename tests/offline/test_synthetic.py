"""The synthetic CWL generator: layout, formats, events, determinism and the ground truth."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pytest
from scipy import signal

from beira_rt.config import DEFAULT_ROIS
from offline.loader import cwl_paths
from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE, make_synthetic_subject
from offline.synthetic.ceiling import pearson_rows
from offline.synthetic.eeg import CWL_AUX_CHANNELS, CWL_EEG_CHANNELS, DEFAULT_SOURCES
from offline.synthetic.fmri import GRID_SHAPE, HO_SUB_LABELS, MNI_AFFINE_3MM
from offline.synthetic.hidden import canonical_hrf, drive_terms, eoec_blocks, simulate_hidden

DURATION = 60.0


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    return make_synthetic_subject(tmp_path_factory.mktemp("syn"), "trio1", duration=DURATION, seed=0)


@pytest.fixture(scope="module")
def meta(subject):
    return json.loads(subject.truth_json.read_text())


@pytest.fixture(scope="module")
def raw(subject):
    return mne.io.read_raw_eeglab(subject.paths.eeg, preload=True, verbose="error")


def test_files_are_in_the_cwl_layout(subject):
    root = subject.data_dir
    assert subject.paths == cwl_paths(root, "trio1")
    assert (root / "trio1/CWL_Data/eeg/in-scan/trio1_mrcorrected_eoec_in-scan_hpump-off.set").is_file()
    assert (root / "trio1/CWL_Data/mri/epi_normalized/rwatrio1_eoec_in-scan_hpump-off.nii").is_file()
    assert (root / "trio1/CWL_Data/mri/epi_motionparams/rp_atrio1_eoec_in-scan_hpump-off.txt").is_file()
    # atlas and ground truth live outside the subject folder
    assert subject.atlas == root / "atlas" / ATLAS_FILE and subject.atlas.is_file()
    assert subject.atlas_labels == root / "atlas" / ATLAS_LABELS_FILE
    assert subject.truth_npz.parent == root / "ground_truth" and subject.truth_json.is_file()


def test_eeg_file_channels_rate_and_annotations(raw, meta):
    assert raw.ch_names == list(CWL_EEG_CHANNELS + CWL_AUX_CHANNELS)
    assert len(CWL_EEG_CHANNELS) == 30
    assert raw.info["sfreq"] == 1000.0
    assert raw.n_times == int(DURATION * 1000)
    desc = np.asarray(raw.annotations.description)
    onsets = np.asarray(raw.annotations.onset)
    mri = np.sort(onsets[desc == "mri"])
    assert mri.size == meta["n_markers"] == meta["n_volumes"] - 3
    np.testing.assert_allclose(np.diff(mri), 1.95, atol=1e-3)
    assert mri[-1] < DURATION
    # one R annotation per heartbeat (about 64 bpm) and alternating EO/EC blocks covering the run
    n_r = int((desc == "R").sum())
    assert 0.8 * DURATION * 64 / 60 < n_r < 1.2 * DURATION * 64 / 60
    blocks = [
        (o, d, s) for o, d, s in zip(onsets, raw.annotations.duration, desc, strict=True) if s in ("EO", "EC")
    ]
    assert [b[2] for b in blocks][:2] == ["EO", "EC"]
    assert sum(b[1] for b in blocks) == pytest.approx(DURATION, abs=0.01)


def test_eeg_signals_look_like_eeg(raw, subject):
    eeg = raw.get_data(picks=list(CWL_EEG_CHANNELS))
    assert 3e-6 < np.median(eeg.std(axis=1)) < 60e-6  # volts, tens of microvolts
    freqs, psd = signal.welch(raw.get_data(picks=["O1", "O2"]), fs=1000.0, nperseg=4000)
    psd = psd.mean(axis=0)

    def band(lo, hi):
        return psd[(freqs >= lo) & (freqs <= hi)].mean()

    assert band(9, 11) > 3 * band(14, 16)  # occipital alpha peak
    assert band(49.5, 50.5) > 10 * band(45, 47)  # power-line noise
    # the ECG peaks at the R annotations
    ecg = raw.get_data(picks=["ECG"])[0]
    desc = np.asarray(raw.annotations.description)
    r_samples = np.round(np.asarray(raw.annotations.onset)[desc == "R"] * 1000).astype(int)
    r_samples = r_samples[(r_samples > 50) & (r_samples < ecg.size - 50)]
    peaks = np.array([np.argmax(ecg[s - 50 : s + 50]) - 50 for s in r_samples])
    assert np.median(np.abs(peaks)) <= 2
    # blinks only with the eyes open, and larger on the EOG than at the back of the head
    truth = np.load(subject.truth_npz)
    onsets = np.asarray(raw.annotations.onset)
    closed = [(o, o + d) for o, d, s in zip(onsets, raw.annotations.duration, desc, strict=True) if s == "EC"]
    for blink in truth["blink_onsets"]:
        assert not any(a <= blink < b for a, b in closed)


def test_nifti_motion_and_atlas_formats(subject, meta):
    img = nib.load(subject.paths.nifti)
    assert img.shape == (*GRID_SHAPE, meta["n_markers"] + 3)
    assert img.get_data_dtype() == np.float32
    np.testing.assert_allclose(img.affine, MNI_AFFINE_3MM)
    assert img.header.get_zooms()[3] == pytest.approx(1.95)
    rp = np.loadtxt(subject.paths.motion)
    assert rp.shape == (meta["n_volumes"], 6)
    assert np.abs(rp[:, :3]).max() < 2.0 and np.abs(rp[:, 3:]).max() < 0.05  # mm, rad
    atlas = nib.load(subject.atlas)
    assert atlas.shape == GRID_SHAPE
    labels = np.asarray(atlas.dataobj)
    lines = subject.atlas_labels.read_text().splitlines()
    assert lines[0] == "index\tname"
    table = dict(line.split("\t") for line in lines[1:])
    assert list(table.values()) == list(HO_SUB_LABELS) and table["0"] == "Background"
    counts = np.bincount(labels.ravel(), minlength=len(HO_SUB_LABELS))
    assert (counts[1:] > 0).all()
    for roi in DEFAULT_ROIS:
        assert counts[HO_SUB_LABELS.index(roi)] >= 10, roi


def test_same_seed_same_data_other_seed_other_data(tmp_path, subject):
    again = make_synthetic_subject(tmp_path / "a", "trio1", duration=DURATION, seed=0)
    other = make_synthetic_subject(tmp_path / "b", "trio1", duration=DURATION, seed=1)
    assert again.paths.nifti.read_bytes() == subject.paths.nifti.read_bytes()
    assert again.paths.motion.read_bytes() == subject.paths.motion.read_bytes()
    # byte for byte, so that the loader's data hash is reproducible (the demo bundle test relies on it)
    assert again.paths.eeg.read_bytes() == subject.paths.eeg.read_bytes()
    assert again.paths.eeg.read_bytes()[:116].startswith(b"MATLAB 5.0 MAT-file, written by")
    a = mne.io.read_raw_eeglab(again.paths.eeg, verbose="error").get_data()
    b = mne.io.read_raw_eeglab(subject.paths.eeg, verbose="error").get_data()
    c = mne.io.read_raw_eeglab(other.paths.eeg, verbose="error").get_data()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert again.ceiling == subject.ceiling


def test_ground_truth_contents_and_ceiling(subject, meta):
    truth = np.load(subject.truth_npz)
    n_markers = meta["n_markers"]
    assert list(truth["rois"]) == list(DEFAULT_ROIS)
    assert truth["lead_field"].shape == (30, len(DEFAULT_SOURCES))
    assert truth["bold_clean"].shape == (8, meta["n_volumes"])
    assert truth["observed"].shape == truth["bold_clean_pipeline"].shape == (8, n_markers)
    np.testing.assert_allclose(truth["volume_onsets"], truth["volume_times"][:n_markers])
    # the stored ceiling is what its definition says
    r = pearson_rows(truth["observed"], truth["bold_clean_pipeline"])
    np.testing.assert_allclose(r, [meta["ceiling"][roi] for roi in DEFAULT_ROIS], atol=1e-9)
    assert "Pearson r" in meta["ceiling_definition"]
    ceilings = np.array(list(meta["ceiling"].values()))
    # the ROI noise levels are drawn per seed (ceiling range ~0.62-0.9); a short recording scatters them
    assert 0.5 < ceilings.mean() < 0.95 and ceilings.min() > 0.2
    assert set(meta["drives"]) == set(DEFAULT_ROIS)
    assert set(meta["roi_terms"]) == set(DEFAULT_ROIS)


def test_hidden_structure_is_drawn_per_seed():
    """Sources (frequency, site), drives (source, sign, kind) and noise levels differ between seeds;
    every source drives some ROI; ``vary=False`` keeps the fixed structure."""
    import zlib

    from offline.synthetic.hidden import ROI_TERMS
    from offline.synthetic.spec import SyntheticSpec, draw_structure

    def draw(seed, **kw):
        rng = np.random.default_rng([seed, zlib.crc32(b"trio1"), 1])
        return draw_structure(rng, SyntheticSpec(**kw))

    (spec_a, terms_a), (spec_b, terms_b) = draw(0), draw(1)
    assert [s.freq for s in spec_a.sources] != [s.freq for s in spec_b.sources]
    assert terms_a != terms_b and spec_a.ceiling_range != spec_b.ceiling_range
    for spec, terms in ((spec_a, terms_a), (spec_b, terms_b)):
        assert {t[0] for t in terms.values()} == set(range(len(spec.sources)))
        freqs = [s.freq for s in spec.sources]
        assert np.all(np.diff(freqs) > 0.9)
    assert draw(0) == (spec_a, terms_a)
    fixed, terms = draw(0, vary=False)
    assert fixed == SyntheticSpec(vary=False) and terms == {r: ROI_TERMS[r] for r in DEFAULT_ROIS}


def test_log_envelope_linear_model_cannot_explain_the_noiseless_bold():
    """A linear model of the (HRF-convolved) log-envelopes of all sources, fitted on the
    noiseless BOLD itself, explains about ``linear_share`` of its variance, not all of it."""
    rng = np.random.default_rng(3)
    duration = 600.0
    hidden = simulate_hidden(rng, -40.0, duration, len(DEFAULT_SOURCES), DEFAULT_ROIS,
                             eoec_blocks(rng, duration), linear_share=0.5)  # fmt: skip
    hrf = canonical_hrf(20.0)
    n = hidden.times.size
    keep = hidden.times >= 0
    lin_feats = np.array([np.convolve(z - z.mean(), hrf)[:n] for z in hidden.z])
    design = np.column_stack([lin_feats.T, np.ones(n)])[keep]
    r2 = []
    for bold in hidden.bold[:, keep]:
        coef, *_ = np.linalg.lstsq(design, bold, rcond=None)
        r2.append(1 - np.var(bold - design @ coef) / np.var(bold))
    r2 = np.array(r2)
    assert r2.max() < 0.8 and r2.mean() < 0.65
    # ... while the true linear + nonlinear terms explain all of it
    for roi, bold in zip(DEFAULT_ROIS, hidden.bold[:, keep], strict=True):
        terms = [np.convolve(x, hrf)[:n] for x in drive_terms(roi, hidden.amplitude)]
        design = np.column_stack([*terms, np.ones(n)])[keep]
        coef, *_ = np.linalg.lstsq(design, bold, rcond=None)
        assert np.var(bold - design @ coef) < 1e-6 * np.var(bold), roi


def test_short_duration_is_refused(tmp_path):
    with pytest.raises(ValueError, match="too short"):
        make_synthetic_subject(tmp_path, "trio1", duration=10.0)


def test_command_line_tool_writes_subjects(tmp_path, capsys):
    path = Path(__file__).resolve().parents[2] / "tools" / "make_synthetic_cwl.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_cwl", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--out", str(tmp_path), "--subjects", "trio2", "trio3", "--duration", "30"]) == 0
    out = capsys.readouterr().out
    assert "trio2: 30 s written" in out and "ceiling r (last 60 s)" in out and "--atlas-labels" in out
    for subject in ("trio2", "trio3"):
        assert cwl_paths(tmp_path, subject).nifti.is_file()
        assert (tmp_path / "ground_truth" / f"{subject}.json").is_file()
    assert tool.main(["--out", str(tmp_path), "--duration", "5"]) == 2
    assert "too short" in capsys.readouterr().err
