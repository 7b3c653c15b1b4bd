"""Live inference that reuses the model's full-rate stem between updates.

Most of BEIRA's work is its full-rate stem (:meth:`BEIRA.forward_stem`:
interpretable block, feature block, first encoder block before pooling). The
stem is a per-sample function of its input apart from the zero padding at the
window edges (:attr:`BEIRA.stem_padding` samples on each side), so between two
updates only a few of its rows change:

- rows for the new samples (computed from the new samples and their context,
  once each, and kept on the device in a ring of ``2 W`` rows);
- the rows within the padding margins of the window's two edges, which see
  the window's zero padding: recomputed at every update from the window's own
  first and last samples, exactly as a whole-window pass pads them.

The pooled stem of the window is then the block maximum of those rows (with
the pooling phase of the current window start) and :meth:`BEIRA.forward_tail`
does the rest. The output equals ``model(window)`` to float32 rounding
(tests/engine/test_stem.py) at about a third of the compute; the same idea,
over a long recording, is :mod:`beira_rt.models.shared_windows`.
"""

from __future__ import annotations

import math

import torch

from beira_rt.models.streaming import write_doubled

from .device_window import DeviceWindow

__all__ = ["StemCache"]


class StemCache:
    """Stem rows of the live window, extended at each update.

    Parameters
    ----------
    model : BEIRA
        In eval mode, on the window's device.
    window : DeviceWindow
        The model-rate window it follows (a reset of the window resets the cache).

    Attributes
    ----------
    usable : bool
        False when the padding margins cover the whole window (then call the model instead).
    """

    def __init__(self, model, window: DeviceWindow) -> None:
        self.model = model
        self.window = window
        self.n_times = W = int(model.n_times)
        self.stride = int(model.strides[0])
        self.left, self.right = (int(p) for p in model.stem_padding)
        self.edge = self.left + self.right
        self.n_left = math.ceil(self.left / self.stride)
        self.n_right = math.ceil(self.right / self.stride)
        self.n_pooled = W // self.stride
        self.usable = (self.n_left + self.n_right) * self.stride <= W and self.edge < W
        with torch.inference_mode():
            probe = torch.zeros((1, window.n_chans, max(self.edge, 1)), device=window.device)
            self.width = int(self._stem(probe).shape[-1])
        # row t (absolute model-rate index since the reset) lives at t % W and t % W + W
        self._rows = torch.zeros((2 * W, self.width), device=window.device)
        self._epoch = window.epoch
        self._next = self.left  # first row not computed yet (rows < left are never read)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        """Stem of (batch, n_chans, L) -> rows (batch, L, width)."""
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return self.model.forward_stem(x4).permute(0, 2, 3, 1).flatten(1, 2)

    def _store(self, first: int, rows: torch.Tensor) -> None:
        write_doubled(self._rows, first, rows)

    def _extend(self) -> None:
        """Compute the rows that became final (their right context arrived) and are in the window."""
        n = self.window.count
        W = self.n_times
        if self.window.epoch != self._epoch:
            self._epoch = self.window.epoch
            self._next = self.left
        first = max(self._next, n - W + self.left)  # older rows are not read any more
        last = n - 1 - self.right  # newest row whose right context is known
        if last < first:
            return
        span = last - first + 1
        seg = self.window.latest(n - (first - self.left))[:, : span + self.edge]
        self._store(first, self._stem(seg.unsqueeze(0))[0, self.left : self.left + span])
        self._next = last + 1

    @torch.inference_mode()
    def forward(self) -> torch.Tensor:
        """The model output for the current (full) window: tensor (n_outputs, n_times)."""
        W, s = self.n_times, self.stride
        self._extend()
        z = self.window.view()
        lo = self.window.count % W
        rows = self._rows[lo : lo + W]  # rows of the window, oldest first (edges stale)
        pooled = rows.view(self.n_pooled, s, self.width).amax(dim=1)
        if self.edge:
            ends = torch.stack([z[:, : self.edge], z[:, W - self.edge :]])  # (2, n_chans, edge)
            exact = self._stem(ends)
            if self.left:
                cols = torch.cat([exact[0, : self.left], rows[self.left : self.n_left * s]])
                pooled[: self.n_left] = cols.view(self.n_left, s, self.width).amax(dim=1)
            if self.right:
                lo_r = W - self.n_right * s
                cols = torch.cat([rows[lo_r : W - self.right], exact[1, self.edge - self.right :]])
                pooled[self.n_pooled - self.n_right :] = cols.view(self.n_right, s, self.width).amax(dim=1)
        # (n_pooled, width) rows are the memory of a channels-last (1, width, 1, n_pooled)
        x = pooled.unsqueeze(0).unsqueeze(1).permute(0, 3, 1, 2)
        return self.model.forward_tail(x)[0]
