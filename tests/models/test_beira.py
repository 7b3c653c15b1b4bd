"""Contract tests of the fused BEIRA model over both variants (reference and causal)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from beira_rt.config import ConfigError, ModelConfig
from beira_rt.models import BEIRA, BEIRAHead

from .conftest import N_CHANS, N_OUTPUTS, N_TIMES, SMALL, eval_model, window
from .conftest import small_model as small

VARIANTS = [False, True]
PAPER_PARAMS_PER_HEAD = 245_057  # AutoEncoder1D_Artur in the paper's notebook (BEIRA_ALL_IN_ONE)


@pytest.mark.parametrize("variant", ["reference", "causal"])
def test_paper_settings_give_the_published_parameter_count(variant):
    from beira_rt.config import load_config

    from ..conftest import REPO

    cfg = dataclasses.replace(load_config(REPO / "configs" / "paper.yaml").model, variant=variant)
    model = BEIRA.from_config(cfg, n_chans=30, n_outputs=8, sfreq=100.0)
    head = BEIRAHead(30, cfg.n_times, causal=variant == "causal")
    assert sum(p.numel() for p in head.parameters()) == PAPER_PARAMS_PER_HEAD
    assert sum(p.numel() for p in model.parameters()) == 8 * PAPER_PARAMS_PER_HEAD
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 30, cfg.n_times, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (1, 8, 2048)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("causal", VARIANTS)
def test_output_shape_and_length_flexibility(causal):
    model = small(causal=causal).eval()
    with torch.no_grad():
        assert model(window(batch=2)).shape == (2, N_OUTPUTS, N_TIMES)
        # any multiple of prod(strides) = 16 works, not only n_times
        assert model(window(batch=1, n_times=48)).shape == (1, N_OUTPUTS, 48)


@pytest.mark.parametrize("causal", VARIANTS)
def test_same_seed_same_model_other_seed_other_model(causal):
    x = window()
    a, b, c = small(0, causal).eval(), small(0, causal).eval(), small(1, causal).eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.allclose(a(x), c(x))


@pytest.mark.parametrize("causal", VARIANTS)
def test_state_dict_round_trip(causal):
    src = eval_model(0, causal)
    dst = small(5, causal)
    dst.load_state_dict(src.state_dict())
    dst.eval()
    x = window()
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


@pytest.mark.parametrize("causal", VARIANTS)
def test_torch_export_round_trip(causal):
    model = eval_model(0, causal)
    x = window()
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        expected = model(x)
        got = exported.module()(window(seed=1))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", VARIANTS)
def test_eval_is_deterministic_and_training_uses_dropout(causal):
    model = small(0, causal)
    x = window()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("causal", VARIANTS)
def test_inference_and_autograd_paths_agree(causal):
    """The model runs other kernels when autograd records (CPU training); same function."""
    model = eval_model(0, causal)
    x = window()
    with torch.inference_mode():
        fast = model(x)
    with torch.enable_grad():
        recorded = model(x.clone().requires_grad_())
    torch.testing.assert_close(recorded.detach(), fast, rtol=1e-5, atol=1e-6)


def test_from_config_equals_direct_construction():
    # the constructor initialises as torch does; filter_init 'filterbank' (the default) is tested below
    cfg = ModelConfig(
        backbone="unet", variant="causal", n_times=N_TIMES, filter_init="random", envelope_log=False, **SMALL
    )
    torch.manual_seed(3)
    a = BEIRA.from_config(cfg, N_CHANS, N_OUTPUTS, sfreq=250.0)
    b = small(3, causal=True)
    assert a.causal and a.sfreq == 250.0 and a.input_window_seconds == pytest.approx(N_TIMES / 250.0)
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_window_not_a_multiple_of_the_strides_is_refused_with_alternatives():
    with pytest.raises(ValueError, match=r"n_times=120 .*prod\(strides\) = 16.*112 or 128"):
        BEIRA(N_CHANS, N_OUTPUTS, 120, **SMALL)
    with pytest.raises(ValueError, match=r"n_times=10 .*use n_times = 16"):
        BEIRA(N_CHANS, N_OUTPUTS, 10, **SMALL)
    with pytest.raises(ConfigError, match=r"model.n_times \(2000\).*256; use 1792 or 2048"):
        ModelConfig(backbone="unet", variant="reference", n_times=2000)


@pytest.mark.parametrize(
    ("over", "pattern"),
    [
        (dict(channels=(8, 8, 8)), "channels must have one more entry than strides"),
        (dict(decoder_reduce=9), "decoder_reduce=9 leaves no decoder channels"),
        (dict(dropout=1.0), "dropout must be in"),
        (dict(strides=(2, 0, 2)), "strides must be a non-empty list of positive integers"),
        (dict(n_filters=0), "n_filters must be a positive integer"),
    ],
)
def test_bad_hyper_parameters_name_the_parameter(over, pattern):
    with pytest.raises(ValueError, match=pattern):
        BEIRA(N_CHANS, N_OUTPUTS, N_TIMES, **{**SMALL, **over})


def test_bad_input_is_refused_with_the_expected_shape():
    model = small().eval()
    with pytest.raises(ValueError, match=r"n_chans=5.*got \(2, 4, 128\)"):
        model(torch.zeros(2, 4, N_TIMES))
    with pytest.raises(
        ValueError, match="100 samples, not a multiple of prod\\(strides\\) = 16; use 96 or 112"
    ):
        model(torch.zeros(1, N_CHANS, 100))


def test_filterbank_initialisation_spreads_the_band_passes():
    """model.filter_init: filterbank starts each head's branches at log-spaced frequencies (the
    peak of each band-pass response) and the envelope filters as unit-sum low-passes."""
    import numpy as np

    from beira_rt.config import ModelConfig

    cfg = ModelConfig(
        backbone="unet",
        variant="reference",
        n_times=256,
        n_filters=6,
        channels=(8, 8, 8, 8),
        strides=(4, 4, 4),
        filter_init="filterbank",
    )
    model = BEIRA.from_config(cfg, n_chans=5, n_outputs=3, sfreq=100.0)
    w = model.interpretable.band_pass.weight.detach()[:, 0].numpy()
    peaks = np.fft.rfftfreq(2000, 0.01)[np.abs(np.fft.rfft(w, n=2000, axis=1)).argmax(axis=1)]
    expected = np.geomspace(3.0, 38.0, 6)
    for head in range(3):
        np.testing.assert_allclose(peaks[head * 6 : head * 6 + 6], expected, atol=0.6)
    env = model.interpretable.envelope.weight.detach()[:, 0].numpy()
    np.testing.assert_allclose(env.sum(axis=1), 1.0, atol=1e-6)
    assert (env >= 0).all()
    # random (the paper's) is torch's initialisation: not a filter bank
    rand = BEIRA.from_config(
        ModelConfig(
            backbone="unet",
            variant="reference",
            n_times=256,
            n_filters=6,
            channels=(8, 8, 8, 8),
            strides=(4, 4, 4),
            filter_init="random",
        ),
        5,
        3,
        100.0,
    )
    assert not np.allclose(rand.interpretable.envelope.weight.detach().sum(dim=-1).numpy(), 1.0)
