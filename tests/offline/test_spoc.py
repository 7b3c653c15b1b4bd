"""SPoC initialisation (offline/spoc.py): finds a planted source's band and spatial pattern from
the BOLD-like target it drives, among louder sources that drive nothing."""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch

from offline.baseline import canonical_hrf
from offline.split import Block
from offline.spoc import apply_spoc, spoc_branches

SFREQ = 100.0


def _slow(rng, n, cutoff=0.1):
    sos = scipy.signal.butter(2, cutoff, fs=SFREQ, output="sos")
    x = scipy.signal.sosfiltfilt(sos, rng.standard_normal(n))
    return x / x.std()


def _oscillation(rng, n, freq):
    sos = scipy.signal.butter(4, (freq - 1.0, freq + 1.0), btype="bandpass", fs=SFREQ, output="sos")
    x = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    return x / x.std()


def _recording(seed=0, n_chans=12, seconds=240.0, freq=20.0, sign=1.0):
    """EEG of 3 sources (10 Hz and 6 Hz louder, ``freq`` Hz drives the target) + sensor noise;
    the target is the driving source's amplitude convolved with an HRF (BOLD 2 s after the EEG)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SFREQ)
    patterns = rng.standard_normal((3, n_chans))
    amps = np.exp(0.6 * np.stack([_slow(rng, n) for _ in range(3)]))
    sources = (
        np.stack([_oscillation(rng, n, f) for f in (freq, 10.0, 6.0)])
        * amps
        * np.array([[1.0], [2.0], [2.0]])
    )
    eeg = patterns.T @ sources + 0.5 * rng.standard_normal((n_chans, n))
    hrf = canonical_hrf(SFREQ)[0]
    bold = np.convolve(sign * amps[0], hrf)[:n]
    d = int(2.0 * SFREQ)
    target = np.full((1, n), np.nan)
    target[0, : n - d] = bold[d:]
    target[0] += 0.3 * bold.std() * rng.standard_normal(n)
    target = (target - np.nanmean(target)) / np.nanstd(target)
    return eeg, target, patterns[0], n - d


def test_spoc_recovers_the_driving_source_band_and_pattern():
    for sign in (1.0, -1.0):
        eeg, target, pattern, n_valid = _recording(sign=sign)
        cands = spoc_branches([(eeg, target, Block("train", 0, n_valid))], SFREQ, 2.0)[0]
        best = cands[0]
        assert 20.0 / 1.3 < best.freq < 20.0 * 1.3
        assert np.sign(best.score) == best.sign == sign  # the co-modulation keeps the sign of the drive
        assert [c.strength for c in cands] == sorted((c.strength for c in cands), reverse=True)
        # the filter's activation pattern (Haufe et al. 2014) is the planted pattern
        sos = scipy.signal.butter(
            4, (best.freq / 1.3, best.freq * 1.3), btype="bandpass", fs=SFREQ, output="sos"
        )
        cov = np.cov(scipy.signal.sosfiltfilt(sos, eeg, axis=1))
        a = cov @ best.filter
        assert abs(a @ pattern) / (np.linalg.norm(a) * np.linalg.norm(pattern)) > 0.95
        # the bands of the louder sources (6 and 10 Hz) that drive nothing score lower (what they
        # reach is fitted noise); the bands next to 20 Hz see the driving source too
        assert max(abs(c.score) for c in cands if c.freq < 12.0) < 0.75 * abs(best.score)


def test_apply_spoc_sets_unmixing_and_band():
    from beira_rt.models import BEIRAReadout

    eeg, target, _, n_valid = _recording(seed=1)
    branches = spoc_branches([(eeg, np.vstack([target, target]), Block("train", 0, n_valid))], SFREQ, 2.0)
    model = BEIRAReadout(eeg.shape[0], 2, 2048, SFREQ, n_filters=2)
    apply_spoc(model, branches)
    w = model.interpretable.unmix.weight.detach().reshape(4, -1).numpy()
    np.testing.assert_allclose(w[0], branches[0][0].filter / np.linalg.norm(branches[0][0].filter), rtol=1e-5)
    np.testing.assert_allclose(w[3], branches[1][1].filter / np.linalg.norm(branches[1][1].filter), rtol=1e-5)
    band = model.interpretable.band_pass.weight.detach().reshape(4, -1).numpy()
    peak = np.fft.rfftfreq(4096, 1 / SFREQ)[np.argmax(np.abs(np.fft.rfft(band[0], 4096)))]
    assert abs(peak - branches[0][0].freq) < 1.0
    assert torch.all(model.interpretable.unmix.bias == 0)


def test_spoc_fmin_sets_the_lowest_band_and_finds_a_delta_source():
    import pytest

    eeg, target, _, n_valid = _recording(seed=0, freq=1.5)  # the driver at 0.5-2.5 Hz
    block = Block("train", 0, n_valid)
    cands = spoc_branches([(eeg, target, block)], SFREQ, 2.0, fmin=1.5, n_bands=18)[0]
    assert min(c.freq for c in cands) == pytest.approx(1.5)
    assert cands[0].freq < 3.0  # a band below the default lowest centre takes it
    default = spoc_branches([(eeg, target, block)], SFREQ, 2.0)[0]
    assert min(c.freq for c in default) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="spoc_fmin"):
        spoc_branches([(eeg, target, block)], SFREQ, 2.0, fmin=40.0)


def test_spoc_components_fits_the_filters_in_the_leading_principal_subspace():
    """With ``components`` the filters are combinations of that many leading principal directions of
    the fitting block's EEG (nothing outside that subspace), and the planted source is still found."""
    import pytest

    eeg, target, _, n_valid = _recording(seed=1)
    block = Block("train", 0, n_valid)
    cands = spoc_branches([(eeg, target, block)], SFREQ, 2.0, components=4)[0]
    _, vecs = np.linalg.eigh(np.cov(eeg[:, :n_valid]))
    outside = vecs[:, :-4]  # the trailing directions
    for cand in cands[:6]:
        assert np.abs(outside.T @ cand.filter).max() < 1e-8 * np.abs(cand.filter).max()
    assert 20.0 / 1.3 < cands[0].freq < 20.0 * 1.3
    # as many components as channels, or more (the default on a recording of few channels): every channel
    every = spoc_branches([(eeg, target, block)], SFREQ, 2.0)[0]
    for many in (eeg.shape[0], eeg.shape[0] + 3):
        same = spoc_branches([(eeg, target, block)], SFREQ, 2.0, components=many)[0]
        assert [c.freq for c in same] == [c.freq for c in every]
        np.testing.assert_array_equal(same[0].filter, every[0].filter)
    with pytest.raises(ValueError, match="components must be"):
        spoc_branches([(eeg, target, block)], SFREQ, 2.0, components=0)
