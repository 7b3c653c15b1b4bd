"""Read-out (a) of a causal model in one pass against the tiled windows of predict_span."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.models.streaming import CausalStream
from offline.metrics import predict_causal_pass, predict_span, window_starts
from tests.models.conftest import N_CHANS, eval_model


@pytest.mark.usefixtures("one_torch_thread")
def test_one_pass_equals_the_windows_where_their_padding_is_out_of_reach():
    model = eval_model(0, causal=True, n_times=256)
    W, n_eeg = model.n_times, 1280  # n_eeg - W a multiple of W / 2: every window on the same pooling phase
    eeg = np.random.default_rng(0).standard_normal((N_CHANS, n_eeg)).astype(np.float32)
    start, stop = 100, n_eeg
    tiled = predict_span(model, eeg, start, stop, W, "causal")
    one = predict_causal_pass(model, eeg, start, stop)
    assert one.shape == tiled.shape == (3, stop - start)
    idx = np.arange(start, stop)
    column = idx - window_starts(idx, n_eeg, W, "causal")
    fits = np.array([CausalStream(model, W - 1 - c).exact for c in column])
    assert fits.any() and (~fits).any()
    np.testing.assert_allclose(one[:, fits], tiled[:, fits], rtol=0, atol=1e-5)
    assert np.abs(one[:, ~fits] - tiled[:, ~fits]).max() > 1e-4  # the windows' zero padding shows there
    with pytest.raises(ValueError, match="causal model"):
        predict_causal_pass(eval_model(0, n_times=256), eeg, start, stop)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(("causal", "la"), [(True, 0), (True, 9), (False, 0), (False, 9)])
def test_predict_live_every_sample_equals_the_windows(causal, la):
    """The live read-out over a recording, each sample once (a causal model streamed), equals each
    window through the whole model (predict_at's definition) to 1e-4; other models use the windows."""
    from beira_rt.inference import predict_at
    from offline.metrics import predict_live

    model = eval_model(0, causal=causal, n_times=256)
    eeg = np.random.default_rng(1).standard_normal((N_CHANS, 900)).astype(np.float32)
    idx, live, mode = predict_live(model, eeg, 0, eeg.shape[1], la, step=1)
    assert mode == ("streaming" if causal else "windows")
    np.testing.assert_array_equal(idx, np.arange(256 - 1 - la, eeg.shape[1] - la))
    default_idx = predict_live(model, eeg, 0, eeg.shape[1], la)[0]
    assert np.all(np.diff(default_idx) == (1 if causal else 10))  # windows: every 10th by default
    ref = predict_at(model, eeg, idx + la, la / model.sfreq, "cpu", 64, exact_windows=True)
    assert live.shape == (3, idx.size)
    np.testing.assert_allclose(live, ref.T, rtol=0, atol=1e-4)
