"""Delay alignment, the chronological split, training-block statistics and training windows."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.config import BeiraConfig, override
from offline.dataset import WindowSampler, prepare_data
from offline.split import Block, align_targets, chronological_split, delay_samples, valid_span

SFREQ = 100.0


def test_align_targets_shifts_by_the_delay():
    bold = np.arange(2 * 1000, dtype=float).reshape(2, 1000)
    d = delay_samples(6.0, SFREQ)
    assert d == 600
    y = align_targets(bold, n_eeg=1000, delay=d)
    assert y.shape == (2, 400)  # the last 600 EEG samples have no BOLD 6 s later
    np.testing.assert_array_equal(y[:, 0], bold[:, 600])
    np.testing.assert_array_equal(y[:, 123], bold[:, 723])
    # a short EEG limits the aligned length too
    assert align_targets(bold, n_eeg=100, delay=d).shape == (2, 100)


def test_align_targets_rejects_a_bold_shorter_than_the_delay():
    with pytest.raises(ValueError, match="no EEG sample has a BOLD target"):
        align_targets(np.zeros((1, 500)), n_eeg=1000, delay=600)


def test_valid_span_skips_undefined_edges_and_refuses_gaps():
    y = np.ones((2, 100))
    y[:, :7] = np.nan
    y[1, 90:] = np.nan
    assert valid_span(y) == (7, 90)
    y[0, 50] = np.nan
    with pytest.raises(ValueError, match="non-finite samples between"):
        valid_span(y)


def test_split_is_chronological_with_exact_block_lengths():
    split = chronological_split(30000, SFREQ, 60.0, 60.0, 2048, start=150)
    train, val, test = split.blocks()
    assert (train.start, train.stop) == (150, 18000)
    assert (val.start, val.stop) == (18000, 24000)
    assert (test.start, test.stop) == (24000, 30000)
    assert len(test) == 6000 and len(val) == 6000
    assert split.describe() == "train 1.5-180.0 s, val 180.0-240.0 s, test 240.0-300.0 s"


def test_split_too_short_for_a_training_window_names_the_options():
    with pytest.raises(ValueError, match=r"shorter than one window.*training.test_seconds"):
        chronological_split(12000 + 2000, SFREQ, 60.0, 60.0, 2048)


def _cfg():
    return override(BeiraConfig(), {
        "preprocessing.h_freq": 45.0, "model.n_times": 256, "model.strides": [4, 4, 4],
        "model.channels": [4, 4, 4, 4], "training.test_seconds": 20.0, "training.val_seconds": 20.0,
        "model.bold_delay": 6.0,
    })  # fmt: skip


def _recording(rng, n_chans=4, seconds=80.0, sfreq_in=250.0):
    n = int(seconds * sfreq_in)
    eeg = rng.standard_normal((n_chans, n)) * 1e-5
    n_model = int(seconds * SFREQ)
    bold = np.cumsum(rng.standard_normal((3, n_model)), axis=1) * 0.01
    bold[:, :250] = np.nan  # no volume before 2.5 s
    return eeg, bold


def test_statistics_come_from_the_training_block_only():
    rng = np.random.default_rng(0)
    eeg, bold = _recording(rng)
    cfg = _cfg()
    names, rois = ("a", "b", "c", "d"), ("r1", "r2", "r3")
    base = prepare_data(eeg, 250.0, bold, cfg, names, rois)
    # blow up everything after the training block: EEG scale and BOLD offset
    split = base.split
    assert split.train.start == 0  # 2.5 s of missing BOLD < the 6 s delay: every aligned sample has one
    eeg2, bold2 = eeg.copy(), bold.copy()
    t_eeg = int(split.train.stop / SFREQ * 250.0) + 500  # past the causal filters' memory
    eeg2[:, t_eeg:] *= 1000.0
    bold2[:, split.train.stop + 600 :] += 50.0
    other = prepare_data(eeg2, 250.0, bold2, cfg, names, rois)
    np.testing.assert_allclose(other.normalizer.mean, base.normalizer.mean, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(other.normalizer.std, base.normalizer.std, rtol=1e-6)
    np.testing.assert_allclose(other.target_mean, base.target_mean)
    np.testing.assert_allclose(other.target_std, base.target_std)
    # training block z-scored, the target is the BOLD 6 s later
    tr = split.train.slice
    np.testing.assert_allclose(base.eeg[:, tr].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(base.eeg[:, tr].std(axis=1), 1, atol=1e-4)
    np.testing.assert_allclose(base.target_raw[:, 10], bold[:, 610])


def test_window_sampler_stays_inside_its_block_and_is_seeded():
    rng = np.random.default_rng(1)
    eeg = rng.standard_normal((3, 1000)).astype(np.float32)
    target = rng.standard_normal((2, 900)).astype(np.float32)
    block = Block("train", 100, 500)
    sampler = WindowSampler(eeg, target, block, 64, np.random.default_rng(5))
    starts = np.concatenate([sampler.starts(256) for _ in range(20)])
    assert starts.min() == 100 and starts.max() == 500 - 64  # both ends reachable, never beyond
    x, y = sampler.windows(np.array([100, 436, 250]))
    assert x.shape == (3, 3, 64) and y.shape == (3, 2, 64)
    np.testing.assert_array_equal(x[1].numpy(), eeg[:, 436:500])
    np.testing.assert_array_equal(y[2].numpy(), target[:, 250:314])
    with pytest.raises(ValueError, match="outside the train block"):
        sampler.windows(np.array([437]))
    a = WindowSampler(eeg, target, block, 64, np.random.default_rng(7)).batch(4)
    b = WindowSampler(eeg, target, block, 64, np.random.default_rng(7)).batch(4)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())


def test_window_sampler_rejects_a_block_shorter_than_a_window():
    with pytest.raises(ValueError, match="fewer than one window"):
        WindowSampler(
            np.zeros((1, 100)), np.zeros((1, 100)), Block("train", 0, 50), 64, np.random.default_rng(0)
        )
