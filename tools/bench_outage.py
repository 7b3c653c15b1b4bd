"""How good are predictions made from bridged windows? The measurement behind ``live.bridge``.

For a bundle and a CWL subject (synthetic here), the engine's own signal path
(:class:`beira_rt.engine.live_pipeline.LivePipeline`, the bundle's model at its
look-ahead) runs over the recording with an outage of D seconds (samples lost,
stamps jump) before each of several return times. From the return until the
bridged span has left the window (``W / sfreq`` s later) it predicts every
``--hop`` s. The same pipeline without an outage gives the reference
predictions at the same times. Printed per D and bridge mode: how soon
predictions resume, the share of the stretch with predictions, and the
correlation with the truth (pooled over the stretches, mean over ROIs) of the
bridged run and of the clean run at the same times, and their difference.

Outages are placed so that the stretches stay out of the subject's test block
(the last 60 s): nothing here reads it.

    python tools/bench_outage.py --model beira_rt/data/demo.beira --data data/synthetic --subject trio1 \\
        --atlas data/synthetic/atlas/synthetic_HarvardOxford-sub-maxprob_3mm.nii \\
        --atlas-labels data/synthetic/atlas/synthetic_HarvardOxford-sub_labels.tsv
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.bundle import load_bundle
from beira_rt.engine.device_window import DeviceWindow
from beira_rt.engine.live_pipeline import LivePipeline
from beira_rt.engine.stats import EngineStats
from beira_rt.inference import WindowPredictor
from beira_rt.lsl import Block

CHUNK = 10  # input samples per block, as an amplifier sends them


class Run:
    """The engine's signal path over a recording, with an optional outage; predictions on demand."""

    def __init__(
        self, bundle, predictor, eeg: np.ndarray, sfreq_in: float, bridge: str, resume: float
    ) -> None:
        self.bundle, self.predictor, self.eeg, self.sfreq_in = bundle, predictor, eeg, sfreq_in
        W = bundle.config.model.n_times
        self.pipe = LivePipeline(
            bundle.make_preprocessor(sfreq_in),
            bundle.normalizer,
            DeviceWindow(eeg.shape[1], W),
            sfreq_in,
            bundle.config.preprocessing.sfreq,
            EngineStats(),
            bridge=bridge,
            max_bridge=30.0,
            resume=resume,
            monitor=None,
        )
        self.pos = 0

    def feed_until(self, stop: int, lost: tuple[int, int] | None = None) -> None:
        """Feed input samples up to ``stop`` (exclusive); samples in ``lost`` are never fed."""
        while self.pos < stop:
            end = min(stop, self.pos + CHUNK)
            idx = np.arange(self.pos, end)
            if lost is not None:
                idx = idx[(idx < lost[0]) | (idx >= lost[1])]
            if idx.size:
                self.pipe.feed(Block(self.eeg[idx], idx / self.sfreq_in, int(idx[0])))
            self.pos = end

    def predict(self) -> tuple[float, np.ndarray, float] | None:
        """(EEG time of the prediction, values, quality), or None when nothing may be published."""
        if not self.pipe.ready:
            return None
        with torch.inference_mode():
            values = self.predictor.predict(self.pipe.window.view())
        return self.pipe.newest_stamp - self.bundle.lookahead, values, self.pipe.quality


