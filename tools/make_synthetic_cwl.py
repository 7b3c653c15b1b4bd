"""Write synthetic CWL subjects with known ground truth.

The real CWL recordings cannot be downloaded everywhere; these files have the
exact CWL layout and formats (EEGLAB .set at 1000 Hz with 30 EEG channels plus
EOG, ECG and CW1..CW6, ``mri`` / ``R`` / ``EO`` / ``EC`` annotations; a 4D NIfTI
on the 61 x 72 x 61 MNI 3 mm grid with 3 more volumes than markers; SPM motion
parameters), a Harvard-Oxford-style subcortical atlas in ``OUT/atlas/`` and the
ground truth in ``OUT/ground_truth/`` (see ``offline.synthetic``).

Example::

    python tools/make_synthetic_cwl.py --out /tmp/cwl --subjects trio1 trio2 --duration 300 --seed 0
    beira-train --data /tmp/cwl --subject trio1 \\
        --atlas /tmp/cwl/atlas/synthetic_HarvardOxford-sub-maxprob_3mm.nii \\
        --atlas-labels /tmp/cwl/atlas/synthetic_HarvardOxford-sub_labels.tsv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from beira_rt._logging import set_log_level  # noqa: E402
from offline.synthetic import SyntheticSpec, make_synthetic_subject  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_synthetic_cwl",
        description="Write synthetic CWL subjects (EEG + fMRI + motion + atlas) with known ground truth.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="data folder to write (created)")
    parser.add_argument("--subjects", nargs="+", default=["trio1"], metavar="S", help="subject ids")
    parser.add_argument("--duration", type=float, default=300.0, help="EEG length per subject in s (>= 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (with the subject id)")
    parser.add_argument(
        "--linear-share",
        type=float,
        default=SyntheticSpec.linear_share,
        help="share of the noiseless BOLD variance linear in the source envelopes (0-1; the rest is "
        "a U/V-shaped function of the same envelope); default %(default)s",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_log_level(args.verbose)
    if not 0.0 <= args.linear_share <= 1.0:
        print(f"error: --linear-share {args.linear_share} must lie between 0 and 1.", file=sys.stderr)
        return 2
    spec = SyntheticSpec(linear_share=args.linear_share)
    if args.duration < 30:
        print(f"error: --duration {args.duration} is too short; use at least 30 s.", file=sys.stderr)
        return 2
    for subject in args.subjects:
        t0 = time.perf_counter()
        sub = make_synthetic_subject(args.out, subject, duration=args.duration, seed=args.seed, spec=spec)
        elapsed = time.perf_counter() - t0
        ceil = list(sub.ceiling.values())
        ceil_test = list(sub.ceiling_test.values())
        print(
            f"{subject}: {args.duration:g} s written in {elapsed:.1f} s -> {sub.paths.eeg.parent.parent.parent}"
        )
        print(
            f"  ceiling r (all volumes): mean {sum(ceil) / len(ceil):.3f}, "
            f"min {min(ceil):.3f}, max {max(ceil):.3f}"
        )
        print(
            f"  ceiling r (last 60 s):   mean {sum(ceil_test) / len(ceil_test):.3f}, "
            f"min {min(ceil_test):.3f}, max {max(ceil_test):.3f}"
        )
        print(f"  ground truth: {sub.truth_json}")
    print(f"atlas: --atlas {sub.atlas} --atlas-labels {sub.atlas_labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
