"""Accuracy of a training configuration on synthetic subjects: the matrix of issue 14.

Writes (or reuses) synthetic CWL subjects, one per data seed, trains the configuration on each
with both model variants (reference and causal) and, on the first subject, with more training
seeds; prints per run: test r (mean and per ROI), the test-block ceiling and the ratio to it,
the linear baseline, r by look-ahead (live read-out) for both variants, wall time and steps.
Every choice inside a run (checkpoint, look-ahead) is made on the validation block; the test
block is only reported. The last lines check the goals of issue 14.

    .venv/bin/python tools/accuracy_matrix.py --out runs/matrix               # the default config
    .venv/bin/python tools/accuracy_matrix.py --config configs/paper.yaml --out runs/matrix-paper
    .venv/bin/python tools/accuracy_matrix.py --data-seeds 0 --train-seeds 0 --variants reference \\
        --set training.max_minutes=3 --out /tmp/m                             # one quick run

Subjects are written to ``--data-root/seed{N}`` (300 s, subject trio1) when missing. The
generator draws each subject's hidden structure (sources, drives, noise) from its seed:
this project's (``offline/synthetic``), or with ``--generator foreign`` the independent one of
``tools/make_foreign_cwl.py`` (written without looking at the first: data nobody tuned for).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "tools"):  # tools/: the foreign generator
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
from make_foreign_cwl import add_generator_argument, subject_loader  # noqa: E402

from beira_rt.config import load_config, override, parse_assignments  # noqa: E402
from offline.pipeline import read_ceiling, run_training  # noqa: E402
from offline.train import front_end_lr_scale  # noqa: E402


def _fmt(values) -> str:
    return " ".join(f"{v:6.3f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="YAML config (default: the built-in default)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--data-root", default="/tmp/beira_matrix", help="where the subjects are written")
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2], help="one subject per seed")
    parser.add_argument(
        "--train-seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds on the first subject"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="model variants (default: reference and causal; causal only for the read-out back end)",
    )
    parser.add_argument(
        "--seed-variants",
        nargs="+",
        default=None,
        help="variants trained for the extra training seeds (default: --variants)",
    )
    add_generator_argument(parser)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--threads", type=int, default=None, help="training.num_threads")
    parser.add_argument("--out", required=True, help="folder for the runs (metrics.json per run)")
    args = parser.parse_args(argv)

    cfg0 = load_config(args.config)
    updates = parse_assignments(args.set)
    if args.threads is not None:
        updates["training.num_threads"] = args.threads
    cfg0 = override(cfg0, updates, skip_none=False)  # KEY=null sets null
    if args.variants is None:
        args.variants = ["causal"] if cfg0.model.backbone == "readout" else ["reference", "causal"]
    root, out = Path(args.data_root), Path(args.out)
    print(
        f"config: {args.config or 'built-in default'} {updates or ''}; subjects: {args.generator} generator"
    )
    m, t = cfg0.model, cfg0.training
    back = (
        f"read-out {m.readout_seconds} s every {m.readout_step} s"
        f"{' (quadratic)' if m.readout_quadratic else ''}, filters {m.filter_start}"
        + (f", front end at {front_end_lr_scale(cfg0):g} x lr" if cfg0.gradient_steps else "")
        if m.backbone == "readout"
        else f"channels {list(m.channels)}, strides {list(m.strides)}"
    )
    steps = (
        f"batch {t.batch_size}, lr {t.lr}, budget {t.max_minutes} min, max steps {t.max_epochs * t.steps_per_epoch}"
        if cfg0.gradient_steps
        else "no gradient step"
    )
    ridge = f", read-out by ridge ({t.readout_basis} bumps per branch)" if cfg0.readout_ridge else ""
    print(
        f"model: {m.backbone} ({m.variant}), n_times {m.n_times}, n_filters {m.n_filters}, {back}; "
        f"training: fit {cfg0.fit}: {steps}{ridge}{', refit on train+val' if t.refit else ''}"
    )
    runs = [(ds, args.train_seeds[0]) for ds in args.data_seeds]
    runs += [(args.data_seeds[0], ts) for ts in args.train_seeds[1:]]
    rows = []
    load_subject = subject_loader(args.generator)
    for data_seed, train_seed in runs:
        data = root / f"seed{data_seed}"
        cfg = override(cfg0, {"training.seed": train_seed})
        rec = load_subject(data, cfg.data, cfg.preprocessing.sfreq, duration=args.duration, seed=data_seed)
        ceiling = read_ceiling(data, "trio1", tuple(rec.roi_names))
        row: dict = {"data_seed": data_seed, "train_seed": train_seed, "ceiling": ceiling}
        extra_seed = train_seed != args.train_seeds[0]
        variants = (args.seed_variants or args.variants) if extra_seed else args.variants
        row["variants"] = list(variants)
        for variant in variants:
            vcfg = override(cfg, {"model.variant": variant})
            t0 = time.perf_counter()
            metrics = run_training(
                vcfg, rec, out / f"seed{data_seed}_train{train_seed}_{variant}", ceiling=ceiling,
                progress=False, interpret=False,
            )  # fmt: skip
            row[variant] = {
                "r_mean": metrics["test"]["r_mean"],
                "r_per_roi": list(metrics["test"]["r_per_roi"].values()),
                "r_by_lookahead": metrics["test"]["r_by_lookahead"],
                "val_r_mean": metrics["val"]["r_mean"],
                "baseline": metrics["baseline"]["r_mean"],
                "steps": metrics["training"]["n_steps"],
                "refit_steps": (metrics["training"]["refit"] or {}).get("n_steps"),
                "train_s": metrics["timings"]["train_s"] + metrics["timings"].get("refit_s", 0.0),
                "wall_s": time.perf_counter() - t0,
                "stop": metrics["training"]["stop_reason"],
                "ridge_cv_r": (metrics["training"].get("readout_ridge") or {}).get("cv_r_mean"),
                "data_curve": [
                    (p["train_s"], p["val_r_mean"])
                    for p in (metrics.get("data_curve") or {}).get("points", [])
                ],
            }
        rows.append(row)
        _print_row(row, variants, list(rec.roi_names))
        (out / "matrix.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    _summary(rows, args.variants)
    return 0


def _print_row(row: dict, variants: list[str], rois: list[str]) -> None:
    ceil = row["ceiling"]
    c_roi = list(ceil["test_r_per_roi"].values())
    c_mean = ceil["test_r_mean"]
    print(f"\n== subject seed {row['data_seed']}, training seed {row['train_seed']} ==")
    print("ROIs:          " + " ".join(f"{r.split()[0][0]}{r.split()[1][:5]:>5s}" for r in rois))
    print(f"ceiling(test): {_fmt(c_roi)}   mean {c_mean:.3f}")
    for v in variants:
        res = row[v]
        print(f"{v:14s} {_fmt(res['r_per_roi'])}   mean {res['r_mean']:.3f}")
    for v in variants:
        res = row[v]
        las = " ".join(f"{la}s {r:.3f}" for la, r in res["r_by_lookahead"].items())
        refit = f" + {res['refit_steps']} refit" if res.get("refit_steps") is not None else ""
        print(
            f"  {v}: test r {res['r_mean']:.3f} = {res['r_mean'] / c_mean:.2f} x ceiling, "
            f"linear baseline {res['baseline']:.3f}, val r {res['val_r_mean']:.3f}, "
            f"{res['steps']} steps{refit}, train {res['train_s'] / 60:.1f} min (wall {res['wall_s'] / 60:.1f} min, "
            f"stop: {res['stop']})"
            + (
                f", ridge read-out cross-validated r {res['ridge_cv_r']:.3f}"
                if res.get("ridge_cv_r") is not None
                else ""
            )
        )
        print(f"    r by look-ahead: {las}")
        if res.get("data_curve"):
            print(
                "    val r by seconds of training data: "
                + " ".join(f"{t:.0f}s {r:.3f}" for t, r in res["data_curve"])
            )


def _summary(rows: list[dict], variants: list[str]) -> None:
    print("\n== goals (issue 14) ==")
    first_seed = rows[0]["data_seed"]
    subjects = [r for r in rows if r["train_seed"] == rows[0]["train_seed"]]
    ref = "reference" if "reference" in variants else variants[0]
    ratios = [r[ref]["r_mean"] / r["ceiling"]["test_r_mean"] for r in subjects]
    print(
        f"mean ratio to the test ceiling over {len(subjects)} subjects ({ref}): {np.mean(ratios):.3f} (goal >= 0.7)"
    )
    for r in subjects:
        margin = r[ref]["r_mean"] - r[ref]["baseline"]
        print(f"  subject seed {r['data_seed']}: test r - linear baseline = {margin:+.3f} (goal >= +0.1)")
    dead = []
    for r in rows:
        c = list(r["ceiling"]["test_r_per_roi"].values())
        for v in r["variants"]:
            dead += [
                (r["data_seed"], r["train_seed"], v, k)
                for k, (cc, rr) in enumerate(zip(c, r[v]["r_per_roi"], strict=True))
                if cc > 0.6 and not rr > 0.2
            ]
    print(f"dead heads (ceiling > 0.6, test r <= 0.2): {dead if dead else 'none'}")
    curves = [r[ref]["data_curve"] for r in subjects if r[ref].get("data_curve")]
    if curves and len({len(c) for c in curves}) == 1:
        means = np.mean([[v for _, v in c] for c in curves], axis=0)
        secs = np.mean([[t for t, _ in c] for c in curves], axis=0)
        print(
            f"validation r by seconds of training data, mean over {len(curves)} subjects ({ref}): "
            + " ".join(f"{t:.0f}s {m:.3f}" for t, m in zip(secs, means, strict=True))
        )
    same = [r for r in rows if r["data_seed"] == first_seed]
    for v in variants:
        vals = [r[v]["r_mean"] for r in same if v in r]
        print(
            f"training seeds on subject seed {first_seed} ({v}): {_fmt(vals)}, spread {max(vals) - min(vals):.3f} "
            "(goal <= 0.05)"
        )
    if "reference" in variants and "causal" in variants:
        for r in subjects:
            off = r["reference"]["r_mean"]
            la0_ref = max(r["reference"]["r_by_lookahead"]["0"], 0.0)
            la0_causal = r["causal"]["r_by_lookahead"]["0"]
            print(
                f"  subject seed {r['data_seed']}: r at look-ahead 0 / offline reference r: reference "
                f"{la0_ref / off:.2f}, causal {la0_causal / off:.2f} (goal >= 0.9); causal offline r "
                f"{r['causal']['r_mean']:.3f} vs reference {off:.3f}: {r['causal']['r_mean'] - off:+.3f} "
                "(goal >= -0.05)"
            )


if __name__ == "__main__":
    raise SystemExit(main())
