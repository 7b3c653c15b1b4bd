"""Interpretation end to end: one known source drives each target; training and interpreting find it.

The recording is written as real files (FIF EEG with ``mri`` markers + a TSV of the ROI series)
and goes through ``beira-train`` (which interprets the model it trained) and
``beira-train interpret``. Two oscillatory sources of the same strength over a 1/f background:
one (a dipole under O1, 11 Hz) drives the first ROI with its amplitude envelope, the other
(under C4, 23 Hz) drives the second. For each ROI the most important branch must show its own
source's scalp pattern (|r| >= 0.9) and frequency (within 1 Hz), not the other source's.
(Two ROIs rather than one: the linear baseline of the trainer needs at least two.)
"""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest
import yaml

from beira_rt.config import load_config, override, to_dict
from beira_rt.interpret import read_patterns
from offline.cli import main
from offline.synthetic import eeg as eegsim
from offline.synthetic.hidden import lowpass_gauss

from ..conftest import REPO

SFREQ = 250.0
DURATION = 200.0
TR = 1.0
#: ROI -> (site of its source's dipole, the source's frequency in Hz)
SOURCES = {"Left Pallidum": ("O1", 11.0), "Right Pallidum": ("C4", 23.0)}


def _pattern(site: str) -> np.ndarray:
    """Scalp pattern (30 CWL channels, FCz reference) of a radial dipole under ``site``."""
    electrodes = eegsim.electrode_directions(eegsim.CWL_EEG_CHANNELS)
    reference = eegsim.electrode_directions(["FCz"])[0]
    direction = eegsim.electrode_directions([site])[0]
    return eegsim.dipole_pattern(electrodes, reference, 0.6 * direction, direction)


@pytest.fixture(scope="module")
def recording_files(tmp_path_factory):
    """FIF + ROI TSV of the recording; returns (fif, tsv, ROI -> its source's pattern)."""
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("single_source")
    n = int(SFREQ * DURATION)
    t = np.arange(n) / SFREQ
    slow_rate = 20.0
    t_slow = np.arange(int(DURATION * slow_rate) + 1) / slow_rate
    # deep envelope modulation over a weak background: a model this small, trained this briefly,
    # learned both ROIs on each of four training seeds tried (validation r 0.5-0.94)
    env = {roi: np.exp(1.0 * lowpass_gauss(rng, t_slow.size, slow_rate, 0.15)) for roi in SOURCES}
    patterns = {roi: _pattern(site) for roi, (site, _) in SOURCES.items()}
    eeg_uv = 2.0 * eegsim.colored_noise(rng, (len(eegsim.CWL_EEG_CHANNELS), n), SFREQ)
    for roi, (_, freq) in SOURCES.items():
        osc = np.interp(t, t_slow, env[roi]) * eegsim.narrowband_noise(rng, n, SFREQ, freq, 1.0)
        eeg_uv += 10.0 * np.outer(patterns[roi], osc)
    raw = mne.io.RawArray(
        eeg_uv * 1e-6, mne.create_info(list(eegsim.CWL_EEG_CHANNELS), SFREQ, "eeg"), verbose="error"
    )
    onsets = np.arange(1.0, DURATION - 1.0, TR)
    raw.set_annotations(mne.Annotations(onsets, 0.0, "mri"))
    fif = folder / "single_source_eeg.fif"
    raw.save(fif, verbose="error")
    # each ROI follows its source's envelope 6 s later (the model's BOLD delay)
    tsv = folder / "rois.tsv"
    bold = np.column_stack([np.interp(onsets - 6.0, t_slow, env[roi], left=1.0) for roi in SOURCES])
    np.savetxt(tsv, bold, delimiter="\t", header="\t".join(SOURCES), comments="")
    return fif, tsv, patterns


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    """configs/fast_test.yaml with two ROIs, eight branches, the correlation loss and 800 steps (~18 s)."""
    cfg = override(load_config(REPO / "configs" / "fast_test.yaml"), {
        "data.rois": list(SOURCES), "model.n_filters": 8, "training.loss": "corr", "training.max_epochs": 80,
        "training.steps_per_epoch": 10, "training.patience": 80, "training.seed": 0,
    })  # fmt: skip
    path = tmp_path_factory.mktemp("cfg") / "single_source.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(recording_files, config_file, tmp_path_factory):
    fif, tsv, *_ = recording_files
    out = tmp_path_factory.mktemp("run")
    code = main(
        ["--config", str(config_file), "--eeg", str(fif), "--roi-tsv", str(tsv), "--out", str(out), "-q"]
    )
    assert code == 0
    return out


def _abs_r(a, b) -> float:
    return abs(float(np.corrcoef(np.asarray(a), np.asarray(b))[0, 1]))


