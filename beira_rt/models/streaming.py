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
level: :class:`ReferenceStream` keeps the same sequences (each value stored once it is final, its
look-ahead later) and recomputes, at each read-out, the few newest blocks of each level that see
the window's right padding.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from beira_rt.models.beira import BEIRA
from beira_rt.models.layers import HeadConv, HeadLayerNorm, layers_padding

__all__ = ["CausalStream", "ReferenceStream", "stream_columns", "streams_exactly", "write_doubled"]

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

    def every(self, first: int, count: int, step: int = 1) -> torch.Tensor:
        """Rows at ``first, first + step, ..., first + (count - 1) step`` (within the newest
        ``capacity``): (count, width), a view."""
        lo = first % self.capacity
        return self.buf[lo : lo + max(count - 1, 0) * step + min(count, 1) : step]


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(1, width, 1, m) -> rows (m, width) (a view)."""
    return x[0, :, 0, :].t()


def _as_4d(rows: torch.Tensor) -> torch.Tensor:
    """Rows (m, width) -> (1, width, 1, m) (a view; channels-last when the rows are contiguous)."""
    return rows.t()[None, :, None, :]


def _per_sample(layer: nn.Module, rows: torch.Tensor) -> torch.Tensor:
    """A per-sample layer in eval mode on rows (T, C); a head layer norm by its row form
    (~3x faster than the module's group norm on a few rows)."""
    if isinstance(layer, HeadLayerNorm):
        return layer.rows(rows)
    return _rows(layer(_as_4d(rows)))


def _check_lookahead(model: BEIRA, lookahead: int) -> int:
    """``lookahead`` as an int in ``[0, n_times)``, or a ValueError."""
    la = int(lookahead)
    if not 0 <= la < model.n_times:
        raise ValueError(f"look-ahead {la} samples must be in [0, {model.n_times}).")
    return la


def _stacked(layer: HeadConv, rows: torch.Tensor, dilation: int) -> torch.Tensor:
    """The taps of ``layer`` over rows (T, in_channels) without padding, ``dilation`` rows apart,
    oldest first: (T - (k-1) dilation, groups, kernel, in_per_group), by contiguous copies."""
    k = layer.kernel_size
    m = rows.shape[0] - (k - 1) * dilation
    grouped = rows.reshape(rows.shape[0], layer.groups, -1)
    return torch.stack([grouped[j * dilation : j * dilation + m] for j in range(k)], 2)


class _Convs:
    """The model's grouped convolutions as batched matrix products over gathered taps.

    A stream evaluates each convolution at a few positions, reading its input ``dilation``
    samples apart; oneDNN's dilated convolutions are slow for that (several times slower than
    the arithmetic needs), a matrix product per head over the gathered taps is not.
    Depth-wise filters (one input channel per group) stay convolutions. The weights are laid
    out once, (groups, kernel * in_per_group, out_per_group), tap-major, so that the taps of a
    group are its input rows one after the other (gathered by contiguous copies).
    """

    def __init__(self) -> None:
        self._weights: dict[int, torch.Tensor] = {}

    def _weight(self, layer: HeadConv) -> torch.Tensor:
        w = self._weights.get(id(layer))
        if w is None:
            out, per_group, kernel = layer.weight.shape
            g = layer.groups
            w = layer.weight.detach().view(g, out // g, per_group, kernel).permute(0, 3, 2, 1)
            w = self._weights[id(layer)] = w.reshape(g, kernel * per_group, out // g).contiguous()
        return w

    def _grouped(self, layer: HeadConv, taps: torch.Tensor) -> torch.Tensor:
        """The convolution from taps (n, groups, kernel, in_per_group), oldest first: (n, out_channels)."""
        n, g = taps.shape[0], layer.groups
        y = torch.bmm(taps.reshape(n, g, -1).transpose(0, 1), self._weight(layer)).transpose(0, 1)
        y = y.reshape(n, -1)
        return y if layer.bias is None else y + layer.bias

    def taps(self, layer: HeadConv, taps: torch.Tensor) -> torch.Tensor:
        """The convolution at positions whose inputs are ``taps`` (n, kernel, in_channels), oldest
        first: (n, out_channels)."""
        n, k = taps.shape[:2]
        return self._grouped(layer, taps.reshape(n, k, layer.groups, -1).transpose(1, 2))

    def rows(self, layer: HeadConv, rows: torch.Tensor, dilation: int) -> torch.Tensor:
        """The causal convolution of rows (T, in_channels) without padding: (T - (k-1) dilation, out)."""
        if layer.weight.shape[1] == 1 and layer.groups > 1:  # depth-wise: a convolution
            w = layer.weight.unsqueeze(2)
            return _rows(F.conv2d(_as_4d(rows), w, layer.bias, groups=layer.groups, dilation=(1, dilation)))
        return self._grouped(layer, _stacked(layer, rows, dilation))

    def rows_pair(
        self, layer: HeadConv, rows: torch.Tensor, dilation: int, rows2: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`rows` of ``rows`` at ``dilation`` and of ``rows2`` at 1, in one product (dense
        groups only): (len(rows) - (k-1) dilation + len(rows2) - (k-1), out_channels)."""
        taps = torch.cat([_stacked(layer, rows, dilation), _stacked(layer, rows2, 1)])
        return self._grouped(layer, taps)

    def run_edge(self, layers: Sequence[nn.Module], rows: torch.Tensor, keep: int) -> torch.Tensor:
        """The last ``keep`` outputs of layers in eval mode on rows (T, C) that end at a window's end.

        Each :class:`HeadConv` is zero-padded on the right as the window pads it; the rows start
        early enough that no left padding is needed (``T >= keep`` + the layers' left padding),
        and each layer is computed only where the kept outputs need it.
        """
        rows = rows[rows.shape[0] - keep - layers_padding(layers)[0] :]
        for layer in layers:
            if isinstance(layer, HeadConv):
                right = layer.padding[1]
                if right:
                    rows = torch.cat([rows, rows.new_zeros((right, rows.shape[1]))])
                rows = self.rows(layer, rows, 1)
            else:
                rows = _per_sample(layer, rows)
        return rows

    def run(self, layers: Sequence[nn.Module], rows: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        """Layers in eval mode on rows (T, C), each :class:`HeadConv` without padding and with ``dilation``."""
        for layer in layers:
            rows = (
                self.rows(layer, rows, dilation) if isinstance(layer, HeadConv) else _per_sample(layer, rows)
            )
        return rows


def _conv_reach(layers: Sequence[nn.Module]) -> int:
    """Samples back (at the layers' own rate) that a stack of causal layers reads."""
    return sum(layer.kernel_size - 1 for layer in layers if isinstance(layer, HeadConv))


def _width(layers: Sequence[nn.Module]) -> int:
    """Output channels of a stack of layers (those of its last convolution)."""
    return [layer for layer in layers if isinstance(layer, HeadConv)][-1].weight.shape[0]


class _EncoderStream:
    """The encoder levels of a BEIRA as full-rate ("a trous") sequences, each sample computed once.

    Level ``k`` before its pooling (``_e[k]``) and after it (``_p[k]``) is one sequence at the
    full rate, all pooling phases at once: its row ``t`` is computed from the input samples up
    to ``t``, each convolution reading ``D_k`` rows apart without padding (``D_k`` the level's
    total stride) and each pooling taking the maximum over a block ending at ``t``. For a causal
    model that row is the model's value at ``t``; for the reference variant, whose 'same'
    convolutions read ahead, it is the value ``delay`` samples before ``t`` (the read-ahead
    of the convolutions up to that sequence).

    Parameters
    ----------
    model : BEIRA
        In eval mode.
    chunk : int
        Samples processed at once (larger pushes are split).
    back : sequence of int
        Rows of each pooled sequence read before the newest ``chunk`` (their capacity).
    x_back : int
        Input rows read before the newest ``chunk``.
    """

    def __init__(self, model: BEIRA, chunk: int, back: Sequence[int], x_back: int = 0) -> None:
        if model.training:
            raise ValueError("streaming inference needs the model in eval mode; call model.eval() first.")
        self.model, self.chunk = model, int(chunk)
        self.n_times = model.n_times
        strides = model.strides
        L = len(strides)
        # total stride of each rate: D[k] = prod(strides[:k])
        self._rate = rate = [math.prod(strides[:k]) for k in range(L + 1)]
        # encoder: (layers, dilation) per level; level 0 is the full-rate stem
        self._enc = [(model.level_layers(0), 1)] + [
            (model.encoder[k].feature_layers(), rate[k]) for k in range(1, L)
        ]
        param = next(model.parameters())
        self.device, self.dtype = dev, dt = param.device, param.dtype
        self._convs = _Convs()
        chunk = self.chunk
        self._x = _Rows(chunk + max(_conv_reach(self._enc[0][0]), x_back), model.n_chans, dev, dt)
        self._e = [
            _Rows(chunk + (strides[k] - 1) * rate[k], _width(layers), dev, dt)
            for k, (layers, _) in enumerate(self._enc)
        ]
        self._p = [_Rows(chunk + b, e.buf.shape[1], dev, dt) for e, b in zip(self._e, back, strict=True)]
        self._all = [self._x, *self._e, *self._p]

    @property
    def count(self) -> int:
        """Absolute position after the newest sample pushed."""
        return self._x.end

    def reset(self, start: int = 0) -> None:
        """Forget every sample; the next one pushed is at absolute position ``start``."""
        for rows in self._all:
            rows.reset(start)

    @torch.inference_mode()
    def push(self, z: torch.Tensor) -> None:
        """Append model-rate samples (n_chans, m), oldest first, on the model's device."""
        for a in range(0, z.shape[1], self.chunk):
            m = z[:, a : a + self.chunk].shape[1]
            if m:
                self._push(z[:, a : a + m])

    def _push(self, z: torch.Tensor) -> None:
        self._push_levels(z)

    def _push_levels(self, z: torch.Tensor) -> None:
        """Extend every encoder sequence by the ``m`` new samples ``z`` (n_chans, m)."""
        m = z.shape[1]
        self._x.append(z.t().to(self.dtype))
        src = self._x
        for k, (layers, d) in enumerate(self._enc):
            self._e[k].append(self._convs.run(layers, src.rows(m + _conv_reach(layers) * d), d))
            self._pool(k, m)
            src = self._p[k]

    def _pool(self, k: int, m: int) -> None:
        """Extend pooled sequence ``k`` by its ``m`` new rows (the maxima over blocks ending there)."""
        s, r = self.model.strides[k], self._rate[k]
        inp = self._e[k].rows(m + (s - 1) * r)
        pooled = inp[(s - 1) * r :]
        for i in range(1, s):
            pooled = torch.maximum(pooled, inp[(s - 1 - i) * r : (s - 1 - i) * r + m])
        self._p[k].append(pooled)

    def _check_ends(self, ends: Sequence[int] | torch.Tensor | None) -> torch.Tensor:
        """Read-out ends as a tensor, each among the newest ``chunk`` samples pushed."""
        n = torch.as_tensor([self.count - 1] if ends is None else ends, dtype=torch.long, device=self.device)
        if n.numel() and (int(n.min()) < self.count - self.chunk or int(n.max()) >= self.count):
            raise ValueError(
                f"read-outs must end among the newest {self.chunk} samples pushed "
                f"[{self.count - self.chunk}, {self.count}); got {int(n.min())}..{int(n.max())}."
            )
        return n

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
        out = self._read(self._check_ends(ends))
        return out[0] if ends is None else out

    def _read(self, n: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CausalStream(_EncoderStream):
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
            raise ValueError(
                "CausalStream needs a causal model (model.variant: causal); see ReferenceStream."
            )
        self.lookahead = _check_lookahead(model, lookahead)
        strides = model.strides
        L = len(strides)
        rate = [math.prod(strides[:k]) for k in range(L + 1)]
        self._top = (model.decoder[0].block.feature_layers(), rate[L])
        # rows of each pooled sequence the next convolution reads before the new ones
        back = [_conv_reach(model.encoder[k].feature_layers()) * rate[k] for k in range(1, L)]
        back.append(_conv_reach(self._top[0]) * rate[L])
        super().__init__(model, chunk, back)
        # the decoder cone: offsets (relative to n) at which decoder[m].block is needed
        self._cone = self._cone_offsets()
        reach = _conv_reach(self._enc[0][0]) + _conv_reach(self._top[0]) * rate[L]
        reach += sum((s - 1) * rate[k] for k, s in enumerate(strides))
        reach += sum(_conv_reach(layers) * d for layers, d in self._enc[1:])
        self._top_back = -min(self._cone[0])  # rows of the top sequence read before n
        self.reach = self._top_back + reach
        self.exact = self.reach <= self.n_times - 1
        self._f = _Rows(self.chunk + self._top_back, _width(self._top[0]), self.device, self.dtype)
        self._all.append(self._f)

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

    def _push(self, z: torch.Tensor) -> None:
        self._push_levels(z)
        layers, d = self._top
        self._f.append(self._convs.run(layers, self._p[-1].rows(z.shape[1] + _conv_reach(layers) * d), d))

    def _read(self, n: torch.Tensor) -> torch.Tensor:
        model, rate, L = self.model, self._rate, len(self.model.strides)
        batch = n.shape[0]
        values = {o: self._f.at(n + o) for o in self._cone[0]}  # (batch, width) per offset
        for m in range(1, L):
            block = model.decoder[m].block
            kernel, d, d_in = block.conv.kernel_size, rate[L - m], rate[L - m + 1]
            nodes = self._cone[m]
            # taps oldest first, as the causal convolution reads them: (nodes * batch, kernel, width)
            taps = torch.cat(
                [
                    torch.stack(
                        [values[d_in * ((o - (kernel - 1 - t) * d) // d_in)] for t in range(kernel)], 1
                    )
                    for o in nodes
                ]
            )
            layers = block.feature_layers()
            y = self._convs.run(layers[1:], self._convs.taps(layers[0], taps))
            values = dict(zip(nodes, y.split(batch), strict=True))
        x = values[rate[1] * (-self.lookahead // rate[1])]
        return self._convs.taps(model.final_layer, x[:, None, :])


class ReferenceStream(_EncoderStream):
    """Streaming read-out of the reference BEIRA ('same' padding, linear up-sampling) at one look-ahead.

    The reference variant's convolutions read ahead, so the rows near the window's newest
    sample see the window's right zero padding and change at every update; the rest do not.
    In absolute positions (as for :class:`CausalStream`, the pooling blocks of a window ending
    at ``n`` end at ``n``, ``n - D``, ...), a value of encoder level ``k`` at position ``e``
    is *final* once every input it depends on has arrived, ``delay_k`` samples later (the
    read-ahead of the convolutions up to it); final values are computed once each, as
    full-rate sequences (:class:`_EncoderStream`). At a read-out ending at ``n``:

    - the values that are not final yet (the last ``ceil(delay_k / D_k)`` blocks of each
      level) are recomputed as the window computes them, with its right zero padding: the
      stem on the newest input samples, each deeper level on its newest blocks, whose older
      inputs are final values read from the sequences;
    - the decoder computes, from the window's bottleneck (final values and the newest blocks),
      only the samples the one output column needs (a plan made once, :meth:`_decoder_plan`,
      with the window's edge clamping and zero padding).

    The per-update work is the hop's new samples at every level, the blocks within the
    read-ahead of the newest sample, and the decoder's few samples: for the paper's
    architecture ~24x fewer multiply-adds than a whole-window pass (counted from the layer
    sizes), 10.5-11.3x less time (tools/bench_latency.py; small products cost more per
    multiply-add).

    **Exactness.** The read-out equals the whole window's when it does not depend on the
    window's *left* padding: :attr:`reach` (samples before ``n`` that it depends on) at most
    ``W - 1``. The paper's architecture at ``W = 2048`` reaches back 900 samples at look-ahead 0
    and is exact for look-aheads up to 1227 samples (12.27 s at 100 Hz; tests/models/test_streaming.py).

    Parameters
    ----------
    model : BEIRA
        The reference variant (``causal=False``), in eval mode.
    lookahead : int
        Look-ahead ``la`` in samples (``0 <= la < n_times``).
    chunk : int
        Samples processed at once (larger pushes are split). :meth:`read` reaches back at
        most ``chunk`` samples from the newest.

    Attributes
    ----------
    reach : int
        Samples before ``n`` that the read-out at ``n`` depends on (an upper bound).
    exact : bool
        ``reach <= n_times - 1``.
    count : int
        Absolute position after the newest sample pushed.
    """

    def __init__(self, model: BEIRA, lookahead: int, *, chunk: int = DEFAULT_CHUNK) -> None:
        if model.causal:
            raise ValueError(
                "ReferenceStream needs the reference variant; stream a causal model with CausalStream."
            )
        self.lookahead = la = _check_lookahead(model, lookahead)
        strides, W = model.strides, model.n_times
        L = len(strides)
        rate = [math.prod(strides[:k]) for k in range(L + 1)]
        pads = [model.level_padding(k) for k in range(L)]  # (left, right), samples of the level's rate
        # delay[k]: read-ahead of encoder level k's output (before pooling), in samples
        delay = list(itertools.accumulate(pads[k][1] * rate[k] for k in range(L)))
        # edge[k]: the newest blocks of level k's input that are not final at a read-out (edge[0]:
        # none of the input samples); out[k]: level k's outputs recomputed (whole pooling blocks
        # covering those that are not final); tail[k]: level k's input blocks that needs
        self._edge = [0] + [math.ceil(math.ceil(delay[k] / rate[k]) / strides[k]) for k in range(L)]
        self._out = [self._edge[k + 1] * strides[k] for k in range(L)]
        self._tail = [self._out[k] + pads[k][0] for k in range(L)]
        self._n_bottleneck = W // rate[L]
        # rows of pooled sequence k (the input of level k + 1, or the bottleneck) read before n
        back = [rate[k] * (self._tail[k] - 1) for k in range(1, L)] + [rate[L] * (self._n_bottleneck - 1)]
        for k in range(1, L):  # and before the new rows, by the level's own convolutions
            back[k - 1] = max(back[k - 1], _conv_reach(model.encoder[k].feature_layers()) * rate[k])
        super().__init__(model, chunk, back, x_back=max(self._tail[0], delay[0] + pads[0][0]))
        # positions of each pooled sequence are stored delay samples late
        self._delay = delay
        for layers, _ in self._enc[1:]:  # the merged update below relies on this layout
            if not isinstance(layers[0], HeadConv) or any(isinstance(x, HeadConv) for x in layers[1:]):
                raise ValueError("ReferenceStream expects one convolution first in each encoder block.")
        self._newest: tuple[int, torch.Tensor] | None = None  # (n, the bottleneck's newest blocks at n)
        self.column = W - 1 - la
        left = pads[0][0]
        for k in range(L):  # left reach of the pooled level k (samples before its block's end)
            if k:
                left += pads[k][0] * rate[k]
            left += (strides[k] - 1) * rate[k]
        self._plan = self._decoder_plan()
        first = int(self._plan[0][0][0])  # the oldest bottleneck block the read-out reads
        self.reach = W - (first + 1) * rate[L] + left
        self.exact = self.reach <= W - 1

    def _decoder_plan(self) -> list[tuple[torch.Tensor, ...]]:
        """What the decoder computes for the read-out column, per decoder block (deepest first).

        From the output back to the bottleneck, the samples each step needs (the up-sampling
        reads two neighbours, clamped at the window's edges; a convolution its taps). Per
        block: ``(inputs, taps, lo, hi, weight)``: the block's input samples needed (indices at
        its rate; those of a block after the first are the samples the block before up-samples),
        for each output it computes the rows of ``inputs`` its taps read (``-1``: the window's
        zero padding), and for each up-sampled sample the two outputs it interpolates (rows of
        the computed outputs) and the weight of the second.
        """
        size, need, steps = self.n_times, [self.column], []
        for block in reversed(self.model.decoder):
            scale = block.scale
            size //= scale
            src = [max((t + 0.5) / scale - 0.5, 0.0) for t in need]
            pairs = [(int(x), min(int(x) + 1, size - 1), x - int(x)) for x in src]
            outs = sorted({i for lo, hi, _ in pairs for i in (lo, hi)})
            left, right = layers_padding(block.block.feature_layers())
            inputs = sorted({i for t in outs for i in range(t - left, t + right + 1) if 0 <= i < size})
            row = {i: r for r, i in enumerate(inputs)}
            taps = [[row.get(i, -1) for i in range(t - left, t + right + 1)] for t in outs]
            out_row = {i: r for r, i in enumerate(outs)}
            steps.insert(
                0,
                (
                    torch.tensor(inputs),
                    torch.tensor(taps),
                    torch.tensor([out_row[lo] for lo, _, _ in pairs]),
                    torch.tensor([out_row[hi] for _, hi, _ in pairs]),
                    torch.tensor([[w] for _, _, w in pairs], dtype=self.dtype),
                ),
            )
            need = inputs
        return [tuple(t.to(self.device) for t in step) for step in steps]

    def reset(self, start: int = 0) -> None:
        super().reset(start)
        self._newest = None

    def _push(self, z: torch.Tensor) -> None:
        """Extend the sequences by the new samples and compute the newest blocks for a read-out at
        the newest sample, in the same products: at the full rate, the rows that become final and
        those that are not final yet are one run with the window's right padding; deeper, one
        convolution computes the new final rows (all phases) and the window's newest blocks."""
        m, strides, convs = z.shape[1], self.model.strides, self._convs
        self._x.append(z.t().to(self.dtype))
        n = self.count - 1
        layers, _ = self._enc[0]
        keep = max(m + self._delay[0], self._out[0])
        y = convs.run_edge(layers, self._x.rows(keep + layers_padding(layers)[0]), keep)
        self._e[0].append(y[keep - self._delay[0] - m : keep - self._delay[0]])
        self._pool(0, m)
        edge = y[keep - self._out[0] :]
        for k, (layers, d) in enumerate(self._enc[1:], start=1):
            conv = layers[0]
            left, right = conv.padding
            src = self._p[k - 1].rows(m + (left + right) * d)  # the final rows the new ones read
            # the newest blocks that are not final (c) are computed; the older ones of their
            # pooling blocks are final and read from the stored sequence
            c = math.ceil(self._delay[k] / d)
            tail = torch.cat([self._older(k - 1, n), self._pooled(edge, k - 1)])[-(c + left) :]
            if right:
                tail = torch.cat([tail, tail.new_zeros((right, tail.shape[1]))])
            y = convs.run(layers[1:], convs.rows_pair(conv, src, d, tail))
            self._e[k].append(y[:m])
            self._pool(k, m)
            done = self._e[k].every(n - d * (self._out[k] - 1) + self._delay[k], self._out[k] - c, d)
            edge = torch.cat([done, y[m:]])
        self._newest = (n, self._pooled(edge, len(strides) - 1))

    def _pooled(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        """Level ``k``'s newest outputs pooled into whole blocks: (rows / strides[k], width)."""
        return rows.reshape(-1, self.model.strides[k], rows.shape[1]).amax(dim=1)

    def _read(self, n: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._read_one(int(i)) for i in n])

    def _read_one(self, n: int) -> torch.Tensor:
        """The read-out of the window ending at ``n``: (n_outputs,)."""
        model, strides, convs = self.model, self.model.strides, self._convs
        if self._newest is not None and self._newest[0] == n:
            x = self._newest[1]  # computed with the push
        else:
            x = self._x.every(n - self._tail[0] + 1, self._tail[0])  # the newest input samples
            for k, (layers, _) in enumerate(self._enc):
                if k:  # older blocks of the level's input: final values
                    x = torch.cat([self._older(k - 1, n), x])
                x = self._pooled(convs.run_edge(layers, x, self._out[k]), k)
        x = torch.cat([self._older(len(strides) - 1, n), x])  # the window's bottleneck
        x = x[self._plan[0][0]]  # the blocks the decoder reads
        for block, (_, taps, lo, hi, weight) in zip(model.decoder, self._plan, strict=True):
            x = torch.cat([x, x.new_zeros((1, x.shape[1]))])  # row -1: the zero padding
            layers = block.block.feature_layers()
            y = convs.run(layers[1:], convs.taps(layers[0], x[taps]))
            x = torch.lerp(y[lo], y[hi], weight)
        return convs.taps(model.final_layer, x[:, None, :])[0]

    def _older(self, k: int, n: int) -> torch.Tensor:
        """Final values of pooled sequence ``k`` for the older blocks of the read-out ending at ``n``.

        Blocks ``n - D (T - 1), ..., n - D e`` (``D`` the rate of the pooled level, ``T`` the
        blocks the next level reads, ``e`` those recomputed): rows (T - e, width), a view.
        """
        rate = self._rate[k + 1]
        needed = self._tail[k + 1] if k + 1 < len(self._tail) else self._n_bottleneck
        first = n - rate * (needed - 1) + self._delay[k]
        return self._p[k].every(first, needed - self._edge[k + 1], rate)


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
