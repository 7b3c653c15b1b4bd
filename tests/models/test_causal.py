"""The causal variant never looks ahead; the reference variant does (sanity check)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from beira_rt.models.functional import upsample_time

from .conftest import N_TIMES, eval_model, paper_model, window

# the separate heads use Conv1d(padding="same"), which warns about even kernels (SMALL has one)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _perturbed_after(x: torch.Tensor, t0: int, seed: int) -> torch.Tensor:
    y = x.clone()
    noise = torch.randn(y[..., t0:].shape, generator=torch.Generator().manual_seed(seed))
    y[..., t0:] += 3.0 * noise
    return y


@pytest.mark.parametrize("kind", ["fused", "head"])
def test_causal_output_ignores_future_samples_exactly(kind):
    model = eval_model(0, causal=True, head=kind == "head")
    rng = np.random.default_rng(42)
    x = window(batch=2, seed=1)
    with torch.no_grad():
        ref = model(x)
        for trial, t0 in enumerate(rng.integers(1, N_TIMES, size=12)):
            out = model(_perturbed_after(x, int(t0), seed=trial))
            assert torch.equal(out[..., :t0], ref[..., :t0]), f"output before t0={t0} changed"
            # and the model does use what it sees: the newest outputs move
            assert not torch.allclose(out[..., t0:], ref[..., t0:]), f"nothing after t0={t0} changed"


def test_paper_sized_causal_model_ignores_future_samples():
    model = paper_model(causal=True)
    x = window(batch=1, seed=1, n_times=2048, n_chans=30)
    t0 = 1337
    with torch.no_grad():
        ref, out = model(x), model(_perturbed_after(x, t0, seed=0))
    assert torch.equal(out[..., :t0], ref[..., :t0])
    assert not torch.allclose(out[..., -1], ref[..., -1])


@pytest.mark.parametrize("kind", ["fused", "head"])
def test_reference_variant_looks_ahead(kind):
    model = eval_model(0, causal=False, head=kind == "head")
    x = window(batch=1, seed=1)
    t0 = N_TIMES // 2
    with torch.no_grad():
        ref, out = model(x), model(_perturbed_after(x, t0, seed=0))
    assert not torch.allclose(out[..., :t0], ref[..., :t0])


def test_causal_upsampling_holds_the_newest_complete_block():
    x = torch.tensor([[[10.0, 20.0, 30.0]]])
    got = upsample_time(x, 4, causal=True)
    # block j covers samples 4j..4j+3 and is complete at sample 4j+3
    expected = torch.tensor([[[0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 20, 30]]], dtype=torch.float32)
    assert torch.equal(got, expected)
    assert torch.equal(upsample_time(x.unsqueeze(2), 4, causal=True).squeeze(2), expected)


def test_reference_upsampling_is_linear_interpolation_in_both_layouts():
    x = torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(x, scale_factor=8, mode="linear", align_corners=False)
    torch.testing.assert_close(upsample_time(x, 8, causal=False), expected)
    torch.testing.assert_close(upsample_time(x.unsqueeze(2), 8, causal=False).squeeze(2), expected)
