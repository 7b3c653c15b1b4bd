"""Linear-interpolation resampling at exact rational positions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from beira_rt.preprocessing import LinearResampler, n_outputs, rational_ratio

from ._signals import random_chunks


@pytest.mark.parametrize(
    ("sfreq_in", "sfreq", "expected"),
    [
        (1000.0, 100.0, Fraction(10)),
        (250.0, 100.0, Fraction(5, 2)),
        (512.0, 100.0, Fraction(128, 25)),
        (499.9, 100.0, Fraction(4999, 1000)),
        (1000 / 3, 100.0, Fraction(10, 3)),
        (44100, 100.0, Fraction(441)),
        (100.0, 100.0, Fraction(1)),
    ],
)
def test_rational_ratio(sfreq_in, sfreq, expected):
    assert rational_ratio(sfreq_in, sfreq) == expected


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "250"])
def test_rational_ratio_rejects_bad_rates(bad):
    with pytest.raises(ValueError, match="sampling rate must be"):
        rational_ratio(bad, 100.0)


@pytest.mark.parametrize(
    "ratio", [Fraction(1), Fraction(10), Fraction(5, 2), Fraction(128, 25), Fraction(4999, 1000)]
)
def test_ramp_lands_exactly_at_k_times_ratio(ratio):
    # linear interpolation is exact on a ramp: output k must read k * ratio
    n = 5000
    ramp = np.vstack([np.arange(n, dtype=float), -2.0 * np.arange(n)])
    res = LinearResampler(ratio, 2)
    outs, start = [], 0
    for size in random_chunks(n, seed=int(ratio * 7), max_chunk=40):
        outs.append(res.process(ramp[:, start : start + size]))
        start += size
    y = np.concatenate(outs, axis=1)
    k = np.arange(y.shape[1])
    assert y.shape[1] == n_outputs(n, ratio) == res.n_out
    positions = np.array([float(p) for p in (k * ratio for k in range(y.shape[1]))])
    np.testing.assert_allclose(y[0], positions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y[1], -2.0 * positions, rtol=0, atol=2e-9)
    assert res.input_position(int(k[-1])) == k[-1] * ratio


def test_no_drift_after_ten_hours():
    # 10 h at 499.9 Hz (18 million samples); then a ramp must still land at k * ratio exactly
    ratio = rational_ratio(499.9, 100.0)
    res = LinearResampler(ratio, 1)
    block = np.zeros((1, 1_000_000))
    n_hours = 10 * 3600 * 4999 // 10
    while res.n_in + block.shape[1] <= n_hours:
        res.process(block)
    res.process(np.zeros((1, n_hours - res.n_in)))
    assert res.n_in == n_hours and res.n_out == n_outputs(n_hours, ratio)
    first_k = res.n_out
    ramp = (res.n_in + np.arange(2000, dtype=float))[None, :]
    y = res.process(ramp)[0]
    expected = np.array([float((first_k + j) * ratio) for j in range(y.size)])
    # float accumulation of 4.999 over 3.6 million outputs would be off by far more than this
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-7)


def test_n_outputs():
    assert [n_outputs(n, Fraction(10)) for n in (0, 1, 10, 11, 12)] == [0, 1, 1, 2, 2]
    # ratio 5/2: output 1 sits at 2.5 and needs input 3 (n_in = 4); output 2 at 5 needs n_in = 6
    assert [n_outputs(n, Fraction(5, 2)) for n in (1, 3, 4, 5, 6)] == [1, 1, 2, 2, 3]


def test_bad_ratios_are_rejected():
    with pytest.raises(ValueError, match="downsampling only"):
        LinearResampler(Fraction(1, 2), 1)
    with pytest.raises(ValueError, match="Fraction >= 1"):
        LinearResampler(2.5, 1)
    with pytest.raises(ValueError, match=r"\(3, n\), got shape \(2, 10\)"):
        LinearResampler(Fraction(5, 2), 3).process(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="denominator above"):
        LinearResampler(Fraction(10_000_001, 10_000_000), 1)
