"""predict: scored in batches in bounded memory, streamed in input order, quiet, bad input first."""

import fcntl
import io
import json
import os
import pty
import resource
import shutil
import struct
import subprocess
import sys
import termios

import keras
import pytest

from sentiment.classifier.data.text import tokenize
from sentiment.classifier.serving import export
from sentiment.classifier.serving.predict import (
    has_words,
    load_scorer,
    prediction_line,
    write_predictions,
)
from sentiment.errors import PipelineError
from tests.conftest import PROJECT_ROOT

# The real command's environment: no TF_CPP_MIN_LOG_LEVEL, so its own quieting is what is tested.
QUIET_ENV = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
REVIEW = "the film was boring and the plot tedious but the cast was superb and the music moving"


def predict_command(*args):
    return [sys.executable, "-m", "sentiment", "predict", *map(str, args)]


def run_predict(*args, stdin=None):
    return subprocess.run(
        predict_command(*args), cwd=PROJECT_ROOT, input=stdin, capture_output=True, env=QUIET_ENV
    )


def records(result):
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_predict_reads_arguments_stdin_lines_and_json_lines_alike(exported, tmp_path):
    _, folder = exported
    reviews = [
        "The film was wonderful and the cast superb and the music moving.",
        "The film was boring and the plot tedious and the ending awful.",
    ]
    (tmp_path / "reviews.txt").write_text("\n".join(reviews) + "\n")
    (tmp_path / "reviews.jsonl").write_text(
        json.dumps({"review": reviews[0]}) + "\n" + json.dumps(reviews[1]) + "\n"
    )
    by_argument = records(run_predict("--model", folder, *reviews))
    assert [record["label"] for record in by_argument] == ["positive", "negative"]
    assert records(run_predict("--model", folder, stdin="\n".join(reviews).encode())) == (
        by_argument
    )
    assert records(run_predict("--model", folder, "--file", tmp_path / "reviews.txt")) == (
        by_argument
    )
    assert records(run_predict("--model", folder, "--file", tmp_path / "reviews.jsonl")) == (
        by_argument
    )
    keras_file = records(run_predict("--model", folder / "model.keras", *reviews))
    for served, loaded in zip(by_argument, keras_file, strict=True):
        assert abs(served["probability"] - loaded["probability"]) < 1e-5


def test_predict_uses_the_exports_decision_threshold_for_a_keras_file_too(exported, tmp_path):
    _, folder = exported
    review = "The film was wonderful and the cast superb and the music moving."
    (scored,) = records(run_predict("--model", folder / "model.keras", review))
    assert scored["label"] == "positive"
    # an export made with a threshold above this review's probability calls it negative
    card = json.loads((folder / export.MODEL_CARD).read_text())
    card["serving"]["decision_threshold"] = (scored["probability"] + 1) / 2
    strict = tmp_path / "strict"
    strict.mkdir()
    shutil.copy(folder / "model.keras", strict / "model.keras")
    (strict / export.MODEL_CARD).write_text(json.dumps(card))
    (record,) = records(run_predict("--model", strict / "model.keras", review))
    assert record["label"] == "negative"


def test_predict_scores_a_one_megabyte_review_on_its_last_words(exported):
    _, folder = exported
    long_review = "the film was boring and the plot tedious " * 26_000  # about 1 MB
    assert len(long_review.encode()) > 1_000_000
    (record,) = records(run_predict("--model", folder, stdin=long_review.encode()))
    assert record["label"] == "negative" and len(record["review"]) == 80


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (["fine", "   "], None, "error: review 2 is empty: give each review some text"),
        (["fine", "?! ... :-)"], None, "error: review 2 has no words, only punctuation"),
        ([], b"caf\xe9 au lait\n", "error: stdin is not UTF-8 text (byte 3, line 1)"),
        ([], b"", "error: no review given"),
        (["--threshold", "1.5", "fine"], None, "error: --threshold must be strictly between"),
    ],
)
def test_bad_input_gets_one_line_and_exit_status_2(exported, arguments, stdin, message):
    _, folder = exported
    result = run_predict("--model", folder, *arguments, stdin=stdin)
    assert result.returncode == 2 and result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_a_bad_file_names_its_line(exported, tmp_path):
    _, folder = exported
    (tmp_path / "bad.jsonl").write_text('{"review": "good"}\n{"stars": 5}\n')
    (tmp_path / "latin1.txt").write_bytes("ok\ncr\xe8me br\xfbl\xe9e".encode("latin-1"))
    jsonl = run_predict("--model", folder, "--file", tmp_path / "bad.jsonl")
    assert jsonl.returncode == 2
    assert f"{tmp_path / 'bad.jsonl'}:2 is not a review" in jsonl.stderr.decode()
    latin = run_predict("--model", folder, "--file", tmp_path / "latin1.txt")
    assert latin.returncode == 2 and "(byte 5, line 2)" in latin.stderr.decode()


