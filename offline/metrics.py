"""Metrics and the two prediction read-outs used to evaluate a model on a block.

(a) Offline prediction (:func:`predict_span`, :func:`predict_offline`)
    What a researcher gets when analysing a recorded session after the fact.
    Windows of ``n_times`` samples are tiled over the EEG with a hop of
    ``n_times // 2``; each sample is read from the one window in which it lies
    in the *read-out region* of the variant:

    - ``reference`` ('same' padding): the centre half ``[W/4, 3W/4)`` of the
      window, where the model sees ~5 s of EEG on both sides;
    - ``causal``: the right half ``[W/2, W)``, where it has the longest history.

    Window ``k`` starts at ``k * hop - lo`` (``lo`` = start of the read-out
    region) and its read-out region covers ``[k * hop, (k + 1) * hop)``. Near
    the ends of the EEG the window is clamped inside ``[0, n_eeg)`` and the
    sample is read wherever it falls. The window used for a sample depends
    only on the sample index and ``n_eeg``, so predicting a span equals
    slicing the whole-recording prediction.

(b) Live prediction at a look-ahead (:func:`lookahead_r`)
    The live engine's read-out, computed by ``beira_rt.inference.predict_at`` itself: the
    window ends at update index ``n`` and the published value is the model
    output ``la`` samples before its right edge, for target sample
    ``i = n - la``. Every look-ahead is scored on the same target samples (a
    grid at the live hop over the block, kept where every look-ahead has its
    EEG).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from beira_rt.config import BeiraConfig
from beira_rt.models.readout import BEIRAReadout

from .split import Block

if TYPE_CHECKING:
    from .dataset import PreparedData

__all__ = [
    "choose_lookahead",
    "lookahead_grid",
    "lookahead_r",
    "pearson_r",
    "predict_block",
    "predict_causal_pass",
    "predict_live",
    "predict_offline",
    "predict_span",
    "readout_region",
    "window_starts",
]


def pearson_r(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson correlation per row.

    Parameters
    ----------
    pred, true : arrays of shape (n_rois, n_samples)

    Returns
    -------
    array of shape (n_rois,)
        ``nan`` for a row where either series is constant.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(
            f"pearson_r needs two arrays of the same shape (n_rois, n_samples); got {pred.shape} and {true.shape}."
        )
    pc = pred - pred.mean(axis=1, keepdims=True)
    tc = true - true.mean(axis=1, keepdims=True)
    denom = np.sqrt((pc**2).sum(axis=1) * (tc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * tc).sum(axis=1) / denom
    return np.where(denom > 0, r, np.nan)


def readout_region(n_times: int, variant: str) -> tuple[int, int]:
    """The offline read-out region ``[lo, hi)`` of a window (see the module notes)."""
    quarter = n_times // 4
    if variant == "reference":
        return quarter, quarter + n_times // 2
    if variant == "causal":
        return n_times - n_times // 2, n_times
    raise ValueError(f"unknown model variant {variant!r}; use 'reference' or 'causal'.")


def window_starts(idx: np.ndarray, n_eeg: int, n_times: int, variant: str) -> np.ndarray:
    """Start of the window each sample index is read from (offline read-out).

    Parameters
    ----------
    idx : array of int, shape (n,)
        Model-rate sample indices, ``0 <= idx < n_eeg``.
    n_eeg, n_times : int
        EEG length and window length in samples (``n_eeg >= n_times``).
    variant : str

    Returns
    -------
    array of int, shape (n,)
    """
    lo, hi = readout_region(n_times, variant)
    hop = hi - lo
    return np.clip((np.asarray(idx) // hop) * hop - lo, 0, n_eeg - n_times)


@torch.no_grad()
def _run_windows(
    model: torch.nn.Module,
    eeg: torch.Tensor,
    starts: np.ndarray,
    n_times: int,
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    """Model outputs (n_windows, n_outputs, n_times) for the windows at ``starts``."""
    out = []
    for k in range(0, len(starts), batch_size):
        chunk = starts[k : k + batch_size]
        x = torch.stack([eeg[:, s : s + n_times] for s in chunk]).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out, axis=0)


def predict_block(
    model: torch.nn.Module,
    data: PreparedData,
    cfg: BeiraConfig,
    block: Block,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_span` over a block of a prepared recording, with the configuration's window,
    variant and evaluation batch size; returns ``(prediction, target)``, each (n_rois, len(block)).
    """
    pred = predict_span(
        model, data.eeg, block.start, block.stop, cfg.model.n_times, cfg.model.variant,
        device=device, batch_size=cfg.training.eval_batch_size,
    )  # fmt: skip
    return pred, data.target[:, block.slice]


