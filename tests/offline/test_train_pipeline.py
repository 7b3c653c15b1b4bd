"""A whole training run on a short synthetic CWL subject: bundle, metrics, figures, re-evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from beira_rt.bundle import BundleError, load_bundle, save_bundle
from beira_rt.config import load_config, override
from beira_rt.inference import predict_at, resolve_device
from offline.dataset import prepare_recording
from offline.evaluate import evaluate_bundle, prepare_with_bundle
from offline.loader import load_cwl_subject
from offline.metrics import lookahead_r, pearson_r
from offline.pipeline import closed_form_val_r, read_ceiling, run_training
from offline.split import Block
from offline.synthetic import make_synthetic_subject

from ..conftest import REPO

#: where the fixture's run trained and evaluated (training.device auto: CUDA on a GPU machine)
RUN_DEVICE = resolve_device("auto")

FIGURES = ("loss_curves.png", "test_predictions.png", "r_per_roi.png", "r_by_lookahead.png")


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    return make_synthetic_subject(tmp_path_factory.mktemp("cwl"), "trio1", duration=90.0, seed=0)


@pytest.fixture(scope="module")
def cfg():
    return load_config(REPO / "configs" / "fast_test.yaml")


@pytest.fixture(scope="module")
def recording(subject, cfg):
    return load_cwl_subject(subject.data_dir, "trio1", cfg.data, subject.atlas, subject.atlas_labels,
                            cfg.preprocessing.sfreq)  # fmt: skip


@pytest.fixture(scope="module")
def run(subject, cfg, recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    try:
        metrics = run_training(cfg, recording, out, ceiling=read_ceiling(subject.data_dir, "trio1", cfg.data.rois),
                               progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return out, metrics


@pytest.mark.slow
def test_run_writes_bundle_metrics_history_and_figures(run, recording, cfg):
    out, metrics = run
    for name in ("model.beira", "metrics.json", "history.jsonl", "test_predictions.npz", *FIGURES):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    rois = list(cfg.data.rois)
    assert list(metrics["test"]["r_per_roi"]) == rois
    assert metrics["test"]["r_mean"] == pytest.approx(np.mean(list(metrics["test"]["r_per_roi"].values())))
    assert list(metrics["test"]["r_by_lookahead"]) == ["0", "0.5", "1"]
    assert list(metrics["baseline"]["r_per_roi"]) == rois and "r_mean" in metrics["baseline"]
    assert metrics["ceiling"]["test_r_mean"] > 0.5 and len(metrics["ceiling"]["r_per_roi"]) == 8
    assert metrics["data"]["data_hash"] == recording.data_hash and len(metrics["config_hash"]) == 64
    assert metrics["config"]["model"]["n_times"] == 256
    assert metrics["split"]["test"]["stop_s"] - metrics["split"]["test"]["start_s"] == pytest.approx(20.0)
    assert metrics["lookahead"]["chosen_s"] in (0.0, 0.5, 1.0)
    assert {"load_s", "train_s", "evaluate_s", "baseline_s", "total_s"} <= set(metrics["timings"])
    assert metrics["environment"]["torch"] == torch.__version__
    assert (
        metrics["data_curve"] is None
    )  # gradient training: no data curve (a fit per point would take minutes)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(history) == metrics["training"]["epochs_run"]


def test_refit_trains_on_train_and_validation_blocks_at_the_chosen_epochs(run, cfg, recording, tmp_path):
    out0, first = run
    metrics = run_training(override(cfg, {"training.refit": True}), recording, tmp_path, progress=False,
                           interpret=False)  # fmt: skip
    refit = metrics["training"]["refit"]
    assert refit["epochs_per_roi"] == metrics["training"]["best_epochs_per_roi"]
    assert refit["n_steps"] == max(refit["epochs_per_roi"].values()) * cfg.training.steps_per_epoch
    split = metrics["split"]
    assert (refit["start_s"], refit["stop_s"]) == (split["train"]["start_s"], split["val"]["stop_s"])
    # every validation number is the first run's (the same seed: the unrefitted run of the fixture).
    # On a GPU, training is not bit-reproducible (measured on an H200 with deterministic cuDNN and
    # no TF32: validation r of two same-seed runs up to 1e-3 apart; some backward kernels add
    # atomically): there the numbers agree within 0.01
    if RUN_DEVICE.type == "cuda":
        for key in ("r_mean", "r_per_roi", "r_by_lookahead"):
            got, want = metrics["val"][key], first["val"][key]
            assert got == (pytest.approx(want, abs=0.01) if isinstance(want, float) else
                           {k: pytest.approx(v, abs=0.01) for k, v in want.items()})  # fmt: skip
    else:
        assert metrics["val"] == first["val"] and metrics["lookahead"] == first["lookahead"]
    assert metrics["test"]["r_per_roi"] != first["test"]["r_per_roi"]  # the bundle is the refit model
    history = [json.loads(line) for line in (tmp_path / "history_refit.jsonl").read_text().splitlines()]
    assert len(history) == max(refit["epochs_per_roi"].values())
    assert {"train_s", "refit_s"} <= set(metrics["timings"])
    bundle = load_bundle(tmp_path / "model.beira")
    assert bundle.metrics["test"]["r_mean"] == pytest.approx(metrics["test"]["r_mean"])
    assert bundle.metrics["refit"] and not load_bundle(out0 / "model.beira").metrics["refit"]
    # its validation block is training data: a choice between such runs on it is refused
    from offline.ensemble import combine_heads

    with pytest.raises(ValueError, match="refitted on the validation block"):
        combine_heads([load_bundle(out0 / "model.beira"), bundle], recording)


@pytest.mark.parametrize("refit", [False, True])
def test_closed_form_fit_takes_no_gradient_step_and_fits_the_read_out_on_its_blocks(
    recording, tmp_path, refit
):
    """The built-in default (training.fit closed_form, the read-out back end): no gradient step, the
    read-out fitted by ridge on the training block (then on training + validation with the refit);
    the validation r is the first fit's on the block it never saw; the bundle reproduces the test r."""
    from offline.metrics import predict_block

    cfg = override(load_config(None), {"training.test_seconds": 20.0, "training.val_seconds": 20.0,
                                       "training.refit": refit, "training.num_threads": 1})  # fmt: skip
    metrics = run_training(cfg, recording, tmp_path, progress=False, interpret=False)
    training = metrics["training"]
    assert (training["fit"], training["n_steps"], training["stop_reason"]) == (
        "closed_form",
        0,
        "no_gradient_steps",
    )
    ridge = training["readout_ridge"]
    split = metrics["split"]
    span = split["val"]["stop_s"] if refit else split["train"]["stop_s"]
    assert ridge["blocks"] == ("train+val" if refit else "train")
    first_volume = split["train"]["start_s"]
    assert abs(ridge["n_rows"] - (span - first_volume) / 0.1) <= 2 + 20  # every 0.1 s with a target
    assert list(ridge["alphas"]) == list(cfg.data.rois) and all(
        a in cfg.training.readout_alphas for a in ridge["alphas"].values()
    )
    assert (tmp_path / "history.jsonl").read_text() == ""
    bundle = load_bundle(tmp_path / "model.beira")
    assert bundle.metrics["fit"] == "closed_form" and bundle.metrics["refit"] == refit
    data = prepare_with_bundle(bundle, recording)
    from beira_rt.models import build_model

    model = build_model(bundle.config.model, data.n_chans, data.n_rois, data.sfreq)
    model.load_state_dict(bundle.state_dict)
    pred, true = predict_block(model, data, bundle.config, data.split.test)
    np.testing.assert_allclose(pearson_r(pred, true), list(metrics["test"]["r_per_roi"].values()), atol=1e-5)
    if not refit:  # the reported validation r is the bundle's own on a block it did not fit on
        pred, true = predict_block(model, data, bundle.config, data.split.val)
        np.testing.assert_allclose(
            pearson_r(pred, true), list(metrics["val"]["r_per_roi"].values()), atol=1e-5
        )
    # a 90-s subject: 50 s to fit on, a 20-s test block (~10 BOLD volumes per ROI). Its mean test
    # r, measured for spoc_components null / 20 / 15 / 10 without and with the refit: 0.252 / 0.265,
    # 0.248 / 0.271, 0.271 / 0.179, 0.327 / 0.363: it learns, and the block is noisy; the bound is a
    # smoke check that something was learned, not a measure of accuracy (tools/accuracy_matrix.py)
    assert metrics["test"]["r_mean"] > 0.15
    assert metrics["test"]["r_by_lookahead"]["0"] == pytest.approx(metrics["test"]["r_mean"], abs=0.02)
    # the data curve: the closed form fitted again on the last half and three quarters of the
    # training block, scored on the validation block; the longest point is the run's own fit
    curve = metrics["data_curve"]
    train_s = split["train"]["stop_s"] - split["train"]["start_s"]
    assert [p["train_s"] for p in curve["points"]] == pytest.approx(
        [0.5 * train_s, 0.75 * train_s, train_s], abs=0.02
    )
    assert curve["points"][-1]["val_r_mean"] == pytest.approx(metrics["val"]["r_mean"], abs=1e-6)
    data = prepare_recording(recording, cfg)
    half = Block("train", data.split.train.stop - round(0.5 * len(data.split.train)), data.split.train.stop)
    np.testing.assert_allclose(
        list(curve["points"][0]["val_r_per_roi"].values()),
        closed_form_val_r(cfg, data, half, RUN_DEVICE),
        atol=1e-5,
    )
    assert curve["rising"] == bool((np.diff([p["val_r_mean"] for p in curve["points"]]) > 0).all())
    assert (tmp_path / "data_curve.png").stat().st_size > 5000


