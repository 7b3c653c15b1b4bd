"""Small BEIRA settings that exercise every block quickly, the models and windows the model
tests share (and one thread for torch)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from beira_rt.models import BEIRA, BEIRAHead
from tests._bundles import randomise_statistics

#: All blocks, three pooling levels (total stride 16), a few milliseconds per forward pass.
SMALL = dict(
    n_filters=3,
    filter_size=7,
    envelope_size=6,  # even: 'same' padding is asymmetric
    channels=(8, 8, 12, 16),
    kernel_sizes=(3, 5, 3),
    strides=(2, 4, 2),
    decoder_reduce=2,
    dropout=0.3,
)
N_CHANS, N_OUTPUTS, N_TIMES = 5, 3, 128


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every model test runs with one torch thread (tests/conftest.py)."""


def small_model(seed: int = 0, causal: bool = False, *, head: bool = False, **over: Any) -> BEIRA | BEIRAHead:
    """A fresh model of the :data:`SMALL` settings (``over`` replaces some), weights drawn after
    ``torch.manual_seed(seed)``: the fused model of ``N_OUTPUTS`` heads, or with ``head`` one
    separate head. ``n_times`` among ``over`` replaces the window (:data:`N_TIMES`)."""
    torch.manual_seed(seed)
    n_times = over.pop("n_times", N_TIMES)
    options = {**SMALL, **over, "causal": causal}
    if head:
        return BEIRAHead(N_CHANS, n_times, **options)
    return BEIRA(N_CHANS, N_OUTPUTS, n_times, **options)


def eval_model(
    seed: int = 0, causal: bool = False, *, head: bool = False, stats_seed: int = 0, **over: Any
) -> BEIRA | BEIRAHead:
    """:func:`small_model` with random batch-norm statistics and layer-norm affines
    (:func:`randomise_statistics` with ``stats_seed``), in eval mode."""
    model = small_model(seed, causal, head=head, **over)
    randomise_statistics(model, seed=stats_seed)
    return model.eval()


def paper_model(causal: bool = False) -> BEIRA:
    """The paper-sized model (30 channels, 8 heads, 2048 samples), seed 0, random statistics, eval mode."""
    torch.manual_seed(0)
    model = BEIRA(30, 8, 2048, causal=causal)
    randomise_statistics(model)
    return model.eval()


def window(batch: int = 2, seed: int = 1, n_times: int = N_TIMES, n_chans: int = N_CHANS) -> torch.Tensor:
    """Random EEG windows of shape (batch, n_chans, n_times), fixed by ``seed``."""
    return torch.randn(batch, n_chans, n_times, generator=torch.Generator().manual_seed(seed))
