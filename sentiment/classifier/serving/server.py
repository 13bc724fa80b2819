"""The HTTP server: TensorFlow Serving's REST API for the exported model, with batching, limits,
health, Prometheus metrics, reloading, and a page to try it.

Endpoints (NAME is --name, default `sentiment`; `/versions/N` may follow NAME, as TensorFlow
Serving allows):

  GET  /v1/models/NAME            the model's status (TensorFlow Serving's format)
  GET  /v1/models/NAME/metadata   its signature, serving_default: reviews -> probabilities, label
  POST /v1/models/NAME:predict    {"instances": [...]} -> {"predictions": [...]} (row format), or
                                  {"inputs": ...} -> {"outputs": ...} (columnar format)
  GET  /healthz                   the process is alive
  GET  /readyz                    a model is loaded (503 until then)
  GET  /metrics                   Prometheus' text format
  GET  /                          a page to try the model, with its model card

Every refusal is a JSON object {"error": "<one line: what is wrong and what to do>"} with the
status that names it: 400 malformed JSON or wrong types, 404 unknown model or path, 405 wrong
method, 413 body, texts per request or characters per text over the limit, 415 not JSON, 503
queue full (with Retry-After), 504 not scored within the request timeout.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sentiment.classifier.data.text import has_words
from sentiment.classifier.serving.batching import Batcher, QueueFull
from sentiment.classifier.serving.page import page_html
from sentiment.classifier.serving.served_model import ModelSlot

SIGNATURE = "serving_default"
# /v1/models/NAME[/versions/N][:predict | /metadata]
MODEL_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)?$"
)
# Bodies read as JSON: JSON's own type, none, and curl -d's default, which TensorFlow Serving also
# reads as JSON (its documented curl examples send no Content-Type); any other type is 415.
JSON_TYPES = ("application/json", "", "application/x-www-form-urlencoded")
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class ServeConfig:
    """The server's settings, each a `sentiment serve` flag."""

    model: Path
    name: str = "sentiment"
    max_batch: int = 64  # texts scored in one model call
    max_wait_ms: float = 2.0  # how long the first text of a batch waits for others
    batching: bool = True
    max_body_bytes: int = 1 << 20
    max_texts: int = 256  # texts per request
    max_chars: int = 20_000  # characters per text
    max_queued: int = 2048  # texts waiting to be scored; more: 503
    timeout_s: float = 10.0  # a request not scored by then: 504
    poll_s: float = 2.0  # how often the export folder is checked for a new export; 0: never


