"""Streaming live inference: each model-rate sample computed once.

:class:`StreamReadout` follows the engine's :class:`~beira_rt.engine.device_window.DeviceWindow`
with a :class:`~beira_rt.models.streaming.CausalStream` (causal variant) or a
:class:`~beira_rt.models.streaming.ReferenceStream` (the paper's reference variant, whose
newest blocks are recomputed with the window's right padding at each update): at each update the
samples appended since the last one are pushed (per-update work proportional to the hop, not the
window) and the read-out of the newest window is computed. :class:`ReadoutStream` does the same for the
read-out back end (:class:`~beira_rt.models.readout.BEIRAReadout`): the front end runs on the
new samples only (with the filters' reach of history), their envelopes are kept, and the one
output column is computed from the envelopes it needs. :func:`choose_inference` decides, from the
``live.inference`` setting, which path the engine takes and says it in words for the
status stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from beira_rt.models import BEIRA, BEIRAReadout
from beira_rt.models.layers import FusedInterpretableBlock
from beira_rt.models.streaming import CausalStream, ReferenceStream

from .device_window import DeviceWindow

__all__ = ["INFERENCE_MODES", "ReadoutStream", "StreamReadout", "choose_inference"]

#: ``live.inference`` settings.
INFERENCE_MODES = ("auto", "streaming", "window")


class StreamReadout:
    """Output column ``W - 1 - la`` of the live window, computed by streaming.

    Parameters
    ----------
    model : BEIRA
        Eval mode, on the window's device; either variant.
    window : DeviceWindow
        The model-rate window it follows (a reset of the window restarts the stream).
    lookahead : int
        Look-ahead in model-rate samples.
    """

    def __init__(self, model: BEIRA, window: DeviceWindow, lookahead: int) -> None:
        self.window = window
        kind = CausalStream if model.causal else ReferenceStream
        self.stream = kind(model, lookahead, chunk=window.n_times)
        self._epoch = window.epoch
        self._seen = 0  # window samples pushed into the stream

    @property
    def exact(self) -> bool:
        """Whether the read-out equals the whole-window model (the stream's ``exact``)."""
        return self.stream.exact

    @torch.inference_mode()
    def advance(self) -> None:
        """Push the samples appended since the last call, without a read-out.

        The engine calls this while the window fills, so that the first read-out pushes a hop
        of samples, not a whole window at once (~0.3 s for the paper's model on one core, which
        would skip update slots).
        """
        win = self.window
        new = win.count - self._seen
        if win.epoch != self._epoch or new > win.n_times:
            # a reset, or more new samples than the window keeps: restart at the window's
            # first sample (exact all the same: the read-out reaches back less than a window)
            self._epoch = win.epoch
            new = min(win.count, win.n_times)
            self.stream.reset(win.count - new)
        if new:
            self.stream.push(win.latest(new))
        self._seen = win.count

    @torch.inference_mode()
    def forward(self) -> torch.Tensor:
        """The model output (n_outputs,) at the read-out column of the current (full) window."""
        self.advance()
        return self.stream.read()


class FoldedFrontEnd:
    """The read-out model's front end in eval mode as a handful of tensor operations.

    The batch norms (fixed statistics in eval mode) are folded into the spatial unmixing and
    the band-pass, and the two depth-wise causal filters run as sums over unfolded views: on the
    ~100 samples of one update this is ~3x faster than the model's convolution layers, whose
    per-call overhead dominates at that size. The same arithmetic (float rounding apart),
    including the zeros the model's causal padding puts before the first sample of its input.
    Takes the model's weights when made.

    Parameters
    ----------
    block : FusedInterpretableBlock
        ``model.interpretable`` of a :class:`~beira_rt.models.readout.BEIRAReadout` in eval mode.
    """

    def __init__(self, block: FusedInterpretableBlock) -> None:
        def inv_std(bn: torch.nn.Module) -> torch.Tensor:
            return torch.rsqrt(bn.running_var + bn.eps)

        with torch.no_grad():
            s1 = inv_std(block.bn_unmix)
            w = block.unmix.weight[:, :, 0]
            b = block.unmix.bias if block.unmix.bias is not None else torch.zeros_like(s1)
            self.unmix_w = (w * s1[:, None]).contiguous()  # (width, n_chans)
            self.unmix_b = ((b - block.bn_unmix.running_mean) * s1)[:, None]
            s2 = inv_std(block.bn_band)
            self.band_w = (block.band_pass.weight[:, 0, :] * s2[:, None])[:, None, :].contiguous()
            self.band_b = (-block.bn_band.running_mean * s2)[:, None]
            self.env_w = block.envelope.weight[:, 0, :][:, None, :].contiguous()
            eb = block.envelope.bias
            self.env_b = (eb if eb is not None else torch.zeros_like(s2))[:, None]
        self.fs = block.band_pass.kernel_size
        self.es = block.envelope.kernel_size
        self.compress = block.compress is not None

    def __call__(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Envelopes (width, k) of the last ``k`` of the samples ``x`` (n_chans, L), ``k <= L``, as
        ``model.envelopes(x)[..., -k:]`` computes them."""
        n_v = min(x.shape[1], k + self.es - 1)  # band-pass outputs the envelopes need
        n_u = n_v + self.fs - 1  # unmixed samples those need (zeros before x's first)
        u = torch.addmm(self.unmix_b, self.unmix_w, x[:, -min(n_u, x.shape[1]) :])
        if u.shape[1] < n_u:
            u = F.pad(u, (n_u - u.shape[1], 0))
        r = torch.relu((u.unfold(1, self.fs, 1) * self.band_w).sum(-1) + self.band_b)
        if n_v < k + self.es - 1:
            r = F.pad(r, (k + self.es - 1 - n_v, 0))
        e = (r.unfold(1, self.es, 1) * self.env_w).sum(-1) + self.env_b
        return torch.sign(e) * torch.log1p(e.abs()) if self.compress else e


class ReadoutStream:
    """Output column ``W - 1 - la`` of the live window for the read-out back end, by streaming.

    Equal to the whole window (to float rounding) when the column holds the model's receptive
    field (``W - la >= receptive_field``, :attr:`exact`): the envelopes it reads were computed
    with their whole history inside the window.

    Parameters
    ----------
    model : BEIRAReadout
        In eval mode, on the window's device.
    window : DeviceWindow
        The model-rate window it follows (a reset of the window recomputes from the window).
    lookahead : int
        Look-ahead in model-rate samples.
    """

    def __init__(self, model: BEIRAReadout, window: DeviceWindow, lookahead: int) -> None:
        self.model = model
        self.window = window
        self.la = int(lookahead)
        block = model.interpretable
        self.front = (block.band_pass.kernel_size - 1) + (block.envelope.kernel_size - 1)
        self.span = model.readout_step * model.readout_taps  # envelope samples one output reads
        self.exact = window.n_times - self.la >= model.receptive_field
        # the newest span + la envelopes, in a buffer that is appended to in place (no copy of
        # the span at each update)
        width = model.n_outputs * model.n_filters
        self._front_end = FoldedFrontEnd(block)
        self._env = DeviceWindow(width, self.span + self.la, window.device, window.dtype)
        self._epoch = window.epoch
        self._seen = 0

    def _envelopes(self, k: int) -> torch.Tensor:
        """Envelopes of the newest ``k`` window samples, each with the filters' reach of history
        (as far as the window holds it)."""
        win = self.window
        return self._front_end(win.latest(min(win.count, win.n_times, k + self.front)), k)

    @torch.inference_mode()
    def forward(self) -> torch.Tensor:
        """The model output (n_outputs,) at the read-out column of the current (full) window."""
        win = self.window
        new = win.count - self._seen
        keep = self._env.n_times
        if not self._env.count or win.epoch != self._epoch or new > win.n_times - self.front:
            self._epoch = win.epoch
            self._env.reset()
            self._env.append(self._envelopes(min(win.count, win.n_times))[:, -keep:])
        elif new:
            self._env.append(self._envelopes(new))
        self._seen = win.count
        m = self.model
        env = self._env.latest(min(self._env.count, keep))
        env = env[:, : env.shape[1] - self.la] if self.la else env
        if env.shape[1] < self.span:
            env = F.pad(env, (self.span - env.shape[1], 0))
        env = env[:, -self.span :]
        # the column reads the moving average at readout_taps positions readout_step apart, each
        # the mean of the readout_step samples up to it: consecutive blocks of the span
        z = m.slow_terms(env.reshape(env.shape[0], m.readout_taps, m.readout_step).mean(dim=2)[None])[0]
        w = m.readout.weight.reshape(m.n_outputs, -1)  # (n_outputs, n_filters * taps): head h's branches
        return (w * z.reshape(m.n_outputs, -1)).sum(dim=1) + m.readout.bias


def choose_inference(
    setting: str, model: BEIRA | BEIRAReadout, window: DeviceWindow, lookahead: int
) -> tuple[str, StreamReadout | ReadoutStream | None]:
    """The engine's inference path for ``live.inference``.

    Parameters
    ----------
    setting : str
        ``'auto'``: streaming where the streaming read-out is exact at this look-ahead
        (either variant of BEIRA, the read-out back end), else the whole window; ``'streaming'``: streaming or an error;
        ``'window'``: the whole window (with the stem cache when ``live.stem_cache``).
    model, window, lookahead
        As :class:`StreamReadout`.

    Returns
    -------
    mode : str
        ``'streaming'`` or ``'window'``.
    readout : StreamReadout | None
        The streaming read-out (``None`` for the whole window).

    Raises
    ------
    ValueError
        For ``'streaming'`` when the model is not causal or the read-out would not be exact,
        naming why (a look-ahead whose read-out depends on more than the window holds, or a
        back end without a streaming path); for an unknown setting.
    """
    if setting not in INFERENCE_MODES:
        raise ValueError(f"live.inference must be one of {', '.join(INFERENCE_MODES)}; got {setting!r}.")
    if setting == "window":
        return "window", None
    why = ""
    if isinstance(model, BEIRAReadout):
        stream = ReadoutStream(model, window, lookahead)
        if stream.exact:
            return "streaming", stream
        why = (
            f"the read-out at a look-ahead of {lookahead} samples depends on {model.receptive_field} samples "
            f"up to it, more than the window of {model.n_times} holds before it"
        )
    elif not isinstance(model, BEIRA):
        why = f"the {type(model).__name__} back end has no streaming path"
    else:
        readout = StreamReadout(model, window, lookahead)
        if readout.exact:
            return "streaming", readout
        why = (
            f"the read-out at a look-ahead of {lookahead} samples depends on {readout.stream.reach} samples "
            f"before the window's end, more than the window of {model.n_times} holds, so streaming would "
            "not equal the window"
        )
    if setting == "streaming":
        raise ValueError(f"live.inference: streaming is not possible: {why}.")
    return "window", None
