"""The preprocessing cache: each recording loaded and preprocessed once, then memory-mapped.

Loading a CWL subject (MNE reads the EEG, nibabel and nilearn extract the ROI series) and
running the causal preprocessing over it is most of a short run's start-up. The cache keeps
what the trainer needs of it — the preprocessed model-rate EEG and the model-rate BOLD as
``.npy`` files, the rest (channel and ROI names, provenance, warnings) as JSON — in one
folder per entry::

    CACHE_DIR/{subject}-{key[:16]}/eeg.npy, bold.npy, meta.json

The key (:func:`cache_key`) is a sha256 over the sha256 of every input file (by role), the
``data`` and ``preprocessing`` sections of the config, the subject and a format version: a
changed file or config gives a new key, so a stale entry is never read (old entries stay on
disk until removed). An entry is written into a temporary folder and renamed into place, so
a reader sees a whole entry or none, also when several processes (DDP ranks, parallel runs)
build the same one. A hit memory-maps the arrays (``numpy.load(mmap_mode='r')``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beira_rt._logging import logger
from beira_rt.config import BeiraConfig, to_dict
from beira_rt.preprocessing import preprocess_recording

from .loader.recording import Recording, sha256_file

__all__ = ["CACHE_VERSION", "PreprocessedRecording", "cache_key", "cached_recording", "cwl_inputs"]

#: Bumped whenever what an entry holds, or how it is computed, changes.
CACHE_VERSION = 1


@dataclass
class PreprocessedRecording:
    """A recording as the trainer uses it: preprocessed EEG and BOLD at the model rate.

    Attributes
    ----------
    preprocessed : array of shape (n_chans, n_model)
        The EEG after :func:`beira_rt.preprocessing.preprocess_recording` (float64; a
        read-only memory map on a cache hit).
    bold : array of shape (n_rois, n_model_bold)
        As :attr:`offline.loader.Recording.bold`.
    sfreq : float
        Rate of the raw EEG in Hz.
    n_samples : int
        Raw EEG samples.
    ch_names, roi_names : tuple of str
    subject : str
    warnings : list of str
        The loader's warnings (kept in the entry).
    provenance : dict
        The loader's provenance (files with their sha256, options, ``data_hash``).
    cache : dict
        ``key``, ``path`` of the entry and ``hit`` (whether it was read from disk).
    """

    preprocessed: np.ndarray
    bold: np.ndarray
    sfreq: float
    n_samples: int
    ch_names: tuple[str, ...]
    roi_names: tuple[str, ...]
    subject: str
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Raw EEG duration in seconds."""
        return self.n_samples / self.sfreq

    @property
    def data_hash(self) -> str:
        """The loader's data hash (inputs and loading options)."""
        return str(self.provenance.get("data_hash", ""))


