"""Command line: ``python -m edge_follow [options]``; see ``--help`` and README "Follow
predictions". Exit codes: 0 done (count reached, ``--timeout`` without ``--count``, Ctrl-C),
1 cannot follow (credentials, endpoint, broker) or ``--count`` not reached in ``--timeout``,
2 bad arguments."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Optional, Sequence, TextIO

from device_contract import topics
from device_sim import run_record
from edge_follow import assembly, connections
from edge_follow.render import render, topic_filter
from edge_follow.sources import FollowError, LocalSource, MqttSource, Source

PROG = "python -m edge_follow"
DEFAULT_PREFIX = topics.DEFAULT_TOPIC_PREFIX
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LOCAL_ROOT = Path("build/device-sim")  # python -m device_sim's default --root
DEFAULT_ASSEMBLY = Path("cdk.out")  # cdk synth's default output, device_sim's --assembly
DEFAULT_STAGE = "dev"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:1883`` for IPv6)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {port_text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return host, port


def _prefix(text: str) -> str:
    if not text or text.startswith("/") or text.endswith("/") or "//" in text:
        raise argparse.ArgumentTypeError(
            f"expected a topic prefix like edge-ai (no leading, trailing or double /), got {text!r}"
        )
    if any(char in text for char in "+#\0"):
        raise argparse.ArgumentTypeError(f"must not contain MQTT wildcards + or #, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print the predictions edge devices publish to <prefix>/+/predictions: from "
        "AWS IoT Core with your AWS credentials (default), a local MQTT broker (--broker), or "
        "the simulated device (--local).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--local",
        metavar="ROOT",
        type=Path,
        nargs="?",
        const=DEFAULT_LOCAL_ROOT,
        help="follow the simulated device under ROOT (its ROOT/mqtt/published.jsonl; "
        f"ROOT defaults to device_sim's root, {DEFAULT_LOCAL_ROOT})",
    )
    where.add_argument(
        "--broker",
        metavar="HOST:PORT",
        type=parse_broker,
        help="a plain MQTT broker (no TLS, no credentials), e.g. a local mosquitto",
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or your profile's)")
    parser.add_argument(
        "--endpoint",
        metavar="HOST",
        help="AWS IoT Core data endpoint (default: looked up with iot:DescribeEndpoint)",
    )
    parser.add_argument(
        "--topic-prefix",
        type=_prefix,
        default=None,
        help="topic prefix of the devices' results (default: the stage's publish_topic_prefix, "
        "from the simulated device's run with --local, else from the cloud assembly; "
        f"{DEFAULT_PREFIX} when neither is there)",
    )
    parser.add_argument(
        "--assembly",
        type=Path,
        default=DEFAULT_ASSEMBLY,
        help=f"cloud assembly to read the stage's prefix from (default: {DEFAULT_ASSEMBLY})",
    )
    parser.add_argument(
        "--stage",
        default=DEFAULT_STAGE,
        help=f"stage whose prefix to follow (default: {DEFAULT_STAGE})",
    )
    parser.add_argument(
        "--count", type=_positive_int, help="stop after N messages (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        help="stop after S seconds; with --count, fail if fewer than N arrived",
    )
    parser.add_argument(
        "--json", action="store_true", help="print each message as one line of raw JSON"
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="with --local: replay what was already published, then follow",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        help=f"seconds to wait for the connection (default: {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    return parser


def local_root_problem(root: Path) -> Optional[str]:
    """Why ``root`` is not a simulated device's root; None when it is (or may become one: a
    folder that is still empty, which ``python -m device_sim --root`` is about to fill)."""
    if not root.is_dir():
        return "no such folder"
    if run_record.is_device_root(root) or not any(root.iterdir()):
        return None
    return (
        f"not a simulated device's root (no {run_record.ROOT_MARKER} in it); give the --root "
        f"that python -m device_sim ran with (default {DEFAULT_LOCAL_ROOT})"
    )


def topic_prefix(args: argparse.Namespace, record: Optional[run_record.RunRecord]) -> str:
    """The prefix to follow: the flag; else the simulated run's (--local); else the stage's
    in the cloud assembly; else the default."""
    if args.topic_prefix is not None:
        return str(args.topic_prefix)
    if record is not None and record.topic_prefix is not None:
        return record.topic_prefix
    prefix = assembly.stage_prefix(args.assembly, args.stage)
    if prefix is not None:
        return prefix
    # No assembly: the default, which the "following <filter> ..." line then shows.
    return DEFAULT_PREFIX


def make_source(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Source:
    aws_only = [name for name in ("region", "endpoint") if getattr(args, name)]
    if (args.local or args.broker) and aws_only:
        parser.error(
            f"--{aws_only[0]} is for AWS IoT Core; it does not apply with --local/--broker"
        )
    if args.from_start and not args.local:
        parser.error("--from-start applies to --local only")
    if args.local is not None:
        problem = local_root_problem(args.local)
        if problem:
            parser.error(f"--local {args.local}: {problem}")
        record = run_record.read_run_record(args.local)
        args.topic_prefix = topic_prefix(args, record)
        from_start = args.from_start
        if record is not None and record.finished and not from_start:
            # Nothing more will arrive until the next run: a follower that started at the end
            # would wait in silence, so show what the finished run published first.
            how = "ok" if record.ok else "failed"
            print(
                f"{PROG}: the simulated device's run has finished ({how}, {record.published} "
                "results published): showing them, then waiting for the next run",
                file=sys.stderr,
            )
            from_start = True
        return LocalSource(args.local, topic_filter(args.topic_prefix), from_start=from_start)
    args.topic_prefix = topic_prefix(args, None)
    wanted = topic_filter(args.topic_prefix)
    if args.broker is not None:
        host, port = args.broker
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return MqttSource(
            connections.plain(host, port, args.connect_timeout),
            wanted,
            f"broker {shown}",
            args.connect_timeout,
        )
    region = connections.resolve_region(args.region)
    credentials = connections.default_credentials(args.connect_timeout)
    endpoint = args.endpoint or connections.data_endpoint(region)
    return MqttSource(
        connections.signed_websockets(endpoint, region, credentials, args.connect_timeout),
        wanted,
        f"AWS IoT Core {endpoint} ({region})",
        args.connect_timeout,
    )


def follow(
    source: Source,
    prefix: str,
    *,
    as_json: bool,
    count: Optional[int],
    timeout: Optional[float],
    stop: threading.Event,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print messages until ``count``, ``timeout`` or ``stop``; the exit code."""
    deadline = time.monotonic() + timeout if timeout else None
    seen = 0
    source.start()
    try:
        while not stop.is_set():
            wait = 0.2
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    break
            message = source.get(wait)
            if message is None:
                continue
            line = render(
                prefix, message.topic, message.payload, as_json=as_json, received=message.received
            )
            print(line.text, file=err if line.malformed and as_json else out, flush=True)
            seen += 1
            if count is not None and seen >= count:
                return 0
    finally:
        source.close()
    if not stop.is_set() and count is not None:
        print(
            f"{PROG}: timed out after {timeout:g} s: {seen} of {count} messages arrived",
            file=err,
        )
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        source = make_source(args, parser)
        return follow(
            source,
            args.topic_prefix,
            as_json=args.json,
            count=args.count,
            timeout=args.timeout,
            stop=stop,
            out=sys.stdout,
            err=sys.stderr,
        )
    except FollowError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
