"""Does ``training.refit`` help? A nested check decided on the validation block alone.

For each synthetic subject, the training block is cut once more: its last ``val_seconds`` become an
inner validation block. Then, from the same seed:

A. train on the rest, each ROI head kept at its best inner-validation epoch (what ``beira-train``
   does without ``training.refit``, one block earlier);
B. A, then a fresh model trained on the whole training block for those per-head epochs (what
   ``training.refit`` does with the validation block);
C. the whole training block, every head kept at the last epoch (no choice at all).

A, B and C are scored on the real validation block, which none of them has trained on or chosen
with; the test block is not read. ``training.refit: true`` became the default because B beat A
here (README, "Without a GPU").

    .venv/bin/python tools/refit_check.py --data-root /tmp/beira_matrix --data-seeds 0 1 2 --train-seed 0
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from beira_rt.config import load_config, override, parse_assignments  # noqa: E402
from offline.dataset import PreparedData, prepare_recording  # noqa: E402
from offline.metrics import pearson_r, predict_block  # noqa: E402
from offline.pipeline import fresh_model  # noqa: E402
from offline.ridge import fit_readout  # noqa: E402
from offline.split import Block, Split  # noqa: E402
from offline.synthetic import load_synthetic_subject  # noqa: E402
from offline.train import set_batch_norm_stats, train_model  # noqa: E402


def _train(cfg, data: PreparedData, head_epochs: list[int] | None = None):
    model = fresh_model(cfg, [data], torch.device("cpu"))
    result = train_model(
        model, data, cfg, device=torch.device("cpu"), progress=False, head_epochs=head_epochs
    )
    return model.eval(), result


def _untrained(cfg, data: PreparedData):
    """The model as ``fresh_model`` leaves it, its batch norms' statistics from the training block."""
    model = fresh_model(cfg, [data], torch.device("cpu"))
    set_batch_norm_stats(model, [(data.eeg, data.split.train)])
    return model.eval()


def _score(model, data: PreparedData, cfg, block: Block) -> np.ndarray:
    pred, true = predict_block(model, data, cfg, block, "cpu")
    return pearson_r(pred, true)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="YAML config (default: the built-in default)")
    parser.add_argument(
        "--data-root", default="/tmp/beira_matrix", help="subjects as tools/accuracy_matrix.py"
    )
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--no-last", action="store_true", help="skip C (every head at its last epoch)")
    parser.add_argument(
        "--ridge",
        action="store_true",
        help="also the closed-form read-out (offline/ridge.py) on the whole training block: RA = A's model, "
        "RB = B's model, R0 = the front end as fitted before any training step",
    )
    parser.add_argument(
        "--two-folds",
        action="store_true",
        help="also D: the per-head epochs chosen on two inner validation blocks (the last 60 s of the "
        "training block, and its first 60 s with the model trained on the rest), their r averaged per "
        "epoch, then the refit",
    )
    args = parser.parse_args(argv)
    updates = parse_assignments(args.set)
    cfg = override(load_config(args.config), {"training.fit": "gradient"})
    cfg = override(cfg, updates, skip_none=False)  # KEY=null sets null
    cfg = override(cfg, {"training.seed": args.train_seed, "training.num_threads": args.threads})
    torch.set_num_threads(args.threads)
    print(f"training seed {args.train_seed} {updates or ''}; r on the validation block (mean over the ROIs)")
    gains = []
    for seed in args.data_seeds:
        rec = load_synthetic_subject(
            Path(args.data_root) / f"seed{seed}",
            cfg.data,
            cfg.preprocessing.sfreq,
            duration=args.duration,
            seed=seed,
        )
        data = prepare_recording(rec, cfg)
        sp = data.split
        n_val = len(sp.val)
        inner_val = Block("val", sp.train.stop - n_val, sp.train.stop)
        inner = dataclasses.replace(
            data, split=Split(Block("train", sp.train.start, inner_val.start), inner_val, sp.val, sp.sfreq)
        )
        whole = dataclasses.replace(data, split=Split(sp.train, inner_val, sp.val, sp.sfreq))
        t0 = time.perf_counter()
        model_a, first = _train(cfg, inner)
        r_a = _score(model_a, data, cfg, sp.val)
        model_b, _ = _train(cfg, whole, first.best_epochs)
        r_b = _score(model_b, data, cfg, sp.val)
        r_c = np.full_like(r_b, np.nan)
        if not args.no_last:
            model_c, _ = _train(cfg, whole, [cfg.training.max_epochs] * data.n_rois)
            r_c = _score(model_c, data, cfg, sp.val)
        r_d = np.full_like(r_b, np.nan)
        if args.two_folds:
            first_val = Block("val", sp.train.start, sp.train.start + n_val)
            other = dataclasses.replace(
                data, split=Split(Block("train", first_val.stop, sp.train.stop), first_val, sp.val, sp.sfreq)
            )
            _, second = _train(cfg, other)
            both = [np.asarray([h["val_r_per_roi"] for h in run.history]) for run in (first, second)]
            n_ep = min(len(b) for b in both)
            epochs_d = (np.nanmean([b[:n_ep] for b in both], axis=0).argmax(axis=0) + 1).tolist()
            model_d, _ = _train(cfg, whole, epochs_d)
            r_d = _score(model_d, data, cfg, sp.val)
            print(f"  D epochs {epochs_d}: {r_d.mean():.3f} (D - B {r_d.mean() - r_b.mean():+.3f})")
        extra = {}
        if args.ridge:
            ridge_part = [(data.eeg, data.target, sp.train)]
            for name, m in (("RA", model_a), ("RB", model_b), ("R0", _untrained(cfg, whole))):
                m = copy.deepcopy(m)
                fit = fit_readout(m, ridge_part)
                extra[name] = _score(m, data, cfg, sp.val)
                print(
                    f"  {name}: {extra[name].mean():.3f} (cross-validated on the training block {np.nanmean(fit.cv_r):.3f})"
                )
        gains.append(float(r_b.mean() - r_a.mean()))
        print(
            f"subject seed {seed}: A (chosen, no refit) {r_a.mean():.3f}  B (refit) {r_b.mean():.3f}  "
            f"C (last epoch) {r_c.mean():.3f}  B - A {gains[-1]:+.3f}  epochs {first.best_epochs}  "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        for name, r in (("A", r_a), ("B", r_b), ("C", r_c), ("D", r_d), *extra.items()):
            print(f"  {name} per ROI: " + " ".join(f"{v:6.3f}" for v in r))
    print(
        f"B - A: mean {np.mean(gains):+.3f}, better on {sum(g > 0 for g in gains)} of {len(gains)} subjects"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
