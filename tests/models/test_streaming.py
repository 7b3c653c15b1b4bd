"""CausalStream and ReferenceStream: streaming read-outs of BEIRA (causal and reference variants) equal
the whole-window model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.models import BEIRA
from beira_rt.models.streaming import CausalStream, ReferenceStream, stream_columns
from tests.models.conftest import N_CHANS, eval_model, paper_model


def _window_columns(model: BEIRA, z: torch.Tensor, ends: list[int], la: int) -> torch.Tensor:
    """The definition: the whole window ending at each ``n``, column ``W - 1 - la``."""
    W = model.n_times
    with torch.inference_mode():
        return torch.stack([model(z[None, :, n - W + 1 : n + 1])[0, :, W - 1 - la] for n in ends])


def _touched(model: BEIRA, la: int) -> np.ndarray:
    """Window samples whose gradient reaches the read-out column ``W - 1 - la`` (random input)."""
    x = torch.randn(1, N_CHANS, model.n_times, requires_grad=True)
    model(x)[0, :, model.n_times - 1 - la].sum().backward()
    return np.flatnonzero(x.grad[0].abs().sum(0).numpy())


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
        assert _touched(model, la).min() >= W - 1 - CausalStream(model, la).reach


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
    with pytest.raises(ValueError, match="reference variant"):
        ReferenceStream(eval_model(0, causal=True), 0)
    stream = CausalStream(eval_model(0, causal=True, n_times=256), 0, chunk=16)
    stream.push(torch.randn(N_CHANS, 40))
    with pytest.raises(ValueError, match="newest 16"):
        stream.read([10])


# ---------------------------------------------------------------------------- reference variant


def _pushes(stream, z, rng, sizes=(0, 1, 2, 7, 13, 32, 48, 100)):
    """Push ``z`` in chunks of random sizes; read at the newest sample after each full window."""
    got, ends, pos = [], [], 0
    while pos < z.shape[1]:
        m = int(rng.choice(sizes))
        stream.push(z[:, pos : pos + m])
        pos = min(pos + m, z.shape[1])
        if pos - 1 >= stream.n_times - 1 and m:
            got.append(stream.read())
            ends.append(pos - 1)
    return torch.stack(got), ends


@pytest.mark.parametrize("la", [0, 1, 5, 20, 60, 128, 176])
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_stream_equals_whole_window_for_any_hops(seed, la):
    """'same' padding and linear up-sampling: the newest blocks recomputed at each read-out give the
    window's column exactly, whatever the number of samples per push (1 to 100, none)."""
    model = eval_model(seed, stats_seed=seed, n_times=256)
    stream = ReferenceStream(model, la, chunk=48)
    assert stream.exact
    rng = np.random.default_rng(seed)
    z = torch.from_numpy(rng.standard_normal((N_CHANS, 1100)).astype(np.float32))
    got, ends = _pushes(stream, z, rng)
    assert len(ends) > 20
    torch.testing.assert_close(got, _window_columns(model, z, ends, la), rtol=0, atol=1e-5)


def test_reference_stream_reads_older_windows_and_restarts_anywhere():
    """Read-outs of windows ending before the newest sample (recomputed from the stored values), and
    a stream reset at any position: exact from its first full window on."""
    model = eval_model(2, n_times=256)
    z = torch.randn(N_CHANS, 900)
    ends = [255, 256, 300, 598, 599]
    ref = _window_columns(model, z, ends, 30)
    for start in (0, 1, 40):
        stream = ReferenceStream(model, 30, chunk=1024)
        stream.reset(start)
        stream.push(z[:, start:256])
        first = stream.read()
        stream.push(z[:, 256:600])
        torch.testing.assert_close(first, ref[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(stream.read(ends[1:]), ref[1:], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="newest 1024"):
        stream.read([599 - 1024])


def test_reference_reach_is_the_receptive_field_and_decides_exactness():
    """Up to the largest exact look-ahead the stream equals the window; one beyond, the window's left
    padding shows; no input before ``n - reach`` moves the read-out (reach bounds the dependency)."""
    model = eval_model(0, n_times=256)
    W = model.n_times
    exact = [la for la in range(W) if ReferenceStream(model, la).exact]
    la_max = max(exact)
    assert exact == list(range(la_max + 1)) and la_max == 176
    z = torch.randn(N_CHANS, 700)
    ends = list(range(W - 1, 700, 11))
    diffs = []
    for la in (la_max, la_max + 1, la_max + 24):
        stream = ReferenceStream(model, la, chunk=1024)
        stream.push(z)
        diffs.append(float((stream.read(ends[-40:]) - _window_columns(model, z, ends[-40:], la)).abs().max()))
    # exact (float rounding: ~3e-7); one sample beyond, weakly (the oldest bottleneck block's edge);
    # further, plainly
    assert diffs[0] < 1e-6 < diffs[1] and diffs[2] > 1e-4, diffs
    for la in (0, 60, la_max):
        touched = _touched(model, la)
        assert touched.min() >= W - 1 - ReferenceStream(model, la).reach
        if la == 0:
            assert touched.max() == W - 1  # 'same' padding: the read-out sees the window's right edge


def test_paper_model_reference_streams_exactly():
    """The paper's architecture (30 channels, 8 heads, 2048 samples, 'same' padding): reach 900 at
    look-ahead 0, exact up to a look-ahead of 1227 samples (the centre read-out included); pushes of
    2048, 7, 25 and 8 samples equal the windows."""
    model = paper_model()
    stream = ReferenceStream(model, 0, chunk=256)
    assert stream.reach == 900 and stream.exact
    assert ReferenceStream(model, 1227).exact and not ReferenceStream(model, 1228).exact
    z = torch.randn(30, 2048 + 40)
    stream.push(z[:, :2048])
    got = [stream.read()]
    for a, m in ((2048, 7), (2055, 25), (2080, 8)):
        stream.push(z[:, a : a + m])
        got.append(stream.read())
    got.append(stream.read([2060])[0])  # an older window: recomputed from the stored values
    torch.testing.assert_close(
        torch.stack(got), _window_columns(model, z, [2047, 2054, 2079, 2087, 2060], 0), rtol=0, atol=1e-4
    )


@pytest.mark.parametrize(
    "geometry",
    [
        # the engine tests' tiny model: every newest block of level 1 is not final (none read back)
        dict(n_filters=2, filter_size=9, envelope_size=9, channels=(4, 4, 4), kernel_sizes=(3, 3), strides=(2, 2),
             decoder_reduce=1, n_times=32),
        dict(channels=(8, 8, 12), kernel_sizes=(5, 3), strides=(4, 4), n_times=64),
        dict(filter_size=4, envelope_size=7, channels=(8, 8, 8, 8, 8), kernel_sizes=(3, 2, 3, 3),
             strides=(2, 2, 2, 2), n_times=128),
    ],
)  # fmt: skip
def test_reference_stream_other_geometries(geometry):
    """Other strides, kernels (even ones: asymmetric 'same' padding) and depths, read at every push."""
    over = dict(geometry)
    model = eval_model(4, **over)
    W = model.n_times
    la = min(5, max(la for la in range(W) if ReferenceStream(model, la).exact))
    stream = ReferenceStream(model, la, chunk=W)
    rng = np.random.default_rng(4)
    z = torch.from_numpy(rng.standard_normal((N_CHANS, 1200)).astype(np.float32))
    got, ends = _pushes(stream, z, rng, sizes=(1, 2, 3, 5, 8, 13, W))
    assert len(ends) > 40
    torch.testing.assert_close(got, _window_columns(model, z, ends, la), rtol=0, atol=1e-5)