@pytest.mark.slow
def test_training_interprets_and_finds_the_driving_source(trained, recording_files):
    _, _, patterns = recording_files
    for name in ("interpretation.json", "patterns.json", "overview.png"):
        assert (trained / "interpretation" / name).stat().st_size > 0, name
    doc = json.loads((trained / "interpretation" / "interpretation.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    assert doc["bundle_hash"] == metrics["bundle_hash"] and metrics["timings"]["interpret_s"] > 0
    freqs = np.asarray(doc["freqs"])
    meta, compact = read_patterns(trained / "model.beira")  # the file beside the bundle (dashboard)
    assert meta["bundle_hash"] == doc["bundle_hash"] and [r.roi for r in compact] == list(SOURCES)
    for roi, other in zip(SOURCES, reversed(SOURCES), strict=True):
        entry = doc["rois"][roi]
        assert len(entry["branches"]) == 8 and sorted(entry["ranking"]) == list(range(8))
        best = entry["branches"][entry["ranking"][0]]
        assert best["importance"] > 0.05, roi  # silencing it costs validation r
        # the spatial pattern is the ROI's own source's, not the other's; the raw weights are not it
        assert _abs_r(best["pattern"], patterns[roi]) >= 0.9, roi
        assert _abs_r(best["pattern"], patterns[other]) < _abs_r(best["pattern"], patterns[roi]) - 0.3, roi
        assert _abs_r(best["weights"], patterns[roi]) < _abs_r(best["pattern"], patterns[roi]), roi
        # the spectral pattern peaks at the source's frequency
        assert abs(best["peak_hz"] - SOURCES[roi][1]) <= 1.0, (roi, best["peak_hz"])
        assert len(best["spectral_pattern"]) == freqs.size == len(best["band_response"])
        assert best["envelope_time_scale_s"] > 0 and best["envelope_cutoff_hz"] > 0
        top = compact[list(SOURCES).index(roi)].branches[0]
        assert top["branch"] == best["branch"]
        np.testing.assert_allclose(top["pattern"], best["pattern"])


@pytest.mark.slow
def test_interpret_command_reproduces_the_training_interpretation(trained, recording_files, tmp_path, capsys):
    fif, tsv, *_ = recording_files
    out = tmp_path / "interp"
    code = main(["interpret", str(trained / "model.beira"), "--eeg", str(fif), "--roi-tsv", str(tsv),
                 "--out", str(out), "--html", "--device", "cpu"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Right Pallidum" in printed and "interpretation.json" in printed
    sheets = ("roi_Left_Pallidum.png", "roi_Right_Pallidum.png")
    for name in ("interpretation.json", "patterns.json", "overview.png", *sheets, "report.html"):
        assert (out / name).stat().st_size > 0, name
    again = json.loads((out / "interpretation.json").read_text())
    first = json.loads((trained / "interpretation" / "interpretation.json").read_text())
    assert again["data_hash_matches_bundle"] and again["positions_source"] in (
        "colin27_1020",
        "standard_1020",
    )
    for roi in SOURCES:
        assert again["rois"][roi]["ranking"] == first["rois"][roi]["ranking"]
        for a, b in zip(again["rois"][roi]["branches"], first["rois"][roi]["branches"], strict=True):
            np.testing.assert_allclose(a["pattern"], b["pattern"], atol=1e-4)
            assert a["peak_hz"] == b["peak_hz"]


def test_interpret_command_needs_an_output_folder(trained, recording_files, capsys):
    fif, tsv, *_ = recording_files
    assert main(["interpret", str(trained / "model.beira"), "--eeg", str(fif), "--roi-tsv", str(tsv)]) == 2
    assert "--out" in capsys.readouterr().err


def test_read_out_importance_skips_the_start_up_transient_a_dead_branch_would_be_scored_on():
    """A read-out branch left unused by SPoC (zero unmixing) is constant wherever its history is in
    the recording; in the first receptive_field - 1 samples its one pass sees zeros before the
    recording, and its normalised slow envelope (near-zero variance) turns that into a large
    transient. The importance block starts after it, so the dead branch alone predicts a constant
    (importance NaN, ranked last), where the whole training block would give it a finite r."""
    import torch

    from beira_rt.models import build_model
    from offline.interpret.importance import branch_importance, importance_block
    from tests._bundles import randomise_statistics
    from tests.offline import _ddp_worker as worker

    cfg = override(worker.config(1), {
        "model.variant": "causal", "model.backbone": "readout", "model.n_filters": 2, "model.n_times": 256,
        "model.readout_seconds": 1.0, "model.readout_step": 0.1, "model.readout_quadratic": True,
    })  # fmt: skip
    data = worker.make_data(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.n_chans, data.n_rois, data.sfreq)
    randomise_statistics(model)
    with torch.no_grad():
        model.readout.weight.normal_()
        model.square_weight.normal_()
        model.set_unmixing(0, 1, None)  # head 0, branch 1: unused
        model.bn_slow.running_var[1] = 1e-5  # a constant's running variance
    model.eval()
    fixed = branch_importance(model, data, cfg, importance_block(data.split, model.receptive_field - 1))
    assert np.isnan(fixed.solo_r[0, 1]) and np.isfinite(fixed.solo_r[0, 0])
    whole = branch_importance(model, data, cfg, importance_block(data.split))
    assert np.isfinite(whole.solo_r[0, 1])  # the transient alone gives the dead branch an r
