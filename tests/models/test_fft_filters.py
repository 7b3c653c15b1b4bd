"""The FFT path of long depth-wise filters (CPU training) equals the direct convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from beira_rt.models.layers import FFT_MIN_TAPS, HeadConv


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("taps", [FFT_MIN_TAPS, 25, 51])
def test_fft_depthwise_filter_equals_the_convolution(causal, taps):
    torch.manual_seed(taps)
    conv = HeadConv(6, 6, taps, groups=6, bias=True, causal=causal)
    x = torch.randn(3, 6, 1, 200, requires_grad=True)
    # the reference: torch's own 1-D convolution with the layer's padding
    left, right = conv.padding
    ref = F.conv1d(F.pad(x.squeeze(2), (left, right)), conv.weight, conv.bias, groups=6)
    out = conv(x)  # grad enabled on CPU: the FFT path
    assert out.shape == (3, 6, 1, 200)
    torch.testing.assert_close(out.squeeze(2), ref, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # evaluation: the direct convolution
        torch.testing.assert_close(conv(x), out, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad((out.squeeze(2) * g).sum(), (x, conv.weight, conv.bias))
    grads_ref = torch.autograd.grad((ref * g).sum(), (x, conv.weight, conv.bias))
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
