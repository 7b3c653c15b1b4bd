"""Typed, validated configuration shared by the trainer, the engine and the replay tool.

A configuration is a tree of frozen dataclasses. YAML is read with
``yaml.safe_load`` and converted with :func:`from_dict`, which rejects unknown
keys, wrong types and out-of-range values with a message that names the key
path (``model.strides[1]``) and what is allowed.

Each field may carry constraints in its metadata, built with :func:`spec`:
``ge`` / ``gt`` / ``le`` / ``lt`` bounds, a tuple of allowed ``choices``, and a
one-line ``doc``. Sections own their own fields: to add an option, add a field
to the section dataclass with a default, and document it in
``configs/default.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml

__all__ = [
    "BeiraConfig",
    "ConfigError",
    "DashboardConfig",
    "DataConfig",
    "LiveConfig",
    "ModelConfig",
    "PreprocessingConfig",
    "ReplayConfig",
    "TrainingConfig",
    "from_dict",
    "load_config",
    "override",
    "to_dict",
]

#: The 8 target ROIs in Harvard-Oxford spelling (the order of the model outputs).
DEFAULT_ROIS = (
    "Left Pallidum",
    "Right Pallidum",
    "Left Caudate",
    "Right Caudate",
    "Left Putamen",
    "Right Putamen",
    "Left Accumbens",
    "Right Accumbens",
)


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


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DataConfig:
    """Where the EEG and the ROI series come from and how they are matched."""

    rois: tuple[str, ...] = spec(DEFAULT_ROIS, doc="target ROIs (Harvard-Oxford names)", min_len=1)
    eeg_channels: tuple[str, ...] | None = spec(
        None, doc="EEG channels the model uses, in order; null = every EEG channel of the file"
    )
    drop_channels: tuple[str, ...] = spec(
        ("EOG", "ECG", "CW*"), doc="channel names (fnmatch patterns) removed before modelling"
    )
    min_eeg_channels: int = spec(8, doc="fewer EEG channels than this (after dropping) is an error", ge=1)
    volume_marker: str = spec("mri", doc="annotation that marks an fMRI volume onset")
    confounds: bool = spec(True, doc="regress 6 motion parameters + global signal out of the ROI series")
    smoothing_fwhm: float | None = spec(3.0, doc="spatial smoothing of the fMRI in mm (null = none)", gt=0)
    standardize_bold: bool = spec(True, doc="z-score each ROI series (training-block statistics)")


@dataclass(frozen=True)
class PreprocessingConfig:
    """Causal EEG preprocessing shared by the trainer and the live engine."""

    sfreq: float = spec(100.0, doc="model sampling rate in Hz", gt=0, le=1000)
    notch_freq: float | None = spec(50.0, doc="power-line frequency in Hz (null = no notch)", gt=0)
    notch_harmonics: bool = spec(True, doc="also notch the harmonics below the input Nyquist frequency")
    notch_width: float = spec(2.0, doc="notch bandwidth in Hz", gt=0, le=20)
    l_freq: float | None = spec(1.0, doc="band-pass low edge in Hz (null = no high-pass)", gt=0)
    h_freq: float | None = spec(
        100.0,
        doc="band-pass high edge in Hz (null = no low-pass); clipped to 0.45 x the input rate; "
        "the anti-alias low-pass at 0.4 x sfreq bounds what reaches the model",
        gt=0,
    )
    filter_order: int = spec(4, doc="Butterworth order of the band-pass", ge=1, le=10)
    car: bool = spec(True, doc="common average reference over the model channels")

    def __post_init__(self) -> None:
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ConfigError(
                f"preprocessing.l_freq ({self.l_freq}) must be below preprocessing.h_freq ({self.h_freq})."
            )


@dataclass(frozen=True)
class ModelConfig:
    """BEIRA architecture (see beira_rt.models)."""

    variant: str = spec(
        "reference", doc="'reference' (same padding) or 'causal'", choices=("reference", "causal")
    )
    n_times: int = spec(2048, doc="window length in model-rate samples", ge=16)
    n_filters: int = spec(16, doc="spatial unmixing branches of the interpretable block (per ROI)", ge=1)
    filter_size: int = spec(51, doc="taps of the learned band-pass filters", ge=1)
    envelope_size: int = spec(51, doc="taps of the learned envelope low-pass filters", ge=1)
    envelope_log: bool = spec(
        True,
        doc="compress each branch's envelope with sign(x) log(1 + |x|) before the encoder (artefacts and "
        "large envelopes weigh less; no parameters)",
    )
    filter_init: str = spec(
        "filterbank",
        doc="initial band-pass and envelope filters: random (torch's default, the paper's) or filterbank "
        "(each head's branches start as Hann-windowed band-passes at log-spaced frequencies from 3 Hz to "
        "0.38 x the model rate, and the envelope filters as Hann low-passes); the training moves them",
        choices=("random", "filterbank"),
    )
    channels: tuple[int, ...] = spec(
        (16, 16, 16, 16), doc="encoder widths per ROI (first = after the feature block)", ge=1, min_len=2
    )
    kernel_sizes: tuple[int, ...] = spec(
        (5, 5, 3), doc="encoder kernel sizes, one per stride", ge=1, min_len=1
    )
    strides: tuple[int, ...] = spec((8, 8, 4), doc="encoder downsampling factors", ge=1, min_len=1)
    decoder_reduce: int = spec(
        1, doc="decoder widths are the encoder widths divided by this (the bottleneck is kept)", ge=1
    )
    dropout: float = spec(0.3, doc="dropout after each conv block", ge=0, lt=1)
    bold_delay: float = spec(
        2.0,
        doc="haemodynamic delay between EEG and BOLD in seconds: the output at EEG time t estimates the BOLD "
        "at t + bold_delay (the paper: 6; 2 keeps nearly all of the EEG a BOLD sample depends on at the live edge)",
        ge=0,
        le=20,
    )

    def __post_init__(self) -> None:
        if len(self.kernel_sizes) != len(self.strides) or len(self.channels) != len(self.strides) + 1:
            raise ConfigError(
                "model.channels must have one more entry than model.strides, and model.kernel_sizes "
                f"as many as model.strides; got channels={list(self.channels)}, "
                f"strides={list(self.strides)}, kernel_sizes={list(self.kernel_sizes)}."
            )
        total_stride = 1
        for stride in self.strides:
            total_stride *= stride
        if self.n_times % total_stride:
            lower = max(total_stride, self.n_times // total_stride * total_stride)
            upper = (self.n_times // total_stride + 1) * total_stride
            raise ConfigError(
                f"model.n_times ({self.n_times}) must be a multiple of the product of model.strides "
                f"{list(self.strides)} = {total_stride}; use {lower} or {upper}."
            )
        too_narrow = [c for c in self.channels[:-1] if c < self.decoder_reduce]
        if too_narrow:
            raise ConfigError(
                f"model.decoder_reduce ({self.decoder_reduce}) leaves no decoder channels for encoder "
                f"widths {too_narrow}; make it at most {min(self.channels[:-1])}."
            )


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation and evaluation of the offline trainer."""

    seed: int = spec(0, doc="seed of every random generator", ge=0)
    device: str = spec("auto", doc="torch device", choices=("auto", "cpu", "cuda"))
    test_seconds: float = spec(60.0, doc="last block of the recording held out for testing", gt=0)
    val_seconds: float = spec(60.0, doc="block before the test block used for validation", gt=0)
    batch_size: int = spec(16, doc="windows per step", ge=1)
    lr: float = spec(1e-3, doc="AdamW learning rate", gt=0)
    weight_decay: float = spec(3e-4, doc="AdamW weight decay", ge=0)
    loss: str = spec("mse", doc="training loss", choices=("mse", "corr", "mse+corr"))
    max_epochs: int = spec(30, doc="upper bound on epochs", ge=1)
    steps_per_epoch: int = spec(20, doc="optimisation steps per epoch", ge=1)
    patience: int = spec(12, doc="epochs without validation improvement before stopping", ge=1)
    checkpoint: str = spec(
        "per_roi",
        doc="checkpoint choice on the validation block: per_roi = each ROI head from its own best epoch "
        "(the heads are independent, as the paper's one model per ROI); mean = one epoch, best mean r",
        choices=("per_roi", "mean"),
    )
    max_minutes: float | None = spec(
        5.0,
        doc="wall-clock budget for training (null = none); the schedule anneals within it. 5 min: the "
        "default model on a 2-core CPU; configs/paper.yaml gives the paper's model 15 min (it trained without a "
        "budget, on a GPU)",
        gt=0,
    )
    lookaheads: tuple[float, ...] = spec((0.0, 0.5, 1.0, 2.0, 3.0), doc="look-aheads (s) evaluated", ge=0)
    num_threads: int | None = spec(
        None, doc="torch CPU threads for training (null = torch default: every core); 1 on a shared CPU", ge=1
    )
    schedule: str = spec(
        "onecycle",
        doc="learning-rate schedule: warm-up + cosine decay, cosine decay, or constant",
        choices=("onecycle", "cosine", "constant"),
    )
    warmup_fraction: float = spec(0.05, doc="fraction of the steps spent warming up ('onecycle')", ge=0, lt=1)
    grad_clip: float | None = spec(1.0, doc="clip the gradient norm to this (null = no clipping)", gt=0)
    precision: str = spec(
        "fp32",
        doc="training arithmetic: fp32, or bf16 autocast (weights and evaluation stay fp32)",
        choices=("fp32", "bf16"),
    )
    eval_batch_size: int = spec(16, doc="windows per forward pass when predicting a block", ge=1)
    share_front_end: bool = spec(
        False,
        doc="train one interpretable front end for all ROI heads (the same unmixing, band-pass and envelope "
        "filters, their gradients summed over the heads), each head keeping its own encoder and read-out; "
        "the bundle keeps the per-head form (with training.checkpoint per_roi each head is taken from its "
        "own best epoch). Needs the fused head layout",
    )
    ema_decay: float | None = spec(
        None,
        doc="validate (and keep) an exponential moving average of the weights with this decay per step "
        "instead of the raw weights (null = no averaging)",
        gt=0,
        lt=1,
    )
    head_layout: str = spec(
        "fused",
        doc="how the ROI heads are trained: fused (grouped convolutions) or separate (the same weights "
        "and outputs; on a CPU oneDNN's backward of grouped convolutions is ~1.7x slower); "
        "auto = separate on a CPU, fused on a GPU. The bundle always holds the fused model",
        choices=("auto", "fused", "separate"),
    )
    lookahead_tolerance: float = spec(
        0.02, doc="bundle look-ahead: the smallest one within this of the best validation mean r", ge=0
    )
    baseline_alphas: tuple[float, ...] = spec(
        (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6),
        doc="ridge penalties tried by the linear baseline",
        gt=0,
        min_len=1,
    )


