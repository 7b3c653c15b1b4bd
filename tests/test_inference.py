"""Prediction at a look-ahead: the definition, the column choice, batching, and live parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.inference import WindowPredictor, lookahead_column, predict_at, predict_recording
from beira_rt.models.streaming import streams_exactly
from beira_rt.preprocessing import preprocess_recording

from ._bundles import CH_NAMES, SFREQ_IN, make_small_bundle

W = 128  # window of the small bundle


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _z(n: int = 900, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(len(CH_NAMES), n))


def _manual(bundle, z: np.ndarray, ends, la_samples: int) -> np.ndarray:
    """The contract spelled out: model(z[:, n-W+1 : n+1])[:, W-1-la], de-normalised."""
    model = bundle.build_model()
    rows = []
    with torch.no_grad():
        for n in ends:
            window = torch.as_tensor(z[:, n - W + 1 : n + 1], dtype=torch.float32)[None]
            rows.append(model(window)[0, :, W - 1 - la_samples].double().numpy())
    return np.array(rows) * bundle.target_std + bundle.target_mean


@pytest.mark.parametrize("variant", ["reference", "causal"])
@pytest.mark.parametrize("exact_windows", [True, False])
def test_predict_at_is_the_windowed_definition(variant, exact_windows):
    bundle = make_small_bundle(variant=variant)
    z = _z()
    ends = np.array([W - 1, 300, 899, 512, 513, 640, 777, 200])
    got = predict_at(bundle, z, ends, lookahead=0.3, exact_windows=exact_windows)
    assert got.shape == (len(ends), 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, _manual(bundle, z, ends, la_samples=30), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lookahead", [0.0, 0.07, 1.2])
def test_predict_at_streams_a_causal_model_once_with_the_same_numbers(lookahead):
    """A causal model whose read-out fits the window is streamed over z once (each sample
    computed once): the numbers are those of every window through the whole model."""
    bundle = make_small_bundle(seed=2, variant="causal", n_times=256)
    model = bundle.build_model()
    assert streams_exactly(model, round(lookahead * 100))
    z = _z()
    ends = np.array([899, 255, 256, 600, 257, 601, 700, 433])
    got = predict_at(bundle, z, ends, lookahead)
    ref = predict_at(bundle, z, ends, lookahead, exact_windows=True)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="window ends must lie in"):
        predict_at(bundle, z, np.array([100]), lookahead)


def test_lookahead_selects_the_column():
    bundle = make_small_bundle()
    z = _z()
    ends = np.array([400, 650])
    model = bundle.build_model()
    with torch.no_grad():
        full = torch.stack(
            [model(torch.as_tensor(z[:, n - W + 1 : n + 1], dtype=torch.float32)[None])[0] for n in ends]
        )
    full = full.double().numpy() * bundle.target_std[:, None] + bundle.target_mean[:, None]  # (2, rois, W)
    seen = []
    for lookahead, column in ((0.0, W - 1), (0.01, W - 2), (0.25, W - 26), (0.304, W - 31), (1.27, 0)):
        assert lookahead_column(W, 100.0, lookahead) == column
        got = predict_at(bundle, z, ends, lookahead)
        np.testing.assert_allclose(got, full[:, :, column], rtol=1e-5, atol=1e-6)
        seen.append(got)
    assert not np.allclose(seen[0], seen[2])
    with pytest.raises(
        ValueError, match=r"look-ahead 1.28 s must be >= 0 and shorter than the window \(1.28 s"
    ):
        predict_at(bundle, z, ends, 1.28)


def test_batching_does_not_change_predictions():
    bundle = make_small_bundle(variant="causal")
    z = _z()
    ends = np.arange(W - 1, 900, 7)
    ref = predict_at(bundle, z, ends, 0.1, batch_size=len(ends))
    for batch_size in (1, 3, 16):
        for exact in (True, False):
            got = predict_at(bundle, z, ends, 0.1, batch_size=batch_size, exact_windows=exact)
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_a_model_gives_raw_outputs_and_must_be_in_eval_mode():
    bundle = make_small_bundle()
    z = _z()
    ends = np.array([300, 500])
    model = bundle.build_model()
    raw = predict_at(model, z, ends, 0.0)
    np.testing.assert_allclose(
        raw * bundle.target_std + bundle.target_mean, predict_at(bundle, z, ends, 0.0), rtol=1e-6
    )
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        predict_at(model, z, ends, 0.0)


def test_bad_input_is_refused():
    bundle = make_small_bundle()
    z = _z(300)
    with pytest.raises(ValueError, match=r"ends must lie in \[127, 299\]"):
        predict_at(bundle, z, [300], 0.0)
    z[2, 150] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        predict_at(bundle, z, [299], 0.0)
    with pytest.raises(ValueError, match=r"z must have shape \(n_chans=5, n_samples\)"):
        predict_at(bundle, z[:4], [299], 0.0)


def test_predict_recording_equals_preprocessing_then_predict_at():
    bundle = make_small_bundle()
    eeg = 20.0 * np.random.default_rng(1).normal(size=(len(CH_NAMES), int(12 * SFREQ_IN)))
    ends, preds = predict_recording(bundle, eeg, SFREQ_IN, lookahead=0.5, hop=9)
    z = bundle.normalizer.apply(preprocess_recording(eeg, SFREQ_IN, bundle.config.preprocessing))
    np.testing.assert_array_equal(ends, np.arange(W - 1, z.shape[1], 9))
    np.testing.assert_allclose(
        preds, predict_at(bundle, z, ends, 0.5, exact_windows=True), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="hop must be a positive number"):
        predict_recording(bundle, eeg, SFREQ_IN, hop=0)


def test_live_loop_reproduces_predict_recording():
    """The engine's path in miniature: chunked causal preprocessing, a window buffer and
    WindowPredictor give the offline predictions (the parity contract)."""
    bundle = make_small_bundle(variant="causal")
    rng = np.random.default_rng(2)
    eeg = 20.0 * rng.normal(size=(len(CH_NAMES), int(8 * SFREQ_IN)))
    hop = 10
    ends, offline = predict_recording(bundle, eeg, SFREQ_IN, hop=hop)
    predictor = WindowPredictor(bundle, device="cpu")
    pre, norm = bundle.make_preprocessor(SFREQ_IN), bundle.normalizer
    z = np.zeros((len(CH_NAMES), 0))
    live, pos = [], 0
    while pos < eeg.shape[1]:
        step = int(rng.integers(1, 40))
        z = np.concatenate([z, norm.apply(pre.process(eeg[:, pos : pos + step]))], axis=1)
        pos += step
        while len(live) < len(ends) and ends[len(live)] < z.shape[1]:
            n = ends[len(live)]
            live.append(predictor.predict_numpy(z[:, n - W + 1 : n + 1]))
    np.testing.assert_allclose(np.array(live), offline, rtol=1e-5, atol=1e-6)


def test_window_predictor_matches_predict_at_and_checks_shapes():
    bundle = make_small_bundle()
    predictor = WindowPredictor(bundle, device="cpu", lookahead=0.1)
    z = _z()
    window = torch.as_tensor(z[:, 500 - W + 1 : 501], dtype=torch.float32)
    expected = predict_at(bundle, z, [500], 0.1)[0]
    np.testing.assert_allclose(predictor.predict(window), expected, rtol=1e-6)
    np.testing.assert_allclose(predictor.predict(window[None]), expected, rtol=1e-6)
    other = predictor.column_for(0.5)
    np.testing.assert_allclose(
        predictor.predict(window, column=other), predict_at(bundle, z, [500], 0.5)[0], rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"a window must have shape \(5, 128\)"):
        predictor.predict(window[:, :100])
