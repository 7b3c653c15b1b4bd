"""The "Patterns" tab: what the loaded bundle listens to, as topomaps of each ROI's top branches.

The patterns come from ``beira-train interpret`` (or training), in ``patterns.json``; they
are read with :func:`beira_rt.interpret.read_patterns` and drawn once, with MNE's topomap,
into an image (static content: no redraw cost while the dashboard runs). The tab names
the bundle the patterns belong to and warns when the engine's prediction stream reports
another model.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

from beira_rt._logging import logger
from beira_rt.interpret import RoiPatterns, read_patterns

__all__ = ["PatternsView", "render_patterns"]


def render_patterns(meta: dict[str, Any], rois: list[RoiPatterns], top: int = 2, dpi: int = 90) -> bytes:
    """Draw the topomaps of the ``top`` branches of every ROI into a PNG.

    Parameters
    ----------
    meta : dict
        From :func:`beira_rt.interpret.read_patterns` (``ch_names``, ``positions``).
    rois : list of RoiPatterns
    top : int
        Rows: the most important branches of each ROI.
    dpi : int

    Returns
    -------
    bytes
        The PNG image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mne
    import numpy as np

    positions = meta.get("positions") or {}
    ch_names = list(meta["ch_names"])
    names = [n for n in ch_names if n in positions]
    info = mne.create_info(names, 100.0, "eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos={n: np.asarray(positions[n]) for n in names}, coord_frame="head"
    )
    info.set_montage(montage, verbose="error")
    index = [ch_names.index(n) for n in names]
    rows = max(1, min(top, max(len(r.branches) for r in rois)))
    fig, axes = plt.subplots(rows, len(rois), figsize=(1.9 * len(rois), 2.1 * rows), squeeze=False)
    for c, roi in enumerate(rois):
        for r in range(rows):
            ax = axes[r, c]
            if r >= len(roi.branches):
                ax.set_axis_off()
                continue
            b = roi.branches[r]
            data = np.asarray(b["pattern"])[index]
            lim = float(np.abs(data).max()) or 1.0
            mne.viz.plot_topomap(data, info, axes=ax, show=False, cmap="RdBu_r", vlim=(-lim, lim), contours=3)
            imp = b.get("importance")
            title = (f"{roi.roi}\n" if r == 0 else "") + f"#{r + 1} br {b['branch']} · {b['peak_hz']:.1f} Hz"
            if imp is not None:
                title += f" · r {imp:+.2f}"
            ax.set_title(title, fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


class PatternsView(QtWidgets.QWidget):
    """Topomaps of each ROI's most important branches, with what they are and where they come from.

    Parameters
    ----------
    path : str or Path
        ``patterns.json`` / ``interpretation.json`` or a bundle with ``<stem>.patterns.json`` beside it.
    top : int
        Branches shown per ROI.
    parent : QtWidgets.QWidget | None

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`beira_rt.interpret.read_patterns`.
    """

    def __init__(self, path: str | Path, top: int = 2, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.meta, self.rois = read_patterns(path)
        self.top = top
        self.bundle_hash = str(self.meta.get("bundle_hash") or "")
        self.engine_hash = ""
        self._pixmap = QtGui.QPixmap()
        self._pixmap.loadFromData(render_patterns(self.meta, self.rois, top), "PNG")
        self.image = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 100)
        self.image.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self.caption = QtWidgets.QLabel(wordWrap=True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.image, stretch=1)
        layout.addWidget(self.caption)
        self._update_caption()
        logger.info("patterns of %d ROIs from %s", len(self.rois), self.meta["source"])

    @property
    def n_topomaps(self) -> int:
        """Topomaps drawn (branches shown over all ROIs)."""
        return sum(min(len(r.branches), self.top) for r in self.rois)

    def set_engine_hash(self, model_hash: str) -> None:
        """The model hash (or its first characters) the engine reports; another bundle's is flagged."""
        model_hash = model_hash.strip() if model_hash and model_hash.strip() != "–" else ""
        if model_hash and model_hash != self.engine_hash:
            self.engine_hash = model_hash
            self._update_caption()

    def tabs_with(self, live: QtWidgets.QWidget) -> QtWidgets.QTabWidget:
        """A tab widget with ``live`` (the dashboard's traces) as "Live" and this view as "Patterns"."""
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(self, "Patterns")
        return self.tabs

    @property
    def mismatch(self) -> bool:
        """True when the engine runs another bundle than the one these patterns belong to."""
        return bool(
            self.engine_hash and self.bundle_hash and not self.bundle_hash.startswith(self.engine_hash)
        )

    def _update_caption(self) -> None:
        text = (
            "Spatial patterns of each ROI head's most important branches (Haufe's rule per branch: "
            "what the branch listens to on the scalp; red and blue are opposite polarities). "
            "Title: branch, peak frequency of its spectral pattern, r of the ROI over the training and "
            f"validation blocks with only this branch varying. From {self.meta['source']}"
        )
        if self.bundle_hash:
            text += f", bundle {self.bundle_hash[:12]}"
        if self.mismatch:
            text += (
                f". <b style='color:#c0392b'>The engine runs model {self.engine_hash[:12]}: these patterns "
                "belong to another bundle.</b>"
            )
        self.caption.setText(text + ".")

    def resizeEvent(self, event: QtGui.QResizeEvent | None) -> None:
        super().resizeEvent(event)
        size = self.image.size()
        if not self._pixmap.isNull() and size.width() > 0 and size.height() > 0:
            self.image.setPixmap(
                self._pixmap.scaled(
                    size,
                    QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation,
                )
            )
