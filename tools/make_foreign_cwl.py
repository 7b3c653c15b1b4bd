"""Write synthetic subjects in the CWL layout from a second, independent generative model.

The project's own generator (``offline/synthetic``) was written by the people who tune
the trainer. This one was written without looking at it, so that the trainer can be
checked on data whose hidden structure nobody tuned it for. It writes exactly the
files :func:`offline.loader.load_cwl_subject` reads (see :func:`offline.loader.cwl_paths`),
a shared atlas and a ground-truth JSON per subject.

Generative model
----------------
Everything is drawn from one random stream seeded by ``(seed, subject)``.

EEG (1000 Hz, microvolts, FCz reference). A 3-layer spherical head fitted to the
``standard_1020`` electrode positions (MNE's bundled template, ``colin27_1020`` in
newer MNE) and :func:`mne.make_forward_solution` give the lead fields of point dipoles.
6-10 *cortical sources* sit at random positions (55-80 % of the head radius, upper
half of the head) with mostly radial random orientations. Source ``i`` is Gaussian
noise band-passed around a centre frequency ``f_i`` with a Gaussian spectral window
of FWHM ``b_i`` (1-8 Hz, at most ``f_i``), multiplied by a positive slow amplitude
``a_i(t) = exp(s_i g_i(t) + c_i A(t) + e_i EC(t))``: ``g_i`` is white noise smoothed
by a Gaussian kernel of s.d. ``tau_i`` (log-uniform 3-30 s, ``s_i`` 0.3-0.6), ``A`` a
shared slow *arousal* process (time scale 15-30 s) with loadings ``c_i`` of +-0.2-0.5
on half of the sources, and ``EC`` the eyes-closed indicator of alternating 20-40 s
eyes-open / eyes-closed blocks, which raises sources in 7-14 Hz (``e_i`` 0.4-0.9).
Source 0 is a posterior alpha rhythm (8-12 Hz); the others have log-uniform centre
frequencies in 2-40 Hz. Each dipole moment gives its source, at unit amplitude, a
drawn 4-12 uV r.m.s. on its strongest channel (times ``(12 / f) ** 0.7`` above 12 Hz).
Added to the sources: 1/f^beta background (beta 0.8-1.3, 8-15 uV r.m.s.) with the
sensor covariance of 200 random dipoles, white sensor noise (1-3 uV), slow drifts,
blinks and saccades on the frontal channels and EOG in eyes-open blocks (slow roving
eye movements with the eyes closed), a ballistocardiogram residual (4-10 uV) on every
channel time-locked to the R peaks of the ECG channel, and artefacts proportional to
the head velocity (respiration, cardiac pulses, sudden jerks about once a minute),
which the carbon-wire loops ``CW1``-``CW6`` pick up ~5x more strongly than the EEG.

ROI drive. Each source's *slow feature* ``x_i(t)`` is the Hilbert envelope of its
dipole moment, averaged in 0.1-s blocks, smoothed by a 0.5-s Gaussian and divided by
its median. Each of the 8 ROIs is driven by 1-3 sources:
``drive = sum_j w_j z(phi(x_j))``, with weights of random sign and magnitude 0.5-1.5,
``z`` a z-score over the run and ``phi`` a per-ROI nonlinearity from {amplitude
``x``, log amplitude ``log x``, power ``x**2``, saturating ``tanh x``}. The right ROI
of a pair shares the left ROI's first source and weight with probability 0.7.
Arousal reaches the ROIs only through the sources it modulates, so every ROI drive is
a function of the EEG sources alone (which need not all drive an ROI).

BOLD. Per ROI a double-gamma HRF ``h(t) = G(t; 1 + p/0.9, 0.9) - r G(t; 1 + q/0.9, 0.9)``
(``G`` the gamma density with shape and scale in s; peak ``p`` 4-7 s, undershoot peak
``q = p + 6-10`` s, ratio ``r`` 0.1-0.35) convolves the drive causally; the run is
simulated from 40 s before the EEG starts, so the first volumes see a settled
response. The response at each volume onset is scaled to a drawn s.d. of 0.4-0.8 %.

fMRI (3-mm MNI grid 61x72x61, TR 1.95 s, first volume 1-3 s after the EEG starts,
1-2 volumes after the last marker). A fixed ellipsoid anatomy (cortex, white matter,
ventricles, thalami, brain stem and the 8 target ROIs at roughly their MNI positions;
label values deliberately not Harvard-Oxford's) gives a smooth baseline image ``S0``
(tissue contrast +-10 %, a bias field). Voxels of ROI ``k`` carry
``S0 (1 + (bold_k + n_k) / 100)`` with ``n_k`` AR(1) physiological noise (0.35-0.9
times the BOLD s.d., coefficient 0.3-0.8 per TR, 20-60 % of its variance shared with
the other side). Every brain voxel carries a global fluctuation (a slow process plus
the haemodynamic response to arousal), scanner drift (linear plus quadratic, with an
anterior-posterior gradient), a spin-history dip proportional to the framewise
displacement, and, to first order, the intensity change of the true head motion
(``-grad S0 . displacement``). Every voxel gets Gaussian thermal noise of s.d. 10
(~1.2 % of grey matter; its magnitude outside the head). The motion file holds the
true motion relative to the first volume plus realignment-estimation noise.

Ceilings. ``ceiling[roi]`` is the Pearson r, over the volumes matched to markers,
between the ROI series the project's loader returns for the written files and their
EEG-determined part: the noiseless ROI BOLD put through the same linear pipeline (the
loader's smoothing and ROI mean of images holding ``S0 / 100`` in one ROI each,
weighted by the BOLD, then the loader's detrend and regression of the *noisy*
image's confounds). ``ceiling_test`` is the same over the volumes in the last 60 s.
Short runs have lower and more variable ceilings: the detrend and the 7 confounds
remove much of a slow signal when the run holds only a few of its cycles.

Usage
-----
    python tools/make_foreign_cwl.py --out DIR --subjects trio1 trio2 --duration 300 --seed 0
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mne
import nibabel as nib
import numpy as np
from nilearn import image
from scipy import fft, ndimage, signal, special, stats

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from beira_rt.config import load_config  # noqa: E402
from offline.loader import cwl_paths, load_cwl_subject  # noqa: E402
from offline.loader import fmri as loader_fmri  # noqa: E402
from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE, load_synthetic_subject  # noqa: E402
from offline.synthetic.writer import fix_mat_header  # noqa: E402

#: The 30 CWL scalp channels (written to the file in a per-seed shuffled order).
EEG_CHANNELS = tuple(
    "Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 Fz Cz Pz Oz FC1 FC2 CP1 CP2 FC5 FC6 CP5 CP6 TP9 TP10".split()
)
CW_CHANNELS = tuple(f"CW{k}" for k in range(1, 7))
REFERENCE = "FCz"
# newer MNE calls its bundled standard_1020 template colin27_1020 (same positions; the old name warns)
MONTAGE = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"

FS = 1000.0  # EEG rate, Hz
FS_SLOW = 10.0  # rate of the slow processes (amplitudes, features, drives), Hz
BLOCK = int(FS / FS_SLOW)  # EEG samples per slow sample
TR = 1.95  # s
PRE = 40.0  # s simulated before the EEG starts (the HRF's history)
POST = 6.0  # s simulated after it (the volumes after the last marker)
TEST_WINDOW = 60.0  # ceiling_test: volumes in the last 60 s of the EEG
N_BACKGROUND = 200  # dipoles whose sensor covariance the 1/f background has

GRID_SHAPE = (61, 72, 61)
GRID_AFFINE = np.array([[-3.0, 0, 0, 90], [0, 3.0, 0, -126], [0, 0, 3.0, -72], [0, 0, 0, 1]])
VOXEL_MM = (3.0, 3.0, 3.0)
BRAIN_CENTRE = np.array([0.0, -18.0, 12.0])  # mm, MNI
BRAIN_RADII = np.array([68.0, 86.0, 66.0])  # mm
CORTEX_DEPTH = 0.1  # outer fraction of the brain ellipsoid labelled cortex
THERMAL_SD = 10.0  # thermal noise per voxel and volume, image units (~1.2 % of grey matter)

#: The 8 target ROIs (the default data config's), as (left, right) pairs.
ROIS = (
    "Left Pallidum", "Right Pallidum", "Left Caudate", "Right Caudate",
    "Left Putamen", "Right Putamen", "Left Accumbens", "Right Accumbens",
)  # fmt: skip
NONLINEARITIES = ("amplitude", "log_amplitude", "power", "saturating")

# Deep structures painted over the brain ellipsoid, in order (later ones win):
# (name without hemisphere, centre with |x| in mm, semi-axes in mm, tilt about x in degrees)
_STRUCTURES = (
    ("Lateral Ventricle", (5.0, -10.0, 18.0), (4.0, 22.0, 8.0), 0.0),
    ("Thalamus", (11.0, -18.0, 7.0), (7.0, 10.0, 7.0), 0.0),
    ("Caudate", (13.0, 6.0, 12.0), (5.0, 15.0, 8.0), 30.0),
    ("Putamen", (26.0, 2.0, 1.0), (5.5, 15.0, 9.0), 0.0),
    ("Pallidum", (19.0, -4.0, -1.0), (4.0, 8.0, 5.0), 0.0),
    ("Accumbens", (10.0, 11.0, -8.0), (5.0, 6.0, 5.0), 0.0),
)
# Atlas label values (the position in this list), deliberately not Harvard-Oxford's
_LABELS = (
    "Background", "Right Putamen", "Left Cerebral Cortex", "Brain-Stem", "Left Accumbens",
    "Right Thalamus", "Left Caudate", "Right Cerebral White Matter", "Left Pallidum",
    "Right Lateral Ventricle", "Right Accumbens", "Left Thalamus", "Right Caudate",
    "Left Cerebral White Matter", "Left Putamen", "Right Cerebral Cortex", "Right Pallidum",
    "Left Lateral Ventricle",
)  # fmt: skip
# Baseline EPI intensity per tissue (grey matter brighter than white matter, CSF brightest)
_TISSUE_INTENSITY = {
    "Cerebral Cortex": 850.0, "Cerebral White Matter": 650.0, "Lateral Ventricle": 1150.0,
    "Thalamus": 760.0, "Brain-Stem": 700.0, "Caudate": 820.0, "Putamen": 800.0,
    "Pallidum": 720.0, "Accumbens": 830.0,
}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """One cortical source of the hidden model (positions in m, head coordinates)."""

    freq_hz: float
    bandwidth_hz: float
    timescale_s: float
    log_amplitude_sd: float
    arousal_loading: float
    eyes_closed_gain: float
    peak_channel_rms_uv: float
    moment_nam: float
    position_m: tuple[float, float, float]
    orientation: tuple[float, float, float]


@dataclass(frozen=True)
class RoiModel:
    """How one ROI's BOLD is made."""

    sources: tuple[int, ...]
    weights: tuple[float, ...]
    nonlinearity: str
    hrf_peak_s: float
    hrf_undershoot_peak_s: float
    hrf_undershoot_ratio: float
    bold_sd_pct: float
    physio_sd_pct: float
    physio_ar1: float
    physio_shared_with_other_side: float


