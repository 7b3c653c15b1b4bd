"""``beira-replay``: stream a recorded EEG file as real-time LSL streams."""

from __future__ import annotations

import argparse

from beira_rt.cli._common import add_common_args, not_implemented, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beira-replay",
        description=(
            "Replay a recording (CWL .set, or any file MNE reads) as real-time LSL streams: the EEG, "
            "its annotations as markers, and optionally the ROI BOLD truth, so the engine and the "
            "dashboard run without an amplifier."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="recording to replay")
    add_common_args(parser)
    return parser


def _main(args: argparse.Namespace) -> int:
    return not_implemented("beira-replay", "the replay tool issue")


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
