"""EEG unit conversion to the model's microvolts."""

from __future__ import annotations

import logging

import pytest

from beira_rt.units import scale_to_microvolts, stream_scales


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("V", 1e6),
        (" volts ", 1e6),
        ("mV", 1e3),
        ("uV", 1.0),
        ("µV", 1.0),
        ("μV", 1.0),
        ("Microvolts", 1.0),
        ("nV", 1e-3),
    ],
)
def test_known_units(unit, factor):
    assert scale_to_microvolts(unit) == factor


@pytest.mark.parametrize("unit", [None, "", "a.u.", "T"])
def test_unknown_units_give_none(unit):
    assert scale_to_microvolts(unit) is None


def test_stream_scales_warns_once_naming_unknown_channels(caplog):
    with caplog.at_level(logging.WARNING, logger="beira_rt"):
        scales = stream_scales(
            ["V", None, "a.u.", "microvolts"], ["Fp1", "Fp2", "F3", "F4"], "the stream 'x'"
        )
    assert scales == [1e6, 1.0, 1.0, 1.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Fp2" in warnings[0] and "F3 ('a.u.')" in warnings[0]
    assert "Fp1" not in warnings[0]
