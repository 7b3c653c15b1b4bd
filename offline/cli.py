"""``beira-train``: train BEIRA on a recording, or re-evaluate a bundle."""

from __future__ import annotations

import argparse

from beira_rt.cli._common import add_common_args, not_implemented, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beira-train",
        description=(
            "Train BEIRA on a simultaneous EEG-fMRI recording (CWL layout: EEGLAB .set + NIfTI + "
            "atlas) with a chronological train/validation/test split, and write a model bundle, "
            "metrics and figures."
        ),
    )
    parser.add_argument("--data", metavar="DIR", help="folder holding the subject folders")
    parser.add_argument("--subject", metavar="S", help="subject id, e.g. trio1")
    parser.add_argument("--out", metavar="DIR", help="output folder for the bundle and the report")
    add_common_args(parser)
    return parser


def _main(args: argparse.Namespace) -> int:
    return not_implemented("beira-train", "the offline trainer issue")


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
