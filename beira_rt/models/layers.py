"""Layers of BEIRA with the ROI heads fused into grouped operations.

Every fused layer holds the weights of ``n_heads`` independent heads. The channel axis is
head-major: channel ``head * width + c`` is channel ``c`` of head ``head``. Grouped
convolutions (``groups=n_heads``) keep the heads apart; the layer norm normalises each
head's channels separately with per-head affine parameters.

Inside the fused model tensors are 4-D, ``(batch, channels, 1, time)``, in channels-last
memory (the channels of one time sample are contiguous). On CPU, oneDNN runs these grouped
convolutions as 2-D convolutions with a height of one faster than the same 1-D grouped
convolutions, and the per-head layer norm over channels becomes a plain contiguous
``layer_norm`` (``tools/bench_model.py`` measures the whole model).

The time conventions (reference and causal) are in :mod:`beira_rt.models.functional`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from beira_rt.models.functional import conv_padding, pool_time, upsample_time

__all__ = [
    "FastDropout",
    "FusedConvBlock",
    "FusedInterpretableBlock",
    "HeadConv",
    "HeadLayerNorm",
    "SymLog",
    "UpBlock",
    "layers_padding",
    "run_layers",
]


def layers_padding(layers: Sequence[nn.Module]) -> tuple[int, int]:
    """Zero padding ``(left, right)`` in samples accumulated by a stack of layers.

    Output ``t`` of the stack depends on its input ``t - left .. t + right`` (the
    :class:`HeadConv` layers pad; the others act per sample).
    """
    pads = [layer.padding for layer in layers if isinstance(layer, HeadConv)]
    return sum(p[0] for p in pads), sum(p[1] for p in pads)


def run_layers(layers: Sequence[nn.Module], x: torch.Tensor, keep: int | None = None) -> torch.Tensor:
    """Run stride-1 layers in order, optionally only for the first or last output samples.

    Parameters
    ----------
    layers : sequence of nn.Module
        :class:`HeadConv` layers and per-sample layers (norms, activations, dropout).
    x : torch.Tensor
        (batch, channels, 1, T), channels-last.
    keep : int | None
        ``None``: all ``T`` outputs. ``k > 0``: the first ``k``; ``k < 0``: the last ``-k``.
        Each convolution's output is cut to what the kept samples depend on, so the work
        shrinks with ``k``. The kept samples are those of the full run when ``T >= abs(k) +
        right`` (first) or ``T >= abs(k) + left`` (last), see :func:`layers_padding`.

    Returns
    -------
    torch.Tensor
        (batch, channels_out, 1, T or abs(keep)).
    """
    need: list[int | None] = [None] * len(layers)  # samples needed after each layer
    if keep is not None:
        n = abs(keep)
        for k in reversed(range(len(layers))):
            need[k] = n
            if isinstance(layers[k], HeadConv):
                n += layers[k].padding[1] if keep > 0 else layers[k].padding[0]
    for layer, n in zip(layers, need, strict=True):
        x = layer(x)
        if n is not None and isinstance(layer, HeadConv) and x.shape[-1] > n:
            x = _channels_last(x[..., :n] if keep > 0 else x[..., x.shape[-1] - n :])
    return x


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


class FastDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` whose masks are cheap to draw on the CPU.

    ``torch.nn.Dropout`` draws one Bernoulli variable per element; on a CPU that is a fifth
    of a BEIRA training step (the activations at the full 100 Hz rate are large). Here
    each random 64-bit word gives the masks of eight elements (one byte each), ~5x faster;
    an element is kept when its byte is >= ``round(256 p)``, so the drop probability is
    ``p`` rounded to a multiple of 1/256 (0.3 -> 0.3008) and kept elements are scaled by
    ``1 / (1 - p_eff)``. On other devices, and in eval mode, it is ``nn.Dropout`` itself.
    The masks follow torch's seeded generator (reproducible with ``torch.manual_seed``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        threshold = round(self.p * 256)
        if threshold >= 256:
            return x * 0.0
        n = x.numel()
        words = torch.empty((n + 7) // 8, dtype=torch.int64).random_(-(2**63), None)
        flat = words.view(torch.uint8)[:n]
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            bytes_ = flat.as_strided(x.shape, x.stride())  # the mask in x's own memory order
        else:
            bytes_ = flat.view(x.shape)
        mask = (bytes_ >= threshold).to(x.dtype).mul_(256.0 / (256 - threshold))
        return x * mask


#: Depth-wise filters with at least this many taps are trained through the FFT on CPU.
FFT_MIN_TAPS = 16


def _fast_length(n: int) -> int:
    """The smallest length >= ``n`` whose prime factors are 2, 3 and 5 (a fast FFT size)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _depthwise_fft(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, left: int, right: int
) -> torch.Tensor:
    """Depth-wise correlation of (batch, C, 1, T) with weight (C, 1, K) and zero padding (left, right).

    The same values as ``F.conv2d(F.pad(x, (left, right)), weight.unsqueeze(2), groups=C)``: a
    circular correlation of length ``n >= T + left + right`` is exact on the outputs kept.
    """
    taps = weight.shape[-1]
    xp = F.pad(x.squeeze(2), (left, right))
    n_out = xp.shape[-1] - taps + 1
    n = _fast_length(xp.shape[-1])
    spec = torch.fft.rfft(xp, n=n) * torch.fft.rfft(weight[:, 0].flip(-1), n=n)
    out = torch.fft.irfft(spec, n=n)[..., taps - 1 : taps - 1 + n_out]
    if bias is not None:
        out = out + bias[:, None]
    return _channels_last(out.unsqueeze(2))


