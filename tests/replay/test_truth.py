"""The ROI truth: delay alignment on the model-rate grid, both TSV layouts, and bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from beira_rt.replay import ReplayError, TruthSeries, load_recording, read_truth_tsv
from tests.replay._recordings import make_raw, write_volume_tsv

ROIS = ("Left Putamen", "Right Putamen")
# five volumes, TR 2 s, the first at 1 s, in a 12 s recording at 1000 Hz
ONSETS = (1.0, 3.0, 5.0, 7.0, 9.0)


@pytest.fixture
def rec():
    raw = make_raw(seconds=12.0, annotations=(*((t, "mri") for t in ONSETS), (2.0, "R")))
    return load_recording(raw)


def _bold(n: int) -> np.ndarray:
    v = np.arange(n, dtype=np.float64)
    return np.stack([10.0 * v, 100.0 - v], axis=1)  # linear in the volume index


def _read(path, rec, delay=2.0, marker="mri"):
    return read_truth_tsv(path, rec, sfreq=100.0, bold_delay=delay, volume_marker=marker)


def test_volume_rows_are_delay_aligned_on_the_model_grid(tmp_path, rec):
    truth = _read(write_volume_tsv(tmp_path / "roi.tsv", ROIS, _bold(5)), rec)
    assert truth.rois == ROIS and truth.sfreq == 100.0 and truth.bold_delay == 2.0
    assert truth.values.shape == (1200, 2) and truth.values.dtype == np.float32
    t = np.arange(1200) / 100.0
    # volume v (onset 1 + 2 v) holds 10 v, so BOLD(s) = 5 (s - 1); the row for EEG time t is BOLD(t + 2)
    known = t + 2.0 <= ONSETS[-1]
    np.testing.assert_allclose(truth.values[known, 0], 5.0 * (t[known] + 1.0), rtol=1e-6)
    np.testing.assert_allclose(truth.values[known, 1], 100.0 - 0.5 * (t[known] + 1.0), rtol=1e-6)
    # after the last volume minus the delay nothing is known
    assert np.isnan(truth.values[~known]).all()
    assert known.sum() == 701  # t = 0 .. 7 s


def test_extra_volumes_use_the_first_ones_with_a_warning(tmp_path, rec, caplog):
    bold = _bold(7)
    with caplog.at_level(logging.WARNING, logger="beira_rt"):
        truth = _read(write_volume_tsv(tmp_path / "roi.tsv", ROIS, bold), rec)
    assert "has 7 volumes but the recording has 5 'mri' markers; using the first 5" in caplog.text
    np.testing.assert_allclose(truth.values[0], [5.0, 99.5])  # BOLD at 2 s: between volumes 0 and 1


def test_fewer_volumes_than_markers_is_an_error(tmp_path, rec):
    with pytest.raises(
        ReplayError, match="has 4 volumes but the recording has 5 'mri' markers: the truth series is shorter"
    ):
        _read(write_volume_tsv(tmp_path / "roi.tsv", ROIS, _bold(4)), rec)


def test_unknown_volume_marker(tmp_path, rec):
    with pytest.raises(ReplayError, match=r"no annotation named 'TR'.*--volume-marker"):
        _read(write_volume_tsv(tmp_path / "roi.tsv", ROIS, _bold(5)), rec, marker="TR")


def _write_timed(path, times, values):
    lines = ["time\t" + "\t".join(ROIS)]
    lines += [
        f"{float(t)!r}\t" + "\t".join(repr(float(x)) for x in row)
        for t, row in zip(times, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_time_column_is_taken_as_aligned(tmp_path, rec):
    times = np.arange(0.0, 12.01, 0.5)
    values = np.stack([times * 3.0, np.where(times < 6, np.nan, 1.0)], axis=1)
    truth = _read(_write_timed(tmp_path / "aligned.tsv", times, values), rec)
    assert truth.bold_delay == 0.0 and truth.values.shape == (1200, 2)
    t = np.arange(1200) / 100.0
    np.testing.assert_allclose(truth.values[:, 0], 3.0 * t, rtol=1e-6)
    assert np.isnan(truth.values[t < 6, 1]).all()


@pytest.mark.parametrize(("first", "last"), [(0.0, 10.0), (1.0, 12.0)])
def test_time_column_must_cover_the_eeg(tmp_path, rec, first, last):
    times = np.linspace(first, last, 50)
    path = _write_timed(tmp_path / "aligned.tsv", times, np.ones((50, 2)))
    with pytest.raises(
        ReplayError, match=r"covers EEG times .* but the EEG runs 0-11.990 s: the truth series is shorter"
    ):
        _read(path, rec)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "Left Putamen\tRight Putamen\n1\t2\n3\tx\n4\t5\n",
            r"line 3, column 'Right Putamen': 'x' is not a number",
        ),
        ("Left Putamen\tRight Putamen\n1\t2\n3\n4\t5\n", r"line 3: 1 values for 2 columns"),
        ("A\tA\n1\t2\n3\t4\n", "must name every column once"),
        ("A\tB\n1\t2\n", "at least two rows"),
        ("time\tA\n0\t1\n0\t2\n", "strictly increasing"),
    ],
)
def test_malformed_tsv(tmp_path, rec, text, words):
    path = tmp_path / "bad.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReplayError, match=words):
        _read(path, rec)


def test_missing_tsv(tmp_path, rec):
    with pytest.raises(ReplayError, match="does not exist"):
        _read(tmp_path / "none.tsv", rec)


def test_truth_shape_is_checked():
    with pytest.raises(ReplayError, match=r"shape \(n_times, 2\)"):
        TruthSeries(values=np.zeros((10, 3), np.float32), sfreq=100.0, rois=ROIS, bold_delay=6.0)
