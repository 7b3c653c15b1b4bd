"""Opening recordings for replay: files written by real writers, units, annotations, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.replay import ReplayError, load_recording
from tests.replay._recordings import CH_NAMES, make_raw, value_uv, write_brainvision, write_fif, write_set


@pytest.mark.parametrize("writer", [write_set, write_fif], ids=["eeglab-set", "fif"])
def test_channels_units_samples_and_markers_from_file(tmp_path, writer):
    path = writer(tmp_path / ("rec.set" if writer is write_set else "rec_raw.fif"), make_raw(seconds=2.0))
    rec = load_recording(path)
    assert rec.ch_names == CH_NAMES
    assert rec.sfreq == 1000.0 and rec.n_times == 2000
    assert set(rec.units) == {"microvolts"}
    # EEGLAB keeps no channel types: everything reads back as EEG; FIF keeps the EOG
    assert rec.ch_types[:4] == ("EEG",) * 4
    assert rec.ch_types[4] == ("EEG" if writer is write_set else "EOG")
    # volts in the file, microvolts out
    block = rec.read(0, rec.n_times)
    assert block.dtype == np.float32 and block.shape == (2000, 5)
    expected = np.stack([value_uv(np.arange(2000), c) for c in range(5)], axis=1)
    np.testing.assert_allclose(block, expected, atol=1e-3)
    # annotations at their nearest sample, in time order
    assert rec.marker_samples.tolist() == [250, 500, 1250]
    assert rec.marker_labels == ("mri", "R", "mri")
    np.testing.assert_allclose(rec.volume_onsets("mri"), [0.25, 1.25])
    np.testing.assert_allclose(rec.marker_times, [0.25, 0.5003, 1.25])


def test_brainvision_file_with_its_markers(tmp_path):
    rec = load_recording(write_brainvision(tmp_path / "rec.vhdr", make_raw(seconds=2.0)))
    assert rec.ch_names == CH_NAMES and set(rec.units) == {"microvolts"}
    np.testing.assert_array_equal(rec.read(0, 2000)[:, 2], value_uv(np.arange(2000), 2))
    assert rec.marker_samples.tolist() == [250, 500, 1250]
    assert rec.marker_labels == ("Stimulus/mri", "Stimulus/R", "Stimulus/mri")


def test_blocks_read_anywhere_match_the_whole(tmp_path, monkeypatch):
    import beira_rt.replay.recording as recording

    monkeypatch.setattr(recording, "PRELOAD_LIMIT_BYTES", 0)  # force block-by-block reading
    monkeypatch.setattr(recording, "BLOCK_SAMPLES", 300)
    rec = load_recording(write_fif(tmp_path / "rec_raw.fif", make_raw(seconds=2.0)))
    whole = np.stack([value_uv(np.arange(2000), c) for c in range(5)], axis=1)
    for start, stop in [(0, 10), (295, 305), (1990, 2000), (10, 10), (0, 2000), (700, 701)]:
        np.testing.assert_allclose(rec.read(start, stop), whole[start:stop], atol=1e-3)


def test_stim_channels_are_left_out():
    rec = load_recording(make_raw(ch_types=("eeg", "eeg", "stim")))
    assert rec.ch_names == ("Fp1", "Fz")


def test_non_volt_channels_keep_their_values():
    rec = load_recording(make_raw(ch_types=("eeg", "misc")))
    assert rec.units == ("microvolts", "none")
    assert rec.ch_types == ("EEG", "MISC")
    block = rec.read(0, 100)
    np.testing.assert_allclose(block[:, 1], value_uv(np.arange(100), 1) * 1e-6, rtol=1e-6)


def test_annotations_outside_the_data_are_dropped():
    raw = make_raw(seconds=1.0, annotations=((0.1, "a"),))
    raw.annotations.append(0.9, 0.5, "b")  # starts inside: kept
    rec = load_recording(raw)
    assert rec.marker_labels == ("a", "b")


def test_missing_file(tmp_path):
    with pytest.raises(ReplayError, match="does not exist"):
        load_recording(tmp_path / "nope.set")


def test_folder_is_not_a_recording(tmp_path):
    with pytest.raises(ReplayError, match="is a folder"):
        load_recording(tmp_path)


@pytest.mark.parametrize("suffix", [".set", "_raw.fif", ".edf", ".xyz"])
def test_unreadable_file(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"this is not a recording\n")
    with pytest.raises(ReplayError, match=r"could not read .*broken"):
        load_recording(path)


def test_no_eeg_channels(tmp_path):
    path = write_fif(tmp_path / "misc_raw.fif", make_raw(ch_types=("misc", "ecg")))
    with pytest.raises(ReplayError, match=r"no EEG channels \(channel types found: ecg, misc\)"):
        load_recording(path)


def test_unknown_volume_marker_lists_the_names():
    rec = load_recording(make_raw())
    with pytest.raises(ReplayError, match=r"no annotation named 'volume'.*'R', 'mri'"):
        rec.volume_onsets("volume")


def test_truncated_file_fails_when_read(tmp_path):
    path = write_fif(tmp_path / "rec_raw.fif", make_raw(seconds=2.0))
    rec = load_recording(path)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 3)
    with pytest.raises(ReplayError, match="could not read samples"):
        rec.read(0, 10)


@pytest.mark.parametrize("meas_date", [None, "2020-01-01"])
def test_annotations_of_a_cropped_fif_count_from_its_first_sample(tmp_path, meas_date):
    import datetime

    raw = make_raw(seconds=4.0, annotations=((1.0, "a"), (3.0, "b")))
    if meas_date is not None:
        raw.set_meas_date(datetime.datetime.fromisoformat(meas_date).replace(tzinfo=datetime.UTC))
    raw.crop(tmin=0.5)  # first_samp becomes 500
    rec = load_recording(write_fif(tmp_path / "cropped_raw.fif", raw))
    assert rec.raw.first_samp == 500
    assert rec.marker_samples.tolist() == [500, 2500]
    np.testing.assert_allclose(rec.marker_times, [0.5, 2.5])
    np.testing.assert_allclose(rec.read(500, 501)[0, 0], value_uv(1000, 0), atol=1e-3)
