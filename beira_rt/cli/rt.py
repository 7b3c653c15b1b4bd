"""``beira-rt``: the live engine and the dashboard."""

from __future__ import annotations

import argparse

from beira_rt.cli._common import add_common_args, config_from_args, not_implemented, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beira-rt",
        description=(
            "Live BEIRA: read scalp EEG from an LSL stream, preprocess it causally, run a trained "
            "BEIRA bundle and publish subcortical sBOLD predictions as an LSL stream; or show it "
            "all in a dashboard."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the live engine on an LSL EEG stream")
    run.add_argument("--model", required=True, metavar="BUNDLE", help="trained model bundle (model.beira)")
    run.add_argument("--source", metavar="NAME", help="name of the EEG stream")
    run.add_argument("--source-type", metavar="TYPE", help="type of the EEG stream (e.g. EEG)")
    run.add_argument("--source-id", metavar="ID", help="source id of the EEG stream")
    run.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run until stopped)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), help="inference device (overrides live.device)")
    run.add_argument("--lookahead", type=float, metavar="S", help="look-ahead in seconds (default: the bundle's)")
    run.add_argument("--hop", type=float, metavar="S", help="seconds between updates (overrides live.hop)")
    add_common_args(run)
    dash = sub.add_parser("dashboard", help="open the live dashboard on the LSL streams")
    add_common_args(dash)
    return parser


def _main(args: argparse.Namespace) -> int:
    if args.command == "run":
        config_from_args(args, {"live.device": args.device, "live.lookahead": args.lookahead, "live.hop": args.hop})
        return not_implemented("beira-rt run", "the live engine issue")
    return not_implemented("beira-rt dashboard", "the dashboard issue")


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
