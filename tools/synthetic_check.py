"""Check a synthetic CWL subject: ceiling, a linear baseline and an oracle, on the test block.

Prints, per ROI, on the last ``--test-seconds`` of the recording (volumes as
targets, the loader's ROI series as the observed BOLD):

- ``ceiling``: the subject's test-block ceiling (ground truth JSON);
- ``linear``: ridge regression on log band power per channel and band (5 bands
  x 30 channels), HRF-convolved (+ temporal derivative), fitted on every volume
  before the test block (more training data than BEIRA gets);
- ``linear FIR``: the same features averaged in 2 s bins at lags 0-12 s (no HRF
  assumption);
- ``oracle``: the true drive terms computed from the EEG with the true lead
  field (pseudo-inverse), the true bands and the true formulas, HRF-convolved,
  then a 2-feature regression. It shows how much of the ceiling the EEG carries.

Usage::

    python tools/synthetic_check.py --data DIR --subject trio1
    python tools/synthetic_check.py --generate --data /tmp/syn --duration 300 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import signal
from sklearn.linear_model import RidgeCV

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from beira_rt.config import DataConfig, PreprocessingConfig  # noqa: E402
from beira_rt.preprocessing import preprocess_recording  # noqa: E402
from offline.loader import load_cwl_subject  # noqa: E402
from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE, make_synthetic_subject  # noqa: E402
from offline.synthetic.ceiling import pearson_rows  # noqa: E402
from offline.synthetic.hidden import canonical_hrf, drive_terms  # noqa: E402

BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 40.0))
ALPHAS = np.logspace(-2, 5, 15)


def log_band_power(z: np.ndarray, sfreq: float, bands=BANDS, smooth: float = 1.0) -> np.ndarray:
    """Causal log band power, array (n_bands * n_chans, n)."""
    kernel = np.full(int(smooth * sfreq), 1.0 / int(smooth * sfreq))
    out = []
    for lo, hi in bands:
        sos = signal.butter(4, (lo, hi), btype="bandpass", fs=sfreq, output="sos")
        power = signal.lfilter(kernel, [1.0], signal.sosfilt(sos, z, axis=1) ** 2, axis=1)
        out.append(np.log(power + 1e-12 * power.mean()))
    return np.concatenate(out)


def hrf_design(features: np.ndarray, sfreq: float) -> np.ndarray:
    """HRF- and derivative-convolved features, array (2 * n_feat, n)."""
    h = canonical_hrf(sfreq)
    dh = np.gradient(h)
    n = features.shape[1]
    f = features - features.mean(axis=1, keepdims=True)
    return np.concatenate([signal.fftconvolve(f, k[None], axes=1)[:, :n] for k in (h, dh)])


def fir_design(features: np.ndarray, sfreq: float, n_lags: int = 6, bin_s: float = 2.0) -> np.ndarray:
    """Features averaged in ``bin_s`` bins at lags 0..n_lags-1 bins, array (n_lags * n_feat, n)."""
    width = int(bin_s * sfreq)
    kernel = np.full(width, 1.0 / width)
    avg = signal.lfilter(kernel, [1.0], features - features.mean(axis=1, keepdims=True), axis=1)
    rows = []
    for lag in range(n_lags):
        shift = lag * width
        rows.append(
            np.concatenate([np.repeat(avg[:, :1], shift, axis=1), avg[:, : avg.shape[1] - shift]], axis=1)
        )
    return np.concatenate(rows)


def fit_predict(design: np.ndarray, idx: np.ndarray, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Ridge per ROI (alpha by efficient LOO on the training volumes); predictions at every volume."""
    x = design[:, idx].T
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0) + 1e-12
    x = (x - mu) / sd
    pred = np.empty_like(y)
    for r in range(y.shape[0]):
        model = RidgeCV(alphas=ALPHAS).fit(x[train], y[r, train])
        pred[r] = model.predict(x)
    return pred


