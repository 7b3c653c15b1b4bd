"""The fused layers against plain torch.nn, and the partial-evaluation helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from beira_rt.models.functional import upsample_column, upsample_time
from beira_rt.models.layers import HeadConv, HeadLayerNorm, layers_padding, run_layers

from .conftest import N_TIMES, eval_model, window

# nn.Conv1d(padding="same") warns about even kernels (one case here)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _cl(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, T) -> (batch, channels, 1, T) channels-last."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kernel_size", [1, 4, 5])
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_head_conv_is_conv1d_same_or_causal(kernel_size, groups):
    torch.manual_seed(0)
    conv = HeadConv(6, 12, kernel_size, groups=groups)
    causal = HeadConv(6, 12, kernel_size, groups=groups, causal=True)
    causal.load_state_dict(conv.state_dict())
    ref = nn.Conv1d(6, 12, kernel_size, groups=groups, padding="same")
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(3, 6, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(conv(_cl(x)).squeeze(2), ref(x))
        expected = F.conv1d(F.pad(x, (kernel_size - 1, 0)), ref.weight, ref.bias, groups=groups)
        torch.testing.assert_close(causal(_cl(x)).squeeze(2), expected)
    # autograd (CPU training) runs the groups one by one: same function, same gradients
    xg = x.clone().requires_grad_()
    conv(_cl(xg)).squeeze(2).pow(2).sum().backward()
    xr = x.clone().requires_grad_()
    ref(xr).pow(2).sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)


def test_head_layer_norm_is_layer_norm_per_head():
    norm = HeadLayerNorm(3, 4)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))
        norm.bias.copy_(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)))
    x = torch.randn(2, 12, 30, generator=torch.Generator().manual_seed(2))
    expected = torch.cat(
        [
            F.layer_norm(
                x[:, 4 * h : 4 * h + 4].transpose(1, 2), (4,), norm.weight[h], norm.bias[h]
            ).transpose(1, 2)
            for h in range(3)
        ],
        dim=1,
    ).detach()
    with torch.no_grad():  # group-norm kernel
        torch.testing.assert_close(norm(_cl(x)).squeeze(2), expected)
    with torch.enable_grad():  # layer-norm kernel
        torch.testing.assert_close(norm(_cl(x)).squeeze(2).detach(), expected)
    with torch.no_grad():  # the row form the streams use: one row per time sample
        rows = norm.rows(x.permute(0, 2, 1).reshape(-1, 12))
        torch.testing.assert_close(rows.view(2, 30, 12).permute(0, 2, 1), expected)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_upsample_column_is_one_sample_of_upsample_time(causal, scale):
    x = _cl(torch.randn(2, 3, 9, generator=torch.Generator().manual_seed(scale)))
    full = upsample_time(x, scale, causal)
    for column in range(9 * scale):
        torch.testing.assert_close(upsample_column(x, scale, causal, column), full[..., column : column + 1])


@pytest.mark.parametrize("causal", [False, True])
def test_partial_evaluation_matches_the_full_model(causal):
    model = eval_model(0, causal)
    x = window(batch=2, seed=4)
    with torch.no_grad():
        full = model(x)
        stem = model.forward_stem(_cl(x))
        left, right = model.stem_padding
        assert (left, right) == layers_padding(model.level_layers(0))
        # keep: the first / last samples, computed from a cut of the input that just holds them
        first = model.forward_stem(_cl(x[..., : 10 + right]), keep=10)
        last = model.forward_stem(_cl(x[..., N_TIMES - 10 - left :]), keep=-10)
        torch.testing.assert_close(first, stem[..., :10])
        torch.testing.assert_close(last, stem[..., -10:])
        # level by level, then the tail from level 2, whole or one column
        level1 = model.forward_level(F.max_pool2d(stem, (1, model.strides[0])), 1)
        pooled = F.max_pool2d(level1, (1, model.strides[1]))
        torch.testing.assert_close(model.forward_tail(pooled, start=2), full)
        for column in np.random.default_rng(0).integers(0, N_TIMES, size=8):
            torch.testing.assert_close(
                model.forward_tail(pooled, start=2, column=int(column)), full[:, :, column]
            )
        # run_layers cuts a deeper level too
        pooled0 = F.max_pool2d(stem, (1, model.strides[0]))
        torch.testing.assert_close(run_layers(model.level_layers(1), pooled0, keep=-3), level1[..., -3:])
