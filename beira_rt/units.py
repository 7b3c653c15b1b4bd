"""EEG units: everything the model sees is in microvolts.

The trainer reads recordings in microvolts (``raw.get_data(units="uV")``) and the
bundle's normalisation statistics are in microvolts. LSL sources publish in
whatever unit their ``desc/channels/channel/unit`` says — microvolts is the
convention (the replay tool, BrainVision, most amplifiers), but some publish
volts. The live engine converts each channel with :func:`scale_to_microvolts`, so
a stream in volts is not fed to the model a million times too small.
"""

from __future__ import annotations

from beira_rt._logging import logger

__all__ = ["MODEL_UNIT", "scale_to_microvolts", "stream_scales"]

#: The unit of EEG inside beira-rt (trainer, bundle statistics, live engine).
MODEL_UNIT = "microvolts"

_FACTORS = {
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "mv": 1e3,
    "millivolt": 1e3,
    "millivolts": 1e3,
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,  # Greek mu, not the micro sign
    "microvolt": 1.0,
    "microvolts": 1.0,
    "nv": 1e-3,
    "nanovolt": 1e-3,
    "nanovolts": 1e-3,
}


def scale_to_microvolts(unit: str | None) -> float | None:
    """Factor from ``unit`` to microvolts, or ``None`` when the unit is empty or unknown.

    Case and surrounding blanks are ignored: ``'V'``, ``'volts'`` -> 1e6; ``'uV'``,
    ``'µV'``, ``'microvolts'`` -> 1; ``'mV'`` -> 1e3; ``'nV'`` -> 1e-3.
    """
    if unit is None:
        return None
    return _FACTORS.get(unit.strip().casefold())


def stream_scales(units: list[str | None] | None, labels: list[str], stream: str) -> list[float]:
    """Per-channel factors to microvolts for a stream's channel ``units``.

    A channel with no unit or an unknown one is taken as microvolts (the LSL
    convention) and a single warning names those channels.
    """
    units = list(units) if units is not None else [None] * len(labels)
    scales, unknown = [], []
    for label, unit in zip(labels, units, strict=True):
        factor = scale_to_microvolts(unit)
        if factor is None:
            unknown.append(f"{label} ({unit!r})" if unit else label)
            factor = 1.0
        scales.append(factor)
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        logger.warning(
            "%s gives no known unit for %d channel(s): %s; taking them as microvolts (the LSL convention)",
            stream,
            len(unknown),
            shown,
        )
    return scales