@dataclass(frozen=True)
class Timeline:
    """The time axes of one run.

    Attributes
    ----------
    duration : float
        EEG length in s.
    t_fast, t_slow : array
        Sample times (s from the EEG start) at ``FS`` from ``-PRE``, and at ``FS_SLOW``
        (centres of the ``BLOCK``-sample blocks of ``t_fast``).
    recorded : slice
        The samples of ``t_fast`` written to the EEG file.
    onsets : array
        Onsets (s) of every volume in the NIfTI.
    n_markers : int
        Volumes whose onset lies within the EEG (they get a marker).
    """

    duration: float
    t_fast: np.ndarray
    t_slow: np.ndarray
    recorded: slice
    onsets: np.ndarray
    n_markers: int


@dataclass(frozen=True)
class EEGSimulation:
    """What the EEG part hands to the fMRI part and to the files."""

    channels: list[str]  # file order
    data_uv: np.ndarray  # (n_channels, n_recorded)
    annotations: mne.Annotations
    sources: list[Source]
    features: np.ndarray  # slow features, (n_sources, n_slow)
    arousal: np.ndarray  # (n_slow,)
    position: np.ndarray  # true head position, (6, n_fast): mm, rad
    blocks: list[tuple[str, float, float]]  # eyes-open/closed blocks within the EEG
    truth: dict[str, Any]  # further drawn parameters, for the ground truth
    lead: np.ndarray  # the cortical sources' lead fields, (30, n_sources), EEG_CHANNELS rows, FCz reference


@dataclass(frozen=True)
class FMRISimulation:
    """The written fMRI data and what the ceilings need."""

    volumes: np.ndarray  # GRID_SHAPE + (n_volumes,), float32
    motion: np.ndarray  # realignment estimates, (n_volumes, 6)
    labels: np.ndarray  # atlas, GRID_SHAPE
    table: dict[int, str]
    s0: np.ndarray  # baseline image, GRID_SHAPE
    roi_masks: np.ndarray  # (8,) + GRID_SHAPE
    bold: np.ndarray  # noiseless ROI BOLD, % at every volume, (n_volumes, 8)
    models: dict[str, RoiModel]
    truth: dict[str, Any]


