"""Validation of configuration trees: frozen dataclasses built from plain mappings.

:func:`build` converts a mapping (from ``yaml.safe_load``) into a dataclass,
rejecting unknown keys, wrong types and out-of-range values with a message that
names the key path (``model.strides[1]``) and what is allowed. Each field may
carry constraints in its metadata, built with :func:`spec`: ``ge`` / ``gt`` /
``le`` / ``lt`` bounds, a tuple of allowed ``choices``, ``min_len`` and a
one-line ``doc``. Nothing here knows beira-rt's sections (:mod:`.sections`); the
session protocols (and any other YAML the project reads) use the same rules.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field, fields, is_dataclass
from typing import Any, get_args, get_origin

__all__ = ["ConfigError", "build", "spec", "to_dict"]


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def spec(default: Any = dataclasses.MISSING, *, doc: str = "", **constraints: Any) -> Any:
    """Declare a config field with a default and validation constraints.

    Parameters
    ----------
    default : object
        The default value. Lists are given as tuples (configs are immutable).
    doc : str
        One-line description shown in error messages.
    **constraints
        Any of ``ge``, ``gt``, ``le``, ``lt`` (numeric bounds, applied to every
        element of a tuple) and ``choices`` (a tuple of allowed values).
    """
    allowed = {"ge", "gt", "le", "lt", "choices", "min_len"}
    unknown = set(constraints) - allowed
    if unknown:
        raise TypeError(f"spec() got unknown constraints {sorted(unknown)}; allowed: {sorted(allowed)}")
    return field(default=default, metadata={"doc": doc, **constraints})


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str, meta: typing.Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: null is not allowed; expected {_type_name(tp)}.")
        last: ConfigError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path, meta)
            except ConfigError as err:
                last = err
        assert last is not None
        raise last
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}.")
        (elem_tp, _ellipsis) = get_args(tp)
        min_len = meta.get("min_len")
        if min_len is not None and len(value) < min_len:
            raise ConfigError(f"{path}: expected at least {min_len} entries, got {len(value)}.")
        return tuple(_convert(v, elem_tp, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of options, got {type(value).__name__} {value!r}.")
        return _build(tp, value, path)
    # scalars
    if value is None:
        raise ConfigError(f"{path}: null is not allowed; expected {_type_name(tp)}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {type(value).__name__} {value!r}.")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {type(value).__name__} {value!r}.")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {type(value).__name__} {value!r}.")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {type(value).__name__} {value!r}.")
    else:  # pragma: no cover - a developer error in a section definition
        raise TypeError(f"unsupported config type {tp!r} at {path}")
    _check_constraints(value, path, meta)
    return value


def _check_constraints(value: Any, path: str, meta: typing.Mapping[str, Any]) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{path}: {value!r} is not allowed; choose one of {allowed}.")
    bounds = (
        ("ge", ">=", lambda a, b: a >= b),
        ("gt", ">", lambda a, b: a > b),
        ("le", "<=", lambda a, b: a <= b),
        ("lt", "<", lambda a, b: a < b),
    )
    for key, word, ok in bounds:
        if key in meta and not ok(value, meta[key]):
            raise ConfigError(f"{path}: {value!r} is out of range; it must be {word} {meta[key]}.")


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(where + str(k) for k in unknown)}; "
            f"allowed keys{' in ' + path if path else ''}: {', '.join(sorted(known))}."
        )
    kwargs = {}
    for name, value in data.items():
        sub = f"{path}.{name}" if path else name
        kwargs[name] = _convert(value, hints[name], sub, known[name].metadata)
    return cls(**kwargs)


def build(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, validating every key (see the module docstring).

    Raises
    ------
    ConfigError
        Naming the key path of the first unknown key, wrong type or out-of-range value.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'the configuration'} must be a mapping, got {type(data).__name__}.")
    return _build(cls, data, path)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain, YAML/JSON-serialisable form of a config (tuples become lists)."""

    def plain(v: Any) -> Any:
        if is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return plain(cfg)
