"""Streaming inference of the causal BEIRA: each sample computed once, per-update cost independent of the window.

The whole-window definition (docs/CONTRACTS.md) reads the causal model's output at column
``W-1-la`` of the window ending at model-rate sample ``n``. In that window every pooling
block is aligned with the window's start, and since ``W`` is a multiple of ``prod(strides)``
the blocks of every level *end at* ``n``, ``n - D``, ``n - 2D``, ... (``D`` the level's
total stride). So, written in absolute sample positions:

- encoder level ``k`` (rate ``D_k = prod(strides[:k])``) evaluated at a block ending at
  absolute position ``p`` depends on ``p`` only, never on the window: a pooled value is the
  maximum of the level below at ``p, p - D_{k-1}, ...``; a causal convolution reads its
  input at ``p, p - D_k, ..., p - (K-1) D_k``. Each level is therefore one sequence at the
  full rate (all pooling phases at once: a dilated, "a trous" evaluation), extended by the
  new samples of each update and computed once per sample. The deepest decoder block before
  its up-sampling (``decoder[0].block``) is of the same kind.
- the causal up-sampling holds the newest block that is complete, which *does* depend on
  the read-out: a fine position ``n + o`` holds the coarse block ending at
  ``n + D * floor(o / D)``. From the read-out column back, the decoder needs a small,
  fixed set of positions relative to ``n`` (its "cone", a few columns per level); they are
  computed at each read-out from the stored sequences.

**Exactness and warm-up.** The stream equals the window at read-out ``n`` when every input
the read-out depends on lies inside the window, i.e. when the receptive field of the read-out
(:attr:`CausalStream.reach`, samples back from ``n``) is at most ``W - 1``: then neither the
window's zero padding nor the stream's longer past can matter, and the equality holds from the
first full window on (whatever the stream saw before). When the receptive field does not fit
(a look-ahead too large for the window), the window's left zero padding shapes its output
at every update and the stream, which sees the real past, differs: :attr:`CausalStream.exact`
is False and the live engine keeps the whole-window path. For the default and the paper's
architecture (``strides`` 8, 8, 4, ``kernel_sizes`` 5, 5, 3, filters of 51 taps) the reach is
1545 samples at look-ahead 0 (it grows with the look-ahead), so the stream is exact for
look-aheads up to 480 samples (4.8 s at 100 Hz) of the 2048-sample window
(tests/models/test_streaming.py).

The reference variant ('same' padding, linear up-sampling) looks at later samples at every
level; it cannot be streamed exactly at a useful cost and is refused here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from beira_rt.models.beira import BEIRA
from beira_rt.models.layers import HeadConv

__all__ = ["CausalStream", "stream_columns", "streams_exactly", "write_doubled"]

#: Samples processed at once (larger pushes are split); bounds the memory of the sequences.
DEFAULT_CHUNK = 1024


def write_doubled(buf: torch.Tensor, first: int, rows: torch.Tensor) -> None:
    """Write ``rows`` (m, width) for absolute positions ``first ..`` into a doubled ring ``buf``.

    ``buf`` (2 capacity, width) holds position ``t`` at ``t % capacity`` and ``t % capacity +
    capacity``, so that any ``capacity`` consecutive positions are one contiguous slice;
    ``m <= capacity``.
    """
    cap, m = buf.shape[0] // 2, rows.shape[0]
    start = first % cap
    head = min(m, cap - start)
    buf[start : start + head] = rows[:head]
    buf[start + cap : start + cap + head] = rows[:head]
    if head < m:
        buf[: m - head] = rows[head:]
        buf[cap : cap + m - head] = rows[head:]


class _Rows:
    """The newest ``capacity`` rows (positions) of a sequence of ``width`` channels.

    Every row is stored twice (at ``i`` and ``i + capacity``), so the newest ``k`` rows are
    one contiguous slice. Positions never written read as zeros.
    """

    def __init__(self, capacity: int, width: int, device: torch.device, dtype: torch.dtype) -> None:
        self.capacity = int(capacity)
        self.buf = torch.zeros((2 * self.capacity, width), device=device, dtype=dtype)
        self.end = 0  # absolute position after the newest row

    def reset(self, start: int) -> None:
        self.buf.zero_()
        self.end = int(start)

    def append(self, rows: torch.Tensor) -> None:
        write_doubled(self.buf, self.end, rows)
        self.end += rows.shape[0]

    def rows(self, k: int) -> torch.Tensor:
        """The newest ``k`` rows, oldest first: (k, width), a view."""
        hi = self.end % self.capacity + self.capacity
        return self.buf[hi - k : hi]

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        """Rows at absolute ``positions`` (within the newest ``capacity``): (len, width)."""
        return self.buf[positions % self.capacity]


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(1, width, 1, m) -> rows (m, width) (a view)."""
    return x[0, :, 0, :].t()


