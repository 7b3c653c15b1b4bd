"""CausalStream: streaming read-out of the causal BEIRA equals the whole-window model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.models import BEIRA
from beira_rt.models.streaming import CausalStream, stream_columns
from tests.models.conftest import N_CHANS, eval_model, paper_model


def _window_columns(model: BEIRA, z: torch.Tensor, ends: list[int], la: int) -> torch.Tensor:
    """The definition: the whole window ending at each ``n``, column ``W - 1 - la``."""
    W = model.n_times
    with torch.inference_mode():
        return torch.stack([model(z[None, :, n - W + 1 : n + 1])[0, :, W - 1 - la] for n in ends])


@pytest.mark.parametrize("la", [0, 1, 5, 20, 100, 122])
@pytest.mark.parametrize("seed", [0, 1])
def test_stream_equals_whole_window_for_any_hops(seed, la):
    model = eval_model(seed, causal=True, stats_seed=seed, n_times=256)
    stream = CausalStream(model, la, chunk=48)
    assert stream.exact
    rng = np.random.default_rng(seed)
    z = torch.from_numpy(rng.standard_normal((N_CHANS, 1100)).astype(np.float32))
    got, ends = [], []
    pos = 0
    while pos < z.shape[1]:
        m = int(rng.choice([0, 1, 2, 7, 13, 32, 48, 100]))  # any number of samples at a time
        stream.push(z[:, pos : pos + m])
        pos = min(pos + m, z.shape[1])
        if pos - 1 >= model.n_times - 1 and m:
            got.append(stream.read())
            ends.append(pos - 1)
    assert len(ends) > 20
    torch.testing.assert_close(torch.stack(got), _window_columns(model, z, ends, la), rtol=0, atol=1e-5)


def test_exact_from_the_first_full_window_whatever_came_before():
    """Warm-up: the stream started anywhere equals the window as soon as the window is full."""
    model = eval_model(3, causal=True, n_times=256)
    z = torch.randn(N_CHANS, 600)
    ref = _window_columns(model, z, [255, 256, 300, 599], 7)
    for start in (0, 1, 40):
        stream = CausalStream(model, 7, chunk=1024)
        stream.reset(start)
        stream.push(z[:, start:256])
        first = stream.read()
        stream.push(z[:, 256:])
        torch.testing.assert_close(first, ref[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(stream.read([256, 300, 599]), ref[1:], rtol=0, atol=1e-5)


def test_reach_is_the_receptive_field_and_decides_exactness():
    """Within the reach the stream is exact; one look-ahead beyond, the window's padding shows."""
    model = eval_model(0, causal=True, n_times=256)
    W = model.n_times
    exact = [la for la in range(W) if CausalStream(model, la).exact]
    la_max = max(exact)
    assert exact == list(range(la_max + 1))
    z = torch.randn(N_CHANS, 700)
    ends = list(range(W - 1, 700, 11))
    for la in (la_max, la_max + 1):
        stream = CausalStream(model, la)
        diff = (stream_columns(model, z, ends, la) - _window_columns(model, z, ends, la)).abs().max()
        assert (diff < 1e-5) == stream.exact
    # no input before n - reach moves the read-out at n (the reach is an upper bound of the dependency)
    for la in (0, 9, la_max):
        reach = CausalStream(model, la).reach
        x = torch.randn(1, N_CHANS, W, requires_grad=True)
        model(x)[0, :, W - 1 - la].sum().backward()
        touched = np.flatnonzero(x.grad[0].abs().sum(0).numpy())
        assert touched.min() >= W - 1 - reach


def test_stream_columns_one_pass_equals_windows_unsorted_ends():
    model = eval_model(1, causal=True, n_times=256)
    z = torch.randn(N_CHANS, 3000)
    ends = [2999, 255, 1024, 1023, 777, 2000, 256]
    got = stream_columns(model, z, ends, 12, chunk=300)
    torch.testing.assert_close(got, _window_columns(model, z, ends, 12), rtol=0, atol=1e-5)


def test_paper_model_streams_exactly():
    """The paper's architecture (30 channels, 8 heads, 2048 samples): reach 1545 at look-ahead 0."""
    model = paper_model(causal=True)
    stream = CausalStream(model, 0, chunk=256)
    assert stream.reach == 1545 and stream.exact
    assert CausalStream(model, 480).exact and not CausalStream(model, 481).exact
    z = torch.randn(30, 2048 + 40)
    stream.push(z[:, :2048])
    got = [stream.read()]
    for a in (2048, 2055, 2080):
        stream.push(z[:, a : a + {2048: 7, 2055: 25, 2080: 8}[a]])
        got.append(stream.read())
    torch.testing.assert_close(
        torch.stack(got), _window_columns(model, z, [2047, 2054, 2079, 2087], 0), rtol=0, atol=1e-4
    )


def test_refuses_reference_models_and_bad_reads():
    with pytest.raises(ValueError, match="causal"):
        CausalStream(eval_model(0), 0)
    stream = CausalStream(eval_model(0, causal=True, n_times=256), 0, chunk=16)
    stream.push(torch.randn(N_CHANS, 40))
    with pytest.raises(ValueError, match="newest 16"):
        stream.read([10])
