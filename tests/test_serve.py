"""`sentiment serve`: a real server on loopback, a small exported model, real HTTP requests.

TensorFlow Serving's REST endpoints, every refusal with its status and one-line JSON error, the
queue's 503 under a planted slow model, SIGTERM's drain, a new export taken in and a broken one
refused, and memory that stays flat under a stream of bad requests.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.conftest import PROJECT_ROOT, project_env

NAME = "sentiment"
PREDICT = f"/v1/models/{NAME}:predict"


def _review_of(label: int) -> str:
    from sentiment.classifier.data.synthetic import make_synthetic

    return next(text for text, y in make_synthetic(2000)["test"] if y == label)


POSITIVE, NEGATIVE = _review_of(1), _review_of(0)  # the small model tells these apart
# Runs `sentiment serve` with each model call slowed by SLOW_SECONDS: a planted slow model.
SLOW_SERVE = (
    "import sys, time\n"
    "from sentiment.classifier.serving import served_model\n"
    "scored, delay = served_model.ModelSlot.outputs, float(sys.argv[1])\n"
    "def slow(self, texts):\n"
    "    time.sleep(delay)\n"
    "    return scored(self, texts)\n"
    "served_model.ModelSlot.outputs = slow\n"
    "from sentiment.cli import main\n"
    "sys.argv = ['sentiment', 'serve', *sys.argv[2:]]\n"
    "main()\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `sentiment serve` process on loopback, and requests to it."""

    def __init__(self, folder: Path, *flags: str, slow: float | None = None):
        self.port = free_port()
        command = ["--model", str(folder), "--port", str(self.port), *flags]
        if slow is None:
            argv = [sys.executable, "-m", "sentiment", "serve", *command]
        else:
            argv = [sys.executable, "-c", SLOW_SERVE, str(slow), *command]
        self.process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=project_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.process.stdout.read()}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("serve did not get ready in 120 s")

    def request(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
        """(status, parsed JSON or text, headers) of one request on a new connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            sent = {"Content-Type": "application/json"} if data is not None else {}
            connection.request(method, path, body=data, headers=sent | (headers or {}))
            response = connection.getresponse()
            text = response.read().decode()
            kind = response.getheader("Content-Type", "")
            parsed = json.loads(text) if kind.startswith("application/json") else text
            return response.status, parsed, {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()

    def predict(self, texts, **extra):
        return self.request("POST", f"/v1/models/{NAME}:predict", {"instances": texts} | extra)

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        return self.process.returncode, output


@pytest.fixture
def export_copy(exported, tmp_path):
    _, folder = exported
    copy = tmp_path / "export"
    shutil.copytree(folder, copy)
    return copy


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    _, folder = exported
    copy = tmp_path_factory.mktemp("serve") / "export"
    shutil.copytree(folder, copy)
    running = Server(copy, "--max-texts", "8", "--max-chars", "500", "--max-body-bytes", "4096")
    yield running
    running.stop()


def test_predict_answers_as_tensorflow_serving_does_in_both_formats(server, exported):
    model, _ = exported
    status, body, _ = server.predict([POSITIVE, NEGATIVE])
    assert status == 200
    predictions = body["predictions"]
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    import tensorflow as tf

    expected = model.predict(tf.constant([POSITIVE, NEGATIVE]), verbose=0)[:, 0]
    served = [p["probabilities"] for p in predictions]
    np.testing.assert_allclose([row[1] for row in served], expected, atol=1e-5)
    np.testing.assert_allclose([sum(row) for row in served], [1, 1], atol=1e-5)
    # instances may name the input; columnar inputs answer with outputs
    assert server.predict([{"reviews": POSITIVE}])[1]["predictions"][0]["label"] == "positive"
    path = f"/v1/models/{NAME}:predict"
    status, body, _ = server.request("POST", path, {"inputs": {"reviews": [POSITIVE, NEGATIVE]}})
    assert status == 200 and body["outputs"]["label"] == ["positive", "negative"]
    assert np.allclose(np.array(body["outputs"]["probabilities"]), served, atol=1e-6)
    status, body, _ = server.request("POST", path, {"inputs": [NEGATIVE]})
    assert status == 200 and body["outputs"]["label"] == ["negative"]
    status, body, _ = server.request(
        "POST",
        f"/v1/models/{NAME}/versions/1:predict",
        {"instances": [POSITIVE], "signature_name": "serving_default"},
    )
    assert status == 200 and body["predictions"][0]["label"] == "positive"


def test_status_metadata_health_and_metrics(server):
    status, body, _ = server.request("GET", f"/v1/models/{NAME}")
    assert status == 200
    (version,) = body["model_version_status"]
    assert version == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    status, body, _ = server.request("GET", f"/v1/models/{NAME}/metadata")
    assert status == 200 and body["model_spec"] == {
        "name": NAME,
        "signature_name": "",
        "version": "1",
    }
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["reviews"]["dtype"] == "DT_STRING"
    assert set(signature["outputs"]) == {"probabilities", "label"}
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert server.request("GET", "/healthz")[:2] == (200, {"status": "live"})
    assert server.request("GET", "/readyz")[:2] == (200, {"status": "ready", "version": 1})
    server.predict([POSITIVE])
    server.predict([1])  # a refusal, counted by kind
    status, text, headers = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    from prometheus_client.parser import text_string_to_metric_families

    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {
        "sentiment_requests",
        "sentiment_errors",
        "sentiment_request_seconds",
        "sentiment_batch_texts",
        "sentiment_texts",
    } <= set(families)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("sentiment_errors_total", (("kind", "wrong_types"),))] >= 1
    assert samples[("sentiment_requests_total", (("code", "200"), ("endpoint", "predict")))] >= 1
    assert samples[("sentiment_request_seconds_count", (("endpoint", "predict"),))] >= 1
    assert samples[("sentiment_batch_texts_count", ())] >= 1


def test_the_page_shows_the_model_card(server):
    status, page, headers = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "<script>" in page and "http" not in page.split("<script>")[1].split("fetch(")[0]
    assert "test accuracy</td><td>0.9000 on 10 test texts" in page
    assert 'const LABELS = ["negative", "positive"];' in page


def _chromium() -> str | None:
    from tests.test_plots_offline import browser

    return browser()


@pytest.mark.skipif(
    _chromium() is None, reason="no Chromium: apt-get install chromium-headless-shell"
)
@pytest.mark.parametrize(("review", "label"), [(POSITIVE, "positive"), (NEGATIVE, "negative")])
def test_a_browser_draws_each_labels_bar_for_a_review(server, review, label, tmp_path):
    """Headless Chromium opens the page with the review in its link; the page's script asks the
    server and draws the bars; the DOM it leaves, and a screenshot, show them."""
    from urllib.parse import quote

    url = f"http://127.0.0.1:{server.port}/?text={quote(review)}"
    base = [
        _chromium(),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--window-size=900,900",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert 'data-state="answered"' in dom, dom[-2000:]
    bars = dict(re.findall(r'data-label="([^"]+)".*?style="width: ([\d.]+)%;?"', dom, re.S))
    assert set(bars) == {"negative", "positive"}
    assert float(bars[label]) > 50 and abs(sum(map(float, bars.values())) - 100) < 0.3
    assert f'<div id="verdict">{label}</div>' in dom
    shot = tmp_path / f"{label}.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


BAD_REQUESTS = [
    # (method, path, raw body, content type, status, what the one line says)
    ("POST", f"/v1/models/{NAME}:predict", b"{not json", "application/json", 400, "not JSON"),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'"a review"',
        "application/json",
        400,
        "not a JSON object",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": "a review"}',
        "application/json",
        400,
        "instances is not a list",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": [1]}',
        "application/json",
        400,
        "instances[0] is int, not a string",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": []}',
        "application/json",
        400,
        "instances is empty",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": ["  "]}',
        "application/json",
        400,
        "instances[0] is empty",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": ["?!"]}',
        "application/json",
        400,
        "without a single word",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": ["a"], "inputs": ["a"]}',
        "application/json",
        400,
        "exactly one of instances, inputs",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"inputs": {"text": ["a"]}}',
        "application/json",
        400,
        "not reviews",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": ["a"], "signature_name": "x"}',
        "application/json",
        400,
        "signature_name 'x'",
    ),
    (
        "POST",
        "/v1/models/other:predict",
        b'{"instances": ["a"]}',
        "application/json",
        404,
        "no model 'other' here",
    ),
    ("GET", "/v1/models/other", None, None, 404, "no model 'other' here"),
    (
        "POST",
        f"/v1/models/{NAME}/versions/7:predict",
        b'{"instances": ["a"]}',
        "application/json",
        404,
        "version 7",
    ),
    ("GET", "/nowhere", None, None, 404, "no such path /nowhere"),
    ("GET", f"/v1/models/{NAME}:predict", None, None, 405, "use POST"),
    ("POST", f"/v1/models/{NAME}", b"{}", "application/json", 405, "use GET"),
    ("POST", "/healthz", b"{}", "application/json", 405, "not allowed"),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": ["' + b"x" * 5000 + b'"]}',
        "application/json",
        413,
        "over the limit of 4,096",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        json.dumps({"instances": ["a"] * 9}).encode(),
        "application/json",
        413,
        "9 texts in one request",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        json.dumps({"instances": ["word " * 120]}).encode(),
        "application/json",
        413,
        "600 characters",
    ),
    (
        "POST",
        f"/v1/models/{NAME}:predict",
        b'{"instances": ["a"]}',
        "text/plain",
        415,
        "'text/plain' is not JSON",
    ),
]


@pytest.mark.parametrize(("method", "path", "raw", "kind", "status", "says"), BAD_REQUESTS)
def test_each_bad_request_gets_its_status_and_one_json_line(
    server, method, path, raw, kind, status, says
):
    headers = {"Content-Type": kind} if kind else {}
    got, body, answer_headers = server.request(method, path, raw=raw, headers=headers)
    assert got == status, body
    assert set(body) == {"error"} and "\n" not in body["error"] and says in body["error"]
    if status == 405:
        assert "allow" in answer_headers or path == "/healthz"
    assert server.predict([POSITIVE])[0] == 200  # and the server answers on


def test_two_thousand_bad_requests_leave_memory_flat(server):
    process = psutil.Process(server.process.pid)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    bodies = [b"{not json", b'{"instances": [1]}', b'{"instances": ["' + b"x" * 5000 + b'"]}']
    headers = {"Content-Type": "application/json"}

    def send(count: int) -> None:
        for index in range(count):
            try:
                connection.request("POST", PREDICT, body=bodies[index % 3], headers=headers)
                response = connection.getresponse()
            except (http.client.HTTPException, ConnectionError):
                connection.close()  # the server closed it after an unread body: open another
                connection.request("POST", PREDICT, body=bodies[index % 3], headers=headers)
                response = connection.getresponse()
            response.read()
            assert response.status in (400, 413)

    send(300)  # warm: allocator pools and caches fill
    before = process.memory_info().rss
    send(2000)
    after = process.memory_info().rss
    connection.close()
    assert after - before < 8 * 2**20, f"RSS grew by {(after - before) / 2**20:.1f} MB"
    assert server.predict([POSITIVE])[0] == 200


def test_a_full_queue_answers_503_with_retry_after(export_copy):
    server = Server(export_copy, "--max-queued", "2", "--max-batch", "1", slow=0.5)
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: server.predict([POSITIVE]), range(12)))
        statuses = sorted(status for status, _, _ in answers)
        assert 200 in statuses and 503 in statuses, statuses
        refused = [(body, headers) for status, body, headers in answers if status == 503]
        body, headers = refused[0]
        assert headers["retry-after"] == "1" and "at capacity" in body["error"]
        assert server.predict([POSITIVE])[0] == 200  # served again once the queue drains
    finally:
        server.stop()


def test_a_request_past_its_timeout_gets_504(export_copy):
    server = Server(export_copy, "--timeout", "0.2", slow=1.0)
    try:
        status, body, _ = server.predict([POSITIVE])
        assert status == 504 and "not scored within 0.2 s" in body["error"]
    finally:
        server.stop()


def test_sigterm_answers_what_is_in_flight_then_exits_0(export_copy):
    server = Server(export_copy, slow=1.5)
    answers = []
    thread = threading.Thread(target=lambda: answers.append(server.predict([POSITIVE])))
    thread.start()
    time.sleep(0.5)  # the request is being scored now
    server.process.send_signal(signal.SIGTERM)
    thread.join(timeout=30)
    code, output = server.stop()
    assert (
        answers and answers[0][0] == 200 and answers[0][1]["predictions"][0]["label"] == "positive"
    )
    assert code == 0, output
    assert "stopped, every request in flight answered" in output
    with pytest.raises(OSError):
        server.request("GET", "/healthz")


def test_a_new_export_is_taken_in_without_dropping_a_request_and_a_broken_one_refused(export_copy):
    server = Server(export_copy, "--poll-seconds", "0.2")
    failures, stop = [], threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            status = server.predict([POSITIVE])[0]
            if status != 200:
                failures.append(status)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        card = json.loads((export_copy / "model_card.json").read_text())
        card["test_metrics"]["accuracy"] = 0.91  # a new export, as `dvc repro export` writes one
        staging = export_copy.parent / "staging"
        shutil.copytree(export_copy, staging)
        (staging / "model_card.json").write_text(json.dumps(card))
        old = export_copy.parent / "old"
        export_copy.rename(old)
        staging.rename(export_copy)
        assert wait_for_version(server, 2)
        assert "0.9100" in server.request("GET", "/")[1]
        # a broken export: refused, the old model serves on, and the refusal is counted
        (export_copy / "saved_model" / "saved_model.pb").write_bytes(b"not a model")
        time.sleep(2)
        assert (
            server.request("GET", f"/v1/models/{NAME}")[1]["model_version_status"][0]["version"]
            == "2"
        )
        assert server.predict([POSITIVE])[0] == 200
        metrics = server.request("GET", "/metrics")[1]
        assert 'sentiment_model_reloads_total{outcome="refused"} 1.0' in metrics
        # SIGHUP takes the folder in at once: here a good export again
        shutil.rmtree(export_copy)
        shutil.copytree(old, export_copy)
        server.process.send_signal(signal.SIGHUP)
        assert wait_for_version(server, 3)
    finally:
        stop.set()
        asker.join(timeout=30)
        code, output = server.stop()
    assert not failures, failures
    assert "is refused, the old one serves on" in output and "not a loadable SavedModel" in output
    assert code == 0


def wait_for_version(server: Server, version: int, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = server.request("GET", f"/v1/models/{NAME}")[1]["model_version_status"][0]
        if status["version"] == str(version):
            return True
        time.sleep(0.2)
    return False


def test_a_folder_that_is_not_our_export_is_refused_before_the_port_opens(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "serve", "--model", str(tmp_path), "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "has no model card of this pipeline" in line
    missing = subprocess.run(
        [sys.executable, "-m", "sentiment", "serve", "--model", str(tmp_path / "nope")],
        cwd=PROJECT_ROOT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "does not exist: run `dvc repro export`" in missing.stderr


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_requests_are_scored_together_unless_batching_is_off(export_copy, batching):
    flags = ["--max-wait-ms", "200", "--max-batch", "16"] + ([] if batching else ["--no-batching"])
    server = Server(export_copy, *flags)
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(lambda i: server.predict([POSITIVE, NEGATIVE][i % 2 :][:1]), range(16))
            )
        assert [status for status, _, _ in answers] == [200] * 16
        labels = [body["predictions"][0]["label"] for _, body, _ in answers]
        assert labels == ["positive", "negative"] * 8  # each request its own rows, in order
        metrics = server.request("GET", "/metrics")[1]
        calls = float(re.search(r"^sentiment_batch_texts_count (\S+)$", metrics, re.M)[1])
        texts = float(re.search(r"^sentiment_batch_texts_sum (\S+)$", metrics, re.M)[1])
        assert texts == 16
        assert calls < 8 if batching else calls == 16
    finally:
        server.stop()


# The batcher alone, with a planted model that records each call's texts.


def _batcher_run(scenario, **settings):
    from sentiment.classifier.serving.batching import Batcher

    calls = []

    def score(texts):
        calls.append(list(texts))
        time.sleep(0.05)
        return ([f"row of {text}" for text in texts],)

    async def main():
        batcher = Batcher(score, **settings)
        batcher.start()
        try:
            return await scenario(batcher)
        finally:
            await batcher.stop()

    import asyncio

    return asyncio.run(main()), calls


def test_the_batcher_takes_whole_requests_up_to_max_batch_and_a_larger_one_alone():
    import asyncio

    async def scenario(batcher):
        sizes = [1, 2, 3, 9, 1]
        requests = [[f"{n}.{i}" for i in range(size)] for n, size in enumerate(sizes)]
        return await asyncio.gather(*(batcher.submit(texts) for texts in requests))

    answers, calls = _batcher_run(scenario, max_batch=4, max_wait=0.1, max_queued=100)
    assert [rows for (rows,) in answers] == [
        [f"row of {n}.{i}" for i in range(size)] for n, size in enumerate([1, 2, 3, 9, 1])
    ]
    assert [len(call) for call in calls] == [3, 3, 9, 1]  # whole requests, in arrival order


def test_the_batcher_refuses_past_its_queue_and_drops_abandoned_requests():
    import asyncio

    from sentiment.classifier.serving.batching import QueueFull

    async def scenario(batcher):
        first = asyncio.ensure_future(batcher.submit(["a", "b"]))
        await asyncio.sleep(0)  # queued, not yet taken
        with pytest.raises(QueueFull):
            await batcher.submit(["c", "d", "e"])  # 2 + 3 > 4
        abandoned = asyncio.ensure_future(batcher.submit(["x", "y"]))
        await asyncio.sleep(0)
        abandoned.cancel()  # its caller gave up (a timeout, a disconnect)
        await first
        await asyncio.sleep(0.2)
        return batcher.queued_texts

    queued, calls = _batcher_run(scenario, max_batch=8, max_wait=0.01, max_queued=4)
    assert queued == 0
    assert all("x" not in call for call in calls)  # never scored
