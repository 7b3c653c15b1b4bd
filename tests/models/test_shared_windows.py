"""Sharing the stem between overlapping windows gives the window-by-window numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.models import BEIRA
from beira_rt.models.shared_windows import shared_levels, window_columns

from .conftest import N_CHANS, N_OUTPUTS, N_TIMES, eval_model, paper_model


def _model(causal: bool, **over) -> BEIRA:
    return eval_model(0, causal, **over)


def _signal(n: int, n_chans: int = N_CHANS) -> torch.Tensor:
    return torch.randn(n_chans, n, generator=torch.Generator().manual_seed(11))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("column", [N_TIMES - 1, N_TIMES - 1 - 23, 5])
def test_shared_stem_equals_window_by_window(causal, column):
    model = _model(causal)
    z = _signal(1500)
    rng = np.random.default_rng(3)
    # unsorted, with duplicates, both extremes, spread over several stem chunks
    ends = np.concatenate([[N_TIMES - 1, 1499, 700, 700], rng.integers(N_TIMES - 1, 1500, size=40)])
    exact = window_columns(model, z, ends, column, share=False, batch_size=5)
    shared = window_columns(model, z, ends, column, share=True, batch_size=7, stem_span=2 * N_TIMES)
    torch.testing.assert_close(shared, exact, rtol=1e-5, atol=1e-6)
    # and the definition itself, spelled out for two windows
    with torch.no_grad():
        for k in (0, 4):
            n = int(ends[k])
            full = model(z[:, n - N_TIMES + 1 : n + 1].unsqueeze(0))[0, :, column]
            torch.testing.assert_close(exact[k], full, rtol=1e-6, atol=1e-7)


def test_shared_stem_with_large_margins_falls_back_to_windows():
    """Band-pass and envelope filters as long as the window: nothing to share, same numbers."""
    model = _model(False, filter_size=65, envelope_size=65)
    z = _signal(400)
    ends = np.arange(N_TIMES - 1, 400, 9)
    exact = window_columns(model, z, ends, N_TIMES - 1, share=False)
    torch.testing.assert_close(window_columns(model, z, ends, N_TIMES - 1), exact, rtol=1e-5, atol=1e-6)


def test_paper_sized_model_shared_stem():
    model = paper_model()
    z = _signal(2600, n_chans=30)
    ends = np.array([2047, 2057, 2300, 2599, 2123, 2050])
    for column in (2047, 2047 - 150):
        exact = window_columns(model, z, ends, column, share=False)
        shared = window_columns(model, z, ends, column, share=True)
        torch.testing.assert_close(shared, exact, rtol=1e-5, atol=1e-6)


def test_bad_requests_are_refused():
    model = _model(False)
    z = _signal(300)
    assert window_columns(model, z, np.zeros(0, dtype=int), 0).shape == (0, N_OUTPUTS)
    with pytest.raises(ValueError, match=r"ends must lie in \[127, 299\].*from 100 to 100"):
        window_columns(model, z, np.array([100]), 0)
    with pytest.raises(ValueError, match="integer sample indices"):
        window_columns(model, z, np.array([200.0]), 0)
    with pytest.raises(ValueError, match="column 128 is outside the window of 128 samples"):
        window_columns(model, z, np.array([200]), 128)
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        window_columns(model, z, np.array([200]), 0)


def test_shared_levels_of_the_paper_model():
    """Dirty pooled samples at each shared level: stem padding 53 | 53 (reference) or 106 | 0
    (causal) at stride 8, then the second level's kernel of 5 at stride 8."""
    assert shared_levels(BEIRA(30, 8, 2048)) == [(7, 7), (2, 2)]
    assert shared_levels(BEIRA(30, 8, 2048, causal=True)) == [(14, 0), (3, 0)]
    assert shared_levels(_model(False, filter_size=65, envelope_size=65)) == []
