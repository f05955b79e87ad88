"""Command line: ``python -m edge_inference`` (see ``--help`` and ``component_src/README.md``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, List, NoReturn, Optional

from edge_inference.config import (
    RUNTIMES,
    STATE_DIR,
    THING_NAME_ENV,
    Config,
    ConfigError,
    ConfigStore,
    merge_config,
    resolve_path,
)
from edge_inference.model import LoadedModel, ModelError, load_model
from edge_inference.outbox import Publisher, StdoutPublisher
from edge_inference.service import InferenceService
from edge_inference.spool import Spool, SpoolLocked

LOG = logging.getLogger("edge_inference")

DESCRIPTION = """\
Classify the images (.jpg, .jpeg, .png) and float32 tensors (.npy) that appear in an input
folder with a DLR or ONNX Runtime model. Each input is processed exactly once, also across
crashes, and then moved to the processed folder (or, with NAME.error.json saying why, to the
failed folder). Results are printed as JSON lines on stdout, or with --ipc published to AWS IoT
Core through Greengrass IPC, where the component configuration (InputDir, Runtime, TopK, ...)
overrides these options and deployments change it at run time.
"""

EPILOG = """\
folder defaults: --processed-dir, --failed-dir and --state-dir default to the folders
"processed", "failed" and "state" beside the input folder (for the default --input-dir "input":
./processed, ./failed, ./state). The state folder holds in-progress/ and outbox/; all four must
be on one filesystem. Relative paths are relative to the working directory.

