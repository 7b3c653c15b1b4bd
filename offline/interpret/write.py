"""Write an interpretation: JSON with every number, a compact JSON for the dashboard, figures."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beira_rt._logging import logger

from ..pipeline import jsonable

__all__ = ["compact_patterns", "write_interpretation"]

#: Keys of a branch kept in the compact ``patterns.json``.
_COMPACT_KEYS = ("branch", "rank", "importance", "drop_r", "peak_hz", "band_peak_hz", "pattern", "weights")


def compact_patterns(doc: Mapping[str, Any], top: int = 3) -> dict[str, Any]:
    """The dashboard's part of an interpretation: the ``top`` branches of every ROI, no spectra.

    Parameters
    ----------
    doc : mapping
        An interpretation (see :func:`offline.interpret.interpret_model`).
    top : int
        Branches kept per ROI (the most important).

    Returns
    -------
    dict
        Same layout as ``doc`` (``ch_names``, ``positions``, ``rois`` -> ``branches`` with
        ``rank``), readable by :func:`beira_rt.interpret.read_patterns`.
    """
    rois = {}
    for roi, entry in doc["rois"].items():
        keep = set(entry["ranking"][:top])
        rois[roi] = {
            "val_r": entry["val_r"],
            "test_r": entry.get("test_r"),
            "ranking": entry["ranking"][:top],
            "branches": [{k: b[k] for k in _COMPACT_KEYS} for b in entry["branches"] if b["branch"] in keep],
        }
    head = ("bundle_hash", "subject", "data_hash", "sfreq", "ch_names", "positions", "positions_source")
    return {**{k: doc[k] for k in head if k in doc}, "method": doc["method"]["pattern"], "rois": rois}


def write_interpretation(
    doc: Mapping[str, Any],
    out_dir: str | Path,
    *,
    figures: bool = True,
    sheets: bool = True,
    html: bool = False,
) -> list[Path]:
    """Write ``interpretation.json``, ``patterns.json`` and (optionally) figures and ``report.html``.

    Parameters
    ----------
    doc : mapping
        An interpretation.
    out_dir : str or Path
        Folder (created).
    figures : bool
        ``overview.png`` (see :mod:`offline.interpret.figures`).
    sheets : bool
        With ``figures``, also one ``roi_<ROI>.png`` sheet per ROI (about 1 s each).
    html : bool
        With ``figures``, also ``report.html`` (an ``mne.Report`` of the figures).

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    written = [out / "interpretation.json", out / "patterns.json"]
    written[0].write_text(json.dumps(jsonable(dict(doc))), encoding="utf-8")
    written[1].write_text(json.dumps(jsonable(compact_patterns(doc)), indent=1), encoding="utf-8")
    if figures:
        from . import figures as fig

        pngs = [fig.plot_overview(doc, out / "overview.png")]
        if sheets:
            pngs += [fig.plot_roi_sheet(doc, roi, out / fig.roi_file(roi)) for roi in doc["rois"]]
        written += pngs
        if html:
            written.append(fig.write_html_report(doc, pngs, out / "report.html"))
    logger.info("interpretation written to %s (%d files, %.1f s)", out, len(written), time.perf_counter() - t)
    return written
