"""Engine test fixtures: a tiny untrained bundle (the real bundle API) and engine settings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from beira_rt.config import BeiraConfig, LiveConfig, ModelConfig
from tests.conftest import unique_name

#: Model channels of the tiny bundle, in model order.
CH_NAMES = ("Fp1", "Cz", "O2", "Pz")
#: ROIs of the tiny bundle.
ROIS = ("Left Putamen", "Right Putamen")
#: The source's channels: model channels shuffled, other case, and an extra one.
STREAM_LABELS = ["EOG", "o2", "FP1", "pz", "Cz"]
#: Model channel i is stream column STREAM_PICKS[i].
STREAM_PICKS = [2, 4, 1, 3]

TINY_MODEL = ModelConfig(
    backbone="unet",
    variant="reference",
    n_times=32,
    n_filters=2,
    filter_size=9,
    envelope_size=9,
    channels=(4, 4, 4),
    kernel_sizes=(3, 3),
    strides=(2, 2),
    decoder_reduce=1,
    dropout=0.0,
)


#: A tiny read-out back end: 4-sample read-out steps, 10 taps; its receptive field (56) fits the window
#: up to a look-ahead of 24 samples (the bundles' 0.1 s is 10).
TINY_READOUT_MODEL = ModelConfig(
    variant="causal",
    backbone="readout",
    n_times=80,
    n_filters=2,
    filter_size=9,
    envelope_size=9,
    readout_seconds=0.4,
    readout_step=0.04,
    dropout=0.0,
)

#: The tiny model, causal, with a window long enough for an exact streaming read-out.
TINY_CAUSAL_MODEL = dataclasses.replace(TINY_MODEL, variant="causal", n_times=64)


def make_bundle(
    seed: int = 0,
    ch_names: tuple[str, ...] = CH_NAMES,
    lookahead: float = 0.1,
    model: ModelConfig = TINY_MODEL,
):
    """A BEIRA bundle of the ``model`` settings with random (seeded) weights: parity does not need training."""
    from beira_rt.bundle import ModelBundle
    from beira_rt.models import build_model

    cfg = dataclasses.replace(BeiraConfig(), model=model)
    with torch.random.fork_rng():  # PyTorch's own initialisation, seeded, global state untouched
        torch.manual_seed(seed)
        model = build_model(cfg.model, len(ch_names), len(ROIS), cfg.preprocessing.sfreq)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("running_mean"):  # statistics as after training, not the identity
            value = torch.randn(value.shape, generator=gen) * 0.1
        elif key.endswith("running_var"):
            value = torch.rand(value.shape, generator=gen) + 0.5
        state[key] = value
    return ModelBundle(
        config=cfg,
        ch_names=tuple(ch_names),
        sfreq_in=1000.0,
        rois=ROIS,
        norm_mean=np.linspace(-1, 1, len(ch_names)),
        norm_std=np.full(len(ch_names), 8.0),
        target_mean=np.array([0.5, -0.25]),
        target_std=np.array([2.0, 3.0]),
        lookahead=lookahead,
        metrics={},
        state_dict=state,
    )


def saved_bundle(path, **kwargs):
    """:func:`make_bundle` written to ``path`` with the real bundle writer; returns the path."""
    from beira_rt.bundle import save_bundle

    save_bundle(make_bundle(**kwargs), path)
    return path


def loaded_bundle(path):
    """A bundle as the engine gets it: read back with the real loader (content hash set), 1 torch thread."""
    import torch

    from beira_rt.bundle import load_bundle

    torch.set_num_threads(1)
    return load_bundle(path)


def bundle_fixtures(name: str, scope: str = "function", **kwargs):
    """Two fixtures: ``<name>_path``, a :func:`make_bundle` written with the real writer, and
    ``<name>``, that file read back with the real loader (content hash set)."""

    @pytest.fixture(name=f"{name}_path", scope=scope)
    def path_fixture(tmp_path_factory):
        return saved_bundle(tmp_path_factory.mktemp(name) / f"{name}.beira", **kwargs)

    @pytest.fixture(name=name, scope=scope)
    def bundle_fixture(request):
        return loaded_bundle(request.getfixturevalue(f"{name}_path"))

    return path_fixture, bundle_fixture


tiny_bundle_path, tiny_bundle = bundle_fixtures("tiny_bundle")
tiny_causal_bundle_path, tiny_causal_bundle = bundle_fixtures("tiny_causal_bundle", model=TINY_CAUSAL_MODEL)


@pytest.fixture
def live_cfg():
    """Engine settings for a test: a unique outlet name, CPU, a short hop."""
    name, _ = unique_name("BEIRA-test")
    return LiveConfig(device="cpu", hop=0.05, outlet_name=name, resolve_timeout=10.0, status_interval=0.25)


def eeg(n: int, sfreq: float, n_ch: int, seed: int = 0) -> np.ndarray:
    """Synthetic EEG in µV, array of shape (n_samples, n_channels): noise, alpha, line noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sfreq
    alpha = np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, n_ch)[:, None]).T
    return 20 * rng.standard_normal((n, n_ch)) + 30 * alpha + 40 * np.sin(2 * np.pi * 50 * t)[:, None]


tiny_readout_bundle_path, tiny_readout_bundle = bundle_fixtures(
    "tiny_readout_bundle", model=TINY_READOUT_MODEL
)