class HeadConv(nn.Module):
    """A 1-D convolution over (batch, channels, 1, time) tensors, 'same' or causal padded.

    The weight has the shape of ``torch.nn.Conv1d``'s, (out_channels, in_channels // groups,
    kernel_size), and the same initialisation, so that weights move freely between the two.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts (all heads together).
    kernel_size : int
        Taps, in samples at the rate of the input.
    groups : int
        Convolution groups (``n_heads`` for head-separate layers, ``in_channels`` for
        depth-wise filters).
    bias : bool
        Whether to add a learned bias per output channel.
    causal : bool
        Left padding only (see :func:`conv_padding`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        groups: int = 1,
        bias: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.groups = groups
        self.kernel_size = kernel_size
        self.padding = conv_padding(kernel_size, causal)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as ``torch.nn.Conv1d`` does (Kaiming uniform, a = sqrt(5))."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2]
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, 1, n_times) -> (batch, out_channels, 1, n_times)."""
        if (
            self.groups == self.weight.shape[0]
            and self.weight.shape[1] == 1
            and self.kernel_size >= FFT_MIN_TAPS
            and x.device.type == "cpu"
            and torch.is_grad_enabled()
        ):
            # Training on CPU: oneDNN's backward of a long depth-wise filter is slow; the same
            # correlation through the FFT is ~3x faster (forward and backward; equal to float
            # rounding). Evaluation and the live engine keep the direct convolution.
            return _depthwise_fft(x, self.weight, self.bias, *self.padding)
        left, right = self.padding
        if left != right:
            x = _channels_last(F.pad(x, (left, right)))
            left = 0
        groups = self.groups
        weight = self.weight.unsqueeze(2)
        if groups == 1 or groups == weight.shape[0] or x.device.type != "cpu" or not torch.is_grad_enabled():
            return F.conv2d(x, weight, self.bias, padding=(0, left), groups=groups)
        # Training on CPU: oneDNN's backward pass of a grouped convolution is markedly slower
        # than that of one dense convolution per group (tools/bench_model.py), so run the
        # groups (the heads) one by one; the result is the same convolution.
        biases = self.bias.chunk(groups) if self.bias is not None else (None,) * groups
        outs = [
            F.conv2d(xg, wg, bg, padding=(0, left))
            for xg, wg, bg in zip(x.chunk(groups, dim=1), weight.chunk(groups, dim=0), biases, strict=True)
        ]
        return _channels_last(torch.cat(outs, dim=1))

    def extra_repr(self) -> str:
        out_ch, in_per_group, k = self.weight.shape
        return (
            f"{in_per_group * self.groups}, {out_ch}, kernel_size={k}, groups={self.groups}, "
            f"padding={self.padding}, bias={self.bias is not None}"
        )


