"""Score raw reviews with an exported model: one JSON line per review, in input order.

Usage:
  python -m sentiment.predict "A wonderful film." "Dull and far too long."
  cat reviews.txt | python -m sentiment.predict             # one review per line
  python -m sentiment.predict --file reviews.txt            # one review per line
  python -m sentiment.predict --file reviews.jsonl          # {"review": "..."} per line

--model is an export folder (default models/export: its SavedModel's serving_default, after its
model card proves it is this pipeline's) or an exported model.keras (loaded in Keras safe mode;
the model card beside it gives the decision threshold).

Each review, however long, is scored on its last max_length words (the export's truncation).
An empty review, one without a single word, a line of a .jsonl file that is not a review
record, or bytes that are not UTF-8 stop the run before any scoring, with one line on stderr
naming the review and the fix.

Exit status: 0 every review scored; 2 bad input or a model that is not ours (nothing printed to
stdout); 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import BinaryIO

from sentiment.cli import run_stage
from sentiment.data import LABEL_NAMES
from sentiment.errors import PipelineError
from sentiment.text import tokenize

DEFAULT_MODEL = Path("models/export")
EXCERPT_CHARS = 80


def decode(data: bytes, source: str) -> str:
    """UTF-8 text, or an error naming where the first bad byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PipelineError(
            f"{source} is not UTF-8 text (byte {error.start}, line {line}): "
            "convert it, e.g. with iconv -t UTF-8"
        ) from None


def parse_json_lines(text: str, source: str) -> list[str]:
    """Reviews from JSON lines: each a string, or an object with a "review" or "text" string."""
    reviews = []
    for number, line in enumerate(text.splitlines(), start=1):
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
        reviews.append(record)
    return reviews


def read_texts(arguments: list[str], file: Path | None, stdin: BinaryIO) -> list[str]:
    """Reviews from the arguments, a file, or stdin; blank reviews are refused."""
    if arguments:
        texts = arguments
    elif file is not None:
        try:
            data = file.read_bytes()
        except OSError as error:
            raise PipelineError(f"cannot read {file} ({error.strerror}): check the path") from None
        text = decode(data, str(file))
        is_jsonl = file.suffix in (".jsonl", ".ndjson")
        texts = parse_json_lines(text, str(file)) if is_jsonl else text.splitlines()
    else:
        texts = decode(stdin.read(), "stdin").splitlines()
    if not texts:
        raise PipelineError("no review given: pass reviews as arguments, --file, or on stdin")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise PipelineError(f"review {number} is empty: give each review some text")
        if not tokenize(text):
            # Nothing for the model to read (and an all-padding row that cuDNN refuses on a GPU).
            raise PipelineError(
                f"review {number} has no words, only punctuation or symbols: give it some words"
            )
    return texts


def load_scorer(model: Path):
    """texts -> probabilities, and the decision threshold the export was made with."""
    from sentiment import export

    if model.is_dir():
        probabilities, card = export.load_serving_signature(model)
        return probabilities, card["serving"]["decision_threshold"]
    keras_model = export.load_exported(model)
    import tensorflow as tf

    def probabilities(texts):
        return keras_model.predict(tf.constant(texts), verbose=0)[:, 0]

    # the threshold the export was made with, from the model card the export wrote beside it
    return probabilities, export.read_model_card(model.parent)["serving"]["decision_threshold"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reviews", nargs="*", help="review texts (default: --file or stdin)")
    parser.add_argument("--file", type=Path, help="reviews, one per line (.jsonl: JSON lines)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="export folder or .keras")
    parser.add_argument(
        "--threshold", type=float, help="positive at or above this (default: the export's)"
    )
    args = parser.parse_args()
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise PipelineError(f"--threshold must be strictly between 0 and 1, got {args.threshold}")
    texts = read_texts(args.reviews, args.file, sys.stdin.buffer)
    if not args.model.exists():
        raise PipelineError(f"{args.model} does not exist: run `dvc repro export` first")
    score, export_threshold = load_scorer(args.model)
    threshold = export_threshold if args.threshold is None else args.threshold
    for text, probability in zip(texts, score(texts), strict=True):
        label = LABEL_NAMES[int(probability >= threshold)]
        record = {
            "label": label,
            "probability": round(float(probability), 6),
            "review": text[:EXCERPT_CHARS],
        }
        print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    run_stage(main)