def corr_pooled(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over ROIs of the correlation of (n, n_rois) arrays (NaN-free rows only)."""
    ok = np.isfinite(truth).all(axis=1) & np.isfinite(pred).all(axis=1)
    r = [np.corrcoef(pred[ok, j], truth[ok, j])[0, 1] for j in range(pred.shape[1])]
    return float(np.nanmean(r))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--subject", default="trio1")
    p.add_argument("--atlas")
    p.add_argument("--atlas-labels")
    p.add_argument("--outages", default="1,2,5,10", help="outage lengths in s")
    p.add_argument("--modes", default="repeat,zeros,reset")
    p.add_argument("--returns", type=int, default=12, help="return times per outage length")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between predictions (s)")
    p.add_argument("--resume", type=float, default=0.5, help="live.resume_seconds")
    a = p.parse_args()
    torch.set_num_threads(1)
    logger.setLevel(logging.ERROR)  # one warning per simulated gap otherwise
    from offline.loader import load_cwl_subject

    bundle = load_bundle(a.model)
    predictor = WindowPredictor(bundle, "cpu")
    cfg = bundle.config
    rec = load_cwl_subject(
        a.data, a.subject, cfg.data, a.atlas, a.atlas_labels, sfreq_out=cfg.preprocessing.sfreq
    )
    picks = [rec.ch_names.index(ch) for ch in bundle.ch_names]
    eeg = rec.eeg[picks].T.copy()
    fs, fm = rec.sfreq, cfg.preprocessing.sfreq
    shift = round(cfg.model.bold_delay * fm)
    truth = np.full((rec.bold.shape[1], rec.bold.shape[0]), np.nan)
    truth[: rec.bold.shape[1] - shift] = rec.bold[:, shift:].T  # row j: BOLD expected for EEG time j / fm
    W = cfg.model.n_times
    span = W / fm
    n_in = eeg.shape[0]
    test_start = n_in / fs - 60.0
    warm = span + 10.0  # the pipeline runs this long before the outage (a full window and more)
    first_ret = warm + max(float(x) for x in a.outages.split(","))
    last_ret = test_start - span - 1.0
    returns = np.linspace(first_ret, last_ret, a.returns)
    print(
        f"bundle {a.model} (look-ahead {bundle.lookahead:g} s, window {span:.2f} s); subject {a.subject}: "
        f"{n_in / fs:.0f} s, test block from {test_start:.0f} s (not used); {len(returns)} returns from "
        f"{returns[0]:.0f} to {returns[-1]:.0f} s; predictions every {a.hop:g} s until {span:.2f} s after "
        "each return"
    )
    print(f"{'outage':>7} {'bridge':>7} {'resume s':>9} {'covered':>8} {'r bridged':>10} {'r clean':>8} "
          f"{'diff':>7} {'r(b,c)':>7} {'quality':>8}")  # fmt: skip
    t_start = time.perf_counter()
    for dur in (float(x) for x in a.outages.split(",")):
        for mode in a.modes.split(","):
            got_b, got_c, tru, resumes, n_slots, quals = [], [], [], [], 0, []
            for ret in returns:
                r_in = round(ret * fs)
                lost = (r_in - round(dur * fs), r_in)
                start = max(0, lost[0] - round((warm - 0) * fs))
                runs = {
                    "b": Run(bundle, predictor, eeg, fs, mode, a.resume),
                    "c": Run(bundle, predictor, eeg, fs, mode, a.resume),
                }
                for run in runs.values():
                    run.pos = start
                runs["b"].feed_until(r_in, lost)
                runs["c"].feed_until(r_in)
                first_pred = None
                for k in range(1, int(span / a.hop) + 1):
                    stop = r_in + round(k * a.hop * fs)
                    runs["b"].feed_until(stop, lost)
                    runs["c"].feed_until(stop)
                    n_slots += 1
                    pb, pc = runs["b"].predict(), runs["c"].predict()
                    if pb is None or pc is None:
                        continue
                    if first_pred is None:
                        first_pred = k * a.hop
                    j = round(pb[0] * fm)
                    if not 0 <= j < truth.shape[0]:
                        continue
                    got_b.append(pb[1])
                    got_c.append(pc[1])
                    tru.append(truth[j])
                    quals.append(pb[2])
                resumes.append(first_pred if first_pred is not None else np.nan)
            gb, gc, tt = np.array(got_b), np.array(got_c), np.array(tru)
            resumed = np.nanmedian(resumes) if np.isfinite(resumes).any() else np.nan  # reset: never
            rb = corr_pooled(gb, tt) if len(gb) > 10 else np.nan
            rc = corr_pooled(gc, tt) if len(gc) > 10 else np.nan
            rbc = corr_pooled(gb, gc) if len(gb) > 10 else np.nan
            print(
                f"{dur:>6g}s {mode:>7} {resumed:>9.2f} {len(gb) / n_slots:>8.0%} {rb:>10.3f} "
                f"{rc:>8.3f} {rb - rc:>+7.3f} {rbc:>7.3f} {np.mean(quals) if quals else np.nan:>8.2f}",
                flush=True,
            )
    print(f"({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
