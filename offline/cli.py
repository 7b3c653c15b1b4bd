"""``beira-train``: train BEIRA on a recording, or re-evaluate a bundle.

Train (the default command)::

    beira-train --data DIR --subject trio1 --out runs/trio1 [--config YAML]
                [--subjects trio1,trio2,...|all]  (one model per subject + summary.csv/png)
                [--group [--finetune-minutes 1,2,4] [--no-loso]]  (+ a group model, OUT/group/)
                [--cache-dir DIR | --no-cache] [--resume]
    torchrun --nproc-per-node N -m offline.cli ...   (data-parallel training, offline.distributed)
                [--atlas LABELS.nii --atlas-labels LABELS.tsv] [--variant reference|causal]
                [--device auto|cpu|cuda] [--fit closed_form|gradient|...] [--max-minutes M] [--seed N] [--no-refit] [-v/-q]

Re-evaluate a bundle on a recording::

    beira-train evaluate BUNDLE --data DIR --subject S [--out DIR]

Interpret a bundle (spatial and spectral patterns and importance of every branch)::

    beira-train interpret BUNDLE --data DIR --subject S --out DIR [--html] [--no-figures]

Write the delay-aligned ROI truth of a CWL subject for ``beira-replay --truth``::

    beira-train truth SUBJECT_DIR --out truth.tsv [--config YAML] [--atlas ... --atlas-labels ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from beira_rt._logging import logger
from beira_rt.cli._common import EXIT_FAILURE, EXIT_USAGE, add_common_args, config_from_args, run_main
from beira_rt.cli.options import (
    VERBOSITY,
    Opt,
    add_options,
    device,
    new_parser,
    num_threads,
    opt,
    out,
    switch,
)
from beira_rt.config import ConfigError

__all__ = ["build_evaluate_parser", "build_interpret_parser", "build_parser", "build_truth_parser", "main"]

EPILOG = (
    "Re-evaluate a saved bundle with: beira-train evaluate BUNDLE --data DIR --subject S [--out DIR] "
    "(see beira-train evaluate --help). Interpret one with: beira-train interpret BUNDLE --data DIR "
    "--subject S --out DIR (see beira-train interpret --help). Write a CWL subject's ROI truth for the "
    "replay with: beira-train truth SUBJECT_DIR --out truth.tsv."
)


_ATLAS_LABELS = opt("--atlas-labels", metavar="TSV", help="labels table of --atlas (index and name)")
#: The recording to read: a CWL subject (--data, --subject, optionally an atlas), or a generic EEG file.
_DATA_OPTIONS = (
    opt("--data", metavar="DIR", help="folder holding the subject folders (CWL layout)"),
    opt("--subject", metavar="S", help="subject id, e.g. trio1"),
    opt("--atlas", metavar="NII", help="3D labels image (default: Harvard-Oxford via nilearn, online)"),
    _ATLAS_LABELS,
    opt("--eeg", metavar="FILE", help="generic path: any MNE-readable EEG file (instead of --data)"),
    opt("--roi-tsv", metavar="TSV", help="generic path: ROI series, one row per volume marker"),
    opt(
        "--marker", metavar="NAME", help="generic path: volume marker annotation (default data.volume_marker)"
    ),
)
_BUNDLE = opt("bundle", metavar="BUNDLE", help="model bundle (model.beira)")


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    add_options(
        parser.add_argument_group("recording (a CWL subject, or a generic EEG file + ROI table)"),
        _DATA_OPTIONS,
    )


def build_parser() -> argparse.ArgumentParser:
    """The training command's parser."""
    parser = new_parser(
        "beira-train",
        "Train BEIRA on a simultaneous EEG-fMRI recording (CWL layout: EEGLAB .set + NIfTI + atlas) with a "
        "chronological train/validation/test split, and write a model bundle, metrics and figures.",
        EPILOG,
    )
    _add_data_args(parser)
    add_options(parser, (
        out("output folder for the bundle and the report (with --subjects: one folder per subject "
            "and summary.csv / summary.png)"),
        opt("--subjects", metavar="A,B,...|all",
            help="train one model per subject of --data (comma-separated ids, or all = every folder with "
                 "CWL_Data); missing or broken subjects are reported and skipped"),
        opt("--variant", choices=("reference", "causal"), help="model variant (overrides model.variant)"),
        device("torch device (overrides training.device)"),
        opt("--fit", choices=("auto", "closed_form", "gradient_ridge", "gradient"),
            help="how the model is fitted (training.fit): closed_form = no gradient step, SPoC front end and ridge "
                 "read-out (auto for the read-out back end); gradient = gradient steps (auto for the U-Net); "
                 "gradient_ridge = gradient steps, then the ridge read-out"),
        opt("--max-minutes", type=float, metavar="M", help="training time budget (training.max_minutes)"),
        opt("--seed", type=int, metavar="N", help="random seed (training.seed)"),
        switch("--no-refit", "keep the model fitted on the training block (the one whose validation r is reported), "
                             "without the refit on training + validation blocks (training.refit: false)"),
        num_threads("torch CPU threads (training.num_threads)"),
        switch("--no-interpret",
               "skip the interpretation of the trained model (OUT/interpretation/, model.patterns.json)"),
        opt("--cache-dir", metavar="DIR",
            help="preprocessing cache: each recording is loaded and preprocessed once, then memory-mapped "
                 "(keyed by the input files' sha256 and the data/preprocessing config; default OUT/cache)"),
        switch("--no-cache", "load and preprocess without the cache"),
        switch("--group", "with --subjects: also a group model of all trained subjects (per-subject "
                          "normalisation), scored within-subject, leave-one-subject-out and fine-tuned (OUT/group/)"),
        opt("--finetune-minutes", default="1,2,4", metavar="N,N,...",
            help="with --group: minutes of a held-out subject to fine-tune on (default 1,2,4; empty: none)"),
        switch("--no-loso", "with --group: skip leave-one-subject-out and fine-tuning"),
        switch("--resume", "continue from OUT/checkpoint.pt (written after every epoch) when it exists, "
                           "e.g. after a crash; the run ends as an uninterrupted one would"),
    ))  # fmt: skip
    add_common_args(parser)
    return parser


