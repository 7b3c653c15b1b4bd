"""One training run from a recording to a bundle, metrics and figures.

:func:`run_training` is what ``beira-train`` does: load, preprocess and split
(:mod:`offline.dataset`), train with validation-chosen checkpoint
(:mod:`offline.train`), choose the live look-ahead on the validation block,
evaluate on the test block (offline read-out and live read-out at each
look-ahead, :mod:`offline.metrics`), fit the linear baseline
(:mod:`offline.baseline`), read the ceiling of a synthetic recording, then
write ``model.beira``, ``metrics.json``, ``history.jsonl`` and the figures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.bundle import ModelBundle, save_bundle
from beira_rt.config import BeiraConfig, to_dict
from beira_rt.inference import resolve_device
from beira_rt.models import BEIRA, build_model

from . import distributed, report
from .baseline import fit_baseline
from .dataset import PreparedData, prepare_recording
from .metrics import choose_lookahead, lookahead_r, pearson_r, predict_block, readout_region
from .ridge import fit_readout_with
from .split import Block
from .spoc import fit_front_end
from .train import TrainResult, set_batch_norm_stats, train_model

__all__ = [
    "READOUT_NOTE",
    "closed_form_val_r",
    "config_hash",
    "data_curve",
    "environment",
    "fresh_model",
    "jsonable",
    "read_ceiling",
    "run_training",
    "save_test_predictions",
    "test_metrics",
]

#: How the offline (a) and live (b) numbers are defined, copied into metrics.json.
READOUT_NOTE = (
    "offline: windows tiled with hop n_times/2, each sample read from the window where it lies in the "
    "read-out region (reference: centre half, causal: right half); live: predict_at at each look-ahead "
    "every live.hop over the block, all look-aheads scored on the same target samples. Targets are the "
    "BOLD bold_delay s after each EEG sample; EEG before a block (and, for look-ahead or centre read-out, "
    "just after a target's own sample) is input, no target outside the block is used."
)


def jsonable(value: Any) -> Any:
    """Plain JSON types: arrays to lists, NaN / inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def config_hash(cfg: BeiraConfig) -> str:
    """sha256 of the canonical JSON form of a config."""
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware the numbers were measured with."""
    env: dict[str, Any] = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        env["cuda_device"] = torch.cuda.get_device_name(device)
    try:
        env["load_average"] = list(os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        pass
    return env


def read_ceiling(data_dir: str | Path, subject: str, rois: tuple[str, ...]) -> dict[str, Any] | None:
    """The ceiling of a synthetic subject from ``{data_dir}/ground_truth/{subject}.json``, or None.

    Returns
    -------
    dict or None
        ``r_per_roi`` / ``r_mean`` (over all volumes), ``test_r_per_roi`` / ``test_r_mean`` (over
        the volumes of the last ``test_seconds``), ``source`` and ``definition``; None when the
        file does not exist (real data).
    """
    path = Path(data_dir) / "ground_truth" / f"{subject}.json"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"source": str(path.resolve()), "definition": meta.get("ceiling_definition", "")}
    for key, name in (("ceiling", "r"), ("ceiling_test", "test_r")):
        table = meta.get(key, {})
        missing = [r for r in rois if r not in table]
        if missing:
            logger.warning("ground truth %s has no %s for ROIs %s; ceiling not reported", path, key, missing)
            return None
        out[f"{name}_per_roi"] = {r: float(table[r]) for r in rois}
        out[f"{name}_mean"] = float(np.mean([table[r] for r in rois]))
    return out


def _per_roi(rois: tuple[str, ...], values: Any) -> dict[str, float]:
    return {roi: float(v) for roi, v in zip(rois, values, strict=True)}


def test_metrics(
    model: torch.nn.Module, cfg: BeiraConfig, data: PreparedData, device: torch.device, hop: float
) -> tuple[dict[str, Any], np.ndarray]:
    """Offline and live-read-out metrics of a model on the test block of ``data``.

    Returns
    -------
    metrics : dict
        ``r_per_roi``, ``r_mean``, ``r_by_lookahead``, ``r_by_lookahead_per_roi``,
        ``n_samples``, ``readout``.
    pred : array of shape (n_rois, n_test)
        Offline predictions (normalised units).
    """
    test = data.split.test
    pred, true = predict_block(model, data, cfg, test, device)
    r = pearson_r(pred, true)
    live = lookahead_r(
        model, data.eeg, data.target, test, cfg.training.lookaheads, hop, cfg.model.n_times, data.sfreq,
        device=device, batch_size=cfg.training.eval_batch_size,
    )  # fmt: skip
    lo, hi = readout_region(cfg.model.n_times, cfg.model.variant)
    metrics = {
        "r_per_roi": _per_roi(data.rois, r),
        "r_mean": float(np.nanmean(r)),
        "r_by_lookahead": live["r_mean"],
        "r_by_lookahead_per_roi": {la: _per_roi(data.rois, v) for la, v in live["r_per_roi"].items()},
        "n_samples": len(test),
        "n_samples_lookahead": live["n_samples"],
        "readout": {"offline_region": [lo, hi], "note": READOUT_NOTE},
    }
    return metrics, pred


def _make_bundle(
    cfg: BeiraConfig, data: PreparedData, model: torch.nn.Module, lookahead: float, metrics: dict
) -> ModelBundle:
    return ModelBundle(
        config=cfg,
        ch_names=data.ch_names,
        sfreq_in=data.sfreq_in,
        rois=data.rois,
        norm_mean=data.normalizer.mean,
        norm_std=data.normalizer.std,
        target_mean=data.target_mean,
        target_std=data.target_std,
        lookahead=float(lookahead),
        metrics=metrics,
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
    )


def run_training(
    cfg: BeiraConfig,
    recording: Any,
    out_dir: str | Path,
    *,
    ceiling: dict[str, Any] | None = None,
    progress: bool = True,
    load_seconds: float = 0.0,
    interpret: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Train, evaluate and write a bundle and a report for one recording.

    In a distributed run (:mod:`offline.distributed`) every rank calls this; all train, rank 0
    evaluates and writes, the other ranks return an empty dict.

    Parameters
    ----------
    cfg : BeiraConfig
    recording : offline.loader.Recording or offline.cache.PreprocessedRecording
        Loaded (or read from the preprocessing cache) with ``cfg.data`` at ``cfg.preprocessing.sfreq``.
    out_dir : str or Path
        Output folder (created): ``model.beira``, ``metrics.json``, ``history.jsonl``,
        ``test_predictions.npz`` and the PNG figures of :mod:`offline.report`.
    ceiling : dict or None
        From :func:`read_ceiling` (synthetic data).
    progress : bool
        tqdm progress bar during training.
    load_seconds : float
        Time spent loading (reported in the timings).
    interpret : bool
        Also interpret the trained model (:mod:`offline.interpret`, a few seconds): write
        ``interpretation/`` (``interpretation.json``, ``patterns.json``, ``overview.png``) and
        ``model.patterns.json`` beside the bundle (what ``beira-rt dashboard --patterns`` reads).
    resume : bool
        Continue the training from ``out_dir/checkpoint.pt`` (written after every epoch) when
        it exists, e.g. after a crash.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.training
    timings: dict[str, float] = {"load_s": load_seconds}
    if tcfg.num_threads is not None:
        torch.set_num_threads(tcfg.num_threads)
    ctx = distributed.context()
    device = distributed.rank_device(resolve_device(tcfg.device), ctx)

    t = time.perf_counter()
    data = prepare_recording(recording, cfg)
    timings["preprocess_s"] = time.perf_counter() - t

    model = fresh_model(cfg, [data], device)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("BEIRA %s: %d parameters (%d ROI heads)", cfg.model.variant, n_params, data.n_rois)
    result = train_model(
        model, data, cfg, device=device, history_path=out / "history.jsonl", progress=progress,
        checkpoint_path=out / "checkpoint.pt", resume=resume,
    )  # fmt: skip
    timings["train_s"] = result.seconds
    val_live: dict[str, Any] = {}
    ridge: dict[str, Any] | None = None
    if ctx.is_main:  # every validation choice is made on the first run's model
        model.eval()
        if cfg.readout_ridge:  # the read-out fitted on the training block; the validation r re-measured
            ridge = fit_readout_with(model, [(data.eeg, data.target, data.split.train)], tcfg).to_dict(
                data.rois, data.split.train.name
            )
            timings["readout_fit_s"] = ridge["seconds"]
            pred_val, true_val = predict_block(model, data, cfg, data.split.val, device)
            result.best_val_r_per_roi = pearson_r(pred_val, true_val).tolist()
            result.best_val_r = float(np.nanmean(result.best_val_r_per_roi))
        t = time.perf_counter()
        val_live = lookahead_r(
            model, data.eeg, data.target, data.split.val, tcfg.lookaheads, cfg.live.hop, cfg.model.n_times,
            data.sfreq, device=device, batch_size=tcfg.eval_batch_size,
        )  # fmt: skip
        timings["evaluate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        curve = data_curve(cfg, data, result.best_val_r_per_roi, device)
        if curve is not None:
            timings["data_curve_s"] = time.perf_counter() - t
    refit = None
    if tcfg.refit:
        model, refit = _refit(cfg, data, out, device, result, ctx, progress, resume)
        timings["refit_s"] = refit["seconds"]
    if not ctx.is_main:
        return {}
    model.eval()
    if cfg.readout_ridge and refit is not None:  # the refit model's read-out on training + validation
        split = data.split
        block = Block("train+val", split.train.start, split.val.stop)
        ridge = fit_readout_with(model, [(data.eeg, data.target, block)], tcfg).to_dict(data.rois, block.name)
        timings["readout_fit_s"] += ridge["seconds"]

    t = time.perf_counter()
    lookahead = choose_lookahead(val_live["r_mean"], tcfg.lookahead_tolerance)
    test, pred = test_metrics(model, cfg, data, device, cfg.live.hop)
    timings["evaluate_s"] += time.perf_counter() - t

    t = time.perf_counter()
    baseline, base_pred = fit_baseline(data, cfg.model.bold_delay, tcfg.baseline_alphas)
    base_r = pearson_r(base_pred[:, data.split.test.slice], data.target[:, data.split.test.slice])
    timings["baseline_s"] = time.perf_counter() - t

    metrics: dict[str, Any] = {
        "subject": getattr(recording, "subject", ""),
        "variant": cfg.model.variant,
        "test": test,
        "val": {
            "r_per_roi": _per_roi(data.rois, result.best_val_r_per_roi),
            "r_mean": result.best_val_r,
            "r_by_lookahead": val_live["r_mean"],
        },
        "lookahead": {
            "chosen_s": lookahead,
            "rule": f"smallest look-ahead within {tcfg.lookahead_tolerance:g} of the best validation mean r",
        },
        "baseline": {
            "r_per_roi": _per_roi(data.rois, base_r),
            "r_mean": float(np.nanmean(base_r)),
            "val_r_per_roi": _per_roi(data.rois, baseline.val_r_per_roi),
            "alphas": _per_roi(data.rois, baseline.alphas),
            "features": "log band power (delta..gamma) per channel, convolved with the canonical HRF and its derivative",
        },
        "ceiling": ceiling,
        "training": {
            "best_epoch": result.best_epoch,
            "checkpoint": tcfg.checkpoint,
            "best_epochs_per_roi": _per_roi(data.rois, result.best_epochs),
            "epochs_run": len(result.history),
            "n_steps": result.n_steps,
            "stop_reason": result.stop_reason,
            "n_params": n_params,
            "windows_per_s": result.n_steps * tcfg.batch_size / max(result.seconds, 1e-9),
            "processes": ctx.world_size,
            "refit": refit,
            "fit": cfg.fit,
            "readout_ridge": ridge,
        },
        "data_curve": curve,
        "split": data.split.to_dict(),
        "data": {
            "data_hash": getattr(recording, "data_hash", ""),
            "provenance": getattr(recording, "provenance", {}),
            "warnings": list(getattr(recording, "warnings", [])),
            "ch_names": list(data.ch_names),
            "rois": list(data.rois),
            "sfreq_in": data.sfreq_in,
            "duration_s": recording.duration,
            "cache": getattr(recording, "cache", None),
        },
        "config": to_dict(cfg),
        "config_hash": config_hash(cfg),
        "environment": environment(device),
    }
    if ceiling is not None:
        metrics["ratio_to_ceiling"] = {
            "test_r_mean / ceiling.r_mean": test["r_mean"] / ceiling["r_mean"],
            "test_r_mean / ceiling.test_r_mean": test["r_mean"] / ceiling["test_r_mean"],
        }

    t = time.perf_counter()
    summary = {
        "test_r_mean": test["r_mean"],
        "val_r_mean": result.best_val_r,
        "baseline_test_r_mean": metrics["baseline"]["r_mean"],
        **{k: metrics[k] for k in ("test", "val", "baseline", "lookahead")},
        "data_hash": metrics["data"]["data_hash"],
        "refit": refit is not None,  # the validation block is training data of this model
        "fit": cfg.fit,
    }
    bundle = _make_bundle(cfg, data, model, lookahead, jsonable(summary))
    metrics["bundle_hash"] = save_bundle(bundle, out / "model.beira")
    _figures(out, result.history, data, pred, base_pred, metrics)
    timings["write_s"] = time.perf_counter() - t
    if interpret:
        t = time.perf_counter()
        _interpret(out, model, data, cfg, device, recording, metrics)
        timings["interpret_s"] = time.perf_counter() - t
    timings["total_s"] = sum(timings.values())
    metrics["timings"] = timings
    (out / "metrics.json").write_text(json.dumps(jsonable(metrics), indent=2), encoding="utf-8")
    return jsonable(metrics)


def fresh_model(cfg: BeiraConfig, parts: Sequence[PreparedData], device: torch.device) -> torch.nn.Module:
    """A BEIRA for ``parts`` (one recording, or a group's subjects) seeded with ``training.seed``,
    its front end fitted on their training blocks (``model.filter_init``), on ``device``."""
    torch.manual_seed(cfg.training.seed)
    first = parts[0]
    model = build_model(cfg.model, first.n_chans, first.n_rois, first.sfreq)
    fit_front_end(model, parts, cfg.model)
    return model.to(device)


def closed_form_val_r(
    cfg: BeiraConfig, data: PreparedData, train: Block, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Per-ROI r on the validation block of a closed-form fit (front end, batch-norm statistics,
    ridge read-out) on the block ``train`` of ``data``; the test block is not read."""
    part = dataclasses.replace(data, split=dataclasses.replace(data.split, train=train))
    model = fresh_model(cfg, [part], torch.device(device))
    set_batch_norm_stats(model, [(data.eeg, train)])
    fit_readout_with(model, [(data.eeg, data.target, train)], cfg.training)
    model.eval()
    pred, truth = predict_block(model, data, cfg, data.split.val, device)
    return pearson_r(pred, truth)


def data_curve(
    cfg: BeiraConfig, data: PreparedData, full_val_r: Sequence[float], device: torch.device | str = "cpu"
) -> dict[str, Any] | None:
    """How the validation r grows with the training data (``training.data_curve``, closed form).

    The closed form fitted again on the last ``f`` of the training block for each fraction ``f``
    (the part nearest the validation block, so every point is scored as far from its data), beside
    the fit on the whole block (``full_val_r``, the run's own). ``gain_per_minute``: the rise of the
    mean r per minute of data between the two longest fits; clearly above 0, a longer calibration
    recording would likely give a better model. One 60-s block is noisy: fitted on 116 s and on
    176 s, 12 synthetic subjects of the independent generator rose by +0.114 with a standard error
    of 0.030, a per-subject spread of about 0.1 (docs/accuracy_matrix_foreign.txt).

    Returns
    -------
    dict or None
        ``points`` (``train_s``, ``val_r_mean``, ``val_r_per_roi``, shortest first) and
        ``gain_per_minute``; ``rising``: every longer fit scored higher; ``skipped``: the
        fractions whose fit failed (too little data; logged, the run goes on). None when the fit
        is not closed-form or no fraction is set.
    """
    fractions = sorted(cfg.training.data_curve)
    if not fractions or cfg.gradient_steps or not cfg.readout_ridge:
        return None
    train = data.split.train
    points, skipped = [], []
    for frac in fractions:
        start = train.stop - round(frac * len(train))
        try:  # a diagnostic: a fit too short to make must not cost the run
            r = closed_form_val_r(cfg, data, Block(train.name, start, train.stop), device)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
            logger.warning(
                "data curve: no fit on the last %.1f s of the training block (%s)",
                (train.stop - start) / data.sfreq,
                err,
            )
            skipped.append({"train_s": (train.stop - start) / data.sfreq, "error": str(err)})
            continue
        points.append({"train_s": (train.stop - start) / data.sfreq, "val_r_mean": float(np.nanmean(r)),
                       "val_r_per_roi": _per_roi(data.rois, r)})  # fmt: skip
    points.append({"train_s": len(train) / data.sfreq, "val_r_mean": float(np.nanmean(full_val_r)),
                   "val_r_per_roi": _per_roi(data.rois, full_val_r)})  # fmt: skip
    if len(points) < 2:
        return {
            "points": points,
            "gain_per_minute": None,
            "rising": False,
            "fractions": fractions,
            "skipped": skipped,
        }
    a, b = points[-2], points[-1]
    gain = (b["val_r_mean"] - a["val_r_mean"]) / max((b["train_s"] - a["train_s"]) / 60.0, 1e-9)
    logger.info(
        "data curve (validation mean r by seconds of training data): %s; %+.3f per minute of data at the end",
        ", ".join(f"{p['train_s']:.0f} s {p['val_r_mean']:.3f}" for p in points), gain,
    )  # fmt: skip
    rising = all(q["val_r_mean"] > p["val_r_mean"] for p, q in itertools.pairwise(points))
    return {
        "points": points,
        "gain_per_minute": gain,
        "rising": rising,
        "fractions": fractions,
        "skipped": skipped,
    }


def _refit(
    cfg: BeiraConfig, data: PreparedData, out: Path, device: torch.device, first: TrainResult,
    ctx: distributed.DistContext, progress: bool, resume: bool,
) -> tuple[torch.nn.Module, dict[str, Any]]:  # fmt: skip
    """``training.refit``: train a fresh model on the training and validation blocks together, each
    ROI head kept at the epoch the first run chose for it on the validation block (``training.fit``
    closed_form: the front end fitted on them; the caller then fits the read-out on them).

    The same seed, front-end fit and schedule as the first run; the normalisation statistics stay
    those of the training block (the bundle's). Nothing is validated (the validation block is now
    training data); the test block is untouched.
    """
    epochs = distributed.broadcast_object(list(first.best_epochs), ctx)
    split = data.split
    joined = dataclasses.replace(
        split, train=Block("train+val", split.train.start, split.val.stop)
    )  # val stays named for the record; train_model does not read it with head_epochs
    refit_data = dataclasses.replace(data, split=joined)
    model = fresh_model(cfg, [refit_data], device)
    if cfg.gradient_steps:
        logger.info("refit on %s for the per-ROI epochs %s", joined.train.name, epochs)
    else:
        logger.info(
            "refit on %s: the front end fitted again, then the read-out (no gradient step)", joined.train.name
        )
    result = train_model(
        model, refit_data, cfg, device=device, history_path=out / "history_refit.jsonl", progress=progress,
        checkpoint_path=out / "checkpoint_refit.pt", resume=resume, head_epochs=epochs,
    )  # fmt: skip
    return model, {
        "blocks": "train+val",
        "start_s": joined.train.start / split.sfreq,
        "stop_s": joined.train.stop / split.sfreq,
        "epochs_per_roi": _per_roi(data.rois, epochs),
        "n_steps": result.n_steps,
        "seconds": result.seconds,
        "stop_reason": result.stop_reason,
    }


def _interpret(
    out: Path, model: BEIRA, data: PreparedData, cfg: BeiraConfig, device: torch.device, recording: Any,
    metrics: dict,
) -> None:  # fmt: skip
    """Interpret the trained model into ``out/interpretation/`` and ``out/model.patterns.json``."""
    from beira_rt.interpret import patterns_path

    from .interpret import channel_positions, compact_patterns, interpret_model, write_interpretation

    eeg_file = (getattr(recording, "provenance", {}) or {}).get("files", {}).get("eeg") or {}
    positions, source = channel_positions(data.ch_names, eeg_file.get("path"))
    doc = interpret_model(
        model, data, cfg, device=device, positions=positions, positions_source=source,
        test_r=metrics["test"]["r_per_roi"],
    )  # fmt: skip
    doc = {
        "bundle_hash": metrics["bundle_hash"], "subject": metrics["subject"],
        "data_hash": metrics["data"]["data_hash"], "data_hash_matches_bundle": True, **doc,
    }  # fmt: skip
    write_interpretation(doc, out / "interpretation", sheets=False)
    patterns_path(out / "model.beira").write_text(
        json.dumps(jsonable(compact_patterns(doc)), indent=1), encoding="utf-8"
    )


def save_test_predictions(
    path: Path, data: PreparedData, pred: np.ndarray, baseline: np.ndarray | None = None
) -> Path:
    """Write the test block's predictions (de-normalised) beside the metrics, as ``.npz``.

    Keys: ``times`` (s, EEG time of each aligned sample), ``true`` and ``pred`` (n_rois,
    n_test) in the BOLD's units, ``rois``, and ``baseline`` when given.
    """
    test = data.split.test
    scale, shift = data.target_std[:, None], data.target_mean[:, None]
    arrays = {
        "times": np.arange(test.start, test.stop) / data.sfreq,
        "true": data.target_raw[:, test.slice],
        "pred": pred * scale + shift,
        "rois": np.array(data.rois),
    }
    if baseline is not None:
        arrays["baseline"] = baseline * scale + shift
    np.savez(path, **arrays)
    return path


def _figures(
    out: Path, history: list, data: PreparedData, pred: np.ndarray, base_pred: np.ndarray, metrics: dict
) -> None:
    test = data.split.test
    save_test_predictions(out / "test_predictions.npz", data, pred, base_pred[:, test.slice])
    scale, shift = data.target_std[:, None], data.target_mean[:, None]
    times = np.arange(test.start, test.stop) / data.sfreq
    r = list(metrics["test"]["r_per_roi"].values())
    report.plot_loss_curves(history, out / "loss_curves.png")
    report.plot_test_predictions(
        times, data.target_raw[:, test.slice], pred * scale + shift, data.rois, r,
        out / "test_predictions.png", baseline=base_pred[:, test.slice] * scale + shift,
    )  # fmt: skip
    bars = {"BEIRA": r, "linear baseline": list(metrics["baseline"]["r_per_roi"].values())}
    if metrics["ceiling"] is not None:
        bars["ceiling (test block)"] = list(metrics["ceiling"]["test_r_per_roi"].values())
        bars["ceiling (whole recording)"] = list(metrics["ceiling"]["r_per_roi"].values())
    report.plot_r_per_roi(data.rois, bars, out / "r_per_roi.png")
    report.plot_lookahead(
        {"test": metrics["test"]["r_by_lookahead"], "validation": metrics["val"]["r_by_lookahead"]},
        out / "r_by_lookahead.png", chosen=metrics["lookahead"]["chosen_s"],
    )  # fmt: skip
    if metrics.get("data_curve"):
        points = metrics["data_curve"]["points"]
        report.plot_curves(
            {"validation mean r": {f"{p['train_s']:g}": p["val_r_mean"] for p in points}},
            out / "data_curve.png", xlabel="seconds of training data (the last part of the training block)",
            ylabel="mean Pearson r", title="Would more calibration data help?",
        )  # fmt: skip