class HeadLayerNorm(nn.Module):
    """Layer norm over the channels of each head, per time sample, with per-head affine.

    Equals ``torch.nn.LayerNorm(n_channels)`` applied to each head's channels (moved to the
    last axis), with head ``h`` using ``weight[h]`` and ``bias[h]``.

    Parameters
    ----------
    n_heads : int
        Number of heads.
    n_channels : int
        Channels per head.
    eps : float
        Added to the variance, as in ``torch.nn.LayerNorm``.
    """

    def __init__(self, n_heads: int, n_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.n_channels = n_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_heads, n_channels))
        self.bias = nn.Parameter(torch.zeros(n_heads, n_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_heads * n_channels, 1, n_times) -> the same shape."""
        batch, width, _, n_times = x.shape
        # a view when x is channels-last: one row of n_heads * n_channels per time sample;
        # a group norm with one group per head normalises each head's channels per sample
        # and applies the per-head affine in the same pass
        rows = x.permute(0, 2, 3, 1).reshape(batch * n_times, width)
        if torch.is_grad_enabled():
            y = self.rows(rows)  # layer_norm's backward pass is much faster than group_norm's on CPU
        else:
            y = F.group_norm(rows, self.n_heads, self.weight.reshape(-1), self.bias.reshape(-1), self.eps)
        return y.reshape(batch, 1, n_times, width).permute(0, 3, 1, 2)

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The norm of rows (n, n_heads * n_channels), one time sample each, as ``layer_norm`` over
        each head's channels and the per-head affine: the same numbers as :meth:`forward`, faster
        than its group norm on a few rows (the streams) and in the backward pass."""
        y = F.layer_norm(rows.reshape(-1, self.n_heads, self.n_channels), (self.n_channels,), eps=self.eps)
        return torch.addcmul(self.bias, y, self.weight).view(rows.shape[0], -1)

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, n_channels={self.n_channels}, eps={self.eps}"


class FusedConvBlock(nn.Module):
    """Convolution (no bias) -> per-head layer norm -> GELU -> dropout -> max pool, all heads.

    Parameters
    ----------
    n_heads : int
        Number of heads.
    in_channels, out_channels : int
        Channels per head.
    kernel_size : int
        Taps of the convolution.
    stride : int
        Max-pooling factor (1 = none).
    dropout : float
        Dropout probability.
    causal : bool
        Left padding only.
    """

    def __init__(
        self,
        n_heads: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.conv = HeadConv(
            n_heads * in_channels,
            n_heads * out_channels,
            kernel_size,
            groups=n_heads,
            bias=False,
            causal=causal,
        )
        self.norm = HeadLayerNorm(n_heads, out_channels)
        self.act = nn.GELU()
        self.drop = FastDropout(dropout)

    def feature_layers(self) -> tuple[nn.Module, ...]:
        """The layers before pooling, in order (the convolution first)."""
        return (self.conv, self.norm, self.act, self.drop)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The block before pooling: (batch, n_heads * in_channels, 1, T) -> (..., out_channels, 1, T)."""
        for layer in self.feature_layers():
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_heads * in_channels, 1, T) -> (batch, n_heads * out_channels, 1, T // stride)."""
        return pool_time(self.features(x), self.stride)


class UpBlock(nn.Module):
    """A block without pooling, then up-sampling by ``scale``: a decoder level of BEIRA.

    Serves the fused model (a :class:`FusedConvBlock`, 4-D channels-last tensors) and the
    separate heads (3-D tensors) alike.

    Parameters
    ----------
    block : nn.Module
        The convolutional block (stride 1); kept as ``self.block``.
    scale : int
        Up-sampling factor (see :func:`upsample_time`).
    causal : bool
        Block-hold instead of linear up-sampling (see :func:`upsample_time`).
    """

    def __init__(self, block: nn.Module, scale: int, causal: bool) -> None:
        super().__init__()
        self.scale = scale
        self.causal = causal
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, [1,] T) -> (batch, out_channels, [1,] T * scale); 4-D stays channels-last."""
        x = upsample_time(self.block(x), self.scale, self.causal)
        return _channels_last(x) if x.dim() == 4 else x


class SymLog(nn.Module):
    """``sign(x) * log(1 + |x|)``, per sample: compresses large envelopes (artefacts) smoothly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x) * torch.log1p(x.abs())


class FusedInterpretableBlock(nn.Module):
    """BEIRA's interpretable front end for all heads.

    Per head: spatial unmixing of the EEG channels into ``n_filters`` branches (1x1
    convolution), batch norm (no affine), a learned depth-wise band-pass FIR filter (no bias),
    batch norm (no affine), ReLU (rectification), and a learned depth-wise low-pass FIR filter
    that extracts the envelope.

    Parameters
    ----------
    n_chans : int
        EEG channels.
    n_heads : int
        Number of heads.
    n_filters : int
        Branches per head.
    filter_size, envelope_size : int
        Taps of the band-pass and envelope filters (samples at the model rate).
    causal : bool
        Left padding only.
    envelope_log : bool
        Compress the envelopes with :class:`SymLog` (``model.envelope_log``).
    """

    def __init__(
        self,
        n_chans: int,
        n_heads: int,
        n_filters: int,
        filter_size: int,
        envelope_size: int,
        *,
        causal: bool,
        envelope_log: bool = False,
    ) -> None:
        super().__init__()
        width = n_heads * n_filters
        self.compress = SymLog() if envelope_log else None
        self.unmix = HeadConv(n_chans, width, 1)
        self.bn_unmix = nn.BatchNorm2d(width, affine=False)
        self.band_pass = HeadConv(width, width, filter_size, groups=width, bias=False, causal=causal)
        self.bn_band = nn.BatchNorm2d(width, affine=False)
        self.act = nn.ReLU()
        self.envelope = HeadConv(width, width, envelope_size, groups=width, causal=causal)

    def layers(self) -> tuple[nn.Module, ...]:
        """The layers in order."""
        out = (self.unmix, self.bn_unmix, self.band_pass, self.bn_band, self.act, self.envelope)
        return out if self.compress is None else (*out, self.compress)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_chans, 1, T) -> (batch, n_heads * n_filters, 1, T)."""
        for layer in self.layers():
            x = layer(x)
        return x