def _bundle_parser(
    prog: str, description: str, out_help: str, threads_help: str, *extra: Opt
) -> argparse.ArgumentParser:
    """A subcommand on a bundle and a recording (``evaluate``, ``interpret``): the bundle's config, no --config."""
    parser = new_parser(prog, description)
    add_options(parser, (_BUNDLE,))
    _add_data_args(parser)
    add_options(
        parser, (out(out_help), device("torch device", "auto"), num_threads(threads_help), *extra, *VERBOSITY)
    )
    return parser


def build_evaluate_parser() -> argparse.ArgumentParser:
    """The ``evaluate`` subcommand's parser."""
    return _bundle_parser(
        "beira-train evaluate",
        "Re-evaluate a model bundle on a recording: the bundle's own preprocessing, normalisation and "
        "split rules; prints and writes the test-block and whole-recording metrics.",
        "folder for evaluation.json and test_predictions.png",
        "torch CPU threads (default: the bundle's training.num_threads)",
    )


def build_truth_parser() -> argparse.ArgumentParser:
    """The ``truth`` subcommand's parser."""
    parser = new_parser(
        "beira-train truth",
        "Write the ROI truth of a CWL subject folder as the replay publishes it: the trainer's target "
        "(model-rate BOLD shifted by model.bold_delay) with a 'time' column of EEG seconds. Replay it "
        "with: beira-replay SUBJECT.set --truth truth.tsv",
    )
    add_options(parser, (
        opt("subject_dir", metavar="SUBJECT_DIR", help="the subject folder, e.g. data/trio1"),
        out("the file to write", metavar="TSV", required=True),
        opt("--atlas", metavar="NII", help="3D labels image (default: Harvard-Oxford via nilearn)"),
        _ATLAS_LABELS,
    ))  # fmt: skip
    add_common_args(parser)
    return parser


