"""The measuring scripts under tools/ that the README and the closing notes quote: they run on a
synthetic CWL subject written by the real writers and print figures that mean what they say."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _table(text: str, column: str) -> dict[str, float]:
    """ROI -> value of one column of tools/synthetic_check.py's table."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("ROI"))
    names = lines[head].replace("linear FIR", "linear_FIR").split()[1:]  # ceiling ceil(all) linear ...
    out = {}
    for line in lines[head + 1 :]:
        if line.startswith("mean"):
            break
        roi, values = line[:17].strip(), [float(v) for v in line[17:].split()]
        out[roi] = values[names.index(column)]
    return out


def test_synthetic_check_oracle_knows_the_generator(demo_subject_dir, capsys):
    """The oracle (true lead field, bands and formulas from the ground truth, per-seed drive terms)
    runs and beats the linear baseline on the test block; neither exceeds the ceiling by much."""
    _tool("synthetic_check").main(["--data", str(demo_subject_dir), "--subject", "trio1"])
    text = capsys.readouterr().out
    oracle, linear, ceiling = (_table(text, c) for c in ("oracle", "linear", "ceiling"))
    assert len(oracle) == 8 and all(v == v for v in oracle.values())  # every ROI, no NaN
    mean = {k: sum(v.values()) / 8 for k, v in (("oracle", oracle), ("linear", linear), ("ceiling", ceiling))}
    assert mean["oracle"] > mean["linear"] + 0.1
    assert mean["oracle"] < mean["ceiling"] + 0.05


@pytest.mark.usefixtures("one_torch_thread")
def test_bench_offline_times_the_closed_form_fit(demo_subject_dir, capsys):
    """With the default (training.fit closed_form) the training benchmark times the fit's stages
    instead of gradient steps, and reports the validation r the fit reaches."""
    from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE

    atlas = demo_subject_dir / "atlas"
    _tool("bench_offline").main(
        [
            "--skip-predict", "--train-repeats", "1", "--threads", "1", "--data", str(demo_subject_dir),
            "--atlas", str(atlas / ATLAS_FILE), "--atlas-labels", str(atlas / ATLAS_LABELS_FILE),
        ]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert "closed-form fit (training.fit closed_form)" in text
    assert "windows/s" not in text  # no gradient step was timed
    stages = dict(
        re.findall(r"^  (front end \(SPoC\)|ridge read-out|whole fit)\s+min\s+([\d.]+) s", text, re.M)
    )
    assert set(stages) == {"front end (SPoC)", "ridge read-out", "whole fit"}
    assert 0 < float(stages["front end (SPoC)"]) <= float(stages["whole fit"])
    r = float(re.search(r"validation r ([-\d.]+)", text).group(1))
    assert r > 0.3  # the demo subject's fit reaches ~0.49 on its validation block


@pytest.mark.usefixtures("one_torch_thread")
def test_validation_check_compares_configurations_on_validation_blocks(tmp_path, capsys):
    """tools/validation_check.py writes a missing subject, fits the base and a candidate on its
    training block and prints their validation r and the paired difference; a candidate equal to
    the base differs by exactly 0, one with a single branch per ROI by something."""
    tool = _tool("validation_check")
    assert tool.parse_overrides("a.b=1 c.d=[1, 2]  e=x") == {"a.b": 1, "c.d": [1, 2], "e": "x"}
    tool.main(
        [
            "--data-root", str(tmp_path), "--data-seeds", "0", "--duration", "240", "--threads", "1",
            "--candidate", "model.spoc_bands=16", "--candidate", "model.n_filters=1",
        ]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert (tmp_path / "seed0" / "ground_truth" / "trio1.json").is_file()
    row = re.search(r"subject seed 0: ([-\d.]+)  ([-\d.]+)  ([-\d.]+)", text)
    base, same, one = (float(v) for v in row.groups())
    assert base > 0.2 and same == base and one != base
    assert re.search(r"model.spoc_bands=16: [\d.]+   \+0\.000 \+- nan, higher on 0 of 1", text)
    # --trim: the same fit on the training block without its last 60 s (less data, another r)
    tool.main(["--data-root", str(tmp_path), "--data-seeds", "0", "--duration", "240", "--threads", "1",
               "--trim", "60"])  # fmt: skip
    text = capsys.readouterr().out
    assert "each fitted on the training block without its last 60 s" in text
    trimmed = float(re.search(r"subject seed 0: ([-\d.]+)", text).group(1))
    assert np.isfinite(trimmed) and trimmed != base
    with pytest.raises(SystemExit, match="closed-form"):
        tool.main(["--data-root", str(tmp_path), "--data-seeds", "0", "--set", "training.fit=gradient"])


@pytest.mark.usefixtures("one_torch_thread")
def test_validation_check_on_the_independent_generator(tmp_path, capsys):
    """--generator foreign writes the missing subject with tools/make_foreign_cwl.py (not this
    project's generator) and compares the configurations on it."""
    tool = _tool("validation_check")
    tool.main(
        [
            "--generator", "foreign", "--data-root", str(tmp_path), "--data-seeds", "3", "--duration", "150",
            "--threads", "1", "--set", "training.max_minutes=null", "--candidate", "model.spoc_fmin=2.0",
        ]
    )  # fmt: skip
    text = capsys.readouterr().out
    truth = json.loads((tmp_path / "seed3" / "ground_truth" / "trio1.json").read_text())
    assert truth["generator"] == "foreign" and truth["seed"] == 3 and truth["duration_s"] == 150.0
    assert "subjects: foreign generator" in text
    base, fmin2 = (float(v) for v in re.search(r"subject seed 3: ([-\d.]+)  ([-\d.]+)", text).groups())
    assert np.isfinite(base) and np.isfinite(fmin2) and fmin2 != base