@dataclass(frozen=True)
class LiveConfig:
    """The live engine."""

    device: str = spec("auto", doc="torch device", choices=("auto", "cpu", "cuda"))
    num_threads: int = spec(1, doc="torch CPU threads for inference", ge=1)
    hop: float = spec(0.1, doc="seconds between model updates", gt=0, le=10)
    lookahead: float | None = spec(None, doc="seconds of look-ahead (null = the bundle's)", ge=0)
    buffer_seconds: float = spec(30.0, doc="ring-buffer length in seconds", gt=0)
    resolve_timeout: float = spec(10.0, doc="seconds to wait for the source stream", gt=0)
    processing_flags: tuple[str, ...] = spec(
        ("clocksync", "dejitter"),
        doc="input timestamp post-processing: clocksync/monotonize/threadsafe are liblsl's; dejitter is "
        "done by the engine per gap-free segment (liblsl's would smooth gaps away)",
        choices=("clocksync", "dejitter", "monotonize", "threadsafe"),
    )
    gap_tolerance_ms: float = spec(
        50.0,
        doc="a stamp this far off the de-jittered sample clock is an anomaly (a gap when samples are "
        "missing); ordinary chunk jitter (a few ms) never crosses it",
        gt=0,
        le=5000,
    )
    bridge: str = spec(
        "repeat",
        doc="how a missing span (outage, gap, NaN run) is filled: 'repeat' the newest real data, 'zeros' "
        "(the training mean), or 'reset' (wait for a whole new window)",
        choices=("repeat", "zeros", "reset"),
    )
    max_bridge: float = spec(15.0, doc="longest missing span (s) that is bridged; longer ones reset", ge=0)
    resume_seconds: float = spec(
        0.5, doc="seconds of returning data before predictions resume after a bridged span", ge=0, le=10
    )
    flat_uv: float = spec(
        0.5, doc="a channel whose peak-to-peak stays below this (µV) for 0.5 s is flat", ge=0
    )
    rail_uv: float = spec(
        5000.0, doc="a sample at or beyond this magnitude (µV) marks its channel railed", gt=0
    )
    repair_channels: bool = spec(
        True, doc="replace flat and railed channels by their spherical-spline interpolation"
    )
    outlet_name: str = spec("BEIRA", doc="name of the prediction stream")
    status_interval: float = spec(1.0, doc="seconds between status messages", gt=0)
    stem_cache: bool = spec(
        True, doc="reuse the model's full-rate stem between updates (same output, about 3x less compute)"
    )