def build_interpret_parser() -> argparse.ArgumentParser:
    """The ``interpret`` subcommand's parser."""
    return _bundle_parser(
        "beira-train interpret",
        "Interpret a model bundle on a recording: for every ROI head and every branch of its "
        "interpretable block, the spatial pattern (Haufe, per branch) beside the raw weights, the "
        "band-pass response and the spectral pattern with its peak, the envelope filter, and the "
        "branch's importance (r over training + validation with only this branch varying; the drop in r when it is "
        "silenced beside). Writes interpretation.json, "
        "patterns.json (for beira-rt dashboard --patterns), topomaps, spectra and one sheet per ROI.",
        "output folder (created)",
        "torch CPU threads",
        switch("--no-figures", "only the JSON files"),
        switch("--html", "also report.html (an mne.Report of the figures)"),
    )


class UsageError(ValueError):
    """A missing or contradictory command-line argument."""


def _cache_dir(args: argparse.Namespace) -> Path | None:
    """``--cache-dir``, else ``OUT/cache``; None with ``--no-cache``."""
    if getattr(args, "no_cache", False):
        return None
    if getattr(args, "cache_dir", None):
        return Path(args.cache_dir)
    return Path(args.out) / "cache" if getattr(args, "out", None) else None


def _load_recording(
    args: argparse.Namespace, cfg: Any, subject: str | None = None, cache_dir: Path | None = None
) -> tuple[Any, dict | None, float]:
    """The recording of ``args`` (``subject`` overrides ``--subject``), through the cache when given one."""
    from offline.cache import cached_recording, cwl_inputs
    from offline.loader import load_cwl_subject, load_generic
    from offline.pipeline import read_ceiling

    t = time.perf_counter()
    subject = subject or args.subject
    if args.eeg or args.roi_tsv:
        if not (args.eeg and args.roi_tsv) or args.data:
            raise UsageError("the generic path needs both --eeg and --roi-tsv, and no --data.")

        def load() -> Any:
            return load_generic(args.eeg, args.roi_tsv, args.marker, cfg.data, cfg.preprocessing.sfreq)

        if cache_dir is None:
            return load(), None, time.perf_counter() - t
        inputs = {"eeg": args.eeg, "roi_tsv": args.roi_tsv, "marker": str(args.marker)}
        rec = cached_recording(inputs, load, cfg, Path(args.eeg).stem, cache_dir)
        return rec, None, time.perf_counter() - t
    if not args.data or not subject:
        raise UsageError("give --data DIR and --subject S (or --eeg FILE and --roi-tsv TSV).")
    data_dir = Path(args.data)
    if not data_dir.is_dir():
        raise UsageError(
            f"--data {data_dir} is not a folder; give the folder that holds the subject folders."
        )
    if not (data_dir / subject).is_dir():
        found = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
        raise UsageError(
            f"subject folder {data_dir / subject} does not exist; folders in {data_dir}: {found}."
        )
    if bool(args.atlas) != bool(args.atlas_labels):
        raise UsageError("give --atlas and --atlas-labels together (a labels image and its table).")

    def load_cwl() -> Any:
        return load_cwl_subject(
            data_dir, subject, cfg.data, args.atlas, args.atlas_labels, cfg.preprocessing.sfreq
        )

    ceiling = read_ceiling(data_dir, subject, tuple(cfg.data.rois))
    if cache_dir is None:
        return load_cwl(), ceiling, time.perf_counter() - t
    inputs = cwl_inputs(data_dir, subject, args.atlas, args.atlas_labels)
    rec = cached_recording(inputs, load_cwl, cfg, subject, cache_dir)
    return rec, ceiling, time.perf_counter() - t


