"""Protocol files: the examples load; bad protocols are refused with a message naming the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beira_rt.config import ConfigError
from beira_rt.session.feedback import FeedbackComputer
from beira_rt.session.protocol import load_protocol, parse_protocol, parse_target
from tests.conftest import REPO

BASE = {"name": "b", "kind": "baseline", "duration": 10}
FEED = {"name": "f", "kind": "feedback", "duration": 10}


def _proto(**changes):
    data = {"feedback": {"target": "Left Putamen"}, "blocks": [BASE, FEED]}
    data.update(changes)
    return data


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "protocols").glob("*.yaml")))
def test_example_protocols_load(path):
    proto = load_protocol(path)
    assert proto.blocks[0].kind == "baseline" and proto.duration > 0
    assert all(b.start == a.end for a, b in zip(proto.blocks, proto.blocks[1:], strict=False))


def test_groups_repeat_and_shuffle_with_their_seed():
    group = {"repeat": 3, "shuffle": True, "blocks": [FEED, {"name": "t", "kind": "transfer", "duration": 5}]}
    a = parse_protocol(_proto(blocks=[BASE, group], protocol={"seed": 1}))
    b = parse_protocol(_proto(blocks=[BASE, group], protocol={"seed": 1}))
    assert [x.name for x in a.blocks] == [x.name for x in b.blocks] and len(a.blocks) == 7
    orders = {
        tuple(x.name for x in parse_protocol(_proto(blocks=[BASE, group], protocol={"seed": s})).blocks)
        for s in range(8)
    }
    assert len(orders) > 1  # the seed changes the order


def test_targets_sums_differences_and_weights():
    assert parse_target("Left Putamen + Right Putamen") == {"Left Putamen": 1.0, "Right Putamen": 1.0}
    assert parse_target("Left Caudate - Right Caudate") == {"Left Caudate": 1.0, "Right Caudate": -1.0}
    assert parse_target(" 0.5 * Left Caudate+2*Right Putamen ") == {"Left Caudate": 0.5, "Right Putamen": 2.0}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _proto(feedback={"target": "Left Putamen", "smootheing": 1}),
            r"unknown config key feedback\.smootheing",
        ),
        (
            _proto(blocks=[BASE, {**FEED, "duration": -5}]),
            r"blocks\[1\]\.duration: -5.0 is out of range; it must be > 0",
        ),
        (_proto(feedback={"target": "Left Putamenn"}), r"unknown ROI 'Left Putamenn'"),
        (_proto(feedback={"target": "Left Caudate - Left Caudate"}), r"cancels out"),
        (_proto(blocks=[FEED, BASE]), r"block 0 \('f', feedback\) comes before any baseline block"),
        (_proto(blocks=[BASE, {**FEED, "kind": "feedbak"}]), r"'feedbak' is not allowed; choose one of"),
        (_proto(extra=1), r"unknown protocol key extra"),
        (
            _proto(feedback={"target": "Left Putamen", "normalise": "zscore", "sham": "/no/such.xdf"}),
            r"sham.*does not exist",
        ),
    ],
)
def test_bad_protocols_are_refused_naming_the_problem(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_protocol(data)


def test_feedback_before_a_baseline_is_fine_without_normalisation():
    proto = parse_protocol(_proto(feedback={"target": "Left Putamen", "normalise": "none"}, blocks=[FEED]))
    assert proto.blocks[0].kind == "feedback"


def test_the_cli_refuses_a_bad_file_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("feedback: {target: Left Putamen}\nblocks:\n  - {kind: rest, duration: 0}\n")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "beira-rt"), "session", str(bad), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "bad.yaml" in out.stderr and "duration" in out.stderr


def test_zscore_feedback_by_hand():
    comp = FeedbackComputer(
        {0: 1.0, 1: -1.0}, smoothing=0.0, normalise="zscore", threshold=1.0, direction="up"
    )
    comp.begin_baseline(0)
    for k, v in enumerate([1.0, 2.0, 3.0, 4.0]):
        value, target, smoothed, reward = comp.step([v, 0.0], k * 0.1, "baseline")
        assert value != value and target == v == smoothed and reward == 0  # NaN before the baseline ends
    stats = comp.end_baseline()
    assert stats.mean == 2.5 and abs(stats.std - 1.118033988749895) < 1e-12
    value, _, _, reward = comp.step([6.0, 0.5], 1.0, "feedback")  # target 5.5
    assert abs(value - (5.5 - 2.5) / 1.118033988749895) < 1e-12 and reward == 1
    assert comp.step([2.0, 0.0], 1.1, "rest")[3] == 0  # no reward outside feedback and transfer
