"""Checks of BEIRA's hyper-parameters, shared by the fused and the separate-head model."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["check_architecture", "decoder_channels", "nearest_multiples"]


def decoder_channels(channels: Sequence[int], decoder_reduce: int) -> tuple[int, ...]:
    """Widths of the decoder levels: the encoder widths divided by ``decoder_reduce``, except
    the bottleneck (last entry), which is kept.

    Parameters
    ----------
    channels : sequence of int
        Encoder widths per head, ``len(strides) + 1`` entries.
    decoder_reduce : int
        Divisor.

    Returns
    -------
    tuple of int
        Same length as ``channels``.
    """
    return (*(c // decoder_reduce for c in channels[:-1]), channels[-1])


def nearest_multiples(n: int, step: int) -> str:
    """``"lower or upper"``: the multiples of ``step`` around ``n`` (for messages)."""
    lower = n // step * step
    upper = lower + step
    return f"{lower} or {upper}" if lower > 0 else f"{upper}"


def check_architecture(
    *,
    n_chans: int,
    n_outputs: int,
    n_times: int,
    n_filters: int,
    filter_size: int,
    envelope_size: int,
    channels: Sequence[int],
    kernel_sizes: Sequence[int],
    strides: Sequence[int],
    decoder_reduce: int,
    dropout: float,
) -> None:
    """Check BEIRA's hyper-parameters; raise ``ValueError`` naming the first bad one.

    The window ``n_times`` must be a multiple of ``prod(strides)`` so that every pooling
    level divides it exactly and the decoder returns to ``n_times`` samples.
    """
    counts = {
        "n_chans": n_chans,
        "n_outputs": n_outputs,
        "n_times": n_times,
        "n_filters": n_filters,
        "filter_size": filter_size,
        "envelope_size": envelope_size,
        "decoder_reduce": decoder_reduce,
    }
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"BEIRA: {name} must be a positive integer, got {value!r}.")
    for name, values in (("channels", channels), ("kernel_sizes", kernel_sizes), ("strides", strides)):
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ValueError(
                f"BEIRA: {name} must be a non-empty list of positive integers, got {list(values)}."
            )
    if len(kernel_sizes) != len(strides) or len(channels) != len(strides) + 1:
        raise ValueError(
            "BEIRA: channels must have one more entry than strides, and kernel_sizes as many as strides; "
            f"got channels={list(channels)}, kernel_sizes={list(kernel_sizes)}, strides={list(strides)}."
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"BEIRA: dropout must be in [0, 1), got {dropout!r}.")
    total = math.prod(strides)
    if n_times % total:
        raise ValueError(
            f"BEIRA: n_times={n_times} is not a multiple of prod(strides) = {total} "
            f"(strides={list(strides)}); use n_times = {nearest_multiples(n_times, total)}, "
            "or change the strides."
        )
    if min(decoder_channels(channels, decoder_reduce)) < 1:
        raise ValueError(
            f"BEIRA: decoder_reduce={decoder_reduce} leaves no decoder channels for channels={list(channels)}; "
            f"use decoder_reduce <= {min(channels[:-1])}."
        )