def _print_summary(metrics: dict[str, Any], head: str) -> None:
    test = metrics["test"]
    rois = list(test["r_per_roi"])
    base = metrics.get("baseline") or {}
    ceil = metrics.get("ceiling") or {}
    print(head)
    print(f"{'ROI':18s} {'BEIRA':>7s} {'baseline':>9s} {'ceiling (test block)':>21s}")
    for roi in rois:
        b = (base.get("r_per_roi") or {}).get(roi)
        c = (ceil.get("test_r_per_roi") or {}).get(roi)
        r = test["r_per_roi"][roi]
        print(f"{roi:18s} {_fmt(r):>7s} {_fmt(b):>9s} {_fmt(c):>21s}")
    print(
        f"{'mean':18s} {_fmt(test['r_mean']):>7s} {_fmt(base.get('r_mean')):>9s} {_fmt(ceil.get('test_r_mean')):>21s}"
    )
    las = test.get("r_by_lookahead", {})
    print(
        "live read-out, mean test r by look-ahead: "
        + ", ".join(f"{la} s: {_fmt(r)}" for la, r in las.items())
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _train_subject(
    args: argparse.Namespace, cfg: Any, out: Path, subject: str | None = None
) -> dict[str, Any]:
    """Load (through the cache) and train one recording into ``out``; print its table."""
    from offline.pipeline import run_training

    rec, ceiling, load_s = _load_recording(args, cfg, subject, _cache_dir(args))
    metrics = run_training(
        cfg, rec, out, ceiling=ceiling, progress=args.quiet == 0, load_seconds=load_s,
        interpret=not args.no_interpret, resume=args.resume,
    )  # fmt: skip
    if not metrics:  # a distributed run's other ranks: rank 0 reports
        return metrics
    _print_summary(metrics, f"{metrics['subject']} ({metrics['variant']}): test block, Pearson r")
    curve = metrics.get("data_curve")
    if curve:
        steps = ", ".join(f"{p['train_s']:.0f} s {_fmt(p['val_r_mean'])}" for p in curve["points"])
        verdict = (
            "still rising: a longer calibration recording would likely help"
            if curve["rising"]
            else "not rising throughout"
        )
        print(f"validation mean r by seconds of training data: {steps} ({verdict})")
    print(f"bundle look-ahead {metrics['lookahead']['chosen_s']:g} s; wrote {out / 'model.beira'}, "
          f"metrics.json, figures; total {metrics['timings']['total_s']:.0f} s")  # fmt: skip
    return metrics


def _train(args: argparse.Namespace) -> int:
    if not args.out:
        raise UsageError("give --out DIR, the folder for the bundle and the report.")
    cfg = config_from_args(args, {
        "model.variant": args.variant, "training.device": args.device, "training.max_minutes": args.max_minutes,
        "training.seed": args.seed, "training.num_threads": args.num_threads,
        "training.refit": False if args.no_refit else None, "training.fit": args.fit,
    })  # fmt: skip
    from offline.distributed import process_group

    with process_group(cfg.training.device) as ctx:  # a process group when started by torchrun
        if args.subjects:
            return _train_many(args, cfg, ctx.is_main)
        _train_subject(args, cfg, Path(args.out))
        return 0


def _train_many(args: argparse.Namespace, cfg: Any, report: bool = True) -> int:
    """``--subjects a,b,c|all``: one model per subject in ``OUT/{subject}``, then ``OUT/summary.csv/.png``."""
    from beira_rt.bundle import BundleError
    from offline.batch import find_subjects, run_subjects
    from offline.loader import DataError

    if args.subject or args.eeg or args.roi_tsv or not args.data:
        raise UsageError(
            "--subjects takes the subjects of --data DIR; give it without --subject, --eeg, --roi-tsv."
        )
    if not Path(args.data).is_dir():
        raise UsageError(
            f"--data {args.data} is not a folder; give the folder that holds the subject folders."
        )
    if bool(args.atlas) != bool(args.atlas_labels):
        raise UsageError("give --atlas and --atlas-labels together (a labels image and its table).")
    if args.subjects.strip() == "all":
        subjects = find_subjects(args.data)
    else:
        subjects = list(dict.fromkeys(s.strip() for s in args.subjects.split(",") if s.strip()))
    if not subjects:
        raise UsageError(f"no subjects: --subjects {args.subjects!r} names none in {args.data}.")
    errors = (UsageError, DataError, BundleError, FileNotFoundError, ValueError, RuntimeError, OSError)
    outcomes = run_subjects(
        subjects, lambda subject, folder: _train_subject(args, cfg, folder, subject), Path(args.out), errors
    )
    failed = [o.subject for o in outcomes if not o.ok]
    if report:  # rank 0 of a distributed run (every rank trains, and takes part in the group model)
        _report_many(args, outcomes, failed)
    if len(failed) == len(subjects):
        return EXIT_FAILURE
    return _train_group(args, cfg, outcomes, report) if args.group else 0


def _report_many(args: argparse.Namespace, outcomes: list[Any], failed: list[str]) -> None:
    """Write ``summary.csv`` / ``summary.png`` and print each subject's mean test r and the failures."""
    from offline.batch import write_summary

    csv_path, png = write_summary(outcomes, args.out)
    print(f"\n{len(outcomes)} subjects: mean test r per subject")
    print(f"{'subject':12s} {'BEIRA':>7s} {'baseline':>9s} {'ceiling':>8s}")
    for o in outcomes:
        if o.ok:
            m = o.metrics or {}
            ceiling = (m.get("ceiling") or {}).get("test_r_mean")
            print(f"{o.subject:12s} {_fmt(m['test']['r_mean']):>7s} {_fmt(m['baseline']['r_mean']):>9s} "
                  f"{_fmt(ceiling):>8s}")  # fmt: skip
        else:
            print(f"{o.subject:12s} FAILED: {o.reason}")
    print(f"wrote {csv_path}" + (f", {png}" if png else ""))
    if failed:
        print(f"{len(failed)} of {len(outcomes)} subjects failed: {', '.join(failed)}", file=sys.stderr)


def _train_group(args: argparse.Namespace, cfg: Any, outcomes: list[Any], report: bool) -> int:
    """``--group``: a group model of the trained subjects, within-subject / LOSO / fine-tuning test r."""
    from beira_rt.bundle import save_bundle
    from offline.dataset import GroupData, prepare_recording
    from offline.distributed import context, rank_device
    from offline.group import evaluate_group, make_group_bundle, write_group_report
    from offline.train import resolve_device

    done = [o for o in outcomes if o.ok]
    if len(done) < 2:
        print("error: a group model needs at least 2 subjects that loaded.", file=sys.stderr)
        return EXIT_FAILURE
    try:
        minutes = tuple(float(m) for m in args.finetune_minutes.split(",") if m.strip())
    except ValueError as err:
        raise UsageError(f"--finetune-minutes takes numbers separated by commas: {err}") from err
    parts, hashes = {}, {}
    for o in done:  # read back from the cache the per-subject runs filled
        rec, _, _ = _load_recording(args, cfg, o.subject, _cache_dir(args))
        parts[o.subject], hashes[o.subject] = prepare_recording(rec, cfg), rec.data_hash
    device = rank_device(resolve_device(cfg.training.device), context())
    evaluation, model = evaluate_group(cfg, parts, device, finetune_minutes=minutes, loso=not args.no_loso)
    if not report:
        return 0
    folder = Path(args.out) / "group"
    written = write_group_report(folder, evaluation, {o.subject: o.metrics for o in done})
    group = GroupData(tuple(parts.values()), tuple(parts))
    save_bundle(make_group_bundle(cfg, group, model, evaluation, hashes), folder / "model.beira")
    head = f"{'subject':12s} {'own':>7s} {'group':>7s} {'LOSO':>7s}" + "".join(
        f" {f'+{m:g} min':>8s}" for m in minutes
    )
    print(f"\ngroup model of {len(parts)} subjects: mean test r per subject (own = per-subject model, "
          f"group = within-subject, LOSO = the others' group model, +N min = LOSO fine-tuned on N min)\n{head}")  # fmt: skip
    for s in parts:
        own = (next(o for o in done if o.subject == s).metrics or {})["test"]["r_mean"]
        ft = evaluation["finetune"].get(s, {})
        print(f"{s:12s} {_fmt(own):>7s} {_fmt(evaluation['within'][s]['mean']):>7s} "
              f"{_fmt(evaluation['loso'].get(s, {}).get('mean')):>7s}"
              + "".join(f" {_fmt(ft.get(f'{m:g}', {}).get('mean')):>8s}" for m in minutes))  # fmt: skip
    print("wrote " + ", ".join(str(p) for p in written) + f", {folder / 'model.beira'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from beira_rt.bundle import load_bundle
    from offline.evaluate import evaluate_bundle

    bundle = load_bundle(args.bundle)
    threads = args.num_threads or bundle.config.training.num_threads
    if threads is not None:
        torch.set_num_threads(threads)
    rec, ceiling, _ = _load_recording(args, bundle.config)
    metrics = evaluate_bundle(bundle, rec, device=args.device, out_dir=args.out, ceiling=ceiling)
    _print_summary(metrics, f"{args.bundle} on {metrics['subject']}: test block, Pearson r")
    print(f"whole recording (offline read-out): mean r {_fmt(metrics['all']['r_mean'])}")
    if args.out:
        print(f"wrote {Path(args.out) / 'evaluation.json'}")
    return 0


def _truth(args: argparse.Namespace) -> int:
    import numpy as np

    from offline.truth import cwl_truth, write_truth_tsv

    cfg = config_from_args(args)
    times, values, rois = cwl_truth(args.subject_dir, cfg, args.atlas, args.atlas_labels)
    path = write_truth_tsv(args.out, times, values, rois)
    known = np.isfinite(values).all(axis=1)
    print(
        f"wrote {path}: {len(rois)} ROIs x {times.size} rows at {cfg.preprocessing.sfreq:g} Hz "
        f"({times[-1]:.2f} s of EEG; BOLD known for {known.sum() / cfg.preprocessing.sfreq:.2f} s, "
        f"delay {cfg.model.bold_delay:g} s)"
    )
    return 0


def _interpret(args: argparse.Namespace) -> int:
    import torch

    from beira_rt.bundle import load_bundle
    from offline.interpret import interpret_bundle, write_interpretation

    if not args.out:
        raise UsageError("give --out DIR, the folder for the interpretation.")
    if args.html and args.no_figures:
        raise UsageError("--html shows the figures; do not give it with --no-figures.")
    bundle = load_bundle(args.bundle)
    threads = args.num_threads or bundle.config.training.num_threads
    if threads is not None:
        torch.set_num_threads(threads)
    rec, _, _ = _load_recording(args, bundle.config)
    doc = interpret_bundle(bundle, rec, device=args.device)
    write_interpretation(doc, args.out, figures=not args.no_figures, html=args.html)
    print(
        f"{args.bundle} on {doc['subject']}: most important branch per ROI (ranked on training + validation)"
    )
    print(
        f"{'ROI':18s} {'val r':>6s} {'branch':>6s} {'r alone':>7s} {'drop r':>7s} {'peak Hz':>8s} {'|B| peak':>9s}"
    )
    for roi, entry in doc["rois"].items():
        best = entry["branches"][entry["ranking"][0]]
        print(
            f"{roi:18s} {_fmt(entry['val_r']):>6s} {best['branch']:>6d} {_fmt(best['importance']):>7s} "
            f"{_fmt(best['drop_r']):>7s} "
            f"{best['peak_hz']:>8.1f} {best['band_peak_hz']:>9.1f}"
        )
    print(
        f"wrote {Path(args.out) / 'interpretation.json'}, patterns.json"
        + ("" if args.no_figures else ", figures")
    )
    return 0


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from beira_rt.bundle import BundleError
        from offline.loader import DataError

        try:
            return fn(args)
        except ConfigError:
            raise  # run_main reports it (exit 2)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
        except (DataError, BundleError, FileNotFoundError, ValueError) as err:
            logger.debug("failed", exc_info=True)
            print(f"error: {err}", file=sys.stderr)
            return EXIT_FAILURE

    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``beira-train`` (``evaluate`` as first argument selects the subcommand)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "evaluate":
        return run_main(_guarded(_evaluate), build_evaluate_parser(), argv[1:])
    if argv and argv[0] == "interpret":
        return run_main(_guarded(_interpret), build_interpret_parser(), argv[1:])
    if argv and argv[0] == "truth":
        return run_main(_guarded(_truth), build_truth_parser(), argv[1:])
    if argv and argv[0] == "train":
        argv = argv[1:]
    return run_main(_guarded(_train), build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
