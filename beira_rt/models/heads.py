"""BEIRA as separate per-ROI heads, and exact conversion to and from the fused model.

:class:`BEIRAHead` is one ROI's network written with plain ``torch.nn`` layers
(``Conv1d(padding='same')``, ``LayerNorm``, ``MaxPool1d``, linear up-sampling), block for
block as the paper's reference code lays a head out. It exists to compare with that code and
to check the fused model: :func:`split_heads` and :func:`fused_from_heads` copy weights
between a fused :class:`~beira_rt.models.beira.BEIRA` and a list of heads, and the two give
the same outputs (tests/models/test_heads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from beira_rt.models.architecture import BEIRALayout, BEIRASpec
from beira_rt.models.beira import BEIRA
from beira_rt.models.functional import conv_padding, pool_time
from beira_rt.models.layers import FastDropout, HeadLayerNorm, SymLog

__all__ = ["BEIRAHead", "BEIRASeparateHeads", "copy_head_", "fused_from_heads", "load_heads_", "split_heads"]


class _Conv(nn.Conv1d):
    """``Conv1d`` with 'same' padding, or left-only padding when causal."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, *, causal: bool, **kwargs: Any) -> None:
        super().__init__(in_ch, out_ch, kernel_size, padding=0 if causal else "same", **kwargs)
        self.causal_pad = conv_padding(kernel_size, True) if causal else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal_pad is not None:
            x = F.pad(x, self.causal_pad)
        return super().forward(x)


class _ConvBlock(nn.Module):
    """Conv (no bias) -> LayerNorm over channels -> GELU -> dropout -> max pool."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, *, stride: int, dropout: float, causal: bool
    ) -> None:
        super().__init__()
        self.stride = stride
        self.conv = _Conv(in_ch, out_ch, kernel_size, causal=causal, bias=False)
        self.norm = nn.LayerNorm(out_ch)
        self.act = nn.GELU()
        self.drop = FastDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return pool_time(self.drop(self.act(x)), self.stride)


class _Interpretable(nn.Module):
    """The interpretable front end of one head of ``spec`` (see :class:`FusedInterpretableBlock`)."""

    def __init__(self, spec: BEIRASpec) -> None:
        super().__init__()
        n_filters = spec.n_filters
        self.unmix = nn.Conv1d(spec.n_chans, n_filters, 1)
        self.bn_unmix = nn.BatchNorm1d(n_filters, affine=False)
        self.band_pass = _Conv(
            n_filters, n_filters, spec.filter_size, causal=spec.causal, groups=n_filters, bias=False
        )
        self.bn_band = nn.BatchNorm1d(n_filters, affine=False)
        self.act = nn.ReLU()
        self.envelope = _Conv(n_filters, n_filters, spec.envelope_size, causal=spec.causal, groups=n_filters)
        self.compress = SymLog() if spec.envelope_log else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_unmix(self.unmix(x))
        x = self.envelope(self.act(self.bn_band(self.band_pass(x))))
        return x if self.compress is None else self.compress(x)


class BEIRAHead(BEIRALayout):
    """One ROI head of BEIRA in plain ``torch.nn`` layers.

    Input (batch, n_chans, T) -> output (batch, 1, T).

    Parameters
    ----------
    n_chans : int
        EEG channels of the input.
    n_times : int
        Window length in samples at ``sfreq``; a multiple of ``prod(strides)``.
    sfreq : float
        Model sampling rate in Hz.
    **options
        The other hyper-parameters, as for :class:`BEIRA` (see
        :class:`~beira_rt.models.architecture.BEIRASpec`).
    """

    def __init__(self, n_chans: int, n_times: int, sfreq: float = 100.0, **options: Any) -> None:
        super().__init__(
            BEIRASpec(n_chans=n_chans, n_outputs=1, n_times=n_times, sfreq=sfreq, **options), per_head=True
        )

    def _interpretable_block(self) -> _Interpretable:
        return _Interpretable(self.spec)

    def _conv_block(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> _ConvBlock:
        spec = self.spec
        return _ConvBlock(
            in_channels, out_channels, kernel_size, stride=stride, dropout=spec.dropout, causal=spec.causal
        )

    def _output_layer(self, in_channels: int) -> nn.Conv1d:
        return nn.Conv1d(in_channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_chans, T) -> (batch, 1, T); ``T`` a multiple of ``prod(strides)``."""
        x = self.interpretable(x)  # (batch, n_filters, T)
        x = self.feature_block(x)  # (batch, channels[0], T)
        for block in self.encoder:  # (batch, channels[i + 1], T / prod(strides[: i + 1]))
            x = block(x)
        for block in self.decoder:  # (batch, dec[i], T / prod(strides[:i])), deepest first
            x = block(x)
        return self.final_layer(x)  # (batch, 1, T)


