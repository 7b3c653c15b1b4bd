"""The report of a recorded session (``beira-rt report SESSION.xdf``): PNG + JSON.

From the XDF (read with pyxdf): the blocks (session markers), per block the target and
the feedback value and the reward rate, baseline vs feedback vs transfer, the learning
curve over feedback blocks, latency (EEG sample -> feedback sample, from the feedback's
``eeg_time`` channel and the engine's look-ahead) and data losses (missing EEG sample
indices when the replay's index channel is there, gaps in the predictions, signal losses).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from beira_rt.lsl import INDEX_CHANNEL, INDEX_MODULO, MARKERS_TYPE, PREDICTION_TYPE

from .feedback import FEEDBACK_CHANNELS

__all__ = ["load_session", "write_report"]

FEEDBACK_TYPE = "Feedback"


def _labels(stream: dict) -> list[str]:
    try:
        return [c["label"][0] for c in stream["info"]["desc"][0]["channels"][0]["channel"]]
    except (KeyError, IndexError, TypeError):
        return []


def _desc_value(stream: dict, node: str, key: str) -> str | None:
    try:
        return stream["info"]["desc"][0][node][0][key][0]
    except (KeyError, IndexError, TypeError):
        return None


def load_session(path: str | Path) -> dict[str, Any]:
    """The session's streams from an XDF file: feedback, markers (parsed), predictions, EEG, others."""
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    out: dict[str, Any] = {"others": []}
    for s in streams:
        stype, name = s["info"]["type"][0], s["info"]["name"][0]
        if stype == FEEDBACK_TYPE:
            out["feedback"] = s
        elif stype == MARKERS_TYPE and any(
            '"session_start"' in str(m) or '"block_start"' in str(m) for m in s["time_series"]
        ):
            out["markers"] = s
            out["events"] = [
                (float(t), json.loads(m[0])) for t, m in zip(s["time_stamps"], s["time_series"], strict=True)
            ]
        elif stype == PREDICTION_TYPE:
            out["predictions"] = s
        elif stype == "EEG":
            out["eeg"] = s
        else:
            out["others"].append(name)
    if "feedback" not in out or "markers" not in out:
        raise ValueError(f"{path} holds no feedback stream with its session markers: not a beira-rt session.")
    return out


