"""Figures of a training run (matplotlib, Agg backend: no display needed).

- ``loss_curves.png``: training and validation loss and validation mean r per epoch,
  the kept epoch marked;
- ``test_predictions.png``: predicted vs measured BOLD per ROI over the test block
  (BEIRA offline read-out and the linear baseline);
- ``r_per_roi.png``: test r per ROI for BEIRA, the baseline and, when known, the ceiling;
- ``r_by_lookahead.png``: test (and validation) mean r as a function of the live look-ahead;
- ``data_curve.png`` (closed-form fits): validation mean r against the seconds of training data
  (``training.data_curve``);
- ``summary.png`` (many subjects, :mod:`offline.batch`): test r per subject and ROI, and each
  subject's mean r beside the baseline and the ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "plot_lookahead",
    "plot_loss_curves",
    "plot_r_per_roi",
    "plot_subject_summary",
    "plot_test_predictions",
]


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_loss_curves(history: Sequence[Mapping[str, object]], path: str | Path) -> Path:
    """Training / validation loss and validation mean r per epoch.

    Parameters
    ----------
    history : sequence of dict
        Records with ``epoch``, ``train_loss``, ``val_loss``, ``val_r_mean`` and ``best``.
    path : str or Path
        PNG file to write.
    """
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_r) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="training (random windows)")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation block")
    ax_loss.set(xlabel="epoch", ylabel="loss (z-scored BOLD)", title="loss")
    ax_loss.legend()
    ax_r.plot(epochs, [h["val_r_mean"] for h in history], color="C2")
    best = [h["epoch"] for h in history if h.get("best")]
    if best:
        kept = best[-1]
        ax_r.axvline(kept, color="k", ls=":", label=f"kept epoch {kept}")
        ax_r.legend()
    ax_r.set(xlabel="epoch", ylabel="mean Pearson r", title="validation r (chooses the checkpoint)")
    fig.tight_layout()
    return _save(fig, path)


def plot_test_predictions(
    times: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    rois: Sequence[str],
    r: Sequence[float],
    path: str | Path,
    baseline: np.ndarray | None = None,
) -> Path:
    """Predicted vs measured BOLD per ROI on the test block.

    Parameters
    ----------
    times : array of shape (n_samples,)
        Seconds (EEG time of the aligned samples).
    true, pred : arrays of shape (n_rois, n_samples)
        Measured and predicted BOLD (same units).
    rois : sequence of str
    r : sequence of float
        Test r per ROI (shown in the titles).
    path : str or Path
    baseline : array of shape (n_rois, n_samples) or None
        Baseline predictions, drawn thin.
    """
    n = len(rois)
    ncols = 2 if n > 1 else 1
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 1.9 * nrows + 0.6), sharex=True, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        ax.plot(times, true[k], color="k", lw=1.2, label="measured")
        ax.plot(times, pred[k], color="C0", lw=1.2, label="BEIRA")
        if baseline is not None:
            ax.plot(times, baseline[k], color="C1", lw=0.8, alpha=0.8, label="linear baseline")
        ax.set_title(f"{rois[k]}  (r = {r[k]:.2f})", fontsize=9)
        ax.tick_params(labelsize=8)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("EEG time (s); BOLD shown at + delay")
    fig.suptitle("Test block: measured vs predicted BOLD")
    fig.tight_layout()
    return _save(fig, path)


def plot_r_per_roi(
    rois: Sequence[str],
    bars: Mapping[str, Sequence[float]],
    path: str | Path,
) -> Path:
    """Grouped bars of test r per ROI (e.g. BEIRA, baseline, ceiling).

    Parameters
    ----------
    rois : sequence of str
    bars : mapping
        Label -> r per ROI (same order as ``rois``).
    path : str or Path
    """
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rois)), 3.8))
    _grouped_bars(ax, rois, bars)
    ax.set(ylabel="Pearson r (test block)", title="Test r per ROI")
    fig.tight_layout()
    return _save(fig, path)


def _grouped_bars(ax: plt.Axes, groups: Sequence[str], bars: Mapping[str, Sequence[float]]) -> None:
    """Bars of each label in ``bars`` side by side over each group, with a legend of the means."""
    x = np.arange(len(groups))
    width = 0.8 / max(len(bars), 1)
    for k, (label, values) in enumerate(bars.items()):
        vals = np.asarray(values, dtype=float)
        ax.bar(
            x + (k - (len(bars) - 1) / 2) * width, vals, width, label=f"{label} (mean {np.nanmean(vals):.2f})"
        )
    ax.set_xticks(x, [g.replace(" ", "\n") for g in groups], fontsize=8)
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize=8)


def plot_subject_summary(
    subjects: Sequence[str],
    rois: Sequence[str],
    test_r: np.ndarray,
    bars: Mapping[str, Sequence[float]],
    path: str | Path,
    note: str = "",
) -> Path:
    """Many subjects: a heat map of test r (subject x ROI) and bars of each subject's mean r.

    Parameters
    ----------
    subjects, rois : sequence of str
    test_r : array of shape (n_subjects, n_rois)
    bars : mapping
        Label -> mean r per subject (e.g. BEIRA, baseline, ceiling; NaN where unknown).
    path : str or Path
    note : str
        A line under the figure (e.g. the subjects that failed).
    """
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(max(10.0, 0.9 * len(rois) + 1.2 * len(subjects) + 4), 0.5 * len(subjects) + 3.5),
        gridspec_kw={"width_ratios": [max(len(rois), 1), max(len(subjects), 2)]},
    )  # fmt: skip
    image = left.imshow(test_r, vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto")
    for (i, j), value in np.ndenumerate(test_r):
        left.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    left.set_yticks(np.arange(len(subjects)), subjects, fontsize=8)
    left.set_xticks(np.arange(len(rois)), [r.replace(" ", "\n") for r in rois], fontsize=7)
    left.set_title("BEIRA test r per subject and ROI")
    fig.colorbar(image, ax=left, shrink=0.8)
    _grouped_bars(right, subjects, bars)
    right.set(ylabel="mean Pearson r (test block)", title="Mean over ROIs per subject")
    if note:
        fig.text(0.01, 0.01, note, fontsize=8)
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    return _save(fig, path)


def plot_lookahead(
    curves: Mapping[str, Mapping[str, float]],
    path: str | Path,
    chosen: float | None = None,
) -> Path:
    """Mean r as a function of the live look-ahead.

    Parameters
    ----------
    curves : mapping
        Label (e.g. ``"test"``, ``"validation"``) -> {look-ahead in s as str: mean r}.
    path : str or Path
    chosen : float or None
        The bundle's default look-ahead, marked.
    """
    marks = {f"bundle look-ahead {chosen:g} s": chosen} if chosen is not None else {}
    return plot_curves(
        curves, path, xlabel="look-ahead (s): output read this long before the window's right edge",
        ylabel="mean Pearson r", title="Live read-out accuracy vs latency", vertical=marks,
    )  # fmt: skip


def plot_curves(
    curves: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    vertical: Mapping[str, float] | None = None,
    horizontal: Mapping[str, float] | None = None,
) -> Path:
    """Curves of r against a number (look-ahead, fine-tuning minutes), with labelled reference lines.

    Parameters
    ----------
    curves : mapping
        Label -> {x as str: r}.
    path : str or Path
    xlabel, ylabel, title : str
    vertical, horizontal : mapping or None
        Label -> x (dotted vertical lines) or -> r (dashed horizontal lines).
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, curve in curves.items():
        xs = sorted(curve, key=float)
        ax.plot([float(x) for x in xs], [curve[x] for x in xs], marker="o", label=label)
    for label, x in (vertical or {}).items():
        ax.axvline(x, color="k", ls=":", label=label)
    for k, (label, r) in enumerate((horizontal or {}).items()):
        ax.axhline(r, color=f"C{len(curves) + k}", ls="--", label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
