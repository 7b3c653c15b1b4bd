"""Normalizer: per-channel z-scoring with training-block statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beira_rt.preprocessing import Normalizer


def block(seed=0, n_channels=5, n=2000):
    rng = np.random.default_rng(seed)
    return rng.normal(
        rng.uniform(-3, 3, (n_channels, 1)), rng.uniform(0.5, 20, (n_channels, 1)), (n_channels, n)
    )


def test_fit_apply_gives_zero_mean_unit_std():
    y = block()
    z = Normalizer.fit(y).apply(y)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1, rtol=1e-12)


def test_statistics_come_from_the_fitted_block_only():
    train, other = block(1), block(2) * 3 + 7
    norm = Normalizer.fit(train)
    np.testing.assert_allclose(norm.apply(other), (other - train.mean(1)[:, None]) / train.std(1)[:, None])


def test_dict_round_trip_through_json():
    norm = Normalizer.fit(block(3))
    data = json.loads(json.dumps(norm.to_dict()))
    assert set(data) == {"mean", "std"} and all(isinstance(v, float) for v in data["mean"])
    again = Normalizer.from_dict(data)
    np.testing.assert_array_equal(again.mean, norm.mean)
    np.testing.assert_array_equal(again.std, norm.std)
    y = block(4)
    np.testing.assert_array_equal(again.apply(y), norm.apply(y))


def test_flat_channel_is_named():
    y = block(5)
    y[3] = 2.5
    with pytest.raises(ValueError, match=r"Channel indices \[3\] are flat"):
        Normalizer.fit(y)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: Normalizer.fit(np.zeros(10)), r"shape \(n_channels, n_samples\)"),
        (lambda: Normalizer.fit(np.full((2, 1), 1.0)), "at least 2 samples"),
        (
            lambda: Normalizer.fit(np.array([[1.0, 2.0], [np.nan, 1.0]])),
            r"non-finite values in channel indices \[1\]",
        ),
        (lambda: Normalizer([0.0, 0.0], [1.0]), "2 means and 1 standard deviations"),
        (lambda: Normalizer([0.0, 0.0], [1.0, 0.0]), r"channel indices \[1\] have std <= 0"),
        (
            lambda: Normalizer([0.0, np.inf], [1.0, 1.0]),
            r"mean has non-finite values at channel indices \[1\]",
        ),
        (lambda: Normalizer(["a"], [1.0]), "list of numbers"),
        (lambda: Normalizer.from_dict({"mean": [0.0]}), "keys 'mean' and 'std', got \\['mean'\\]"),
        (lambda: Normalizer([0.0, 0.0], [1.0, 1.0]).apply(np.zeros((3, 4))), r"shape \(2, n_samples\)"),
    ],
)
def test_bad_inputs_are_named(call, words):
    with pytest.raises(ValueError, match=words):
        call()