@dataclass(frozen=True)
class ReplayConfig:
    """The replay tool."""

    speed: float = spec(1.0, doc="replay speed factor", gt=0, le=1000)
    chunk_size: int = spec(10, doc="samples per pushed chunk", ge=1)
    loop: bool = spec(False, doc="restart at the end with continuous timestamps")
    markers: bool = spec(True, doc="publish annotations as a marker stream")
    name: str = spec("beira-replay", doc="EEG stream name (markers and truth add -markers / -truth)")


@dataclass(frozen=True)
class DashboardConfig:
    """The Qt dashboard."""

    fps: float = spec(30.0, doc="redraw rate", gt=0, le=240)
    window_seconds: float = spec(10.0, doc="visible EEG time window", gt=0)
    bold_window_seconds: float = spec(120.0, doc="visible prediction time window", gt=0)
    eeg_channels_shown: int = spec(16, doc="EEG channels shown when a stream connects (the first ones)", ge=1)
    stale_seconds: float = spec(3.0, doc="a connected stream silent for this long is shown as stalled", gt=0)
    nice: int = spec(
        10, doc="beira-rt dashboard lowers its CPU priority by this much (POSIX nice)", ge=0, le=19
    )
    sched_idle: bool = spec(
        True,
        doc="Linux: run beira-rt dashboard under SCHED_IDLE (only on CPU time nothing else wants)",
    )


