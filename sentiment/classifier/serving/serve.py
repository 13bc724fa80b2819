"""Serve the exported model over HTTP, speaking TensorFlow Serving's REST API.

Usage:
  sentiment serve                                   # models/export on http://127.0.0.1:8501
  sentiment serve --model models/export --port 8080 --host 0.0.0.0
  curl -s localhost:8501/v1/models/sentiment:predict -d '{"instances": ["A wonderful film."]}'

The model loads, and is checked to be this pipeline's export, before the port opens: a wrong
--model stops here in one line. It binds 127.0.0.1 unless --host says otherwise. Concurrent
requests are scored together (at most --max-batch texts per model call, the first text waiting
at most --max-wait-ms for others); --no-batching scores each request alone. The limits
(--max-body-bytes, --max-texts, --max-chars, --max-queued, --timeout) refuse a request with a
one-line JSON error and the status that names it (server.py). SIGTERM or Ctrl-C stops taking
connections, answers what is in flight, then exits 0. A new export in the folder (`dvc repro`,
`dvc checkout`) is taken in on SIGHUP or when --poll-seconds notices it, without dropping a
request; a broken one is refused and the old model serves on.

Starlette and uvicorn: the ASGI toolkit under FastAPI and the server it is usually run with, both
small, maintained, with graceful shutdown built in; the API here is a handful of fixed routes, so
a framework's validation and schema layers would add nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from sentiment.console import log
from sentiment.errors import PipelineError

DEFAULT_PORT = 8501  # TensorFlow Serving's REST port
DRAIN_SECONDS = 30  # how long SIGTERM waits for requests in flight


def positive(kind):
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or number < (0 if kind is float else 1):
            raise argparse.ArgumentTypeError(
                f"must be a {kind.__name__} of at least {0 if kind is float else 1}, got {value!r}"
            )
        return number

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """serve's command line."""
    from sentiment.classifier.serving.server import ServeConfig

    defaults = ServeConfig(model=Path("models/export"))
    parser.add_argument("--model", type=Path, default=defaults.model, help="export folder")
    parser.add_argument("--name", default=defaults.name, help="the model's name in /v1/models/NAME")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=positive(int), default=DEFAULT_PORT)
    parser.add_argument(
        "--max-batch", type=positive(int), default=defaults.max_batch, help="texts per model call"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=positive(float),
        default=defaults.max_wait_ms,
        help="how long a batch's first text waits for others",
    )
    parser.add_argument("--no-batching", action="store_true", help="score each request alone")
    parser.add_argument("--max-body-bytes", type=positive(int), default=defaults.max_body_bytes)
    parser.add_argument(
        "--max-texts", type=positive(int), default=defaults.max_texts, help="texts per request"
    )
    parser.add_argument(
        "--max-chars", type=positive(int), default=defaults.max_chars, help="characters per text"
    )
    parser.add_argument(
        "--max-queued",
        type=positive(int),
        default=defaults.max_queued,
        help="texts waiting to be scored; beyond it requests get 503",
    )
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=defaults.timeout_s,
        help="seconds a request may wait to be scored; beyond it 504",
    )
    parser.add_argument(
        "--poll-seconds",
        type=positive(float),
        default=defaults.poll_s,
        help="how often to look for a new export (0: on SIGHUP only)",
    )


def run(args: argparse.Namespace) -> None:
    """Load the export, then serve until SIGTERM or Ctrl-C."""
    from sentiment.tensorflow_start import import_tensorflow

    import_tensorflow()
    import uvicorn

    from sentiment.classifier.serving.served_model import ModelSlot
    from sentiment.classifier.serving.server import ServeConfig, create_app

    if not args.model.exists():
        raise PipelineError(f"{args.model} does not exist: run `dvc repro export` first")
    config = ServeConfig(
        model=args.model,
        name=args.name,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        batching=not args.no_batching,
        max_body_bytes=args.max_body_bytes,
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        max_queued=args.max_queued,
        timeout_s=args.timeout,
        poll_s=args.poll_seconds,
    )
    slot = ModelSlot(args.model, log=log)
    loaded = slot.load_first()  # a wrong --model stops here, before the port opens
    app = create_app(config, slot, log=log)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
            lifespan="on",
        )
    )
    batching = (
        f"batches of up to {config.max_batch} texts, {config.max_wait_ms:g} ms wait"
        if config.batching
        else "no batching"
    )
    log(
        f"serve: {args.model} ({loaded.card.get('shipped', 'network')}, labels "
        f"{', '.join(loaded.labels)}) as {config.name!r} on http://{args.host}:{args.port}/ "
        f"({batching}); Ctrl-C or SIGTERM stops"
    )
    # uvicorn drains on SIGTERM / SIGINT, then raises the signal again for the handler it found:
    # these make that a clean exit (status 0) rather than death by the signal.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda number, frame: None)
    server.run()
    if not server.started:
        sys.exit(2)  # uvicorn said why (the port taken, say)
    log("serve: stopped, every request in flight answered")
