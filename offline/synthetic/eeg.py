"""Scalp EEG of the synthetic recordings: lead field, oscillatory sources and artefacts.

Everything here works on plain arrays in volts at the EEG rate; writing the
EEGLAB file is done by :mod:`offline.synthetic.writer`.

The head is a unit sphere. Electrode directions come from MNE's template
10-20 montage (a sphere is fitted to it), the reference is FCz (as on the
BrainCap MR used for CWL), and each cortical source is a current dipole inside
the sphere whose scalp pattern is the infinite-medium dipole potential. That
pattern is smooth and dipolar, which is all the spatial-unmixing block of BEIRA
needs to find it; it is not meant to be a realistic three-shell head model.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np
from scipy import signal

#: The 30 EEG channels of the CWL recordings (BrainCap MR 32, in its order, without EOG/ECG).
CWL_EEG_CHANNELS = (
    "Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
    "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz", "Oz",
    "FC1", "FC2", "CP1", "CP2", "FC5", "FC6", "CP5", "CP6", "TP9", "TP10",
)  # fmt: skip
#: Channels that follow the EEG in a CWL file: EOG, ECG and the six carbon-wire loops.
CWL_AUX_CHANNELS = ("EOG", "ECG", "CW1", "CW2", "CW3", "CW4", "CW5", "CW6")
_MONTAGES = ("colin27_1020", "standard_1020")


@dataclass(frozen=True)
class SourceSpec:
    """One oscillatory cortical source.

    Attributes
    ----------
    name : str
        Short label used in the ground truth.
    freq : float
        Centre frequency in Hz.
    bandwidth : float
        Half-width of the band in Hz (the oscillation is band-limited noise).
    site : str
        10-20 electrode above which the dipole sits.
    depth : float
        Dipole distance from the head centre (unit-sphere radius = 1).
    amplitude : float
        RMS amplitude in volts at the electrode where its pattern peaks, at unit envelope.
    """

    name: str
    freq: float
    bandwidth: float
    site: str
    depth: float
    amplitude: float


#: The default sources: theta, alpha, two betas and a low gamma, each with its own band and site.
DEFAULT_SOURCES = (
    SourceSpec("theta_frontal", 6.0, 1.5, "Fz", 0.55, 15e-6),
    SourceSpec("alpha_occipital", 10.0, 1.5, "Oz", 0.65, 20e-6),
    SourceSpec("beta_left", 18.0, 2.0, "C3", 0.65, 12e-6),
    SourceSpec("beta_right", 24.0, 2.5, "C4", 0.65, 12e-6),
    SourceSpec("gamma_temporal", 32.0, 3.0, "T7", 0.7, 10e-6),
)


def electrode_directions(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Unit vectors of 10-20 electrodes on a sphere fitted to MNE's template montage.

    Parameters
    ----------
    names : sequence of str
        Electrode names present in the 10-20 template (e.g. ``"Cz"``, ``"FCz"``).

    Returns
    -------
    array of shape (n_names, 3)
        Directions from the fitted sphere centre (x right, y front, z up).
    """
    available = mne.channels.get_builtin_montages()
    montage_name = next(m for m in _MONTAGES if m in available)
    pos = mne.channels.make_standard_montage(montage_name).get_positions()["ch_pos"]
    xyz = np.array(list(pos.values()))
    # |x - c|^2 = r^2  <=>  2 x.c + (r^2 - |c|^2) = |x|^2, linear in (c, r^2 - |c|^2)
    design = np.column_stack([2 * xyz, np.ones(len(xyz))])
    sol, *_ = np.linalg.lstsq(design, (xyz**2).sum(axis=1), rcond=None)
    centre = sol[:3]
    out = np.array([pos[n] for n in names]) - centre
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def dipole_pattern(
    electrodes: np.ndarray, reference: np.ndarray, position: np.ndarray, moment: np.ndarray
) -> np.ndarray:
    """Scalp potential of a current dipole (infinite medium), referenced and peak-normalised.

    Parameters
    ----------
    electrodes : array of shape (n_channels, 3)
        Electrode positions on the unit sphere.
    reference : array of shape (3,)
        Position of the reference electrode.
    position, moment : arrays of shape (3,)
        Dipole position (inside the sphere) and moment direction.

    Returns
    -------
    array of shape (n_channels,)
        The pattern, scaled so that its largest absolute value is 1.
    """

    def potential(points: np.ndarray) -> np.ndarray:
        diff = points - position
        return diff @ moment / np.linalg.norm(diff, axis=-1) ** 3

    pattern = potential(electrodes) - potential(reference[None, :])[0]
    return pattern / np.abs(pattern).max()


def lead_field(
    rng: np.random.Generator, sources: tuple[SourceSpec, ...], eeg_names: tuple[str, ...]
) -> np.ndarray:
    """Scalp patterns of the sources (one column per source).

    Each dipole sits below its ``site`` at ``depth``, pointing outwards with a
    random tilt of up to ~25 degrees (the subject-specific part).

    Returns
    -------
    array of shape (n_channels, n_sources)
        Peak-normalised patterns (dimensionless).
    """
    electrodes = electrode_directions(eeg_names)
    reference = electrode_directions(["FCz"])[0]
    sites = electrode_directions([s.site for s in sources])
    columns = []
    for src, site in zip(sources, sites, strict=True):
        moment = site + 0.45 * rng.standard_normal(3)
        columns.append(
            dipole_pattern(electrodes, reference, src.depth * site, moment / np.linalg.norm(moment))
        )
    return np.column_stack(columns)


