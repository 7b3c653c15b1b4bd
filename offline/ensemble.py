"""Several training runs of one recording into one bundle: each ROI head from the run that did best
on the validation block ("a seed ensemble chosen on validation", per head; a nearly flat head
only when every run's is).

The ROI heads of BEIRA never interact, so a bundle may take head ``h`` from one run and head ``k``
from another (:func:`beira_rt.models.copy_head_`). The choice reads only each run's validation r
per ROI (stored in its bundle); the test block is then scored for the combined model, as
:func:`offline.pipeline.run_training` scores a trained one, and the look-ahead is chosen again on
the validation block.

    .venv/bin/python -m offline.ensemble --bundles runs/s0/model.beira runs/s1/model.beira \\
        runs/s2/model.beira --data DATA --subject trio1 --atlas ... --atlas-labels ... --out runs/best
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beira_rt.bundle import ModelBundle, load_bundle, save_bundle
from beira_rt.inference import resolve_device
from beira_rt.models import copy_head_

from .evaluate import prepare_with_bundle
from .metrics import choose_lookahead, lookahead_r, predict_block
from .pipeline import jsonable, read_ceiling, test_metrics

__all__ = ["combine_heads", "main"]


def _same_model(a: ModelBundle, b: ModelBundle) -> bool:
    keys = ("ch_names", "rois", "sfreq_in")
    return (
        all(getattr(a, k) == getattr(b, k) for k in keys)
        and a.config.model == b.config.model
        and a.config.preprocessing == b.config.preprocessing
        and np.allclose(a.norm_mean, b.norm_mean)
        and np.allclose(a.target_mean, b.target_mean)
        and a.metrics.get("data_hash") == b.metrics.get("data_hash")
    )


def _val_spread(bundle: ModelBundle, data: Any, device: Any) -> np.ndarray:
    """Per ROI: standard deviation of the offline prediction over the validation block / that of the target."""
    pred, true = predict_block(
        bundle.build_model(device=str(device)), data, bundle.config, data.split.val, device
    )
    return pred.std(axis=1) / true.std(axis=1)


@torch.no_grad()
def calibrate_heads_(bundle: ModelBundle, data: Any, device: Any) -> list[float]:
    """Rescale each ROI head's output so that its validation prediction has the least-squares slope 1.

    The output layer (the U-Net's 1x1 convolution, the read-out back end's filters) is linear per head, so ``out' = a out + b`` is exact in its weights; ``a`` and
    ``b`` are the regression of the validation target on the validation prediction, applied only
    when ``a > 0`` (the r of a head, and so every metric but its amplitude, is unchanged). A head
    trained with MSE on a weak signal shrinks towards the mean until it looks flat live; this
    gives it the amplitude its validation fit supports. Returns ``a`` per head (1 when not applied).
    """
    pred, true = predict_block(
        bundle.build_model(device=str(device)), data, bundle.config, data.split.val, device
    )
    layer = (
        "readout" if "readout.weight" in bundle.state_dict else "final_layer"
    )  # the per-head linear output
    weight = bundle.state_dict[f"{layer}.weight"]
    bias = bundle.state_dict[f"{layer}.bias"]
    out = []
    for h in range(pred.shape[0]):
        p = pred[h] - pred[h].mean()
        a = float((p * (true[h] - true[h].mean())).sum() / max((p**2).sum(), 1e-12))
        if not (np.isfinite(a) and a > 0):
            out.append(1.0)
            continue
        b = float(true[h].mean() - a * pred[h].mean())
        weight[h] *= a
        bias[h] = a * bias[h] + b
        out.append(a)
    return out


def combine_heads(
    bundles: list[ModelBundle],
    recording: Any,
    *,
    device: str = "cpu",
    min_spread: float = 0.2,
    calibrate: bool = True,
) -> ModelBundle:
    """One bundle whose ROI head ``h`` comes from the bundle with the best validation r of ROI ``h``.

    A head whose validation prediction is nearly flat (its spread below ``min_spread`` of the
    target's) is taken only when no run has a moving one: a flat head can have a positive r
    from a tiny ripple, and it shows a flat line live.

    Parameters
    ----------
    bundles : list of ModelBundle
        Runs of the same configuration on the same recording (other training seeds).
    recording : offline.loader.Recording
        The recording they were trained on (for the test metrics and the look-ahead choice).
    device : str

    Returns
    -------
    ModelBundle
        With ``metrics`` as a trained bundle's (``test``, ``val``, ``baseline``, ``lookahead``,
        ``data_hash``) plus ``ensemble``: which run each head came from and the runs' validation r.
    """
    if not bundles:
        raise ValueError("combine_heads needs at least one bundle.")
    refit = [k for k, b in enumerate(bundles) if b.metrics.get("refit")]
    if refit:
        raise ValueError(
            f"bundles {refit} were refitted on the validation block (training.refit), so it cannot choose "
            "between them; combine runs trained with training.refit: false."
        )
    first = bundles[0]
    for k, other in enumerate(bundles[1:], start=1):
        if not _same_model(first, other):
            raise ValueError(f"bundle {k} is not a run of the same model and recording as bundle 0.")
    rois = list(first.rois)
    val = np.array([[b.metrics["val"]["r_per_roi"][roi] for roi in rois] for b in bundles])
    val = np.where(np.isfinite(val), val, -np.inf)
    dev = resolve_device(device)
    data0 = prepare_with_bundle(first, recording)
    spread = np.array([_val_spread(b, data0, dev) for b in bundles])
    eligible = np.where(spread >= min_spread, val, -np.inf)
    pick = np.where(np.isfinite(eligible).any(axis=0), eligible.argmax(axis=0), val.argmax(axis=0))
    state = {k: v.clone() for k, v in first.state_dict.items()}
    for h, run in enumerate(pick):
        copy_head_(state, bundles[run].state_dict, h, len(rois))
    combined = copy.copy(first)
    combined.state_dict = state
    combined.metrics = {}
    cfg = first.config
    scale = calibrate_heads_(combined, data0, dev) if calibrate else None
    data = prepare_with_bundle(combined, recording)
    model = combined.build_model(device=str(dev))
    val_live = lookahead_r(
        model, data.eeg, data.target, data.split.val, cfg.training.lookaheads, cfg.live.hop, cfg.model.n_times,
        data.sfreq, device=dev, batch_size=cfg.training.eval_batch_size,
    )  # fmt: skip
    combined.lookahead = choose_lookahead(val_live["r_mean"], cfg.training.lookahead_tolerance)
    test, _ = test_metrics(model, cfg, data, dev, cfg.live.hop)
    val_r = {roi: float(val[pick[h], h]) for h, roi in enumerate(rois)}
    combined.metrics = jsonable(
        {
            "test_r_mean": test["r_mean"],
            "val_r_mean": float(np.mean(list(val_r.values()))),
            "baseline_test_r_mean": first.metrics["baseline"]["r_mean"],
            "test": test,
            "val": {"r_per_roi": val_r, "r_mean": float(np.mean(list(val_r.values()))),
                    "r_by_lookahead": val_live["r_mean"]},
            "baseline": first.metrics["baseline"],
            "lookahead": {
                "chosen_s": combined.lookahead,
                "rule": f"smallest look-ahead within {cfg.training.lookahead_tolerance:g} of the best validation mean r",
            },
            "data_hash": first.metrics.get("data_hash", ""),
            "ensemble": {
                "rule": "each ROI head from the run with the best validation r of that ROI, among runs whose "
                f"validation prediction of it has at least {min_spread:g} of the target's spread (all runs when none has)",
                "val_spread_per_run": spread.tolist(),
                "calibration": (
                    "each head's output rescaled by the least-squares slope of the validation target on its "
                    "validation prediction (when positive)"
                    if scale is not None
                    else None
                ),
                "calibration_scale": scale,
                "head_from_run": {roi: int(pick[h]) for h, roi in enumerate(rois)},
                "val_r_per_run": val.tolist(),
                "seeds": [b.config.training.seed for b in bundles],
            },
        }
    )  # fmt: skip
    return combined


def main(argv: list[str] | None = None) -> int:
    """Command line: combine bundles of one recording, write the bundle and its metrics."""
    from offline.loader import load_cwl_subject

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", nargs="+", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--subject", default="trio1")
    parser.add_argument("--atlas")
    parser.add_argument("--atlas-labels")
    parser.add_argument("--out", required=True, help="output folder: model.beira and metrics.json")
    args = parser.parse_args(argv)
    bundles = [load_bundle(p) for p in args.bundles]
    rec = load_cwl_subject(
        args.data, args.subject, bundles[0].config.data, args.atlas, args.atlas_labels, bundles[0].sfreq
    )
    combined = combine_heads(bundles, rec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_bundle(combined, out / "model.beira")
    metrics = dict(combined.metrics)
    metrics["ceiling"] = read_ceiling(args.data, args.subject, tuple(combined.rois))
    (out / "metrics.json").write_text(json.dumps(jsonable(metrics), indent=2), encoding="utf-8")
    test = combined.metrics["test"]
    print(f"heads from runs: {combined.metrics['ensemble']['head_from_run']}")
    print(f"test r {test['r_mean']:.3f}: " + " ".join(f"{v:.3f}" for v in test["r_per_roi"].values()))
    print("r by look-ahead: " + " ".join(f"{k}s {v:.3f}" for k, v in test["r_by_lookahead"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
