"""``beira-replay`` as a user runs it: exit codes, messages, the summary, SIGINT / SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beira_rt.cli.replay import main
from tests.conftest import cli_process
from tests.replay._recordings import make_raw, write_fif, write_set, write_volume_tsv

SCRIPT = Path(sys.executable).parent / "beira-replay"
ROIS = ("Left Pallidum", "Right Pallidum")
VOLUMES = tuple((1.0 + 2.0 * v, "mri") for v in range(4))


@pytest.fixture
def rec_set(tmp_path) -> Path:
    return write_set(tmp_path / "rec.set", make_raw(seconds=10.0, annotations=VOLUMES))


def _fail(argv, capsys) -> str:
    assert main(argv) == 1
    return capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    assert "does not exist" in _fail([str(tmp_path / "nope.set")], capsys)


def test_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "bad.set"
    bad.write_text("not EEGLAB")
    assert "could not read" in _fail([str(bad)], capsys)


def test_no_eeg_channels(tmp_path, capsys):
    path = write_fif(tmp_path / "misc_raw.fif", make_raw(ch_types=("misc", "ecg")))
    assert "has no EEG channels" in _fail([str(path)], capsys)


def test_unknown_volume_marker(tmp_path, rec_set, capsys):
    tsv = write_volume_tsv(tmp_path / "roi.tsv", ROIS, np.ones((4, 2)))
    err = _fail([str(rec_set), "--truth", str(tsv), "--volume-marker", "TR"], capsys)
    assert "no annotation named 'TR'" in err and "'mri'" in err


def test_truth_shorter_than_the_eeg(tmp_path, rec_set, capsys):
    tsv = write_volume_tsv(tmp_path / "roi.tsv", ROIS, np.ones((3, 2)))
    assert "the truth series is shorter than the EEG" in _fail([str(rec_set), "--truth", str(tsv)], capsys)


def test_bad_start_and_duration(rec_set, capsys):
    assert "outside the recording" in _fail([str(rec_set), "--start", "11"], capsys)
    assert "--duration must be a positive number" in _fail([str(rec_set), "--duration", "-1"], capsys)


def test_bad_config_value_is_a_usage_error(rec_set, capsys):
    assert main([str(rec_set), "--speed", "0"]) == 2
    assert "replay.speed" in capsys.readouterr().err


def test_replays_to_the_end_and_prints_a_summary(tmp_path, rec_set):
    tsv = write_volume_tsv(tmp_path / "roi.tsv", ROIS, np.arange(8.0).reshape(4, 2))
    out = subprocess.run(
        [str(SCRIPT), str(rec_set), "--speed", "20", "--truth", str(tsv), "--start", "8", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "'beira-replay-truth' (sBOLDTruth)" in out.stdout
    assert "done: pushed 2000 samples (2.00 s of recording)" in out.stdout
    assert "1 complete pass(es), 0 markers, 200 truth samples" in out.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_with_a_summary(rec_set, stream_ids, sig):
    import pylsl

    name, sid = stream_ids
    args = ["--name", name, "--source-id", sid, "--loop", "--speed", "5", "--index-channel", "--wait-consumer", "30"]  # fmt: skip
    with cli_process(SCRIPT, rec_set, *args) as proc:
        found = pylsl.resolve_byprop("source_id", sid, 1, 30)
        assert found, "the replay stream did not appear"
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=30)
        index: list[float] = []
        while len(index) < 500:
            data, _ = inlet.pull_chunk(timeout=1.0)
            index.extend(row[-1] for row in data)
        inlet.close_stream()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"stopped by {sig.name}: pushed" in out
    np.testing.assert_array_equal(index, np.arange(len(index)))
    pushed = int(out.split("pushed ")[1].split(" samples")[0])
    assert pushed >= len(index)


def test_importing_the_replay_pulls_in_neither_the_trainer_nor_lsl():
    code = (
        "import sys, beira_rt.replay, beira_rt.cli.replay; "
        "print(sorted(m for m in ('offline', 'pylsl', 'mne', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