def _as_4d(rows: torch.Tensor) -> torch.Tensor:
    """Rows (m, width) -> (1, width, 1, m) (a view; channels-last when the rows are contiguous)."""
    return rows.t()[None, :, None, :]


class _Convs:
    """The model's grouped convolutions as batched matrix products over gathered taps.

    A stream evaluates each convolution at a few positions, reading its input ``dilation``
    samples apart; oneDNN's dilated convolutions are slow for that (several times slower than
    the arithmetic needs), a matrix product per head over the gathered taps is not.
    Depth-wise filters (one input channel per group) stay convolutions. The weights are laid
    out once, (groups, in_per_group * kernel, out_per_group).
    """

    def __init__(self) -> None:
        self._weights: dict[int, torch.Tensor] = {}

    def _weight(self, layer: HeadConv) -> torch.Tensor:
        w = self._weights.get(id(layer))
        if w is None:
            out, per_group, kernel = layer.weight.shape
            g = layer.groups
            w = layer.weight.detach().view(g, out // g, per_group, kernel).permute(0, 2, 3, 1)
            w = self._weights[id(layer)] = w.reshape(g, per_group * kernel, out // g).contiguous()
        return w

    def taps(self, layer: HeadConv, taps: torch.Tensor) -> torch.Tensor:
        """The convolution at positions whose inputs are ``taps`` (n, in_channels, kernel), oldest
        first: (n, out_channels)."""
        n, g = taps.shape[0], layer.groups
        y = torch.bmm(taps.reshape(n, g, -1).transpose(0, 1), self._weight(layer)).transpose(0, 1)
        y = y.reshape(n, -1)
        return y if layer.bias is None else y + layer.bias

    def rows(self, layer: HeadConv, rows: torch.Tensor, dilation: int) -> torch.Tensor:
        """The causal convolution of rows (T, in_channels) without padding: (T - (k-1) dilation, out)."""
        k = layer.kernel_size
        if layer.weight.shape[1] == 1 and layer.groups > 1:  # depth-wise: a convolution
            w = layer.weight.unsqueeze(2)
            return _rows(F.conv2d(_as_4d(rows), w, layer.bias, groups=layer.groups, dilation=(1, dilation)))
        m = rows.shape[0] - (k - 1) * dilation
        return self.taps(layer, torch.stack([rows[j * dilation : j * dilation + m] for j in range(k)], -1))

    def run(self, layers: Sequence[nn.Module], rows: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        """Layers in eval mode on rows (T, C), each :class:`HeadConv` without padding and with ``dilation``."""
        for layer in layers:
            if isinstance(layer, HeadConv):
                rows = self.rows(layer, rows, dilation)
            else:
                rows = _rows(layer(_as_4d(rows)))
        return rows


def _conv_reach(layers: Sequence[nn.Module]) -> int:
    """Samples back (at the layers' own rate) that a stack of causal layers reads."""
    return sum(layer.kernel_size - 1 for layer in layers if isinstance(layer, HeadConv))


class CausalStream:
    """Streaming read-out of a causal BEIRA at one look-ahead.

    Feed model-rate samples with :meth:`push` (any number at a time); :meth:`read` returns
    the model output at column ``W - 1 - la`` of the windows ending at given samples, equal
    to ``model(z[:, n-W+1 : n+1])[:, W-1-la]`` to float32 rounding when :attr:`exact`.

    Parameters
    ----------
    model : BEIRA
        A causal model (``causal=True``) in eval mode.
    lookahead : int
        Look-ahead ``la`` in samples (``0 <= la < n_times``).
    chunk : int
        Samples processed at once (larger pushes are split). :meth:`read` reaches back at
        most ``chunk`` samples from the newest.

    Attributes
    ----------
    reach : int
        Samples before ``n`` that the read-out at ``n`` depends on (its receptive field).
    exact : bool
        ``reach <= n_times - 1``: the stream equals the whole-window model at every update.
    count : int
        Absolute position after the newest sample pushed.
    """

    def __init__(self, model: BEIRA, lookahead: int, *, chunk: int = DEFAULT_CHUNK) -> None:
        if not model.causal:
            raise ValueError("streaming inference needs a causal model (model.variant: causal).")
        if model.training:
            raise ValueError("streaming inference needs the model in eval mode; call model.eval() first.")
        la = int(lookahead)
        if not 0 <= la < model.n_times:
            raise ValueError(f"look-ahead {la} samples must be in [0, {model.n_times}).")
        self.model, self.lookahead, self.chunk = model, la, int(chunk)
        self.n_times = model.n_times
        strides = model.strides
        L = len(strides)
        # total stride of each rate: D[k] = prod(strides[:k])
        self._rate = [math.prod(strides[:k]) for k in range(L + 1)]
        # encoder: (layers, dilation) per level; level 0 is the full-rate stem
        self._enc = [(model.level_layers(0), 1)] + [
            (model.encoder[k].feature_layers(), self._rate[k]) for k in range(1, L)
        ]
        self._top = (model.decoder[0].block.feature_layers(), self._rate[L])
        # the decoder cone: offsets (relative to n) at which decoder[m].block is needed
        self._cone = self._cone_offsets()
        reach = _conv_reach(self._enc[0][0]) + _conv_reach(self._top[0]) * self._rate[L]
        reach += sum((s - 1) * self._rate[k] for k, s in enumerate(strides))
        reach += sum(_conv_reach(layers) * d for layers, d in self._enc[1:])
        self._top_back = -min(self._cone[0])  # rows of the top sequence read before n
        self.reach = self._top_back + reach
        self.exact = self.reach <= self.n_times - 1
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._convs = _Convs()
        self._build()

    # ------------------------------------------------------------------ structure
    def _cone_offsets(self) -> list[list[int]]:
        """Offsets ``o`` (relative to ``n``) of decoder[m].block's outputs the read-out needs, per ``m``."""
        rate, L = self._rate, len(self.model.strides)
        need = [
            sorted({rate[1] * (-self.lookahead // rate[1])})
        ]  # decoder[L-1], held by the last up-sampling
        for m in range(L - 1, 0, -1):
            kernel = self.model.decoder[m].block.conv.kernel_size
            d, d_in = rate[L - m], rate[L - m + 1]
            taps = {d_in * ((o - j * d) // d_in) for o in need[0] for j in range(kernel)}
            need.insert(0, sorted(taps))
        return need

    def _build(self) -> None:
        model, rate, chunk = self.model, self._rate, self.chunk
        strides = model.strides
        dev, dt = self.device, self.dtype

        def width(layers: Sequence[nn.Module], fallback: int) -> int:
            convs = [layer for layer in layers if isinstance(layer, HeadConv)]
            return convs[-1].weight.shape[0] if convs else fallback

        self._x = _Rows(chunk + _conv_reach(self._enc[0][0]), model.n_chans, dev, dt)
        self._e: list[_Rows] = []  # encoder level k before pooling
        self._p: list[_Rows] = []  # pooled level k (input of encoder level k + 1, or of the top)
        for k, (layers, _) in enumerate(self._enc):
            w = width(layers, 0)
            self._e.append(_Rows(chunk + (strides[k] - 1) * rate[k], w, dev, dt))
            nxt = self._enc[k + 1] if k + 1 < len(self._enc) else self._top
            self._p.append(_Rows(chunk + _conv_reach(nxt[0]) * nxt[1], w, dev, dt))
        self._f = _Rows(chunk + self._top_back, width(self._top[0], 0), dev, dt)
        self._all = [self._x, *self._e, *self._p, self._f]

    # ------------------------------------------------------------------ state
    @property
    def count(self) -> int:
        return self._x.end

    def reset(self, start: int = 0) -> None:
        """Forget every sample; the next one pushed is at absolute position ``start``."""
        for rows in self._all:
            rows.reset(start)

    @torch.inference_mode()
    def push(self, z: torch.Tensor) -> None:
        """Append model-rate samples (n_chans, m), oldest first, on the model's device."""
        for a in range(0, z.shape[1], self.chunk):
            self._push(z[:, a : a + self.chunk])

    def _push(self, z: torch.Tensor) -> None:
        m = z.shape[1]
        if m == 0:
            return
        self._x.append(z.t().to(self.dtype))
        src, back = self._x, _conv_reach(self._enc[0][0])
        for k, (layers, d) in enumerate(self._enc):
            self._e[k].append(self._convs.run(layers, src.rows(m + back * d), d))
            s, r = self.model.strides[k], self._rate[k]
            inp = self._e[k].rows(m + (s - 1) * r)
            pooled = inp[(s - 1) * r :]  # the max over a block ending at each new position
            for i in range(1, s):
                pooled = torch.maximum(pooled, inp[(s - 1 - i) * r : (s - 1 - i) * r + m])
            self._p[k].append(pooled)
            src = self._p[k]
            nxt = self._enc[k + 1] if k + 1 < len(self._enc) else self._top
            back = _conv_reach(nxt[0])
        layers, d = self._top
        self._f.append(self._convs.run(layers, src.rows(m + back * d), d))

    @torch.inference_mode()
    def read(self, ends: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """Output column ``W - 1 - la`` of the windows ending at ``ends`` (absolute positions).

        Parameters
        ----------
        ends : sequence of int | None
            Window ends ``n``, each among the newest ``chunk`` samples pushed; ``None``: the newest.

        Returns
        -------
        torch.Tensor
            (len(ends), n_outputs), or (n_outputs,) for ``ends=None``; on the model's device.
        """
        single = ends is None
        n = torch.as_tensor([self.count - 1] if single else ends, dtype=torch.long, device=self.device)
        if n.numel() and (int(n.min()) < self.count - self.chunk or int(n.max()) >= self.count):
            raise ValueError(
                f"read-outs must end among the newest {self.chunk} samples pushed "
                f"[{self.count - self.chunk}, {self.count}); got {int(n.min())}..{int(n.max())}."
            )
        out = self._read(n)
        return out[0] if single else out

    def _read(self, n: torch.Tensor) -> torch.Tensor:
        model, rate, L = self.model, self._rate, len(self.model.strides)
        batch = n.shape[0]
        values = {o: self._f.at(n + o) for o in self._cone[0]}  # (batch, width) per offset
        for m in range(1, L):
            block = model.decoder[m].block
            kernel, d, d_in = block.conv.kernel_size, rate[L - m], rate[L - m + 1]
            nodes = self._cone[m]
            # taps oldest first, as the causal convolution reads them: (nodes * batch, width, kernel)
            taps = torch.cat(
                [
                    torch.stack(
                        [values[d_in * ((o - (kernel - 1 - t) * d) // d_in)] for t in range(kernel)], -1
                    )
                    for o in nodes
                ]
            )
            layers = block.feature_layers()
            y = self._convs.run(layers[1:], self._convs.taps(layers[0], taps))
            values = dict(zip(nodes, y.split(batch), strict=True))
        x = values[rate[1] * (-self.lookahead // rate[1])]
        return self._convs.taps(model.final_layer, x[:, :, None])


def streams_exactly(model: BEIRA, lookahead: int) -> bool:
    """Whether :class:`CausalStream` reproduces the whole-window read-out of ``model`` at ``lookahead`` samples."""
    return bool(model.causal) and not model.training and CausalStream(model, lookahead, chunk=1).exact


@torch.inference_mode()
def stream_columns(
    model: BEIRA, z: torch.Tensor, ends: Sequence[int] | torch.Tensor, lookahead: int, *, chunk: int = 4096
) -> torch.Tensor:
    """Output column ``W - 1 - lookahead`` of the causal model for the windows ending at ``ends``, in one pass.

    The signal is streamed once through a :class:`CausalStream` (each sample computed once);
    each read-out is taken when its window end has been pushed.

    Parameters
    ----------
    model : BEIRA
        Causal, eval mode.
    z : torch.Tensor
        (n_chans, n_samples) on the model's device.
    ends : sequence of int
        Window ends, ``0 <= n < n_samples`` (the definition needs ``n >= W - 1``).
    lookahead : int
        Samples.
    chunk : int
        Samples streamed at once.

    Returns
    -------
    torch.Tensor
        (len(ends), n_outputs) on the model's device.
    """
    stream = CausalStream(model, lookahead, chunk=chunk)
    ends_t = torch.as_tensor(ends, dtype=torch.long).reshape(-1)
    order = torch.argsort(ends_t)
    out = torch.empty((ends_t.numel(), model.n_outputs), device=stream.device, dtype=stream.dtype)
    sorted_ends = ends_t[order]
    last = int(sorted_ends[-1]) + 1 if ends_t.numel() else 0
    k = 0
    for a in range(0, last, chunk):
        stream.push(z[:, a : min(a + chunk, last)])
        j = int(torch.searchsorted(sorted_ends, stream.count))
        if j > k:
            out[order[k:j].to(out.device)] = stream.read(sorted_ends[k:j])
        k = j
    return out
