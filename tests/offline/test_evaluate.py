"""Pearson r, the offline read-out (tiling, read-out regions), look-ahead choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.models import BEIRA
from offline.metrics import (
    choose_lookahead,
    lookahead_grid,
    pearson_r,
    predict_offline,
    predict_span,
    readout_region,
    window_starts,
)
from offline.split import Block


class PositionProbe(torch.nn.Module):
    """Output 0: the sample's position inside its window; output 1: the input's channel 0 there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[-1], dtype=x.dtype).expand(x.shape[0], -1)
        return torch.stack([pos, x[:, 0]], dim=1)


def test_pearson_r_matches_numpy_and_flags_constant_rows():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 200)), rng.standard_normal((3, 200))
    b[1] = 2 * a[1] + 1
    b[2] = 5.0
    r = pearson_r(a, b)
    assert r[0] == pytest.approx(np.corrcoef(a[0], b[0])[0, 1])
    assert r[1] == pytest.approx(1.0)
    assert np.isnan(r[2])


@pytest.mark.parametrize(("variant", "region"), [("reference", (64, 192)), ("causal", (128, 256))])
def test_offline_readout_reads_each_sample_from_its_region(variant, region):
    n_times, n_eeg = 256, 3000
    assert readout_region(n_times, variant) == region
    eeg = np.random.default_rng(1).standard_normal((2, n_eeg)).astype(np.float32)
    pred = predict_offline(PositionProbe(), eeg, n_times, variant, batch_size=5)
    pos = pred[0]
    # the prediction at sample i is the model output at sample i (no misalignment)
    np.testing.assert_array_equal(pred[1], eeg[0])
    lo, hi = region
    interior = np.arange(n_eeg)
    interior = interior[(interior >= hi) & (interior < n_eeg - n_times)]
    assert np.all((pos[interior] >= lo) & (pos[interior] < hi))
    # near the ends the window is clamped inside the recording
    assert pos[0] == 0 and pos[-1] == n_times - 1
    starts = window_starts(np.arange(n_eeg), n_eeg, n_times, variant)
    assert starts.min() == 0 and starts.max() == n_eeg - n_times


def test_predicting_a_span_equals_slicing_the_whole_recording():
    torch.manual_seed(0)
    model = BEIRA(4, 2, 256, n_filters=2, channels=(4, 4, 4, 4), strides=(4, 4, 4), filter_size=9,
                  envelope_size=9, dropout=0.0)  # fmt: skip
    eeg = np.random.default_rng(2).standard_normal((4, 1500)).astype(np.float32)
    whole = predict_offline(model, eeg, 256, "reference")
    part = predict_span(model, eeg, 700, 1100, 256, "reference", batch_size=3)
    np.testing.assert_allclose(part, whole[:, 700:1100], rtol=1e-5, atol=1e-6)
    # and it is the model's own output on the window the sample is read from
    s = int(window_starts(np.array([900]), 1500, 256, "reference")[0])
    with torch.no_grad():
        direct = model.eval()(torch.from_numpy(eeg[None, :, s : s + 256]))[0, :, 900 - s].numpy()
    np.testing.assert_allclose(whole[:, 900], direct, rtol=1e-5, atol=1e-6)
    assert model.training is False


def test_predict_span_rejects_spans_outside_the_eeg():
    eeg = np.zeros((2, 500), dtype=np.float32)
    with pytest.raises(ValueError, match="not inside the EEG"):
        predict_span(PositionProbe(), eeg, 400, 600, 256, "reference")
    with pytest.raises(ValueError, match="fewer than one window"):
        predict_span(PositionProbe(), eeg[:, :100], 0, 50, 256, "reference")


def test_lookahead_grid_scores_every_lookahead_on_the_same_targets():
    block = Block("test", 1000, 1600)
    idx = lookahead_grid(block, n_eeg=1700, n_times=256, lookaheads_samples=[0, 50, 300], hop=10)
    assert idx[0] == 1000 and np.all(np.diff(idx) == 10)
    assert idx[-1] + 300 <= 1699  # the largest look-ahead still has its EEG
    assert idx[-1] == 1390


def test_choose_lookahead_takes_the_smallest_within_tolerance():
    r = {"0": 0.40, "0.5": 0.52, "1": 0.55, "2": 0.56, "3": 0.56}
    assert choose_lookahead(r, 0.02) == 1.0
    assert choose_lookahead(r, 0.0) == 2.0
    assert choose_lookahead(r, 1.0) == 0.0
    with pytest.raises(ValueError, match="no look-ahead"):
        choose_lookahead({"0": float("nan")}, 0.02)