@dataclass(frozen=True)
class BeiraConfig:
    """The whole configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)


# --------------------------------------------------------------------------- conversion


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


#: Keys earlier versions had, and what replaced them. A config file with one is an error that
#: says so; a bundle written by an earlier version (its stored config) loads without them.
RETIRED_KEYS = {
    ("live", "gap_factor"): "live.gap_tolerance_ms (a tolerance in ms on the de-jittered sample clock, "
    "not a step between two stamps)",
}


def _drop_retired(data: dict[str, Any], stored: bool) -> dict[str, Any]:
    out = dict(data)
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
        since (:data:`RETIRED_KEYS`) are dropped instead of refused.

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
    return _build(BeiraConfig, _drop_retired(data, stored), "")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain, YAML/JSON-serialisable form of a config (tuples become lists)."""

    def plain(v: Any) -> Any:
        if is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


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


def override(cfg: BeiraConfig, updates: dict[str, Any]) -> BeiraConfig:
    """Return a copy of ``cfg`` with dotted-key overrides applied and validated.

    ``updates`` maps ``"section.key"`` to a value; ``None`` values are ignored
    (an unset CLI flag), so CLIs can pass their parsed flags straight through.
    """
    data = to_dict(cfg)
    for dotted, value in updates.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in data or not key:
            raise ConfigError(f"override {dotted!r} does not name a config key (section.key).")
        data[section][key] = list(value) if isinstance(value, tuple) else value
    return from_dict(data)
