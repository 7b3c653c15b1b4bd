"""BEIRA: interpretable CNN from EEG to subcortical sBOLD, all ROI heads fused.

Kovalev, Mikheev, Ossadtchi (2022), arXiv:2211.02024. One head per ROI; a
head is an interpretable front end (spatial unmixing, learned band-pass, rectification,
learned envelope filter), a convolutional encoder that down-samples by ``strides`` and a
mirrored decoder that up-samples back, without skip connections, ending in a 1x1
convolution to one output (the layout of :class:`~beira_rt.models.architecture.BEIRALayout`).
Here the heads run together as grouped convolutions; the separate-head form, for comparison
with the reference code, is in :mod:`beira_rt.models.heads`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from beira_rt.models.architecture import BEIRALayout, BEIRASpec
from beira_rt.models.checks import nearest_multiples
from beira_rt.models.functional import pool_time, upsample_column
from beira_rt.models.layers import (
    FusedConvBlock,
    FusedInterpretableBlock,
    HeadConv,
    _channels_last,
    layers_padding,
    run_layers,
)

if TYPE_CHECKING:
    from beira_rt.config import ModelConfig

__all__ = ["BEIRA"]


class BEIRA(BEIRALayout):
    """BEIRA with one head per output (ROI), the heads fused into grouped convolutions.

    Parameters
    ----------
    n_chans : int
        EEG channels of the input.
    n_outputs : int
        Outputs (ROIs); one independent head each.
    n_times : int
        Window length in samples at ``sfreq``; a multiple of ``prod(strides)``.
    sfreq : float
        Model sampling rate in Hz (documentation of the time axis; the layers count samples).
    **options
        The other hyper-parameters, by keyword, with the paper's defaults: ``n_filters``,
        ``filter_size``, ``envelope_size``, ``channels``, ``kernel_sizes``, ``strides``,
        ``decoder_reduce``, ``dropout``, ``causal``, ``envelope_log`` (see
        :class:`~beira_rt.models.architecture.BEIRASpec`, which describes each).

    Notes
    -----
    Defaults are the paper's settings, 245,057 parameters per head. Input (batch, n_chans,
    T) -> output (batch, n_outputs, T) for any ``T`` that is a multiple of ``prod(strides)``;
    ``n_times`` is the window the model is built and checked for.
    """

    def __init__(
        self, n_chans: int, n_outputs: int, n_times: int, sfreq: float = 100.0, **options: Any
    ) -> None:
        spec = BEIRASpec(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq, **options)
        super().__init__(spec)
        self.n_chans, self.n_outputs, self.n_times = spec.n_chans, spec.n_outputs, spec.n_times
        self.sfreq = spec.sfreq
        self.causal = spec.causal
        self.strides = spec.strides
        self.total_stride = math.prod(spec.strides)
        self._dry_run()

    def _interpretable_block(self) -> FusedInterpretableBlock:
        spec = self.spec
        return FusedInterpretableBlock(
            spec.n_chans,
            spec.n_outputs,
            spec.n_filters,
            spec.filter_size,
            spec.envelope_size,
            causal=spec.causal,
            envelope_log=spec.envelope_log,
        )

    def _conv_block(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int
    ) -> FusedConvBlock:
        spec = self.spec
        return FusedConvBlock(
            spec.n_outputs,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            dropout=spec.dropout,
            causal=spec.causal,
        )

    def _output_layer(self, in_channels: int) -> HeadConv:
        heads = self.spec.n_outputs
        return HeadConv(heads * in_channels, heads, 1, groups=heads)

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, n_chans: int, n_outputs: int, sfreq: float) -> BEIRA:
        """Build from the ``model`` section of a :class:`beira_rt.config.BeiraConfig`.

        Parameters
        ----------
        model_cfg, n_chans, n_outputs, sfreq
            As :meth:`BEIRASpec.from_config <beira_rt.models.architecture.BEIRASpec.from_config>`;
            besides, ``model_cfg.filter_start == 'filterbank'`` starts the filters as a filter
            bank (:meth:`init_filterbank`).

        Returns
        -------
        BEIRA
            In training mode, as built.
        """
        model = cls(**BEIRASpec.from_config(model_cfg, n_chans, n_outputs, sfreq).hparams())
        if model_cfg.filter_start == "filterbank":
            model.init_filterbank()
        return model

    @torch.no_grad()
    def init_filterbank(self, f_low: float = 3.0, f_high_ratio: float = 0.38) -> None:
        """Start every head's band-pass filters as a filter bank and its envelope filters as low-passes.

        Branch ``i`` of each head gets a Hann-windowed cosine at the ``i``-th of ``n_filters``
        log-spaced frequencies from ``f_low`` to ``f_high_ratio * sfreq`` (unit norm); every
        envelope filter a Hann window of unit sum (its bias is kept). A generic starting point
        (as a filter-bank front end), so that the branches carry band envelopes from the first
        step; the unmixing stays random and training moves everything.
        """
        block = self.interpretable
        width, _, taps = block.band_pass.weight.shape
        n_filters = width // self.n_outputs
        freqs = torch.logspace(
            math.log10(f_low), math.log10(f_high_ratio * self.sfreq), n_filters, dtype=torch.float64
        )
        t = (torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2) / self.sfreq
        window = torch.hann_window(taps + 2, periodic=False, dtype=torch.float64)[1:-1]
        bank = window * torch.cos(2 * math.pi * freqs[:, None] * t)
        bank = bank / bank.norm(dim=1, keepdim=True)
        block.band_pass.weight.copy_(bank.repeat(self.n_outputs, 1)[:, None, :].to(block.band_pass.weight))
        env_taps = block.envelope.weight.shape[-1]
        env = torch.hann_window(env_taps + 2, periodic=False, dtype=torch.float64)[1:-1]
        block.envelope.weight.copy_((env / env.sum()).expand_as(block.envelope.weight[:, 0])[:, None, :])

    @property
    def input_window_seconds(self) -> float:
        """Window length in seconds (``n_times / sfreq``)."""
        return self.n_times / self.sfreq

    def _dry_run(self) -> None:
        """Run one zero window so that a size mismatch fails here, naming the parameters."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(torch.zeros(1, self.n_chans, self.n_times))
        except RuntimeError as err:
            raise ValueError(
                f"BEIRA cannot process a window of n_times={self.n_times} samples with "
                f"strides={list(self.strides)} and kernel_sizes={list(self.hparams['kernel_sizes'])}: {err}"
            ) from err
        finally:
            self.train(was_training)
        if tuple(out.shape) != (1, self.n_outputs, self.n_times):
            raise ValueError(
                f"BEIRA produced an output of shape {tuple(out.shape)} for a window of n_times={self.n_times}; "
                f"expected {(1, self.n_outputs, self.n_times)}. Check strides={list(self.strides)}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict every output at every sample of the window.

        Parameters
        ----------
        x : torch.Tensor
            EEG of shape (batch, n_chans, T), preprocessed and normalised, at ``sfreq``;
            ``T`` a multiple of ``prod(strides)`` (normally ``n_times``).

        Returns
        -------
        torch.Tensor
            Shape (batch, n_outputs, T).
        """
        if x.dim() != 3 or x.shape[1] != self.n_chans:
            raise ValueError(
                f"BEIRA expects input of shape (batch, n_chans={self.n_chans}, n_times); got {tuple(x.shape)}."
            )
        if x.shape[2] % self.total_stride:
            raise ValueError(
                f"BEIRA input has {x.shape[2]} samples, not a multiple of prod(strides) = {self.total_stride}; "
                f"use {nearest_multiples(x.shape[2], self.total_stride)} samples."
            )
        x = _channels_last(x.unsqueeze(2))
        # (batch, n_chans, 1, T), channels-last
        x = pool_time(self.forward_stem(x), self.strides[0])
        # (batch, n_outputs * channels[1], 1, T / strides[0])
        return self.forward_tail(x)

    def level_layers(self, level: int) -> tuple[nn.Module, ...]:
        """The layers of encoder level ``level`` before its pooling, in order.

        Level 0 is the full-rate stem (interpretable block, feature block, first encoder
        block); level ``i > 0`` is encoder block ``i``.
        """
        if level == 0:
            return (
                *self.interpretable.layers(),
                *self.feature_block.feature_layers(),
                *self.encoder[0].feature_layers(),
            )
        return self.encoder[level].feature_layers()

    def level_padding(self, level: int) -> tuple[int, int]:
        """Zero padding ``(left, right)`` that level ``level`` accumulates (see :func:`layers_padding`)."""
        return layers_padding(self.level_layers(level))

    @property
    def stem_padding(self) -> tuple[int, int]:
        """Zero padding ``(left, right)``, in samples, that the stem accumulates.

        Stem output ``t`` depends on stem input ``t - left .. t + right``; away from the
        edges by these margins, the stem of a window equals the stem of a longer signal.
        """
        return self.level_padding(0)

    def forward_level(self, x: torch.Tensor, level: int, *, keep: int | None = None) -> torch.Tensor:
        """Encoder level ``level`` before its pooling (see :func:`run_layers` for ``keep``).

        Parameters
        ----------
        x : torch.Tensor
            (batch, width_in, 1, T), channels-last: the EEG (level 0) or the pooled output of
            level ``level - 1``.
        level : int
            0 (the stem) to ``len(strides) - 1``.
        keep : int | None
            Only the first (``> 0``) or last (``< 0``) ``abs(keep)`` output samples.

        Returns
        -------
        torch.Tensor
            (batch, n_outputs * channels[level + 1], 1, T or abs(keep)), channels-last.
        """
        return run_layers(self.level_layers(level), x, keep)

    def forward_stem(self, x: torch.Tensor, *, keep: int | None = None) -> torch.Tensor:
        """The full-rate part: interpretable block, feature block, first encoder block before pooling.

        Parameters
        ----------
        x : torch.Tensor
            (batch, n_chans, 1, T), channels-last; any ``T``.
        keep : int | None
            Only the first (``> 0``) or last (``< 0``) ``abs(keep)`` output samples, each
            layer computed only where those need it (see :func:`run_layers`).

        Returns
        -------
        torch.Tensor
            (batch, n_outputs * channels[1], 1, T or abs(keep)), channels-last.
        """
        # interpretable (n_filters per head) -> feature block (channels[0]) -> first encoder
        # convolution (channels[1]), each at the full rate
        return self.forward_level(x, 0, keep=keep)

    def forward_tail(self, x: torch.Tensor, start: int = 1, column: int | None = None) -> torch.Tensor:
        """The rest of the model, from the pooled output of encoder level ``start - 1``.

        Parameters
        ----------
        x : torch.Tensor
            (batch, n_outputs * channels[start], 1, T / prod(strides[:start])), channels-last;
            ``T`` a multiple of ``prod(strides)``. With ``start=1``: :meth:`forward_stem`
            pooled by ``strides[0]``.
        start : int
            First encoder block to run (1 to ``len(strides)``).
        column : int | None
            Compute only this output sample (the last up-sampling and the output layer
            for it alone).

        Returns
        -------
        torch.Tensor
            (batch, n_outputs, T), or (batch, n_outputs) with ``column``.
        """
        for block in self.encoder[start:]:
            x = block(x)
        # encoder level i: (batch, n_outputs * channels[i + 1], 1, T / prod(strides[: i + 1]))
        last = len(self.decoder) - 1
        for i, block in enumerate(self.decoder):
            if column is not None and i == last:
                x = upsample_column(block.block(x), block.scale, block.causal, column)
            else:
                x = block(x)
        # decoder level i (deepest first): (batch, n_outputs * dec[i], 1, T / prod(strides[:i]))
        x = self.final_layer(x)
        # (batch, n_outputs, 1, T), or (batch, n_outputs, 1, 1) with column
        if column is not None:
            return x[:, :, 0, 0]
        return x.squeeze(2).contiguous()
