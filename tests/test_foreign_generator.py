"""tools/make_foreign_cwl.py: subjects in the CWL layout from an independent generative model,
read back with the project's real loader."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pytest

from beira_rt.config import load_config
from offline.loader import cwl_paths, load_cwl_subject
from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE

REPO = Path(__file__).resolve().parents[1]
DURATION = 150.0  # seed 0: ceilings 0.53-0.84, test 0.49-0.88 (a shorter run can leave an ROI near 0)
SEED = 0


def _tool():
    spec = importlib.util.spec_from_file_location(
        "_tool_make_foreign_cwl", REPO / "tools" / "make_foreign_cwl.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


tool = _tool()


def _load(data_dir: Path, subject: str = "trio1"):
    atlas = data_dir / "atlas"
    cfg = load_config(None).data
    return load_cwl_subject(data_dir, subject, cfg, atlas / ATLAS_FILE, atlas / ATLAS_LABELS_FILE, 100.0)


def _digest(data_dir: Path, subject: str = "trio1") -> str:
    """sha256 over the EEG samples and channel names, the EPI voxels and the motion parameters."""
    paths = cwl_paths(data_dir, subject)
    raw = mne.io.read_raw_eeglab(paths.eeg, preload=True, verbose="error")
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(raw.get_data()).tobytes())
    h.update("\t".join(raw.ch_names).encode())
    h.update(np.ascontiguousarray(np.asarray(nib.load(paths.nifti).dataobj)).tobytes())
    h.update(np.loadtxt(paths.motion).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("foreign")
    truth = tool.make_foreign_subject(data_dir, "trio1", duration=DURATION, seed=SEED)
    return data_dir, truth


@pytest.fixture(scope="module")
def rec(subject):
    return _load(subject[0])


def test_files_in_the_cwl_layout(subject):
    data_dir, truth = subject
    paths = cwl_paths(data_dir, "trio1")
    for path in (paths.eeg, paths.nifti, paths.motion, data_dir / "atlas" / ATLAS_FILE):
        assert path.is_file(), path
    assert json.loads((data_dir / "ground_truth" / "trio1.json").read_text()) == truth
    labels = (data_dir / "atlas" / ATLAS_LABELS_FILE).read_text().splitlines()
    assert labels[:2] == ["index\tname", "0\tBackground"]
    img = nib.load(paths.nifti)
    assert img.shape[:3] == (61, 72, 61) and img.header.get_zooms() == pytest.approx((3.0, 3.0, 3.0, 1.95))
    assert img.shape[3] - truth["n_markers"] in (1, 2)
    motion = np.loadtxt(paths.motion)
    assert motion.shape == (img.shape[3], 6)
    assert np.abs(motion[:, :3]).max() < 3.0 and np.abs(motion[:, 3:]).max() < 0.05  # mm, rad


def test_eeg_channels_units_and_annotations(subject, rec):
    data_dir, truth = subject
    raw = mne.io.read_raw_eeglab(cwl_paths(data_dir, "trio1").eeg, verbose="error")
    assert raw.info["sfreq"] == 1000.0 and raw.ch_names == truth["channel_order"]
    extra = [i for i, c in enumerate(raw.ch_names) if c in ("EOG", "ECG") or c.startswith("CW")]
    assert len(extra) == 8 and min(extra) < 30  # interleaved with the EEG, not all at the end
    # the loader drops EOG, ECG and CW1-6 and keeps the file's (shuffled) order
    assert rec.ch_names == tuple(c for c in truth["channel_order"] if c in tool.EEG_CHANNELS)
    assert len(rec.ch_names) == 30 and set(rec.ch_names) == set(tool.EEG_CHANNELS)
    assert rec.ch_names != tool.EEG_CHANNELS
    assert rec.eeg.shape == (30, int(DURATION * 1000))
    sd = rec.eeg.std(axis=1)  # microvolts
    assert np.all((sd > 5.0) & (sd < 200.0)), sd
    counts = Counter(rec.annotations.description)
    assert counts["mri"] == truth["n_markers"] and counts["R"] > DURATION * 0.8  # 55-80 beats/min
    assert {"EO", "EC"} <= set(counts)


def test_volume_markers_and_roi_series(subject, rec):
    _, truth = subject
    n = truth["n_markers"]
    np.testing.assert_allclose(rec.volume_onsets, truth["volume_onsets_s"], atol=1e-3)
    assert rec.tr == pytest.approx(1.95, abs=1e-3) and 1.0 <= rec.volume_onsets[0] <= 3.0
    assert rec.roi_series.shape == (8, n) == (len(tool.ROIS), rec.volume_onsets.size)
    assert np.isfinite(rec.roi_series).all() and (rec.roi_series.std(axis=1) > 0).all()
    assert any("volume markers: using the first" in w for w in rec.warnings), rec.warnings


def test_ceilings(subject, rec):
    _, truth = subject
    assert truth["generator"] == "foreign" and truth["seed"] == SEED and truth["duration_s"] == DURATION
    assert truth["ceiling_definition"] and truth["description"]
    for key in ("ceiling", "ceiling_test"):
        assert set(truth[key]) == set(tool.ROIS)
        assert all(0.2 < r < 0.99 for r in truth[key].values()), truth[key]
    # the ceiling is the correlation of the loader's series with the stored EEG-determined part
    for r, roi in enumerate(rec.roi_names):
        determined = np.array(truth["eeg_determined_series"][roi])
        assert np.corrcoef(rec.roi_series[r], determined)[0, 1] == pytest.approx(
            truth["ceiling"][roi], abs=1e-9
        )
    for roi, model in truth["rois"].items():
        assert 1 <= len(model["sources"]) <= 3 and model["nonlinearity"] in tool.NONLINEARITIES
        assert 4.0 <= model["hrf_peak_s"] <= 7.0 and 0.1 <= model["hrf_undershoot_ratio"] <= 0.35, roi
    assert 6 <= len(truth["sources"]) <= 10


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        tool.make_foreign_subject(tmp_path / name, "trio1", duration=30.0, seed=seed)
    same = _digest(tmp_path / "a")
    assert _digest(tmp_path / "b") == same
    assert _digest(tmp_path / "c") != same
    for path in (cwl_paths(tmp_path / d, "trio1").eeg for d in "ab"):  # the files too, byte for byte
        assert path.read_bytes() == cwl_paths(tmp_path / "a", "trio1").eeg.read_bytes()


def test_the_interpretation_check_reads_its_sources(subject):
    """offline.synthetic.load_truth reads the independent generator's sources (lead-field patterns on
    the 30 EEG channels, frequencies) and its several drivers per ROI, as
    tools/check_interpretation.py needs them; a pattern is what the source puts on the scalp."""
    from offline.synthetic import load_truth

    data_dir, truth = subject
    loaded = load_truth(data_dir, "trio1")
    assert set(loaded.ch_names) == set(tool.EEG_CHANNELS) and len(loaded.sources) == len(truth["sources"])
    for roi, model in truth["rois"].items():
        driving = loaded.sources_of(roi)
        assert [s.index for s in driving] == sorted(model["sources"])
        assert all(s.freq == truth["sources"][s.index]["freq_hz"] for s in driving)
        assert loaded.signs[roi] == np.sign(model["weights"][0])
    for src, meta in zip(loaded.sources, truth["sources"], strict=True):
        assert src.pattern.shape == (30,) and np.isfinite(src.pattern).all() and np.abs(src.pattern).max() > 0
        assert meta["bandwidth"] == pytest.approx(meta["bandwidth_hz"] / 2)
