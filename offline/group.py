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
import csv
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.bundle import ModelBundle
from beira_rt.config import BeiraConfig, override
from beira_rt.models import BEIRA

from . import report
from .dataset import GroupData, PreparedData
from .metrics import pearson_r, predict_block
from .pipeline import fresh_model, jsonable
from .ridge import fit_readout_with
from .split import Block
from .spoc import fit_front_end
from .train import TrainResult, train_model

__all__ = [
    "FINETUNE_VAL_FRACTION",
    "evaluate_group",
    "finetune",
    "finetune_part",
    "make_group_bundle",
    "test_r",
    "train_group",
    "write_group_report",
]

#: Share of the fine-tuning minutes held out to choose the fine-tuned checkpoint.
FINETUNE_VAL_FRACTION = 0.2


def train_group(
    cfg: BeiraConfig, group: GroupData, device: torch.device, *, progress: bool = False
) -> tuple[BEIRA, TrainResult]:
    """A fresh BEIRA (seeded with ``training.seed``) trained on every subject of ``group``.

    ``training.refit`` is not applied to a group (its subjects' validation blocks choose the
    checkpoint, and the leave-one-subject-out scores need them held out); the ridge read-out
    (``training.fit`` closed_form or gradient_ridge) is, on the subjects' training blocks pooled.
    """
    if cfg.training.refit:
        logger.info(
            "training.refit applies to single recordings (beira-train); the group model is not refitted"
        )
    model = fresh_model(cfg, group.parts, device)
    result = train_model(model, group, cfg, device=device, progress=progress)
    model.eval()
    if cfg.readout_ridge:
        fit_readout_with(model, [(p.eeg, p.target, p.split.train) for p in group.parts], cfg.training)
    return model, result


def test_r(model: torch.nn.Module, part: PreparedData, cfg: BeiraConfig, device: torch.device) -> np.ndarray:
    """Pearson r per ROI on ``part``'s test block (offline read-out)."""
    pred, true = predict_block(model, part, cfg, part.split.test, device)
    return pearson_r(pred, true)


def finetune(
    model: torch.nn.Module, calib: PreparedData, cfg: BeiraConfig, device: torch.device
) -> torch.nn.Module:
    """A copy of ``model`` fine-tuned on a new subject's calibration data ``calib``.

    A front end that is fitted to data (``model.filter_init`` spoc) is first fitted to the new
    subject's calibration training block (the other subjects' spatial filters do not carry
    over); then the training of ``cfg`` runs on ``calib``.
    """
    tuned = copy.deepcopy(model)
    fit_front_end(tuned, [calib], cfg.model)
    train_model(tuned, calib, cfg, device=device, progress=False)
    if cfg.readout_ridge:
        fit_readout_with(tuned, [(calib.eeg, calib.target, calib.split.train)], cfg.training)
    return tuned


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
) -> tuple[dict[str, Any], BEIRA | None]:
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
    evaluation : dict
        ``subjects``, ``within`` (subject -> ROI -> r, and ``mean``), ``loso`` (the same),
        ``finetune`` (subject -> minutes -> ROI -> r), ``group_training`` (steps, best epoch,
        validation r), ``definition``.
    model : BEIRA or None
        The group model of all subjects (None when ``within`` is false).
    """
    subjects = tuple(parts)
    rois = next(iter(parts.values())).rois
    out: dict[str, Any] = {
        "subjects": list(subjects), "within": {}, "group_training": {}, "loso": {}, "finetune": {},
        "definition": __doc__.split("\n\n", 2)[2].split("\n\nAll numbers")[0],
    }  # fmt: skip
    model = None
    if within:
        model, result = train_group(cfg, GroupData(tuple(parts.values()), subjects), device)
        out["within"] = {s: _per_roi(rois, test_r(model, parts[s], cfg, device)) for s in subjects}
        out["group_training"] = {"n_steps": result.n_steps, "best_epoch": result.best_epoch,
                                 "val_r_mean": result.best_val_r}  # fmt: skip
    if not loso or len(subjects) < 2:
        return out, model
    ft_cfg = override(cfg, dict(finetune_overrides or {}))
    for held in subjects if held_out is None else tuple(held_out):
        others = tuple(s for s in subjects if s != held)
        logger.info("leave-one-subject-out: %s held out, training on %s", held, ", ".join(others))
        loso_model, _ = train_group(cfg, GroupData(tuple(parts[s] for s in others), others), device)
        out["loso"][held] = _per_roi(rois, test_r(loso_model, parts[held], cfg, device))
        out["finetune"][held] = {}
        for minutes in finetune_minutes:
            tuned = finetune(loso_model, finetune_part(parts[held], minutes), ft_cfg, device)
            tuned.eval()
            out["finetune"][held][f"{minutes:g}"] = _per_roi(rois, test_r(tuned, parts[held], cfg, device))
    return out, model


def _rows(
    evaluation: Mapping[str, Any], per_subject: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per subject and ROI (and ``mean``): per-subject model, group within, LOSO, fine-tuned r."""
    rows = []
    for s in evaluation["subjects"]:
        own = per_subject.get(s, {}).get("test", {})
        own_r = dict(own.get("r_per_roi", {})) | ({"mean": own["r_mean"]} if "r_mean" in own else {})
        within, loso = evaluation["within"].get(s, {}), evaluation["loso"].get(s, {})
        for roi in within or loso:
            row = {"subject": s, "roi": roi, "per_subject_r": own_r.get(roi), "group_within_r": within.get(roi),
                   "loso_r": loso.get(roi)}  # fmt: skip
            for minutes, table in evaluation["finetune"].get(s, {}).items():
                row[f"finetuned_{minutes}min_r"] = table.get(roi)
            rows.append(row)
    return rows


