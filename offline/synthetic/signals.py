"""Assemble the channel data of a synthetic CWL recording (EEG, EOG, ECG, CW1..CW6) in volts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline.synthetic import eeg as eegsim
from offline.synthetic.hidden import HiddenState


@dataclass
class EEGSignals:
    """Channel data and the events it contains.

    Attributes
    ----------
    data : array of shape (n_channels, n_samples)
        Volts; rows follow ``ch_names``.
    ch_names, ch_types : tuple of str
        Channel names and MNE types (eeg, eog, ecg, misc).
    lead_field : array of shape (n_eeg, n_sources)
        Peak-normalised source patterns on the EEG channels.
    r_peaks, blinks : array of float
        Times (s) of the R peaks and blink onsets.
    """

    data: np.ndarray
    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    lead_field: np.ndarray
    r_peaks: np.ndarray
    blinks: np.ndarray


def synthesize_eeg(
    rng: np.random.Generator,
    hidden: HiddenState,
    n_samples: int,
    sfreq: float,
    sources: tuple[eegsim.SourceSpec, ...],
    eyes_open: np.ndarray,
    rp_times: np.ndarray,
    rp: np.ndarray,
    background_uv: float = 8.0,
    line_freq: float = 50.0,
) -> EEGSignals:
    """Scalp EEG, EOG, ECG and carbon-wire channels (gradient-free, as after MR correction).

    EEG = sources (lead field x envelope x band-limited oscillation) + spatially
    correlated 1/f background + sensor noise + blinks (frontal, eyes open only)
    + a small residual pulse artefact + power-line noise (``line_freq`` and its
    3rd harmonic). EOG sees the blinks, ECG the heart, CW1..CW6 the pulse and the
    head motion (time derivative of the realignment parameters).

    Parameters
    ----------
    rng : numpy.random.Generator
    hidden : HiddenState
        Source envelopes on the slow grid.
    n_samples : int
        EEG length in samples at ``sfreq``.
    sources : tuple of SourceSpec
        One per row of ``hidden.amplitude``.
    eyes_open : array of bool, shape (n_samples,)
    rp_times, rp : arrays of shape (n_volumes,) and (n_volumes, 6)
        Volume times (s) and motion parameters, for the CW channels.
    background_uv : float
        RMS of the 1/f background per EEG channel in microvolts.
    """
    names = eegsim.CWL_EEG_CHANNELS
    n_eeg = len(names)
    t = np.arange(n_samples) / sfreq
    lf = eegsim.lead_field(rng, sources, names)
    osc = np.empty((len(sources), n_samples))
    for k, src in enumerate(sources):
        env = np.interp(t, hidden.times, hidden.amplitude[k])
        osc[k] = src.amplitude * env * eegsim.narrowband_noise(rng, n_samples, sfreq, src.freq, src.bandwidth)
    eeg = lf @ osc

    # background: 1/f activity of 24 random dipoles, so that it is spatially smooth
    electrodes = eegsim.electrode_directions(names)
    reference = eegsim.electrode_directions(["FCz"])[0]
    n_bg = 24
    bg_patterns = np.empty((n_eeg, n_bg))
    for j in range(n_bg):
        direction = rng.standard_normal(3)
        direction[2] = abs(direction[2])
        direction /= np.linalg.norm(direction)
        bg_patterns[:, j] = eegsim.dipole_pattern(
            electrodes, reference, rng.uniform(0.4, 0.75) * direction, direction
        )
    background = bg_patterns @ eegsim.colored_noise(rng, (n_bg, n_samples), sfreq, exponent=1.0)
    background *= background_uv * 1e-6 / background.std(axis=1, keepdims=True)
    eeg += background + 1e-6 * rng.standard_normal((n_eeg, n_samples))

    blinks, blink_onsets = eegsim.blink_train(rng, n_samples, sfreq, eyes_open)
    eeg += 120e-6 * eegsim.blink_weights(names)[:, None] * blinks[None, :]
    ecg, pulse, r_peaks = eegsim.cardiac(rng, n_samples, sfreq)
    bcg_pattern = eegsim.dipole_pattern(
        electrodes,
        reference,
        np.array([0.0, -0.3, 0.3]),
        np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0]),
    )
    eeg += 3e-6 * bcg_pattern[:, None] * pulse[None, :]

    eog = 150e-6 * blinks + 0.5 * background[0] + 2e-6 * rng.standard_normal(n_samples)
    ecg = ecg + 5e-6 * rng.standard_normal(n_samples)
    # carbon-wire loops: pulse and head motion (induced voltage ~ d(motion)/dt)
    motion = np.stack([np.interp(t, rp_times, rp[:, j]) for j in range(6)])
    dmotion = np.gradient(motion, axis=1) * sfreq
    cw = np.empty((6, n_samples))
    for j in range(6):
        mix = rng.standard_normal(6)
        cw[j] = (
            rng.uniform(10e-6, 30e-6) * pulse
            + 20e-6 * (mix @ dmotion) / max(np.abs(dmotion).max(), 1e-12)
            + 2e-6 * rng.standard_normal(n_samples)
        )
    data = np.vstack([eeg, eog[None], ecg[None], cw])
    phase = rng.uniform(0, 2 * np.pi, data.shape[0])[:, None]
    gain = rng.uniform(1e-6, 5e-6, data.shape[0])[:, None]
    data += gain * (
        np.sin(2 * np.pi * line_freq * t + phase) + 0.3 * np.sin(2 * np.pi * 3 * line_freq * t + phase)
    )
    ch_names = names + eegsim.CWL_AUX_CHANNELS
    ch_types = ("eeg",) * n_eeg + ("eog", "ecg") + ("misc",) * 6
    return EEGSignals(data=data, ch_names=ch_names, ch_types=ch_types, lead_field=lf, r_peaks=r_peaks,
                      blinks=blink_onsets)  # fmt: skip
