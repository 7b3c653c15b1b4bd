"""Small BEIRA settings that exercise every block quickly (and one thread for torch)."""

from __future__ import annotations

import pytest
import torch

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
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def randomise_statistics(model: torch.nn.Module, seed: int = 0) -> None:
    """Give batch norms non-trivial running statistics and layer norms non-trivial affines,
    so that equality tests also cover them (fresh models have mean 0, var 1, weight 1, bias 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=gen))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
        for name, param in model.named_parameters():
            if ".norm." in name:
                param.copy_(torch.randn(param.shape, generator=gen))
