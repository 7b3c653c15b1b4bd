"""CausalPreprocessor: chunk invariance, causality, output positions, steady-state start, CAR, reset."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from beira_rt.config import PreprocessingConfig
from beira_rt.preprocessing import CausalPreprocessor, n_outputs, preprocess_recording
from beira_rt.preprocessing.causal import RECORDING_BLOCK

from ._signals import eeg_like, random_chunks

CFG = PreprocessingConfig()
RATES = [1000.0, 250.0, 5000.0, 512.0]


def run_chunked(pre: CausalPreprocessor, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    outs, start = [], 0
    for size in sizes:
        y = pre.process(x[:, start : start + size])
        assert y.shape[0] == x.shape[0]
        outs.append(y)
        start += size
    assert start == x.shape[1]
    return np.concatenate(outs, axis=1)


@pytest.mark.parametrize("sfreq_in", RATES)
def test_chunking_does_not_change_the_output(sfreq_in):
    x = eeg_like(8, int(6 * sfreq_in), sfreq_in, seed=1)
    whole = CausalPreprocessor(CFG, sfreq_in, 8).process(x)
    assert whole.shape == (8, n_outputs(x.shape[1], CausalPreprocessor(CFG, sfreq_in, 8).ratio))
    scale = np.abs(whole).max()
    assert scale > 1.0  # the comparison is not between empty or zero arrays
    for seed in (2, 3):
        sizes = random_chunks(x.shape[1], seed, max_chunk=int(sfreq_in / 5))
        assert 0 in sizes and 1 in sizes
        chunked = run_chunked(CausalPreprocessor(CFG, sfreq_in, 8), x, sizes)
        assert chunked.shape == whole.shape
        np.testing.assert_allclose(chunked, whole, rtol=1e-10, atol=1e-10 * scale)


def test_sample_by_sample_equals_whole():
    x = eeg_like(4, 1200, 512.0, seed=4)
    pre = CausalPreprocessor(CFG, 512.0, 4)
    chunked = run_chunked(pre, x, [1] * x.shape[1])
    whole = CausalPreprocessor(CFG, 512.0, 4).process(x)
    np.testing.assert_allclose(chunked, whole, rtol=1e-10, atol=1e-10 * np.abs(whole).max())
    assert (pre.n_in, pre.n_out) == (1200, whole.shape[1])


@pytest.mark.parametrize("sfreq_in", [1000.0, 512.0])
def test_future_samples_do_not_change_past_outputs(sfreq_in):
    x = eeg_like(6, int(4 * sfreq_in), sfreq_in, seed=5)
    ref = CausalPreprocessor(CFG, sfreq_in, 6).process(x)
    cut = int(2.5 * sfreq_in) + 3
    perturbed = x.copy()
    perturbed[:, cut:] += np.random.default_rng(6).normal(0, 500, size=perturbed[:, cut:].shape)
    out = CausalPreprocessor(CFG, sfreq_in, 6).process(perturbed)
    ratio = CausalPreprocessor(CFG, sfreq_in, 6).ratio
    # output k depends on inputs 0 .. ceil(k * ratio) only
    last_clean = max(k for k in range(ref.shape[1]) if math.ceil(k * ratio) < cut)
    np.testing.assert_array_equal(out[:, : last_clean + 1], ref[:, : last_clean + 1])
    assert np.all(np.abs(out[:, last_clean + 1] - ref[:, last_clean + 1]) > 0)


@pytest.mark.parametrize("sfreq_in", [250.0, 512.0, 1000.0, 5000.0])
def test_output_k_is_emitted_when_its_input_sample_arrives(sfreq_in):
    pre = CausalPreprocessor(CFG, sfreq_in, 2)
    ratio = pre.ratio
    assert ratio == pytest.approx(sfreq_in / CFG.sfreq, rel=1e-15)
    x = eeg_like(2, 300, sfreq_in, seed=7)
    for i in range(x.shape[1]):
        y = pre.process(x[:, i : i + 1])
        # after input sample i, every output k with ceil(k * ratio) <= i exists, and no other
        expected = math.floor(i / ratio) + 1
        assert pre.n_in == i + 1
        assert pre.n_out == expected == pre.n_out_after(i + 1)
        assert y.shape[1] == expected - n_outputs(i, ratio)


@pytest.mark.parametrize("sfreq_in", [512.0, 250.0, 1000.0])
def test_resampled_sinusoid_lands_at_the_right_phase(sfreq_in):
    # one channel, no CAR: output k must be H(f) applied to the sinusoid at time k / sfreq
    cfg = dataclasses.replace(CFG, car=False)
    freq, phase, amp = 7.0, 0.4, 50.0
    n = int(20 * sfreq_in)
    t_in = np.arange(n) / sfreq_in
    x = (amp * np.sin(2 * np.pi * freq * t_in + phase))[None, :]
    pre = CausalPreprocessor(cfg, sfreq_in, 1)
    y = pre.process(x)[0]
    gain = pre.design.frequency_response(np.array([freq]))[0]
    k = np.arange(y.size)
    expected = amp * np.abs(gain) * np.sin(2 * np.pi * freq * k / cfg.sfreq + phase + np.angle(gain))
    settled = slice(y.size - 300, y.size)  # the 1 Hz high-pass has settled after 17 s
    # linear interpolation error at 7 Hz is below (2 pi 7 / 250)^2 / 8 = 0.4 % (250 Hz input)
    tol = 0.005 if sfreq_in == 250.0 else 0.001
    np.testing.assert_allclose(y[settled], expected[settled], atol=tol * amp)
    # one input sample of timing error would be a phase error of 2 pi 7 / sfreq_in: far outside tol
    late = (
        amp
        * np.abs(gain)
        * np.sin(2 * np.pi * freq * (k / cfg.sfreq - 1 / sfreq_in) + phase + np.angle(gain))
    )
    assert np.abs(late[settled] - expected[settled]).max() > 5 * tol * amp


def test_dc_offset_gives_no_transient():
    # an amplifier DC offset (mV) from the first sample: steady state, no ringing
    offsets = np.array([[5000.0], [-3200.0], [150.0], [12000.0]])
    x = np.repeat(offsets, 2000, axis=1)
    y = CausalPreprocessor(CFG, 1000.0, 4).process(x)
    assert np.abs(y).max() < 1e-8 * 12000
    # without the high-pass the DC passes: the CAR'd offsets times the DC gain, from output 0
    cfg = dataclasses.replace(CFG, l_freq=None)
    pre = CausalPreprocessor(cfg, 1000.0, 4)
    y = pre.process(x)
    dc_gain = pre.design.frequency_response(np.array([0.0]))[0].real
    expected = dc_gain * (offsets - offsets.mean())
    np.testing.assert_allclose(y, np.broadcast_to(expected, y.shape), rtol=1e-9, atol=1e-9 * 12000)


def test_dc_offset_with_signal_starts_without_step():
    # steady-state init on the first sample: the first outputs are as small as the signal,
    # not a ringing step of the offset size
    x = eeg_like(8, 3000, 1000.0, seed=8)
    y = CausalPreprocessor(CFG, 1000.0, 8).process(x)
    assert np.abs(y[:, :10]).max() < 200  # offsets are up to 5000 µV
    assert np.abs(y).max() < 200


def test_common_average_reference_gives_zero_channel_mean():
    x = eeg_like(30, 3000, 1000.0, seed=9)
    y = CausalPreprocessor(CFG, 1000.0, 30).process(x)
    assert np.abs(y.mean(axis=0)).max() < 1e-12 * np.abs(y).max()
    no_car = CausalPreprocessor(dataclasses.replace(CFG, car=False), 1000.0, 30).process(x)
    assert np.abs(no_car.mean(axis=0)).max() > 1.0  # the common 50 Hz line and noise survive without CAR
    np.testing.assert_allclose(y, no_car - no_car.mean(axis=0), atol=1e-9 * np.abs(no_car).max())


def test_reset_forgets_everything():
    x = eeg_like(4, 4000, 1000.0, seed=10)
    pre = CausalPreprocessor(CFG, 1000.0, 4)
    pre.process(x[:, :1733])
    pre.reset()
    assert (pre.n_in, pre.n_out) == (0, 0)
    after = pre.process(x[:, 1733:])
    fresh = CausalPreprocessor(CFG, 1000.0, 4).process(x[:, 1733:])
    np.testing.assert_array_equal(after, fresh)
    assert (pre.n_in, pre.n_out) == (4000 - 1733, fresh.shape[1])


def test_input_is_not_modified_and_dtypes_are_accepted():
    x = eeg_like(3, 500, 1000.0, seed=11)
    kept = x.copy()
    y64 = CausalPreprocessor(CFG, 1000.0, 3).process(x)
    np.testing.assert_array_equal(x, kept)
    y32 = CausalPreprocessor(CFG, 1000.0, 3).process(x.astype(np.float32))
    yint = CausalPreprocessor(CFG, 1000.0, 3).process(np.round(x).astype(np.int32))
    assert y32.dtype == yint.dtype == np.float64
    np.testing.assert_allclose(y32, y64, atol=1e-3)
    np.testing.assert_allclose(yint, y64, atol=2.0)


def test_preprocess_recording_equals_the_live_preprocessor():
    n = RECORDING_BLOCK + 4321  # crosses an internal block boundary
    x = eeg_like(3, n, 1000.0, seed=12)
    whole = preprocess_recording(x, 1000.0, CFG)
    assert whole.shape == (3, math.floor((n - 1) / 10) + 1)
    live = run_chunked(CausalPreprocessor(CFG, 1000.0, 3), x, random_chunks(n, 13, 200))
    np.testing.assert_allclose(whole, live, rtol=1e-10, atol=1e-10 * np.abs(whole).max())


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (np.zeros(100), r"\(4, n\); got shape \(100,\)"),
        (np.zeros((3, 100)), r"\(4, n\); got shape \(3, 100\)"),
        (np.zeros((100, 4)), r"\(4, n\); got shape \(100, 4\)"),
        (np.zeros((4, 10), dtype=complex), "real numbers"),
        (np.array([["a"] * 3] * 4), "real numbers"),
    ],
)
def test_bad_chunks_are_named(x, words):
    pre = CausalPreprocessor(CFG, 1000.0, 4)
    with pytest.raises(ValueError, match=words):
        pre.process(x)
    assert (pre.n_in, pre.n_out) == (0, 0)


@pytest.mark.parametrize(
    ("sfreq_in", "n_channels", "words"),
    [
        (50.0, 4, "50 Hz is below the model rate 100 Hz"),
        (float("nan"), 4, "positive finite number in Hz, got nan"),
        (-250.0, 4, "got -250.0"),
        ("1000", 4, "must be a number in Hz, got str '1000'"),
        (1000.0, 0, "n_channels must be a positive integer, got 0"),
        (1000.0, 1, "at least 2 channels, got n_channels=1"),
    ],
)
def test_bad_construction_is_named(sfreq_in, n_channels, words):
    with pytest.raises(ValueError, match=words):
        CausalPreprocessor(CFG, sfreq_in, n_channels)


def test_single_channel_without_car_and_recording_shape_check():
    assert CausalPreprocessor(dataclasses.replace(CFG, car=False), 1000.0, 1).n_channels == 1
    with pytest.raises(ValueError, match=r"shape \(n_channels, n_samples\), got shape \(100,\)"):
        preprocess_recording(np.zeros(100), 1000.0, CFG)
