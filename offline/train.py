"""The training loop: random training windows, AdamW, validation-chosen checkpoint.

One epoch is ``training.steps_per_epoch`` optimisation steps on random windows
from the training block (:class:`offline.dataset.WindowSampler`), followed by
an offline prediction of the validation block (:func:`offline.metrics.predict_span`)
and its mean Pearson r over the ROIs. The learning rate follows ``training.schedule``
over ``max_epochs * steps_per_epoch`` steps, or over ``training.max_minutes`` when that
budget runs out first (:func:`training_progress`). The checkpoint with the best validation r
is kept; training stops after ``training.patience`` epochs without improvement,
after ``training.max_epochs``, or when ``training.max_minutes`` have passed.
The test block is not touched here.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from beira_rt._logging import logger
from beira_rt.config import BeiraConfig, TrainingConfig
from beira_rt.inference import resolve_device
from beira_rt.models import BEIRA, copy_head_, load_heads_, split_heads

from .dataset import PreparedData, WindowSampler
from .metrics import pearson_r, predict_block

__all__ = ["TrainResult", "compute_loss", "lr_factor", "resolve_device", "train_model", "training_progress"]


@dataclass
class TrainResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    history : list of dict
        One record per epoch (also written to ``history.jsonl``).
    best_epoch : int
        Epoch (1-based) of the kept checkpoint; with ``training.checkpoint: per_roi`` the
        last epoch in which some ROI head improved.
    best_val_r : float
        Mean validation r of the kept checkpoint (per ROI: of each head at its own best epoch).
    best_epochs : list of int
        Epoch (1-based) each ROI head was taken from.
    best_val_r_per_roi : list of float
        Validation r of each ROI head in the kept checkpoint.
    stop_reason : str
        ``'max_epochs'``, ``'patience'`` or ``'max_minutes'``.
    n_steps : int
        Optimisation steps taken.
    seconds : float
        Wall-clock time of the loop (training and validation).
    """

    history: list[dict[str, object]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_r: float = float("-inf")
    best_epochs: list[int] = field(default_factory=list)
    best_val_r_per_roi: list[float] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    n_steps: int = 0
    seconds: float = 0.0


def _corr_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    oc = out - out.mean(dim=-1, keepdim=True)
    yc = y - y.mean(dim=-1, keepdim=True)
    r = (oc * yc).sum(-1) / torch.sqrt((oc**2).sum(-1) * (yc**2).sum(-1) + 1e-8)
    return 1.0 - r.mean()


def compute_loss(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Training loss between predictions and targets of shape (batch, n_rois, n_times).

    ``'mse'``: mean squared error (targets are z-scored); ``'corr'``: one minus the mean
    Pearson r over windows and ROIs; ``'mse+corr'``: their sum.
    """
    if kind == "mse":
        return torch.mean((out - y) ** 2)
    if kind == "corr":
        return _corr_loss(out, y)
    if kind == "mse+corr":
        return torch.mean((out - y) ** 2) + _corr_loss(out, y)
    raise ValueError(f"unknown loss {kind!r}; use 'mse', 'corr' or 'mse+corr'.")


def lr_factor(progress: float, tcfg: TrainingConfig) -> float:
    """Learning-rate multiplier at a training progress in [0, 1] (``training.schedule``).

    ``'onecycle'``: linear warm-up over the first ``warmup_fraction``, then cosine decay to
    1/100; ``'cosine'``: cosine decay from the start; ``'constant'``: 1.
    """
    if tcfg.schedule == "constant":
        return 1.0
    floor = 0.01
    warm = tcfg.warmup_fraction if tcfg.schedule == "onecycle" else 0.0
    progress = min(max(progress, 0.0), 1.0)
    if progress < warm:
        return max(progress / warm, floor)
    rest = (progress - warm) / max(1.0 - warm, 1e-12)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * rest))


def training_progress(step: int, total_steps: int, elapsed: float, budget: float) -> float:
    """Progress of the schedule: the larger of the step fraction and the time-budget fraction.

    With no time budget (``budget = inf``) or a machine fast enough to finish the steps in
    time, the schedule depends on the step count only (reproducible); on a slower machine
    the time fraction takes over, so that the learning rate is annealed before
    ``training.max_minutes`` stops the run.
    """
    by_time = elapsed / budget if math.isfinite(budget) else 0.0
    return max(step / max(total_steps, 1), by_time)


def _fmt_r(r: float) -> str:
    return f"{r:.3f}" if math.isfinite(r) else "-"


def _validate(model: torch.nn.Module, data: PreparedData, cfg: BeiraConfig, device: torch.device) -> dict:
    pred, true = predict_block(model, data, cfg, data.split.val, device)
    r = pearson_r(pred, true)
    finite = r[np.isfinite(r)]
    return {
        "val_loss": float(np.mean((pred - true) ** 2)),
        "val_r_mean": float(finite.mean()) if finite.size else float("nan"),
        "val_r_per_roi": [float(v) for v in r],
    }


def _keep_best(
    model: torch.nn.Module,
    record: dict,
    epoch: int,
    result: TrainResult,
    best_state: dict[str, torch.Tensor] | None,
    rule: str,
) -> tuple[bool, dict[str, torch.Tensor] | None]:
    """Update the kept checkpoint after an epoch's validation; returns (improved, state).

    ``rule == 'mean'``: the whole model when its mean validation r is the best so far.
    ``rule == 'per_roi'``: each ROI head whose own validation r is its best so far is copied
    into the kept state (:func:`beira_rt.models.copy_head_`); the heads share no weights, so
    the kept model is each head at its best epoch. Only validation r chooses; never the test block.
    """
    r = np.asarray(record["val_r_per_roi"], dtype=float)
    n_heads = r.size
    if not result.best_val_r_per_roi:
        result.best_val_r_per_roi = [float("-inf")] * n_heads
        result.best_epochs = [0] * n_heads
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if rule == "mean":
        if not (np.isfinite(record["val_r_mean"]) and record["val_r_mean"] > result.best_val_r):
            return False, best_state
        result.best_val_r, result.best_epoch = float(record["val_r_mean"]), epoch
        result.best_val_r_per_roi = [float(v) for v in r]
        result.best_epochs = [epoch] * n_heads
        return True, copy.deepcopy(state)
    better = [h for h in range(n_heads) if np.isfinite(r[h]) and r[h] > result.best_val_r_per_roi[h]]
    if not better:
        return False, best_state
    if best_state is None:
        best_state = copy.deepcopy(state)
    for h in better:
        copy_head_(best_state, state, h, n_heads)
        result.best_val_r_per_roi[h], result.best_epochs[h] = float(r[h]), epoch
    kept = [v for v in result.best_val_r_per_roi if np.isfinite(v)]
    result.best_val_r = float(np.mean(kept)) if kept else float("-inf")
    result.best_epoch = epoch
    return True, best_state


def _training_layout(model: torch.nn.Module, layout: str, device: torch.device) -> torch.nn.Module:
    """The module the optimiser trains: ``model`` itself, or its heads as separate modules.

    ``training.head_layout`` 'separate' (or 'auto' on a CPU) trains
    :func:`beira_rt.models.split_heads` of the fused model: the same weights and outputs
    (tests/models/test_heads.py), a faster backward on CPUs; the weights go back into the
    fused ``model`` before every validation (:func:`beira_rt.models.load_heads_`).
    """
    separate = layout == "separate" or (layout == "auto" and device.type == "cpu")
    if not separate or not isinstance(model, BEIRA):
        return model
    logger.info(
        "training the %d ROI heads as separate modules (training.head_layout=%s)", model.n_outputs, layout
    )
    return split_heads(model).to(device)


def _front_end_params(model: BEIRA) -> list[torch.nn.Parameter]:
    """The parameters of the interpretable front end (head-major along their first axis)."""
    return [p for layer in model.interpretable.layers() for p in layer.parameters(recurse=False)]


@torch.no_grad()
def tie_front_ends_(model: BEIRA) -> None:
    """Copy head 0's front end into every head (``training.share_front_end``)."""
    heads = model.n_outputs
    for p in _front_end_params(model):
        block = p.view(heads, -1, *p.shape[1:])
        block.copy_(block[:1].expand_as(block))


def share_front_end_grads_(model: BEIRA) -> None:
    """Replace each head's front-end gradient by the sum over the heads (a shared parameter's gradient).

    With equal weights and equal gradients, AdamW keeps the heads' front ends equal, so the
    fused model trains one front end for all ROIs while its heads stay self-contained.
    """
    heads = model.n_outputs
    for p in _front_end_params(model):
        if p.grad is None:
            continue
        g = p.grad.view(heads, -1, *p.shape[1:])
        g.copy_(g.sum(dim=0, keepdim=True).expand_as(g))


def train_model(
    model: torch.nn.Module,
    data: PreparedData,
    cfg: BeiraConfig,
    *,
    device: torch.device,
    history_path: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place on the training block and load the best validation checkpoint.

    Parameters
    ----------
    model : torch.nn.Module
        A freshly built :class:`beira_rt.models.BEIRA` (already on ``device``).
    data : PreparedData
        Normalised EEG and targets with their split.
    cfg : BeiraConfig
        ``training`` drives the loop; ``model.n_times`` and ``model.variant`` the windows.
    device : torch.device
    history_path : path or None
        Where to append one JSON line per epoch (the file is replaced).
    progress : bool
        Show a tqdm progress bar with the running loss and the validation r.

    Returns
    -------
    TrainResult
    """
    tcfg = cfg.training
    rng = np.random.default_rng(tcfg.seed)
    sampler = WindowSampler(data.eeg, data.target, data.split.train, cfg.model.n_times, rng)
    if tcfg.share_front_end:
        if tcfg.head_layout == "separate" or not isinstance(model, BEIRA):
            raise ValueError(
                "training.share_front_end needs the fused BEIRA (training.head_layout fused or auto)."
            )
        tie_front_ends_(model)
    net = model if tcfg.share_front_end else _training_layout(model, tcfg.head_layout, device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    params = [p for p in net.parameters()]
    # training.ema_decay: an exponential moving average of the weights, validated and kept instead
    ema = [p.detach().clone() for p in params] if tcfg.ema_decay is not None else None
    total_steps = tcfg.max_epochs * tcfg.steps_per_epoch
    budget = tcfg.max_minutes * 60.0 if tcfg.max_minutes is not None else math.inf
    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    history_file = None
    if history_path is not None:
        history_file = Path(history_path).open("w", encoding="utf-8")
    logger.info(
        "training %s on %s: up to %d epochs x %d steps, batch %d, %d training window positions",
        cfg.model.variant,
        device,
        tcfg.max_epochs,
        tcfg.steps_per_epoch,
        tcfg.batch_size,
        sampler.n_positions,
    )
    t0 = time.perf_counter()
    bar = tqdm(
        total=total_steps, disable=None if progress else True, unit="step", dynamic_ncols=True, leave=False
    )
    try:
        for epoch in range(1, tcfg.max_epochs + 1):
            net.train()
            losses = []
            for _ in range(tcfg.steps_per_epoch):
                progress = training_progress(result.n_steps, total_steps, time.perf_counter() - t0, budget)
                for group in optimizer.param_groups:
                    group["lr"] = tcfg.lr * lr_factor(progress, tcfg)
                x, y = sampler.batch(tcfg.batch_size)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tcfg.precision == "bf16"):
                    out = net(x)
                loss = compute_loss(out.float(), y, tcfg.loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if tcfg.share_front_end:
                    share_front_end_grads_(net)
                if tcfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip)
                optimizer.step()
                if ema is not None:
                    with torch.no_grad():
                        torch._foreach_lerp_(ema, [p.detach() for p in params], 1.0 - tcfg.ema_decay)
                result.n_steps += 1
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", best_val_r=_fmt_r(result.best_val_r))
                if time.perf_counter() - t0 > budget:
                    result.stop_reason = "max_minutes"
                    break
            raw = None
            if ema is not None:  # validate the averaged weights; training continues from the raw ones
                raw = [p.detach().clone() for p in params]
                with torch.no_grad():
                    for p, a in zip(params, ema, strict=True):
                        p.copy_(a)
            if net is not model:  # validate (and keep) the fused model, the bundle's form
                load_heads_(model, net)
            record = {
                "epoch": epoch,
                "step": result.n_steps,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "train_loss": float(np.mean(losses)),
                **_validate(model, data, cfg, device),
                "seconds": round(time.perf_counter() - t0, 3),
            }
            improved, best_state = _keep_best(model, record, epoch, result, best_state, tcfg.checkpoint)
            if raw is not None:
                with torch.no_grad():
                    for p, r in zip(params, raw, strict=True):
                        p.copy_(r)
            stale = 0 if improved else stale + 1
            record["best"] = bool(improved)
            result.history.append(record)
            if history_file is not None:
                history_file.write(json.dumps(record) + "\n")
                history_file.flush()
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_r=_fmt_r(record["val_r_mean"]))
            logger.debug(
                "epoch %d: train loss %.4f, val loss %.4f, val r %.3f",
                epoch,
                record["train_loss"],
                record["val_loss"],
                record["val_r_mean"],
            )
            if result.stop_reason == "max_minutes":
                logger.warning(
                    "training stopped by training.max_minutes=%g after %d steps",
                    tcfg.max_minutes,
                    result.n_steps,
                )
                break
            if stale >= tcfg.patience:
                result.stop_reason = "patience"
                logger.info("early stop: no validation improvement for %d epochs", stale)
                break
    finally:
        bar.close()
        if history_file is not None:
            history_file.close()
    result.seconds = time.perf_counter() - t0
    if best_state is None:
        raise RuntimeError(
            "no epoch gave a finite validation r (the model predicts a constant on the validation "
            "block); check the data and the learning rate."
        )
    model.load_state_dict(best_state)
    logger.info(
        "kept %s (validation mean r %.3f); %d steps in %.0f s (%s)",
        f"epoch {result.best_epoch}"
        if tcfg.checkpoint == "mean"
        else "per ROI head epochs " + ",".join(str(e) for e in result.best_epochs),
        result.best_val_r,
        result.n_steps,
        result.seconds,
        result.stop_reason,
    )
    return result
