"""Evaluate BEIRA on many overlapping windows of one long signal.

The definition (:func:`window_columns`): for every window end ``n``, run the model on
``z[:, n-W+1 : n+1]`` and keep output column ``column``. Two ways compute it:

- ``share=False``: window after window, in batches (the definition itself).
- ``share=True`` (the default when there are many windows): most of the work is in the
  first encoder levels (:meth:`BEIRA.forward_level`; level 0 is the full-rate stem), and a
  level is a per-sample function of its input apart from its zero padding at the window
  edges. So each shared level is computed once over the long signal (once per pooling
  phase the windows need, for the levels after the first pooling), and each window takes
  its slice of the pooled result. What the window edges change is recomputed per window
  from the window's own first and last samples: at each level, the samples within the
  level's padding margins (:meth:`BEIRA.level_padding`) of the edges, plus the pooling
  blocks that touch them. The rest of the model runs per window
  (:meth:`BEIRA.forward_tail`), its last up-sampling and output layer for the one column
  asked for. The result equals the window-by-window one to float32 rounding (usually
  bit-identical; tests/models/test_windows.py). For the paper's model, more than ten times less
  work per window (tools/bench_predict.py).

Tensors here are "rows": (n_samples, width) or (batch, n_samples, width), which is the
memory of the model's channels-last (batch, width, 1, n_samples) activations.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from beira_rt.models.beira import BEIRA

__all__ = ["check_ends", "shared_levels", "window_columns"]

#: Longest stretch of signal whose stem is held at once (samples); bounds memory
#: (n_outputs * channels[1] * 4 bytes per sample, 32 KiB for the paper's model).
STEM_SPAN = 16384
#: Encoder levels shared at most (the deeper ones are cheap and multiply the phases).
MAX_SHARED_LEVELS = 2


def check_ends(ends: np.ndarray, n_samples: int, n_times: int) -> np.ndarray:
    """Window ends as int64, checked: 1-D integers with a whole window inside the signal.

    Raises
    ------
    ValueError
        Naming the range the ends must lie in.
    """
    ends = np.asarray(ends)
    if ends.ndim != 1 or not np.issubdtype(ends.dtype, np.integer):
        raise ValueError(
            f"window ends must be a 1-D array of integer sample indices, got {ends.dtype} {ends.shape}."
        )
    if ends.size and (ends.min() < n_times - 1 or ends.max() >= n_samples):
        raise ValueError(
            f"window ends must lie in [{n_times - 1}, {n_samples - 1}] (a window of {n_times} samples ending "
            f"inside the {n_samples}-sample signal); got ends from {ends.min()} to {ends.max()}."
        )
    return ends.astype(np.int64)


def shared_levels(model: BEIRA, max_levels: int = MAX_SHARED_LEVELS) -> list[tuple[int, int]]:
    """Dirty pooled samples ``(left, right)`` after each level that can be shared.

    Level ``i`` can be shared when its edge work fits in its window length: the samples
    within its padding margins of the edges (plus those already dirty from the level
    before) and the pooling blocks that touch them do not meet. Returns one entry per
    shareable level, in order (empty: nothing can be shared).
    """
    out: list[tuple[int, int]] = []
    d_left = d_right = 0
    length = model.n_times
    for level in range(min(max_levels, len(model.strides))):
        a, b = model.level_padding(level)
        s = model.strides[level]
        e_left, e_right = d_left + a, d_right + b
        n_left, n_right = math.ceil(e_left / s), math.ceil(e_right / s)
        if e_left + b > length or e_right + a > length or (n_left + n_right) * s > length:
            break
        out.append((n_left, n_right))
        d_left, d_right, length = n_left, n_right, length // s
    return out


@torch.inference_mode()
def window_columns(
    model: BEIRA,
    z: torch.Tensor,
    ends: np.ndarray,
    column: int,
    *,
    batch_size: int = 16,
    share: bool | None = None,
    stem_span: int = STEM_SPAN,
) -> torch.Tensor:
    """Output column ``column`` of the model for the windows ending at ``ends``.

    Parameters
    ----------
    model : BEIRA
        In eval mode (batch norm uses running statistics, no dropout).
    z : torch.Tensor
        Signal of shape (n_chans, n_samples), on the model's device, float32.
    ends : array of int, shape (n_windows,)
        Index of the newest sample of each window, ``n_times - 1 <= n < n_samples``.
    column : int
        Output column to keep, ``0 <= column < n_times``.
    batch_size : int
        Windows per model call.
    share : bool | None
        Share the first encoder levels between windows (see the module notes); ``None``
        decides (shared when there are more than 4 windows), ``False`` forces the
        window-by-window definition.
    stem_span : int
        Longest stretch of signal whose stem is held at once (samples, at least twice
        ``n_times``); bounds memory.

    Returns
    -------
    torch.Tensor
        Shape (n_windows, n_outputs), on the model's device.
    """
    if model.training:
        raise ValueError("window_columns needs the model in eval mode; call model.eval() first.")
    n_times = model.n_times
    if z.dim() != 2 or z.shape[0] != model.n_chans:
        raise ValueError(f"z must have shape (n_chans={model.n_chans}, n_samples), got {tuple(z.shape)}.")
    if not 0 <= column < n_times:
        raise ValueError(f"column {column} is outside the window of {n_times} samples.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    ends = check_ends(ends, z.shape[1], n_times)
    out = torch.empty(len(ends), model.n_outputs, dtype=z.dtype, device=z.device)
    levels = shared_levels(model)
    if share is None:
        share = len(ends) > 4
    if not share or not levels:
        windows = z.unfold(1, n_times, 1)  # (n_chans, n_samples - n_times + 1, n_times), a view
        for i in range(0, len(ends), batch_size):
            starts = torch.as_tensor(ends[i : i + batch_size] - (n_times - 1), device=z.device)
            batch = windows[:, starts].permute(1, 0, 2)  # (batch, n_chans, n_times)
            out[i : i + batch_size] = model(batch)[:, :, column]
        return out
    order = np.argsort(ends, kind="stable")
    sorted_ends = ends[order]
    span = max(stem_span, 2 * n_times)
    i = 0
    while i < len(sorted_ends):
        first = int(sorted_ends[i]) - (n_times - 1)
        j = int(np.searchsorted(sorted_ends, first + span - 1, side="right"))
        chunk = _SharedChunk(model, z, first, int(sorted_ends[j - 1]) + 1, levels)
        for k in range(i, j, batch_size):
            starts = sorted_ends[k : min(k + batch_size, j)] - (n_times - 1)
            result = model.forward_tail(chunk.pooled_windows(starts), start=len(levels), column=column)
            out[torch.as_tensor(order[k : k + len(starts)], device=z.device)] = result
        i = j
    return out


def _level(model: BEIRA, rows: torch.Tensor, level: int, keep: int | None = None) -> torch.Tensor:
    """Encoder level ``level`` on rows (batch, L, width) -> rows (batch, L or abs(keep), width_out)."""
    x4 = rows.unsqueeze(1).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    return model.forward_level(x4, level, keep=keep).permute(0, 2, 3, 1).flatten(1, 2)


def _block_max(cols: torch.Tensor, stride: int) -> torch.Tensor:
    """Max over consecutive blocks of ``stride`` rows: (batch, n * stride, w) -> (batch, n, w)."""
    return cols.view(cols.shape[0], -1, stride, cols.shape[-1]).amax(dim=2)


class _SharedChunk:
    """The shared levels over ``z[:, a:b]`` and, from them, exact pooled windows.

    ``self._out[path]`` holds the rows of level ``len(path)`` over the long signal for the
    pooling phases ``path`` of the levels before it (rows of level 0: ``path == ()``).
    """

    def __init__(self, model: BEIRA, z: torch.Tensor, a: int, b: int, levels: list[tuple[int, int]]) -> None:
        self.model, self.z, self.a, self.levels = model, z, a, levels
        self._out: dict[tuple[int, ...], torch.Tensor] = {}
        self._in: dict[tuple[int, ...], torch.Tensor] = {(): z[:, a:b].t()}

    def level_input(self, path: tuple[int, ...]) -> torch.Tensor:
        """Input rows of level ``len(path)``: the signal, or the previous level pooled at phase ``path[-1]``."""
        if path not in self._in:
            prev = self.level_output(path[:-1])
            s, phase = self.model.strides[len(path) - 1], path[-1]
            n_blocks = (prev.shape[0] - phase) // s
            self._in[path] = _block_max(prev[None, phase : phase + n_blocks * s], s)[0]
        return self._in[path]

    def level_output(self, path: tuple[int, ...]) -> torch.Tensor:
        """Output rows of level ``len(path)`` over the long signal (before pooling)."""
        if path not in self._out:
            self._out[path] = _level(self.model, self.level_input(path)[None], len(path))[0]
        return self._out[path]

    def pooled_windows(self, starts: np.ndarray) -> torch.Tensor:
        """Exact input of level ``len(levels)`` for the windows starting at ``starts`` (absolute).

        Returns
        -------
        torch.Tensor
            (batch, width, 1, n_times / prod(strides[:len(levels)])), channels-last.
        """
        model = self.model
        q = [int(s) - self.a for s in starts]  # window start in each long sequence of the level
        paths: list[tuple[int, ...]] = [()] * len(q)
        length = model.n_times
        # window samples of the level input that differ from the long sequence, at both edges
        dirty_l = dirty_r = torch.zeros(len(q), 0, 0, device=self.z.device)
        for level, (n_left, n_right) in enumerate(self.levels):
            a, b = model.level_padding(level)
            s = model.strides[level]
            e_l, e_r = dirty_l.shape[1] + a, dirty_r.shape[1] + b
            x_long = [self.level_input(p) for p in paths]
            y_long = [self.level_output(p) for p in paths]
            # exact level outputs within the edges, from the window's own edge inputs
            left_in = torch.stack(
                [x[i + dirty_l.shape[1] : i + e_l + b] for x, i in zip(x_long, q, strict=True)]
            )
            right_in = torch.stack(
                [
                    x[i + length - e_r - a : i + length - dirty_r.shape[1]]
                    for x, i in zip(x_long, q, strict=True)
                ]
            )
            if dirty_l.shape[1]:
                left_in = torch.cat([dirty_l, left_in], dim=1)
            if dirty_r.shape[1]:
                right_in = torch.cat([right_in, dirty_r], dim=1)
            y_left = _level(model, left_in, level, keep=e_l) if e_l else left_in[:, :0, :0]
            y_right = _level(model, right_in, level, keep=-e_r) if e_r else right_in[:, :0, :0]
            # pooling blocks that touch the edges: exact edge outputs + shared interior
            inner = torch.stack([y[i + e_l : i + n_left * s] for y, i in zip(y_long, q, strict=True)])
            dirty_l = _block_max(torch.cat([y_left, inner], dim=1), s) if n_left else inner[:, :0]
            lo = length - n_right * s
            inner = torch.stack([y[i + lo : i + length - e_r] for y, i in zip(y_long, q, strict=True)])
            dirty_r = _block_max(torch.cat([inner, y_right], dim=1), s) if n_right else inner[:, :0]
            paths = [(*p, i % s) for p, i in zip(paths, q, strict=True)]
            q = [i // s for i in q]
            length //= s
        pooled = torch.stack([self.level_input(p)[i : i + length] for p, i in zip(paths, q, strict=True)])
        if dirty_l.shape[1]:
            pooled[:, : dirty_l.shape[1]] = dirty_l
        if dirty_r.shape[1]:
            pooled[:, length - dirty_r.shape[1] :] = dirty_r
        # (batch, length, width) is the memory of a channels-last (batch, width, 1, length)
        return pooled.unsqueeze(1).permute(0, 3, 1, 2)
