"""``beira-rt``: the live engine and the dashboard."""

from __future__ import annotations

import argparse
import sys

from beira_rt._logging import logger
from beira_rt.cli._common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    add_common_args,
    config_from_args,
    run_main,
)
from beira_rt.cli.options import add_options, device, new_parser, opt, seconds, stream, switch

#: ``beira-rt run``'s options besides --config and -v / -q.
_RUN_OPTIONS = (
    opt("--model", required=True, metavar="BUNDLE", help="trained model bundle (model.beira)"),
    stream("--source", "name of the EEG stream"),
    opt("--source-type", metavar="TYPE", help="type of the EEG stream (e.g. EEG)"),
    opt("--source-id", metavar="ID", help="source id of the EEG stream"),
    seconds("--duration", "stop after S seconds (default: run until stopped)"),
    device("inference device (overrides live.device)"),
    seconds("--lookahead", "look-ahead in seconds (default: the bundle's)"),
    seconds("--hop", "seconds between updates (overrides live.hop)"),
    switch(
        "--dashboard",
        "also open the dashboard on this engine's streams (a separate, lower-priority process "
        "that never blocks the engine; closed when the engine stops)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "beira-rt",
        "Live BEIRA: read scalp EEG from an LSL stream, preprocess it causally, run a trained "
        "BEIRA bundle and publish subcortical sBOLD predictions as an LSL stream; or show it "
        "all in a dashboard.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the live engine on an LSL EEG stream")
    add_options(run, _RUN_OPTIONS)
    add_common_args(run)
    dash = sub.add_parser("dashboard", help="open the live dashboard on the LSL streams")
    from beira_rt.dashboard.app import add_dashboard_args  # no Qt import

    add_dashboard_args(dash)
    add_common_args(dash)
    from beira_rt.cli.session import add_session_parsers

    add_session_parsers(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    """``beira-rt run``: the live engine until --duration, SIGINT or SIGTERM; final statistics at exit."""
    import time

    cfg = config_from_args(
        args, {"live.device": args.device, "live.lookahead": args.lookahead, "live.hop": args.hop}
    )
    if not (args.source or args.source_type or args.source_id):
        print(
            "error: name the EEG stream with --source NAME, --source-type TYPE or --source-id ID.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print(
            f"error: --duration must be a positive number of seconds, got {args.duration:g}.", file=sys.stderr
        )
        return EXIT_USAGE
    from beira_rt.bundle import BundleError, load_bundle
    from beira_rt.engine import (
        ChannelMismatchError,
        Engine,
        EngineError,
        SourceNotFoundError,
        StreamQuery,
        UnsupportedStreamError,
    )

    try:
        bundle = load_bundle(args.model)
        engine = Engine(bundle, cfg.live, StreamQuery(args.source, args.source_type, args.source_id))
    except (BundleError, EngineError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    from beira_rt._signals import stop_on_signals

    with stop_on_signals() as stop:
        try:
            engine.start()
        except (SourceNotFoundError, ChannelMismatchError, UnsupportedStreamError, EngineError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_FAILURE
        print(
            f"beira-rt: {engine.spec.describe()} -> {cfg.live.outlet_name!r} (sBOLD, {len(bundle.rois)} ROIs) and "
            f"'{cfg.live.outlet_name}-status'; device {engine.device.type}, look-ahead {engine.lookahead:g} s, "
            f"hop {cfg.live.hop:g} s. Ctrl-C stops.",
            flush=True,
        )
        dashboard = _start_dashboard(args, cfg, engine) if args.dashboard else None
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.wait(0.1):
            if engine.wait(0) or (deadline is not None and time.monotonic() >= deadline):
                break
        if stop.signal_name:
            logger.info("%s received; stopping", stop.signal_name)
        if dashboard is not None:
            _stop_dashboard(dashboard)
        engine.stop()
        print("final statistics:\n" + engine.summary(), flush=True)
        if engine.error is not None:
            print(f"error: the engine stopped on an internal error: {engine.error!r}", file=sys.stderr)
            return EXIT_FAILURE
        return 0


def _start_dashboard(args: argparse.Namespace, cfg, engine):
    """``run --dashboard``: the dashboard as a child process on this engine's streams.

    A separate process (with ``dashboard.nice``) so that drawing never takes the
    engine's interpreter lock or CPU time first; it reads the streams with its own inlets.
    """
    import subprocess

    cmd = [
        sys.executable,
        "-m",
        "beira_rt.cli.rt",
        "dashboard",
        "--predictions",
        cfg.live.outlet_name,
        "--eeg",
        engine.spec.name,
    ]
    if args.config:
        cmd += ["--config", args.config]
    logger.info("starting the dashboard: %s", " ".join(cmd))
    return subprocess.Popen(cmd)


def _stop_dashboard(proc) -> None:
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _main(args: argparse.Namespace) -> int:
    if args.command == "run":
        return _run(args)
    from beira_rt.cli.session import COMMANDS, main_session_command

    if args.command in COMMANDS:
        return main_session_command(args)
    from beira_rt.dashboard.app import main_dashboard

    return main_dashboard(args, config_from_args(args))


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