def write_group_report(
    out_dir: str | Path, evaluation: Mapping[str, Any], per_subject: Mapping[str, Mapping[str, Any]]
) -> list[Path]:
    """Write ``group.json``, ``group.csv`` and ``finetune.png`` (when there was fine-tuning) into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
    evaluation : dict
        From :func:`evaluate_group`.
    per_subject : mapping of subject -> metrics
        The per-subject models' ``metrics.json`` (for the comparison column; may be empty).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(evaluation, per_subject)
    (out / "group.json").write_text(
        json.dumps(jsonable({**evaluation, "table": rows}), indent=1), encoding="utf-8"
    )
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "group.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "" if v is None else f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()}
            )
    written = [out / "group.json", out / "group.csv"]
    if not evaluation["finetune"]:
        return written
    curves = {
        s: {"0": evaluation["loso"][s]["mean"]} | {m: t["mean"] for m, t in tables.items()}
        for s, tables in evaluation["finetune"].items()
    }
    curves["mean over subjects"] = {
        x: float(np.nanmean([c[x] for c in curves.values()])) for x in next(iter(curves.values()))
    }
    means = [r["per_subject_r"] for r in rows if r["roi"] == "mean" and r["per_subject_r"] is not None]
    within = [r["group_within_r"] for r in rows if r["roi"] == "mean" and r["group_within_r"] is not None]
    horizontal = {}
    if means:
        horizontal["per-subject models (mean)"] = float(np.mean(means))
    if within:
        horizontal["group model, within-subject (mean)"] = float(np.mean(within))
    written.append(report.plot_curves(
        curves, out / "finetune.png", xlabel="minutes of the held-out subject's data (0 = leave-one-subject-out)",
        ylabel="mean test r over ROIs", title="Fine-tuning a group model on a new subject", horizontal=horizontal,
    ))  # fmt: skip
    return written


def make_group_bundle(
    cfg: BeiraConfig,
    group: GroupData,
    model: BEIRA,
    evaluation: Mapping[str, Any],
    data_hashes: Mapping[str, str],
) -> ModelBundle:
    """A bundle of the group model that carries what it was trained on and how it was evaluated.

    ``metrics["group"]``: the subjects and their data hashes, the normalisation rule and the
    whole :func:`evaluate_group` result. The group model was trained on per-subject statistics;
    the bundle's ``norm_mean`` / ``norm_std`` (and target statistics) are their mean over the
    training subjects, a starting point for a new subject, whose own statistics are better.
    The look-ahead is 0 s (not chosen for the group).
    """
    parts = group.parts
    stat = lambda get: np.mean([get(p) for p in parts], axis=0)  # noqa: E731 - one-line helper
    metrics = {
        "group": {
            "subjects": list(group.subjects), "data_hashes": dict(data_hashes),
            "normalisation": "per subject (each subject's training block); norm_mean/norm_std here are the mean "
                             "over the training subjects",
            "evaluation": dict(evaluation),
        },
        "test": {"r_mean": float(np.nanmean([t["mean"] for t in evaluation["within"].values()]))},
    }  # fmt: skip
    return ModelBundle(
        config=cfg, ch_names=group.parts[0].ch_names, sfreq_in=group.parts[0].sfreq_in, rois=group.rois,
        norm_mean=stat(lambda p: p.normalizer.mean), norm_std=stat(lambda p: p.normalizer.std),
        target_mean=stat(lambda p: p.target_mean), target_std=stat(lambda p: p.target_std), lookahead=0.0,
        metrics=jsonable(metrics), state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
    )  # fmt: skip