def make_rng(seed: int, subject: str) -> np.random.Generator:
    """The random stream of ``(seed, subject)``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(subject.encode("utf-8"))]))


def make_timeline(rng: np.random.Generator, duration: float) -> Timeline:
    """Sample axes and volume onsets: first volume 1-3 s in, 1-2 volumes after the EEG ends."""
    n_slow = int(np.ceil((PRE + duration + POST) * FS_SLOW))
    t_fast = np.arange(n_slow * BLOCK) / FS - PRE
    t_slow = (np.arange(n_slow) + 0.5) / FS_SLOW - PRE
    start = round(PRE * FS)
    recorded = slice(start, start + round(duration * FS))
    first = round(rng.uniform(1.0, 3.0), 3)
    n_markers = int(np.floor((duration - 1.0 / FS - first) / TR)) + 1
    onsets = first + TR * np.arange(n_markers + int(rng.integers(1, 3)))
    return Timeline(duration, t_fast, t_slow, recorded, onsets, n_markers)


# ---------------------------------------------------------------------------------------------------------
# signal building blocks


def smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """White noise smoothed by a Gaussian kernel of s.d. ``sigma`` samples, z-scored."""
    x = ndimage.gaussian_filter1d(rng.standard_normal(n), sigma)
    return (x - x.mean()) / x.std()


def band_noise(rng: np.random.Generator, n: int, freq: float, bandwidth: float) -> np.ndarray:
    """Unit-s.d. Gaussian noise at ``FS`` with a Gaussian spectral window (centre and FWHM in Hz)."""
    n_fft = fft.next_fast_len(n)
    spectrum = fft.rfft(rng.standard_normal(n_fft))
    f = fft.rfftfreq(n_fft, 1.0 / FS)
    spectrum *= np.exp(-0.5 * ((f - freq) / (bandwidth / (2 * np.sqrt(2 * np.log(2))))) ** 2)
    x = fft.irfft(spectrum, n_fft)[:n]
    return x / x.std()


def pink_noise(rng: np.random.Generator, n_rows: int, n: int, beta: float) -> np.ndarray:
    """Unit-s.d. rows at ``FS`` with a 1/f**beta spectrum above 0.5 Hz (flat below)."""
    n_fft = fft.next_fast_len(n)
    f = fft.rfftfreq(n_fft, 1.0 / FS)
    spectrum = fft.rfft(rng.standard_normal((n_rows, n_fft)), axis=1) / np.maximum(f, 0.5) ** (beta / 2)
    x = fft.irfft(spectrum, n_fft, axis=1)[:, :n]
    return x / x.std(axis=1, keepdims=True)


def slow_drifts(rng: np.random.Generator, n_rows: int, t: np.ndarray, t_slow: np.ndarray) -> np.ndarray:
    """Per-row slow drifts (20-s time scale, 5-20 uV s.d.) on the times ``t``."""
    size = rng.uniform(5.0, 20.0, (n_rows, 1))
    slow = [np.interp(t, t_slow, smooth_noise(rng, t_slow.size, 20.0 * FS_SLOW)) for _ in range(n_rows)]
    return size * np.array(slow)


def place_events(n: int, indices: np.ndarray, amplitudes: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A length-``n`` signal with ``amplitude * kernel`` starting at each index (which may be < 0)."""
    pad = kernel.size
    keep = (indices > -pad) & (indices < n)
    train = np.zeros(n + pad)
    np.add.at(train, indices[keep] + pad, amplitudes[keep])
    return signal.fftconvolve(train, kernel)[pad : pad + n]


def gaussian_bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    """``exp(-(t - centre)**2 / (2 width**2))``."""
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def double_gamma(t: np.ndarray, peak: float, undershoot_peak: float, ratio: float) -> np.ndarray:
    """Double-gamma HRF (gamma scale 0.9 s) with the given peak and undershoot times, peak 1."""
    h = stats.gamma.pdf(t, 1 + peak / 0.9, scale=0.9) - ratio * stats.gamma.pdf(
        t, 1 + undershoot_peak / 0.9, scale=0.9
    )
    return h / h.max()


