"""``beira-train --subjects``: one model per subject, a summary table, broken subjects reported and skipped."""

from __future__ import annotations

import csv
import json

import pytest

from offline.cli import main
from offline.loader import cwl_paths
from offline.synthetic import make_synthetic_dataset

from ..conftest import REPO


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cwl")
    subjects = make_synthetic_dataset(root, ("trio1", "trio2", "trio3"), duration=60.0, seed=0)
    cwl_paths(root, "trio3").nifti.unlink()  # trio3 is broken: its fMRI file is missing
    return root, subjects[0]


def _args(data, out, subjects):
    root, s = data
    return ["--data", str(root), "--subjects", subjects, "--out", str(out), "--no-interpret", "-q",
            "--config", str(REPO / "configs" / "fast_test.yaml"), "--num-threads", "1",
            "--atlas", str(s.atlas), "--atlas-labels", str(s.atlas_labels)]  # fmt: skip


def _read(path):
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_subjects_trained_broken_and_missing_ones_listed(data, tmp_path, capsys):
    out = tmp_path / "batch"
    assert main(_args(data, out, "trio1,trio2,trio3,trio9")) == 0
    captured = capsys.readouterr()
    assert "2 of 4 subjects failed: trio3, trio9" in captured.err
    for subject in ("trio1", "trio2"):
        metrics = json.loads((out / subject / "metrics.json").read_text())
        assert metrics["subject"] == subject and (out / subject / "model.beira").is_file()
    assert not (out / "trio3" / "model.beira").exists()
    rows = _read(out / "summary.csv")
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["subject"] for r in ok} == {"trio1", "trio2"}
    assert len(ok) == 2 * 9  # 8 ROIs + the mean, per subject
    for r in ok:
        m = json.loads((out / r["subject"] / "metrics.json").read_text())
        want = m["test"]["r_mean"] if r["roi"] == "mean" else m["test"]["r_per_roi"][r["roi"]]
        assert float(r["test_r"]) == pytest.approx(want, abs=1e-4)
        assert r["baseline_r"] and float(r["ceiling_test_r"]) > 0  # synthetic: the ceiling is known
    failed = {r["subject"]: r["reason"] for r in rows if r["status"] == "failed"}
    assert set(failed) == {"trio3", "trio9"}
    assert "rwatrio3_eoec_in-scan_hpump-off.nii" in failed["trio3"] and "does not exist" in failed["trio3"]
    assert "trio9" in failed["trio9"] and "does not exist" in failed["trio9"]
    assert (out / "summary.png").stat().st_size > 10_000
    # each subject's preprocessed recording is now in the default cache OUT/cache
    assert sorted(p.name.split("-")[0] for p in (out / "cache").iterdir()) == ["trio1", "trio2"]


def test_all_subjects_failing_is_an_error(data, tmp_path, capsys):
    out = tmp_path / "none"
    assert main(_args(data, out, "trio3,trio9")) == 1
    assert "2 of 2 subjects failed" in capsys.readouterr().err
    assert {r["subject"] for r in _read(out / "summary.csv")} == {"trio3", "trio9"}
    assert not (out / "summary.png").exists()


def test_all_lists_the_subject_folders(data, tmp_path, capsys):
    from offline.batch import find_subjects

    assert find_subjects(data[0]) == ["trio1", "trio2", "trio3"]  # not atlas/ nor ground_truth/
    assert (
        main(["--data", str(data[0]), "--subjects", "all", "--subject", "trio1", "--out", str(tmp_path)]) == 2
    )
    assert "without --subject" in capsys.readouterr().err


def test_group_model_next_to_the_per_subject_models(data, tmp_path):
    from beira_rt.bundle import load_bundle

    out = tmp_path / "group"
    assert main([*_args(data, out, "trio1,trio2,trio3"), "--group", "--finetune-minutes", "0.1"]) == 0
    rows = _read(out / "group" / "group.csv")
    assert {r["subject"] for r in rows} == {"trio1", "trio2"}  # trio3 failed to load: not in the group
    for r in rows:
        m = json.loads((out / r["subject"] / "metrics.json").read_text())
        own = m["test"]["r_mean"] if r["roi"] == "mean" else m["test"]["r_per_roi"][r["roi"]]
        assert float(r["per_subject_r"]) == pytest.approx(own, abs=1e-4)
        assert r["group_within_r"] and r["loso_r"] and r["finetuned_0.1min_r"]
    bundle = load_bundle(out / "group" / "model.beira")
    assert bundle.metrics["group"]["subjects"] == ["trio1", "trio2"]
    hashes = bundle.metrics["group"]["data_hashes"]
    assert hashes["trio1"] == json.loads((out / "trio1" / "metrics.json").read_text())["data"]["data_hash"]
    assert set(bundle.metrics["group"]["evaluation"]["loso"]) == {"trio1", "trio2"}
    assert (out / "group" / "finetune.png").is_file()
