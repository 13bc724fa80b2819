"""Word vectors learnt from the training reviews and any unlabelled text (word2vec, gensim), to
start the embedding.

The model's embedding otherwise starts random and learns each word from the labels alone;
word2vec first places words that occur in the same contexts near each other (skip-gram with
negative sampling), using the training reviews' text and the `unlabelled` param's texts only
(de-duplicated against every labelled split): no pretrained vectors from elsewhere, no validation
or test text.

Reproducible: one worker thread (gensim's parallel workers race) and the params' seed give the
same vectors on every run; Python's string hashing is not involved (gensim seeds each word's
start vector from the seed and the word's index).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sentiment.errors import PipelineError
from sentiment.params import ModelConfig

VECTORS_FILE = "vectors.npy"
# What the stage writes instead when embedding_init is random (DVC outputs must exist).
NOT_TRAINED_FILE = "NOT_TRAINED.txt"
# Skip-gram beats CBOW on a corpus this small (about 6 million tokens); 5 words either side
# and 5 negative samples are word2vec's own defaults; 10 passes let rare words settle.
WINDOW = 5
NEGATIVE_SAMPLES = 5
PASSES = 10


def id_sentences(token_ids: np.ndarray) -> list[list[str]]:
    """Each padded review's words (its non-padding ids, in order) as word2vec's tokens; one
    string object per id, shared by every use (75,000 reviews' tokens in a few hundred MB)."""
    names = [str(token) for token in range(int(token_ids.max(initial=0)) + 1)]
    return [[names[token] for token in row[row != 0].tolist()] for row in token_ids]


def train_word_vectors(
    token_ids: np.ndarray, *, vocab_size: int, dimensions: int, seed: int
) -> np.ndarray:
    """A (vocab_size, dimensions) float32 table: row i is id i's vector, zeros for ids never seen
    (padding, id 0, among them)."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class PassProgress(CallbackAny2Vec):
        def __init__(self, progress: tqdm):
            self.progress = progress

        def on_epoch_end(self, model) -> None:
            self.progress.update(1)

    sentences = id_sentences(token_ids)
    if not any(sentences):
        raise PipelineError("the training reviews hold no words: word vectors need some text")
    with tqdm(total=PASSES, desc="word2vec", unit="pass", file=sys.stderr) as progress:
        model = Word2Vec(
            sentences,
            vector_size=dimensions,
            window=WINDOW,
            negative=NEGATIVE_SAMPLES,
            sg=1,
            min_count=1,
            sample=1e-4,
            epochs=PASSES,
            seed=seed,
            workers=1,
            callbacks=[PassProgress(progress)],
        )
    table = np.zeros((vocab_size, dimensions), dtype=np.float32)
    for word, index in model.wv.key_to_index.items():
        table[int(word)] = model.wv.vectors[index]
    return table


def load_word_vectors(path, *, vocab_size: int, dimensions: int) -> np.ndarray:
    """The word_vectors stage's table, checked against the model it is to start."""
    try:
        table = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PipelineError(
            f"{path} is missing: embedding_init word2vec needs `dvc repro word_vectors`"
        ) from None
    except ValueError as error:
        raise PipelineError(
            f"{path} is not a word-vector table ({error}): run `dvc repro word_vectors`"
        ) from None
    if table.shape != (vocab_size, dimensions):
        raise PipelineError(
            f"{path} holds {table.shape[0]} x {table.shape[1]} vectors but the model needs "
            f"{vocab_size} x {dimensions}: run `dvc repro word_vectors` after preprocess"
        )
    return table


def starting_vectors(folder: Path, config: ModelConfig) -> np.ndarray | None:
    """The table in the word_vectors stage's output folder when config.embedding_init is word2vec
    (checked against the model it is to start); None with a random start."""
    if config.embedding_init != "word2vec":
        return None
    return load_word_vectors(
        folder / VECTORS_FILE, vocab_size=config.vocab_size, dimensions=config.embedding_dim
    )
