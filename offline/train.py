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
import inspect
import json
import math
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from beira_rt._logging import logger
from beira_rt.config import BeiraConfig, TrainingConfig
from beira_rt.inference import resolve_device
from beira_rt.models import BEIRA, copy_head_, load_heads_, split_heads

from . import distributed
from .dataset import GroupData, GroupSampler, PreparedData, WindowSampler
from .distributed import DistContext
from .metrics import pearson_r, predict_block
from .split import Block

_HAS_FORWARD_SYNC_BUFFERS = (
    "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
)


def _ddp(net: torch.nn.Module, device_ids: list[int] | None) -> DistributedDataParallel:
    """DDP without buffer synchronisation in each forward (each rank's batch-norm statistics stay
    its own, as in one process per shard); parameters and buffers from rank 0 once at the start.

    torch 2.13 (the pin): ``forward_sync_buffers=False``. Older torch (2.11, the image of the GPU
    machine this ran on) has only ``broadcast_buffers=False``, which per torch's documentation also
    leaves the buffers out of the start-up broadcast: they are broadcast here instead. On torch
    2.11 (an H200 machine's image) the two-rank parity test fails with and without this broadcast:
    weights 3.1e-4 from one process after 6 steps, the same through both paths, one process
    exactly reproducible (cause not found). On torch 2.13 both paths pass (6e-7): use the pinned
    torch for DDP.
    """
    if _HAS_FORWARD_SYNC_BUFFERS:
        return DistributedDataParallel(net, device_ids=device_ids, forward_sync_buffers=False)
    wrapped = DistributedDataParallel(net, device_ids=device_ids, broadcast_buffers=False)
    for buf in net.buffers():
        torch.distributed.broadcast(buf, src=0)
    return wrapped


__all__ = [
    "KILL_AFTER_CHECKPOINT_ENV",
    "TrainResult",
    "compute_loss",
    "lr_factor",
    "resolve_device",
    "save_checkpoint",
    "train_model",
    "training_progress",
]


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
        ``'max_epochs'``, ``'patience'`` or ``'max_minutes'``; a refit (``head_epochs``) that
        ended at the last chosen epoch: ``'last_chosen_epoch'``; ``training.fit`` closed_form:
        ``'no_gradient_steps'``.
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


