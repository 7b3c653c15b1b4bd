"""BEIRA with a read-out back end: the interpretable front end and one slow linear filter per ROI.

The U-Net back end of the paper (:class:`~beira_rt.models.beira.BEIRA`) has ~10^5 weights per
ROI to fit from a few minutes of BOLD (a 5-min CWL run has ~150 volumes); on a CPU it
over-fits before it learns. The target carries nothing above ~0.2 Hz, and the classic model of
EEG-informed fMRI is an envelope convolved with a haemodynamic response. This back end is that
model with everything learned:

per ROI head, the same interpretable front end as BEIRA (spatial unmixing into ``n_filters``
branches -> learned band-pass -> batch norm -> rectification -> learned envelope filter ->
optional ``sign(x) log(1 + |x|)``), then

* a causal moving average of ``readout_step`` samples (the envelopes carry nothing fast),
* optionally (``quadratic``) a learned static quadratic per branch, ``u + a u^2`` of the
  normalised slow envelope ``u`` (a Hammerstein read-out: a ROI may follow how far an envelope
  is from its usual level as well as the envelope itself; one weight ``a`` per branch, so the
  haemodynamic filter after it is shared by both terms), and
* a causal dilated convolution with ``readout_taps`` taps spaced ``readout_step`` samples apart
  (a learned haemodynamic filter per branch over the last ``readout_taps * readout_step``
  samples), summed over the branches into one output.

Everything runs at the model rate, with no pooling: output ``t`` depends on input samples
``t - receptive_field + 1 .. t`` and on nothing else (no window edge, no pooling phase), so a
window's last columns equal one pass over a whole recording, and the live read-out at
look-ahead 0 is as good as the offline one. The model is causal (``model.variant: causal``);
the front end's filters are started as a filter bank or from the data
(:func:`offline.spoc.spoc_branches`, ``model.filter_init: spoc``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from beira_rt.models.layers import FusedInterpretableBlock, _channels_last

if TYPE_CHECKING:
    from beira_rt.config import ModelConfig

__all__ = ["BEIRAReadout"]


class BEIRAReadout(nn.Module):
    """BEIRA's interpretable front end with a learned slow linear read-out per ROI head.

    Parameters
    ----------
    n_chans : int
        EEG channels of the input.
    n_outputs : int
        Outputs (ROIs); one head each.
    n_times : int
        The live window in samples; at least :attr:`receptive_field`.
    sfreq : float
        Model sampling rate in Hz.
    n_filters : int
        Branches per head.
    filter_size, envelope_size : int
        Taps of the band-pass and envelope filters.
    readout_step : int
        Samples between the read-out taps (and length of the moving average before them).
    readout_taps : int
        Taps of each branch's read-out filter.
    dropout : float
        Dropout on the envelopes during training.
    envelope_log : bool
        ``sign(x) log(1 + |x|)`` on each envelope.
    quadratic : bool
        A learned ``u + a u^2`` of each normalised slow envelope before the read-out filter.

    Notes
    -----
    Input (batch, n_chans, T) -> output (batch, n_outputs, T) for any ``T``; column ``t`` is
    exact (independent of the zeros before the input) from ``t = receptive_field - 1`` on.
    """

    #: The back end's name in ``model.backbone``.
    backbone = "readout"
    causal = True
    total_stride = 1

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float = 100.0,
        *,
        n_filters: int = 4,
        filter_size: int = 51,
        envelope_size: int = 51,
        readout_step: int = 32,
        readout_taps: int = 56,
        dropout: float = 0.1,
        envelope_log: bool = True,
        quadratic: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("n_chans", n_chans), ("n_outputs", n_outputs), ("n_filters", n_filters),
            ("filter_size", filter_size), ("envelope_size", envelope_size),
            ("readout_step", readout_step), ("readout_taps", readout_taps),
        ):  # fmt: skip
            if int(value) < 1:
                raise ValueError(f"BEIRAReadout: {name} must be >= 1, got {value}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"BEIRAReadout: dropout must be in [0, 1), got {dropout}.")
        self.hparams: dict[str, Any] = {
            "n_chans": int(n_chans), "n_outputs": int(n_outputs), "n_times": int(n_times),
            "sfreq": float(sfreq), "n_filters": int(n_filters), "filter_size": int(filter_size),
            "envelope_size": int(envelope_size), "readout_step": int(readout_step),
            "readout_taps": int(readout_taps), "dropout": float(dropout), "envelope_log": bool(envelope_log),
            "quadratic": bool(quadratic),
        }  # fmt: skip
        self.n_chans, self.n_outputs, self.n_times = int(n_chans), int(n_outputs), int(n_times)
        self.sfreq = float(sfreq)
        self.n_filters = int(n_filters)
        self.readout_step, self.readout_taps = int(readout_step), int(readout_taps)
        self.interpretable = FusedInterpretableBlock(
            n_chans, n_outputs, n_filters, filter_size, envelope_size, causal=True, envelope_log=envelope_log
        )
        self.dropout = nn.Dropout(float(dropout))
        width = n_outputs * n_filters
        self.quadratic = bool(quadratic)
        #: Normalises the slow envelopes before the quadratic (quadratic read-out only).
        self.bn_slow = nn.BatchNorm1d(width, affine=False) if self.quadratic else None
        #: The weight ``a`` of ``u + a u^2`` per branch (quadratic read-out only), starting at 0.
        self.square_weight = nn.Parameter(torch.zeros(width, 1)) if self.quadratic else None
        self.readout = nn.Conv1d(width, n_outputs, readout_taps, groups=n_outputs, dilation=readout_step)
        with torch.no_grad():  # start near zero: the heads begin at the target mean
            self.readout.weight.mul_(0.1)
        if self.n_times < self.receptive_field:
            raise ValueError(
                f"BEIRAReadout: n_times ({n_times}) is shorter than the receptive field "
                f"({self.receptive_field} samples = filters {filter_size} + {envelope_size} - 2 "
                f"+ read-out {readout_taps} x {readout_step}); lengthen model.n_times or shorten "
                "model.readout_seconds."
            )

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, n_chans: int, n_outputs: int, sfreq: float) -> BEIRAReadout:
        """Build from the ``model`` section (``backbone: readout``), filters started as a filter bank
        (``filter_init: filterbank`` or ``spoc``: the bank first, the trainer then fits the
        unmixing to the data) or left random."""
        step = round(model_cfg.readout_step * sfreq)
        model = cls(
            n_chans, n_outputs, model_cfg.n_times, sfreq,
            n_filters=model_cfg.n_filters, filter_size=model_cfg.filter_size,
            envelope_size=model_cfg.envelope_size, readout_step=step,
            readout_taps=math.ceil(model_cfg.readout_seconds * sfreq / step),
            dropout=model_cfg.dropout, envelope_log=model_cfg.envelope_log,
            quadratic=model_cfg.readout_quadratic,
        )  # fmt: skip
        if model_cfg.filter_start in ("filterbank", "spoc"):
            model.init_filterbank()
        return model

    def slow_terms(self, slow: torch.Tensor) -> torch.Tensor:
        """What the read-out filters see, from the moving-averaged envelopes, sample by sample:
        ``slow`` itself, or ``u + a u^2`` of its normalised ``u`` when quadratic.
        (batch, n_outputs * n_filters, T) -> the same shape."""
        if self.bn_slow is None or self.square_weight is None:
            return slow
        u = self.bn_slow(slow)
        return u + self.square_weight * (u * u)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output sample depends on (the newest included)."""
        front = (self.interpretable.band_pass.kernel_size - 1) + (self.interpretable.envelope.kernel_size - 1)
        return front + self.readout_step * self.readout_taps

    @property
    def input_window_seconds(self) -> float:
        """Window length in seconds (``n_times / sfreq``)."""
        return self.n_times / self.sfreq

    @torch.no_grad()
    def set_band_pass(self, head: int, branch: int, freq: float) -> None:
        """Band-pass filter of one branch: a Hann-windowed cosine at ``freq`` Hz, unit norm."""
        weight = self.interpretable.band_pass.weight
        taps = weight.shape[-1]
        t = (torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2) / self.sfreq
        window = torch.hann_window(taps + 2, periodic=False, dtype=torch.float64)[1:-1]
        row = window * torch.cos(2 * math.pi * freq * t)
        weight[head * self.n_filters + branch] = (row / row.norm()).reshape(weight.shape[1:]).to(weight)

    @torch.no_grad()
    def set_band_pass_taps(self, head: int, branch: int, taps: torch.Tensor) -> None:
        """Band-pass filter of one branch set to the given taps (filter_size,)."""
        weight = self.interpretable.band_pass.weight
        weight[head * self.n_filters + branch] = torch.as_tensor(taps).reshape(weight.shape[1:]).to(weight)

    @torch.no_grad()
    def set_unmixing(self, head: int, branch: int, w: torch.Tensor | None) -> None:
        """Spatial filter (n_chans,) of one branch, scaled to unit norm, its bias zeroed; ``None``:
        all zeros (the branch's envelope is then a constant: an unused branch)."""
        unmix = self.interpretable.unmix
        row = head * self.n_filters + branch
        if w is None:
            unmix.weight[row] = 0.0
        else:
            w = torch.as_tensor(w, dtype=torch.float64)
            unmix.weight[row] = (w / w.norm()).reshape(unmix.weight.shape[1:]).to(unmix.weight)
        if unmix.bias is not None:
            unmix.bias[row] = 0.0

    @torch.no_grad()
    def init_filterbank(self, f_low: float = 3.0, f_high_ratio: float = 0.38) -> None:
        """Band-passes at ``n_filters`` log-spaced frequencies from ``f_low`` to ``f_high_ratio *
        sfreq`` (the same in every head), envelopes as unit-sum Hann low-passes."""
        freqs = torch.logspace(math.log10(f_low), math.log10(f_high_ratio * self.sfreq), self.n_filters)
        for head in range(self.n_outputs):
            for branch, freq in enumerate(freqs.tolist()):
                self.set_band_pass(head, branch, freq)
        env = self.interpretable.envelope.weight
        taps = env.shape[-1]
        win = torch.hann_window(taps + 2, periodic=False, dtype=torch.float64)[1:-1]
        env.copy_((win / win.sum()).to(env).expand_as(env))

    def envelopes(self, x: torch.Tensor) -> torch.Tensor:
        """The front end's branch envelopes: (batch, n_chans, T) -> (batch, n_outputs * n_filters, T)."""
        return self.interpretable(_channels_last(x.unsqueeze(2))).squeeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict every output at every sample.

        Parameters
        ----------
        x : torch.Tensor
            EEG (batch, n_chans, T), preprocessed and normalised, at ``sfreq``.

        Returns
        -------
        torch.Tensor
            (batch, n_outputs, T); columns before ``receptive_field - 1`` see the zeros before
            the input.
        """
        if x.dim() != 3 or x.shape[1] != self.n_chans:
            raise ValueError(
                f"BEIRAReadout expects input of shape (batch, n_chans={self.n_chans}, T); got {tuple(x.shape)}."
            )
        z = self.envelopes(x)
        step = self.readout_step
        z = F.avg_pool1d(F.pad(z, (step - 1, 0)), step, stride=1)  # causal moving average
        z = self.dropout(self.slow_terms(z))
        return self.readout(F.pad(z, ((self.readout_taps - 1) * step, 0)))

    @torch.no_grad()
    def one_pass(self, z: torch.Tensor, start: int, stop: int, *, chunk: int = 1 << 16) -> torch.Tensor:
        """Outputs for samples ``[start, stop)`` of a signal, each computed once.

        Every output sees its own history (zeros before sample 0 of ``z``): the same value as
        the column of any window that holds its receptive field. Put the model in eval mode first.

        Parameters
        ----------
        z : torch.Tensor
            (n_chans, N), normalised model-rate EEG on the model's device.
        start, stop : int
            ``0 <= start < stop <= N``.
        chunk : int
            Outputs per forward pass.

        Returns
        -------
        torch.Tensor
            (n_outputs, stop - start).
        """
        warm = self.receptive_field - 1
        out = []
        for a in range(start, stop, chunk):
            b = min(stop, a + chunk)
            lo = max(0, a - warm)
            out.append(self(z[None, :, lo:b])[0, :, a - lo :])
        return torch.cat(out, dim=1)
