"""Throughput and latency of `sentiment serve` on loopback, with and without batching, beside
`sentiment predict --file` on the same texts.

Usage:
  sentiment benchmark serve [--model models/export] [--reviews data/raw/test.jsonl] \\
      [--requests 3000] [--concurrency 1 8 64] [--soak 100000] [--output FILE]

It starts `sentiment serve` on a free loopback port, once with batching and once without, and
sends one-text requests ({"instances": [text]}, the texts the reviews file holds, in order) from
CONCURRENCY keep-alive connections at a time, --requests of them per concurrency after a warm-up.
For each: requests (= texts) per second, the median and 99th-percentile latency, and the failed
requests (any answer but 200). With batching it then sends --soak more requests at the highest
concurrency and reads the server's resident memory before and after, and its peak. Last, the same
texts go through `sentiment predict --file` in one process. One line per run, then one JSON line
with all of it (and the machine), also written to --output.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from sentiment.console import log
from sentiment.errors import PipelineError
from sentiment.files import write_json
from sentiment.measurement.predict_benchmark import measure_predict, write_repeated

DEFAULT_CONCURRENCY = (1, 8, 64)
WARM_UP_REQUESTS = 200
NAME = "sentiment"


@dataclass
class LoadRun:
    """One concurrency's requests against one server."""

    batching: bool
    concurrency: int
    requests: int
    failed: int
    texts_per_s: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_bytes(text: str, port: int) -> bytes:
    body = json.dumps({"instances": [text]}).encode()
    head = (
        f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one_connection(port: int, payloads: list[bytes], latencies: list, failures: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for payload in payloads:
            started = time.perf_counter()
            writer.write(payload)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status_line.split()[1:2] != [b"200"]:
                failures.append(status_line.decode("latin-1").strip())
    finally:
        writer.close()


async def _load(port: int, texts: list[str], concurrency: int, requests: int):
    """Send `requests` one-text requests over `concurrency` connections; (latencies, failures,
    wall seconds)."""
    payloads = [request_bytes(texts[i % len(texts)], port) for i in range(requests)]
    shares = [payloads[start::concurrency] for start in range(concurrency)]
    latencies: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(_one_connection(port, share, latencies, failures) for share in shares))
    return latencies, failures, time.perf_counter() - started


def load(port: int, texts: list[str], concurrency: int, requests: int, batching: bool) -> LoadRun:
    latencies, failures, wall = asyncio.run(_load(port, texts, concurrency, requests))
    ordered = sorted(latencies)
    return LoadRun(
        batching=batching,
        concurrency=concurrency,
        requests=requests,
        failed=len(failures),
        texts_per_s=round(requests / wall, 1),
        p50_ms=round(1000 * statistics.median(ordered), 2),
        p99_ms=round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    )


class ServerProcess:
    """`sentiment serve` on a free loopback port, until stopped."""

    def __init__(self, model: Path, batching: bool):
        self.port = free_port()
        command = [sys.executable, "-m", "sentiment", "serve", "--model", str(model)]
        command += ["--port", str(self.port), "--poll-seconds", "0"]
        if not batching:
            command.append("--no-batching")
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PipelineError(f"sentiment serve exited: {self.process.stderr.read()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise PipelineError("sentiment serve did not open its port in 180 s")

    def memory_mb(self) -> tuple[float, float]:
        """(resident, peak resident) memory in MB."""
        process = psutil.Process(self.process.pid)
        peak = _peak_rss_kb(self.process.pid)
        return round(process.memory_info().rss / 2**20, 1), round(peak / 1024, 1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _peak_rss_kb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """serve benchmark's command line."""
    parser.add_argument("--model", type=Path, default=Path("models/export"))
    parser.add_argument("--reviews", type=Path, default=Path("data/raw/test.jsonl"))
    parser.add_argument("--requests", type=int, default=3000, help="requests per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(DEFAULT_CONCURRENCY))
    parser.add_argument("--soak", type=int, default=100_000, help="requests before memory is read")
    parser.add_argument("--output", type=Path, help="also write the JSON summary here")


def run(args: argparse.Namespace) -> None:
    """Serve with and without batching under each concurrency, then predict --file alike."""
    from sentiment.proof.platform_record import describe_cpu

    if not (args.model / "saved_model").is_dir():
        raise PipelineError(f"{args.model} has no SavedModel: run `dvc repro export` first")
    if not args.reviews.is_file():
        raise PipelineError(f"{args.reviews} does not exist: run `dvc repro download` first")
    with args.reviews.open(encoding="utf-8") as lines:  # JSON lines: split on newlines only
        texts = [json.loads(line)["text"] for line in itertools.islice(lines, 5000)]
    runs: list[LoadRun] = []
    memory = {}
    for batching in (True, False):
        server = ServerProcess(args.model, batching)
        try:
            load(server.port, texts, max(args.concurrency), WARM_UP_REQUESTS, batching)
            for concurrency in args.concurrency:
                result = load(server.port, texts, concurrency, args.requests, batching)
                runs.append(result)
                log(
                    f"serve benchmark: batching {'on' if batching else 'off'}, concurrency "
                    f"{concurrency}: {result.texts_per_s:,.0f} texts/s, p50 {result.p50_ms} ms, "
                    f"p99 {result.p99_ms} ms, {result.failed} failed of {result.requests:,}"
                )
            if batching and args.soak:
                start = server.memory_mb()
                soak = load(server.port, texts, max(args.concurrency), args.soak, batching)
                end = server.memory_mb()
                memory = {
                    "requests": args.soak,
                    "failed": soak.failed,
                    "texts_per_s": soak.texts_per_s,
                    "rss_mb_before": start[0],
                    "rss_mb_after": end[0],
                    "peak_rss_mb_before": start[1],
                    "peak_rss_mb_after": end[1],
                }
                log(
                    f"serve benchmark: {args.soak:,} more requests ({soak.failed} failed): "
                    f"resident {start[0]} -> {end[0]} MB, peak {start[1]} -> {end[1]} MB"
                )
        finally:
            server.stop()
    with tempfile.TemporaryDirectory(prefix="serve-benchmark-") as scratch:
        reviews_file = Path(scratch) / "reviews.jsonl"
        write_repeated(texts, args.requests, reviews_file)
        predicted = measure_predict(args.model, reviews_file, args.requests, batch_size=512)
    log(
        f"serve benchmark: sentiment predict --file on the same {args.requests:,} texts: "
        f"{predicted.reviews_per_s:,.0f} texts/s in all, "
        f"{predicted.scoring_reviews_per_s:,.0f} scoring"
    )
    record = {
        "command": "sentiment benchmark serve " + " ".join(sys.argv[3:]),
        "model": str(args.model),
        "shipped": json.loads((args.model / "model_card.json").read_text()).get("shipped"),
        "machine": describe_cpu(),
        "runs": [asdict(item) for item in runs],
        "memory": memory,
        "predict_file": asdict(predicted),
    }
    print(json.dumps(record))
    if args.output:
        write_json(args.output, record)
