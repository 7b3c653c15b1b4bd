"""Data-parallel training with ``torch.distributed`` (DDP), launched by ``torchrun``.

``torchrun`` starts one process per rank and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env` reads them and joins the process
group (gloo on a CPU, nccl on CUDA, one GPU per local rank). Without them (a plain
``beira-train``) nothing is initialised and training runs in one process as before.

How the ranks share the work (:func:`offline.train.train_model`):

- ``training.batch_size`` is the **global** batch. Every rank draws the same window starts
  from the same seeded generator and trains on its own slice of them (rank ``r`` takes
  starts ``[r b, (r + 1) b)`` with ``b = batch_size / world_size``): the ranks see different
  windows, and together exactly the windows one process would draw, so the result does not
  depend on the number of processes (tests/offline/test_distributed.py);
- DDP averages the gradients; the batch norms of the interpretable block use the statistics
  of the whole global batch (:class:`GlobalBatchNorm` on a CPU, torch's ``SyncBatchNorm`` on
  CUDA), as one process would;
- rank 0 validates, keeps the best checkpoint, decides when to stop (broadcast to the others),
  and writes the per-epoch checkpoint, the bundle and the report; the time budget is rank 0's
  clock, broadcast at every step, so that every rank takes the same steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from beira_rt._logging import logger

__all__ = [
    "DistContext",
    "GlobalBatchNorm",
    "broadcast_object",
    "context",
    "gather_objects",
    "init_from_env",
    "process_group",
    "rank_device",
    "sync_batch_norm_",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a distributed run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that validates and writes (rank 0)."""
        return self.rank == 0


def context() -> DistContext:
    """The current process group's rank and size (single process when none is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Parameters
    ----------
    device : str
        ``auto``, ``cpu`` or ``cuda`` (``training.device``): nccl when it resolves to CUDA,
        gloo otherwise.

    Returns
    -------
    DistContext
        Single-process when ``WORLD_SIZE`` is unset or 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return context()
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    ctx = context()
    logger.info("distributed training: rank %d of %d (%s)", ctx.rank, ctx.world_size, backend)
    return ctx


@contextmanager
def process_group(device: str = "auto") -> Iterator[DistContext]:
    """:func:`init_from_env` for the ``with`` block, and leave the process group at its end.

    A gloo process that exits with its group still open can abort at interpreter shutdown
    ("terminate called without an active exception": gloo's worker threads release tensors
    after Python is gone). So every rank destroys the group before it exits; after a block that
    completed, the ranks first meet at a barrier, so that none tears down while rank 0 is still
    writing. After an exception there is no barrier (the other ranks may never arrive).
    """
    joined = not (dist.is_available() and dist.is_initialized())  # a group opened by the caller stays open
    ctx = init_from_env(device)
    completed = False
    try:
        yield ctx
        completed = True
    finally:
        if joined and ctx.active and dist.is_initialized():
            if completed:
                dist.barrier()
            dist.destroy_process_group()


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA, the device itself otherwise."""
    if device.type == "cuda" and ctx.active:
        return torch.device("cuda", ctx.local_rank)
    return device


def broadcast_object(value: Any, ctx: DistContext) -> Any:
    """Rank 0's ``value`` on every rank (itself when not distributed)."""
    if not ctx.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not ctx.active:
        return [value]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the batches of all ranks (gloo or nccl), differentiable; any input rank >= 2.

    In training mode with more than one process, the per-channel sum, sum of squares and
    count of the local batch (in float64) are summed over the ranks with the differentiable
    functional ``all_reduce`` (its backward sums the gradients over the ranks), so the output and its gradient are
    those of one batch norm over the concatenated global batch (torch's ``SyncBatchNorm``
    runs on GPUs only). Otherwise it is the ordinary batch norm. Same parameters and buffers
    (and state-dict keys) as ``BatchNorm1d/2d``.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape (batch, channels, ...) with the global batch's statistics."""
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return super().forward(x)
        from torch.distributed import _functional_collectives as funcol  # differentiable collectives

        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        x64 = x.double()
        count = x64.new_full((1,), float(x.numel() // channels))
        stats = funcol.all_reduce(
            torch.cat([x64.sum(dims), (x64 * x64).sum(dims), count]), "sum", dist.group.WORLD
        )
        stats = stats.wait() if isinstance(stats, funcol.AsyncCollectiveTensor) else stats
        n = stats[-1]
        mean = stats[:channels] / n
        var = stats[channels : 2 * channels] / n - mean * mean
        shape = (1, channels) + (1,) * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * n.detach() / (n.detach() - 1)
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        return y


def _swap(
    module: nn.Module, make: Callable[[nn.Module], nn.Module | None]
) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every child ``c`` with ``make(c)`` where that is not None; returns what was replaced."""
    swapped = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
                swapped.append((parent, name, child))
    return swapped


def sync_batch_norm_(module: nn.Module, device: torch.device) -> Callable[[], None]:
    """Make every batch norm of ``module`` use the global batch's statistics, in place.

    Returns
    -------
    callable
        Puts the original modules back, with the trained buffers (the bundle's classes).
    """

    def make(child: nn.Module) -> nn.Module | None:
        if not isinstance(child, nn.modules.batchnorm._BatchNorm) or isinstance(child, GlobalBatchNorm):
            return None
        if device.type == "cuda":
            new: nn.Module = nn.SyncBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
        else:
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
        new.load_state_dict(child.state_dict())
        return new.to(device).train(child.training)

    swapped = _swap(module, make)

    def restore() -> None:
        for parent, name, original in swapped:
            original.load_state_dict(getattr(parent, name).state_dict())
            setattr(parent, name, original)

    return restore