class RequestError(Exception):
    """A refusal: its HTTP status, the error kind the metrics count, and a one-line message."""

    def __init__(self, status: int, kind: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


class Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sentiment_requests",
            "HTTP requests answered",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "sentiment_errors", "requests refused, by kind", ["kind"], registry=self.registry
        )
        self.latency = Histogram(
            "sentiment_request_seconds",
            "time to answer a predict request",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_texts = Histogram(
            "sentiment_batch_texts",
            "texts per model call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter("sentiment_texts", "texts scored", registry=self.registry)
        self.queued = Gauge("sentiment_queued_texts", "texts waiting", registry=self.registry)
        self.reloads = Counter(
            "sentiment_model_reloads",
            "exports taken in or refused",
            ["outcome"],
            registry=self.registry,
        )
        self.version = Gauge("sentiment_model_version", "version serving", registry=self.registry)


def error_response(error: RequestError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)


async def read_json_body(request: Request, config: ServeConfig) -> object:
    """The request's JSON, refused (413, 415, 400) before more than max_body_bytes are read."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES and not kind.endswith("+json"):
        raise RequestError(
            415,
            "unsupported_media_type",
            f"Content-Type {kind!r} is not JSON: send the body as application/json",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
        raise RequestError(
            413,
            "body_too_large",
            f"the body has {int(declared):,} bytes, over the limit of {config.max_body_bytes:,}: "
            "send fewer or shorter texts per request",
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > config.max_body_bytes:
            raise RequestError(
                413,
                "body_too_large",
                f"the body is over the limit of {config.max_body_bytes:,} bytes: send fewer or "
                "shorter texts per request",
            )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        message = str(error).splitlines()[0]
        raise RequestError(
            400,
            "malformed_json",
            f'the body is not JSON ({message}): send {{"instances": ["a review", ...]}}',
        ) from None


def texts_of(payload: object, config: ServeConfig) -> tuple[list[str], str]:
    """The texts of a predict request and its format ('row' for instances, 'columnar' for
    inputs), as TensorFlow Serving reads them for a signature with the one input `reviews`."""
    usage = 'send {"instances": ["a review", ...]} or {"inputs": {"reviews": ["a review", ...]}}'
    if not isinstance(payload, dict):
        raise RequestError(400, "wrong_types", f"the body is not a JSON object: {usage}")
    signature = payload.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise RequestError(
            400, "wrong_types", f"signature_name {signature!r} is not {SIGNATURE!r}: leave it out"
        )
    keys = {"instances", "inputs"} & set(payload)
    unknown = set(payload) - {"instances", "inputs", "signature_name"}
    if len(keys) != 1 or unknown:
        raise RequestError(
            400,
            "wrong_types",
            f"the body has {sorted(payload)}; it needs exactly one of instances, inputs: {usage}",
        )
    if "instances" in payload:
        instances, fmt = payload["instances"], "row"
        if not isinstance(instances, list):
            raise RequestError(400, "wrong_types", f"instances is not a list: {usage}")
        texts = [
            item["reviews"] if isinstance(item, dict) and set(item) == {"reviews"} else item
            for item in instances
        ]
        where = "instances"
    else:
        inputs, fmt = payload["inputs"], "columnar"
        if isinstance(inputs, dict):
            if set(inputs) != {"reviews"}:
                raise RequestError(
                    400, "wrong_types", f"inputs names {sorted(inputs)}, not reviews: {usage}"
                )
            inputs = inputs["reviews"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list):
            raise RequestError(400, "wrong_types", f"inputs is not a list of texts: {usage}")
        where = "inputs"
    if not texts:
        raise RequestError(400, "wrong_types", f"{where} is empty: {usage}")
    if len(texts) > config.max_texts:
        raise RequestError(
            413,
            "too_many_texts",
            f"{len(texts):,} texts in one request, over the limit of {config.max_texts:,}: "
            "split them over several requests",
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(
                400,
                "wrong_types",
                f"{where}[{index}] is {type(text).__name__}, not a string: {usage}",
            )
        if len(text) > config.max_chars:
            raise RequestError(
                413,
                "text_too_long",
                f"{where}[{index}] has {len(text):,} characters, over the limit of "
                f"{config.max_chars:,}: shorten it",
            )
        if not text.strip() or not has_words(text):
            what = "empty" if not text.strip() else "without a single word"
            raise RequestError(
                400, "empty_text", f"{where}[{index}] is {what}: give each review some words"
            )
    return texts, fmt


def create_app(config: ServeConfig, slot: ModelSlot, log=print) -> Starlette:
    """The ASGI app. `slot` holds the model (loaded at start-up if it is not yet)."""
    disable_created_metrics()  # the *_created series: timestamps no dashboard reads
    metrics = Metrics()
    state: dict = {"batcher": None, "ready": False}

    def count_batch(texts: int) -> None:
        metrics.batch_texts.observe(texts)

    async def reload(force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        before = dict(slot.reloads)
        await loop.run_in_executor(None, slot.reload_if_changed, force)
        for outcome in ("loaded", "refused"):
            if slot.reloads[outcome] > before[outcome]:
                metrics.reloads.labels(outcome).inc()
        if slot.current is not None:
            metrics.version.set(slot.current.version)

    async def poll() -> None:
        while True:
            await asyncio.sleep(config.poll_s)
            try:
                await reload()
            except Exception as error:  # polling outlives any one failure
                log(f"serve: checking {slot.folder} for a new export failed: {error}")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        loop = asyncio.get_running_loop()
        if slot.current is None:
            await loop.run_in_executor(None, slot.load_first)
        metrics.version.set(slot.current.version)
        batcher = Batcher(
            slot.outputs,
            max_batch=config.max_batch,
            max_wait=config.max_wait_ms / 1000,
            max_queued=config.max_queued,
            batching=config.batching,
            on_batch=count_batch,
        )
        batcher.start()
        state["batcher"], state["ready"] = batcher, True
        tasks = [loop.create_task(poll())] if config.poll_s > 0 else []
        # no SIGHUP on another platform, or outside the main thread: then polling only
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(
                signal.SIGHUP, lambda: tasks.append(loop.create_task(reload(True)))
            )
        try:
            yield
        finally:
            state["ready"] = False
            for task in tasks:
                task.cancel()
            with suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            await batcher.stop()

    def answered(endpoint: str, response: Response) -> Response:
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    def refused(endpoint: str, error: RequestError) -> Response:
        metrics.errors.labels(error.kind).inc()
        return answered(endpoint, error_response(error))

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        try:
            payload = await read_json_body(request, config)
            texts, fmt = texts_of(payload, config)
            batcher: Batcher = state["batcher"]
            try:
                probabilities, labels = await asyncio.wait_for(
                    batcher.submit(texts), config.timeout_s
                )
            except QueueFull:
                raise RequestError(
                    503,
                    "queue_full",
                    f"the server is at capacity ({config.max_queued:,} texts waiting): retry "
                    "after a second",
                    headers={"Retry-After": "1"},
                ) from None
            except TimeoutError:
                raise RequestError(
                    504,
                    "timeout",
                    f"not scored within {config.timeout_s:g} s: retry, or send fewer texts",
                ) from None
            except Exception as error:  # the model failed on this batch: say so, serve on
                log(f"serve: the model failed on a batch: {error.__class__.__name__}: {error}")
                raise RequestError(
                    500,
                    "model_error",
                    f"the model failed on this request's batch ({error.__class__.__name__}): "
                    "retry; the server's log says more",
                ) from None
            finally:
                metrics.queued.set(batcher.queued_texts)
        except RequestError as error:
            return refused("predict", error)
        except ClientDisconnect:
            metrics.errors.labels("client_disconnected").inc()
            return Response(status_code=499)
        rows = [[round(float(p), 6) for p in row] for row in probabilities.tolist()]
        if fmt == "row":
            body = {
                "predictions": [
                    {"probabilities": row, "label": label}
                    for row, label in zip(rows, labels, strict=True)
                ]
            }
        else:
            body = {"outputs": {"probabilities": rows, "label": list(labels)}}
        metrics.texts.inc(len(texts))
        metrics.latency.labels("predict").observe(time.perf_counter() - started)
        return answered("predict", JSONResponse(body))

    def status_body(version: int) -> dict:
        return {
            "model_version_status": [
                {
                    "version": str(version),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }

    def metadata_body(current) -> dict:
        return {
            "model_spec": {
                "name": config.name,
                "signature_name": "",
                "version": str(current.version),
            },
            "metadata": {"signature_def": {"signature_def": current.signature_defs}},
        }

    async def models(request: Request) -> Response:
        rest = request.path_params["rest"]
        match = MODEL_PATH.match(rest)
        endpoint = "predict" if rest.endswith(":predict") else "model"
        try:
            if not match or match["name"] != config.name:
                name = re.split(r"[/:]", rest)[0]
                raise RequestError(
                    404,
                    "not_found",
                    f"no model {name!r} here: this server serves {config.name!r} "
                    f"(/v1/models/{config.name})",
                )
            current = slot.current
            if match["version"] is not None and int(match["version"]) != current.version:
                raise RequestError(
                    404,
                    "not_found",
                    f"version {match['version']} of {config.name!r} is not served: version "
                    f"{current.version} is",
                )
            verb = match["verb"]
            wanted = "POST" if verb == ":predict" else "GET"
            if request.method != wanted:
                raise RequestError(
                    405,
                    "method_not_allowed",
                    f"{request.method} {request.url.path}: use {wanted}",
                    headers={"Allow": wanted},
                )
        except RequestError as error:
            return refused(endpoint, error)
        if verb == ":predict":
            return await predict(request)
        if verb == "/metadata":
            return answered("metadata", JSONResponse(metadata_body(current)))
        return answered("status", JSONResponse(status_body(current.version)))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(request: Request) -> Response:
        if not state["ready"] or slot.current is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "version": slot.current.version})

    async def prometheus(request: Request) -> Response:
        if state["batcher"] is not None:
            metrics.queued.set(state["batcher"].queued_texts)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html(slot.current.card, config.name))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        kind = "method_not_allowed" if status == 405 else "not_found"
        message = (
            f"{request.method} {request.url.path}: not allowed here"
            if status == 405
            else f"no such path {request.url.path}: see /v1/models/{config.name}"
        )
        return refused("other", RequestError(status, kind, message))

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
