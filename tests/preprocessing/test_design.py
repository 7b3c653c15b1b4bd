"""Filter design: notch/band-pass/anti-alias choices per rate, measured responses, validation."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from beira_rt.config import PreprocessingConfig
from beira_rt.preprocessing import CausalPreprocessor, SosCascade, check_stable, design_filters

from ._signals import amplitude_at

CFG = PreprocessingConfig()


def db(x):
    return 20 * np.log10(np.abs(x))


@pytest.mark.parametrize(
    ("sfreq_in", "harmonics", "expected"),
    [
        (1000.0, True, tuple(50.0 * k for k in range(1, 10))),
        (250.0, True, (50.0, 100.0)),
        (512.0, True, (50.0, 100.0, 150.0, 200.0, 250.0)),
        (1000.0, False, (50.0,)),
    ],
)
def test_notch_frequencies_follow_the_input_nyquist(sfreq_in, harmonics, expected):
    design = design_filters(dataclasses.replace(CFG, notch_harmonics=harmonics), sfreq_in)
    assert design.notch_freqs == expected
    assert len(design.sos_band) == len(expected) + CFG.filter_order  # one section per notch


def test_notch_at_5khz_and_no_notch():
    design = design_filters(CFG, 5000.0)
    assert len(design.notch_freqs) == 49 and design.notch_freqs[-1] == 2450.0
    assert design_filters(dataclasses.replace(CFG, notch_freq=None), 1000.0).notch_freqs == ()


def test_notch_that_does_not_fit_is_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="beira_rt"):
        design = design_filters(CFG, 100.0)
    assert design.notch_freqs == ()
    assert "50 Hz notch" in caplog.text and "Nyquist frequency 50 Hz" in caplog.text


def test_h_freq_is_clipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="beira_rt"):
        design = design_filters(CFG, 200.0)
    assert design.h_freq == pytest.approx(90.0)
    assert "clipped to 90 Hz" in caplog.text
    assert any("clipped to 90 Hz" in note for note in design.notes)
    assert design_filters(CFG, 1000.0).h_freq == 100.0  # no clipping: 100 < 450
    assert design_filters(CFG, 1000.0).notes == ()


def test_describe_in_plain_words():
    text = design_filters(CFG, 1000.0).describe()
    for words in (
        "causal 4th-order Butterworth band-pass 1-100 Hz",
        "notch 50 Hz and 8 harmonics up to 450 Hz",
        "anti-alias 8th-order elliptic low-pass 40 Hz",
        "1000 -> 100 Hz",
        "band reaching the model 1-40 Hz",
        "group delay",
    ):
        assert words in text
    same_rate = design_filters(dataclasses.replace(CFG, l_freq=None, h_freq=None), 100.0).describe()
    assert "no band-pass" in same_rate and "no resampling" in same_rate and "no notch" in same_rate


def test_describe_is_logged_once_when_a_preprocessor_is_built(caplog):
    with caplog.at_level(logging.INFO, logger="beira_rt"):
        CausalPreprocessor(CFG, 512.0, 30)
    lines = [r.getMessage() for r in caplog.records if "Preprocessing 30 channels" in r.getMessage()]
    assert len(lines) == 1
    assert "common average reference" in lines[0] and "512 -> 100 Hz" in lines[0]


@pytest.mark.parametrize(
    "sfreq_in", [100.0, 110.0, 200.0, 250.0, 256.0, 500.0, 512.0, 1000.0, 2048.0, 5000.0]
)
def test_every_design_is_stable(sfreq_in):
    design = design_filters(CFG, sfreq_in)
    for sos in (design.sos_band, design.sos_aa):
        for section in sos:
            assert np.abs(np.roots(section[3:])).max() < 1


def test_unstable_or_broken_sections_are_rejected():
    unstable = np.array([[1.0, 0.0, 0.0, 1.0, -2.1, 1.1]])  # poles at 1 and 1.1
    with pytest.raises(ValueError, match=r"unstable: section 0 has a pole of magnitude 1\.100000"):
        check_stable(unstable, "test filter")
    with pytest.raises(ValueError, match="non-finite"):
        check_stable(np.array([[np.nan, 0, 0, 1, 0, 0]]), "test filter")
    with pytest.raises(ValueError, match=r"shape \(n_sections, 6\)"):
        check_stable(np.zeros((2, 5)), "test filter")


def test_anti_alias_protects_the_model_band():
    design = design_filters(CFG, 1000.0)
    # everything that would alias into 0-40 Hz at 100 Hz (>= 60 Hz) is >= 75 dB down
    assert db(design.frequency_response(np.linspace(60, 499, 400))).max() < -75
    # the band reaching the model is flat within 0.5 dB (Butterworth edge, notch skirt, 0.1 dB ripple)
    assert np.abs(db(design.frequency_response(np.linspace(2, 38, 200)))).max() < 0.5
    assert db(design.frequency_response(np.array([50.0])))[0] < -100  # notch plus anti-alias


@pytest.mark.parametrize(
    ("cfg", "sfreq_in", "words"),
    [
        (
            dataclasses.replace(CFG, l_freq=45.0),
            1000.0,
            "l_freq 45 Hz is not below the anti-alias cutoff 40 Hz",
        ),
        (dataclasses.replace(CFG, l_freq=46.0, h_freq=None), 100.0, "below the band-pass high edge 45 Hz"),
        (CFG, 99.5, "99.5 Hz is below the model rate 100 Hz"),
        (CFG, float("inf"), "positive finite number in Hz, got inf"),
        (CFG, True, "must be a number in Hz, got bool True"),
    ],
)
def test_bad_designs_are_named(cfg, sfreq_in, words):
    with pytest.raises(ValueError, match=words):
        design_filters(cfg, sfreq_in)


def test_design_needs_a_preprocessing_config():
    with pytest.raises(TypeError, match="PreprocessingConfig"):
        design_filters({"sfreq": 100.0}, 1000.0)


# ------------------------------------------------------------------ measured on real signals


def sine_through(
    cfg: PreprocessingConfig, sfreq_in: float, freq: float, seconds: float, settle: float
) -> float:
    """Measured gain of the whole chain (one channel, no CAR) for a sinusoid, from the settled part."""
    t = np.arange(int(seconds * sfreq_in)) / sfreq_in
    x = np.sin(2 * np.pi * freq * t + 0.3)[None, :]
    y = CausalPreprocessor(dataclasses.replace(cfg, car=False), sfreq_in, 1).process(x)[0]
    start = int(settle * cfg.sfreq)
    return float(np.abs(amplitude_at(y[start:], freq, cfg.sfreq)))


def test_notch_removes_the_line_frequency():
    # a 250 Hz model rate keeps 50 Hz below the anti-alias edge (100 Hz), so the notch alone acts
    cfg = dataclasses.replace(CFG, sfreq=250.0)
    with_notch = sine_through(cfg, 1000.0, 50.0, seconds=8, settle=4)
    without = sine_through(dataclasses.replace(cfg, notch_freq=None), 1000.0, 50.0, seconds=8, settle=4)
    assert without > 0.95  # 50 Hz passes the 1-100 Hz band-pass
    assert db(with_notch / without) < -60
    # 10 Hz is left alone by the notch
    assert sine_through(cfg, 1000.0, 10.0, 8, 4) == pytest.approx(
        sine_through(dataclasses.replace(cfg, notch_freq=None), 1000.0, 10.0, 8, 4), rel=2e-3
    )


def test_notch_harmonic_is_removed_at_the_input_rate():
    # the 150 Hz harmonic, measured after the notch/band-pass stage at 1000 Hz
    t = np.arange(4000) / 1000.0
    x = np.sin(2 * np.pi * 150.0 * t)[None, :]
    notched = SosCascade(design_filters(CFG, 1000.0).sos_band, 1).process(x)[0, 2000:]
    plain = SosCascade(design_filters(dataclasses.replace(CFG, notch_freq=None), 1000.0).sos_band, 1)
    reference = plain.process(x)[0, 2000:]
    assert (
        db(np.abs(amplitude_at(notched, 150.0, 1000.0)) / np.abs(amplitude_at(reference, 150.0, 1000.0)))
        < -60
    )


@pytest.mark.parametrize("sfreq_in", [250.0, 1000.0])
def test_band_pass_keeps_10_hz_and_removes_0_2_hz(sfreq_in):
    assert abs(db(sine_through(CFG, sfreq_in, 10.0, seconds=10, settle=4))) < 0.25
    assert db(sine_through(CFG, sfreq_in, 0.2, seconds=60, settle=20)) < -40