def narrowband_noise(
    rng: np.random.Generator, n: int, sfreq: float, freq: float, half_width: float
) -> np.ndarray:
    """Band-limited Gaussian noise of unit RMS, shape (n,), band ``freq +/- half_width`` Hz."""
    sos = signal.butter(2, [freq - half_width, freq + half_width], btype="bandpass", fs=sfreq, output="sos")
    x = signal.sosfiltfilt(sos, rng.standard_normal(n + 2000))[1000:-1000]
    return x / np.sqrt(np.mean(x**2))


def colored_noise(
    rng: np.random.Generator, shape: tuple[int, int], sfreq: float, exponent: float = 1.0, fmin: float = 0.5
) -> np.ndarray:
    """Noise with a ``1/f**exponent`` power spectrum above ``fmin``, unit RMS per row.

    Returns
    -------
    array of shape ``shape`` (n_rows, n_samples)
    """
    n = shape[1]
    spec = np.fft.rfft(rng.standard_normal(shape), axis=1)
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec *= 1.0 / np.maximum(freqs, fmin) ** (exponent / 2.0)
    x = np.fft.irfft(spec, n=n, axis=1)
    x -= x.mean(axis=1, keepdims=True)
    return x / x.std(axis=1, keepdims=True)


def blink_train(
    rng: np.random.Generator, n: int, sfreq: float, allowed: np.ndarray, rate: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """Eye blinks (unit peak) at Poisson times where ``allowed`` is true.

    Parameters
    ----------
    allowed : array of bool, shape (n,)
        Samples where a blink may start (eyes open).
    rate : float
        Mean blinks per second while allowed.

    Returns
    -------
    wave : array of shape (n,)
        Sum of blink waveforms (peak 1, ~0.35 s long).
    onsets : array of float
        Blink onsets in seconds.
    """
    wave = np.zeros(n)
    length = int(0.4 * sfreq)
    tt = np.arange(length) / sfreq
    shape = (tt / 0.1) ** 2 * np.exp(-tt / 0.05)
    shape /= shape.max()
    candidates = np.flatnonzero(rng.random(n) < rate / sfreq)
    onsets = []
    last = -np.inf
    for start in candidates:
        if not allowed[start] or start - last < 1.0 * sfreq:
            continue
        stop = min(n, start + length)
        wave[start:stop] += rng.uniform(0.7, 1.3) * shape[: stop - start]
        onsets.append(start / sfreq)
        last = start
    return wave, np.array(onsets)


def cardiac(
    rng: np.random.Generator, n: int, sfreq: float, bpm: float = 64.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECG trace (volts), pulse-artefact trace (unit peak) and R-peak times (s).

    Heart rate varies slowly (respiratory sinus arrhythmia plus noise) around ``bpm``.
    The pulse (ballistocardiogram) wave follows each R peak by ~0.2 s.
    """
    mean_rr = 60.0 / bpm
    r_times = []
    t = rng.uniform(0.1, mean_rr)
    while t < n / sfreq:
        r_times.append(t)
        t += mean_rr * (1 + 0.05 * np.sin(2 * np.pi * 0.25 * t) + 0.03 * rng.standard_normal())
    r_times = np.array(r_times)
    ecg = np.zeros(n)
    bcg = np.zeros(n)
    w = np.arange(-int(0.3 * sfreq), int(0.6 * sfreq))
    tt = w / sfreq
    beat = (
        1.0 * np.exp(-0.5 * (tt / 0.012) ** 2)
        - 0.2 * np.exp(-0.5 * ((tt - 0.03) / 0.01) ** 2)
        + 0.15 * np.exp(-0.5 * ((tt + 0.18) / 0.03) ** 2)
        + 0.3 * np.exp(-0.5 * ((tt - 0.28) / 0.05) ** 2)
    )
    pulse = np.sin(2 * np.pi * (tt - 0.2) / 0.5) * np.exp(-0.5 * ((tt - 0.3) / 0.1) ** 2)
    pulse /= np.abs(pulse).max()
    for r in r_times:
        idx = round(r * sfreq) + w
        ok = (idx >= 0) & (idx < n)
        ecg[idx[ok]] += 1e-3 * beat[ok]
        bcg[idx[ok]] += pulse[ok]
    return ecg, bcg, r_times


def blink_weights(eeg_names: tuple[str, ...]) -> np.ndarray:
    """How strongly a blink reaches each EEG channel (1 at the eyes, decaying backwards), shape (n,)."""
    electrodes = electrode_directions(eeg_names)
    eyes = np.array([0.0, 0.95, -0.3])
    eyes /= np.linalg.norm(eyes)
    return np.exp(-np.linalg.norm(electrodes - eyes, axis=1) / 0.3)
