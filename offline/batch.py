"""Many subjects in one run (``beira-train --subjects a,b,c|all``): one model per subject and a summary.

:func:`run_subjects` trains each subject into ``OUT/{subject}/`` with the callable it is
given (the CLI's single-subject training); a subject whose files are missing or broken is
logged with the reason and skipped, never silently: it appears in the summary as ``failed``
with that reason. :func:`write_summary` writes ``OUT/summary.csv`` (one row per subject and
ROI, and one ``mean`` row per subject: test r, the linear baseline, the ceiling where known)
and ``OUT/summary.png`` (:func:`offline.report.plot_subject_summary`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from beira_rt._logging import logger

from . import report

__all__ = ["SUMMARY_COLUMNS", "SubjectOutcome", "find_subjects", "run_subjects", "write_summary"]

#: Columns of ``summary.csv``.
SUMMARY_COLUMNS = ("subject", "status", "roi", "test_r", "baseline_r", "ceiling_test_r", "reason")


@dataclass(frozen=True)
class SubjectOutcome:
    """One subject of a batch: its metrics when trained, the reason when not.

    Attributes
    ----------
    subject : str
    metrics : dict or None
        What :func:`offline.pipeline.run_training` returned; None when it failed.
    reason : str
        Why it failed (the error's message); empty when trained.
    """

    subject: str
    metrics: dict[str, Any] | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Whether the subject was trained."""
        return self.metrics is not None


def find_subjects(data_dir: str | Path) -> list[str]:
    """The subject folders of a CWL data folder (those holding ``CWL_Data``), sorted.

    Other folders (``atlas``, ``ground_truth``, ...) are logged and not counted as subjects.
    """
    data_dir = Path(data_dir)
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir())
    subjects = [p.name for p in folders if (p / "CWL_Data").is_dir()]
    others = [p.name for p in folders if p.name not in subjects]
    if others:
        logger.info("not subject folders (no CWL_Data) in %s: %s", data_dir, ", ".join(others))
    return subjects


def run_subjects(
    subjects: Sequence[str],
    train_one: Callable[[str, Path], dict[str, Any]],
    out_dir: str | Path,
    errors: tuple[type[BaseException], ...],
) -> list[SubjectOutcome]:
    """Train every subject into ``out_dir/{subject}``; subjects that raise one of ``errors`` are skipped.

    Parameters
    ----------
    subjects : sequence of str
    train_one : callable
        ``train_one(subject, folder) -> metrics``.
    out_dir : str or Path
    errors : tuple of exception types
        What counts as a missing or broken subject (others propagate).

    Returns
    -------
    list of SubjectOutcome
        In the order of ``subjects``.
    """
    outcomes = []
    for k, subject in enumerate(subjects, 1):
        logger.info("subject %d of %d: %s", k, len(subjects), subject)
        try:
            outcomes.append(SubjectOutcome(subject, train_one(subject, Path(out_dir) / subject)))
        except errors as err:
            reason = f"{type(err).__name__}: {err}"
            logger.error("subject %s skipped: %s", subject, reason)
            outcomes.append(SubjectOutcome(subject, None, reason))
    return outcomes


def _value(table: dict | None, key: str, roi: str | None = None) -> float:
    if not table:
        return math.nan
    value = table.get(key) if roi is None else (table.get(key) or {}).get(roi)
    return math.nan if value is None else float(value)


def _rows(outcome: SubjectOutcome) -> list[dict[str, Any]]:
    if not outcome.ok:
        return [{"subject": outcome.subject, "status": "failed", "roi": "", "test_r": "", "baseline_r": "",
                 "ceiling_test_r": "", "reason": outcome.reason}]  # fmt: skip
    m = outcome.metrics or {}
    test, base, ceil = m["test"], m.get("baseline"), m.get("ceiling")
    rows = []
    for roi in [*test["r_per_roi"], None]:
        rows.append({
            "subject": outcome.subject, "status": "ok", "roi": roi or "mean",
            "test_r": _value(test, "r_per_roi", roi) if roi else _value(test, "r_mean"),
            "baseline_r": _value(base, "r_per_roi", roi) if roi else _value(base, "r_mean"),
            "ceiling_test_r": _value(ceil, "test_r_per_roi", roi) if roi else _value(ceil, "test_r_mean"),
            "reason": "",
        })  # fmt: skip
    return rows


def write_summary(outcomes: Sequence[SubjectOutcome], out_dir: str | Path) -> tuple[Path, Path | None]:
    """Write ``summary.csv`` (every subject, failed ones with their reason) and ``summary.png``.

    Returns
    -------
    csv_path : Path
    png_path : Path or None
        None when no subject was trained.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "summary.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for outcome in outcomes:
            for row in _rows(outcome):
                writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    done = [o for o in outcomes if o.ok]
    if not done:
        return csv_path, None
    rois = list(done[0].metrics["test"]["r_per_roi"])  # type: ignore[index]
    rows = [_rows(o) for o in done]
    test_r = np.array([[r["test_r"] for r in rs[:-1]] for rs in rows])
    bars = {
        "BEIRA": [rs[-1]["test_r"] for rs in rows],
        "linear baseline": [rs[-1]["baseline_r"] for rs in rows],
        "ceiling (test block)": [rs[-1]["ceiling_test_r"] for rs in rows],
    }
    failed = [o.subject for o in outcomes if not o.ok]
    note = f"failed (see summary.csv): {', '.join(failed)}" if failed else ""
    png = report.plot_subject_summary(
        [o.subject for o in done], rois, test_r, bars, out / "summary.png", note
    )
    return csv_path, png
