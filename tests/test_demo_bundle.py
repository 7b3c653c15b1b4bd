"""The shipped demo bundle: it loads, and re-evaluated on its (regenerated) recording it
reproduces the test metrics stored in it by ``beira-train``.

The recording is the synthetic CWL subject ``trio1`` (300 s, seed 0) the README's
"The demo bundle" commands train on; the generator is deterministic, so the re-evaluated
metrics must match those recorded at training time. The bundle is the built-in default
configuration (``training.fit`` closed_form: the SPoC front end and the ridge read-out, fitted
on the training block to choose the look-ahead, then again on the training and validation
blocks), and none of its heads is flat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beira_rt.bundle import load_bundle

DEMO = Path(__file__).resolve().parents[1] / "beira_rt" / "data" / "demo.beira"


@pytest.fixture(scope="module")
def demo():
    assert DEMO.is_file(), f"the demo bundle {DEMO} is missing (README: 'The demo bundle')"
    return load_bundle(DEMO)


def test_demo_bundle_loads_with_its_metrics(demo):
    assert len(demo.rois) == 8 and len(demo.ch_names) == 30
    test = demo.metrics["test"]
    assert set(test["r_per_roi"]) == set(demo.rois)
    assert np.isfinite(test["r_mean"]) and np.isfinite(demo.metrics["baseline"]["r_mean"])
    assert set(test["r_by_lookahead"]) == {"0", "0.5", "1", "2", "3"}
    assert 0.0 <= demo.lookahead <= 3.0
    assert demo.metrics["data_hash"]


def test_demo_bundle_is_the_default_model(demo):
    from beira_rt.config import BeiraConfig

    assert demo.config.model == BeiraConfig().model
    assert demo.config.preprocessing == BeiraConfig().preprocessing
    assert demo.config.training == BeiraConfig().training
    assert demo.metrics["refit"] and demo.metrics["fit"] == "closed_form"


@pytest.mark.slow
def test_demo_bundle_reproduces_its_stored_test_metrics(demo, demo_subject_dir, tmp_path):
    from offline.evaluate import evaluate_bundle
    from offline.loader import load_cwl_subject
    from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE

    data = demo_subject_dir
    rec = load_cwl_subject(
        data,
        "trio1",
        demo.config.data,
        atlas=data / "atlas" / ATLAS_FILE,
        atlas_labels=data / "atlas" / ATLAS_LABELS_FILE,
        sfreq_out=demo.sfreq,
    )
    # The data hash is over the files' bytes, which also depend on the writers' library versions
    # (NIfTI and MAT headers): a differing hash alone does not mean different data. The metrics
    # below decide; the hash says, on failure, whether the files are the ones trained on.
    files = (
        "the same files as at training"
        if rec.data_hash == demo.metrics["data_hash"]
        else "files that differ in bytes from those at training (data hash differs)"
    )
    got = evaluate_bundle(demo, rec, device="cpu", out_dir=tmp_path / "eval")
    stored = demo.metrics["test"]
    for roi in demo.rois:
        assert got["test"]["r_per_roi"][roi] == pytest.approx(stored["r_per_roi"][roi], abs=1e-4), (
            roi,
            files,
        )
    assert got["test"]["r_mean"] == pytest.approx(stored["r_mean"], abs=1e-4), files
    for la, r in stored["r_by_lookahead"].items():
        assert got["test"]["r_by_lookahead"][la] == pytest.approx(r, abs=1e-4), (la, files)
    # no flat head: every ROI's prediction on the test block moves (a flat line has ~0 spread)
    saved = np.load(tmp_path / "eval" / "test_predictions.npz")
    spread = saved["pred"].std(axis=1) / saved["true"].std(axis=1)
    assert (spread > 0.1).all(), dict(zip(demo.rois, spread.round(3).tolist(), strict=True))
