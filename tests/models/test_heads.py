"""The fused model equals the separate-head model (the reference layout) weight for weight."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from beira_rt.models import BEIRA, BEIRASeparateHeads, copy_head_, fused_from_heads, split_heads

from .conftest import (
    N_OUTPUTS,
    N_TIMES,
    eval_model,
    paper_model,
    randomise_statistics,
    small_model,
    window,
)

# the separate heads use Conv1d(padding="same"), which warns about even kernels (SMALL has one)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


@pytest.mark.parametrize("causal", [False, True])
def test_split_heads_gives_the_same_outputs(causal):
    fused = eval_model(0, causal)
    separate = split_heads(fused)
    assert not separate.training and len(separate.heads) == N_OUTPUTS
    x = window(batch=3, seed=7)
    with torch.no_grad():
        expected = separate(x)
        got = fused(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # and each head alone is the matching output channel
    with torch.no_grad():
        torch.testing.assert_close(separate.heads[1](x)[:, 0], got[:, 1], rtol=1e-5, atol=1e-5)


def test_paper_sized_fused_and_separate_agree():
    fused = paper_model()
    x = window(batch=1, n_times=2048, n_chans=30)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), split_heads(fused)(x), rtol=1e-5, atol=1e-5)


def test_independent_heads_fuse_into_one_model():
    heads = [eval_model(100 + seed, head=True, stats_seed=seed) for seed in range(N_OUTPUTS)]
    fused = fused_from_heads(heads)
    assert isinstance(fused, BEIRA) and not fused.training and fused.n_outputs == N_OUTPUTS
    x = window(batch=3, seed=7)
    with torch.no_grad():
        got = fused(x)
        for h, head in enumerate(heads):
            torch.testing.assert_close(got[:, h : h + 1], head(x), rtol=1e-5, atol=1e-5)


def test_split_then_fuse_restores_every_tensor_exactly():
    fused = small_model(0, causal=True)
    randomise_statistics(fused)
    back = fused_from_heads(split_heads(fused))
    assert back.hparams == fused.hparams
    for key, value in fused.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_training_step_matches_without_dropout():
    """Train mode (batch statistics) and gradients agree too, so either form can be trained."""
    fused = small_model(0, dropout=0.0)
    randomise_statistics(fused)
    separate = split_heads(fused)
    fused.train(), separate.train()
    x = window(batch=4, seed=7)
    target = torch.randn(4, N_OUTPUTS, N_TIMES, generator=torch.Generator().manual_seed(3))
    F.mse_loss(fused(x), target).backward()
    F.mse_loss(separate(x), target).backward()
    grads = {name: p.grad for name, p in fused.named_parameters()}
    for h, head in enumerate(separate.heads):
        for name, p in head.named_parameters():
            g = grads[name]
            expected = g[h] if ".norm." in name else g[h * p.shape[0] : (h + 1) * p.shape[0]]
            torch.testing.assert_close(expected, p.grad, rtol=1e-4, atol=1e-6, msg=f"head {h} {name}")
    # the batch-norm running statistics moved the same way
    resplit = split_heads(fused)
    for head, ref in zip(resplit.heads, separate.heads, strict=True):
        for (name, a), (_, b) in zip(head.named_buffers(), ref.named_buffers(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_heads_of_different_architectures_are_refused():
    a = small_model(head=True)
    b = small_model(head=True, n_filters=4)
    with pytest.raises(ValueError, match="head 1 has a different architecture"):
        BEIRASeparateHeads([a, b])
    with pytest.raises(ValueError, match="at least one head"):
        fused_from_heads([])


def test_copy_head_moves_exactly_one_heads_weights_and_statistics():
    a, b = eval_model(0), eval_model(1)
    state = {k: v.clone() for k, v in a.state_dict().items()}
    copy_head_(state, b.state_dict(), 1, N_OUTPUTS)
    mixed = small_model(2)
    mixed.load_state_dict(state)
    mixed.eval()
    x = window(batch=3, seed=7)
    with torch.no_grad():
        out_a, out_b, out_m = a(x), b(x), mixed(x)
    torch.testing.assert_close(out_m[:, 1], out_b[:, 1], rtol=1e-5, atol=1e-5)
    others = [h for h in range(N_OUTPUTS) if h != 1]
    torch.testing.assert_close(out_m[:, others], out_a[:, others], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out_a[:, 1], out_b[:, 1])  # the two heads differed to begin with
    with pytest.raises(ValueError, match="out of range"):
        copy_head_(state, b.state_dict(), N_OUTPUTS, N_OUTPUTS)
