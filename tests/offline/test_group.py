"""The group model (offline/group.py): several subjects' training blocks, per-subject statistics,
within-subject, leave-one-subject-out and fine-tuning evaluation, on tiny synthetic subjects."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
import torch

from beira_rt.bundle import load_bundle, save_bundle
from offline.dataset import GroupData, GroupSampler
from offline.group import evaluate_group, finetune_part, make_group_bundle, write_group_report

from . import _ddp_worker as worker

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cfg():
    return worker.config(2)


@pytest.fixture(scope="module")
def parts(cfg):
    """Three subjects with other hidden draws and EEG amplitudes 1x, 3x and 0.5x."""
    return {f"s{k}": worker.make_data(cfg, seed=10 + k, gain=g) for k, g in enumerate((1.0, 3.0, 0.5))}


def test_per_subject_statistics_and_windows_inside_each_training_block(parts, cfg):
    # each subject is z-scored with its own training block: amplitudes 1x, 3x, 0.5x all come out at unit scale
    for part in parts.values():
        train = part.eeg[:, part.split.train.slice]
        np.testing.assert_allclose(train.std(axis=1), 1.0, atol=1e-3)
    # the same subject recorded at 3x the amplitude meets the model on the same scale
    one, three = worker.make_data(cfg, seed=10), worker.make_data(cfg, seed=10, gain=3.0)
    np.testing.assert_allclose(three.normalizer.std, 3.0 * one.normalizer.std, rtol=1e-6)
    np.testing.assert_allclose(three.eeg, one.eeg, atol=1e-4)
    group = GroupData(tuple(parts.values()), tuple(parts))
    sampler = GroupSampler(group, cfg.model.n_times, np.random.default_rng(0))
    assert sampler.n_positions == sum(len(p.split.train) - cfg.model.n_times + 1 for p in parts.values())
    flat = np.array([0, sampler.n_positions - 1, *sampler.starts(64)])
    x, y = sampler.windows(flat)
    assert x.shape == (66, group.n_chans, cfg.model.n_times) and torch.isfinite(y).all()
    # the last flat position is the last window of the last subject's training block
    last = parts["s2"]
    stop = last.split.train.stop
    np.testing.assert_array_equal(x[1].numpy(), last.eeg[:, stop - cfg.model.n_times : stop])


def test_within_loso_and_finetuning_tables(parts, cfg, tmp_path):
    out, model = evaluate_group(
        cfg, parts, CPU, finetune_minutes=(0.1, 0.2), finetune_overrides={"training.max_epochs": 1}
    )
    assert out["subjects"] == ["s0", "s1", "s2"]
    assert out["group_training"]["n_steps"] == 2 * cfg.training.steps_per_epoch
    for key in ("within", "loso"):
        assert set(out[key]) == {"s0", "s1", "s2"}
    for s in ("s0", "s1", "s2"):
        tables = [out["within"][s], out["loso"][s], out["finetune"][s]["0.1"], out["finetune"][s]["0.2"]]
        for table in tables:
            assert set(table) == {"alpha", "walk", "mean"} and all(math.isfinite(v) for v in table.values())
    # each subject's LOSO model is another model than the group model of all three
    assert out["loso"]["s0"] != out["within"]["s0"]
    # the report: one row per subject and ROI (and mean), the fine-tuning curve; the bundle carries it all
    per_subject = {"s1": {"test": {"r_per_roi": {"alpha": 0.5, "walk": 0.1}, "r_mean": 0.3}}}
    written = write_group_report(tmp_path, out, per_subject)
    assert [p.name for p in written] == ["group.json", "group.csv", "finetune.png"]
    with (tmp_path / "group.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 3 and list(rows[0]) == [
        "subject", "roi", "per_subject_r", "group_within_r", "loso_r", "finetuned_0.1min_r", "finetuned_0.2min_r"
    ]  # fmt: skip
    s1_mean = next(r for r in rows if r["subject"] == "s1" and r["roi"] == "mean")
    assert float(s1_mean["per_subject_r"]) == 0.3
    assert float(s1_mean["loso_r"]) == pytest.approx(out["loso"]["s1"]["mean"], abs=1e-4)
    group = GroupData(tuple(parts.values()), tuple(parts))
    save_bundle(
        make_group_bundle(cfg, group, model, out, {s: f"hash-{s}" for s in parts}), tmp_path / "g.beira"
    )
    bundle = load_bundle(tmp_path / "g.beira")
    assert bundle.metrics["group"]["subjects"] == ["s0", "s1", "s2"]
    assert bundle.metrics["group"]["data_hashes"]["s2"] == "hash-s2"
    assert bundle.metrics["group"]["evaluation"]["loso"]["s2"] == pytest.approx(out["loso"]["s2"])
    np.testing.assert_allclose(bundle.norm_std, np.mean([p.normalizer.std for p in parts.values()], axis=0))


def _poisoned_after_calibration(parts):
    """s0's first 0.2 min as a calibration part, and s0 (its BOLD from the end of that part to its
    test block poisoned with NaN) with s1."""
    s0 = parts["s0"]
    ft = finetune_part(s0, 0.2)
    poisoned = s0.target.copy()
    poisoned[:, ft.split.val.stop : s0.split.test.start] = np.nan
    return ft, {"s0": dataclasses.replace(s0, target=poisoned), "s1": parts["s1"]}


def test_held_out_subject_labels_are_never_used(parts, cfg):
    """s0's BOLD from the end of its first 0.2 min to its test block is poisoned with NaN: LOSO and
    fine-tuning for s0 must not touch it (any use makes the loss or the checkpoint NaN)."""
    _, held = _poisoned_after_calibration(parts)
    kw = {"finetune_minutes": (0.2,), "finetune_overrides": {"training.max_epochs": 1}}
    out, model = evaluate_group(cfg, held, CPU, within=False, held_out=("s0",), **kw)
    assert model is None
    assert set(out["loso"]) == {"s0"}
    for table in (out["loso"]["s0"], out["finetune"]["s0"]["0.2"]):
        assert all(math.isfinite(v) for v in table.values())
    # the poison bites where s0's labels are used: the group model trained on s0's whole training block
    with pytest.raises(RuntimeError, match="no epoch gave a finite validation r"):
        evaluate_group(cfg, held, CPU, loso=False, **kw)


def test_finetune_span(parts):
    part = parts["s1"]
    ft = finetune_part(part, 0.2)
    n = round(0.2 * 60 * part.sfreq)
    assert ft.split.train.start == part.split.train.start and ft.split.val.stop == part.split.train.start + n
    assert len(ft.split.val) == round(0.2 * n) and ft.split.test == part.split.test
    with pytest.raises(ValueError, match="fewer than one window"):
        GroupSampler(GroupData((finetune_part(part, 0.01),), ("s1",)), 256, np.random.default_rng(0))


def test_read_out_fine_tuning_refits_the_front_end_on_the_held_out_subject(parts, cfg):
    """With the read-out back end and a SPoC front end, fine-tuning on a held-out subject first fits
    the front end to that subject's calibration data (the other subjects' SPoC filters do not carry
    over), using only the calibration span: s0 poisoned after it as above, every r finite."""
    from beira_rt.config import override

    ro = override(cfg, {"model.backbone": "readout", "model.variant": "causal", "model.filter_init": "spoc",
                        "model.readout_seconds": 1.0, "model.readout_step": 0.1, "model.n_filters": 2,
                        "training.front_end_lr_scale": 0.0})  # fmt: skip
    s0 = parts["s0"]
    ft, held = _poisoned_after_calibration(parts)
    kw = {"finetune_minutes": (0.2,), "finetune_overrides": {"training.max_epochs": 1}}
    out, _ = evaluate_group(ro, held, CPU, within=False, held_out=("s0",), **kw)
    for table in (out["loso"]["s0"], out["finetune"]["s0"]["0.2"]):
        assert all(math.isfinite(v) for v in table.values())
    # the tuned model's front end is the SPoC fit of the calibration span (frozen while tuning)
    from beira_rt.models import build_model
    from offline.group import finetune
    from offline.spoc import apply_spoc, spoc_branches

    other = build_model(ro.model, s0.n_chans, s0.n_rois, s0.sfreq)
    tuned = finetune(other, ft, override(ro, {"training.max_epochs": 1}), CPU)
    want = build_model(ro.model, s0.n_chans, s0.n_rois, s0.sfreq)
    fitted = spoc_branches(
        [(ft.eeg, ft.target, ft.split.train)],
        ft.sfreq,
        ro.model.bold_delay,
        filter_size=ro.model.filter_size,
        n_bands=ro.model.spoc_bands,
    )
    apply_spoc(want, fitted)
    for key in ("interpretable.unmix.weight", "interpretable.band_pass.weight"):
        torch.testing.assert_close(tuned.state_dict()[key], want.state_dict()[key])
    unmix = "interpretable.unmix.weight"
    assert not torch.equal(tuned.state_dict()[unmix], other.state_dict()[unmix])
