"""Typed, validated configuration shared by the trainer, the engine, the replay tool and the dashboard.

A configuration is a tree of frozen dataclasses (:mod:`.sections`). YAML is read
with ``yaml.safe_load`` and converted with :func:`from_dict`, which rejects
unknown keys, wrong types and out-of-range values with a message that names the
key path (:mod:`.validate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from . import sections, validate
from .sections import *  # noqa: F403 (the sections and DEFAULT_ROIS)
from .sections import BeiraConfig
from .validate import *  # noqa: F403 (ConfigError, build, spec, to_dict)
from .validate import ConfigError, build, to_dict

__all__ = [
    *sections.__all__, *validate.__all__, "RETIRED_KEYS", "from_dict", "load_config", "override", "parse_assignments",
]  # fmt: skip


#: Keys earlier versions had, and what replaced them. A config file with one is an error that
#: says so; a bundle written by an earlier version (its stored config) loads without them.
RETIRED_KEYS = {
    ("live", "gap_factor"): "live.gap_tolerance_ms (a tolerance in ms on the de-jittered sample clock, "
    "not a step between two stamps)",
}


#: Keys whose default changed, with the value a stored config that lacks them was written with
#: (a bundle from before the read-out back end holds a U-Net: its config has no model.backbone).
STORED_DEFAULTS = {("model", "backbone"): "unet", ("model", "readout_quadratic"): False}


def _drop_retired(data: dict[str, Any], stored: bool) -> dict[str, Any]:
    out = dict(data)
    if stored:
        for (section, key), value in STORED_DEFAULTS.items():
            if isinstance(out.get(section), dict) and key not in out[section]:
                out[section] = {**out[section], key: value}
    for (section, key), instead in RETIRED_KEYS.items():
        if isinstance(out.get(section), dict) and key in out[section]:
            if not stored:
                raise ConfigError(f"{section}.{key} is no longer a setting; use {instead}.")
            out[section] = {k: v for k, v in out[section].items() if k != key}
    return out


def from_dict(data: dict[str, Any] | None, *, stored: bool = False) -> BeiraConfig:
    """Build a validated :class:`BeiraConfig` from a plain mapping (missing keys take defaults).

    Parameters
    ----------
    data : dict | None
        The sections and their keys.
    stored : bool
        True for a config stored in a bundle by an earlier version: keys that were retired
        since (:data:`RETIRED_KEYS`) are dropped instead of refused, and keys it lacks whose
        default changed since take the value it was written with (:data:`STORED_DEFAULTS`).

    Raises
    ------
    ConfigError
        On an unknown key, a wrong type or an out-of-range value; the message
        names the key path.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}.")
    return build(BeiraConfig, _drop_retired(data, stored))


def load_config(path: str | Path | None = None) -> BeiraConfig:
    """Load a YAML config file safely and validate it; ``None`` gives the defaults."""
    if path is None:
        return BeiraConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    try:
        return from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["model.n_filters=3", "training.readout_alphas=[1.0, 10.0]"]`` -> the dict :func:`override`
    takes, each value read as YAML (safely; ``KEY=null`` is ``None``: pass ``skip_none=False`` to
    :func:`override` to set it). An item without ``=``, or a value that is not valid safe YAML,
    is a :class:`ConfigError`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not KEY=VALUE.")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {err}") from None
    return out


def override(cfg: BeiraConfig, updates: dict[str, Any], *, skip_none: bool = True) -> BeiraConfig:
    """Return a copy of ``cfg`` with dotted-key overrides applied and validated.

    ``updates`` maps ``"section.key"`` to a value. With ``skip_none`` (the default) ``None``
    values are ignored (an unset CLI flag), so CLIs can pass their parsed flags straight
    through; ``skip_none=False`` sets them (``KEY=null`` from :func:`parse_assignments`).
    """
    data = to_dict(cfg)
    for dotted, value in updates.items():
        if value is None and skip_none:
            continue
        section, _, key = dotted.partition(".")
        if section not in data or not key:
            raise ConfigError(f"override {dotted!r} does not name a config key (section.key).")
        data[section][key] = list(value) if isinstance(value, tuple) else value
    return from_dict(data)
