"""fMRI side of the synthetic recordings: atlas, baseline EPI, motion and the 4D series.

The grid is the 61 x 72 x 61, 3 mm MNI grid of the CWL ``rwa*`` images, with an
SPM-style affine (x flipped). The atlas is a coarse, hand-placed approximation
of the Harvard-Oxford subcortical atlas (ellipsoids at textbook MNI centres),
labelled with nilearn's spelling of the 21 HO subcortical regions plus
``Background``. It is meant to be plausible, not anatomically exact.
"""

from __future__ import annotations

import numpy as np

#: Grid of the CWL normalised EPI (``rwa*.nii``).
GRID_SHAPE = (61, 72, 61)
#: Voxel -> MNI mm (3 mm voxels, x flipped as SPM writes it).
MNI_AFFINE_3MM = np.array(
    [[-3.0, 0.0, 0.0, 90.0], [0.0, 3.0, 0.0, -126.0], [0.0, 0.0, 3.0, -72.0], [0.0, 0.0, 0.0, 1.0]]
)

#: Harvard-Oxford subcortical labels as nilearn 0.10+ names them; the position is the label value.
HO_SUB_LABELS = (
    "Background",
    "Left Cerebral White Matter", "Left Cerebral Cortex", "Left Lateral Ventricle", "Left Thalamus",
    "Left Caudate", "Left Putamen", "Left Pallidum", "Brain-Stem", "Left Hippocampus", "Left Amygdala",
    "Left Accumbens",
    "Right Cerebral White Matter", "Right Cerebral Cortex", "Right Lateral Ventricle", "Right Thalamus",
    "Right Caudate", "Right Putamen", "Right Pallidum", "Right Hippocampus", "Right Amygdala",
    "Right Accumbens",
)  # fmt: skip

# (structure, centre (|x|, y, z) in MNI mm, radii in mm, baseline EPI intensity); drawn in this
# order, so later (smaller) structures win where ellipsoids overlap.
_STRUCTURES = (
    ("Lateral Ventricle", (14.0, -8.0, 18.0), (5.0, 22.0, 8.0), 1300.0),
    ("Thalamus", (11.0, -18.0, 6.0), (7.0, 11.0, 8.0), 860.0),
    ("Hippocampus", (27.0, -22.0, -13.0), (6.0, 15.0, 6.0), 880.0),
    ("Amygdala", (23.0, -4.0, -19.0), (6.0, 6.0, 6.0), 870.0),
    ("Caudate", (13.0, 12.0, 10.0), (5.0, 12.0, 9.0), 900.0),
    ("Putamen", (25.0, 3.0, 1.0), (6.0, 14.0, 9.0), 880.0),
    ("Pallidum", (19.0, -3.0, -1.0), (4.0, 7.0, 5.0), 800.0),
    ("Accumbens", (10.0, 11.0, -8.0), (5.0, 6.0, 5.0), 890.0),
)
_BRAIN_CENTRE = np.array([0.0, -18.0, 12.0])
_BRAIN_RADII = np.array([70.0, 95.0, 72.0])
_CORTEX_THICKNESS = 12.0