def predict_span(
    model: torch.nn.Module,
    eeg: np.ndarray,
    start: int,
    stop: int,
    n_times: int,
    variant: str,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> np.ndarray:
    """Offline prediction (read-out (a)) for the samples ``[start, stop)``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (batch, n_chans, n_times) to (batch, n_outputs, n_times); put in eval mode here.
    eeg : array of shape (n_chans, n_eeg)
        Normalised model-rate EEG of the whole recording.
    start, stop : int
        Span of sample indices, ``0 <= start < stop <= n_eeg``.
    n_times : int
        Window length.
    variant : str
        ``'reference'`` or ``'causal'`` (chooses the read-out region).
    device : str or torch.device
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    array of shape (n_outputs, stop - start), float32
        Normalised predictions (the model's output units).
    """
    n_eeg = eeg.shape[1]
    if n_eeg < n_times:
        raise ValueError(f"the EEG holds {n_eeg} samples, fewer than one window of {n_times}.")
    if not 0 <= start < stop <= n_eeg:
        raise ValueError(f"span [{start}, {stop}) is not inside the EEG [0, {n_eeg}).")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    if isinstance(model, BEIRAReadout):  # every window column with its history is this one pass
        lo = max(0, start - model.receptive_field + 1)
        z = torch.from_numpy(np.ascontiguousarray(eeg[:, lo:stop], dtype=np.float32))
        pred = model.one_pass(z.to(device), start - lo, stop - lo).float().cpu().numpy()
        model.train(was_training)
        return np.ascontiguousarray(pred, dtype=np.float32)
    idx = np.arange(start, stop)
    s_of_i = window_starts(idx, n_eeg, n_times, variant)
    uniq, inverse = np.unique(s_of_i, return_inverse=True)
    eeg_t = torch.from_numpy(np.ascontiguousarray(eeg, dtype=np.float32))
    outs = _run_windows(model, eeg_t, uniq, n_times, device, batch_size)
    pred = outs[inverse, :, idx - s_of_i].T  # (n_outputs, n)
    model.train(was_training)
    return np.ascontiguousarray(pred, dtype=np.float32)


@torch.no_grad()
def predict_causal_pass(
    model: torch.nn.Module,
    eeg: np.ndarray,
    start: int,
    stop: int,
    *,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Read-out (a) of a causal model in one pass: the model over ``eeg[:, :stop]`` at once.

    Each sample is computed once, with its whole history since the start of the recording
    (the pooling blocks aligned with sample 0, as the tiled windows of :func:`predict_span`
    are when ``n_times // 2`` is a multiple of ``prod(strides)``). It differs from
    :func:`predict_span` where a tiled window's zero padding lies inside the receptive field
    of the sample read (the first part of each read-out region): an approximation of
    read-out (a), not used by the evaluation (tools/bench_offline.py measures the deviation).

    Parameters
    ----------
    model : BEIRA
        A causal model; put in eval mode here.
    eeg : array of shape (n_chans, n_eeg)
        Normalised model-rate EEG of the whole recording.
    start, stop : int
        Span of sample indices, ``0 <= start < stop <= n_eeg``.
    device : str or torch.device

    Returns
    -------
    array of shape (n_outputs, stop - start), float32
    """
    if not getattr(model, "causal", False):
        raise ValueError("predict_causal_pass needs a causal model (model.variant: causal).")
    if not 0 <= start < stop <= eeg.shape[1]:
        raise ValueError(f"span [{start}, {stop}) is not inside the EEG [0, {eeg.shape[1]}).")
    was_training = model.training
    model.eval()
    stride = model.total_stride
    padded = -(-stop // stride) * stride  # causal: the zeros after ``stop`` change nothing before it
    x = torch.zeros((1, eeg.shape[0], padded), dtype=torch.float32)
    x[0, :, :stop] = torch.from_numpy(np.ascontiguousarray(eeg[:, :stop], dtype=np.float32))
    out = model(x.to(device))[0, :, start:stop].float().cpu().numpy()
    model.train(was_training)
    return np.ascontiguousarray(out)


#: :func:`predict_live` without streaming: every this many samples by default (the live hop at 100 Hz).
HOP_WINDOWS = 10


def predict_live(
    model: torch.nn.Module,
    eeg: np.ndarray,
    start: int,
    stop: int,
    lookahead: int,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    step: int | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """The live engine's read-out at ``lookahead`` samples for **every** sample of ``[start, stop)``.

    Sample ``i`` is predicted by the window ending at ``i + lookahead`` read at its column
    ``W - 1 - lookahead``: what the engine publishes for that window (the parity contract),
    raw model outputs. For a causal model whose read-out fits the window the recording is
    streamed once (:func:`beira_rt.models.streaming.stream_columns`, each sample computed once,
    equal to the windows and to the live engine's ``streaming`` path); other models run the
    windows with shared levels (:func:`beira_rt.inference.predict_at`).

    ``step``: predict every ``step``-th sample (default: every sample when streaming, every
    ``hop_windows`` = 10 samples with the windows, whose cost grows with the number of windows).

    Returns
    -------
    idx : array of int
        The samples predicted: those of the span whose window exists
        (``W - 1 <= i + lookahead < n_eeg``), every ``step``-th.
    pred : array of shape (n_outputs, len(idx)), float32
    mode : str
        ``'streaming'`` or ``'windows'``.
    """
    from beira_rt.inference import predict_at
    from beira_rt.models.streaming import streams_exactly

    was_training = model.training
    model.eval()
    W, n_eeg = model.n_times, eeg.shape[1]
    if isinstance(model, BEIRAReadout):
        mode = "one pass" if W - 1 - lookahead >= model.receptive_field - 1 else "windows"
    else:
        mode = "streaming" if streams_exactly(model, lookahead) else "windows"
    step = max(
        1, int(step if step is not None else (1 if mode in ("streaming", "one pass") else HOP_WINDOWS))
    )
    idx = np.arange(max(start, W - 1 - lookahead), min(stop, n_eeg - lookahead), step, dtype=np.int64)
    pred = predict_at(model, eeg, idx + lookahead, lookahead / model.sfreq, device, batch_size)
    model.train(was_training)
    return idx, np.ascontiguousarray(pred.T, dtype=np.float32), mode


def predict_offline(
    model: torch.nn.Module,
    eeg: np.ndarray,
    n_times: int,
    variant: str,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> np.ndarray:
    """Offline prediction (read-out (a)) for every sample of the EEG, shape (n_outputs, n_eeg)."""
    return predict_span(model, eeg, 0, eeg.shape[1], n_times, variant, device=device, batch_size=batch_size)


def lookahead_grid(
    block: Block, n_eeg: int, n_times: int, lookaheads_samples: list[int], hop: int
) -> np.ndarray:
    """Target sample indices scored for every look-ahead (read-out (b)).

    Every ``hop``-th sample of ``block``, kept where the window ending at
    ``i + la`` exists for every look-ahead ``la`` (``i + la <= n_eeg - 1`` and
    ``i + la >= n_times - 1``).
    """
    idx = np.arange(block.start, block.stop, max(int(hop), 1))
    la_min, la_max = min(lookaheads_samples), max(lookaheads_samples)
    keep = (idx + la_max <= n_eeg - 1) & (idx + la_min >= n_times - 1)
    return idx[keep]


def lookahead_r(
    model: torch.nn.Module,
    eeg: np.ndarray,
    target: np.ndarray,
    block: Block,
    lookaheads: tuple[float, ...] | list[float],
    hop: float,
    n_times: int,
    sfreq: float,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> dict[str, object]:
    """Pearson r per ROI of the live read-out at each look-ahead, on one block.

    Parameters
    ----------
    model : beira_rt.models.BEIRA
        Put in eval mode for the call (``predict_at`` returns its raw outputs).
    eeg : array of shape (n_chans, n_eeg)
        Normalised model-rate EEG since the start of the recording.
    target : array of shape (n_rois, L)
        Aligned targets (any affine scaling per ROI; r does not depend on it).
    block : Block
        Block whose targets are scored.
    lookaheads : sequence of float
        Look-aheads in seconds.
    hop : float
        Seconds between scored updates (the live hop).
    n_times : int
        Window length in samples.
    sfreq : float
        Model rate in Hz.
    device : str or torch.device
    batch_size : int

    Returns
    -------
    dict
        ``{"lookaheads": [...], "r_per_roi": {la: [...]}, "r_mean": {la: float}, "n_samples": int}``
        with look-aheads as strings such as ``"0.5"`` (JSON keys).
    """
    la_samples = [round(la * sfreq) for la in lookaheads]
    idx = lookahead_grid(block, eeg.shape[1], n_times, la_samples, round(hop * sfreq))
    if idx.size < 3:
        raise ValueError(
            f"the {block.name} block leaves {idx.size} scored samples for look-aheads {list(lookaheads)}; "
            "it is too short or the EEG ends too soon after it."
        )
    from beira_rt.inference import predict_at

    was_training = model.training
    model.eval()
    true = target[:, idx]
    r_per_roi: dict[str, list[float]] = {}
    r_mean: dict[str, float] = {}
    for la, la_s in zip(lookaheads, la_samples, strict=True):
        pred = predict_at(model, eeg, idx + la_s, la, device, batch_size)  # (n, n_outputs)
        r = pearson_r(pred.T, true)
        key = f"{la:g}"
        r_per_roi[key] = [float(v) for v in r]
        r_mean[key] = float(np.nanmean(r))
    model.train(was_training)
    return {
        "lookaheads": [float(la) for la in lookaheads],
        "r_per_roi": r_per_roi,
        "r_mean": r_mean,
        "n_samples": int(idx.size),
    }


def choose_lookahead(r_mean: dict[str, float], tolerance: float) -> float:
    """The smallest look-ahead whose mean r is within ``tolerance`` of the best (use validation r).

    Parameters
    ----------
    r_mean : dict
        Look-ahead (seconds, as a string key) to mean r, e.g. from :func:`lookahead_r` on
        the validation block.
    tolerance : float
        Allowed loss of mean r, in r units.

    Returns
    -------
    float
        Look-ahead in seconds.
    """
    finite = {float(k): v for k, v in r_mean.items() if np.isfinite(v)}
    if not finite:
        raise ValueError("no look-ahead has a finite validation r; the model predicts a constant.")
    best = max(finite.values())
    return min(la for la, r in finite.items() if r >= best - tolerance)
