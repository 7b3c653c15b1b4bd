"""Re-evaluate a saved bundle on a recording (``beira-train evaluate``).

Nothing is refitted: the bundle's preprocessing, EEG normalisation, target
statistics, window, variant and split rules are applied to the recording.
On the recording the bundle was trained on this reproduces the test metrics
of the training run exactly; on another recording the test block is its last
``training.test_seconds`` and ``all`` covers every aligned sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.bundle import ModelBundle
from beira_rt.inference import resolve_device

from . import report
from .dataset import PreparedData, prepare_data
from .metrics import pearson_r, predict_live, predict_span
from .pipeline import config_hash, environment, jsonable, save_test_predictions, test_metrics

__all__ = ["bundle_on_recording", "evaluate_bundle", "prepare_with_bundle"]


def _pick_channels(eeg: np.ndarray, names: tuple[str, ...], wanted: tuple[str, ...]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError(
            f"the recording lacks the bundle's EEG channels {missing}; it has {list(names)}. "
            "Use a recording with the same montage."
        )
    return eeg[[index[n] for n in wanted]]


def prepare_with_bundle(bundle: ModelBundle, recording: Any) -> PreparedData:
    """Preprocess, align, split and normalise a recording with a bundle's statistics.

    Parameters
    ----------
    bundle : ModelBundle
    recording : offline.loader.Recording

    Returns
    -------
    PreparedData
        ``normalizer`` and target statistics are the bundle's.
    """
    cfg = bundle.config
    rois = tuple(recording.roi_names)
    if rois != tuple(bundle.rois):
        raise ValueError(f"the recording's ROIs {list(rois)} differ from the bundle's {list(bundle.rois)}.")
    if recording.sfreq != bundle.sfreq_in:
        logger.warning(
            "the recording is sampled at %g Hz, the bundle was trained at %g Hz; the preprocessing resamples both",
            recording.sfreq, bundle.sfreq_in,
        )  # fmt: skip
    eeg = _pick_channels(recording.eeg, tuple(recording.ch_names), tuple(bundle.ch_names))
    return prepare_data(
        eeg, recording.sfreq, recording.bold, cfg, bundle.ch_names, rois,
        normalizer=bundle.normalizer, target_stats=(bundle.target_mean, bundle.target_std),
    )  # fmt: skip


def bundle_on_recording(
    bundle: ModelBundle, recording: Any, device: str = "auto"
) -> tuple[torch.device, PreparedData, torch.nn.Module]:
    """The device, the recording prepared with the bundle's statistics and the bundle's model on
    that device: what every tool that runs a bundle over a recording starts from."""
    dev = resolve_device(device)
    return dev, prepare_with_bundle(bundle, recording), bundle.build_model(device=str(dev))


def evaluate_bundle(
    bundle: ModelBundle,
    recording: Any,
    *,
    device: str = "auto",
    out_dir: str | Path | None = None,
    ceiling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metrics of a bundle on a recording (test block and whole recording).

    Parameters
    ----------
    bundle : ModelBundle
    recording : offline.loader.Recording
    device : str
        ``'auto'``, ``'cpu'`` or ``'cuda'``.
    out_dir : str, Path or None
        When given, ``evaluation.json``, ``test_predictions.npz`` and ``test_predictions.png``
        are written there.
    ceiling : dict or None
        From :func:`offline.pipeline.read_ceiling`.

    Returns
    -------
    dict
        ``test`` (as in ``metrics.json``), ``all`` (offline r over every aligned sample with a
        target), ``live`` (r on the test block of the live read-out at the bundle's look-ahead
        for every sample, :func:`offline.metrics.predict_live`: a causal bundle streamed once,
        as the engine runs it), ``ceiling``, ``bundle`` (hash, trained metrics), ``data_hash``.
    """
    dev, data, model = bundle_on_recording(bundle, recording, device)
    cfg = bundle.config
    test, pred = test_metrics(model, cfg, data, dev, cfg.live.hop)
    start, stop = data.split.train.start, data.split.n_samples
    whole = predict_span(model, data.eeg, start, stop, cfg.model.n_times, cfg.model.variant, device=dev,
                         batch_size=cfg.training.eval_batch_size)  # fmt: skip
    r_all = pearson_r(whole, data.target[:, start:stop])
    tb = data.split.test
    la = round(bundle.lookahead * cfg.preprocessing.sfreq)
    idx, live, mode = predict_live(model, data.eeg, tb.start, tb.stop, la, device=dev,
                                   batch_size=cfg.training.eval_batch_size)  # fmt: skip
    r_live = pearson_r(live, data.target[:, idx])
    metrics = {
        "subject": getattr(recording, "subject", ""),
        "variant": cfg.model.variant,
        "test": test,
        "all": {
            "r_per_roi": dict(zip(data.rois, r_all.tolist(), strict=True)),
            "r_mean": float(np.nanmean(r_all)),
        },
        "live": {
            "lookahead": bundle.lookahead,
            "n_samples": int(idx.size),
            "every_samples": int(idx[1] - idx[0]) if idx.size > 1 else 1,
            "readout": mode,
            "r_per_roi": dict(zip(data.rois, r_live.tolist(), strict=True)),
            "r_mean": float(np.nanmean(r_live)),
        },
        "ceiling": ceiling,
        "bundle": {
            "content_hash": bundle.content_hash,
            "lookahead": bundle.lookahead,
            "trained_metrics": bundle.metrics,
        },
        "split": data.split.to_dict(),
        "data_hash": getattr(recording, "data_hash", ""),
        "config_hash": config_hash(cfg),
        "environment": environment(dev),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(jsonable(metrics), indent=2), encoding="utf-8")
        save_test_predictions(out / "test_predictions.npz", data, pred)
        report.plot_test_predictions(
            np.arange(tb.start, tb.stop) / data.sfreq, data.target_raw[:, tb.slice],
            pred * data.target_std[:, None] + data.target_mean[:, None], data.rois,
            list(test["r_per_roi"].values()), out / "test_predictions.png",
        )  # fmt: skip
    return jsonable(metrics)
