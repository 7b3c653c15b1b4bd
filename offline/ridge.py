"""Closed-form read-out: the read-out back end's read-out filters fitted by ridge regression.

Given its front end, the read-out back end (:class:`beira_rt.models.readout.BEIRAReadout`) is
linear in its read-out weights: output ``k`` at sample ``t`` is

    b_k + sum_{branch, j} w[k, branch, j] * s_branch(t - j * readout_step)

with ``s`` the slow terms of the head's branches (moving-averaged envelopes, through the
quadratic when there is one). With the front end fixed, the least-squares fit with an L2 penalty
has a closed form and takes a second. ``training.fit`` closed_form (the default: the front end
as SPoC fits it, :mod:`offline.spoc`, and no gradient step) and gradient_ridge (after gradient
steps) replace each head's read-out filters and bias by that fit on the blocks the model trained
on (the training block; training + validation for ``training.refit``).

Each branch's filter is a sum of ``n_basis`` smooth bumps over its lags (:func:`lag_basis`; a
haemodynamic response is smooth), not one free weight per tap. The penalty of each ROI is chosen
by blocked cross-validation over the fitting blocks: they are cut into ``folds`` contiguous
stretches, each predicted by the fit on the others (rows within ``guard`` seconds of the
held-out stretch left out of that fit: the BOLD and the slow features are smooth, neighbours
would leak), and the largest penalty whose mean r over the folds is within one standard error of
the best is taken (a choice that holds on later data better than the best fold mean: README,
"Without a GPU"). Nothing outside the given blocks is read; the test block is only scored
afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from beira_rt._logging import logger
from beira_rt.models.readout import BEIRAReadout

from .metrics import pearson_r
from .split import Block

__all__ = ["RidgeReadout", "fit_readout", "fit_readout_with", "lag_basis", "slow_terms"]

#: Penalties tried, in units of the mean squared standardised feature: the fit minimises
#: ``|y - X w|^2 / n + alpha |w|^2`` over features z-scored on the fitting rows.
ALPHAS: tuple[float, ...] = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class RidgeReadout:
    """What :func:`fit_readout` chose and measured.

    Attributes
    ----------
    alphas : array of shape (n_rois,)
        Chosen penalty per ROI (NaN for a head without a used branch: it predicts the mean).
    cv_r : array of shape (n_rois,)
        Mean r over the held-out folds at that penalty (an estimate of the read-out's r on new
        data, with the front end as trained); NaN for a head without a used branch.
    n_rows : int
        Fitting rows (one every ``row_step`` s of the blocks, with a finite target).
    folds : int
    seconds : float
    """

    alphas: np.ndarray
    cv_r: np.ndarray
    n_rows: int
    folds: int
    seconds: float

    def to_dict(self, rois: Sequence[str], blocks: str) -> dict[str, Any]:
        """A JSON-ready record for ``metrics.json``."""
        return {
            "blocks": blocks,
            "alphas": {r: float(a) for r, a in zip(rois, self.alphas, strict=True)},
            "cv_r_per_roi": {r: float(v) for r, v in zip(rois, self.cv_r, strict=True)},
            "cv_r_mean": float(np.nanmean(self.cv_r)),
            "n_rows": self.n_rows,
            "folds": self.folds,
            "seconds": self.seconds,
        }


@torch.no_grad()
def slow_terms(model: BEIRAReadout, eeg: np.ndarray, *, chunk: int = 1 << 16) -> np.ndarray:
    """What the read-out filters see at every sample of a recording (eval mode, no dropout).

    Parameters
    ----------
    model : BEIRAReadout
    eeg : array of shape (n_chans, n_eeg)
        Normalised model-rate EEG (zeros before its first sample, as the model sees them).
    chunk : int
        Samples per forward pass (each chunk also computes the front end's history before it).

    Returns
    -------
    array of shape (n_outputs * n_filters, n_eeg), float64
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    step = model.readout_step
    warm = model.receptive_field - model.readout_step * model.readout_taps + step - 1  # front end + average
    x = torch.from_numpy(np.ascontiguousarray(eeg, dtype=np.float32)).to(device)
    out = []
    for a in range(0, x.shape[1], chunk):
        b = min(x.shape[1], a + chunk)
        lo = max(0, a - warm)
        z = model.envelopes(x[None, :, lo:b])
        z = F.avg_pool1d(F.pad(z, (step - 1, 0)), step, stride=1)
        out.append(model.slow_terms(z)[0, :, a - lo :].double().cpu())
    model.train(was_training)
    return torch.cat(out, dim=1).numpy()


def _lagged(terms: np.ndarray, rows: np.ndarray, step: int, taps: int, first: int = 0) -> np.ndarray:
    """(len(rows), n_terms * taps): column ``j * n_terms + i`` is term ``i`` at ``row - j * step``,
    held at its value at ``first`` before it."""
    return np.concatenate([terms[:, np.maximum(rows - j * step, first)] for j in range(taps)], axis=0).T


def lag_basis(taps: int, n_basis: int | None) -> np.ndarray:
    """(taps, n_basis) raised-cosine bumps over the read-out lags (overlapping halves, their sum 1
    between the first and last centre; lag 0 and ``taps - 1`` are centres); ``None`` or
    ``n_basis >= taps``: the identity (every tap free)."""
    if n_basis is None or n_basis >= taps:
        return np.eye(taps)
    if n_basis < 2:
        raise ValueError(f"lag_basis: n_basis must be >= 2, got {n_basis}.")
    centres = np.linspace(0, taps - 1, n_basis)
    width = centres[1] - centres[0]
    d = np.abs(np.arange(taps)[:, None] - centres[None, :]) / width
    return np.where(d < 1, np.cos(np.pi * d / 2) ** 2, 0.0)


def _folds(
    sample: np.ndarray, part_of: np.ndarray, folds: int, margin: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Contiguous folds over pooled rows and, per fold, the rows its fit may use.

    Parameters
    ----------
    sample, part_of : arrays of shape (n_rows,)
        Each row's sample index and recording, in order.
    folds : int
    margin : int
        Rows of the same recording within this many samples of a held-out fold's span are left
        out of its fit.

    Returns
    -------
    fold : array of shape (n_rows,)
        The fold of each row.
    fit_masks : list (folds) of bool arrays of shape (n_rows,)
    """
    n = len(sample)
    fold = np.arange(n) * folds // n
    fit_masks = []
    for f in range(folds):
        held = fold == f
        keep = ~held
        for p in np.unique(part_of[held]):
            s = sample[held & (part_of == p)]
            keep &= ~((part_of == p) & (sample >= s.min() - margin) & (sample <= s.max() + margin))
        fit_masks.append(keep)
    return fold, fit_masks


def _varying(std: np.ndarray) -> np.ndarray:
    """Which columns vary (a constant column's standard deviation is rounding, ~1e-17)."""
    return std > 1e-12 * max(1.0, float(std.max(initial=0.0)))


def _ridge_path(
    x: np.ndarray, y: np.ndarray, alphas: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge fits on z-scored features for every penalty.

    Returns
    -------
    coef : array of shape (n_alphas, n_features)
        Weights on the raw features (zero for constant ones).
    intercept : array of shape (n_alphas,)
    scale : array of shape (n_features,)
        The features' standard deviations (0 for constant ones).
    """
    mean, std = x.mean(axis=0), x.std(axis=0)
    live = _varying(std)
    xs = (x[:, live] - mean[live]) / std[live]
    y_mean = y.mean()
    u, s, vt = np.linalg.svd(xs, full_matrices=False)
    uy = u.T @ (y - y_mean)
    coef = np.zeros((len(alphas), x.shape[1]))
    for i, alpha in enumerate(alphas):
        coef[i, live] = (vt.T @ (s / (s**2 + alpha * len(xs)) * uy)) / std[live]
    intercept = y_mean - coef @ mean
    return coef, intercept, np.where(live, std, 0.0)


def fit_readout(
    model: BEIRAReadout,
    parts: Sequence[tuple[np.ndarray, np.ndarray, Block]],
    *,
    alphas: Sequence[float] = ALPHAS,
    folds: int = 5,
    guard: float = 20.0,
    row_step: float = 0.1,
    n_basis: int | None = 6,
    rule: str = "one_se",
) -> RidgeReadout:
    """Replace every head's read-out filters and bias by a ridge fit on the given blocks.

    Parameters
    ----------
    model : BEIRAReadout
        Trained (its batch norms' running statistics set); changed in place.
    parts : sequence of (eeg, target, block)
        Normalised model-rate EEG (n_chans, n_eeg), aligned targets (n_rois, L) and the block to
        fit on, per recording (a group: one per subject, their rows pooled).
    alphas : sequence of float
        Penalties tried (:data:`ALPHAS`).
    folds : int
        Contiguous cross-validation folds over the pooled rows (>= 2).
    guard : float
        Seconds on either side of a held-out fold left out of its fit (at most half a fold's
        length, so that short blocks keep rows to fit on).
    row_step : float
        Seconds between fitting rows (the target carries nothing fast). Rows start where the
        slow terms hold no zero padding; a row's read-out history before that is held at the
        value there (live, the engine starts with a whole window and never sees the padding).
    n_basis : int or None
        Each branch's read-out filter as a sum of this many smooth bumps over its lags
        (:func:`lag_basis`) instead of one free weight per tap.
    rule : str
        How the penalty is chosen from the folds' r: ``one_se`` the largest penalty whose mean r is
        within one standard error (over the folds) of the best mean (the usual rule for a choice
        that generalises); ``best`` the best mean; ``last`` the last fold alone (forward in time).

    Returns
    -------
    RidgeReadout
    """
    if not isinstance(model, BEIRAReadout):
        raise TypeError(
            f"fit_readout needs the read-out back end (BEIRAReadout), got {type(model).__name__}."
        )
    if folds < 2:
        raise ValueError(f"fit_readout: folds must be >= 2, got {folds}.")
    if rule not in ("one_se", "best", "last"):
        raise ValueError(f"fit_readout: rule must be 'one_se', 'best' or 'last', got {rule!r}.")
    t0 = time.perf_counter()
    nf, step, taps = model.n_filters, model.readout_step, model.readout_taps
    sfreq = model.sfreq
    sub = max(1, round(row_step * sfreq))
    terms, rows, part_of = [], [], []
    # the first sample whose slow terms hold no zero padding (front end + moving average); a row's
    # history before it is held at its value there (the live engine never sees the zeros before a
    # recording: it starts with a whole window)
    first = model.receptive_field - step * taps + step - 1
    for p, (eeg, target, block) in enumerate(parts):
        r = np.arange(max(block.start, first), block.stop, sub)
        r = r[np.all(np.isfinite(target[:, r]), axis=0)]
        terms.append(slow_terms(model, eeg[:, : block.stop]))  # causal: nothing after the block is read
        rows.append(r)
        part_of.append(np.full(len(r), p))
    part_of = np.concatenate(part_of)
    sample = np.concatenate(rows)
    n = len(sample)
    if n < 4 * folds:
        raise ValueError(f"fit_readout: {n} fitting rows are too few for {folds} folds.")
    span = sum(len(block) for _, _, block in parts)
    margin = min(round(guard * sfreq), span // (2 * folds))  # short blocks (a calibration): a smaller guard
    fold, fit_masks = _folds(sample, part_of, folds, margin)

    basis = lag_basis(taps, n_basis)  # (taps, n_b)
    n_rois = model.n_outputs
    chosen = np.zeros(n_rois)
    cv_r = np.full(n_rois, np.nan)
    weight = model.readout.weight  # (n_outputs, n_filters, taps); tap i multiplies lag taps - 1 - i
    bias = model.readout.bias
    for k in range(n_rois):
        x = np.concatenate(
            [
                _lagged(t[k * nf : (k + 1) * nf], r, step, taps, first)
                for t, r in zip(terms, rows, strict=True)
            ]
        )
        x = np.einsum("njb,jc->ncb", x.reshape(len(x), taps, nf), basis).reshape(len(x), -1)
        y = np.concatenate([tgt[k, r] for (_, tgt, _), r in zip(parts, rows, strict=True)]).astype(np.float64)
        if not _varying(
            x.std(axis=0)
        ).any():  # no used branch (SPoC left them all out): the mean, nothing to score
            chosen[k] = np.nan
            with torch.no_grad():
                weight[k] = 0.0
                bias[k] = float(y.mean())
            continue
        scores = np.zeros((folds, len(alphas)))
        for f, keep in enumerate(fit_masks):
            held = fold == f
            coef, icpt, _ = _ridge_path(x[keep], y[keep], alphas)
            pred = coef @ x[held].T + icpt[:, None]
            scores[f] = pearson_r(pred, np.broadcast_to(y[held], pred.shape))
        mean_scores = np.nanmean(scores, axis=0) if np.isfinite(scores).any() else np.zeros(len(alphas))
        best = int(np.nanargmax(np.where(np.isfinite(mean_scores), mean_scores, -np.inf)))
        if rule == "one_se":  # the largest penalty within one standard error of the best
            se = np.nanstd(scores[:, best]) / np.sqrt(max(1, np.isfinite(scores[:, best]).sum()))
            ok = np.flatnonzero(mean_scores >= mean_scores[best] - se)
            best = int(ok[np.argmax(np.asarray(alphas)[ok])])
        elif rule == "last":  # the last fold alone chooses (forward in time)
            best = int(np.nanargmax(np.where(np.isfinite(scores[-1]), scores[-1], -np.inf)))
        chosen[k], cv_r[k] = alphas[best], mean_scores[best]
        coef, icpt, _ = _ridge_path(x, y, [alphas[best]])
        w = basis @ coef[0].reshape(basis.shape[1], nf)  # [lag j, branch]
        with torch.no_grad():
            weight[k] = torch.from_numpy(w.T[:, ::-1].copy()).to(weight)
            bias[k] = float(icpt[0])
    result = RidgeReadout(chosen, cv_r, n, folds, time.perf_counter() - t0)
    logger.info(
        "ridge read-out on %d rows: penalties %s, cross-validated mean r %.3f (%.1f s)",
        n, [f"{a:g}" for a in chosen], float(np.nanmean(cv_r)), result.seconds,
    )  # fmt: skip
    return result


def fit_readout_with(
    model: BEIRAReadout, parts: Sequence[tuple[np.ndarray, np.ndarray, Block]], training: Any
) -> RidgeReadout:
    """:func:`fit_readout` with the penalties and basis of a ``training`` config section."""
    return fit_readout(model, parts, alphas=training.readout_alphas, n_basis=training.readout_basis)