def _validate(
    model: torch.nn.Module, data: PreparedData | GroupData, cfg: BeiraConfig, device: torch.device
) -> dict:
    """Validation loss and r per ROI; for a group, each ROI's r is the mean over the subjects."""
    parts = data.parts if isinstance(data, GroupData) else (data,)
    rs, losses = [], []
    for part in parts:
        pred, true = predict_block(model, part, cfg, part.split.val, device)
        rs.append(pearson_r(pred, true))
        losses.append(float(np.mean((pred - true) ** 2)))
    r = np.mean(rs, axis=0)
    finite = r[np.isfinite(r)]
    return {
        "val_loss": float(np.mean(losses)),
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


#: parameter names of the front end's temporal filters (fused and separate-head layouts alike)
FILTER_PARAMS = ("interpretable.band_pass.", "interpretable.envelope.")


#: ``training.front_end_lr_scale: null`` after a SPoC start: the fitted front end moves a little
#: (chosen on the validation blocks of 3 synthetic subjects over 0, docs/accuracy_matrix_readout.txt).
SPOC_FRONT_END_LR_SCALE = 0.1


def front_end_lr_scale(cfg: BeiraConfig) -> float:
    """``training.front_end_lr_scale``, null resolved: :data:`SPOC_FRONT_END_LR_SCALE` for a front
    end fitted to the data before training (``model.filter_init`` spoc), else 1."""
    scale = cfg.training.front_end_lr_scale
    if scale is None:
        return SPOC_FRONT_END_LR_SCALE if cfg.model.filter_start == "spoc" else 1.0
    return float(scale)


#: parameter names of the front end's spatial unmixing
UNMIX_PARAMS = ("interpretable.unmix.",)


def _param_groups(
    net: torch.nn.Module, filter_lr_scale: float, front_end_lr_scale: float = 1.0
) -> list[dict]:
    """AdamW parameter groups (``lr_scale`` in each): the front end's unmixing at
    ``front_end_lr_scale`` times the learning rate, its band-pass and envelope filters at
    ``front_end_lr_scale * filter_lr_scale``, the rest at 1. A group at scale 0 is frozen: its
    parameters stop requiring gradients and are left out of the optimiser."""
    filters, unmix, rest = [], [], []
    for name, p in net.named_parameters():
        if any(k in name for k in FILTER_PARAMS):
            filters.append(p)
        elif any(k in name for k in UNMIX_PARAMS):
            unmix.append(p)
        else:
            rest.append(p)
    groups = []
    for params, scale in (
        (rest, 1.0), (unmix, float(front_end_lr_scale)), (filters, float(front_end_lr_scale * filter_lr_scale))
    ):  # fmt: skip
        if not params:
            continue
        if scale == 0.0:
            for p in params:
                p.requires_grad_(False)
            continue
        groups.append({"params": params, "lr_scale": scale})
    return groups


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


#: Fault injection for tests: the process SIGKILLs itself right after writing this epoch's checkpoint.
KILL_AFTER_CHECKPOINT_ENV = "BEIRA_KILL_AFTER_CHECKPOINT"
#: Format version of the per-epoch checkpoint (``checkpoint.pt``).
CHECKPOINT_VERSION = 1


@dataclass
class _LoopState:
    """What the loop carries from epoch to epoch (and what a checkpoint restores)."""

    epoch: int = 0
    stale: int = 0
    stop: bool = False
    best_state: dict[str, torch.Tensor] | None = None
    elapsed: float = 0.0


def save_checkpoint(
    path: Path,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: list[torch.Tensor] | None,
    rng: np.random.Generator,
    torch_rng: list[torch.Tensor],
    result: TrainResult,
    state: _LoopState,
) -> None:
    """Write the loop's whole state after an epoch, atomically (a temporary file renamed into place).

    Holds the trained module's weights and buffers, the optimiser (AdamW moments, step counts),
    the weight average, the kept best state, the history and counters, the window generator's
    state and every rank's torch generator state (dropout). The learning rate is a function
    of the step (and of the elapsed time, also stored), so no scheduler state is needed.
    """
    doc = {
        "version": CHECKPOINT_VERSION,
        "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "ema": [a.detach().cpu() for a in ema] if ema is not None else None,
        "sampler_rng": json.dumps(rng.bit_generator.state),
        "torch_rng": torch_rng,
        "result": asdict(result),
        "loop": asdict(state),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(doc, tmp)
    os.replace(tmp, path)


def _restore(
    path: Path,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: list[torch.Tensor] | None,
    rng: np.random.Generator,
    ctx: DistContext,
) -> tuple[TrainResult, _LoopState]:
    """Load a checkpoint of :func:`save_checkpoint` into the loop's objects."""
    doc = torch.load(path, map_location="cpu", weights_only=True)
    if doc.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has version {doc.get('version')}, not {CHECKPOINT_VERSION}.")
    net.load_state_dict(doc["net"])
    optimizer.load_state_dict(doc["optimizer"])
    if (ema is None) != (doc["ema"] is None):
        raise ValueError(f"checkpoint {path} was written with another training.ema_decay setting.")
    if ema is not None:
        with torch.no_grad():
            for a, saved in zip(ema, doc["ema"], strict=True):
                a.copy_(saved)
    rng.bit_generator.state = json.loads(doc["sampler_rng"])
    if len(doc["torch_rng"]) == ctx.world_size:
        torch.set_rng_state(doc["torch_rng"][ctx.rank])
    else:
        logger.warning("checkpoint written by %d processes, resumed by %d: dropout masks are drawn afresh",
                       len(doc["torch_rng"]), ctx.world_size)  # fmt: skip
    result = TrainResult(**doc["result"])
    loop = _LoopState(**doc["loop"])
    logger.info("resumed from %s after epoch %d (%d steps)", path, loop.epoch, result.n_steps)
    return result, loop


@torch.no_grad()
def set_batch_norm_stats(model: torch.nn.Module, parts: Sequence[tuple[np.ndarray, Block]]) -> None:
    """Set every batch norm's running statistics to those of one pass over the given blocks.

    What a model that takes no gradient step (``training.fit: closed_form``) uses in eval mode
    instead of the initial 0 and 1. Several blocks (a group's subjects) are joined end to end.

    Parameters
    ----------
    model : torch.nn.Module
    parts : sequence of (eeg, block)
        Normalised model-rate EEG (n_chans, n_eeg) and the block of it to use.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: the one batch sets the statistics
    was_training = model.training
    model.train()
    x = np.concatenate([eeg[:, block.slice] for eeg, block in parts], axis=1)
    device = next(model.parameters()).device
    model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)[None])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)


def train_model(
    model: torch.nn.Module,
    data: PreparedData | GroupData,
    cfg: BeiraConfig,
    *,
    device: torch.device,
    history_path: str | Path | None = None,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    head_epochs: list[int] | None = None,
) -> TrainResult:
    """Train ``model`` in place on the training block and load the best validation checkpoint.

    With ``head_epochs`` (a refit, :func:`offline.pipeline.run_training` with ``training.refit``)
    nothing is validated: each ROI head is kept as it is at the end of its given epoch (chosen
    on the validation block by an earlier run) and training stops after the last of them.

    In a distributed run (:mod:`offline.distributed`: a process group is initialised) every
    rank calls this with the same arguments; each trains on its slice of every global batch,
    rank 0 validates, decides when to stop, writes the history and the checkpoint, and ends
    with the best state loaded; the other ranks return a :class:`TrainResult` with only the
    step count and keep the last weights.

    Parameters
    ----------
    model : torch.nn.Module
        A freshly built :class:`beira_rt.models.BEIRA` (already on ``device``).
    data : PreparedData or GroupData
        Normalised EEG and targets with their split; a group (several subjects, each with its
        own statistics) trains on all training blocks and validates on the mean r over subjects.
    cfg : BeiraConfig
        ``training`` drives the loop; ``model.n_times`` and ``model.variant`` the windows.
        ``training.batch_size`` is the global batch (a multiple of the number of processes).
    device : torch.device
    history_path : path or None
        Where to append one JSON line per epoch (the file is replaced).
    progress : bool
        Show a tqdm progress bar with the running loss and the validation r.
    checkpoint_path : path or None
        Where rank 0 writes the loop's whole state after every epoch (:func:`save_checkpoint`).
    resume : bool
        Continue from ``checkpoint_path`` when that file exists (after a crash): the same
        steps, windows and decisions follow as in an uninterrupted run.
    head_epochs : list of int or None
        Per ROI head, the epoch (1-based) to keep it from, instead of the validation's choice.

    Returns
    -------
    TrainResult
    """
    tcfg = cfg.training
    ctx = distributed.context()
    if not cfg.gradient_steps:  # training.fit closed_form: the front end as fitted, the read-out fitted after
        t0 = time.perf_counter()
        parts = data.parts if isinstance(data, GroupData) else (data,)
        set_batch_norm_stats(model, [(p.eeg, p.split.train) for p in parts])
        if history_path is not None and ctx.is_main:
            Path(history_path).write_text("", encoding="utf-8")
        logger.info(
            "training.fit %s: no gradient steps (batch-norm statistics of the training block)", cfg.fit
        )
        n_rois = parts[0].n_rois
        return TrainResult(
            best_epochs=[0] * n_rois, best_val_r_per_roi=[float("nan")] * n_rois,
            stop_reason="no_gradient_steps", seconds=time.perf_counter() - t0,
        )  # fmt: skip
    if tcfg.batch_size % ctx.world_size:
        raise ValueError(
            f"training.batch_size ({tcfg.batch_size}) is the global batch; it must be a multiple of the "
            f"{ctx.world_size} processes."
        )
    local = tcfg.batch_size // ctx.world_size
    rng = np.random.default_rng(tcfg.seed)  # the same on every rank: all draw the global batch's starts
    # a model with a finite history (the read-out back end) trains on windows lengthened by it,
    # the loss on the n_times columns that see no padding; BEIRA on n_times, every column
    warm = getattr(model, "receptive_field", 1) - 1
    n_train = cfg.model.n_times + warm
    sampler: WindowSampler | GroupSampler = (
        GroupSampler(data, n_train, rng) if isinstance(data, GroupData)
        else WindowSampler(data.eeg, data.target, data.split.train, n_train, rng)
    )  # fmt: skip
    if tcfg.share_front_end:
        if tcfg.head_layout == "separate" or not isinstance(model, BEIRA):
            raise ValueError(
                "training.share_front_end needs the fused BEIRA (training.head_layout fused or auto)."
            )
        tie_front_ends_(model)
    net = model if tcfg.share_front_end else _training_layout(model, tcfg.head_layout, device)
    restore_bn = distributed.sync_batch_norm_(net, device) if ctx.active else None
    optimizer = torch.optim.AdamW(
        _param_groups(net, tcfg.filter_lr_scale, front_end_lr_scale(cfg)),
        lr=tcfg.lr,
        weight_decay=tcfg.weight_decay,
    )
    params = [p for p in net.parameters()]
    # training.ema_decay: an exponential moving average of the weights, validated and kept instead
    ema = [p.detach().clone() for p in params] if tcfg.ema_decay is not None else None
    if head_epochs is not None and (
        len(head_epochs) != getattr(data, "n_rois", len(head_epochs)) or min(head_epochs, default=0) < 1
    ):
        raise ValueError(f"head_epochs needs one epoch >= 1 per ROI head; got {head_epochs}.")
    total_steps = tcfg.max_epochs * tcfg.steps_per_epoch
    budget = tcfg.max_minutes * 60.0 if tcfg.max_minutes is not None else math.inf
    result, loop = TrainResult(), _LoopState()
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        result, loop = _restore(ckpt, net, optimizer, ema, rng, ctx)
    elif resume:
        logger.info("no checkpoint at %s: training from the start", ckpt)
    if ctx.active:
        if loop.epoch == 0 and ctx.rank:  # own dropout masks per rank (rank 0's as in one process)
            torch.manual_seed(tcfg.seed + 1000003 * ctx.rank)
        ddp_ids = [device.index] if device.type == "cuda" else None
        forward: torch.nn.Module = _ddp(net, ddp_ids)
    else:
        forward = net
    history_file = None
    if history_path is not None and ctx.is_main:
        history_file = Path(history_path).open("w", encoding="utf-8")
        for record in result.history:  # a resumed run keeps the epochs before the crash
            history_file.write(json.dumps(record) + "\n")
    logger.info(
        "training %s on %s: up to %d epochs x %d steps, batch %d (%d processes), %d training window positions",
        cfg.model.variant, device, tcfg.max_epochs, tcfg.steps_per_epoch, tcfg.batch_size, ctx.world_size,
        sampler.n_positions,
    )  # fmt: skip
    t0 = time.perf_counter() - loop.elapsed
    bar = tqdm(
        total=total_steps, initial=result.n_steps, disable=None if progress and ctx.is_main else True,
        unit="step", dynamic_ncols=True, leave=False,
    )  # fmt: skip
    try:
        while not loop.stop and loop.epoch < tcfg.max_epochs:
            epoch = loop.epoch + 1
            net.train()
            losses = []
            for _ in range(tcfg.steps_per_epoch):
                elapsed = distributed.broadcast_object(time.perf_counter() - t0, ctx) if ctx.active else (
                    time.perf_counter() - t0)  # fmt: skip
                if result.n_steps and elapsed > budget:  # the first step is always taken
                    result.stop_reason = "max_minutes"
                    break
                frac = training_progress(result.n_steps, total_steps, elapsed, budget)
                for group in optimizer.param_groups:
                    group["lr"] = tcfg.lr * group["lr_scale"] * lr_factor(frac, tcfg)
                starts = sampler.starts(tcfg.batch_size)[ctx.rank * local : (ctx.rank + 1) * local]
                x, y = sampler.windows(starts)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tcfg.precision == "bf16"):
                    out = forward(x)
                loss = compute_loss(out.float()[..., warm:], y[..., warm:], tcfg.loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # DDP: gradients averaged over the ranks here
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
            if not losses:  # the budget ran out just before this epoch: the last one is validated
                logger.warning("training stopped by training.max_minutes=%g after %d steps", tcfg.max_minutes,
                               result.n_steps)  # fmt: skip
                loop.stop = True
                break
            if ctx.is_main:
                _end_epoch(model, net, params, ema, data, cfg, epoch, losses, optimizer, result, loop, t0,
                           head_epochs)  # fmt: skip
                if history_file is not None:
                    history_file.write(json.dumps(result.history[-1]) + "\n")
                    history_file.flush()
                bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_r=_fmt_r(result.history[-1]["val_r_mean"]))
            loop.epoch = epoch
            loop.stop = bool(distributed.broadcast_object(loop.stop, ctx))
            loop.elapsed = time.perf_counter() - t0
            torch_rng = distributed.gather_objects(torch.get_rng_state(), ctx)
            if ckpt is not None and ctx.is_main:
                save_checkpoint(ckpt, net, optimizer, ema, rng, torch_rng, result, loop)
                if os.environ.get(KILL_AFTER_CHECKPOINT_ENV) == str(epoch):
                    os.kill(os.getpid(), signal.SIGKILL)
    finally:
        bar.close()
        if history_file is not None:
            history_file.close()
        if restore_bn is not None:
            restore_bn()
    result.seconds = time.perf_counter() - t0
    if not ctx.is_main:
        return result
    if head_epochs is not None:
        _keep_remaining_heads(model, net, params, ema, head_epochs, result, loop)
    if loop.best_state is None:
        raise RuntimeError(
            "no epoch gave a finite validation r (the model predicts a constant on the validation "
            "block); check the data and the learning rate."
        )
    model.load_state_dict(loop.best_state)
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


def _load_kept_form(
    model: torch.nn.Module,
    net: torch.nn.Module,
    params: list[torch.nn.Parameter],
    ema: list[torch.Tensor] | None,
) -> list[torch.Tensor] | None:
    """Put the weights that are validated and kept into ``model``: the average when there is one
    (returns the raw weights to restore after), the fused form of a separate-heads layout."""
    raw = None
    if ema is not None:  # validate the averaged weights; training continues from the raw ones
        raw = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, a in zip(params, ema, strict=True):
                p.copy_(a)
    if net is not model:  # validate (and keep) the fused model, the bundle's form
        load_heads_(model, net)
    return raw


def _restore_raw(params: list[torch.nn.Parameter], raw: list[torch.Tensor] | None) -> None:
    if raw is not None:
        with torch.no_grad():
            for p, r in zip(params, raw, strict=True):
                p.copy_(r)


def _keep_heads(
    model: torch.nn.Module, heads: list[int], epoch: int, n_heads: int, result: TrainResult, loop: _LoopState
) -> bool:
    """Copy ROI heads ``heads`` of ``model`` into the kept state as of ``epoch``; True when there was one."""
    if not result.best_epochs:
        result.best_epochs = [0] * n_heads
    if not heads:
        return False
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if loop.best_state is None:
        loop.best_state = copy.deepcopy(state)
    for h in heads:
        copy_head_(loop.best_state, state, h, n_heads)
        result.best_epochs[h] = epoch
    result.best_epoch = epoch
    return True


def _keep_remaining_heads(
    model: torch.nn.Module, net: torch.nn.Module, params: list[torch.nn.Parameter], ema: list[torch.Tensor] | None,
    head_epochs: list[int], result: TrainResult, loop: _LoopState,
) -> None:  # fmt: skip
    """After a refit cut short (time budget): the heads whose epoch never came, from the last weights."""
    missing = [h for h in range(len(head_epochs)) if not result.best_epochs or result.best_epochs[h] == 0]
    if not missing:
        return
    logger.warning("refit ended after epoch %d: ROI heads %s kept from there, not from their chosen epochs",
                   loop.epoch, missing)  # fmt: skip
    raw = _load_kept_form(model, net, params, ema)
    _keep_heads(model, missing, loop.epoch, len(head_epochs), result, loop)
    _restore_raw(params, raw)


def _end_epoch(
    model: torch.nn.Module, net: torch.nn.Module, params: list[torch.nn.Parameter], ema: list[torch.Tensor] | None,
    data: PreparedData | GroupData, cfg: BeiraConfig, epoch: int, losses: list[float], optimizer: torch.optim.Optimizer,
    result: TrainResult, loop: _LoopState, t0: float, head_epochs: list[int] | None = None,
) -> None:  # fmt: skip
    """Validate (rank 0), keep the best state, record the epoch and decide whether to stop.

    With ``head_epochs``: no validation; the heads whose epoch this is are kept, and the run
    stops after the last of them.
    """
    tcfg = cfg.training
    raw = _load_kept_form(model, net, params, ema)
    record: dict = {
        "epoch": epoch,
        "step": result.n_steps,
        "lr": float(optimizer.param_groups[0]["lr"]),
        "train_loss": float(np.mean(losses)),
    }
    if head_epochs is None:
        record.update(_validate(model, data, cfg, next(model.parameters()).device))
        record["seconds"] = round(time.perf_counter() - t0, 3)
        improved, loop.best_state = _keep_best(model, record, epoch, result, loop.best_state, tcfg.checkpoint)
    else:
        record.update(
            val_loss=float("nan"), val_r_mean=float("nan"), seconds=round(time.perf_counter() - t0, 3)
        )
        heads = [h for h, e in enumerate(head_epochs) if e == epoch]
        improved = _keep_heads(model, heads, epoch, len(head_epochs), result, loop)
    _restore_raw(params, raw)
    record["best"] = bool(improved)
    result.history.append(record)
    if head_epochs is not None and epoch >= max(head_epochs) and result.stop_reason != "max_minutes":
        result.stop_reason = "last_chosen_epoch"
        loop.stop = True
        return
    if head_epochs is None:
        loop.stale = 0 if improved else loop.stale + 1
    logger.debug(
        "epoch %d: train loss %.4f, val loss %.4f, val r %.3f",
        epoch, record["train_loss"], record["val_loss"], record["val_r_mean"],
    )  # fmt: skip
    if result.stop_reason == "max_minutes":
        logger.warning(
            "training stopped by training.max_minutes=%g after %d steps", tcfg.max_minutes, result.n_steps
        )
        loop.stop = True
    elif loop.stale >= tcfg.patience:
        result.stop_reason = "patience"
        logger.info("early stop: no validation improvement for %d epochs", loop.stale)
        loop.stop = True
