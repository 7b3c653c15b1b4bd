"""The read-out back end (beira_rt/models/readout.py): causal, a finite history, one pass = windows,
a bundle that rebuilds it, and the engine's whole-window path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.bundle import ModelBundle, load_bundle, save_bundle
from beira_rt.config import ConfigError, from_dict
from beira_rt.inference import predict_at
from beira_rt.models import BEIRA, BEIRAReadout, build_model
from tests._bundles import randomise_statistics

#: A small read-out model: filters of 7 and 5 taps, 6 read-out taps 4 samples apart.
SMALL = {
    "n_filters": 3,
    "filter_size": 7,
    "envelope_size": 5,
    "readout_step": 4,
    "readout_taps": 6,
    "dropout": 0.0,
}


def _model(n_times: int = 64, seed: int = 0, quadratic: bool = False) -> BEIRAReadout:
    torch.manual_seed(seed)
    model = BEIRAReadout(5, 2, n_times, 100.0, **SMALL, quadratic=quadratic)
    randomise_statistics(model, seed)
    with torch.no_grad():  # weights of the size training gives them (the start is near zero)
        model.readout.weight.normal_()
        if model.square_weight is not None:
            model.square_weight.normal_()
    return model.eval()


@pytest.mark.parametrize("quadratic", [False, True])
def test_receptive_field_is_exact_and_causal(quadratic):
    """A change at sample t0 moves the outputs t0 .. t0 + receptive_field - 1 and no other."""
    model = _model(quadratic=quadratic)
    rf = model.receptive_field
    assert rf == 6 + 4 + 4 * 6
    x = torch.randn(1, 5, 200)
    t0 = 80
    y = x.clone()
    y[0, :, t0] += 3.0
    with torch.no_grad():
        diff = (model(y) - model(x)).abs().amax(dim=1)[0]
    moved = torch.nonzero(diff > 1e-6).flatten()
    assert moved.min().item() == t0
    assert moved.max().item() == t0 + rf - 1
    assert diff[:t0].max().item() == 0.0


@pytest.mark.parametrize("quadratic", [False, True])
def test_one_pass_equals_each_window(quadratic):
    """predict_at (one pass for the columns that hold their history, each window otherwise) equals
    the model run on every window, at look-ahead 0 and at a column that sees the window's padding."""
    model = _model(n_times=48, quadratic=quadratic)
    z = np.random.default_rng(1).standard_normal((5, 400)).astype(np.float32)
    ends = np.arange(47, 400, 7)
    for lookahead in (0.0, 0.05, 0.3):  # columns 47, 42 (history inside) and 17 (padding inside)
        column = 47 - round(lookahead * 100)
        got = predict_at(model, z, ends, lookahead)
        with torch.no_grad():
            want = np.stack(
                [model(torch.from_numpy(z[None, :, n - 47 : n + 1]))[0, :, column].numpy() for n in ends]
            )
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_config_builds_and_checks_the_read_out():
    cfg = from_dict({"model": {"variant": "causal", "backbone": "readout", "n_filters": 2, "readout_seconds": 5.0,
                               "readout_step": 0.25}})  # fmt: skip
    model = build_model(cfg.model, 4, 3, 100.0)
    assert isinstance(model, BEIRAReadout)
    assert (model.readout_step, model.readout_taps) == (25, 20)
    assert isinstance(build_model(from_dict({}).model, 4, 3, 100.0), BEIRAReadout)  # the default
    unet = from_dict({"model": {"backbone": "unet", "variant": "reference"}}).model
    assert isinstance(build_model(unet, 4, 3, 100.0), BEIRA) and unet.filter_start == "filterbank"
    with pytest.raises(ConfigError, match="variant: causal"):
        from_dict({"model": {"variant": "reference"}})
    with pytest.raises(ConfigError, match="backbone: readout"):
        from_dict({"model": {"backbone": "unet", "filter_init": "spoc"}})
    with pytest.raises(ValueError, match="receptive field"):
        build_model(
            from_dict({"model": {"variant": "causal", "backbone": "readout", "n_times": 512}}).model,
            4,
            3,
            100.0,
        )


