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
from typing import Any, Dict, Iterator, List, NoReturn, Optional

from device_contract import settings
from edge_inference.capture import Capturer
from edge_inference.config import (
    STATE_DIR,
    THING_NAME_ENV,
    Config,
    ConfigError,
    ConfigStore,
    int_text,
    merge_config,
    resolve_path,
)
from edge_inference.metrics import MetricsReporter
from edge_inference.model import LoadedModel, ModelError, load_model
from edge_inference.outbox import Outbox, Publisher, StdoutPublisher
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


# The folders whose flag defaults to the setting's name beside the input folder, not in the
# working directory (the same for the default InputDir "input").
_BESIDE_INPUT = ("ProcessedDir", "FailedDir")


def _argument(row: settings.Setting) -> Dict[str, Any]:
    """``add_argument`` keywords for a setting: its type, default and help from the table."""
    if row.kind == settings.PATH:
        if row.key in _BESIDE_INPUT:
            return {
                "type": Path,
                "metavar": row.metavar,
                "help": f"{row.help} (default: see below)",
            }
        default: Any = Path(str(row.default))
        return {
            "type": Path,
            "default": default,
            "metavar": row.metavar,
            "help": f"{row.help} (default: {row.default})",
        }
    keywords: Dict[str, Any] = {
        "default": row.default,
        "help": f"{row.help} (default: {row.default})",
    }
    if row.kind == settings.CHOICE:
        return {**keywords, "choices": row.choices}
    if row.kind == settings.INTEGER:  # as configuration keys take them: ASCII digits, no "1_6"
        return {**keywords, "type": integer, "metavar": row.metavar}
    return {**keywords, "type": row.python_type, "metavar": row.metavar}


def integer(text: str) -> int:
    """An integer flag's value (argparse names this function in its error: "invalid integer
    value")."""
    return int_text(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edge_inference",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    model_dir = settings.setting("ModelDir")
    add(
        model_dir.flag,
        dest=model_dir.field,
        required=True,
        type=Path,
        metavar=model_dir.metavar,
        help=model_dir.help,
    )
    add(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="in-progress and outbox folders (default: see below)",
    )
    for row in settings.SETTINGS:
        if row is not model_dir:
            add(row.flag, dest=row.field, **_argument(row))
    add("--once", action="store_true", help="process what is in the input folder, then exit")
    add("--ipc", action="store_true", help="Greengrass mode: configuration and results over IPC")
    add("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


# Configuration key -> the flag that sets it, so an error names what the user typed.
FLAGS = {**{row.key: row.flag for row in settings.SETTINGS}, STATE_DIR: "--state-dir"}


def _path(flag: str, cwd: Path, value: Path) -> Path:
    try:
        return resolve_path(cwd, str(value))
    except ValueError as err:
        raise UsageError(f"{flag} {err}") from err


def starting_config(args: argparse.Namespace, cwd: Path) -> Config:
    """The configuration the command line describes (IPC configuration is merged onto it)."""
    values: Dict[str, Any] = {}
    input_dir = _path(FLAGS["InputDir"], cwd, args.input_dir)
    for row in settings.SETTINGS:
        value = getattr(args, row.field)
        if row.kind == settings.PATH:
            if value is None and row.key in _BESIDE_INPUT:
                value = input_dir.parent / str(row.default)
            value = _path(row.flag, cwd, value)
        values[row.field] = value
    return Config(**values)


def _check_ranges(config: Config) -> None:
    """The CLI gives typed values; hold them to the same limits as configuration keys."""
    scalars = [row for row in settings.SETTINGS if row.kind != settings.PATH]
    merge_config(
        config,
        {row.key: getattr(config, row.field) for row in scalars},
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
    metrics_publisher: Optional[Publisher] = None  # local mode: windows stay in <state>/metrics
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
            metrics_publisher = ipc.IotCorePublisher(client, config, thing_name, metrics=True)
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

    def load(model_dir: Path, runtime: str, threads: int) -> LoadedModel:
        with terminate_at_once():
            # the work folder survives restarts and reboots: a later start skips optimizing
            return load_model(
                model_dir, runtime, cache_dir=state_dir / "optimized-models", threads=threads
            )

    try:
        model = load(config.model_dir, config.runtime, config.inference_threads)
    except BaseException:
        spool.close()
        raise
    metrics = MetricsReporter(
        Outbox(state_dir / "metrics"),
        metrics_publisher,
        interval=config.metrics_interval,
        keep=config.metrics_keep_windows,
        thing=thing_name or "local",
        input_dir=config.input_dir,
    )
    capture = Capturer(state_dir / "captures", config, thing_name=thing_name)
    return InferenceService(
        config=config,
        model=model,
        spool=spool,
        publisher=publisher,
        stop=stop,
        store=store if args.ipc else None,
        model_loader=load,
        metrics=metrics,
        capture=capture,
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