def test_data_curve_skips_a_fraction_too_short_to_fit(recording, tmp_path):
    """The data curve is a diagnostic: a fraction of the training block too short for a fit (half
    a second here) is logged and left out, and the run goes on."""
    cfg = override(load_config(None), {"training.test_seconds": 20.0, "training.val_seconds": 20.0,
                                       "training.refit": False, "training.num_threads": 1,
                                       "training.data_curve": [0.01, 0.5]})  # fmt: skip
    metrics = run_training(cfg, recording, tmp_path, progress=False, interpret=False)
    curve = metrics["data_curve"]
    train_s = metrics["split"]["train"]["stop_s"] - metrics["split"]["train"]["start_s"]
    assert [s["train_s"] for s in curve["skipped"]] == pytest.approx([0.01 * train_s], abs=0.02)
    assert curve["skipped"][0]["error"]
    assert len(curve["points"]) == 2 and curve["points"][-1]["val_r_mean"] == pytest.approx(
        metrics["val"]["r_mean"]
    )
    assert (tmp_path / "model.beira").is_file()


@pytest.mark.slow
def test_reloaded_bundle_reproduces_the_test_predictions(run, recording, tmp_path):
    out, metrics = run
    bundle = load_bundle(out / "model.beira")
    assert bundle.lookahead == metrics["lookahead"]["chosen_s"]
    assert bundle.content_hash == metrics["bundle_hash"]
    assert bundle.metrics["test_r_mean"] == pytest.approx(metrics["test"]["r_mean"])
    again = evaluate_bundle(bundle, recording, device=RUN_DEVICE, out_dir=tmp_path)
    saved, fresh = np.load(out / "test_predictions.npz"), np.load(tmp_path / "test_predictions.npz")
    np.testing.assert_array_equal(fresh["pred"], saved["pred"])
    if RUN_DEVICE.type == "cuda":  # trained on the GPU, evaluated on the CPU: float32 rounding apart
        evaluate_bundle(bundle, recording, device="cpu", out_dir=tmp_path / "cpu")
        on_cpu = np.load(tmp_path / "cpu" / "test_predictions.npz")
        np.testing.assert_allclose(on_cpu["pred"], saved["pred"], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(fresh["true"], saved["true"])
    assert again["test"]["r_per_roi"] == metrics["test"]["r_per_roi"]
    # the live read-out runs other batches (float summation order may differ with threads)
    assert again["test"]["r_by_lookahead"] == pytest.approx(metrics["test"]["r_by_lookahead"], abs=1e-6)
    assert (tmp_path / "evaluation.json").is_file() and (tmp_path / "test_predictions.png").is_file()
    # the live read-out at the bundle's look-ahead for every test sample: the engine's windows
    live, data = again["live"], prepare_with_bundle(bundle, recording)
    assert live["readout"] == ("streaming" if bundle.config.model.variant == "causal" else "windows")
    la = round(bundle.lookahead * data.sfreq)
    step = 1 if live["readout"] == "streaming" else 10  # streaming: every sample
    assert live["every_samples"] == step
    idx = np.arange(data.split.test.start, data.split.test.stop, step)
    idx = idx[idx + la < data.eeg.shape[1]]
    assert live["n_samples"] == idx.size
    ref = predict_at(
        bundle.build_model(), data.eeg, idx + la, bundle.lookahead, "cpu", 16, exact_windows=True
    )
    r_ref = pearson_r(ref.T, data.target[:, idx])
    np.testing.assert_allclose(list(live["r_per_roi"].values()), r_ref, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_lookahead_r_scores_the_bundles_live_predictions(run, recording):
    out, metrics = run
    bundle = load_bundle(out / "model.beira")
    data = prepare_with_bundle(bundle, recording)
    test = data.split.test
    model = bundle.build_model(RUN_DEVICE)
    live = lookahead_r(model, data.eeg, data.target_raw, test, [0.0, 1.0], 0.1, 256, 100.0, device=RUN_DEVICE)
    idx = np.arange(test.start, test.stop, 10)
    idx = idx[idx + 100 < data.eeg.shape[1]]
    assert live["n_samples"] == idx.size
    for la in (0.0, 1.0):
        # the bundle's de-normalised sBOLD, as the live engine publishes it, at update n = i + la
        sbold = predict_at(bundle, data.eeg, idx + round(la * 100), la, RUN_DEVICE, 16)
        r = pearson_r(sbold.T, data.target_raw[:, idx])
        np.testing.assert_allclose(r, live["r_per_roi"][f"{la:g}"], rtol=1e-6, atol=1e-7)
        assert list(metrics["test"]["r_by_lookahead_per_roi"][f"{la:g}"].values()) == pytest.approx(
            r.tolist(), abs=1e-6
        )


def test_bundle_from_another_montage_is_refused(run, recording):
    out, _ = run
    bundle = load_bundle(out / "model.beira")
    renamed = type(recording)(**{**recording.__dict__, "ch_names": tuple(f"X{i}" for i in range(30))})
    with pytest.raises(ValueError, match="lacks the bundle's EEG channels"):
        prepare_with_bundle(bundle, renamed)


def test_truncated_bundle_is_refused(run, tmp_path):
    out, _ = run
    data = (out / "model.beira").read_bytes()
    bad = tmp_path / "cut.beira"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError):
        load_bundle(bad)


def test_override_of_the_variant_trains_the_causal_model(subject, cfg, recording, tmp_path):
    causal = override(cfg, {"model.variant": "causal", "training.max_epochs": 1})
    metrics = run_training(causal, recording, tmp_path, progress=False)
    assert metrics["variant"] == "causal"
    assert load_bundle(tmp_path / "model.beira").config.model.variant == "causal"


@pytest.mark.slow
def test_heads_combined_from_two_seeds_follow_the_validation_block(run, cfg, recording, tmp_path):
    """offline.ensemble: each ROI head comes from the run with the better validation r of that ROI;
    the combined bundle's test metrics are those of its own predictions (re-evaluated)."""
    from offline.ensemble import combine_heads

    out, _ = run
    other = tmp_path / "seed1"
    run_training(override(cfg, {"training.seed": 1}), recording, other, progress=False, interpret=False)
    a, b = load_bundle(out / "model.beira"), load_bundle(other / "model.beira")
    combined = combine_heads([a, b], recording, calibrate=False)
    rois = list(cfg.data.rois)
    val = np.array([[x.metrics["val"]["r_per_roi"][roi] for roi in rois] for x in (a, b)])
    picked = combined.metrics["ensemble"]["head_from_run"]
    assert [picked[roi] for roi in rois] == val.argmax(axis=0).tolist()
    assert list(combined.metrics["val"]["r_per_roi"].values()) == pytest.approx(val.max(axis=0).tolist())
    path = tmp_path / "combined.beira"
    save_bundle(combined, path)
    again = evaluate_bundle(load_bundle(path), recording, device="cpu")
    assert again["test"]["r_per_roi"] == pytest.approx(combined.metrics["test"]["r_per_roi"], abs=1e-6)
    # a head taken from run b predicts as it did in run b
    data = prepare_with_bundle(a, recording)
    x = torch.as_tensor(data.eeg[None, :, :256])
    with torch.no_grad():
        outs = [bnd.build_model()(x)[0, :, 128] for bnd in (a, b, load_bundle(path))]
    for h, roi in enumerate(rois):
        torch.testing.assert_close(outs[2][h], outs[picked[roi]][h])
    # the amplitude calibration rescales heads on validation: r (offline) stays, up to float rounding
    scaled = combine_heads([a, b], recording)
    assert scaled.metrics["test"]["r_per_roi"] == pytest.approx(
        combined.metrics["test"]["r_per_roi"], abs=1e-4
    )
    assert all(v > 0 for v in scaled.metrics["ensemble"]["calibration_scale"])