def _blocks(events: list[tuple[float, dict]]) -> list[dict[str, Any]]:
    starts = {e["index"]: (t, e) for t, e in events if e.get("event") == "block_start"}
    ends = {e["index"]: t for t, e in events if e.get("event") == "block_end"}
    blocks = []
    for i in sorted(starts):
        t, e = starts[i]
        blocks.append(
            {"index": i, "name": e["name"], "kind": e["kind"], "start": t, "end": ends.get(i, math.nan)}
        )
    return blocks


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def _finite(x: Any) -> Any:
    """NaN and infinities -> None (strict JSON)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_report(path: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Write ``<stem>.report.json`` and ``<stem>.report.png``; returns the JSON document."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    out_dir = Path(out_dir) if out_dir else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    ses = load_session(path)
    fb = ses["feedback"]
    ft = np.asarray(fb["time_stamps"], dtype=np.float64)
    fx = np.asarray(fb["time_series"], dtype=np.float64)
    col = {c: FEEDBACK_CHANNELS.index(c) for c in FEEDBACK_CHANNELS}
    blocks = _blocks(ses["events"])
    t0 = next((t for t, e in ses["events"] if e.get("event") == "session_start"), ft[0] if ft.size else 0.0)
    per_block = []
    for b in blocks:
        m = (ft >= b["start"]) & (ft < b["end"])
        per_block.append({
            **b, "start_s": b["start"] - t0, "end_s": b["end"] - t0, "samples": int(m.sum()),
            "target": _mean(fx[m, col["target"]]), "value": _mean(fx[m, col["value"]]),
            "reward_rate": _mean(fx[m, col["reward"]]) if b["kind"] in ("feedback", "transfer") else None,
        })  # fmt: skip
    by_kind = {}
    for kind in ("baseline", "feedback", "transfer", "rest"):
        m = np.zeros(ft.size, bool)
        for b in blocks:
            if b["kind"] == kind:
                m |= (ft >= b["start"]) & (ft < b["end"])
        by_kind[kind] = {
            "samples": int(m.sum()),
            "target": _mean(fx[m, col["target"]]),
            "value": _mean(fx[m, col["value"]]),
        }
    learning = [(pb["index"], pb["value"]) for pb in per_block if pb["kind"] == "feedback"]
    lookahead = (
        float(_desc_value(ses.get("predictions", {}), "beira", "lookahead") or 0.0)
        if "predictions" in ses
        else 0.0
    )
    lat = (ft - (fx[:, col["eeg_time"]] + lookahead)) * 1e3 if ft.size else np.empty(0)
    losses: dict[str, Any] = {
        "signal_lost": sum(1 for _, e in ses["events"] if e.get("event") == "signal_lost"),
        "runner_restarted": sum(1 for _, e in ses["events"] if e.get("event") == "runner_restarted"),
    }
    if "predictions" in ses and len(ses["predictions"]["time_stamps"]) > 1:
        pt = np.asarray(ses["predictions"]["time_stamps"])
        hop = float(np.median(np.diff(pt)))
        losses["prediction_gaps"] = int(np.sum(np.diff(pt) > 2.5 * hop))
    if "eeg" in ses and INDEX_CHANNEL in _labels(ses["eeg"]):
        idx = np.asarray(ses["eeg"]["time_series"])[:, _labels(ses["eeg"]).index(INDEX_CHANNEL)].astype(
            np.int64
        )
        step = np.diff(idx) % INDEX_MODULO
        losses["eeg_samples_missing"] = int(np.sum(step - 1))
    rewarded = [
        pb["reward_rate"] for pb in per_block if pb["kind"] == "feedback" and pb["reward_rate"] is not None
    ]
    summary = {
        "protocol": next(
            (e.get("protocol") for _, e in ses["events"] if e.get("event") == "session_start"), None
        ),
        "duration_s": float(blocks[-1]["end"] - t0) if blocks else math.nan,
        "blocks": len(blocks),
        "feedback_samples": int(ft.size),
        # the target (raw model output, a.u.) by block kind; the value is normalised against the
        # baseline, so it is undefined (NaN) during the first baseline
        "baseline_vs_feedback_vs_transfer": {
            k: {"target": v["target"], "value": v["value"]} for k, v in by_kind.items() if k != "rest"
        },
        "learning_curve": learning,
        "reward_rate": float(np.nanmean(rewarded)) if rewarded else None,
        "eeg_to_feedback_ms": {
            "p50": float(np.percentile(lat, 50)) if lat.size else None,
            "p99": float(np.percentile(lat, 99)) if lat.size else None,
        },
        "losses": losses,
    }
    doc = {
        "file": str(path),
        "summary": summary,
        "blocks": per_block,
        "by_kind": by_kind,
        "other_streams": ses["others"],
    }
    doc = _finite(doc)
    stem = out_dir / path.stem
    Path(f"{stem}.report.json").write_text(json.dumps(doc, indent=1, allow_nan=False), encoding="utf-8")

    fig, axes = plt.subplots(3, 1, figsize=(11, 9), gridspec_kw={"height_ratios": [2, 1, 1]})
    colours = {"baseline": "#bcd", "feedback": "#bdb", "transfer": "#ddb", "rest": "#eee"}
    ax = axes[0]
    for b in blocks:
        ax.axvspan(b["start"] - t0, b["end"] - t0, color=colours.get(b["kind"], "#eee"), alpha=0.7, lw=0)
        ax.text(
            (b["start"] + b["end"]) / 2 - t0,
            1.01,
            b["name"],
            transform=ax.get_xaxis_transform(),
            ha="center",
            fontsize=7,
        )
    ax.plot(ft - t0, fx[:, col["value"]], lw=1, color="k", label="feedback value")
    ax2 = ax.twinx()
    ax2.plot(ft - t0, fx[:, col["target"]], lw=0.8, color="tab:blue", alpha=0.6, label="target (raw)")
    ax.set_xlabel("s from the session start")
    ax.set_ylabel("feedback value")
    ax2.set_ylabel("target", color="tab:blue")
    ax.set_title(f"{path.name}: target and feedback per block")
    axes[1].plot([i for i, _ in learning], [v for _, v in learning], "o-")
    axes[1].set_xlabel("feedback block (index)")
    axes[1].set_ylabel("mean value")
    axes[1].set_title("learning curve over feedback blocks")
    if lat.size:
        axes[2].hist(lat, bins=50)
    axes[2].set_xlabel("EEG sample -> feedback sample (ms)")
    axes[2].set_title("latency")
    fig.tight_layout()
    fig.savefig(f"{stem}.report.png", dpi=90)
    plt.close(fig)
    return doc
