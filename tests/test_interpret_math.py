"""The pattern math of beira_rt.interpret on signals with a known answer (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from beira_rt.interpret import (
    BranchFilters,
    branch_filters,
    branch_patterns,
    cross_spectrum,
    envelope_descriptors,
    filter_response,
)
from beira_rt.models import BEIRA

SFREQ = 100.0


def _two_sources(n: int = 60_000, seed: int = 0):
    """Two narrow-band sources (10 Hz and 25 Hz) with overlapping patterns, plus sensor noise.

    Returns (data (8, n), pattern of the 10 Hz source, pattern of the 25 Hz source).
    """
    rng = np.random.default_rng(seed)
    a = np.array([1.0, 0.8, 0.5, 0.2, 0.0, -0.2, -0.4, -0.6])
    b = np.array([0.2, 1.0, 0.3, 0.6, -0.2, 0.1, -0.3, -0.6])
    sources = []
    for freq in (10.0, 25.0):
        sos = signal.butter(4, [freq - 1.0, freq + 1.0], btype="bandpass", fs=SFREQ, output="sos")
        s = signal.sosfiltfilt(sos, rng.standard_normal(n))
        sources.append(s / s.std())
    x = np.outer(a, sources[0]) + np.outer(b, sources[1]) + 0.1 * rng.standard_normal((a.size, n))
    return x, a, b


def _r(u, v) -> float:
    return abs(float(np.corrcoef(u, v)[0, 1]))


def test_cross_spectrum_sums_to_the_covariance():
    x, *_ = _two_sources(20_000)
    freqs, csd = cross_spectrum(x, SFREQ, nperseg=256)
    assert freqs[0] == 0.0 and freqs[-1] == pytest.approx(SFREQ / 2) and csd.shape == (129, 8, 8)
    cov = csd.sum(axis=0).real * (freqs[1] - freqs[0])
    np.testing.assert_allclose(cov, np.cov(x), rtol=0.05, atol=0.02)
    assert np.allclose(csd, csd.conj().transpose(0, 2, 1))  # Hermitian per frequency


def test_filter_response_of_a_windowed_sinusoid_peaks_at_its_frequency():
    taps = np.hanning(51) * np.cos(2 * np.pi * 17.0 * np.arange(51) / SFREQ)
    freqs = np.linspace(0, 50, 501)
    response = filter_response(taps[None, :], freqs, SFREQ)[0]
    assert freqs[response.argmax()] == pytest.approx(17.0, abs=0.2)
    assert response[freqs == 0.0][0] < 0.05 * response.max()


def test_haufe_pattern_recovers_the_source_where_the_weights_do_not():
    """A filter that extracts the 10 Hz source cancels the 25 Hz one: its weights look unlike the
    source's pattern, its pattern (covariance times weights) is the source's pattern."""
    x, a, b = _two_sources()
    # the exact unmixing row for source a (the least-squares inverse of the mixing)
    w = np.linalg.pinv(np.column_stack([a, b]))[0]
    filters = BranchFilters(
        unmix=w[None, None, :], band_pass=np.array([[[1.0]]]), envelope=np.ones((1, 1, 5)) / 5, sfreq=SFREQ
    )
    pats = branch_patterns(filters, *cross_spectrum(x, SFREQ))
    assert _r(pats.pattern[0, 0], a) > 0.99
    assert _r(pats.weights[0, 0], a) < 0.9
    # the branch's unmixed signal is the 10 Hz source: the spectral pattern peaks there
    assert pats.peak_hz[0, 0] == pytest.approx(10.0, abs=0.5)
    assert pats.pattern.shape == pats.weights.shape == (1, 1, 8)
    assert np.abs(pats.pattern).max() == pytest.approx(1.0)


def test_band_pass_decides_which_source_the_branch_sees():
    """Same spatial weights, two band-passes: the covariance as each branch sees it (its band) gives
    the pattern of the source in that band."""
    x, a, b = _two_sources()
    w = np.ones(8) / 8 + 0.1
    taps = [signal.firwin(51, [f - 2.0, f + 2.0], pass_zero=False, fs=SFREQ) for f in (10.0, 25.0)]
    filters = BranchFilters(
        unmix=np.stack([w, w])[None], band_pass=np.stack(taps)[None], envelope=np.ones((1, 2, 5)), sfreq=SFREQ
    )
    pats = branch_patterns(filters, *cross_spectrum(x, SFREQ))
    assert _r(pats.pattern[0, 0], a) > 0.98 and _r(pats.pattern[0, 1], b) > 0.98
    assert pats.peak_hz[0, 0] == pytest.approx(10.0, abs=1.0)
    assert pats.peak_hz[0, 1] == pytest.approx(25.0, abs=1.0)
    assert pats.band_peak_hz[0, 1] == pytest.approx(25.0, abs=2.0)
    # channel scale: a pattern in microvolts is the normalised-space pattern times the channel std
    scaled = branch_patterns(filters, *cross_spectrum(x, SFREQ), norm_std=np.full(8, 3.0))
    np.testing.assert_allclose(scaled.pattern, pats.pattern, atol=1e-12)


def test_envelope_descriptors_of_a_moving_average():
    taps = np.ones((1, 20)) / 20  # 0.2 s boxcar at 100 Hz: half power near 0.443 * 100 / 20 = 2.2 Hz
    freqs = np.linspace(0, 50, 1001)
    env = envelope_descriptors(taps, freqs, SFREQ)
    assert env["cutoff_hz"][0] == pytest.approx(2.2, abs=0.1)
    assert env["time_scale_s"][0] == pytest.approx(np.std(np.arange(20) / SFREQ), rel=1e-6)
    assert env["response"].shape == (1, freqs.size)


def test_branch_filters_reads_every_head_and_branch_of_the_model():
    torch.manual_seed(0)
    model = BEIRA(6, 3, 256, n_filters=4, filter_size=25, envelope_size=15, channels=(8, 8, 8, 8),
                  kernel_sizes=(3, 3, 3), strides=(4, 4, 4), decoder_reduce=2)  # fmt: skip
    f = branch_filters(model)
    assert f.unmix.shape == (3, 4, 6) and f.band_pass.shape == (3, 4, 25) and f.envelope.shape == (3, 4, 15)
    block = model.interpretable
    # head 2, branch 1 is fused channel 2 * 4 + 1
    np.testing.assert_allclose(f.unmix[2, 1], block.unmix.weight[9, :, 0].detach().numpy())
    np.testing.assert_allclose(f.band_pass[2, 1], block.band_pass.weight[9, 0].detach().numpy())
    np.testing.assert_allclose(f.envelope[2, 1], block.envelope.weight[9, 0].detach().numpy())
    assert f.n_heads == 3 and f.n_filters == 4 and f.sfreq == 100.0


def test_lobe_centre_is_the_band_centre_where_the_argmax_is_decided_by_a_tilt():
    from beira_rt.interpret import lobe_centre

    freqs = np.arange(0.0, 50.0, 0.1)
    band = ((freqs >= 26.0) & (freqs <= 32.0)).astype(float)  # a flat band centred at 29 Hz
    tilted = band * (1.0 + 0.05 * (32.0 - freqs) / 6.0) + 0.02 / (1.0 + freqs)  # 1/f floor, falling tilt
    spectra = np.stack([tilted, np.roll(band, -100)])  # the second: the band at 19 Hz
    assert freqs[tilted.argmax()] == 26.0  # the peak sits on the band's lower edge
    np.testing.assert_allclose(lobe_centre(spectra, freqs), [28.95, 18.95], atol=0.1)
    # a second lobe below half the maximum does not pull the centre
    two = band + 0.4 * ((freqs >= 8.0) & (freqs <= 12.0))
    np.testing.assert_allclose(lobe_centre(two, freqs), 29.0, atol=0.05)
