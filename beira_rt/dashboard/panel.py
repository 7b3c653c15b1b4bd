"""The status panel: the engine's own report (status stream) and what the dashboard sees.

:func:`engine_rows` turns one status message (docs/CONTRACTS.md, "Status") into
display text; :class:`StatusPanel` shows rows of text and only touches a label
when its text changes.
"""

from __future__ import annotations

import math
from typing import Any

from PyQt6 import QtCore, QtWidgets

__all__ = ["ENGINE_KEYS", "STATE_COLORS", "StatusPanel", "description_rows", "engine_rows", "stream_text"]

#: Rows of the engine section, in display order.
ENGINE_KEYS = (
    "Engine",
    "Source",
    "Input rate",
    "Received",
    "Dropped",
    "Quality",
    "Bad channels",
    "Updates",
    "Latency",
    "Model",
    "Device",
    "Look-ahead",
)
STATE_COLORS = {
    "connected": "#2ca02c",
    "waiting": "#d68910",
    "reconnecting": "#d68910",
    "stalled": "#d68910",
    "lost": "#c0392b",
    "stopped": "#7f7f7f",
    "no status": "#7f7f7f",
}


def _num(message: dict[str, Any], key: str) -> float:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _fmt(value: float, spec: str = ".0f", unit: str = "") -> str:
    return "–" if not math.isfinite(value) else f"{value:{spec}}{unit}"


def engine_rows(message: dict[str, Any] | None, detail: str = "") -> dict[str, str]:
    """Display text for the engine section from the newest status message.

    Parameters
    ----------
    message : dict | None
        The newest status message (a parsed JSON object), or None when the
        status stream is absent, lost or silent.
    detail : str
        Why there is no status (shown next to "no status").

    Returns
    -------
    dict of str to str
        One text per key of :data:`ENGINE_KEYS`; missing fields show "–".
    """
    if message is None:
        rows = dict.fromkeys(ENGINE_KEYS, "–")
        rows["Engine"] = f"no status ({detail})" if detail else "no status"
        return rows
    m = message
    state = str(m.get("state", "unknown"))
    hash_ = str(m.get("model_hash") or "")
    return {
        "Engine": state,
        "Source": str(m.get("source") or "–"),
        "Input rate": _fmt(_num(m, "input_rate"), ".1f", " Hz"),
        "Received": f"{_fmt(_num(m, 'samples_received'))} samples",
        "Dropped": (
            f"gaps {_fmt(_num(m, 'gaps'))} · overflows {_fmt(_num(m, 'overflows'))} · "
            f"NaN runs {_fmt(_num(m, 'nan_resets'))} · clock steps {_fmt(_num(m, 'clock_steps'))}"
        ),
        "Quality": _fmt(_num(m, "quality"), ".2f"),
        "Bad channels": _bad_channels(m.get("bad_channels")),
        "Updates": f"{_fmt(_num(m, 'updates'))} · skipped {_fmt(_num(m, 'skipped_updates'))}",
        "Latency": (
            f"p50 {_fmt(_num(m, 'latency_p50_ms'), '.1f')} ms · "
            f"p99 {_fmt(_num(m, 'latency_p99_ms'), '.1f')} ms"
        ),
        "Model": hash_[:12] if hash_ else "–",
        "Device": str(m.get("device") or "–"),
        "Look-ahead": _fmt(_num(m, "lookahead"), ".2f", " s"),
    }


def _bad_channels(bad: object) -> str:
    if not isinstance(bad, dict):
        return "–"
    return ", ".join(f"{name} ({kind})" for name, kind in sorted(bad.items())) or "none"


def _parse_float(text: str | None) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def description_rows(extra: dict[str, str], have_status: bool) -> dict[str, str]:
    """Rows filled from the prediction stream's ``desc/beira`` (docs/CONTRACTS.md).

    Parameters
    ----------
    extra : dict of str to str
        The ``desc/beira`` values of the prediction stream (strings, possibly malformed).
    have_status : bool
        Whether a status message is shown; if not, the description also tells the
        model, device, look-ahead and source.

    Returns
    -------
    dict of str to str
        ``BOLD delay``, and without status also ``Model``, ``Device``, ``Look-ahead``, ``Source``.
    """
    rows = {"BOLD delay": _fmt(_parse_float(extra.get("bold_delay")), "g", " s")}
    if not have_status:
        rows["Model"] = extra.get("model_hash", "")[:12] or "–"
        rows["Device"] = extra.get("device") or "–"
        rows["Look-ahead"] = _fmt(_parse_float(extra.get("lookahead")), ".2f", " s")
        rows["Source"] = extra.get("source") or "–"
    return rows


def stream_text(state: str, name: str | None, rate: float, received: int, gaps: int | None = None) -> str:
    """One line about a stream the dashboard reads, e.g. ``connected · EEG-1 · 999.8 Hz · 12000 samples``."""
    if state in ("waiting", "stopped"):
        return state
    parts = [state if state != "lost" else "lost · reconnecting"]
    if name:
        parts.append(name)
    if math.isfinite(rate):
        parts.append(f"{rate:.1f} Hz")
    parts.append(f"{received} samples")
    if gaps:
        parts.append(f"{gaps} gaps")
    return " · ".join(parts)


class StatusPanel(QtWidgets.QGroupBox):
    """Rows of label/value text in sections; values keep their last text until changed."""

    def __init__(self, sections: dict[str, tuple[str, ...]], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Status", parent)
        self._values: dict[str, QtWidgets.QLabel] = {}
        self._colors: dict[str, str] = {}
        form = QtWidgets.QFormLayout(self)
        for section, keys in sections.items():
            header = QtWidgets.QLabel(f"<b>{section}</b>")
            form.addRow(header)
            for key in keys:
                value = QtWidgets.QLabel("–")
                value.setWordWrap(True)
                value.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
                form.addRow(f"{key}:", value)
                self._values[key] = value

    def set_text(self, key: str, text: str, state: str | None = None) -> None:
        """Show ``text`` for ``key``; colour it by ``state`` (a key of :data:`STATE_COLORS`)."""
        label = self._values[key]
        color = STATE_COLORS.get(state or "", "")
        if label.text() != text:
            label.setText(text)
        if self._colors.get(key) != color:
            label.setStyleSheet(f"color: {color}; font-weight: bold;" if color else "")
            self._colors[key] = color

    def text(self, key: str) -> str:
        """The text shown for ``key``."""
        return self._values[key].text()
