"""``beira-rt session | display | record | report``: neurofeedback sessions from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from beira_rt.cli._common import add_common_args

__all__ = ["add_session_parsers", "main_session_command"]

COMMANDS = ("session", "display", "record", "report")


def add_session_parsers(sub) -> None:
    """Add the four session commands to ``beira-rt``'s subparsers."""
    run = sub.add_parser("session", help="run a neurofeedback protocol on the engine's predictions")
    run.add_argument("protocol", metavar="PROTOCOL", help="protocol YAML (see configs/protocols/)")
    run.add_argument("--predictions", default="BEIRA", metavar="NAME", help="the engine's prediction stream")
    run.add_argument("--feedback-name", default="BEIRA-feedback", metavar="NAME", help="feedback stream name")
    run.add_argument("--session-name", default="BEIRA-session", metavar="NAME", help="marker stream name")
    run.add_argument("--state", metavar="JSON", help="session state file (kept up to date; for --resume)")
    run.add_argument("--resume", action="store_true", help="continue the session of --state after a crash")
    run.add_argument("--check", action="store_true", help="only validate the protocol and print its blocks")
    run.add_argument(
        "--wait-recorder", type=float, default=0.0, metavar="S",
        help="with the streams open, wait up to S s for the recorder before the session starts",
    )  # fmt: skip
    add_common_args(run)

    disp = sub.add_parser("display", help="the participant display (PyQt6, its own window)")
    disp.add_argument("--feedback", default="BEIRA-feedback", metavar="NAME", help="feedback stream name")
    disp.add_argument("--session", default="BEIRA-session", metavar="NAME", help="marker stream name")
    disp.add_argument("--screen", type=int, default=0, metavar="N", help="screen to show it on")
    disp.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    disp.add_argument("--duration", type=float, metavar="S", help="close after S seconds")
    disp.add_argument("--screenshot", metavar="PNG", help="save the window as PNG at the end")
    add_common_args(disp)

    rec = sub.add_parser("record", help="record streams to XDF with LabRecorder (a process of its own)")
    rec.add_argument("xdf", metavar="SESSION.xdf", help="the file to write (a SESSION.json goes beside it)")
    rec.add_argument("--stream", action="append", required=True, metavar="NAME", help="a stream (repeat)")
    rec.add_argument("--protocol", metavar="YAML", help="the protocol, kept in the sidecar")
    rec.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    add_common_args(rec)

    rep = sub.add_parser("report", help="the report of a recorded session (PNG + JSON)")
    rep.add_argument("xdf", metavar="SESSION.xdf")
    rep.add_argument("--out", metavar="DIR", help="where to write (default: beside the file)")
    add_common_args(rep)


def main_session_command(args: argparse.Namespace) -> int:
    if args.command == "session":
        return _session(args)
    if args.command == "display":
        from beira_rt.session.display import main_display

        return main_display(args)
    if args.command == "record":
        from beira_rt.session.recorder import record_session

        sidecar = record_session(args.xdf, args.stream, duration=args.duration, protocol=args.protocol)
        print(f"recorded {len(sidecar['streams'])} streams to {args.xdf}")
        return 0
    from beira_rt.session.report import write_report

    summary = write_report(args.xdf, args.out)
    print(json.dumps(summary["summary"], indent=1))
    return 0


def _session(args: argparse.Namespace) -> int:
    import signal
    import threading

    from beira_rt.session.protocol import load_protocol

    protocol = load_protocol(args.protocol)
    if args.check:
        print(f"protocol {protocol.info.name!r}: target {protocol.weights}, {protocol.duration:g} s")
        for b in protocol.blocks:
            print(
                f"  {b.index:3d} {b.start:8.1f} s  {b.kind:9s} {b.duration:6.1f} s  {b.name}  {b.instruction}"
            )
        return 0
    from beira_rt.session.runner import SessionRunner

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner = SessionRunner(
        protocol,
        args.predictions,
        feedback_name=args.feedback_name,
        session_name=args.session_name,
        state_path=args.state,
        resume=args.resume,
    )
    summary = runner.run(stop=stop, wait_consumer=args.wait_recorder)
    runner.close()
    print(
        "session: "
        + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
    )
    sys.stdout.flush()
    return 0
