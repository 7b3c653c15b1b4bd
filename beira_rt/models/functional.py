"""Operations along the time axis shared by the fused and the separate-head BEIRA.

Two time conventions (``causal``):

- reference: ``'same'`` zero padding (left ``(k - 1) // 2``, right the rest, as
  ``torch.nn.Conv1d(padding='same')``), max pooling over blocks, linear up-sampling.
- causal: left zero padding only; max pooling over blocks (block ``j`` covers samples
  ``j*s .. j*s+s-1`` and is known at its last sample); up-sampling holds the last
  *complete* block: output sample ``t`` takes block ``floor((t + 1) / s) - 1`` (zero before
  the first block is complete). A network of these depends at ``t`` on inputs ``<= t`` only.

All functions take (batch, channels, n_times) or (batch, channels, 1, n_times) tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["conv_padding", "pool_time", "upsample_column", "upsample_time"]


def conv_padding(kernel_size: int, causal: bool) -> tuple[int, int]:
    """Zero padding ``(left, right)`` in samples that keeps the length of a stride-1 convolution.

    Parameters
    ----------
    kernel_size : int
        Taps of the convolution.
    causal : bool
        ``True``: all padding on the left (output ``t`` sees inputs ``t-k+1 .. t``).
        ``False``: as ``torch.nn.Conv1d(padding='same')`` (left ``(k - 1) // 2``).
    """
    if causal:
        return kernel_size - 1, 0
    left = (kernel_size - 1) // 2
    return left, kernel_size - 1 - left


def pool_time(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Max over consecutive blocks of ``stride`` samples along the last axis.

    Parameters
    ----------
    x : torch.Tensor
        Shape (batch, channels, n_times) or (batch, channels, 1, n_times); ``n_times`` a
        multiple of ``stride``.

    Returns
    -------
    torch.Tensor
        The same layout with ``n_times // stride`` samples.
    """
    if stride == 1:
        return x
    if x.dim() == 4:
        return F.max_pool2d(x, (1, stride))
    return F.max_pool1d(x, stride)


def upsample_time(x: torch.Tensor, scale: int, causal: bool) -> torch.Tensor:
    """Up-sample the last axis by an integer factor.

    Parameters
    ----------
    x : torch.Tensor
        Shape (batch, channels, n_times) or (batch, channels, 1, n_times).
    scale : int
        Up-sampling factor.
    causal : bool
        ``False``: linear interpolation (``align_corners=False``), as
        ``torch.nn.Upsample(mode='linear')``. ``True``: output sample ``t`` holds input
        sample ``floor((t + 1) / scale) - 1``, i.e. the newest block that is complete at
        ``t``; the first ``scale - 1`` outputs are zero.

    Returns
    -------
    torch.Tensor
        The same layout with ``n_times * scale`` samples.
    """
    if scale == 1:
        return x
    if causal:
        held = x.unsqueeze(-1).expand(*x.shape, scale).flatten(-2)
        return F.pad(held[..., : held.shape[-1] - (scale - 1)], (scale - 1, 0))
    if x.dim() == 4:
        # a height-1 bilinear interpolation is the linear interpolation along time
        return F.interpolate(x, scale_factor=(1.0, float(scale)), mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=float(scale), mode="linear", align_corners=False)


def upsample_column(x: torch.Tensor, scale: int, causal: bool, column: int) -> torch.Tensor:
    """One output sample of :func:`upsample_time`, computed from the few inputs it uses.

    Parameters
    ----------
    x : torch.Tensor
        (batch, channels, 1, n_times), channels-last.
    scale : int
        Up-sampling factor.
    causal : bool
        As :func:`upsample_time`.
    column : int
        Output sample, ``0 <= column < n_times * scale``.

    Returns
    -------
    torch.Tensor
        (batch, channels, 1, 1): ``upsample_time(x, scale, causal)[..., column:column + 1]``
        (to float32 rounding for the linear interpolation).
    """
    n_in = x.shape[-1]
    if causal:
        j = (column + 1) // scale - 1
        return x[..., j : j + 1] if j >= 0 else torch.zeros_like(x[..., :1])
    # linear interpolation reads inputs floor(src) and floor(src) + 1, src = (column + 0.5) / scale - 0.5;
    # interpolate a short slice around them, which keeps PyTorch's edge clamping where the slice
    # reaches an end of x
    src = max((column + 0.5) / scale - 0.5, 0.0)
    lo = max(int(src) - 1, 0)
    hi = min(int(src) + 3, n_in)
    part = upsample_time(x[..., lo:hi], scale, causal=False)
    k = column - lo * scale
    return part[..., k : k + 1]
