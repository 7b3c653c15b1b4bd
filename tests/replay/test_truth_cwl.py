"""The truth of a CWL subject folder, through the trainer's loader, on a synthetic subject.

The synthetic subject is written by the project's generator (EEGLAB .set, NIfTI, motion,
atlas); the truth must be exactly the loader's model-rate BOLD shifted by ``bold_delay`` --
the target the trainer fits -- and it must reach a consumer with the stamps of its EEG times.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beira_rt.config import BeiraConfig
from beira_rt.replay import ReplayError, load_recording, read_truth_tsv, truth_from_cwl

SCRIPT = Path(sys.executable).parent / "beira-replay"


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    from offline.synthetic.writer import make_synthetic_subject

    return make_synthetic_subject(tmp_path_factory.mktemp("cwl"), "trio1", duration=30.0, seed=3)


@pytest.fixture(scope="module")
def loaded(subject):
    from offline.loader import load_cwl_subject

    return load_cwl_subject(
        subject.data_dir, "trio1", BeiraConfig().data, subject.atlas, subject.atlas_labels
    )


def test_cwl_truth_is_the_loaders_bold_shifted_by_the_delay(subject, loaded):
    cfg = BeiraConfig()
    rec = load_recording(subject.paths.eeg)
    truth = truth_from_cwl(subject.data_dir / "trio1", rec, cfg, subject.atlas, subject.atlas_labels)
    delay = cfg.model.bold_delay
    assert truth.rois == cfg.data.rois and truth.sfreq == 100.0 and truth.bold_delay == delay
    assert truth.values.shape == (3000, 8)
    shift = round(delay * 100)  # the delay at 100 Hz
    np.testing.assert_allclose(truth.values[: 3000 - shift], loaded.bold.T[shift:], rtol=1e-6, equal_nan=True)
    assert np.isnan(truth.values[3000 - shift :]).all()  # no BOLD `delay` s after the end of the EEG
    # the first volume is 1-3 s in: with the delay, the truth is known from the start
    assert np.isfinite(truth.values[0]).all()


def test_a_volume_tsv_gives_the_same_truth_as_the_loader(subject, loaded, tmp_path):
    from tests.replay._recordings import write_volume_tsv

    cfg = BeiraConfig()
    rec = load_recording(subject.paths.eeg)
    tsv = write_volume_tsv(tmp_path / "roi.tsv", cfg.data.rois, loaded.roi_series.T)
    from_tsv = read_truth_tsv(tsv, rec, sfreq=100.0, bold_delay=cfg.model.bold_delay, volume_marker="mri")
    from_cwl = truth_from_cwl(subject.data_dir / "trio1", rec, cfg, subject.atlas, subject.atlas_labels)
    np.testing.assert_allclose(from_tsv.values, from_cwl.values, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_cwl_truth_refuses_another_recording(subject):
    from tests.replay._recordings import make_raw

    other = load_recording(make_raw(seconds=5.0))
    with pytest.raises(ReplayError, match=r"has 30000 samples at 1000 Hz but <in-memory Raw> has 5000"):
        truth_from_cwl(subject.data_dir / "trio1", other, BeiraConfig(), subject.atlas, subject.atlas_labels)


def test_cwl_truth_reports_a_missing_file(tmp_path):
    from tests.replay._recordings import make_raw

    with pytest.raises(
        ReplayError, match=r"could not read the truth from the CWL subject folder .*does not exist"
    ):
        truth_from_cwl(tmp_path / "trio9", load_recording(make_raw()), BeiraConfig())


@pytest.mark.slow
def test_cli_streams_the_cwl_truth(subject, loaded, stream_ids, drains):
    name, sid = stream_ids
    proc = subprocess.Popen(
        [str(SCRIPT), str(subject.paths.eeg), "--truth", str(subject.data_dir / "trio1"),
         "--atlas", str(subject.atlas), "--atlas-labels", str(subject.atlas_labels),
         "--name", name, "--source-id", sid, "--speed", "20", "--duration", "10", "--wait-consumer", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        truth = drains(f"{sid}-truth", 1000)
        eeg = drains(sid, 10000)
        truth.thread.join(60)
        eeg.thread.join(60)
        truth.close()  # inlets go before the outlets
        eeg.close()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "1000 truth samples" in out
    assert truth.labels() == list(BeiraConfig().data.rois)
    values, t_stamps = truth.arrays()
    shift = round(BeiraConfig().model.bold_delay * 100)  # the replay's default delay at 100 Hz
    np.testing.assert_allclose(values, loaded.bold.T[shift : shift + 1000], rtol=1e-6)
    _, stamps = eeg.arrays()
    np.testing.assert_allclose(t_stamps, stamps[::10], rtol=0, atol=1e-9)
