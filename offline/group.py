"""A group model over several subjects and its cross-subject evaluation.

Each subject is prepared on its own (:func:`offline.dataset.prepare_recording`: its own split
and its own training-block normalisation statistics, EEG and BOLD), so that subjects with other
amplitudes meet the model on the same scale. A group model trains on windows from every
subject's training block (:class:`offline.dataset.GroupSampler`) and keeps the checkpoint with
the best mean over subjects of each ROI's validation r. :func:`evaluate_group` scores it:

(a) **within-subject**: the group model of all subjects on each subject's test block;
(b) **leave-one-subject-out** (LOSO): for each subject, a group model of the others on that
    subject's test block (its EEG normalised with its own training-block statistics, which
    need no labels; none of its BOLD is used);
(c) **fine-tuning**: each LOSO model trained further on the first N minutes of the held-out
    subject (the first 80 % for training, the last 20 % to choose the checkpoint; nothing
    after those N minutes), then scored on its test block.

All numbers are test-block Pearson r per ROI (offline read-out, :func:`offline.metrics.predict_block`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.config import BeiraConfig, override
from beira_rt.models import BEIRA

from .dataset import GroupData, PreparedData
from .metrics import pearson_r, predict_block
from .split import Block
from .train import TrainResult, train_model

__all__ = ["FINETUNE_VAL_FRACTION", "evaluate_group", "finetune_part", "test_r", "train_group"]

#: Share of the fine-tuning minutes held out to choose the fine-tuned checkpoint.
FINETUNE_VAL_FRACTION = 0.2


def train_group(
    cfg: BeiraConfig, group: GroupData, device: torch.device, *, progress: bool = False
) -> tuple[BEIRA, TrainResult]:
    """A fresh BEIRA (seeded with ``training.seed``) trained on every subject of ``group``."""
    torch.manual_seed(cfg.training.seed)
    model = BEIRA.from_config(cfg.model, group.n_chans, group.n_rois, group.sfreq).to(device)
    result = train_model(model, group, cfg, device=device, progress=progress)
    model.eval()
    return model, result


def test_r(model: torch.nn.Module, part: PreparedData, cfg: BeiraConfig, device: torch.device) -> np.ndarray:
    """Pearson r per ROI on ``part``'s test block (offline read-out)."""
    pred, true = predict_block(model, part, cfg, part.split.test, device)
    return pearson_r(pred, true)


def finetune_part(part: PreparedData, minutes: float) -> PreparedData:
    """``part`` with its training and validation blocks inside the first ``minutes`` of its training block.

    The first ``minutes`` (at most the whole training block) are split into training (the first
    80 %) and validation (the last :data:`FINETUNE_VAL_FRACTION`); the test block is unchanged.

    Raises
    ------
    ValueError
        When the fine-tuning training span is shorter than one window.
    """
    train = part.split.train
    stop = min(train.start + round(minutes * 60.0 * part.sfreq), train.stop)
    n_val = max(round(FINETUNE_VAL_FRACTION * (stop - train.start)), 1)
    split = dataclasses.replace(
        part.split, train=Block("train", train.start, stop - n_val), val=Block("val", stop - n_val, stop)
    )
    return dataclasses.replace(part, split=split)


def _per_roi(rois: Sequence[str], r: np.ndarray) -> dict[str, float]:
    return {roi: float(v) for roi, v in zip(rois, r, strict=True)} | {"mean": float(np.nanmean(r))}


def evaluate_group(
    cfg: BeiraConfig,
    parts: Mapping[str, PreparedData],
    device: torch.device,
    *,
    finetune_minutes: Sequence[float] = (1.0, 2.0, 4.0),
    finetune_overrides: Mapping[str, Any] | None = None,
    within: bool = True,
    loso: bool = True,
    held_out: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Within-subject, leave-one-subject-out and fine-tuning test r of group models.

    Parameters
    ----------
    cfg : BeiraConfig
    parts : mapping of subject -> PreparedData
        Each prepared with its own statistics (at least 2 subjects for LOSO).
    device : torch.device
    finetune_minutes : sequence of float
        N of (c); empty: no fine-tuning.
    finetune_overrides : mapping or None
        Config overrides for the fine-tuning runs (e.g. a smaller ``training.lr``).
    within : bool
        Run (a) (the group model of all subjects).
    loso : bool
        Run (b) and (c).
    held_out : sequence of str or None
        The subjects held out in turn for (b) and (c) (None: every subject).

    Returns
    -------
    dict
        ``subjects``, ``within`` (subject -> ROI -> r, and ``mean``), ``loso`` (the same),
        ``finetune`` (subject -> minutes -> ROI -> r), ``group_training`` (steps, best epoch,
        validation r), ``definition``.
    """
    subjects = tuple(parts)
    rois = next(iter(parts.values())).rois
    out: dict[str, Any] = {
        "subjects": list(subjects), "within": {}, "group_training": {}, "loso": {}, "finetune": {},
        "definition": __doc__.split("\n\n", 2)[2].split("\n\nAll numbers")[0],
    }  # fmt: skip
    if within:
        model, result = train_group(cfg, GroupData(tuple(parts.values()), subjects), device)
        out["within"] = {s: _per_roi(rois, test_r(model, parts[s], cfg, device)) for s in subjects}
        out["group_training"] = {"n_steps": result.n_steps, "best_epoch": result.best_epoch,
                                 "val_r_mean": result.best_val_r}  # fmt: skip
    if not loso or len(subjects) < 2:
        return out
    ft_cfg = override(cfg, dict(finetune_overrides or {}))
    for held in subjects if held_out is None else tuple(held_out):
        others = tuple(s for s in subjects if s != held)
        logger.info("leave-one-subject-out: %s held out, training on %s", held, ", ".join(others))
        loso_model, _ = train_group(cfg, GroupData(tuple(parts[s] for s in others), others), device)
        out["loso"][held] = _per_roi(rois, test_r(loso_model, parts[held], cfg, device))
        out["finetune"][held] = {}
        for minutes in finetune_minutes:
            tuned = copy.deepcopy(loso_model)
            train_model(tuned, finetune_part(parts[held], minutes), ft_cfg, device=device, progress=False)
            tuned.eval()
            out["finetune"][held][f"{minutes:g}"] = _per_roi(rois, test_r(tuned, parts[held], cfg, device))
    return out
