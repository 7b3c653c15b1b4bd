"""Figures of an interpretation (MNE topomaps, matplotlib spectra; Agg backend, no display needed).

- ``overview.png``: per ROI (columns) its most important branch: spatial pattern, weights,
  and spectra (band-pass response and spectral pattern, the peak marked);
- ``roi_<ROI>.png``: one summary sheet per ROI: its top branches (pattern, weights, spectra,
  envelope filter) and the importance of every branch;
- ``report.html`` (optional): the figures and a table of the numbers in one ``mne.Report``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mne
import numpy as np

__all__ = ["make_info", "plot_overview", "plot_roi_sheet", "topomap", "write_html_report"]

_PATTERN_CMAP = "RdBu_r"


def make_info(ch_names: list[str], positions: Mapping[str, list[float]], sfreq: float = 100.0) -> mne.Info:
    """An ``mne.Info`` with the channels that have a position, and their montage.

    Parameters
    ----------
    ch_names : list of str
    positions : mapping
        Channel -> [x, y, z] in metres (head frame).
    sfreq : float

    Returns
    -------
    mne.Info
        Only the channels present in ``positions``, in the order of ``ch_names``.
    """
    names = [n for n in ch_names if n in positions]
    info = mne.create_info(names, sfreq, "eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos={n: np.asarray(positions[n], dtype=float) for n in names}, coord_frame="head"
    )
    info.set_montage(montage, verbose="error")
    return info


def topomap(ax: plt.Axes, values: np.ndarray, ch_names: list[str], info: mne.Info, title: str = "") -> None:
    """Draw one topomap of per-channel ``values`` (array of shape (n_chans,)) with ``mne.viz.plot_topomap``."""
    index = {n: i for i, n in enumerate(ch_names)}
    data = np.array([values[index[n]] for n in info.ch_names])
    lim = float(np.abs(data).max()) or 1.0
    mne.viz.plot_topomap(
        data, info, axes=ax, show=False, cmap=_PATTERN_CMAP, vlim=(-lim, lim), contours=4, sensors=True
    )
    ax.set_title(title, fontsize=8)


def _spectrum(ax: plt.Axes, freqs: np.ndarray, branch: Mapping[str, Any], fmax: float, legend: bool) -> None:
    keep = freqs <= fmax + 5
    band = np.asarray(branch["band_response"])
    ax.plot(
        freqs[keep], band[keep] / max(band[keep].max(), 1e-12), color="0.55", lw=1, label="band-pass |B(f)|"
    )
    ax.plot(
        freqs[keep], np.asarray(branch["spectral_pattern"])[keep], color="C3", lw=1.4, label="pattern |B|·S_u"
    )
    ax.axvline(branch["peak_hz"], color="C3", lw=0.8, ls="--")
    ax.set_xlim(0, fmax + 5)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("Hz", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(f"peak {branch['peak_hz']:.1f} Hz (|B| alone {branch['band_peak_hz']:.1f} Hz)", fontsize=8)
    if legend:
        ax.legend(fontsize=6, loc="upper right", frameon=False)


def _top(roi: Mapping[str, Any], n: int) -> list[Mapping[str, Any]]:
    by_branch = {b["branch"]: b for b in roi["branches"]}
    return [by_branch[k] for k in roi["ranking"][:n]]


def plot_overview(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Each ROI's most important branch: pattern, weights and spectrum (one column per ROI).

    Parameters
    ----------
    doc : mapping
        An interpretation (see :func:`offline.interpret.interpret_model`).
    path : str or Path
        PNG to write.
    """
    info = make_info(doc["ch_names"], doc["positions"], doc["sfreq"])
    freqs = np.asarray(doc["freqs"])
    rois = list(doc["rois"])
    fig, axes = plt.subplots(3, len(rois), figsize=(2.1 * len(rois), 6.4), squeeze=False)
    for c, roi in enumerate(rois):
        entry = doc["rois"][roi]
        best = _top(entry, 1)[0]
        test = entry.get("test_r")
        head = f"{roi}\n" + (f"test r {test:.2f}, " if test is not None else "") + f"branch {best['branch']}"
        topomap(axes[0, c], np.asarray(best["pattern"]), doc["ch_names"], info, f"{head}\npattern")
        topomap(axes[1, c], np.asarray(best["weights"]), doc["ch_names"], info, "weights (not a pattern)")
        _spectrum(axes[2, c], freqs, best, doc["fmax"], legend=c == 0)
    fig.suptitle(
        "Most important branch per ROI (importance: r of the ROI over training + validation with only this branch varying)",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_roi_sheet(doc: Mapping[str, Any], roi: str, path: str | Path, n_top: int = 3) -> Path:
    """Summary sheet of one ROI: top branches (pattern, weights, spectra, envelope) and every importance.

    Parameters
    ----------
    doc : mapping
        An interpretation.
    roi : str
    path : str or Path
        PNG to write.
    n_top : int
        Branches shown in detail.
    """
    info = make_info(doc["ch_names"], doc["positions"], doc["sfreq"])
    freqs = np.asarray(doc["freqs"])
    entry = doc["rois"][roi]
    top = _top(entry, min(n_top, len(entry["branches"])))
    fig = plt.figure(figsize=(11, 2.3 * len(top) + 2.2))
    grid = fig.add_gridspec(len(top) + 1, 4, height_ratios=[1.0] * len(top) + [0.8])
    for row, branch in enumerate(top):
        imp = np.nan if branch["importance"] is None else branch["importance"]
        label = f"#{row + 1}: branch {branch['branch']}, r alone {imp:+.2f}"
        topomap(fig.add_subplot(grid[row, 0]), np.asarray(branch["pattern"]), doc["ch_names"], info,
                f"{label}\nspatial pattern")  # fmt: skip
        topomap(
            fig.add_subplot(grid[row, 1]), np.asarray(branch["weights"]), doc["ch_names"], info, "weights"
        )
        _spectrum(fig.add_subplot(grid[row, 2]), freqs, branch, doc["fmax"], legend=row == 0)
        ax = fig.add_subplot(grid[row, 3])
        env = np.asarray(branch["envelope_response"])
        keep = freqs <= 10
        ax.plot(freqs[keep], env[keep] / max(env.max(), 1e-12), color="C0")
        ax.set_title(
            f"envelope filter: cut-off {branch['envelope_cutoff_hz']:.1f} Hz, "
            f"RMS {1000 * branch['envelope_time_scale_s']:.0f} ms",
            fontsize=8,
        )
        ax.set_xlabel("Hz", fontsize=7)
        ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[len(top), :])
    imp = [np.nan if b["importance"] is None else b["importance"] for b in entry["branches"]]
    drop = [np.nan if b.get("drop_r") is None else b["drop_r"] for b in entry["branches"]]
    x = np.arange(len(imp))
    colors = ["C3" if k in entry["ranking"][: len(top)] else "0.6" for k in range(len(imp))]
    ax.bar(x - 0.2, imp, width=0.4, color=colors, label="r with only this branch varying (ranking)")
    ax.bar(x + 0.2, drop, width=0.4, color="C0", alpha=0.6, label="drop in r when it is silenced")
    ax.legend(fontsize=7, frameon=False)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("branch", fontsize=8)
    ax.set_ylabel("r, training + validation", fontsize=8)
    ax.tick_params(labelsize=7)
    test = entry.get("test_r")
    fig.suptitle(
        f"{roi}: validation r {np.nan if entry['val_r'] is None else entry['val_r']:.3f}"
        + (f", test r {test:.3f}" if test is not None else ""),
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, path)


