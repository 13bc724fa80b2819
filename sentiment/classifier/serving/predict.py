"""Score raw reviews with an exported model: one JSON line per review, in input order.

Usage:
  sentiment predict "A wonderful film." "Dull and far too long."
  cat reviews.txt | sentiment predict             # one review per line
  sentiment predict --file reviews.txt            # one review per line
  sentiment predict --file reviews.jsonl          # {"review": "..."} per line

--model is an export folder (default models/export: its SavedModel's serving_default, after its
model card proves it is this pipeline's) or an exported model.keras (loaded in Keras safe mode;
the model card beside it gives the decision threshold).

Each review, however long, is scored on its last max_length words (the export's truncation).

Memory stays flat however many reviews come: they are read twice, never held all at once. The
first pass checks every review; an empty review, one without a single word, a line of a .jsonl
file that is not a review record, or bytes that are not UTF-8 stop the run there, before any
scoring, with one line on stderr naming the review and the fix. The second pass scores
--batch-size reviews at a time and prints each batch's lines as soon as it is scored, so a
consumer can start reading and an interrupted run keeps what it printed. Stdin that cannot be
read twice (a pipe) is first copied to a temporary file, on disk, not in memory. On a terminal,
stderr shows a progress bar when there is more than one batch.

Exit status: 0 every review scored; 2 bad input or a model that is not ours (nothing printed to
stdout); 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np
from tqdm import tqdm

from sentiment.classifier.data.reviews import LABEL_NAMES
from sentiment.classifier.data.text import has_words
from sentiment.errors import PipelineError

DEFAULT_MODEL = Path("models/export")
EXCERPT_CHARS = 80
# Measured on the default IMDB export (`sentiment benchmark predict`): 512 scored 4,100
# reviews/s on 2 CPU cores against 3,000 at 256 and 3,700 at 1,024, with about 30 MB more peak
# memory than 256.
DEFAULT_BATCH_SIZE = 512

ReviewSource = Callable[[], Iterator[str]]  # each call reads the reviews again from the start
Scorer = Callable[[list[str]], np.ndarray]  # reviews -> each label's probabilities (n, N)


def read_lines(stream: BinaryIO, source: str) -> Iterator[str]:
    """The lines of UTF-8 bytes, endings dropped, or an error naming the first bad byte.

    Only a newline ends a line: str.splitlines would also split at U+0085 and U+2028, which
    IMDB's reviews hold (raw, inside the JSON strings of data/raw/*.jsonl too).
    """
    offset = 0
    for number, data in enumerate(stream, start=1):
        try:
            text = data.decode("utf-8")  # a multi-byte character never holds a newline byte
        except UnicodeDecodeError as error:
            raise PipelineError(
                f"{source} is not UTF-8 text (byte {offset + error.start}, line {number}): "
                "convert it, e.g. with iconv -t UTF-8"
            ) from None
        offset += len(data)
        yield text.removesuffix("\n").removesuffix("\r")


def parse_json_lines(lines: Iterable[str], source: str) -> Iterator[str]:
    """Reviews from JSON lines: each a string, or an object with a "review" or "text" string."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            record = record.get("review", record.get("text"))
        if not isinstance(record, str):
            raise PipelineError(
                f'{source}:{number} is not a review: give a JSON string or {{"review": "..."}}'
            )
        yield record


def rereadable(stream: BinaryIO) -> BinaryIO:
    """The stream itself if it can seek, else a copy of it in a temporary file on disk."""
    if stream.seekable():
        return stream
    # Kept open for the whole run (both passes); deleted when closed or when the process ends.
    copy = tempfile.TemporaryFile()  # noqa: SIM115
    shutil.copyfileobj(stream, copy)
    copy.seek(0)
    return copy


def review_source(arguments: list[str], file: Path | None, stdin: BinaryIO) -> ReviewSource:
    """Reviews from the arguments, a file (.jsonl: JSON lines), or stdin, one per line."""
    if arguments:
        return lambda: iter(arguments)
    if file is not None:
        source, is_jsonl = str(file), file.suffix in (".jsonl", ".ndjson")

        def read_file() -> Iterator[str]:
            try:
                stream = file.open("rb")
            except OSError as error:
                raise PipelineError(
                    f"cannot read {file} ({error.strerror}): check the path"
                ) from None
            with stream:
                lines = read_lines(stream, source)
                yield from parse_json_lines(lines, source) if is_jsonl else lines

        return read_file
    stream = rereadable(stdin)
    start = stream.tell()  # stdin may be a file someone already read part of

    def read_stdin() -> Iterator[str]:
        stream.seek(start)
        yield from read_lines(stream, "stdin")

    return read_stdin


def check_reviews(reviews: Iterable[str]) -> int:
    """How many reviews there are, after refusing none at all, an empty one or one without words."""
    count = 0
    for count, text in enumerate(reviews, start=1):
        if not text.strip():
            raise PipelineError(f"review {count} is empty: give each review some text")
        if not has_words(text):
            # Nothing for the model to read (and an all-padding row that cuDNN refuses on a GPU).
            raise PipelineError(
                f"review {count} has no words, only punctuation or symbols: give it some words"
            )
    if not count:
        raise PipelineError("no review given: pass reviews as arguments, --file, or on stdin")
    return count


