"""Importance of each interpretable branch for its ROI, measured on the training and validation blocks.

A branch is *silenced* by replacing its output (the envelope filter's output) with a
constant, its own mean over the block: the envelope filter's taps are set to zero and its bias
to that mean, so the rest of the head sees the branch's average value instead of its
fluctuations (nothing downstream is pushed away from the values it was trained on, as zeroing
would do). Two measures, both by the ROI's Pearson r on the block scored (:func:`importance_block`):

- ``solo_r`` (the ranking): r of the ROI's prediction when **only this branch varies**, every
  other branch of the head silenced. It asks whether the ROI's information reaches the output
  through this branch, and it is not fooled by redundancy: when two branches carry the same
  source, silencing one alone costs little (the other makes up for it) although both carry it.
  On the single-source development data of ``tests/offline/test_interpret.py`` the branch
  whose silencing cost most was, for one ROI of one training seed, a branch that did not show
  the source (|r| 0.18 with its pattern) while the branch with the best ``solo_r`` did (1.00);
- ``silenced_r``: r with this branch silenced and the others varying; ``drop_r = r - silenced_r``
  is the drop the issue names, reported beside.

Branch ``k`` is treated in every head at once (head ``h`` only reads its own branches), so one
pass gives the number of every ROI for that branch index. The block is the training and the
validation block together (never the test block: the ranking chooses what to show, and nothing
is chosen on the test block). The ranking describes what the model relies on, not how well it
generalises, and 60 s of validation (~30 fMRI volumes) alone ranked branches by chance
correlations: on 8 bundles of 3 synthetic subjects (README "Interpretation") the top branch
showed the ROI's driving source in 16 of 27 ROIs when ranked on the validation block, in 26 of
27 on training + validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from beira_rt.config import BeiraConfig
from beira_rt.models import BEIRA

from ..dataset import PreparedData
from ..metrics import pearson_r, predict_block
from ..split import Block, Split

__all__ = ["BranchImportance", "branch_importance", "branch_means", "importance_block"]


@dataclass(frozen=True)
class BranchImportance:
    """Validation r of every ROI with its branches silenced in two ways.

    Attributes
    ----------
    base_r : array of shape (n_rois,)
        r with every branch.
    silenced_r : array of shape (n_rois, n_filters)
        r with branch ``k`` silenced (the others vary).
    solo_r : array of shape (n_rois, n_filters)
        r with only branch ``k`` varying (the others silenced).
    """

    base_r: np.ndarray
    silenced_r: np.ndarray
    solo_r: np.ndarray

    @property
    def drop_r(self) -> np.ndarray:
        """``base_r - silenced_r``, array of shape (n_rois, n_filters)."""
        return self.base_r[:, None] - self.silenced_r


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


def importance_block(split: Split, first: int = 0) -> Block:
    """The training and validation blocks as one block (they are adjacent; the test block follows),
    from sample ``first`` on when the training block starts before it.

    ``first``: the first sample whose prediction holds its whole history (``receptive_field - 1``
    for the read-out back end, whose one pass sees zeros before the recording's first sample:
    the outputs before it are a start-up transient, which a branch that is constant everywhere
    else would be scored on).
    """
    if split.train.stop != split.val.start:
        raise ValueError(f"the training block {split.train} does not end where the validation block starts.")
    return Block("train+val", max(split.train.start, min(first, split.val.start)), split.val.stop)


@torch.no_grad()
def branch_importance(
    model: BEIRA, data: PreparedData, cfg: BeiraConfig, block: Block, device: str | torch.device = "cpu"
) -> BranchImportance:
    """Validation r of every ROI with all branches, each branch silenced, and each branch alone.

    Parameters
    ----------
    model : BEIRA
        The trained model (restored to its weights on return).
    data : PreparedData
    cfg : BeiraConfig
        The model's configuration (window, variant: the offline read-out region, batch size).
    block : Block
        The block to score on (:func:`importance_block`).
    device : str or torch.device

    Returns
    -------
    BranchImportance
    """
    model.eval()

    def score() -> np.ndarray:
        return pearson_r(*predict_block(model, data, cfg, block, device))

    n_heads, n_filters = model.n_outputs, int(model.hparams["n_filters"])
    means = torch.from_numpy(branch_means(model, data.eeg, block.start, block.stop)).float()
    env = model.interpretable.envelope
    weight, bias = env.weight.detach().clone(), env.bias.detach().clone()

    def silence(branches: list[int]) -> None:
        env.weight.copy_(weight)
        env.bias.copy_(bias)
        idx = (torch.arange(n_heads)[:, None] * n_filters + torch.tensor(branches)[None, :]).reshape(-1)
        env.weight[idx] = 0.0
        env.bias[idx] = means[idx].to(env.bias.device)

    base = score()
    silenced, solo = np.empty((n_heads, n_filters)), np.empty((n_heads, n_filters))
    try:
        for k in range(n_filters):
            silence([k])
            silenced[:, k] = score()
            silence([j for j in range(n_filters) if j != k] or [k])
            solo[:, k] = score() if n_filters > 1 else base
    finally:
        env.weight.copy_(weight)
        env.bias.copy_(bias)
    return BranchImportance(base, silenced, solo)