class BEIRASeparateHeads(nn.Module):
    """Independent :class:`BEIRAHead` s run one after the other; outputs stacked on axis 1.

    Input (batch, n_chans, T) -> output (batch, n_heads, T), as :class:`BEIRA`.
    """

    def __init__(self, heads: Sequence[BEIRAHead]) -> None:
        super().__init__()
        if not heads:
            raise ValueError("BEIRASeparateHeads needs at least one head.")
        first = heads[0].hparams
        for i, head in enumerate(heads):
            if head.hparams != first:
                raise ValueError(
                    f"head {i} has a different architecture from head 0: {head.hparams} != {first}; "
                    "all heads must be built with the same parameters."
                )
        self.heads = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.heads], dim=1)


def _layer_norm_keys(model: BEIRA) -> set[str]:
    keys = set()
    for name, module in model.named_modules():
        if isinstance(module, HeadLayerNorm):
            keys.update({f"{name}.weight", f"{name}.bias"})
    return keys


def split_heads(model: BEIRA) -> BEIRASeparateHeads:
    """Copy a fused model into separate heads (same mode, same outputs).

    Parameters
    ----------
    model : BEIRA
        The fused model.

    Returns
    -------
    BEIRASeparateHeads
        ``n_outputs`` heads holding the fused model's weights and batch-norm statistics.
    """
    hp = {k: v for k, v in model.hparams.items() if k != "n_outputs"}
    n_heads = model.n_outputs
    ln_keys = _layer_norm_keys(model)
    fused = model.state_dict()
    heads = []
    for h in range(n_heads):
        head = BEIRAHead(**hp)
        state = {}
        for key, ref in head.state_dict().items():
            value = fused[key]
            if ref.dim() == 0:  # num_batches_tracked
                state[key] = value.clone()
            elif key in ln_keys:
                state[key] = value[h].clone()
            else:
                n = ref.shape[0]
                state[key] = value[h * n : (h + 1) * n].clone()
        head.load_state_dict(state)
        heads.append(head)
    separate = BEIRASeparateHeads(heads)
    separate.train(model.training)
    return separate


def load_heads_(model: BEIRA, heads: Sequence[BEIRAHead] | BEIRASeparateHeads) -> BEIRA:
    """Load the weights and buffers of ``heads`` into the fused ``model``, in place; returns it.

    Head ``h`` becomes output ``h``; the architectures must match. The fused batch-norm
    counter ``num_batches_tracked`` (used only when batch-norm momentum is None) is taken
    from the first head.
    """
    head_list = list(heads.heads) if isinstance(heads, BEIRASeparateHeads) else list(heads)
    if len(head_list) != model.n_outputs:
        raise ValueError(f"{len(head_list)} heads cannot fill a fused model of {model.n_outputs} outputs.")
    ln_keys = _layer_norm_keys(model)
    states = [head.state_dict() for head in head_list]
    fused = {}
    for key in model.state_dict():
        values = [state[key] for state in states]
        if values[0].dim() == 0:
            fused[key] = values[0].clone()
        elif key in ln_keys:
            fused[key] = torch.stack(values, dim=0)
        else:
            fused[key] = torch.cat(values, dim=0)
    model.load_state_dict(fused)
    return model


def fused_from_heads(heads: Sequence[BEIRAHead] | BEIRASeparateHeads) -> BEIRA:
    """Build the fused model that computes the given heads (one output per head, in order).

    Parameters
    ----------
    heads : sequence of BEIRAHead or BEIRASeparateHeads
        Heads of one architecture (see :func:`load_heads_`).

    Returns
    -------
    BEIRA
        A fused model whose output ``h`` equals ``heads[h]``'s output.
    """
    separate = heads if isinstance(heads, BEIRASeparateHeads) else BEIRASeparateHeads(list(heads))
    head_list = list(separate.heads)
    training = separate.training if isinstance(heads, BEIRASeparateHeads) else head_list[0].training
    model = load_heads_(BEIRA(n_outputs=len(head_list), **head_list[0].hparams), separate)
    model.train(training)
    return model


def copy_head_(dst: dict[str, torch.Tensor], src: dict[str, torch.Tensor], head: int, n_heads: int) -> None:
    """Copy head ``head``'s weights and buffers from one fused state dict into another, in place.

    Every per-head tensor of a fused :class:`~beira_rt.models.beira.BEIRA` holds its heads as
    ``n_heads`` equal blocks along its first axis (channels of grouped convolutions and batch
    norms, rows of the per-head layer-norm parameters), so head ``h`` is the ``h``-th block.
    Scalars (``num_batches_tracked``) are shared and left alone. Used to keep the best
    validation checkpoint of each ROI head separately (the heads never interact).
    """
    if not 0 <= head < n_heads:
        raise ValueError(f"head {head} is out of range for {n_heads} heads.")
    for key, value in src.items():
        if value.dim() == 0:
            continue
        if value.shape[0] % n_heads:
            raise ValueError(f"{key} of shape {tuple(value.shape)} does not split into {n_heads} heads.")
        n = value.shape[0] // n_heads
        dst[key][head * n : (head + 1) * n].copy_(value[head * n : (head + 1) * n])
