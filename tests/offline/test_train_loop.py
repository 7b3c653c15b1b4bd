"""The training loop: losses, schedule, checkpoint choice on validation, seeding, budget."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from beira_rt.config import load_config, override
from beira_rt.models import BEIRA
from offline.dataset import prepare_data
from offline.metrics import pearson_r, predict_span
from offline.train import compute_loss, lr_factor, resolve_device, train_model, training_progress

from ..conftest import REPO

SFREQ_IN = 250.0


@pytest.fixture(scope="module")
def cfg():
    return override(load_config(REPO / "configs" / "fast_test.yaml"), {"preprocessing.h_freq": 45.0})


@pytest.fixture(scope="module")
def data(cfg):
    """90 s, 6 channels; ROI 0 follows the slow alpha envelope of channel 0, ROI 1 is noise."""
    rng = np.random.default_rng(3)
    n = int(90 * SFREQ_IN)
    t = np.arange(n) / SFREQ_IN
    slow = np.convolve(rng.standard_normal(n), np.hanning(1000), mode="same")
    env = np.exp(slow / slow.std())
    eeg = rng.standard_normal((6, n)) * 0.5
    eeg[0] += env * np.sin(2 * np.pi * 10 * t)
    t_model = np.arange(9000) / 100.0
    bold = np.stack([np.interp(t_model - 6.0, t, np.log(env)), rng.standard_normal(9000).cumsum() * 0.1])
    return prepare_data(eeg * 1e-5, SFREQ_IN, bold, cfg, [f"c{i}" for i in range(6)], ["alpha", "noise"])


def _model(cfg, data, seed=0):
    torch.manual_seed(seed)
    return BEIRA.from_config(cfg.model, data.n_chans, data.n_rois, data.sfreq)


def test_losses():
    y = torch.randn(2, 3, 50)
    assert compute_loss(y, y, "mse").item() == 0.0
    assert compute_loss(2 * y + 1, y, "corr").item() == pytest.approx(0.0, abs=1e-5)
    assert compute_loss(-y, y, "corr").item() == pytest.approx(2.0, abs=1e-5)
    assert compute_loss(y + 1, y, "mse+corr").item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="unknown loss"):
        compute_loss(y, y, "mae")


def test_onecycle_schedule_warms_up_then_decays(cfg):
    tcfg = override(cfg, {"training.warmup_fraction": 0.1}).training
    factors = [lr_factor(training_progress(step, 100, 0.0, math.inf), tcfg) for step in range(100)]
    assert factors[0] == pytest.approx(0.01) and factors[5] == pytest.approx(0.5)
    assert max(factors) == pytest.approx(1.0) and int(np.argmax(factors)) == 10
    assert np.all(np.diff(factors[10:]) <= 0) and factors[-1] < 0.02
    assert lr_factor(1.0, tcfg) == pytest.approx(0.01)
    assert lr_factor(0.3, override(cfg, {"training.schedule": "constant"}).training) == 1.0


def test_schedule_follows_the_time_budget_when_it_runs_out_first():
    assert training_progress(10, 100, elapsed=0.0, budget=math.inf) == pytest.approx(0.1)
    assert training_progress(10, 100, elapsed=30.0, budget=60.0) == pytest.approx(0.5)
    assert training_progress(90, 100, elapsed=30.0, budget=60.0) == pytest.approx(0.9)


def test_device_auto_and_refusal_of_missing_cuda():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_checkpoint_is_the_best_validation_epoch(cfg, data, tmp_path):
    cfg = override(cfg, {"training.max_epochs": 6, "training.patience": 6, "training.checkpoint": "mean"})
    model = _model(cfg, data)
    result = train_model(model, data, cfg, device=torch.device("cpu"), history_path=tmp_path / "h.jsonl",
                         progress=False)  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert lines == result.history and len(lines) == 6
    val_r = [h["val_r_mean"] for h in lines]
    assert result.best_epoch == int(np.argmax(val_r)) + 1
    assert result.best_val_r == max(val_r)
    # the weights left in the model are that epoch's: recompute its validation r
    val = data.split.val
    pred = predict_span(model, data.eeg, val.start, val.stop, cfg.model.n_times, cfg.model.variant)
    assert float(np.mean(pearson_r(pred, data.target[:, val.slice]))) == pytest.approx(
        result.best_val_r, abs=1e-5
    )
    assert {"epoch", "step", "lr", "train_loss", "val_loss", "val_r_per_roi", "seconds", "best"} <= set(
        lines[0]
    )


def test_training_never_reads_test_targets(cfg, data):
    test = data.split.test
    target = data.target.copy()
    target[:, test.slice] = np.nan  # any use of a test target would poison the loss or the choice
    poisoned = dataclasses.replace(data, target=target)
    model = _model(cfg, data)
    result = train_model(model, poisoned, cfg, device=torch.device("cpu"), progress=False)
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_r_mean"]) for h in result.history)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_same_seed_same_training(cfg, data):
    runs = []
    for _ in range(2):
        model = _model(cfg, data, seed=cfg.training.seed)
        result = train_model(model, data, cfg, device=torch.device("cpu"), progress=False)
        runs.append(([h["train_loss"] for h in result.history], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        torch.testing.assert_close(runs[0][1][k], runs[1][1][k], rtol=0, atol=0)
    other = _model(cfg, data, seed=1)
    result = train_model(
        other, data, override(cfg, {"training.seed": 1}), device=torch.device("cpu"), progress=False
    )
    assert [h["train_loss"] for h in result.history] != runs[0][0]


def test_per_roi_checkpoint_takes_each_head_from_its_best_epoch(cfg, data):
    # a seed whose run has the heads peak at different epochs (checked by the last assertion;
    # with seed 0 both heads happen to peak in the same epoch, which would show nothing)
    cfg = override(
        cfg,
        {
            "training.max_epochs": 6,
            "training.patience": 6,
            "training.checkpoint": "per_roi",
            "training.seed": 1,
        },
    )
    model = _model(cfg, data)
    result = train_model(model, data, cfg, device=torch.device("cpu"), progress=False)
    per_epoch = np.array([h["val_r_per_roi"] for h in result.history])  # (epochs, rois)
    np.testing.assert_array_equal(result.best_epochs, np.argmax(per_epoch, axis=0) + 1)
    np.testing.assert_allclose(result.best_val_r_per_roi, per_epoch.max(axis=0))
    assert result.best_val_r == pytest.approx(per_epoch.max(axis=0).mean())
    assert result.best_val_r >= per_epoch.mean(axis=1).max() - 1e-12  # never worse than one epoch for all
    # the kept model is each head at its own best epoch: its validation r per ROI is those maxima
    val = data.split.val
    pred = predict_span(model, data.eeg, val.start, val.stop, cfg.model.n_times, cfg.model.variant)
    np.testing.assert_allclose(pearson_r(pred, data.target[:, val.slice]), per_epoch.max(axis=0), atol=1e-5)
    assert len(set(result.best_epochs)) > 1, "the heads peaked together: the test shows nothing"


def test_head_epochs_keep_each_head_at_its_given_epoch_without_validating(cfg, data):
    """The refit's loop (training.refit): the heads kept at given epochs, nothing validated.

    Validation draws no random numbers, so on the same data and seed the given epochs rebuild
    the per-ROI checkpoint of a validated run exactly, and the run stops after the last of them.
    """
    cfg = override(cfg, {"training.max_epochs": 6, "training.patience": 6, "training.seed": 1})
    validated = _model(cfg, data, seed=1)
    first = train_model(validated, data, cfg, device=torch.device("cpu"), progress=False)
    assert len(set(first.best_epochs)) > 1, "the heads peaked together: the test shows nothing"
    val = data.split.val
    target = data.target.copy()
    target[:, val.start :] = np.nan  # a validation or test target read by the refit would show
    blind = dataclasses.replace(data, target=target)
    refit = _model(cfg, data, seed=1)
    result = train_model(
        refit, blind, cfg, device=torch.device("cpu"), progress=False, head_epochs=first.best_epochs
    )
    assert result.best_epochs == first.best_epochs
    assert len(result.history) == max(first.best_epochs)
    assert all(math.isnan(h["val_r_mean"]) for h in result.history)
    for k, v in validated.state_dict().items():
        if not k.endswith("num_batches_tracked"):  # a counter of no head (unused: momentum is set)
            torch.testing.assert_close(refit.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(ValueError, match="one epoch >= 1 per ROI head"):
        train_model(_model(cfg, data), data, cfg, device=torch.device("cpu"), progress=False, head_epochs=[1])


def test_a_refit_cut_short_keeps_the_heads_whose_epoch_never_came_from_its_last_weights(cfg, data, caplog):
    cfg = override(cfg, {"training.max_minutes": 1e-6, "training.max_epochs": 5})
    model = _model(cfg, data)
    with caplog.at_level("WARNING", logger="beira_rt"):
        result = train_model(model, data, cfg, device=torch.device("cpu"), progress=False, head_epochs=[1, 4])
    assert result.stop_reason == "max_minutes" and result.n_steps == 1 and len(result.history) == 1
    assert result.best_epochs == [1, 1]  # head 1's epoch 4 never came: kept from epoch 1, and said so
    assert "kept from there" in caplog.text and "[1]" in caplog.text


def test_time_budget_stops_training(cfg, data):
    cfg = override(cfg, {"training.max_minutes": 1e-6, "training.max_epochs": 50})
    result = train_model(_model(cfg, data), data, cfg, device=torch.device("cpu"), progress=False)
    assert result.stop_reason == "max_minutes"
    assert result.n_steps == 1 and len(result.history) == 1  # validated once, checkpoint kept


def test_patience_stops_early(cfg, data):
    cfg = override(cfg, {"training.patience": 1, "training.max_epochs": 40, "training.lr": 1e-9})
    result = train_model(_model(cfg, data), data, cfg, device=torch.device("cpu"), progress=False)
    assert result.stop_reason == "patience"
    assert len(result.history) < 40
    assert len(result.history) == result.best_epoch + 1


def test_separate_and_fused_layouts_train_the_same_model(cfg, data):
    """training.head_layout: the separate-head form (CPU default) takes the same steps as the fused one.

    Without dropout (whose masks are drawn per head in one layout, for all heads at once in the
    other) both see the same batches and the same gradients up to rounding.
    """
    cfg = override(
        cfg,
        {"training.max_epochs": 1, "training.checkpoint": "mean", "training.lr": 1e-3, "model.dropout": 0.0},
    )
    models = {}
    for layout in ("fused", "separate"):
        models[layout] = _model(cfg, data)
        train_model(
            models[layout],
            data,
            override(cfg, {"training.head_layout": layout}),
            device=torch.device("cpu"),
            progress=False,
        )
    # compared by their predictions: a bias in front of a batch norm has a zero gradient up to
    # rounding, which Adam's normalisation turns into arbitrary steps that change no output
    val = data.split.val
    pred = {
        k: predict_span(m, data.eeg, val.start, val.stop, cfg.model.n_times, cfg.model.variant)
        for k, m in models.items()
    }
    init = predict_span(
        _model(cfg, data), data.eeg, val.start, val.stop, cfg.model.n_times, cfg.model.variant
    )
    moved = np.abs(pred["fused"] - init).max()
    assert moved > 0.1 * np.abs(pred["fused"]).max()  # training changed the predictions ...
    # ... and both layouts changed them alike (Adam turns rounding-level gradient differences of
    # near-zero gradients into full steps, so equality is up to a small fraction of the change)
    assert np.abs(pred["separate"] - pred["fused"]).max() < 0.05 * moved


def test_shared_front_end_and_weight_average(cfg, data):
    """training.share_front_end keeps one front end for all heads while the rest of each head is
    its own; training.ema_decay validates the averaged weights. Both train (finite validation r)."""
    from offline.train import _front_end_params

    c = override(
        cfg,
        {
            "training.share_front_end": True,
            "training.ema_decay": 0.9,
            "training.checkpoint": "mean",
            "training.head_layout": "fused",
            "training.max_epochs": 2,
            "training.patience": 2,
        },
    )
    model = _model(c, data)
    result = train_model(model, data, c, device=torch.device("cpu"), progress=False)
    assert result.n_steps == 2 * c.training.steps_per_epoch and math.isfinite(result.best_val_r)
    for p in _front_end_params(model):
        heads = p.detach().view(model.n_outputs, -1, *p.shape[1:])
        torch.testing.assert_close(heads[0], heads[1], atol=0, rtol=0)
    rest = model.final_layer.weight.detach()
    assert not torch.equal(rest[0], rest[1])
    with pytest.raises(ValueError, match="share_front_end"):
        train_model(
            _model(c, data),
            data,
            override(c, {"training.head_layout": "separate"}),
            device=torch.device("cpu"),
            progress=False,
        )


@pytest.mark.parametrize("layout", ["fused", "separate"])
def test_filter_lr_scale_steps_the_front_end_filters_faster(cfg, data, layout):
    """training.filter_lr_scale: Adam's first step is about the learning rate per weight, so the
    band-pass and envelope taps move ``scale`` times as far as the rest (the unmixing here)."""
    scale = 8.0
    cfg = override(
        cfg,
        {"training.max_epochs": 1, "training.steps_per_epoch": 1, "training.head_layout": layout,
         "training.filter_lr_scale": scale, "training.weight_decay": 0.0, "model.dropout": 0.0},
    )  # fmt: skip
    model = _model(cfg, data)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    train_model(model, data, cfg, device=torch.device("cpu"), progress=False)
    step = {k: (v.detach() - before[k]).abs() for k, v in model.named_parameters()}

    def typical(name):  # the median step of the weights that moved at all
        s = step[name]
        return s[s > 0].median().item()

    unmix, band, env = (typical(f"interpretable.{k}.weight") for k in ("unmix", "band_pass", "envelope"))
    assert band / unmix == pytest.approx(scale, rel=0.1)
    assert env / unmix == pytest.approx(scale, rel=0.1)


def test_front_end_lr_scale_zero_freezes_the_front_end_and_trains_the_read_out(cfg, data):
    """training.front_end_lr_scale 0 (the read-out back end with its front end fitted by SPoC):
    unmixing and filters stay where they started, the read-out moves; the loss skips the columns
    that see the window's padding (the windows are lengthened by the receptive field)."""
    from beira_rt.models import build_model

    cfg = override(
        cfg,
        {"model.variant": "causal", "model.backbone": "readout", "model.n_filters": 2, "model.n_times": 256,
         "model.readout_seconds": 1.0, "model.readout_step": 0.1, "training.front_end_lr_scale": 0.0,
             "training.fit": "gradient",
         "training.max_epochs": 2, "training.steps_per_epoch": 3, "training.batch_size": 2},
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg.model, data.n_chans, data.n_rois, data.sfreq)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    result = train_model(model, data, cfg, device=torch.device("cpu"), progress=False)
    assert result.n_steps == 6
    for name, p in model.named_parameters():
        moved = not torch.equal(p.detach(), before[name])
        assert moved == name.startswith(("readout.", "square_weight")), name  # the read-out and its quadratic