def test_models_that_are_not_ours_are_refused(exported, tmp_path):
    _, folder = exported
    foreign = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    foreign.save(tmp_path / "foreign.keras")
    with pytest.raises(PipelineError, match="without this pipeline's review vectoriser"):
        export.load_exported(tmp_path / "foreign.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    result = run_predict("--model", tmp_path / "junk.keras", "a review")
    assert result.returncode == 2
    assert b"is not a model exported by this pipeline" in result.stderr

    no_card = tmp_path / "no_card"
    shutil.copytree(folder / "saved_model", no_card / "saved_model")
    result = run_predict("--model", no_card, "a review")
    assert result.returncode == 2
    assert b"has no model card of this pipeline (model_card.json)" in result.stderr


def numbered_reviews(count):
    """Distinct reviews of varied length, so a mix-up of order or batches shows."""
    words = REVIEW.split()
    return [f"review {n} " + " ".join(words[: 3 + n % len(words)]) for n in range(count)]


@pytest.mark.parametrize("batch_size", [1, 7, 32, 50])
def test_batched_output_equals_one_call_scores_in_input_order(exported, batch_size):
    _, folder = exported
    reviews = numbered_reviews(50)  # 7 does not divide 50; 50 is the old single call
    score, threshold, labels = load_scorer(folder)
    assert labels == ["negative", "positive"]
    expected = [
        prediction_line(text, p, threshold, labels)
        for text, p in zip(reviews, score(reviews), strict=True)
    ]
    output = io.StringIO()
    write_predictions(reviews, score, output, threshold=threshold, batch_size=batch_size)
    lines = output.getvalue().splitlines()
    assert [json.loads(line)["review"] for line in lines] == [text[:80] for text in reviews]
    for line, one_call in zip(lines, expected, strict=True):
        got, want = json.loads(line), json.loads(one_call)
        assert got["label"] == want["label"]
        assert got["probability"] == pytest.approx(want["probability"], abs=2e-6)


def test_each_batch_is_printed_and_flushed_before_the_next_is_scored(exported):
    _, folder = exported
    score, threshold, _ = load_scorer(folder)

    flushed_at = []

    class Output(io.StringIO):
        def flush(self):
            flushed_at.append(self.getvalue().count("\n"))

    output = Output()
    printed_when_scored = []

    def watched_score(batch):
        printed_when_scored.append(output.getvalue().count("\n"))
        return score(batch)

    reviews = numbered_reviews(20)
    write_predictions(reviews, watched_score, output, threshold=threshold, batch_size=8)
    assert printed_when_scored == [0, 8, 16]
    assert flushed_at == [8, 16, 20]


PEAK_VIRTUAL_MEMORY_PROBE = """\
import atexit, runpy, sys
def report():
    peak_kb = next(line for line in open("/proc/self/status") if line.startswith("VmPeak:"))
    sys.stderr.write(f"peak_virtual_kb={peak_kb.split()[1]}\\n")
atexit.register(report)
sys.argv = ["sentiment", "predict", *sys.argv[1:]]
runpy.run_module("sentiment", run_name="__main__")
"""


@pytest.mark.slow
def test_many_reviews_fit_a_memory_limit_that_one_call_for_all_exceeds(exported, tmp_path):
    _, folder = exported
    (tmp_path / "one.txt").write_text(REVIEW + "\n")
    probe = subprocess.run(
        [sys.executable, "-c", PEAK_VIRTUAL_MEMORY_PROBE, "--model", folder, "--file", "one.txt"],
        cwd=tmp_path,
        env=QUIET_ENV | {"PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
    )
    # TensorFlow reserves address space by the core count: measure it here, then allow 512 MB.
    start_up_kb = int(probe.stderr.rsplit("peak_virtual_kb=", 1)[1])
    limit = start_up_kb * 1024 + 512 * 2**20

    def under_limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    count = 40_000  # all at once they need about 1.4 GB more than start-up (36 kB a review)
    (tmp_path / "many.txt").write_text((REVIEW + "\n") * count)

    def predict(*args):
        return subprocess.run(
            predict_command("--model", folder, "--file", tmp_path / "many.txt", *args),
            cwd=PROJECT_ROOT,
            env=QUIET_ENV,
            capture_output=True,
            preexec_fn=under_limit,
        )

    batched = predict()
    assert batched.returncode == 0, batched.stderr.decode()[-2000:]
    assert batched.stdout.count(b"\n") == count
    one_call = predict("--batch-size", count)  # what predict did before it scored in batches
    assert one_call.returncode != 0 and b"OOM" in one_call.stderr


def test_no_progress_and_no_tensorflow_chatter_when_stderr_is_not_a_terminal(exported):
    _, folder = exported
    reviews = "\n".join(numbered_reviews(40)).encode()
    result = run_predict("--model", folder, "--batch-size", 8, stdin=reviews)
    assert len(records(result)) == 40
    assert result.stderr == b""


def test_a_terminal_gets_a_progress_bar_on_stderr(exported):
    _, folder = exported
    reviews = "\n".join(numbered_reviews(40)).encode()
    terminal, follower = pty.openpty()
    # A terminal of 80 columns (a new pty has 0, and tqdm fits its bar to the width).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        result = subprocess.run(
            predict_command("--model", folder, "--batch-size", 8),
            cwd=PROJECT_ROOT,
            input=reviews,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=QUIET_ENV,
        )
    finally:
        os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO once the terminal's other end is closed and read out
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert result.returncode == 0 and result.stdout.count(b"\n") == 40
    assert b"40/40" in shown and b"review" in shown
    assert b"cudart_stub" not in shown and b"absl" not in shown


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("late.txt", "\n".join([*numbered_reviews(99), "", "fine"]), "review 100 is empty"),
        ("late.txt", "\n".join([*numbered_reviews(99), "!!! ???"]), "review 100 has no words"),
        (
            "late.jsonl",
            "\n".join([*map(json.dumps, numbered_reviews(99)), '{"stars": 5}']),
            "late.jsonl:100 is not a review",
        ),
        ("late.txt", "\n".join(numbered_reviews(99)) + "\ncaf\udce9", "line 100): convert it"),
    ],
)
def test_bad_input_late_in_a_file_stops_the_run_before_anything_is_printed(
    exported, tmp_path, name, content, message
):
    _, folder = exported
    (tmp_path / name).write_bytes(content.encode("utf-8", errors="surrogateescape"))
    result = run_predict("--model", folder, "--batch-size", 8, "--file", tmp_path / name)
    assert result.returncode == 2 and result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_stdin_from_a_file_is_read_from_where_it_stands(exported, tmp_path):
    _, folder = exported
    reviews = numbered_reviews(3)
    (tmp_path / "reviews.txt").write_text("\n".join(reviews) + "\n")
    descriptor = os.open(tmp_path / "reviews.txt", os.O_RDONLY)
    os.lseek(descriptor, len(reviews[0]) + 1, os.SEEK_SET)  # someone read the first line
    try:
        result = subprocess.run(
            predict_command("--model", folder),
            cwd=PROJECT_ROOT,
            stdin=descriptor,
            capture_output=True,
            env=QUIET_ENV,
        )
    finally:
        os.close(descriptor)
    assert [record["review"] for record in records(result)] == reviews[1:]


@pytest.mark.parametrize(
    "text",
    ["a", "'", "<br />", "<BR/>?! <br>", "<br >x", "\u212aelvin", "caf\u00e9", "_-_", "..."],
)
def test_the_quick_word_check_agrees_with_tokenize(text):
    assert has_words(text) == bool(tokenize(text))