def cache_key(inputs: Mapping[str, str | Path], cfg: BeiraConfig, subject: str) -> str:
    """sha256 hex key of a cache entry.

    Parameters
    ----------
    inputs : mapping of role -> path or str
        The input files; a role whose value is not an existing file (a fetched atlas's name)
        enters the key as that text.
    cfg : BeiraConfig
        Its ``data`` and ``preprocessing`` sections enter the key.
    subject : str
    """
    files = {role: sha256_file(p) if Path(p).is_file() else f"name:{p}" for role, p in sorted(inputs.items())}
    doc = {
        "version": CACHE_VERSION,
        "subject": subject,
        "files": files,
        "data": to_dict(cfg)["data"],
        "preprocessing": to_dict(cfg)["preprocessing"],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cwl_inputs(
    data_dir: str | Path, subject: str, atlas: str | Path | None, atlas_labels: str | Path | None
) -> dict[str, str | Path]:
    """The inputs (role -> path) of a CWL subject for :func:`cache_key` (the fetched atlas by name)."""
    from .loader import cwl_paths

    paths = cwl_paths(data_dir, subject)
    return {"eeg": paths.eeg, "eeg_data": paths.eeg.with_suffix(".fdt"), "nifti": paths.nifti,
            "motion": paths.motion, "atlas": atlas or "nilearn Harvard-Oxford",
            "atlas_labels": atlas_labels or ""}  # fmt: skip


def _read(entry: Path, key: str) -> PreprocessedRecording | None:
    """The entry at ``entry``, memory-mapped, or None when it is absent or unreadable."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        eeg = np.load(entry / "eeg.npy", mmap_mode="r")
        bold = np.load(entry / "bold.npy", mmap_mode="r")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:  # written whole by the rename: only foreign damage gets here
        logger.warning("cache entry %s is unreadable (%s); rebuilding it", entry, err)
        return None
    if meta.get("key") != key:
        logger.warning("cache entry %s holds key %s, not %s; rebuilding it", entry, meta.get("key"), key)
        return None
    return PreprocessedRecording(
        preprocessed=eeg, bold=bold, sfreq=float(meta["sfreq"]), n_samples=int(meta["n_samples"]),
        ch_names=tuple(meta["ch_names"]), roi_names=tuple(meta["roi_names"]), subject=meta["subject"],
        warnings=list(meta["warnings"]), provenance=meta["provenance"],
        cache={"key": key, "path": str(entry), "hit": True},
    )  # fmt: skip


def _write(entry: Path, key: str, rec: PreprocessedRecording) -> None:
    """Write an entry atomically: into a temporary folder beside it, then one rename."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        np.save(tmp / "eeg.npy", np.ascontiguousarray(rec.preprocessed))
        np.save(tmp / "bold.npy", np.ascontiguousarray(rec.bold))
        meta = {
            "key": key, "version": CACHE_VERSION, "sfreq": rec.sfreq, "n_samples": rec.n_samples,
            "ch_names": list(rec.ch_names), "roi_names": list(rec.roi_names), "subject": rec.subject,
            "warnings": rec.warnings, "provenance": rec.provenance,
        }  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.rename(tmp, entry)  # atomic; fails when another process put the entry there first
    except OSError:
        if not (entry / "meta.json").is_file():
            raise
        logger.debug("cache entry %s was written by another process", entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_recording(
    inputs: Mapping[str, str | Path],
    load: Callable[[], Recording],
    cfg: BeiraConfig,
    subject: str,
    cache_dir: str | Path | None,
) -> PreprocessedRecording:
    """The preprocessed recording from the cache, or loaded, preprocessed and stored.

    Parameters
    ----------
    inputs : mapping of role -> path or str
        What the recording is read from (see :func:`cache_key`).
    load : callable
        Loads the :class:`~offline.loader.Recording` on a miss (its errors pass through).
    cfg : BeiraConfig
    subject : str
    cache_dir : str, Path or None
        The cache folder; None: load and preprocess without a cache.

    Returns
    -------
    PreprocessedRecording
    """
    key = cache_key(inputs, cfg, subject) if cache_dir is not None else ""
    entry = Path(cache_dir) / f"{subject}-{key[:16]}" if cache_dir is not None else None
    if entry is not None and (hit := _read(entry, key)) is not None:
        logger.info("preprocessed %s read from the cache %s", subject, entry)
        return hit
    rec = load()
    out = PreprocessedRecording(
        preprocessed=preprocess_recording(rec.eeg, rec.sfreq, cfg.preprocessing), bold=rec.bold,
        sfreq=rec.sfreq, n_samples=rec.n_samples, ch_names=rec.ch_names, roi_names=rec.roi_names,
        subject=rec.subject, warnings=list(rec.warnings), provenance=rec.provenance,
        cache={"key": key, "path": str(entry) if entry else None, "hit": False},
    )  # fmt: skip
    if entry is not None:
        _write(entry, key, out)
        logger.info("preprocessed %s written to the cache %s", subject, entry)
    return out