--once processes every file in the input folder, then exits once the results are out. Files
still being written are waited for until they have settled (--settle-seconds), so a file
written just before the call is processed too. With --once the input folder must exist;
without it, the input, processed, failed and state folders are created as needed (Greengrass
creates the component's working folder, not the folders in it).

exit status: 0 when stopped (SIGTERM/SIGINT) or done (--once); 2 for bad arguments or a model
folder without a model for the runtime; 1 when the model cannot be loaded; 3 when another
instance is using the same state folder.
"""


class UsageError(Exception):
    """Bad command line or starting configuration: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edge_inference",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--model-dir", required=True, type=Path, help="model package folder (metadata.json)")
    add("--input-dir", type=Path, default=Path("input"), help="watched folder (default: input)")
    add("--processed-dir", type=Path, help="where processed inputs go (default: see below)")
    add("--failed-dir", type=Path, help="failed inputs and NAME.error.json (default: see below)")
    add("--state-dir", type=Path, help="in-progress and outbox folders (default: see below)")
    add("--runtime", choices=RUNTIMES, default="dlr", help="dlr (default) or onnx")
    add("--top-k", type=int, default=5, metavar="N", help="classes per result (default: 5)")
    add(
        "--settle-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="a file is taken once unchanged for S seconds (default: 1.0)",
    )
    add(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between scans of the input folder (default: 1.0)",
    )
    add(
        "--max-image-pixels",
        type=int,
        default=50_000_000,
        metavar="N",
        help="larger images fail (decompression-bomb guard; default: 50000000)",
    )
    add(
        "--max-outbox-files",
        type=int,
        default=10_000,
        metavar="N",
        help="unpublished results kept before new inputs wait (default: 10000)",
    )
    add(
        "--publish-topic",
        default="edge-ai/{iot:thingName}/predictions",
        help="IoT Core topic with --ipc (default: edge-ai/{iot:thingName}/predictions)",
    )
    for flag, default, what in (
        ("--processed-retention-days", 7.0, "days processed inputs are kept"),
        ("--failed-retention-days", 30.0, "days failed inputs are kept"),
        ("--processed-max-mb", 1000.0, "MB the processed folder may hold"),
        ("--failed-max-mb", 1000.0, "MB the failed folder may hold"),
    ):
        add(flag, type=float, default=default, metavar="X",
            help=f"{what}, oldest removed first; 0: no limit (default: {default:g})")  # fmt: skip
    add("--once", action="store_true", help="process what is in the input folder, then exit")
    add("--ipc", action="store_true", help="Greengrass mode: configuration and results over IPC")
    add("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


# Configuration key -> the flag that sets it, so an error names what the user typed.
FLAGS = {
    "ModelDir": "--model-dir",
    "InputDir": "--input-dir",
    "ProcessedDir": "--processed-dir",
    "FailedDir": "--failed-dir",
    STATE_DIR: "--state-dir",
    "Runtime": "--runtime",
    "TopK": "--top-k",
    "SettleSeconds": "--settle-seconds",
    "PollIntervalSeconds": "--poll-interval",
    "MaxImagePixels": "--max-image-pixels",
    "MaxOutboxFiles": "--max-outbox-files",
    "PublishTopic": "--publish-topic",
    "ProcessedRetentionDays": "--processed-retention-days",
    "FailedRetentionDays": "--failed-retention-days",
    "ProcessedMaxMB": "--processed-max-mb",
    "FailedMaxMB": "--failed-max-mb",
}


def _path(flag: str, cwd: Path, value: Path) -> Path:
    try:
        return resolve_path(cwd, str(value))
    except ValueError as err:
        raise UsageError(f"{flag} {err}") from err


def starting_config(args: argparse.Namespace, cwd: Path) -> Config:
    """The configuration the command line describes (IPC configuration is merged onto it)."""
    input_dir = _path("--input-dir", cwd, args.input_dir)
    processed = args.processed_dir or input_dir.parent / "processed"
    failed = args.failed_dir or input_dir.parent / "failed"
    return Config(
        model_dir=_path("--model-dir", cwd, args.model_dir),
        input_dir=input_dir,
        processed_dir=_path("--processed-dir", cwd, processed),
        failed_dir=_path("--failed-dir", cwd, failed),
        runtime=args.runtime,
        top_k=args.top_k,
        poll_interval=args.poll_interval,
        settle_seconds=args.settle_seconds,
        max_image_pixels=args.max_image_pixels,
        publish_topic=args.publish_topic,
        max_outbox_files=args.max_outbox_files,
        processed_retention_days=args.processed_retention_days,
        failed_retention_days=args.failed_retention_days,
        processed_max_mb=args.processed_max_mb,
        failed_max_mb=args.failed_max_mb,
    )


def _check_ranges(config: Config) -> None:
    """The CLI gives typed values; hold them to the same limits as configuration keys."""
    merge_config(
        config,
        {
            "TopK": config.top_k,
            "PollIntervalSeconds": config.poll_interval,
            "SettleSeconds": config.settle_seconds,
            "MaxImagePixels": config.max_image_pixels,
            "MaxOutboxFiles": config.max_outbox_files,
            "PublishTopic": config.publish_topic,
            "ProcessedRetentionDays": config.processed_retention_days,
            "FailedRetentionDays": config.failed_retention_days,
            "ProcessedMaxMB": config.processed_max_mb,
            "FailedMaxMB": config.failed_max_mb,
        },
        cwd=Path("/"),
        names=FLAGS,
    )


def build_service(
    args: argparse.Namespace,
    stop: threading.Event,
    *,
    ipc_client: Optional[Any] = None,
    cwd: Optional[Path] = None,
) -> InferenceService:
    """Wire the service from the arguments; raises :class:`UsageError` or ``ModelError``.

    With ``--ipc``, ``ipc_client`` (a ``GreengrassCoreIPCClientV2`` or a fake) is used, or one
    is connected.
    """
    cwd = cwd or Path.cwd()
    start = starting_config(args, cwd)
    state_dir = _path("--state-dir", cwd, args.state_dir or start.input_dir.parent / "state")
    thing_name = os.environ.get(THING_NAME_ENV)
    store = ConfigStore(
        start, cwd=cwd, state_dir=state_dir, thing_name=thing_name, check_topic=args.ipc
    )
    publisher: Publisher = StdoutPublisher()
    config = start
    try:
        _check_ranges(start)
        if args.ipc:
            from edge_inference import ipc

            try:
                client = ipc_client if ipc_client is not None else ipc.connect()
            except ipc.IpcUnavailable as err:
                raise UsageError(str(err)) from err
            source = ipc.IpcConfiguration(client, store)
            # An invalid configuration at start-up stops here with the reason: running on the
            # command line's defaults would watch the wrong folder without anyone noticing.
            config = store.parse(source.read())
            source.subscribe()
            publisher = ipc.IotCorePublisher(client, config, thing_name)
        config = store.validate(config, None if args.ipc else FLAGS)
    except ConfigError as err:
        raise UsageError(str(err)) from err
    if args.once and not config.input_dir.is_dir():
        # --once is a batch over what is there: a missing folder is a typo, not an empty batch.
        # Running for good, the component creates it: Greengrass creates the component's work
        # folder (its working directory, nucleus util/NucleusPaths.java workPath(serviceName))
        # but nothing in it, and the default InputDir "input" is relative to it.
        flag = "InputDir" if args.ipc else "--input-dir"
        raise UsageError(
            f"{flag} {config.input_dir}: no such folder (--once processes the files already in it)"
        )
    spool = Spool(state_dir)
    spool.lock()  # before the (slow) model load: a second instance stops at once

    def load(model_dir: Path, runtime: str) -> LoadedModel:
        with terminate_at_once():
            return load_model(model_dir, runtime)

    try:
        model = load(config.model_dir, config.runtime)
    except BaseException:
        spool.close()
        raise
    return InferenceService(
        config=config,
        model=model,
        spool=spool,
        publisher=publisher,
        stop=stop,
        store=store if args.ipc else None,
        model_loader=load,
    )


@contextlib.contextmanager
def terminate_at_once() -> Iterator[None]:
    """SIGTERM/SIGINT end the process at once while the body runs (a model load).

    Greengrass stops a component with SIGTERM and kills it 5 s later (nucleus
    ``util/platforms/unix/UnixExec.java`` ``close()``: ``killProcessAndChildren(p, false)``
    sends SIGTERM, then waits ``gracefulShutdownTimeout``, ``Duration.ofSeconds(5)`` in
    ``util/Exec.java``, before ``killProcessAndChildren(p, true)``, SIGKILL). A runtime parsing
    a large model holds the GIL in C for seconds, so a Python handler would run only after
    the load. Nothing durable is in the middle of a change while a model loads (results are
    recorded, the state folder is consistent), so dying there is as safe as being killed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_DFL) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM (Greengrass stopping the component) and SIGINT ask the loop to stop."""

    def handler(signum: int, _frame: Any) -> None:
        LOG.info("received %s; stopping after the current file", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        service = build_service(args, stop)
    except UsageError as err:
        sys.stderr.write(f"edge_inference: error: {err}\n")
        return 2
    except ModelError as err:
        sys.stderr.write(f"edge_inference: error: {err}\n")
        return 1
    except SpoolLocked as err:
        sys.stderr.write(f"edge_inference: error: {err}\n")
        return 3
    service.run(once=args.once)
    return 0