def roi_file(roi: str) -> str:
    """File name of an ROI's sheet, e.g. ``roi_Left_Pallidum.png``."""
    return "roi_" + re.sub(r"[^A-Za-z0-9]+", "_", roi).strip("_") + ".png"


def write_html_report(doc: Mapping[str, Any], figures: list[Path], path: str | Path) -> Path:
    """One ``mne.Report`` with the figures and a table of the top branch of every ROI."""
    report = mne.Report(title="BEIRA interpretation", verbose="error")
    rows = "".join(
        f"<tr><td>{roi}</td><td>{e['val_r']}</td><td>{e.get('test_r')}</td><td>{b['branch']}</td>"
        f"<td>{b['importance']}</td><td>{b['peak_hz']:.2f}</td><td>{b['band_peak_hz']:.2f}</td></tr>"
        for roi, e in doc["rois"].items()
        for b in _top(e, 1)
    )
    table = (
        "<table><tr><th>ROI</th><th>val r</th><th>test r</th><th>top branch</th><th>r alone</th>"
        f"<th>peak Hz</th><th>|B| peak Hz</th></tr>{rows}</table>"
    )
    report.add_html(table, title="Top branch per ROI")
    for fig_path in figures:
        report.add_image(str(fig_path), title=Path(fig_path).stem)
    report.save(str(path), overwrite=True, open_browser=False, verbose="error")
    return Path(path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
