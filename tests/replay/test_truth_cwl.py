"""The truth of a CWL subject folder (``beira-train truth`` -> TSV -> ``beira-replay --truth``).

The synthetic subject is written by the project's generator (EEGLAB .set, NIfTI, motion,
atlas); the truth must be exactly the loader's model-rate BOLD shifted by ``bold_delay`` --
the target the trainer fits -- and it must reach a consumer with the stamps of its EEG times.
The runtime never imports the trainer: the trainer writes the TSV, the replay reads it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beira_rt.config import BeiraConfig
from beira_rt.replay import load_recording, read_truth_tsv
from tests.conftest import cli_process

SCRIPT = Path(sys.executable).parent / "beira-replay"
TRAIN = Path(sys.executable).parent / "beira-train"


def truth_from_cwl(subject_dir, rec, cfg, atlas=None, atlas_labels=None, tsv=None):
    """The trainer writes the aligned truth TSV of the folder; the replay reads it for ``rec``."""
    from offline.truth import cwl_truth, write_truth_tsv

    tsv = tsv or Path(subject_dir).parent / f"{Path(subject_dir).name}-truth.tsv"
    write_truth_tsv(tsv, *cwl_truth(subject_dir, cfg, atlas, atlas_labels))
    return read_truth_tsv(tsv, rec, sfreq=cfg.preprocessing.sfreq, bold_delay=0.0, volume_marker="mri")


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
    assert truth.rois == cfg.data.rois and truth.sfreq == 100.0
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


def test_the_replay_refuses_a_folder_and_names_the_command(subject, capsys):
    from beira_rt.cli.replay import main

    assert main([str(subject.paths.eeg), "--truth", str(subject.data_dir / "trio1")]) == 1
    assert "beira-train truth" in capsys.readouterr().err


def test_cwl_truth_reports_a_missing_file(tmp_path):
    from offline.loader import DataError

    with pytest.raises(DataError, match="does not exist"):
        truth_from_cwl(tmp_path / "trio9", None, BeiraConfig())


@pytest.mark.slow
def test_cli_streams_the_cwl_truth(subject, loaded, stream_ids, drains, tmp_path):
    name, sid = stream_ids
    tsv = tmp_path / "truth.tsv"
    made = subprocess.run(
        [str(TRAIN), "truth", str(subject.data_dir / "trio1"), "--out", str(tsv),
         "--atlas", str(subject.atlas), "--atlas-labels", str(subject.atlas_labels)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "8 ROIs x 3000 rows at 100 Hz" in made.stdout
    args = ["--truth", tsv, "--name", name, "--source-id", sid, "--speed", "20", "--duration", "10", "--wait-consumer", "60"]  # fmt: skip
    with cli_process(SCRIPT, subject.paths.eeg, *args) as proc:
        truth = drains(f"{sid}-truth", 1000)
        eeg = drains(sid, 10000)
        truth.thread.join(60)
        eeg.thread.join(60)
        truth.close()  # inlets go before the outlets
        eeg.close()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "1000 truth samples" in out
    assert truth.labels() == list(BeiraConfig().data.rois)
    values, t_stamps = truth.arrays()
    shift = round(BeiraConfig().model.bold_delay * 100)  # the replay's default delay at 100 Hz
    np.testing.assert_allclose(values, loaded.bold.T[shift : shift + 1000], rtol=1e-6)
    _, stamps = eeg.arrays()
    np.testing.assert_allclose(t_stamps, stamps[::10], rtol=0, atol=1e-9)