@pytest.mark.parametrize("quadratic", [False, True])
def test_bundle_round_trip_and_a_foreign_state_is_refused(tmp_path, quadratic):
    cfg = from_dict({
        "data": {"rois": ["Left Caudate", "Right Caudate"], "eeg_channels": ["Fz", "Cz", "Pz", "O1", "O2"]},
        "model": {"variant": "causal", "backbone": "readout", "n_times": 64, "filter_size": 7, "envelope_size": 5,
                  "n_filters": 3, "readout_seconds": 0.24, "readout_step": 0.04, "readout_quadratic": quadratic},
    })  # fmt: skip
    model = build_model(cfg.model, 5, 2, 100.0)
    randomise_statistics(model)
    if quadratic:
        with torch.no_grad():
            model.square_weight.normal_()
    bundle = ModelBundle(
        config=cfg, ch_names=("Fz", "Cz", "Pz", "O1", "O2"), sfreq_in=250.0, rois=("Left Caudate", "Right Caudate"),
        norm_mean=np.zeros(5), norm_std=np.ones(5), target_mean=np.zeros(2), target_std=np.ones(2),
        lookahead=0.0, metrics={}, state_dict=model.state_dict(),
    )  # fmt: skip
    save_bundle(bundle, tmp_path / "m.beira")
    again = load_bundle(tmp_path / "m.beira").build_model()
    x = torch.randn(1, 5, 100)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model.eval()(x))
    bundle.state_dict = BEIRA(
        5, 2, 64, n_filters=3, channels=(4, 4), kernel_sizes=(3,), strides=(2,)
    ).state_dict()
    with pytest.raises(Exception, match="do not match"):
        save_bundle(bundle, tmp_path / "bad.beira")


def test_a_bundle_from_before_the_read_out_loads_as_the_u_net_it_holds(tmp_path):
    """A bundle written before model.backbone existed (its stored config lacks the key) holds a
    U-Net: it loads as one, although the default back end is now the read-out."""
    from beira_rt._bundle_file import encode
    from beira_rt.bundle import _metadata
    from tests._bundles import make_small_bundle

    bundle = make_small_bundle()
    meta = _metadata(bundle)
    del meta["config"]["model"]["backbone"]
    data, _ = encode(meta, bundle.state_dict)
    (tmp_path / "old.beira").write_bytes(data)
    old = load_bundle(tmp_path / "old.beira")
    assert old.config.model.backbone == "unet" and isinstance(old.build_model(), BEIRA)
    with pytest.raises(ConfigError, match="variant: causal"):  # a config file is not a stored config
        from_dict({"model": {k: v for k, v in meta["config"]["model"].items()}} | {"training": {}})


def test_a_read_out_bundle_from_before_the_quadratic_loads_as_the_linear_read_out(tmp_path):
    """A read-out bundle written before model.readout_quadratic existed has a linear read-out and no
    weights for the quadratic: it loads as that, although the default is now quadratic."""
    from beira_rt._bundle_file import encode
    from beira_rt.bundle import _metadata

    cfg = from_dict({
        "data": {"rois": ["Left Caudate", "Right Caudate"], "eeg_channels": ["Fz", "Cz", "Pz", "O1", "O2"]},
        "model": {"n_times": 64, "filter_size": 7, "envelope_size": 5, "n_filters": 3, "readout_seconds": 0.24,
                  "readout_step": 0.04, "readout_quadratic": False},
    })  # fmt: skip
    assert from_dict({}).model.readout_quadratic  # the default now
    model = build_model(cfg.model, 5, 2, 100.0)
    bundle = ModelBundle(
        config=cfg, ch_names=("Fz", "Cz", "Pz", "O1", "O2"), sfreq_in=250.0, rois=("Left Caudate", "Right Caudate"),
        norm_mean=np.zeros(5), norm_std=np.ones(5), target_mean=np.zeros(2), target_std=np.ones(2),
        lookahead=0.0, metrics={}, state_dict=model.state_dict(),
    )  # fmt: skip
    meta = _metadata(bundle)
    del meta["config"]["model"]["readout_quadratic"]
    data, _ = encode(meta, bundle.state_dict)
    (tmp_path / "old.beira").write_bytes(data)
    old = load_bundle(tmp_path / "old.beira")
    assert old.config.model.readout_quadratic is False
    rebuilt = old.build_model()
    assert rebuilt.square_weight is None and "square_weight" not in old.state_dict
    x = torch.randn(1, 5, 100)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model.eval()(x))
