"""Importance of each interpretable branch for its ROI: the drop in validation r when it is silenced.

A branch is silenced by replacing its output (the envelope filter's output) with a constant,
its own mean over the block: the envelope filter's taps are set to zero and its bias to that
mean. The rest of the head then sees the branch's average value instead of its fluctuations,
so nothing downstream is shifted away from the values it was trained on (as zeroing would
do). Branch ``k`` is silenced in every head at once: head ``h`` only reads its own branches,
so one pass gives the drop of every ROI for that branch index.

The block is the validation block (never the test block): the ranking chooses what to show,
and nothing is chosen on the test block.
"""

from __future__ import annotations

import numpy as np
import torch

from beira_rt.models import BEIRA

from ..dataset import PreparedData
from ..evaluate import pearson_r, predict_span
from ..split import Block

__all__ = ["branch_importance", "branch_means"]


@torch.no_grad()
def branch_means(model: BEIRA, eeg: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Mean output of every branch (envelope filter output) over samples ``[start, stop)``.

    Parameters
    ----------
    model : BEIRA
        In eval mode.
    eeg : array of shape (n_chans, n_eeg)
        Normalised model-rate EEG.
    start, stop : int
        The span to average over (the filters see up to ``filter_size + envelope_size`` samples
        around it).

    Returns
    -------
    array of shape (n_heads * n_filters,)
        Head-major, as the model's channels.
    """
    pad = model.interpretable.band_pass.kernel_size + model.interpretable.envelope.kernel_size
    lo, hi = max(0, start - pad), min(eeg.shape[1], stop + pad)
    x = torch.from_numpy(np.ascontiguousarray(eeg[:, lo:hi], dtype=np.float32))[None, :, None, :]
    x = x.contiguous(memory_format=torch.channels_last).to(next(model.parameters()).device)
    out = model.interpretable(x)[0, :, 0, start - lo : stop - lo]
    return out.mean(dim=-1).double().cpu().numpy()


@torch.no_grad()
def branch_importance(
    model: BEIRA,
    data: PreparedData,
    block: Block,
    variant: str,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Validation r of every ROI with all branches, and with each branch silenced.

    Parameters
    ----------
    model : BEIRA
        The trained model (restored to its weights on return).
    data : PreparedData
    block : Block
        The block to score on (the validation block).
    variant : str
        ``'reference'`` or ``'causal'`` (the offline read-out region).
    device : str or torch.device
    batch_size : int

    Returns
    -------
    base_r : array of shape (n_rois,)
        r with every branch.
    silenced_r : array of shape (n_rois, n_filters)
        r with branch ``k`` of the ROI's head silenced. The importance is ``base_r[:, None] -
        silenced_r``.
    """
    model.eval()
    n_times = model.n_times
    true = data.target[:, block.slice]

    def score() -> np.ndarray:
        pred = predict_span(
            model, data.eeg, block.start, block.stop, n_times, variant, device=device, batch_size=batch_size
        )
        return pearson_r(pred, true)

    base = score()
    n_heads, n_filters = model.n_outputs, int(model.hparams["n_filters"])
    means = torch.from_numpy(branch_means(model, data.eeg, block.start, block.stop)).float()
    env = model.interpretable.envelope
    weight, bias = env.weight.detach().clone(), env.bias.detach().clone()
    silenced = np.empty((n_heads, n_filters))
    try:
        for k in range(n_filters):
            idx = torch.arange(n_heads) * n_filters + k
            env.weight[idx] = 0.0
            env.bias[idx] = means[idx].to(env.bias.device)
            silenced[:, k] = score()
            env.weight.copy_(weight)
            env.bias.copy_(bias)
    finally:
        env.weight.copy_(weight)
        env.bias.copy_(bias)
    return base, silenced
