"""The sections of a beira-rt configuration and their defaults (validated by :mod:`.validate`).

Sections own their own fields: to add an option, add a field to the section
dataclass with a default (:func:`~beira_rt.config.validate.spec` carries its
constraints and a one-line doc), and document it in ``configs/default.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .validate import ConfigError, spec

__all__ = [
    "DEFAULT_ROIS",
    "BeiraConfig",
    "DashboardConfig",
    "DataConfig",
    "LiveConfig",
    "ModelConfig",
    "PreprocessingConfig",
    "ReplayConfig",
    "TrainingConfig",
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


@dataclass(frozen=True)
class DataConfig:
    """Where the EEG and the ROI series come from and how they are matched."""

    rois: tuple[str, ...] = spec(DEFAULT_ROIS, doc="target ROIs (Harvard-Oxford names)", min_len=1)
    eeg_channels: tuple[str, ...] | None = spec(
        None, doc="EEG channels the model uses, in order; null = every EEG channel of the file"
    )
    drop_channels: tuple[str, ...] = spec(
        ("*EOG*", "ECG*", "EKG*", "EMG*", "CW*"),
        doc="channel names (case-insensitive fnmatch patterns) removed before modelling: EOG, ECG and EMG "
        "in their usual spellings (VEOG, HEOG, EKG, ...) and the CWL carbon-wire loops",
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
        "causal", doc="'reference' (same padding) or 'causal'", choices=("reference", "causal")
    )
    backbone: str = spec(
        "readout",
        doc="after the interpretable front end: 'unet' (the paper's encoder-decoder) or 'readout' (a "
        "causal moving average and one learned slow filter per branch over the last readout_seconds, "
        "summed per ROI; beira_rt.models.readout; needs variant causal)",
        choices=("unet", "readout"),
    )
    readout_seconds: float = spec(
        14.0, doc="backbone readout: history each output sees through its read-out filter, in seconds", gt=0
    )
    readout_step: float = spec(
        0.32,
        doc="backbone readout: spacing of the read-out taps (and length of the moving average) in seconds",
        gt=0,
    )
    readout_quadratic: bool = spec(
        True,
        doc="backbone readout: each branch's normalised slow envelope u passes through a learned "
        "u + a u^2 before its read-out filter (a Hammerstein read-out: a ROI may follow how far an "
        "envelope is from its usual level as well as the envelope itself; one weight per branch)",
    )
    n_times: int = spec(2048, doc="window length in model-rate samples", ge=16)
    n_filters: int = spec(4, doc="spatial unmixing branches of the interpretable block (per ROI)", ge=1)
    filter_size: int = spec(51, doc="taps of the learned band-pass filters", ge=1)
    envelope_size: int = spec(51, doc="taps of the learned envelope low-pass filters", ge=1)
    envelope_log: bool = spec(
        True,
        doc="compress each branch's envelope with sign(x) log(1 + |x|) before the encoder (artefacts and "
        "large envelopes weigh less; no parameters)",
    )
    filter_init: str = spec(
        "auto",
        doc="initial band-pass and envelope filters: auto (spoc for backbone readout, filterbank for unet), "
        "random (torch's default, the paper's) or filterbank "
        "(each head's branches start as Hann-windowed band-passes at log-spaced frequencies from 3 Hz to "
        "0.38 x the model rate, and the envelope filters as Hann low-passes); the training moves them; "
        "spoc (backbone readout): each branch's spatial filter and band fitted to its ROI on the training "
        "block before training (source power co-modulation, offline/spoc.py)",
        choices=("auto", "random", "filterbank", "spoc"),
    )
    spoc_bands: int = spec(
        16,
        doc="filter_init spoc: candidate bands, log-spaced from spoc_fmin to 0.38 x the model rate, each a factor "
        "1.3 wide each side (10 before the seventh session: a source between two bands was caught by a flank)",
        ge=2,
        le=64,
    )
    spoc_fmin: float = spec(
        3.0,
        doc="filter_init spoc: centre of the lowest candidate band in Hz (the highest: 0.38 x the model rate)",
        gt=0,
    )
    spoc_shrink: float = spec(
        0.1,
        doc="filter_init spoc: shrinkage of the mean band covariance toward a multiple of the identity (0..1)",
        ge=0,
        le=1,
    )
    spoc_components: int | None = spec(
        15,
        doc="filter_init spoc: fit the spatial filters within this many principal components of the training "
        "EEG (null, or at least the channels: every channel)",
        ge=1,
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
    dropout: float = spec(
        0.1, doc="dropout after each conv block (backbone readout: on the envelopes)", ge=0, lt=1
    )
    bold_delay: float = spec(
        2.0,
        doc="haemodynamic delay between EEG and BOLD in seconds: the output at EEG time t estimates the BOLD "
        "at t + bold_delay (the paper: 6; 2 keeps nearly all of the EEG a BOLD sample depends on at the live edge)",
        ge=0,
        le=20,
    )

    @property
    def filter_start(self) -> str:
        """``filter_init`` with 'auto' resolved: 'spoc' for the read-out back end, else 'filterbank'."""
        if self.filter_init != "auto":
            return self.filter_init
        return "spoc" if self.backbone == "readout" else "filterbank"

    def __post_init__(self) -> None:
        if self.backbone == "readout" and self.variant != "causal":
            raise ConfigError("model.backbone 'readout' is causal: set model.variant: causal.")
        if self.filter_init == "spoc" and self.backbone != "readout":
            raise ConfigError("model.filter_init 'spoc' needs model.backbone: readout.")
        if len(self.kernel_sizes) != len(self.strides) or len(self.channels) != len(self.strides) + 1:
            raise ConfigError(
                "model.channels must have one more entry than model.strides, and model.kernel_sizes "
                f"as many as model.strides; got channels={list(self.channels)}, "
                f"strides={list(self.strides)}, kernel_sizes={list(self.kernel_sizes)}."
            )
        total_stride = 1
        for stride in self.strides:
            total_stride *= stride
        if self.n_times % total_stride and self.backbone == "unet":
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
    batch_size: int = spec(
        4, doc="windows per step, over all processes (with torchrun: a multiple of the process count)", ge=1
    )
    lr: float = spec(3e-3, doc="AdamW learning rate", gt=0)
    weight_decay: float = spec(1e-2, doc="AdamW weight decay", ge=0)
    front_end_lr_scale: float | None = spec(
        None,
        doc="learning-rate multiplier of the whole interpretable front end (unmixing and filters; the filters "
        "also get filter_lr_scale); 0 freezes it where it started; null: 0.1 when the front end starts "
        "fitted to the data (model.filter_init spoc: it moves a little from the fit), else 1",
        ge=0,
    )
    filter_lr_scale: float = spec(
        1.0,
        doc="learning-rate multiplier of the band-pass and envelope filters of the interpretable front "
        "end (a filter-bank start barely moves at the common rate in a CPU budget)",
        gt=0,
    )
    loss: str = spec("mse", doc="training loss", choices=("mse", "corr", "mse+corr"))
    max_epochs: int = spec(30, doc="upper bound on epochs", ge=1)
    steps_per_epoch: int = spec(20, doc="optimisation steps per epoch", ge=1)
    patience: int = spec(30, doc="epochs without validation improvement before stopping", ge=1)
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
    refit: bool = spec(
        True,
        doc="after the run that chooses each ROI head's epoch on the validation block, train again from the "
        "start on the training and validation blocks together and keep each head at its chosen epoch (the "
        "look-ahead and the reported validation r stay those of the first run; the test block is only "
        "reported). Doubles the training time. Single recordings (beira-train); a group model is not refitted",
    )
    fit: str = spec(
        "auto",
        doc="how the model is fitted. closed_form (model.backbone readout): no gradient step, the front end "
        "as model.filter_init fits it (spoc), batch-norm statistics of the training block, each ROI's read-out "
        "filters and bias by ridge regression (offline/ridge.py; the penalty from readout_alphas by 5-fold "
        "blocked cross-validation over the fitting blocks, the largest within one standard error of the best); "
        "gradient_ridge (readout): gradient steps, then the read-out refitted so; gradient: gradient steps "
        "only; auto: closed_form for the read-out back end, gradient for the U-Net",
        choices=("auto", "closed_form", "gradient_ridge", "gradient"),
    )
    readout_basis: int | None = spec(
        6,
        doc="fit closed_form / gradient_ridge: each branch's read-out filter as a sum of this many smooth bumps over its "
        "lags (null: one free weight per tap)",
        ge=2,
    )
    readout_alphas: tuple[float, ...] = spec(
        (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0),
        doc="ridge penalties tried by fit closed_form / gradient_ridge, per row on z-scored features",
        gt=0,
        min_len=1,
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
    data_curve: tuple[float, ...] = spec(
        (0.5, 0.75),
        doc="fit closed_form: also fit on the last fractions of the training block and report the validation "
        "r against the seconds of training data (metrics.json data_curve, data_curve.png): would a longer "
        "calibration recording help? [] = off",
        gt=0,
        lt=1,
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
    inference: str = spec(
        "auto",
        doc="'auto': stream where the streamed read-out equals the window's (each sample once; either U-Net "
        "variant, the read-out back end), else the whole window; 'streaming': that or an error; 'window': the "
        "whole window (stem_cache)",
        choices=("auto", "streaming", "window"),
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

    @property
    def fit(self) -> str:
        """``training.fit`` with 'auto' resolved: 'closed_form' for the read-out back end, else 'gradient'."""
        if self.training.fit != "auto":
            return self.training.fit
        return "closed_form" if self.model.backbone == "readout" else "gradient"

    @property
    def readout_ridge(self) -> bool:
        """True when the read-out filters are fitted by ridge regression (``fit`` closed_form or gradient_ridge)."""
        return self.fit in ("closed_form", "gradient_ridge")

    @property
    def gradient_steps(self) -> bool:
        """True when the model trains by gradient steps (``fit`` gradient or gradient_ridge)."""
        return self.fit in ("gradient", "gradient_ridge")

    def __post_init__(self) -> None:
        if self.training.fit in ("closed_form", "gradient_ridge") and self.model.backbone != "readout":
            raise ConfigError(
                f"training.fit {self.training.fit!r} needs model.backbone: readout (a U-Net's decoder is not "
                "linear in its weights); use auto or gradient."
            )