def voxel_mm(shape: tuple[int, int, int] = GRID_SHAPE, affine: np.ndarray = MNI_AFFINE_3MM) -> np.ndarray:
    """MNI coordinates of every voxel, array of shape (*shape, 3) in mm."""
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(float)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _inside(xyz: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    return (((xyz - centre) / radii) ** 2).sum(axis=-1) <= 1.0


def make_atlas() -> tuple[np.ndarray, np.ndarray]:
    """The synthetic subcortical atlas and baseline EPI intensity on :data:`GRID_SHAPE`.

    Returns
    -------
    labels : array of int16, shape (61, 72, 61)
        Label value per voxel; value ``k`` is ``HO_SUB_LABELS[k]`` (0 = background).
    baseline : array of float64, shape (61, 72, 61)
        Noise-free EPI intensity (arbitrary units, ~700-1300 in the brain, 0 outside).
    """
    xyz = voxel_mm()
    labels = np.zeros(GRID_SHAPE, dtype=np.int16)
    baseline = np.zeros(GRID_SHAPE)
    index = {name: k for k, name in enumerate(HO_SUB_LABELS)}
    brain = _inside(xyz, _BRAIN_CENTRE, _BRAIN_RADII)
    white = _inside(xyz, _BRAIN_CENTRE, _BRAIN_RADII - _CORTEX_THICKNESS)
    left = xyz[..., 0] < 0
    for side, mask in (("Left", left), ("Right", ~left)):
        labels[brain & ~white & mask] = index[f"{side} Cerebral Cortex"]
        labels[white & mask] = index[f"{side} Cerebral White Matter"]
    baseline[brain & ~white] = 900.0
    baseline[white] = 720.0
    stem = _inside(xyz, np.array([0.0, -28.0, -32.0]), np.array([10.0, 12.0, 20.0]))
    labels[stem] = index["Brain-Stem"]
    baseline[stem] = 760.0
    for name, (cx, cy, cz), radii, intensity in _STRUCTURES:
        for side, sign in (("Left", -1.0), ("Right", 1.0)):
            mask = _inside(xyz, np.array([sign * cx, cy, cz]), np.array(radii))
            labels[mask] = index[f"{side} {name}"]
            baseline[mask] = intensity
    # a smooth coil-sensitivity bias, as in real EPI
    bias = 1.0 + 0.1 * np.cos(xyz[..., 1] / 80.0) - 0.05 * (xyz[..., 2] / 100.0)
    return labels, baseline * bias


def motion_parameters(rng: np.random.Generator, n_volumes: int, tr: float) -> np.ndarray:
    """SPM-style realignment parameters: slow drifts plus a few small jerks.

    Returns
    -------
    array of shape (n_volumes, 6)
        Translations x, y, z in mm, then rotations about x, y, z (pitch, roll, yaw) in radians.
    """
    t = np.arange(n_volumes) * tr
    params = np.empty((n_volumes, 6))
    for j in range(6):
        scale = 0.12 if j < 3 else 0.0015
        walk = np.cumsum(rng.standard_normal(n_volumes)) / np.sqrt(max(n_volumes, 1))
        slow = np.sin(2 * np.pi * t / rng.uniform(60.0, 200.0) + rng.uniform(0, 2 * np.pi))
        params[:, j] = scale * (walk + 0.5 * slow)
    for _ in range(max(1, n_volumes // 60)):
        at = int(rng.integers(1, max(2, n_volumes)))
        params[at:, :3] += rng.normal(0.0, 0.08, 3)
        params[at:, 3:] += rng.normal(0.0, 0.0008, 3)
    return params - params[0]


def assemble_volumes(
    rng: np.random.Generator,
    labels: np.ndarray,
    baseline: np.ndarray,
    label_signals: np.ndarray,
    voxel_gain: np.ndarray,
    global_signal: np.ndarray,
    rp: np.ndarray,
    thermal_std: float,
) -> np.ndarray:
    """Build the 4D EPI series.

    ``Y(v, i) = B(v) * (1 + 0.01 * (gain(v) * S[label(v), i] + g(i)))
    - grad B(v) . d(v, i) + thermal noise``, with ``S`` and ``g`` in percent signal
    change, ``d = t + omega x (r - c)`` the small-motion displacement of the voxel (a first-order
    intensity change, linear in the six parameters) and
    the thermal noise Gaussian (Rician magnitude outside the brain).

    Parameters
    ----------
    labels : array of int, shape (nx, ny, nz)
    baseline : array of shape (nx, ny, nz)
    label_signals : array of shape (n_labels, n_volumes)
        Percent signal change of every label (row 0, background, is ignored).
    voxel_gain : array of shape (nx, ny, nz)
        Per-voxel scale of the label signal (about 1).
    global_signal : array of shape (n_volumes,)
        Percent change shared by every brain voxel (physiology and scanner drift).
    rp : array of shape (n_volumes, 6)
        Motion parameters (see :func:`motion_parameters`).
    thermal_std : float
        Standard deviation of the thermal noise in intensity units.

    Returns
    -------
    array of float32, shape (nx, ny, nz, n_volumes)
    """
    brain = labels > 0
    xyz = voxel_mm(labels.shape)
    centre = xyz[brain].mean(axis=0)
    # intensity gradient per mm (the grid axes are x-flipped: divide by the signed voxel size)
    steps = np.diag(MNI_AFFINE_3MM)[:3]
    grad = np.stack(np.gradient(baseline), axis=-1) / steps
    # grad . (t + omega x r) = grad . t + omega . (r x grad): linear in the 6 parameters
    motion_basis = np.concatenate([grad, np.cross(xyz - centre, grad)], axis=-1)
    n_vol = label_signals.shape[1]
    out = np.empty((*labels.shape, n_vol), dtype=np.float32)
    for i in range(n_vol):
        pct = voxel_gain * label_signals[labels, i] + global_signal[i]
        vol = baseline * (1.0 + 0.01 * np.where(brain, pct, 0.0))
        vol -= motion_basis @ rp[i]
        vol += thermal_std * rng.standard_normal(labels.shape)
        out[..., i] = np.where(brain, vol, np.abs(vol))
    return out
