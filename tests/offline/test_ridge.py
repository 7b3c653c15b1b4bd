"""The closed-form read-out (offline/ridge.py): it recovers a read-out it can represent, writes it
into the model's own weights (the model's outputs are the fit), chooses its penalty without
leaking held-out rows, reads nothing after the fitting block, and pools recordings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from beira_rt.config import ConfigError, from_dict
from beira_rt.models import BEIRAReadout
from offline.metrics import pearson_r
from offline.ridge import fit_readout, lag_basis
from offline.split import Block
from offline.train import set_batch_norm_stats

SFREQ = 100.0
N = 24_000  # 240 s


def _model(quadratic: bool, seed: int = 0) -> BEIRAReadout:
    torch.manual_seed(seed)
    return BEIRAReadout(
        5, 2, 128, SFREQ, n_filters=3, filter_size=7, envelope_size=5, readout_step=8, readout_taps=10,
        dropout=0.2, quadratic=quadratic,
    )  # fmt: skip


def _eeg(seed: int, n: int = N) -> np.ndarray:
    """Noise whose power drifts slowly per channel (envelopes with something to follow)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SFREQ
    gain = 1.0 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.01, 0.05, (5, 1)) * t + rng.uniform(0, 6, (5, 1)))
    return (gain * rng.standard_normal((5, n))).astype(np.float32)


def _first(model: BEIRAReadout) -> int:
    """The first sample whose slow terms hold no zero padding: the first fitting row."""
    return model.receptive_field - model.readout_step * (model.readout_taps - 1) - 1


def _output(model: BEIRAReadout, eeg: np.ndarray) -> np.ndarray:
    model.eval()
    return model.one_pass(torch.from_numpy(eeg), 0, eeg.shape[1]).numpy()


@pytest.mark.parametrize("quadratic", [False, True])
def test_a_representable_read_out_is_recovered_into_the_models_weights(quadratic):
    """The target is the model's own output under hidden smooth read-out filters plus noise; the fit
    on the first 70 % predicts the last 30 % (never seen) through the model's forward pass at
    r > 0.95. A fit of every tap on its own (n_basis None) recovers them too."""
    eeg = _eeg(1)
    model = _model(quadratic)
    set_batch_norm_stats(model, [(eeg, Block("train", 0, N))])
    # hidden read-out filters: smooth over the lags (in the span of the default basis of 6 bumps)
    coef = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 6)))
    hidden = torch.einsum("kbc,jc->kbj", coef, torch.from_numpy(lag_basis(10, 6))).flip(-1)
    with torch.no_grad():
        model.readout.weight.copy_(hidden)
        model.readout.bias.normal_()
        if model.square_weight is not None:
            model.square_weight.fill_(0.5)
    clean = _output(model, eeg)
    noise = np.random.default_rng(2).standard_normal(clean.shape) * 0.3 * clean.std(axis=1, keepdims=True)
    target = (clean + noise).astype(np.float32)
    with torch.no_grad():
        model.readout.weight.normal_()  # forget the hidden weights
    train = Block("train", 0, round(0.7 * N))
    for n_basis in (None, 6):
        fit = fit_readout(model, [(eeg, target, train)], n_basis=n_basis)
        held = slice(train.stop, N)
        r = pearson_r(_output(model, eeg)[:, held], clean[:, held])
        assert np.all(r > 0.95), (n_basis, r)
    assert (
        np.all(fit.cv_r > 0.8) and fit.n_rows == len(range(_first(model), train.stop, 10)) and fit.folds == 5
    )
    assert set(fit.alphas) <= set(np.array([1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0]))
    assert model.training is False


def test_unrelated_target_is_not_predicted_by_the_cross_validation():
    """A target independent of the EEG (noise smoothed over 1 s): the held-out folds say so (|r| small
    for every ROI) and the chosen penalties are among the largest (the fit shrinks to nothing)."""
    eeg = _eeg(3)
    model = _model(False)
    set_batch_norm_stats(model, [(eeg, Block("train", 0, N))])
    noise = np.random.default_rng(4).standard_normal((2, N))
    kernel = np.ones(100) / 100
    target = np.stack([np.convolve(row, kernel, mode="same") for row in noise]).astype(np.float32)
    fit = fit_readout(model, [(eeg, target, Block("train", 0, N))])
    assert np.all(np.abs(fit.cv_r) < 0.15), fit.cv_r


