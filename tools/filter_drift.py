"""How far training moved the front end's band-pass filters from their filter-bank start.

For bundles trained with ``model.filter_init: filterbank``: each band-pass filter's cosine with
its initial taps (``BEIRA.init_filterbank``) and the shift of its peak frequency. A filter that
did not learn keeps a cosine near 1 and its peak where the bank put it, and then the frequency
the interpretation reports for its branch is the bank's.

    .venv/bin/python tools/filter_drift.py beira_rt/data/demo.beira
    .venv/bin/python tools/filter_drift.py runs/matrix/*/model.beira
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from beira_rt.bundle import load_bundle  # noqa: E402

NFFT = 1024


def drift(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Per band-pass filter of the bundle: cosine with its start, |peak shift| in Hz."""
    bundle = load_bundle(path)
    if bundle.config.model.filter_start != "filterbank":
        raise ValueError(
            f"{path}: model.filter_init is {bundle.config.model.filter_init!r}, not 'filterbank'"
        )
    model = bundle.build_model()
    start = copy.deepcopy(model)
    start.init_filterbank()
    taps = model.interpretable.band_pass.weight.detach().double().flatten(1).numpy()
    taps0 = start.interpretable.band_pass.weight.detach().double().flatten(1).numpy()
    cosine = (taps * taps0).sum(1) / (np.linalg.norm(taps, axis=1) * np.linalg.norm(taps0, axis=1))
    freqs = np.fft.rfftfreq(NFFT, 1.0 / model.sfreq)

    def peak(w: np.ndarray) -> np.ndarray:
        return freqs[np.abs(np.fft.rfft(w, NFFT)).argmax(axis=1)]

    return cosine, np.abs(peak(taps) - peak(taps0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="+", help="model bundles (.beira)")
    a = p.parse_args(argv)
    cos, shift = (np.concatenate(x) for x in zip(*(drift(b) for b in a.bundles), strict=True))
    print(
        f"{len(a.bundles)} bundle(s), {cos.size} band-pass filters: cosine with the start "
        f"min {cos.min():.3f}, 5th percentile {np.percentile(cos, 5):.3f}, median {np.median(cos):.3f}; "
        f"peak shift median {np.median(shift):.2f} Hz, 95th percentile {np.percentile(shift, 95):.2f} Hz, "
        f"max {shift.max():.2f} Hz; filters whose peak moved > 1 Hz: {100 * np.mean(shift > 1.0):.1f} %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
