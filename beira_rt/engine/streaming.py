"""Streaming live inference of a causal bundle: each model-rate sample computed once.

:class:`StreamReadout` follows the engine's :class:`~beira_rt.engine.device_window.DeviceWindow`
with a :class:`~beira_rt.models.streaming.CausalStream`: at each update the samples appended
since the last one are pushed (per-update work proportional to the hop, not the window) and
the read-out of the newest window is computed. :func:`choose_inference` decides, from the
``live.inference`` setting, which path the engine takes and says it in words for the
status stream.
"""

from __future__ import annotations

import torch

from beira_rt.models import BEIRA
from beira_rt.models.streaming import CausalStream

from .device_window import DeviceWindow

__all__ = ["INFERENCE_MODES", "StreamReadout", "choose_inference"]

#: ``live.inference`` settings.
INFERENCE_MODES = ("auto", "streaming", "window")


class StreamReadout:
    """Output column ``W - 1 - la`` of the live window, computed by streaming.

    Parameters
    ----------
    model : BEIRA
        Causal, eval mode, on the window's device.
    window : DeviceWindow
        The model-rate window it follows (a reset of the window restarts the stream).
    lookahead : int
        Look-ahead in model-rate samples.
    """

    def __init__(self, model: BEIRA, window: DeviceWindow, lookahead: int) -> None:
        self.window = window
        self.stream = CausalStream(model, lookahead, chunk=window.n_times)
        self._epoch = window.epoch
        self._seen = 0  # window samples pushed into the stream

    @property
    def exact(self) -> bool:
        """Whether the read-out equals the whole-window model (see :class:`CausalStream`)."""
        return self.stream.exact

    @torch.inference_mode()
    def forward(self) -> torch.Tensor:
        """The model output (n_outputs,) at the read-out column of the current (full) window."""
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
        return self.stream.read()


def choose_inference(
    setting: str, model: BEIRA, window: DeviceWindow, lookahead: int
) -> tuple[str, StreamReadout | None]:
    """The engine's inference path for ``live.inference``.

    Parameters
    ----------
    setting : str
        ``'auto'``: streaming for a causal model whose streaming read-out is exact at this
        look-ahead, else the whole window; ``'streaming'``: streaming or an error;
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
        naming why; for an unknown setting.
    """
    if setting not in INFERENCE_MODES:
        raise ValueError(f"live.inference must be one of {', '.join(INFERENCE_MODES)}; got {setting!r}.")
    if setting == "window":
        return "window", None
    why = ""
    if not isinstance(model, BEIRA):
        why = f"the {type(model).__name__} back end has no streaming path (its whole window costs little)"
    elif not model.causal:
        why = "the model is the reference variant (streaming needs model.variant: causal)"
    else:
        readout = StreamReadout(model, window, lookahead)
        if readout.exact:
            return "streaming", readout
        why = (
            f"the read-out at a look-ahead of {lookahead} samples depends on {readout.stream.reach} samples "
            f"before it, more than the window of {model.n_times} holds, so streaming would not equal the window"
        )
    if setting == "streaming":
        raise ValueError(f"live.inference: streaming is not possible: {why}.")
    return "window", None
