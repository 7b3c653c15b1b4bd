"""Check what trained bundles learned against the known sources of synthetic subjects.

For every (bundle, synthetic data folder) pair: interpret the bundle on its subject
(``offline.interpret``: Haufe pattern per branch, spectral pattern, importance on the
training + validation blocks: the ROI's r with only that branch varying) and, for every ROI whose **test** r (stored in the bundle) is >= --min-r,
compare the most important branch with the source that drives the ROI
(``offline.synthetic.load_truth``):

- pattern: |Pearson r| across channels between the branch's spatial pattern and the source's
  scalp pattern (the Pearson r removes the mean over channels, so the reference does not
  matter), and |peak_hz - source freq| (peak of the spectral pattern |B(f)| S_u(f));
- raw weights, beside: |r| between the unmixing weights and the pattern, and the peak of the
  band-pass response |B(f)| alone.

A ROI passes when |r| >= --min-pattern-r and the peak lies within --max-hz of the source's
frequency. The test block only selects which ROIs are checked (as the issue defines the check);
it chooses nothing in the model or the interpretation.

Example::

    python tools/make_synthetic_cwl.py --out /tmp/s1 --subjects trio1 --seed 1
    beira-train --data /tmp/s1 --subject trio1 --out runs/s1 --atlas ... --atlas-labels ...
    python tools/check_interpretation.py --case runs/s1/model.beira /tmp/s1 [--case ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from beira_rt._logging import set_log_level  # noqa: E402


def check_case(bundle_path: str, data_dir: str, subject: str, args: argparse.Namespace) -> list[dict]:
    """Rows of the table for one bundle on one synthetic subject."""
    import torch

    from beira_rt.bundle import load_bundle
    from offline.interpret import interpret_bundle, write_interpretation
    from offline.loader import load_cwl_subject
    from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE, load_truth

    torch.set_num_threads(args.threads)
    bundle = load_bundle(bundle_path)
    atlas = Path(data_dir) / "atlas"
    rec = load_cwl_subject(
        data_dir, subject, bundle.config.data, atlas / ATLAS_FILE, atlas / ATLAS_LABELS_FILE,
        bundle.config.preprocessing.sfreq,
    )  # fmt: skip
    doc = interpret_bundle(bundle, rec, device="cpu")
    if args.out:
        write_interpretation(doc, Path(args.out) / Path(bundle_path).parent.name, sheets=False)
    if args.rank_by == "drop_r":  # the other importance measure: the drop in r when silenced alone
        for entry in doc["rois"].values():
            drops = [
                -np.inf if b["drop_r"] is None or np.isnan(b["drop_r"]) else b["drop_r"]
                for b in entry["branches"]
            ]
            entry["ranking"] = [int(k) for k in np.argsort(-np.asarray(drops), kind="stable")]
    truth = load_truth(data_dir, subject)
    test_r = (bundle.metrics.get("test") or {}).get("r_per_roi") or {}
    rows = []
    for roi, entry in doc["rois"].items():
        r_test = test_r.get(roi)
        if r_test is None or r_test < args.min_r:
            continue
        best = entry["branches"][entry["ranking"][0]]
        label = f"{Path(data_dir).name}/{Path(bundle_path).parent.name}"
        row = {"case": str(bundle_path), "label": label, "subject": subject, "roi": roi, "test_r": r_test,
               "branch": best["branch"], "importance": best["importance"]}  # fmt: skip
        for kind, vec_key, peak_key in (
            ("pattern", "pattern", args.frequency),
            ("weights", "weights", "band_peak_hz"),
        ):
            ok, r, df, src = _match(
                best, vec_key, peak_key, truth.sources_of(roi), truth, doc["ch_names"], args
            )
            row.update(
                {f"{kind}_r": r, f"{kind}_peak_hz": best[peak_key], f"{kind}_df_hz": df, f"{kind}_pass": ok}
            )
            row["source"], row["source_hz"] = src.name, src.freq
            # diagnosis: which source the top branch shows best (driving the ROI or not), and
            # whether any of the three most important branches passes
            r_any, _, src_any = max(
                (
                    _match(best, vec_key, peak_key, [s], truth, doc["ch_names"], args)[1:]
                    for s in truth.sources
                ),
                key=lambda c: c[0],
            )
            row[f"{kind}_closest_source"], row[f"{kind}_closest_r"] = src_any.name, r_any
            top3 = [entry["branches"][k] for k in entry["ranking"][:3]]
            row[f"{kind}_top3_pass"] = any(
                _match(b, vec_key, peak_key, truth.sources_of(roi), truth, doc["ch_names"], args)[0]
                for b in top3
            )
        rows.append(row)
    return rows


def _match(
    branch: dict, vec_key: str, peak_key: str, sources: list, truth, ch_names: list, args: argparse.Namespace
):
    """(passes, |r|, |peak - source Hz|, source) for the source among ``sources`` that matches the branch best."""
    vec = np.asarray(branch[vec_key])
    cands = []
    for src in sources:
        r = abs(float(np.corrcoef(vec, truth.pattern_on(src, ch_names))[0, 1]))
        cands.append((r, abs(branch[peak_key] - src.freq), src))
    r, df, src = max(cands, key=lambda c: (c[0], -c[1]))
    return bool(r >= args.min_pattern_r and df <= args.max_hz), r, df, src


def print_table(rows: list[dict], args: argparse.Namespace) -> dict:
    """Print the table and the shares passing; return the summary."""
    head = (
        f"{'case':16s} {'ROI':16s} {'test r':>6s} {'br':>3s} {'r alone':>7s} {'source':>15s} {'Hz':>4s} | "
        f"{'pat |r|':>7s} {'peak':>5s} {'df':>4s} {'ok':>3s} {'top3':>4s} {'shows best':>20s} | "
        f"{'w |r|':>5s} {'|B|pk':>5s} {'df':>4s} {'ok':>3s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        shows = f"{r['pattern_closest_source'][:14]} {r['pattern_closest_r']:.2f}"
        print(
            f"{r['label'][:16]:16s} {r['roi']:16s} {r['test_r']:6.3f} {r['branch']:3d} {r['importance']:7.3f} "
            f"{r['source'][:15]:>15s} {r['source_hz']:4.0f} | {r['pattern_r']:7.3f} {r['pattern_peak_hz']:5.1f} "
            f"{r['pattern_df_hz']:4.1f} {_yes(r['pattern_pass']):>3s} {_yes(r['pattern_top3_pass']):>4s} "
            f"{shows:>20s} | {r['weights_r']:5.2f} {r['weights_peak_hz']:5.1f} {r['weights_df_hz']:4.1f} "
            f"{_yes(r['weights_pass']):>3s}"
        )
    n = len(rows)
    summary = {"n_rois": n, "n_cases": len({r["case"] for r in rows})}
    for kind in ("pattern", "weights"):
        k = sum(r[f"{kind}_pass"] for r in rows)
        summary[f"{kind}_pass"] = k
        summary[f"{kind}_share"] = k / n if n else float("nan")
        summary[f"{kind}_median_r"] = float(np.median([r[f"{kind}_r"] for r in rows])) if n else float("nan")
        summary[f"{kind}_median_df_hz"] = (
            float(np.median([r[f"{kind}_df_hz"] for r in rows])) if n else float("nan")
        )
        summary[f"{kind}_r_ok"] = sum(r[f"{kind}_r"] >= args.min_pattern_r for r in rows)
        summary[f"{kind}_hz_ok"] = sum(r[f"{kind}_df_hz"] <= args.max_hz for r in rows)
        summary[f"{kind}_top3_pass"] = sum(r[f"{kind}_top3_pass"] for r in rows)
        summary[f"{kind}_closest_is_driver"] = sum(r[f"{kind}_closest_source"] == r["source"] for r in rows)
    print(
        f"\nROIs with test r >= {args.min_r:g}: {n} in {summary['n_cases']} case(s). Pass (|r| >= "
        f"{args.min_pattern_r:g} and peak within {args.max_hz:g} Hz):\n"
        f"  patterns (Haufe per branch, spectral pattern {args.frequency}): {summary['pattern_pass']}/{n} "
        f"= {100 * summary['pattern_share']:.0f} % (median |r| {summary['pattern_median_r']:.3f}, "
        f"median df {summary['pattern_median_df_hz']:.2f} Hz)\n"
        f"  raw weights (unmixing weights, band-pass peak):     {summary['weights_pass']}/{n} "
        f"= {100 * summary['weights_share']:.0f} % (median |r| {summary['weights_median_r']:.3f}, "
        f"median df {summary['weights_median_df_hz']:.2f} Hz)\n"
        f"  patterns: |r| ok in {summary['pattern_r_ok']}/{n}, peak ok in {summary['pattern_hz_ok']}/{n}; one of the "
        f"top three branches passes in {summary['pattern_top3_pass']}/{n} (raw weights: {summary['weights_top3_pass']}/{n})\n"
        f"  the top branch's pattern is closest (of all sources) to the ROI's driving source in "
        f"{summary['pattern_closest_is_driver']}/{n} (raw weights: {summary['weights_closest_is_driver']}/{n}; "
        "not the goal's criterion)\n"
        f"  goal: patterns pass in >= 75 % of the ROIs: {'met' if summary['pattern_share'] >= 0.75 else 'NOT met'}"
    )
    return summary


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_interpretation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs=2, action="append", required=True, metavar=("BUNDLE", "DATA_DIR"),
                        help="a bundle and the synthetic data folder of its subject (repeatable)")  # fmt: skip
    parser.add_argument("--subject", default="trio1", help="subject id in every data folder (default trio1)")
    parser.add_argument("--min-r", type=float, default=0.4, help="ROIs with test r >= this are checked")
    parser.add_argument("--min-pattern-r", type=float, default=0.9, help="|r| needed to match a source")
    parser.add_argument(
        "--max-hz", type=float, default=1.0, help="peak must lie within this of the source's Hz"
    )
    parser.add_argument(
        "--rank-by",
        choices=("importance", "drop_r"),
        default="importance",
        help="which branch is the top one: the interpretation's ranking (r with only the branch varying, "
        "default) or the drop in r when the branch alone is silenced",
    )
    parser.add_argument(
        "--frequency", choices=("peak_hz", "centre_hz"), default="peak_hz",
        help="the branch's frequency compared with the source's: the spectral pattern's peak (default, the "
        "issue's criterion) or its centre of gravity over the main lobe",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", metavar="DIR", help="also write each interpretation (JSON, overview) here")
    parser.add_argument("--json", metavar="FILE", help="write the rows and the summary as JSON")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="count", default=1)
    args = parser.parse_args(argv)
    set_log_level(args.verbose, args.quiet)
    rows = []
    for bundle_path, data_dir in args.case:
        rows += check_case(bundle_path, data_dir, args.subject, args)
    summary = print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
