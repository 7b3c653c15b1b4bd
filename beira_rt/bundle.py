"""The model bundle: one file with BEIRA's weights and everything needed to use them.

A bundle (``model.beira``) is a safetensors file. The tensors are the model's state dict;
the safetensors header metadata holds one key, ``"beira"``, whose value is a JSON object:
format name and version, creation time (UTC, ISO 8601), the full configuration
(:func:`beira_rt.config.to_dict`, which includes the preprocessing and the BOLD delay), the
model's input channel names, the sampling rate of the training recording and of the model,
the ROI names, the normalisation statistics of the EEG and of the targets, the default live
look-ahead, the metrics the training reached, and a content hash.

The content hash is the SHA-256 of the canonical JSON of that object without the hash
(sorted keys, no spaces) followed by, for every tensor in sorted name order, its name,
dtype, shape and raw bytes, each field length-prefixed. Any change to a metadata value or a
tensor after the file was written changes it, so :func:`load_bundle` refuses the file. The
hash guards integrity (a corrupted or hand-edited file, a mixed-up weight file), not
authenticity: whoever can write the file can also recompute it.

Loading (:func:`load_bundle`) never executes code from the file: safetensors holds raw
arrays and the metadata is parsed as JSON; nothing is unpickled.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from beira_rt import __version__
from beira_rt._bundle_file import (
    FORMAT,
    FORMAT_VERSION,
    METADATA_KEY,
    BundleError,
    check_hash,
    decode,
    encode,
)
from beira_rt._logging import logger
from beira_rt.config import BeiraConfig, ConfigError, from_dict, to_dict
from beira_rt.models import BEIRA, BEIRAReadout, build_model
from beira_rt.preprocessing.normalize import as_stats

if TYPE_CHECKING:
    from beira_rt.preprocessing import CausalPreprocessor, Normalizer

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "BundleError",
    "ModelBundle",
    "load_bundle",
    "save_bundle",
]


def _stats(values: Any, what: str) -> np.ndarray:
    try:
        return as_stats(values, f"bundle {what}")
    except ValueError as err:
        raise BundleError(str(err)) from None


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class ModelBundle:
    """A trained BEIRA model with its configuration, channels, ROIs and statistics.

    Parameters
    ----------
    config : BeiraConfig
        The full configuration the model was trained with.
    ch_names : tuple of str
        Model input channels, in order (n_chans).
    sfreq_in : float
        Sampling rate of the training recording in Hz.
    rois : tuple of str
        Model outputs, in order (n_rois).
    norm_mean, norm_std : array of shape (n_chans,)
        Statistics of the preprocessed EEG on the training block (its unit, usually µV).
    target_mean, target_std : array of shape (n_rois,)
        Statistics of the BOLD targets on the training block; predictions are
        ``model_output * target_std + target_mean``.
    lookahead : float
        Default live look-ahead in seconds (``>= 0``, less than the window).
    metrics : dict
        What the training reached (JSON-serialisable).
    state_dict : dict of str to torch.Tensor
        Weights and buffers of :class:`beira_rt.models.BEIRA` built from ``config``.
    content_hash : str
        SHA-256 hex digest; set by :func:`save_bundle` and :func:`load_bundle`.
    created : str
        Creation time, UTC ISO 8601.
    """

    config: BeiraConfig
    ch_names: tuple[str, ...]
    sfreq_in: float
    rois: tuple[str, ...]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray
    lookahead: float
    metrics: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    content_hash: str = ""
    created: str = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        if not isinstance(self.config, BeiraConfig):
            raise BundleError(f"bundle config must be a BeiraConfig, got {type(self.config).__name__}.")
        self.ch_names = tuple(str(c) for c in self.ch_names)
        self.rois = tuple(str(r) for r in self.rois)
        self.sfreq_in = float(self.sfreq_in)
        self.lookahead = float(self.lookahead)
        self.norm_mean = _stats(self.norm_mean, "norm_mean")
        self.norm_std = _stats(self.norm_std, "norm_std")
        self.target_mean = _stats(self.target_mean, "target_mean")
        self.target_std = _stats(self.target_std, "target_std")
        n_chans, n_rois = len(self.ch_names), len(self.rois)
        if n_chans == 0 or n_rois == 0:
            raise BundleError(f"a bundle needs at least one channel and one ROI; got {n_chans} and {n_rois}.")
        for name in ("norm_mean", "norm_std"):
            if getattr(self, name).size != n_chans:
                raise BundleError(
                    f"bundle {name} has {getattr(self, name).size} values but there are {n_chans} channels "
                    f"in ch_names; they must agree."
                )
        for name in ("target_mean", "target_std"):
            if getattr(self, name).size != n_rois:
                raise BundleError(
                    f"bundle {name} has {getattr(self, name).size} values but there are {n_rois} ROIs; "
                    "they must agree."
                )
        for name in ("norm_std", "target_std"):
            if np.any(getattr(self, name) <= 0):
                raise BundleError(f"bundle {name} must be positive; it has values <= 0.")
        if not np.isfinite(self.sfreq_in) or self.sfreq_in <= 0:
            raise BundleError(f"bundle sfreq_in must be a positive number of Hz, got {self.sfreq_in}.")
        window = self.config.model.n_times / self.sfreq
        if not 0.0 <= self.lookahead < window:
            raise BundleError(
                f"bundle lookahead {self.lookahead} s must be >= 0 and shorter than the window ({window} s)."
            )

    # ------------------------------------------------------------------ derived values

    @property
    def sfreq(self) -> float:
        """Model sampling rate in Hz (``config.preprocessing.sfreq``)."""
        return self.config.preprocessing.sfreq

    @property
    def bold_delay(self) -> float:
        """Haemodynamic delay in seconds (``config.model.bold_delay``)."""
        return self.config.model.bold_delay

    @property
    def n_chans(self) -> int:
        """Number of model input channels."""
        return len(self.ch_names)

    @property
    def n_rois(self) -> int:
        """Number of model outputs."""
        return len(self.rois)

    @property
    def normalizer(self) -> Normalizer:
        """The EEG z-scoring of the training block."""
        from beira_rt.preprocessing import Normalizer

        return Normalizer(self.norm_mean, self.norm_std)

    def denormalize(self, pred: np.ndarray) -> np.ndarray:
        """Model output -> sBOLD in the unit of the training targets.

        Parameters
        ----------
        pred : array of shape (..., n_rois)

        Returns
        -------
        array of shape (..., n_rois), float64
        """
        return np.asarray(pred, dtype=np.float64) * self.target_std + self.target_mean

    # ------------------------------------------------------------------ builders

    def build_model(self, device: str | torch.device = "cpu") -> BEIRA | BEIRAReadout:
        """The model, weights loaded, in eval mode, on ``device``."""
        model = _check_weights(self)
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()

    def make_preprocessor(self, sfreq_in: float | None = None) -> CausalPreprocessor:
        """The causal preprocessor of this model for an input at ``sfreq_in`` Hz.

        Parameters
        ----------
        sfreq_in : float | None
            Rate of the EEG to process; default the training recording's. Another rate
            is fine (the preprocessor resamples to the model rate), and is logged.
        """
        from beira_rt.preprocessing import CausalPreprocessor

        rate = self.sfreq_in if sfreq_in is None else float(sfreq_in)
        if rate != self.sfreq_in:
            logger.info("input rate %g Hz differs from the training recording's %g Hz", rate, self.sfreq_in)
        return CausalPreprocessor(self.config.preprocessing, rate, self.n_chans)

    def describe(self) -> str:
        """A few lines for logs and ``--help``-style summaries."""
        m = self.config.model
        n_params = sum(
            int(t.numel()) for k, t in self.state_dict.items() if "running" not in k and t.dim() > 0
        )
        lines = [
            f"BEIRA bundle {self.content_hash[:12] or '(not saved)'} created {self.created}",
            f"  model: {m.variant}, {self.n_rois} heads, {n_params:,} weights, window {m.n_times} samples "
            f"({m.n_times / self.sfreq:g} s at {self.sfreq:g} Hz)",
            f"  input: {self.n_chans} channels ({', '.join(self.ch_names[:4])}"
            f"{', ...' if self.n_chans > 4 else ''}), trained at {self.sfreq_in:g} Hz",
            f"  outputs: {', '.join(self.rois)}",
            f"  BOLD delay {self.bold_delay:g} s, default look-ahead {self.lookahead:g} s",
        ]
        if self.metrics:
            shown = {k: v for k, v in self.metrics.items() if isinstance(v, int | float | str)}
            lines.append(
                "  metrics: "
                + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------- file


def _metadata(bundle: ModelBundle) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": bundle.created,
        "beira_rt_version": __version__,
        "torch_version": torch.__version__,
        "config": to_dict(bundle.config),
        "ch_names": list(bundle.ch_names),
        "sfreq_in": bundle.sfreq_in,
        "sfreq": bundle.sfreq,
        "rois": list(bundle.rois),
        "normalization": {
            "eeg": {"mean": bundle.norm_mean.tolist(), "std": bundle.norm_std.tolist()},
            "target": {"mean": bundle.target_mean.tolist(), "std": bundle.target_std.tolist()},
        },
        "bold_delay": bundle.bold_delay,
        "lookahead": bundle.lookahead,
        "metrics": bundle.metrics,
    }


def _check_weights(bundle: ModelBundle) -> BEIRA | BEIRAReadout:
    """Build the architecture of ``bundle.config`` and check the state dict against it."""
    try:
        model = build_model(bundle.config.model, bundle.n_chans, bundle.n_rois, bundle.sfreq)
    except ValueError as err:
        raise BundleError(f"the bundle's model configuration cannot be built: {err}") from None
    expected = model.state_dict()
    state = bundle.state_dict
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for what, items in (
        ("missing tensors", missing),
        ("unexpected tensors", unexpected),
        ("wrong shapes", wrong),
    ):
        if items:
            problems.append(f"{what} {items[:8]}{' ...' if len(items) > 8 else ''}")
    if problems:
        raise BundleError(
            "the weights do not match the architecture in the bundle's config "
            f"({model.n_outputs} heads, {model.n_chans} channels): " + "; ".join(problems) + "."
        )
    return model


def save_bundle(bundle: ModelBundle, path: str | Path) -> str:
    """Write ``bundle`` to ``path`` (atomically) and return its content hash.

    The weights are checked against the architecture built from ``bundle.config`` first.
    ``bundle.content_hash`` is set to the returned hash.

    Raises
    ------
    BundleError
        If the weights do not fit the architecture or the metrics are not JSON-serialisable.
    """
    path = Path(path)
    _check_weights(bundle)
    data, digest = encode(_metadata(bundle), bundle.state_dict)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    bundle.content_hash = digest
    logger.info("saved BEIRA bundle %s (%d bytes, hash %s)", path, len(data), digest[:12])
    return digest


def load_bundle(path: str | Path) -> ModelBundle:
    """Read and check a bundle written by :func:`save_bundle`; never executes code from the file.

    Raises
    ------
    BundleError
        The file is missing, not a bundle, truncated or corrupt, of an unknown format
        version, has an invalid config, was modified after it was written (hash mismatch),
        has inconsistent lengths, or weights that do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"model bundle {path} does not exist (or is not a file).")
    meta, tensors = decode(path, path.read_bytes())
    try:
        config = from_dict(meta.get("config"), stored=True)
    except ConfigError as err:
        raise BundleError(f"{path}: the configuration stored in the bundle is invalid: {err}") from None
    digest = check_hash(path, meta, tensors)
    try:
        norm = meta["normalization"]
        bundle = ModelBundle(
            config=config,
            ch_names=tuple(meta["ch_names"]),
            sfreq_in=meta["sfreq_in"],
            rois=tuple(meta["rois"]),
            norm_mean=norm["eeg"]["mean"],
            norm_std=norm["eeg"]["std"],
            target_mean=norm["target"]["mean"],
            target_std=norm["target"]["std"],
            lookahead=meta["lookahead"],
            metrics=dict(meta.get("metrics") or {}),
            state_dict=tensors,
            content_hash=digest,
            created=str(meta.get("created", "")),
        )
    except (KeyError, TypeError) as err:
        raise BundleError(f"{path}: the bundle metadata lacks or mistypes the entry {err}.") from None
    except BundleError as err:
        raise BundleError(f"{path}: {err}") from None
    for key, derived in (("sfreq", bundle.sfreq), ("bold_delay", bundle.bold_delay)):
        if meta.get(key) != derived:
            raise BundleError(
                f"{path}: metadata {key}={meta.get(key)!r} disagrees with its config ({derived})."
            )
    try:
        _check_weights(bundle)
    except BundleError as err:
        raise BundleError(f"{path}: {err}") from None
    logger.debug("loaded BEIRA bundle %s (hash %s)", path, digest[:12])
    return bundle
