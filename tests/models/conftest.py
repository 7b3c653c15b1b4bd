"""Small BEIRA settings that exercise every block quickly (and one thread for torch)."""

from __future__ import annotations

import pytest

from tests._bundles import randomise_statistics  # noqa: F401  (used by the model tests)

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