def oracle_design(
    z: np.ndarray, sfreq: float, truth: dict, sources: list[dict], meta_terms: dict | None = None
) -> dict[str, np.ndarray]:
    """True drive terms from the EEG (true lead field, bands, formulas), HRF-convolved, per ROI (2, n)."""
    lf = truth["lead_field"]
    lf = lf - lf.mean(axis=0, keepdims=True)  # the preprocessing applies a common average
    unmix = np.linalg.pinv(lf)
    src = unmix @ z
    smooth = int(1.0 * sfreq)
    logenv = []
    for k, s in enumerate(sources):
        sos = signal.butter(
            4,
            (s["freq"] - s["bandwidth"], s["freq"] + s["bandwidth"]),
            btype="bandpass",
            fs=sfreq,
            output="sos",
        )
        env = np.sqrt(signal.lfilter(np.full(smooth, 1.0 / smooth), [1.0], signal.sosfilt(sos, src[k]) ** 2))
        logenv.append(np.log(env + 1e-12 * env.mean()))
    logenv = np.array(logenv)
    amp = np.exp(logenv - logenv.mean(axis=1, keepdims=True))
    h = canonical_hrf(sfreq)
    terms = {roi: tuple(t) for roi, t in meta_terms.items()} if meta_terms else None
    out = {}
    for roi in truth["rois"]:
        lin, nl = drive_terms(str(roi), amp, terms)
        out[str(roi)] = signal.fftconvolve(np.stack([lin, nl]), h[None], axes=1)[:, : z.shape[1]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="synthetic data folder")
    parser.add_argument("--subject", default="trio1")
    parser.add_argument("--generate", action="store_true", help="generate the subject first")
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    data = Path(args.data)
    if args.generate:
        t0 = time.perf_counter()
        make_synthetic_subject(data, args.subject, duration=args.duration, seed=args.seed)
        print(
            f"generated {args.subject} ({args.duration:g} s, seed {args.seed}) in {time.perf_counter() - t0:.1f} s"
        )
    meta = json.loads((data / "ground_truth" / f"{args.subject}.json").read_text())
    truth = dict(np.load(data / "ground_truth" / f"{args.subject}.npz"))
    rec = load_cwl_subject(
        data,
        args.subject,
        DataConfig(),
        atlas=data / "atlas" / ATLAS_FILE,
        atlas_labels=data / "atlas" / ATLAS_LABELS_FILE,
    )
    pcfg = PreprocessingConfig()
    z = preprocess_recording(rec.eeg, rec.sfreq, pcfg)
    z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    sf = pcfg.sfreq
    idx = np.clip(np.round(rec.volume_onsets * sf).astype(int), 0, z.shape[1] - 1)
    y = rec.roi_series
    test = rec.volume_onsets >= rec.duration - args.test_seconds
    train = ~test
    lbp = log_band_power(z, sf)
    results = {
        "linear": fit_predict(hrf_design(lbp, sf), idx, y, train),
        "linear FIR": fit_predict(fir_design(lbp, sf), idx, y, train),
    }
    oracle = oracle_design(z, sf, truth, meta["sources"], meta.get("roi_terms"))
    results["oracle"] = np.stack(
        [fit_predict(oracle[roi], idx, y[r : r + 1], train)[0] for r, roi in enumerate(rec.roi_names)]
    )
    r_test = {k: pearson_rows(v[:, test], y[:, test]) for k, v in results.items()}
    ceiling = np.array([meta["ceiling_test"][roi] for roi in rec.roi_names])
    print(
        f"{args.subject}: {rec.duration:.0f} s, {y.shape[1]} volumes, test = last {args.test_seconds:g} s "
        f"({test.sum()} volumes); r on the test block"
    )
    print(f"{'ROI':17s} {'ceiling':>8s} {'ceil(all)':>9s} " + " ".join(f"{k:>11s}" for k in results))
    for r, roi in enumerate(rec.roi_names):
        cells = " ".join(f"{r_test[k][r]:11.3f}" for k in results)
        print(f"{roi:17s} {ceiling[r]:8.3f} {meta['ceiling'][roi]:9.3f} {cells}")
    means = " ".join(f"{np.mean(r_test[k]):11.3f}" for k in results)
    print(f"{'mean':17s} {ceiling.mean():8.3f} {np.mean(list(meta['ceiling'].values())):9.3f} {means}")
    ratios = " ".join(f"{np.mean(r_test[k]) / ceiling.mean():11.2f}" for k in results)
    print(f"{'mean / ceiling':17s} {'':8s} {'':9s} {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
