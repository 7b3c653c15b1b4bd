"""Interpretation of a trained BEIRA: spatial and spectral patterns and importance of every branch.

Public API
----------
- :func:`interpret_model` — the numbers for a model and a prepared recording (used by training).
- :func:`interpret_bundle` — the same for a saved bundle and a recording (``beira-train interpret``).
- :func:`write_interpretation` — ``interpretation.json``, ``patterns.json`` (compact, for the
  dashboard), the figures and optionally ``report.html``.

The pattern math lives in :mod:`beira_rt.interpret` (the runtime package reads the patterns too).
"""

from offline.interpret.core import METHOD, channel_positions, interpret_bundle, interpret_model
from offline.interpret.write import compact_patterns, write_interpretation

__all__ = [
    "METHOD",
    "channel_positions",
    "compact_patterns",
    "interpret_bundle",
    "interpret_model",
    "write_interpretation",
]