def hrf_response(drive: np.ndarray, hrf: np.ndarray, t_slow: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Causal convolution of a slow drive with an HRF (both at ``FS_SLOW``), at the volume onsets."""
    response = np.convolve(drive, hrf)[: drive.size] / FS_SLOW
    return np.interp(onsets, t_slow, response)


def zscore(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / sd`` along the last axis."""
    return (x - x.mean(axis=-1, keepdims=True)) / x.std(axis=-1, keepdims=True)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays."""
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------------------------------
# EEG


def eyes_blocks(rng: np.random.Generator, duration: float) -> list[tuple[str, float, float]]:
    """Alternating eyes-open ("EO") / eyes-closed ("EC") blocks of 20-40 s over the simulated span."""
    blocks, t, label = [], -PRE, str(rng.choice(["EO", "EC"]))
    while t < duration + POST:
        length = float(rng.uniform(20.0, 40.0))
        blocks.append((label, t, t + length))
        t, label = t + length, "EC" if label == "EO" else "EO"
    return blocks


def head_model(
    rng: np.random.Generator, n_sources: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lead fields (V/Am, FCz reference) of oriented dipoles in a spherical head.

    Returns
    -------
    sources : array of shape (30, n_sources)
        Lead fields of the cortical sources, rows in ``EEG_CHANNELS`` order.
    background : array of shape (30, N_BACKGROUND)
        Lead fields of the background dipoles (random positions and orientations).
    positions, orientations : arrays of shape (n_sources, 3)
        Cortical source positions (m, head coordinates) and unit orientations.
    electrodes : array of shape (30, 3)
        Electrode positions, m (head coordinates).
    """
    info = mne.create_info([*EEG_CHANNELS, REFERENCE], FS, "eeg")
    info.set_montage(MONTAGE)
    sphere = mne.make_sphere_model("auto", "auto", info, verbose="error")
    n = n_sources + N_BACKGROUND
    direction = rng.standard_normal((n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    direction[:, 2] = np.abs(direction[:, 2])  # upper half of the head, under the electrodes
    direction[0, 1] = -abs(direction[0, 1])  # source 0 (the alpha rhythm) in the back half
    depth = np.concatenate([rng.uniform(0.55, 0.8, n_sources), rng.uniform(0.3, 0.8, N_BACKGROUND)])
    positions = sphere["r0"] + direction * (depth * sphere.radius)[:, None]
    orientations = rng.standard_normal((n, 3))
    orientations[:n_sources] = direction[:n_sources] + 0.6 * orientations[:n_sources]  # mostly radial
    orientations /= np.linalg.norm(orientations, axis=1, keepdims=True)
    src = mne.setup_volume_source_space(
        pos={"rr": positions, "nn": orientations}, sphere=sphere, verbose="error"
    )
    if src[0]["nuse"] != n:
        raise RuntimeError(f"only {src[0]['nuse']} of {n} dipoles lie inside the spherical head")
    fwd = mne.make_forward_solution(info, None, src, sphere, eeg=True, meg=False, verbose="error")
    gain = fwd["sol"]["data"].reshape(len(info.ch_names), n, 3)  # free orientation: x, y, z per dipole
    lead = np.einsum("cnk,nk->cn", gain, orientations)
    lead = lead[:-1] - lead[-1]  # FCz reference
    electrodes = np.array([ch["loc"][:3] for ch in info["chs"][:-1]])
    return (
        lead[:, :n_sources],
        lead[:, n_sources:],
        positions[:n_sources],
        orientations[:n_sources],
        electrodes,
    )


def draw_sources(
    rng: np.random.Generator, lead: np.ndarray, positions: np.ndarray, orientations: np.ndarray
) -> list[Source]:
    """Spectral, amplitude and coupling parameters of the cortical sources (module docstring)."""
    n = lead.shape[1]
    aroused = rng.permutation(n)[: (n + 1) // 2]
    sources = []
    for i in range(n):
        if i == 0:
            freq = float(rng.uniform(8.0, 12.0))
        else:
            freq = float(np.exp(rng.uniform(np.log(2.0), np.log(40.0))))
        peak = float(rng.uniform(4.0, 12.0) * min(1.0, (12.0 / freq) ** 0.7))
        loading = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.5)) if i in aroused else 0.0
        sources.append(
            Source(
                freq_hz=freq,
                bandwidth_hz=float(rng.uniform(1.0, min(8.0, freq))),
                timescale_s=float(np.exp(rng.uniform(np.log(3.0), np.log(30.0)))),
                log_amplitude_sd=float(rng.uniform(0.3, 0.6)),
                arousal_loading=loading,
                eyes_closed_gain=float(rng.uniform(0.4, 0.9)) if 7.0 <= freq <= 14.0 else 0.0,
                peak_channel_rms_uv=peak,
                moment_nam=peak * 1e3 / float(np.abs(lead[:, i]).max()),  # uV / (V/Am) -> nAm
                position_m=tuple(float(v) for v in positions[i]),
                orientation=tuple(float(v) for v in orientations[i]),
            )
        )
    return sources


def source_moments(
    rng: np.random.Generator,
    sources: list[Source],
    tl: Timeline,
    arousal: np.ndarray,
    eyes_closed: np.ndarray,
) -> np.ndarray:
    """Dipole moments (nAm) of the sources over the simulated span, shape (n_sources, n_fast)."""
    moments = np.empty((len(sources), tl.t_fast.size))
    for i, s in enumerate(sources):
        log_amp = (
            s.log_amplitude_sd * smooth_noise(rng, tl.t_slow.size, s.timescale_s * FS_SLOW)
            + s.arousal_loading * arousal
            + s.eyes_closed_gain * eyes_closed
        )
        amplitude = np.exp(np.interp(tl.t_fast, tl.t_slow, log_amp))
        moments[i] = s.moment_nam * amplitude * band_noise(rng, tl.t_fast.size, s.freq_hz, s.bandwidth_hz)
    return moments


def slow_features(moments: np.ndarray) -> np.ndarray:
    """Hilbert envelope, 0.1-s block means, 0.5-s Gaussian smoothing, / median: (n_sources, n_slow)."""
    n = moments.shape[1]
    envelope = np.abs(signal.hilbert(moments, N=fft.next_fast_len(n), axis=1)[:, :n])
    blocks = envelope.reshape(moments.shape[0], -1, BLOCK).mean(axis=2)
    smooth = ndimage.gaussian_filter1d(blocks, 0.5 * FS_SLOW, axis=1)
    return smooth / np.median(smooth, axis=1, keepdims=True)


def heartbeats(rng: np.random.Generator, tl: Timeline) -> tuple[np.ndarray, float]:
    """R-peak times (s) over the simulated span, with respiratory and slow heart-rate variability.

    Returns the beat times and the respiration rate (Hz), which head motion shares.
    """
    mean_rr = 60.0 / rng.uniform(55.0, 80.0)
    resp_freq, phase = float(rng.uniform(0.2, 0.3)), rng.uniform(0, 2 * np.pi)
    slow = smooth_noise(rng, tl.t_slow.size, 20.0 * FS_SLOW)
    beats, t = [], tl.t_fast[0] + rng.uniform(0, mean_rr)
    while t < tl.t_fast[-1]:
        beats.append(t)
        sinus = 1 + 0.04 * np.sin(2 * np.pi * resp_freq * t + phase)
        t += mean_rr * sinus * np.exp(0.04 * np.interp(t, tl.t_slow, slow))
    return np.array(beats), resp_freq


def head_motion(rng: np.random.Generator, tl: Timeline, resp_freq: float) -> tuple[np.ndarray, int]:
    """True head position at ``FS``: 3 translations (mm), 3 rotations (rad), shape (6, n_fast).

    Slow drift and a sag, respiration-locked motion, and sudden jerks (about one a
    minute, half of them twitches that return after 1-8 s). Returns the position and
    the number of jerks.
    """
    scale = np.array([0.08, 0.08, 0.08, 8e-4, 8e-4, 8e-4])
    drift = [
        np.interp(tl.t_fast, tl.t_slow, smooth_noise(rng, tl.t_slow.size, 60.0 * FS_SLOW)) for _ in scale
    ]
    position = scale[:, None] * np.array(drift)
    position[2] += rng.uniform(0.0, 0.3) * (tl.t_fast - tl.t_fast[0]) / np.ptp(tl.t_fast)
    breathing = np.sin(2 * np.pi * resp_freq * tl.t_fast + rng.uniform(0, 2 * np.pi))
    position[2] += rng.uniform(0.01, 0.04) * breathing
    position[3] += rng.uniform(1e-4, 4e-4) * breathing
    n_jerks = int(rng.poisson(tl.duration / 60.0))
    for t_jerk in rng.uniform(0.0, tl.duration + POST, n_jerks):
        jump = rng.normal(0.0, 1.0, 6) * np.array([0.2, 0.2, 0.2, 2e-3, 2e-3, 2e-3])
        step = 0.5 * (1 + special.erf((tl.t_fast - t_jerk) / (np.sqrt(2) * 0.12)))
        if rng.random() < 0.5:
            back = t_jerk + rng.uniform(1.0, 8.0)
            step -= 0.5 * (1 + special.erf((tl.t_fast - back) / (np.sqrt(2) * 0.12)))
        position += jump[:, None] * step
    return position, n_jerks


def eeg_artefacts(
    rng: np.random.Generator,
    tl: Timeline,
    electrodes: np.ndarray,
    blocks: list[tuple[str, float, float]],
    beats: np.ndarray,
    position: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Artefacts over the recorded span (uV) on the 30 EEG channels, and the EOG, ECG and CW channels.

    Returns
    -------
    eeg : array of shape (30, n_recorded)
        Drifts, sensor noise, blinks and eye movements, cardiac residual, motion artefacts.
    extra : dict
        ``"EOG"``, ``"ECG"`` and ``"CW1"``..``"CW6"`` -> array of shape (n_recorded,).
    levels : dict
        The drawn artefact sizes (for the ground truth).
    """
    t = tl.t_fast[tl.recorded]
    n = t.size
    rel = electrodes - electrodes.mean(axis=0)
    unit = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    eyes_open = np.zeros(n, dtype=bool)
    for label, start, stop in blocks:
        if label == "EO":
            eyes_open |= (t >= start) & (t < stop)

    # eyes: blinks (vertical) and gaze (horizontal), falling off with the distance from the eyes
    eye = 0.5 * (electrodes[0] + electrodes[1]) + np.array([0.0, -0.010, -0.035])  # below Fp1/Fp2
    distance = np.linalg.norm(electrodes - eye, axis=1)
    vertical = np.exp(-(distance - distance.min()) / 0.03)
    horizontal = np.clip(electrodes[:, 0] / 0.07, -1, 1) * np.exp(-(distance - distance.min()) / 0.04)
    blink_rate = float(rng.uniform(0.15, 0.4))
    blink_at = np.flatnonzero(eyes_open & (rng.random(n) < blink_rate / FS))
    k = np.arange(int(0.6 * FS)) / FS
    blink_kernel = (k / 0.06) ** 2 * np.exp(2 - k / 0.06) / 4.0  # peak 1 at 0.12 s
    blinks = place_events(n, blink_at, rng.lognormal(np.log(150.0), 0.25, blink_at.size), blink_kernel)
    saccades = np.flatnonzero(eyes_open & (rng.random(n) < 0.5 / FS))
    fixation_lengths = np.diff(np.concatenate([[0], saccades, [n]]))
    fixations = np.repeat(rng.normal(0.0, 1.0, fixation_lengths.size), fixation_lengths)
    roving = 0.6 * np.interp(t, tl.t_slow, smooth_noise(rng, tl.t_slow.size, 2.0 * FS_SLOW))
    gaze = 40.0 * np.where(eyes_open, ndimage.gaussian_filter1d(fixations, 0.015 * FS), roving)

    # heart: the ECG and the ballistocardiogram residual, both locked to the R peaks
    r_index = np.round((beats - t[0]) * FS).astype(int)
    k = np.arange(int(-0.3 * FS), int(0.7 * FS)) / FS
    ecg_kernel = (
        0.12 * gaussian_bump(k, -0.18, 0.025) - 0.15 * gaussian_bump(k, -0.03, 0.01)
        + gaussian_bump(k, 0.0, 0.012) - 0.25 * gaussian_bump(k, 0.03, 0.012)
        + 0.3 * gaussian_bump(k, 0.25, 0.05) + 0.5 * gaussian_bump(k, 0.3, 0.08)  # T wave + MHD effect
    )  # fmt: skip
    ecg = rng.uniform(500.0, 1500.0) * place_events(
        n, r_index - int(0.3 * FS), rng.lognormal(0.0, 0.1, beats.size), ecg_kernel
    )
    k = np.arange(int(0.8 * FS)) / FS
    bcg_kernels = [
        -(k - 0.22) / 0.04 * gaussian_bump(k, 0.22, 0.04) * np.exp(0.5),
        gaussian_bump(k, 0.35, 0.07),
    ]
    bcg_beats = rng.lognormal(0.0, 0.2, beats.size)
    bcg_waves = np.array([place_events(n, r_index, bcg_beats, kernel) for kernel in bcg_kernels])
    bcg_weights = unit @ rng.normal(0.0, 1.0, (3, 2)) + 0.3 * rng.normal(0.0, 1.0, (len(EEG_CHANNELS), 2))
    bcg_size = float(rng.uniform(4.0, 10.0))
    bcg = bcg_size / np.sqrt(np.mean(bcg_weights**2)) * bcg_weights @ bcg_waves

    # motion: head velocity in mm/s (rotations at a 50-mm lever) plus cardiac pulses
    lever = np.array([1.0, 1.0, 1.0, 50.0, 50.0, 50.0])
    velocity = np.gradient(position[:, tl.recorded], axis=1) * FS * lever[:, None]
    velocity += rng.normal(0.0, 0.05, (6, 1)) * bcg_waves[0]
    eeg_gain = unit @ rng.normal(0.0, 8.0, (3, 6)) + rng.normal(0.0, 2.0, (len(EEG_CHANNELS), 6))  # uV/(mm/s)
    cw_gain = rng.normal(0.0, 40.0, (len(CW_CHANNELS), 6))

    sensor_sd = rng.uniform(1.0, 3.0, (len(EEG_CHANNELS), 1))
    eeg = (
        slow_drifts(rng, len(EEG_CHANNELS), t, tl.t_slow) + sensor_sd * rng.standard_normal((len(EEG_CHANNELS), n))
        + np.outer(vertical, blinks) + np.outer(horizontal, gaze) + bcg + eeg_gain @ velocity
    )  # fmt: skip
    extra = {
        "EOG": -1.3 * blinks
        + 0.4 * gaze
        + slow_drifts(rng, 1, t, tl.t_slow)[0]
        + 3.0 * rng.standard_normal(n),
        "ECG": ecg + 3.0 * slow_drifts(rng, 1, t, tl.t_slow)[0] + 10.0 * rng.standard_normal(n),
    }
    cw = (
        cw_gain @ velocity + slow_drifts(rng, len(CW_CHANNELS), t, tl.t_slow)
        + 1.5 * rng.standard_normal((len(CW_CHANNELS), n))
    )  # fmt: skip
    extra.update(zip(CW_CHANNELS, cw, strict=True))
    levels = {
        "blink_rate_hz": blink_rate,
        "bcg_residual_rms_uv": bcg_size,
        "sensor_noise_uv": [float(v) for v in sensor_sd[:, 0]],
    }
    return eeg, extra, levels


def simulate_eeg(rng: np.random.Generator, tl: Timeline) -> EEGSimulation:
    """The EEG part of the model: sources, background, artefacts, channels and annotations."""
    duration = tl.duration
    blocks = eyes_blocks(rng, duration)
    eyes_closed = np.zeros(tl.t_slow.size)
    for label, start, stop in blocks:
        eyes_closed[(tl.t_slow >= start) & (tl.t_slow < stop)] = float(label == "EC")
    eyes_closed = ndimage.gaussian_filter1d(eyes_closed, 1.0 * FS_SLOW)
    arousal_timescale = float(rng.uniform(15.0, 30.0))
    arousal = smooth_noise(rng, tl.t_slow.size, arousal_timescale * FS_SLOW)

    lead, lead_background, positions, orientations, electrodes = head_model(rng, int(rng.integers(6, 11)))
    sources = draw_sources(rng, lead, positions, orientations)
    moments = source_moments(rng, sources, tl, arousal, eyes_closed)
    eeg = 1e-3 * lead @ moments[:, tl.recorded]  # V/Am x nAm -> uV
    # independent 1/f dipoles: only their sensor covariance matters, realised with one process per channel
    beta, background_rms = float(rng.uniform(0.8, 1.3)), float(rng.uniform(8.0, 15.0))
    evals, evecs = np.linalg.eigh(lead_background @ lead_background.T)
    background = (
        (evecs * np.sqrt(np.clip(evals, 0, None)))
        @ evecs.T
        @ pink_noise(rng, len(EEG_CHANNELS), eeg.shape[1], beta)
    )
    eeg += background_rms / np.sqrt(np.mean(background**2)) * background
    beats, resp_freq = heartbeats(rng, tl)
    position, n_jerks = head_motion(rng, tl, resp_freq)
    artefacts, extra, levels = eeg_artefacts(rng, tl, electrodes, blocks, beats, position)
    eeg += artefacts

    channels = [str(c) for c in rng.permutation([*EEG_CHANNELS, "EOG", "ECG", *CW_CHANNELS])]
    rows = dict(zip(EEG_CHANNELS, eeg, strict=True)) | extra
    in_eeg = [
        (label, max(start, 0.0), min(stop, duration))
        for label, start, stop in blocks
        if stop > 0 and start < duration
    ]
    beats_in = beats[(beats >= 0) & (beats < duration)]
    annotations = mne.Annotations(
        onset=[*tl.onsets[: tl.n_markers], *beats_in, *(start for _, start, _ in in_eeg)],
        duration=[0.0] * (tl.n_markers + beats_in.size) + [stop - start for _, start, stop in in_eeg],
        description=["mri"] * tl.n_markers + ["R"] * beats_in.size + [label for label, _, _ in in_eeg],
    )
    truth = {
        "arousal_timescale_s": arousal_timescale,
        "background": {"beta": beta, "sensor_rms_uv": background_rms, "n_dipoles": N_BACKGROUND},
        "artefacts": {**levels, "n_head_jerks": n_jerks, "respiration_hz": resp_freq},
    }
    return EEGSimulation(
        channels=channels,
        data_uv=np.array([rows[c] for c in channels]),
        annotations=annotations,
        sources=sources,
        features=slow_features(moments),
        arousal=arousal,
        position=position,
        blocks=in_eeg,
        truth=truth,
        lead=lead,
    )


# ---------------------------------------------------------------------------------------------------------
# fMRI


def voxel_mm() -> np.ndarray:
    """MNI coordinates (mm) of every voxel of the grid, shape GRID_SHAPE + (3,)."""
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in GRID_SHAPE], indexing="ij"), axis=-1)
    return ijk @ GRID_AFFINE[:3, :3].T + GRID_AFFINE[:3, 3]


def make_atlas() -> tuple[np.ndarray, dict[int, str]]:
    """The fixed label image (the same for every subject and seed) and its table."""
    xyz = voxel_mm()
    labels = np.zeros(GRID_SHAPE, dtype=np.int16)
    value = {name: k for k, name in enumerate(_LABELS)}
    rho = np.sqrt((((xyz - BRAIN_CENTRE) / BRAIN_RADII) ** 2).sum(axis=-1))
    for side, sign in (("Left", -1.0), ("Right", 1.0)):
        hemisphere = xyz[..., 0] * sign > 0
        labels[(rho <= 1) & hemisphere] = value[f"{side} Cerebral Cortex"]
        labels[(rho <= 1 - CORTEX_DEPTH) & hemisphere] = value[f"{side} Cerebral White Matter"]
    stem = (((xyz - np.array([0.0, -28.0, -30.0])) / np.array([9.0, 10.0, 22.0])) ** 2).sum(axis=-1) <= 1
    labels[stem] = value["Brain-Stem"]
    for name, centre, radii, tilt in _STRUCTURES:
        c, s = np.cos(np.deg2rad(tilt)), np.sin(np.deg2rad(tilt))
        for side, sign in (("Left", -1.0), ("Right", 1.0)):
            d = xyz - np.array([sign * centre[0], centre[1], centre[2]])
            rotated = np.stack([d[..., 0], c * d[..., 1] + s * d[..., 2], -s * d[..., 1] + c * d[..., 2]], -1)
            labels[((rotated / np.array(radii)) ** 2).sum(axis=-1) <= 1] = value[f"{side} {name}"]
    return labels, dict(enumerate(_LABELS))


def baseline_image(rng: np.random.Generator, labels: np.ndarray, table: dict[int, str]) -> np.ndarray:
    """Smooth EPI baseline ``S0``: tissue contrast (drawn +-10 %), a bias field, partial volumes."""
    s0 = np.zeros(GRID_SHAPE)
    for value, name in table.items():
        if value:
            tissue = name.removeprefix("Left ").removeprefix("Right ")
            s0[labels == value] = _TISSUE_INTENSITY[tissue] * rng.uniform(0.9, 1.1)
    u = (voxel_mm() - BRAIN_CENTRE) / BRAIN_RADII
    bias = np.exp(u @ rng.normal(0.0, 0.06, 3) + (u**2) @ rng.normal(0.0, 0.05, 3))
    return ndimage.gaussian_filter(s0 * bias, 0.7)


def draw_roi_models(rng: np.random.Generator, n_sources: int) -> dict[str, RoiModel]:
    """Per ROI: driving sources, weights, nonlinearity, HRF, BOLD and noise sizes."""
    models: dict[str, RoiModel] = {}
    for left, right in zip(ROIS[::2], ROIS[1::2], strict=True):
        shared = float(rng.uniform(0.2, 0.6))
        first: tuple[int, float] | None = None
        for roi in (left, right):
            k = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
            chosen = [int(v) for v in rng.permutation(n_sources)[:k]]
            weights = [float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5)) for _ in chosen]
            if first is None:
                first = (chosen[0], weights[0])
            elif rng.random() < 0.7:  # the right ROI shares the left one's first source
                others = [(c, w) for c, w in zip(chosen, weights, strict=True) if c != first[0]]
                chosen, weights = (list(v) for v in zip(*[first, *others][:k], strict=True))
            peak, sd = float(rng.uniform(4.0, 7.0)), float(rng.uniform(0.4, 0.8))
            models[roi] = RoiModel(
                sources=tuple(chosen),
                weights=tuple(weights),
                nonlinearity=str(rng.choice(NONLINEARITIES)),
                hrf_peak_s=peak,
                hrf_undershoot_peak_s=peak + float(rng.uniform(6.0, 10.0)),
                hrf_undershoot_ratio=float(rng.uniform(0.1, 0.35)),
                bold_sd_pct=sd,
                physio_sd_pct=sd * float(rng.uniform(0.35, 0.9)),
                physio_ar1=float(rng.uniform(0.3, 0.8)),
                physio_shared_with_other_side=shared,
            )
    return models


def nonlinearity(name: str, x: np.ndarray) -> np.ndarray:
    """The per-ROI map of a median-normalised slow amplitude ``x``."""
    return {"amplitude": x, "log_amplitude": np.log(x), "power": x**2, "saturating": np.tanh(x)}[name]


def roi_bold(features: np.ndarray, models: dict[str, RoiModel], tl: Timeline) -> np.ndarray:
    """Noiseless ROI BOLD in % signal change at every volume onset, shape (n_volumes, 8)."""
    t_hrf = np.arange(int(32 * FS_SLOW)) / FS_SLOW
    bold = np.empty((tl.onsets.size, len(ROIS)))
    for r, roi in enumerate(ROIS):
        m = models[roi]
        terms = [
            w * zscore(nonlinearity(m.nonlinearity, features[i]))
            for i, w in zip(m.sources, m.weights, strict=True)
        ]
        hrf = double_gamma(t_hrf, m.hrf_peak_s, m.hrf_undershoot_peak_s, m.hrf_undershoot_ratio)
        bold[:, r] = m.bold_sd_pct * zscore(hrf_response(np.sum(terms, axis=0), hrf, tl.t_slow, tl.onsets))
    return bold


def physio_noise(rng: np.random.Generator, models: dict[str, RoiModel], n: int) -> np.ndarray:
    """AR(1) physiological noise per ROI (% signal change), partly shared within a left/right pair."""

    def ar1(phi: float) -> np.ndarray:
        x = np.empty(n)
        x[0] = rng.standard_normal()
        for k in range(1, n):
            x[k] = phi * x[k - 1] + np.sqrt(1 - phi**2) * rng.standard_normal()
        return x

    noise = np.empty((n, len(ROIS)))
    for p in range(0, len(ROIS), 2):
        common = ar1(models[ROIS[p]].physio_ar1)
        for r in (p, p + 1):
            m = models[ROIS[r]]
            rho = m.physio_shared_with_other_side
            noise[:, r] = m.physio_sd_pct * (np.sqrt(1 - rho) * ar1(m.physio_ar1) + np.sqrt(rho) * common)
    return noise


def global_fluctuation(
    rng: np.random.Generator, arousal: np.ndarray, tl: Timeline
) -> tuple[np.ndarray, dict[str, float]]:
    """Global fluctuation (%) at the volume onsets: a slow process plus the BOLD response to arousal."""
    slow_sd, arousal_sd = float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.1, 0.3))
    canonical = double_gamma(np.arange(int(32 * FS_SLOW)) / FS_SLOW, 5.0, 15.0, 1 / 6)
    slow = np.interp(tl.onsets, tl.t_slow, smooth_noise(rng, tl.t_slow.size, 10.0 * FS_SLOW))
    fluctuation = slow_sd * slow + arousal_sd * zscore(hrf_response(arousal, canonical, tl.t_slow, tl.onsets))
    return fluctuation, {"global_slow_sd_pct": slow_sd, "global_arousal_sd_pct": arousal_sd}


def epi_volumes(
    rng: np.random.Generator,
    s0: np.ndarray,
    brain: np.ndarray,
    roi_masks: np.ndarray,
    roi_pct: np.ndarray,
    global_pct: np.ndarray,
    motion: np.ndarray,
    onsets: np.ndarray,
) -> tuple[np.ndarray, dict[str, float]]:
    """The 4-D EPI, one volume per onset.

    Parameters
    ----------
    s0 : array, GRID_SHAPE
        Baseline image.
    brain : array of bool, GRID_SHAPE
        Voxels inside the brain (any atlas label).
    roi_masks : array of bool, shape (8,) + GRID_SHAPE
    roi_pct : array of shape (n_volumes, 8)
        ROI signal in % (noiseless BOLD plus physiological noise).
    global_pct : array of shape (n_volumes,)
        Global fluctuation in %.
    motion : array of shape (n_volumes, 6)
        True motion relative to the first volume (mm, rad).
    onsets : array of shape (n_volumes,)
        Volume onsets, s.

    Returns
    -------
    volumes : array of float32, GRID_SHAPE + (n_volumes,)
    levels : dict
        The drawn drift and spin-history sizes.
    """
    support = ndimage.binary_dilation(s0 > 1.0, iterations=2)
    xyz = voxel_mm()[support]
    base = s0[support]
    # first-order intensity change of a displacement d = T + w x (r - c): -grad S0 . d
    grad = np.stack(np.gradient(s0, *np.diag(GRID_AFFINE)[:3]), axis=-1)[support]
    motion_maps = np.concatenate([grad, np.cross(xyz - BRAIN_CENTRE, grad)], axis=1)  # (n_support, 6)
    step = np.abs(np.diff(motion, axis=0))
    framewise = np.r_[0.0, step[:, :3].sum(axis=1) + 50.0 * step[:, 3:].sum(axis=1)]  # mm
    levels = {
        "drift_linear_pct": float(rng.uniform(-1.5, 1.5)),
        "drift_quadratic_pct": float(rng.uniform(-0.8, 0.8)),
        "drift_ap_gradient_pct": float(rng.uniform(-0.5, 0.5)),
        "spin_history_pct_per_mm": float(rng.uniform(0.3, 1.0)),
    }
    spin_history = levels["spin_history_pct_per_mm"] * (1 + 0.5 * np.sin(2 * np.pi * xyz[:, 2] / 40.0))
    tau = 2 * (onsets - onsets.mean()) / np.ptp(onsets)  # -1 .. 1 over the run
    ap = (xyz[:, 1] - BRAIN_CENTRE[1]) / BRAIN_RADII[1]
    in_brain = brain[support]
    rois = roi_masks[:, support].T.astype(float)
    volumes = np.empty((*GRID_SHAPE, onsets.size), dtype=np.float32)
    for v in range(onsets.size):
        drift = levels["drift_linear_pct"] * tau[v] + levels["drift_quadratic_pct"] * tau[v] ** 2
        drift = drift + levels["drift_ap_gradient_pct"] * ap * tau[v] ** 2
        pct = rois @ roi_pct[v] + in_brain * (global_pct[v] + drift - spin_history * framewise[v])
        volume = np.abs(rng.normal(0.0, THERMAL_SD, GRID_SHAPE))
        volume[support] = (
            base * (1 + pct / 100) - motion_maps @ motion[v] + rng.normal(0.0, THERMAL_SD, base.size)
        )
        volumes[..., v] = volume
    return volumes, levels


def simulate_fmri(rng: np.random.Generator, tl: Timeline, eeg: EEGSimulation) -> FMRISimulation:
    """The fMRI part of the model: ROI BOLD from the EEG sources, noise, motion, the 4-D image."""
    labels, table = make_atlas()
    value_of = {name: value for value, name in table.items()}
    roi_masks = np.array([labels == value_of[roi] for roi in ROIS])
    s0 = baseline_image(rng, labels, table)
    models = draw_roi_models(rng, len(eeg.sources))
    bold = roi_bold(eeg.features, models, tl)
    physio = physio_noise(rng, models, tl.onsets.size)
    global_pct, global_levels = global_fluctuation(rng, eeg.arousal, tl)
    at_onsets = np.round((tl.onsets - tl.t_fast[0]) * FS).astype(int)
    motion = (eeg.position[:, at_onsets] - eeg.position[:, at_onsets[:1]]).T
    volumes, levels = epi_volumes(
        rng, s0, labels > 0, roi_masks, bold + physio, global_pct, motion, tl.onsets
    )
    estimated = motion + rng.normal(0.0, 1.0, motion.shape) * np.array([3e-3] * 3 + [3e-5] * 3)
    truth = {"thermal_sd": THERMAL_SD, **global_levels, **levels}
    return FMRISimulation(volumes, estimated, labels, table, s0, roi_masks, bold, models, truth)


# ---------------------------------------------------------------------------------------------------------
# files and ceilings


def write_eeg(path: Path, channels: list[str], data_uv: np.ndarray, annotations: mne.Annotations) -> None:
    """EEGLAB .set via mne's exporter; the data are given in uV and passed to mne in V."""
    types = {"EOG": "eog", "ECG": "ecg"} | dict.fromkeys(CW_CHANNELS, "misc")
    info = mne.create_info(channels, FS, [types.get(c, "eeg") for c in channels])
    raw = mne.io.RawArray(data_uv * 1e-6, info, verbose="error")
    raw.set_annotations(annotations)
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="eeglab", overwrite=True, verbose="error")
    # scipy stamps the creation time into the MAT header: fixed, the same seed gives the same bytes
    fix_mat_header(path, "MATLAB 5.0 MAT-file, written by tools/make_foreign_cwl.py")


def nifti(data: np.ndarray, zooms: tuple[float, ...]) -> nib.Nifti1Image:
    """A NIfTI image on the MNI grid with the given voxel sizes (and TR), MNI-coded."""
    img = nib.Nifti1Image(data, GRID_AFFINE)
    img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(GRID_AFFINE, code=4)
    img.set_sform(GRID_AFFINE, code=4)
    return img


def ceilings(
    data_dir: Path, subject: str, atlas: Path, atlas_labels: Path, fm: FMRISimulation, tl: Timeline
) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    """Correlation of the loader's ROI series with their EEG-determined part (module docstring).

    Returns
    -------
    ceiling, ceiling_test : dict
        ROI (the default data config's) -> Pearson r over the matched volumes / those in the
        last ``TEST_WINDOW`` s.
    determined : array of shape (n_markers, n_rois)
        The EEG-determined part of the loader's series (matched volumes).
    """
    cfg = load_config(None).data
    rec = load_cwl_subject(data_dir, subject, cfg, atlas, atlas_labels, 100.0)
    # the loader keeps its confounds to itself: run its fMRI pipeline once more to get them
    paths = cwl_paths(data_dir, subject)
    labels_img, table, _ = loader_fmri.load_atlas(atlas, atlas_labels)
    values = loader_fmri.select_labels(table, cfg.rois, str(atlas_labels))
    series, confounds = loader_fmri.nifti_roi_series(
        paths.nifti, labels_img, values, rec.tr, cfg.smoothing_fwhm, paths.motion if cfg.confounds else None
    )
    if not np.allclose(series[: tl.n_markers].T, rec.roi_series):
        raise RuntimeError("the loader's fMRI pipeline called directly disagrees with load_cwl_subject")
    # smoothing and ROI means are linear: with image k holding S0 / 100 in ROI k, the noiseless
    # image's smoothed ROI means are the BOLD (%) times the smoothed ROI means of those images
    basis = np.moveaxis(fm.s0 * fm.roi_masks / 100.0, 0, -1).astype(np.float32)
    smoothed = nifti(basis, (*VOXEL_MM, 1.0))
    if cfg.smoothing_fwhm is not None:
        smoothed = image.smooth_img(smoothed, fwhm=cfg.smoothing_fwhm)
    mixing = loader_fmri.roi_means(smoothed, labels_img, values)  # (basis image, loader ROI)
    determined = loader_fmri.clean_series(fm.bold @ mixing, confounds, rec.tr)[: tl.n_markers]
    test = rec.volume_onsets >= tl.duration - TEST_WINDOW
    ceiling = {roi: pearson(rec.roi_series[r], determined[:, r]) for r, roi in enumerate(cfg.rois)}
    ceiling_test = {
        roi: pearson(rec.roi_series[r, test], determined[test, r]) for r, roi in enumerate(cfg.rois)
    }
    return ceiling, ceiling_test, determined


def describe(sources: list[Source], models: dict[str, RoiModel]) -> list[str]:
    """One plain-words line per ROI: which sources drive it, how, through which HRF."""
    lines = []
    for roi, m in models.items():
        terms = " ".join(
            f"{w:+.2f} z({m.nonlinearity}(x{i}))" for i, w in zip(m.sources, m.weights, strict=True)
        )
        drivers = ", ".join(
            f"x{i} = amplitude of source {i} ({sources[i].freq_hz:.1f} Hz, FWHM {sources[i].bandwidth_hz:.1f} Hz)"
            for i in m.sources
        )
        lines.append(
            f"{roi}: BOLD = {m.bold_sd_pct:.2f}% * z(HRF * [{terms}]) with {drivers}; HRF peak "
            f"{m.hrf_peak_s:.1f} s, undershoot peak {m.hrf_undershoot_peak_s:.1f} s, ratio "
            f"{m.hrf_undershoot_ratio:.2f}; AR(1) physiological noise {m.physio_sd_pct:.2f}% (phi {m.physio_ar1:.2f})"
        )
    return lines


def make_foreign_subject(
    out_dir: str | Path, subject: str = "trio1", duration: float = 300.0, seed: int = 0
) -> dict:
    """Write one subject (and the shared atlas) under ``out_dir`` in the CWL layout.

    Parameters
    ----------
    out_dir : str or Path
        Data folder: ``{out_dir}/{subject}/CWL_Data/...``, ``{out_dir}/atlas/`` and
        ``{out_dir}/ground_truth/{subject}.json``.
    subject : str
        Subject id; with ``seed`` it seeds the draw.
    duration : float
        EEG length in s (at least two volumes; ``ceiling_test`` covers the last 60 s).
    seed : int
        Seed; the same ``(seed, subject)`` writes the same data.

    Returns
    -------
    dict
        The ground truth as read back from ``{out_dir}/ground_truth/{subject}.json``.
    """
    out_dir = Path(out_dir)
    rng = make_rng(seed, subject)
    tl = make_timeline(rng, duration)
    eeg = simulate_eeg(rng, tl)
    fm = simulate_fmri(rng, tl, eeg)

    paths = cwl_paths(out_dir, subject)
    write_eeg(paths.eeg, eeg.channels, eeg.data_uv, eeg.annotations)
    paths.nifti.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nifti(fm.volumes, (*VOXEL_MM, TR)), paths.nifti)
    paths.motion.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(paths.motion, fm.motion, fmt="%.8e", delimiter="  ")
    atlas, atlas_labels = out_dir / "atlas" / ATLAS_FILE, out_dir / "atlas" / ATLAS_LABELS_FILE
    atlas.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nifti(fm.labels, VOXEL_MM), atlas)
    rows = "".join(f"{k}\t{name}\n" for k, name in fm.table.items())
    atlas_labels.write_text("index\tname\n" + rows, encoding="utf-8")

    ceiling, ceiling_test, determined = ceilings(out_dir, subject, atlas, atlas_labels, fm, tl)
    truth = {
        "generator": "foreign",
        "subject": subject,
        "seed": int(seed),
        "duration_s": float(duration),
        "ceiling": ceiling,
        "ceiling_test": ceiling_test,
        "ceiling_definition": (
            "Pearson r, over the volumes matched to 'mri' markers, between the ROI series that "
            "offline.loader.load_cwl_subject returns for these files (default data config) and their "
            "EEG-determined part: the noiseless ROI BOLD (percent change times the baseline image, in the "
            "ROI's voxels) put through the same smoothing, ROI mean, detrend and regression of the noisy "
            f"image's confounds; ceiling_test: the same over the volumes in the last {TEST_WINDOW:g} s of "
            "the EEG."
        ),
        "description": (
            "Each ROI's BOLD is a double-gamma HRF convolved with a weighted sum of z-scored nonlinear "
            "functions (one per ROI) of the slow amplitude envelopes x_i of 1-3 band-limited cortical "
            "sources (dipoles in a spherical head, FCz reference). A shared arousal process modulates half "
            "of the sources and the global fMRI signal; eyes-closed blocks raise 7-14 Hz sources. fMRI "
            "noise: AR(1) physiological noise per ROI (partly shared left/right), thermal noise, global "
            "fluctuations, drifts, head motion (in the motion file) and spin history. "
            + " | ".join(describe(eeg.sources, fm.models))
        ),
        # name / freq / bandwidth (half-width), drivers and driver_signs: what
        # offline.synthetic.load_truth reads (with the lead fields of the .npz) for the interpretation check
        "sources": [
            {"name": f"source{k}", "freq": s.freq_hz, "bandwidth": s.bandwidth_hz / 2, **asdict(s)}
            for k, s in enumerate(eeg.sources)
        ],
        "rois": {roi: asdict(m) for roi, m in fm.models.items()},
        "drivers": {roi: list(m.sources) for roi, m in fm.models.items()},
        "driver_signs": {roi: int(np.sign(m.weights[0])) for roi, m in fm.models.items()},
        **eeg.truth,
        "fmri_noise": fm.truth,
        "blocks": [{"label": label, "onset_s": start, "offset_s": stop} for label, start, stop in eeg.blocks],
        "channel_order": eeg.channels,
        "tr_s": TR,
        "n_markers": tl.n_markers,
        "n_volumes_in_nifti": int(tl.onsets.size),
        "volume_onsets_s": [float(v) for v in tl.onsets[: tl.n_markers]],
        "eeg_determined_series": {roi: [float(v) for v in determined[:, r]] for r, roi in enumerate(ceiling)},
        "atlas": f"atlas/{ATLAS_FILE}",
        "atlas_labels": f"atlas/{ATLAS_LABELS_FILE}",
    }
    truth_path = out_dir / "ground_truth" / f"{subject}.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        truth_path.with_suffix(".npz"), lead_field=eeg.lead, eeg_ch_names=np.array(EEG_CHANNELS)
    )
    text = json.dumps(truth, indent=1)
    truth_path.write_text(text, encoding="utf-8")
    return json.loads(text)