def test_nothing_after_the_block_is_read_and_recordings_pool():
    """Two recordings, NaN after each one's fitting block: the pooled fit is finite, its rows are
    both blocks' rows with a finite target (NaN targets before the first volume are skipped)."""
    model = _model(True)
    eeg_a, eeg_b = _eeg(5), _eeg(6, N // 2)
    set_batch_norm_stats(model, [(eeg_a, Block("train", 0, N))])
    rng = np.random.default_rng(7)
    parts = []
    for eeg, stop in ((eeg_a, N - 4000), (eeg_b, N // 2 - 2000)):
        target = rng.standard_normal((2, eeg.shape[1])).astype(np.float32)
        target[:, :300] = np.nan  # no volume yet
        eeg = eeg.copy()
        eeg[:, stop:] = np.nan
        target[:, stop:] = np.nan
        parts.append((eeg, target, Block("train", 0, stop)))
    fit = fit_readout(model, parts)
    assert fit.n_rows == sum(len(range(300, p[2].stop, 10)) for p in parts)
    assert torch.isfinite(model.readout.weight).all() and torch.isfinite(model.readout.bias).all()
    assert np.all(np.isfinite(fit.cv_r))


def test_only_the_read_out_back_end_and_only_with_it_in_the_config():
    with pytest.raises(TypeError, match="BEIRAReadout"):
        fit_readout(torch.nn.Linear(2, 2), [])
    with pytest.raises(ConfigError, match=r"fit 'closed_form' needs model\.backbone: readout"):
        from_dict({"model": {"backbone": "unet", "variant": "reference"}, "training": {"fit": "closed_form"}})
    unet = from_dict({"model": {"backbone": "unet", "variant": "reference"}})
    assert (unet.fit, unet.readout_ridge, unet.gradient_steps) == ("gradient", False, True)
    default = from_dict({})
    assert (default.fit, default.readout_ridge, default.gradient_steps) == ("closed_form", True, False)
    both = from_dict({"training": {"fit": "gradient_ridge"}})
    assert both.readout_ridge and both.gradient_steps


def test_a_head_without_a_used_branch_predicts_a_constant():
    """SPoC may leave every branch of a head unused (zero unmixing): its features are constant, the
    fit gives zero filters and the target's mean as the bias; the other head is fitted as usual."""
    eeg = _eeg(8)
    model = _model(False)
    for branch in range(3):
        model.set_unmixing(1, branch, None)
    set_batch_norm_stats(model, [(eeg, Block("train", 0, N))])
    target = np.random.default_rng(9).standard_normal((2, N)).astype(np.float32) + 3.0
    fit = fit_readout(model, [(eeg, target, Block("train", 0, N))])
    assert torch.all(model.readout.weight[1] == 0) and torch.any(model.readout.weight[0] != 0)
    out = _output(model, eeg)
    rows = target[1, _first(model) :: 10]
    assert np.ptp(out[1, model.receptive_field :]) < 1e-5 and abs(out[1, -1] - rows.mean()) < 1e-4
    assert np.isnan(fit.cv_r[1]) and np.isnan(fit.alphas[1]) and np.isfinite(fit.cv_r[0])


def test_folds_are_contiguous_and_their_fits_keep_clear_of_the_held_out_span():
    """Rows of two recordings pooled: each fold is one stretch of rows; its fit leaves out its own
    rows and the same recording's rows within the margin of its span, and keeps every other row
    (the other recording's rows at the same sample indices included)."""
    from offline.ridge import _folds

    sample = np.concatenate([np.arange(0, 1000, 10), np.arange(0, 500, 10)])
    part_of = np.repeat([0, 1], [100, 50])
    fold, masks = _folds(sample, part_of, 3, margin=25)
    assert np.array_equal(fold, np.repeat([0, 1, 2], 50))
    for f, keep in enumerate(masks):
        held = fold == f
        assert not keep[held].any()
        for p in (0, 1):
            mine = part_of == p
            span = sample[held & mine]
            near = mine & (sample >= span.min() - 25) & (sample <= span.max() + 25) if span.size else 0 * mine
            assert np.array_equal(~keep & ~held & mine, np.asarray(near, bool) & ~held)
    # fold 0 holds samples 0..490 of recording 0: its fit drops 500 and 510 (within 25) but not 520
    assert not masks[0][np.flatnonzero((part_of == 0) & (sample == 510))].any()
    assert masks[0][np.flatnonzero((part_of == 0) & (sample == 520))].all()
    assert masks[0][part_of == 1].all()  # recording 1 is not in fold 0


def test_lag_basis_bumps_sum_to_one_and_start_at_lag_zero():
    basis = lag_basis(56, 6)
    assert basis.shape == (56, 6)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, atol=1e-12)
    assert basis[0, 0] == 1.0 and basis[-1, -1] == 1.0 and np.all(basis >= 0)
    assert np.array_equal(lag_basis(10, None), np.eye(10)) and np.array_equal(lag_basis(10, 12), np.eye(10))
    with pytest.raises(ValueError, match="n_basis"):
        lag_basis(10, 1)


def test_short_blocks_shrink_the_guard_so_every_fold_keeps_rows_to_fit_on():
    """A 30-s calibration block (5 folds of 6 s) cannot keep a 20-s guard: the guard shrinks to half
    a fold and the fit succeeds (a fine-tuning on one minute of a new subject's data)."""
    eeg = _eeg(10, 3000)
    model = _model(False)
    set_batch_norm_stats(model, [(eeg, Block("train", 0, 3000))])
    target = np.random.default_rng(11).standard_normal((2, 3000)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty fold fit warns (mean of an empty slice)
        fit = fit_readout(model, [(eeg, target, Block("train", 0, 3000))], guard=20.0)
    assert np.all(np.isfinite(fit.cv_r)) and torch.isfinite(model.readout.weight).all()