def batches(reviews: Iterable[str], batch_size: int) -> Iterator[list[str]]:
    """Consecutive lists of batch_size reviews (the last one shorter), read lazily."""
    iterator = iter(reviews)
    while batch := list(itertools.islice(iterator, batch_size)):
        yield batch


def prediction_line(
    text: str,
    probabilities: np.ndarray,
    threshold: float,
    label_names: list[str] | tuple[str, ...] = LABEL_NAMES,
) -> str:
    """One review's JSON line: the predicted label, the probabilities and the review's start.

    With two labels: the second label's probability (positive at or above threshold); with
    more: each label's, the likeliest predicted.
    """
    if len(label_names) == 2:
        positive = float(probabilities[1])
        record = {
            "label": label_names[int(positive >= threshold)],
            "probability": round(positive, 6),
        }
    else:
        record = {
            "label": label_names[int(np.argmax(probabilities))],
            "probabilities": {
                name: round(float(p), 6) for name, p in zip(label_names, probabilities, strict=True)
            },
        }
    return json.dumps(record | {"review": text[:EXCERPT_CHARS]}, ensure_ascii=False)


def write_predictions(
    reviews: Iterable[str],
    score: Scorer,
    output: TextIO,
    *,
    threshold: float,
    batch_size: int,
    label_names: list[str] | tuple[str, ...] = LABEL_NAMES,
    on_batch: Callable[[int], object] = lambda reviews_scored: None,
) -> None:
    """Score reviews batch by batch, writing and flushing each batch's lines in input order.

    A batch of reviews is all that is in memory at once: the model pads every review to
    max_length, so the batch, not the input, sets the size of the activations.
    """
    for batch in batches(reviews, batch_size):
        probabilities = score(batch)
        output.write(
            "".join(
                prediction_line(text, row, threshold, label_names) + "\n"
                for text, row in zip(batch, probabilities, strict=True)
            )
        )
        output.flush()
        on_batch(len(batch))


def shows_progress(stderr_is_terminal: bool, reviews: int, batch_size: int) -> bool:
    """A progress bar is for a person watching a run of more than one batch."""
    return stderr_is_terminal and reviews > batch_size


def load_scorer(model: Path) -> tuple[Scorer, float, list[str]]:
    """texts -> each label's probabilities, the decision threshold the export was made with, and
    the label names in their order (from the export's model card)."""
    from sentiment.tensorflow_start import import_tensorflow

    tf = import_tensorflow()
    from sentiment.classifier.serving import export

    if model.is_dir():
        probabilities, card = export.load_serving_signature(model)
        return probabilities, card["serving"]["decision_threshold"], card["labels"]
    keras_model = export.load_exported(model)

    def keras_probabilities(texts: list[str]) -> np.ndarray:
        output = keras_model.predict_on_batch(tf.constant(texts))
        return export.label_probabilities(tf.constant(output)).numpy()

    # the threshold and labels the export was made with, from the model card beside it
    card = export.read_model_card(model.parent)
    return keras_probabilities, card["serving"]["decision_threshold"], card["labels"]


def positive_int(value: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """predict's command line."""
    parser.add_argument("reviews", nargs="*", help="review texts (default: --file or stdin)")
    parser.add_argument("--file", type=Path, help="reviews, one per line (.jsonl: JSON lines)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="export folder or .keras")
    parser.add_argument(
        "--threshold", type=float, help="positive at or above this (default: the export's)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"reviews scored at once: peak memory grows with it (default {DEFAULT_BATCH_SIZE})",
    )


def run(args: argparse.Namespace) -> None:
    """Check every review, then score them batch by batch (see the module doc)."""
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise PipelineError(f"--threshold must be strictly between 0 and 1, got {args.threshold}")
    source = review_source(args.reviews, args.file, sys.stdin.buffer)
    count = check_reviews(source())
    if not args.model.exists():
        raise PipelineError(f"{args.model} does not exist: run `dvc repro export` first")
    score, export_threshold, label_names = load_scorer(args.model)
    if args.threshold is not None and len(label_names) != 2:
        raise PipelineError(
            f"--threshold is for two labels and this model has {len(label_names)}: drop it "
            "(the likeliest label is predicted)"
        )
    threshold = export_threshold if args.threshold is None else args.threshold
    show = shows_progress(sys.stderr.isatty(), count, args.batch_size)
    try:
        with tqdm(total=count, unit="review", file=sys.stderr, disable=not show) as progress:
            write_predictions(
                source(),
                score,
                sys.stdout,
                threshold=threshold,
                batch_size=args.batch_size,
                label_names=label_names,
                on_batch=progress.update,
            )
    except BrokenPipeError:
        # The reader stopped early (`| head`): stop quietly, as line-oriented tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