def add_generator_argument(parser: argparse.ArgumentParser) -> None:
    """``--generator beira|foreign`` of the trainer checks (see :func:`subject_loader`)."""
    parser.add_argument(
        "--generator", choices=("beira", "foreign"), default="beira",
        help="who writes a missing subject: this project's generator (offline/synthetic) or the "
        "independent one (tools/make_foreign_cwl.py)",
    )  # fmt: skip


def subject_loader(generator: str):
    """The subject loader of a trainer check's ``--generator``:
    :func:`offline.synthetic.load_synthetic_subject`, writing a missing subject with this project's
    generator (``beira``) or with :func:`make_foreign_subject` (``foreign``)."""
    if generator == "foreign":
        return functools.partial(load_synthetic_subject, writer=make_foreign_subject)
    if generator == "beira":
        return load_synthetic_subject
    raise ValueError(f"unknown generator {generator!r}; use 'beira' or 'foreign'.")


def main(argv: list[str] | None = None) -> int:
    """Command line: write subjects and print their ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="data folder to write into")
    parser.add_argument("--subjects", nargs="+", default=["trio1"], help="subject ids")
    parser.add_argument("--duration", type=float, default=300.0, help="EEG length in s")
    parser.add_argument("--seed", type=int, default=0, help="seed (drawn together with the subject id)")
    args = parser.parse_args(argv)
    for subject in args.subjects:
        start = time.perf_counter()
        truth = make_foreign_subject(args.out, subject, args.duration, args.seed)
        print(
            f"{subject} (seed {args.seed}, {args.duration:g} s) written in {time.perf_counter() - start:.1f} s"
        )
        for roi in truth["ceiling"]:
            print(f"  {roi:<16} ceiling {truth['ceiling'][roi]:.3f}   test {truth['ceiling_test'][roi]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
