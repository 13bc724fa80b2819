"""Score raw reviews with an exported model: one JSON line per review.

Usage:
  python -m sentiment.predict "A wonderful film." "Dull and far too long."
  cat reviews.txt | python -m sentiment.predict        # one review per line

Exit status: 0 all scored, 2 bad input or model (one line on stderr says which and the fix).
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

DEFAULT_MODEL = Path("models/export/model.keras")


def read_texts(arguments: list[str], stdin: BinaryIO) -> list[str]:
    """Reviews from the arguments, else one per line of stdin; blank reviews are refused."""
    if arguments:
        texts = arguments
    else:
        try:
            texts = stdin.read().decode("utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise PipelineError(
                f"stdin is not UTF-8 text (byte {error.start}): convert it, e.g. with iconv"
            ) from None
    if not texts:
        raise PipelineError("no review given: pass reviews as arguments or one per line on stdin")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise PipelineError(f"review {number} is empty: give each review some text")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reviews", nargs="*", help="review texts (default: read stdin)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="exported .keras model")
    parser.add_argument("--threshold", type=float, default=0.5, help="positive at or above this")
    args = parser.parse_args()
    texts = read_texts(args.reviews, sys.stdin.buffer)

    import tensorflow as tf

    from sentiment.export import load_exported

    model = load_exported(args.model)
    probabilities = model.predict(tf.constant(texts), verbose=0)[:, 0]
    for text, probability in zip(texts, probabilities, strict=True):
        label = LABEL_NAMES[int(probability >= args.threshold)]
        record = {"label": label, "probability": round(float(probability), 6), "review": text[:80]}
        print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    run_stage(main)
